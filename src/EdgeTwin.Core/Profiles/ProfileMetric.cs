using EdgeTwin.Core.Samples;

namespace EdgeTwin.Core.Profiles;

/// <summary>
/// One metric of a profile. Exactly one of <see cref="Oid"/> (SNMP), <see cref="Register"/> (Modbus) or
/// <see cref="Channel"/> (local sensors) is set, matching the profile's protocol.
/// The value reported is <c>raw * Scale + Offset</c>.
/// </summary>
/// <param name="Name">Metric name, unique in the profile (snake_case).</param>
/// <param name="Unit">UCUM-style unit after scaling (<c>Cel</c>, <c>A</c>, <c>V</c>, <c>W</c>, <c>kW</c>, <c>kW.h</c>, <c>%</c>, <c>Hz</c>, <c>1</c>).</param>
/// <param name="Kind">Gauge, counter or state.</param>
/// <param name="Role">The role in the twin, <c>area.quantity</c> (e.g. <c>pdu.outlet_current</c>).</param>
public sealed record ProfileMetric(string Name, string Unit, MetricKind Kind, string Role)
{
    /// <summary>SNMP OID in dotted form with a leading dot. For scalars it includes the instance (<c>.0</c>); for table columns it does not.</summary>
    public string? Oid { get; init; }

    /// <summary>SNMP table columns: the OID read instead when this column's walk gives no rows, or null.</summary>
    public ColumnFallback? Fallback { get; init; }

    /// <summary>SNMP table columns: the per-row scale factor column (cmcIIIVarScale), or null.</summary>
    public ColumnRowScale? RowScale { get; init; }

    /// <summary>SNMP table columns: the per-row unit column and the unit text a row must have to be read, or null.</summary>
    public ColumnRowUnit? RowUnit { get; init; }

    /// <summary>SNMP table columns: the per-row status column and the codes under which the row's value is a reading, or null.</summary>
    public ColumnRowStatus? RowStatus { get; init; }

    /// <summary>Modbus register location and type.</summary>
    public ModbusRegister? Register { get; init; }

    /// <summary>Local sensor channel (<c>temperature</c>, <c>humidity</c>, <c>pressure</c>, <c>state</c>, <c>count</c>).</summary>
    public string? Channel { get; init; }

    private readonly double _scale = 1;

    // 0, or the integer n with 1/n == Scale exactly (0.1 → 10): see Convert.
    private readonly double _divisor;

    /// <summary>Multiplier applied to the raw value.</summary>
    public double Scale
    {
        get => _scale;
        init
        {
            _scale = value;
            _divisor = ExactDivisor(value);
        }
    }

    /// <summary>Added after scaling.</summary>
    public double Offset { get; init; }

    /// <summary>For counters: report the per-second rate instead of the count (unit is then per second).</summary>
    public bool Rate { get; init; }

    /// <summary>Lowest physically plausible value; below it the sample is flagged out-of-range.</summary>
    public double? Min { get; init; }

    /// <summary>Highest physically plausible value; above it the sample is flagged out-of-range.</summary>
    public double? Max { get; init; }

    /// <summary>Send the raw series by exception (<see cref="Deadband"/>) instead of window summaries.</summary>
    public bool Raw { get; init; }

    /// <summary>For <see cref="Raw"/> series: the change that triggers a new report, in the metric's unit.</summary>
    public double? Deadband { get; init; }

    /// <summary>For <see cref="MetricKind.State"/> metrics: the meaning of each raw value (e.g. 3 → <c>onBattery</c>).</summary>
    public IReadOnlyDictionary<long, string>? States { get; init; }

    /// <summary>
    /// The device accepts writes of this metric (a set point: SNMP SET at its OID, Modbus write to its holding register or
    /// coil), encoded with the same scale, offset and type as it is read. Only the set-point writer uses it.
    /// </summary>
    public bool Writable { get; init; }

    /// <summary>Encodes an engineering value as the raw device value (inverse of <see cref="Convert"/>).</summary>
    public double ToRaw(double value) => (value - Offset) / Scale;

    /// <summary>Free text (what the value means, caveats).</summary>
    public string? Description { get; init; }

    /// <summary>
    /// Applies <see cref="Scale"/> and <see cref="Offset"/>. A decimal scale whose reciprocal is an integer (0.1, 0.01,
    /// 0.05) divides by that integer instead of multiplying: 71 × 0.1 is 7.1000000000000005 (0.1 is not exact in binary,
    /// and the product carries its error onto the wire as <c>"min":7.1000000000000005</c>), while 71 / 10 is correctly
    /// rounded, i.e. the double nearest 7.1, which prints as 7.1. Same cost, no allocation.
    /// </summary>
    public double Convert(double raw) => (_divisor != 0 ? raw / _divisor : raw * _scale) + Offset;

    /// <summary>The integer n with 1/n == <paramref name="scale"/> exactly (0.1 → 10, 0.05 → 20), or 0 when there is none.</summary>
    public static double ExactDivisor(double scale)
    {
        if (!double.IsFinite(scale) || scale == 0 || Math.Abs(scale) >= 1)
        {
            return 0;
        }

        var n = Math.Round(1 / scale);
        return Math.Abs(n) <= 1e15 && 1 / n == scale ? n : 0;
    }

    /// <summary>
    /// True when <paramref name="value"/> (scaled) lies outside [<see cref="Min"/>, <see cref="Max"/>] or is not a finite
    /// number (a float32 register holding NaN or ±Inf: "not available" on many meters; poll showed +Inf as good while the
    /// summaries counted it bad).
    /// </summary>
    public bool IsOutOfRange(double value) => !double.IsFinite(value) || value < Min || value > Max;
}
