using EdgeTwin.Core.Samples;

namespace EdgeTwin.Core.Profiles;

/// <summary>How a profile's device is read.</summary>
public enum DeviceProtocol
{
    /// <summary>SNMP (addresses <c>udp:</c>/<c>udp6:</c>); metrics carry OIDs.</summary>
    Snmp,
    /// <summary>Modbus (addresses <c>tcp:</c>/<c>rtu:</c>/<c>rtutcp:</c>); metrics carry registers.</summary>
    Modbus,
    /// <summary>1-Wire (address <c>w1:</c>).</summary>
    OneWire,
    /// <summary>I2C (address <c>i2c:</c>).</summary>
    I2c,
    /// <summary>GPIO lines (address <c>gpio:</c>): digital inputs, pulse counters, DHT22.</summary>
    Gpio,
    /// <summary>The gateway itself (address <c>cpu</c>).</summary>
    System,
}

/// <summary>
/// What a kind of device offers and how to read it: a <c>device-profiles/&lt;vendor&gt;-&lt;model&gt;.yaml</c> file
/// after loading and validation. Immutable and shared by every device that uses it.
/// </summary>
/// <param name="Id">Profile id (the <c>profile:</c> key, equal to the file name without <c>.yaml</c>).</param>
/// <param name="Vendor">Manufacturer.</param>
/// <param name="Model">Model or family.</param>
/// <param name="Protocol">How the device is read.</param>
/// <param name="Source">The MIB or vendor register map the facts come from.</param>
/// <param name="Metrics">Scalar metrics (one series each).</param>
/// <param name="Tables">SNMP tables (one series per column per row); empty for other protocols.</param>
public sealed record DeviceProfile(
    string Id,
    string Vendor,
    string Model,
    DeviceProtocol Protocol,
    string Source,
    IReadOnlyList<ProfileMetric> Metrics,
    IReadOnlyList<ProfileTable> Tables)
{
    /// <summary>Free text about the device or caveats of the profile.</summary>
    public string? Description { get; init; }

    /// <summary>Modbus request planning settings; set for <see cref="DeviceProtocol.Modbus"/> profiles.</summary>
    public ModbusProfileSettings? Modbus { get; init; }

    /// <summary>Local sensor driver settings; set for 1-Wire, I2C, GPIO and system profiles.</summary>
    public SensorSettings? Sensor { get; init; }

    /// <summary>Full path of the profile file, or null when built in code.</summary>
    public string? SourcePath { get; init; }

    /// <summary>Every metric including table columns.</summary>
    public IEnumerable<ProfileMetric> AllMetrics => Metrics.Concat(Tables.SelectMany(t => t.Columns.Concat(t.Utilization?.Metrics ?? [])));

    /// <summary>The scalar metric with this name, or null.</summary>
    public ProfileMetric? FindMetric(string name) =>
        Metrics.FirstOrDefault(m => string.Equals(m.Name, name, StringComparison.Ordinal));
}

/// <summary>
/// An SNMP table: the columns are walked and each row index becomes the tag <see cref="IndexTag"/>
/// (e.g. <c>outlet=7</c>). When <see cref="LabelOid"/> is set its value for the row becomes the tag
/// <see cref="LabelTag"/> as well (e.g. <c>ifName</c> → <c>name=eth0</c>).
/// </summary>
/// <param name="Name">Table name, unique in the profile.</param>
/// <param name="IndexTag">Tag that receives the row index (the OID suffix after the column OID, dotted).</param>
/// <param name="Columns">Columns read per row; each column OID has no instance suffix.</param>
public sealed record ProfileTable(string Name, string IndexTag, IReadOnlyList<ProfileMetric> Columns)
{
    /// <summary>Column whose string value labels the row, or null.</summary>
    public string? LabelOid { get; init; }

    /// <summary>Tag that receives the label (default <c>name</c>).</summary>
    public string LabelTag { get; init; } = "name";

    /// <summary>
    /// Names for a label column whose values are OBJECT IDENTIFIERs (LIEBERT-GP-ENVIRONMENTAL-MIB's
    /// lgpEnvTemperatureDescrDegC names each sensor by an OID such as lgpEnvSupplyAirTemperature), keyed by the OID in
    /// dotted form with its leading dot; an OID without a name labels its row with the OID itself. Empty: none.
    /// </summary>
    public IReadOnlyDictionary<string, string> LabelNames { get; init; } = new Dictionary<string, string>();

    /// <summary>Upper bound on rows read, so a misbehaving agent cannot create unbounded series.</summary>
    public int MaxRows { get; init; } = 256;

    /// <summary>Keeps only rows whose filter column has one of the listed values (e.g. sensor type = celsius); null keeps all.</summary>
    public TableRowFilter? Filter { get; init; }

    /// <summary>Per row, the in and out octet rates in percent of the row's link speed (IF-MIB interfaces); null: none.</summary>
    public TableUtilization? Utilization { get; init; }
}

/// <summary>
/// Derives <see cref="InMetric"/> and <see cref="OutMetric"/> (%, per row) from the octet-rate columns
/// <see cref="In"/>/<see cref="Out"/> (<c>rate: true</c> counters in <c>By</c>) and the speed column
/// <see cref="Speed"/> (<c>Mbit/s</c> or <c>bit/s</c>): rate × 8 / speed × 100 (RFC 2863 ifHighSpeed / ifSpeed).
/// </summary>
/// <param name="In">Column name of the received-octets counter.</param>
/// <param name="Out">Column name of the sent-octets counter.</param>
/// <param name="Speed">Column name of the link speed.</param>
public sealed record TableUtilization(string In, string Out, string Speed)
{
    /// <summary>Name of the derived series of received traffic.</summary>
    public const string InMetric = "in_utilization";

    /// <summary>Name of the derived series of sent traffic.</summary>
    public const string OutMetric = "out_utilization";

    /// <summary>Role of <see cref="InMetric"/>.</summary>
    public const string InRole = "net.in_utilization";

    /// <summary>Role of <see cref="OutMetric"/>.</summary>
    public const string OutRole = "net.out_utilization";

    /// <summary>
    /// The two derived series as metrics (no OID: computed, not read), so rules, <c>check</c>, <c>poll</c> and the quality
    /// rules know them like any column. 0–100 %: the source publishes nothing above 100.
    /// </summary>
    public IReadOnlyList<ProfileMetric> Metrics => Derived; // shared, and outside the record's equality

    private static readonly ProfileMetric[] Derived =
    [
        new(InMetric, "%", MetricKind.Gauge, InRole) { Min = 0, Max = 100, Description = "received octets × 8 in percent of the link speed" },
        new(OutMetric, "%", MetricKind.Gauge, OutRole) { Min = 0, Max = 100, Description = "sent octets × 8 in percent of the link speed" },
    ];
}

/// <summary>
/// Where an SNMP table column is read when its own OID gives no rows while other columns of the table do (a device
/// without ifXTable, or SNMPv1, which carries no Counter64): <see cref="Oid"/>, at <see cref="Scale"/> (null: the
/// column's) so the series keeps its unit (ifSpeed in bit/s at 0.000001 for an ifHighSpeed column in Mbit/s).
/// </summary>
public sealed record ColumnFallback(string Oid, double? Scale);

/// <summary>
/// Row filter of a table: read column <see cref="Oid"/> for each row and keep the row when its integer value is in
/// <see cref="Values"/>, or, with <see cref="Matches"/>, when its text matches one of those patterns (<c>*</c> any run of
/// characters, otherwise exact and case-sensitive): a generic variable table (Rittal CMC III <c>cmcIIIVarTable</c>) tells
/// a temperature row from a door row only by its name column.
/// </summary>
/// <param name="Oid">Column OID (no instance suffix).</param>
/// <param name="Values">Accepted values (empty with <see cref="Matches"/>).</param>
public sealed record TableRowFilter(string Oid, IReadOnlyList<long> Values)
{
    /// <summary>Text patterns of the column's value, or null for an integer filter.</summary>
    public TextPatterns? Matches { get; init; }

    /// <summary>True when a row with this filter-column value is kept.</summary>
    public bool Accepts(long value) => Values.Contains(value);
}

/// <summary>
/// Patterns an SNMP OctetString is compared with, as bytes (no decoding per poll): <c>*</c> matches any run of bytes,
/// anything else itself, case-sensitively. A pattern with characters beyond ASCII (<c>°C</c>) matches its UTF-8 and its
/// ISO 8859-1 encoding, as device firmware sends either.
/// </summary>
public sealed class TextPatterns
{
    private readonly byte[][] _encoded;

    /// <summary>Encodes the patterns once.</summary>
    public TextPatterns(IReadOnlyList<string> patterns)
    {
        Patterns = patterns;
        var latin1 = System.Text.Encoding.Latin1;
        _encoded = patterns.SelectMany(p => p.All(char.IsAscii) || p.Any(c => c > '\u00ff')
                ? [System.Text.Encoding.UTF8.GetBytes(p)]
                : new[] { System.Text.Encoding.UTF8.GetBytes(p), latin1.GetBytes(p) })
            .ToArray();
    }

    /// <summary>The patterns as written.</summary>
    public IReadOnlyList<string> Patterns { get; }

    /// <summary>True when <paramref name="text"/> matches one of the patterns.</summary>
    public bool Match(ReadOnlySpan<byte> text)
    {
        foreach (var p in _encoded)
        {
            if (Glob(p, text))
            {
                return true;
            }
        }
        return false;
    }

    /// <inheritdoc/>
    public override string ToString() => string.Join(", ", Patterns.Select(p => "'" + p + "'"));

    /// <summary><c>*</c>-only glob over bytes, backtracking to the last star; no allocation.</summary>
    internal static bool Glob(ReadOnlySpan<byte> pattern, ReadOnlySpan<byte> text)
    {
        int p = 0, t = 0, star = -1, mark = 0;
        while (t < text.Length)
        {
            if (p < pattern.Length && pattern[p] == (byte)'*')
            {
                star = p++;
                mark = t;
            }
            else if (p < pattern.Length && pattern[p] == text[t])
            {
                p++;
                t++;
            }
            else if (star >= 0)
            {
                p = star + 1;
                t = ++mark;
            }
            else
            {
                return false;
            }
        }
        while (p < pattern.Length && pattern[p] == (byte)'*')
        {
            p++;
        }
        return p == pattern.Length;
    }
}

/// <summary>
/// SNMP table columns: each row's raw value is scaled by a signed factor read from column <see cref="Oid"/> of the same
/// row before the column's own scale, as RITTAL-CMC-III-MIB cmcIIIVarScale defines it: "-100 -> value has to be divided
/// by 100, +100 -> value has to be multiplied by 100". 0 (which the MIB does not define) and 1 leave the value as read.
/// </summary>
public sealed record ColumnRowScale(string Oid)
{
    /// <summary>Applies the factor the row's scale column holds.</summary>
    public static double Apply(double raw, double factor) =>
        factor < 0 ? raw / -factor : factor > 0 ? raw * factor : raw;
}

/// <summary>
/// SNMP table columns: a row is read only when its unit column <see cref="Oid"/> matches one of <see cref="Matches"/>
/// (the unit the column's scale and <c>unit</c> assume, as firmware versions spell it); another unit (a CMC III set to
/// °F) is skipped, not read as °C.
/// </summary>
public sealed record ColumnRowUnit(string Oid, TextPatterns Matches);

/// <summary>
/// SNMP table columns: the row's value is a reading only while status column <see cref="Oid"/> of the same row holds one
/// of <see cref="Values"/> (the codes its MIB gives a valid value: RITTAL-CMC-III-MIB cmcIIIVarQuality 1-5, not the
/// "...NoValue" 21-25; ENTITY-SENSOR-MIB entPhySensorOperStatus ok(1)). Any other code, a status that is no number, or
/// no status row publishes the sample as <see cref="SampleQuality.DeviceError"/> (NaN), as every other value a device
/// says it cannot give, so rules, the twin and the summaries never take it for a measurement.
/// </summary>
/// <param name="Oid">Status column OID (no instance suffix).</param>
/// <param name="Values">The status codes under which the row's value is a reading.</param>
public sealed record ColumnRowStatus(string Oid, IReadOnlyList<long> Values)
{
    /// <summary>True when a row with this status code holds a reading.</summary>
    public bool IsReading(double code)
    {
        // A list, not a set: a handful of codes, searched without hashing or allocating.
        for (var i = 0; i < Values.Count; i++)
        {
            if (Values[i] == code)
            {
                return true;
            }
        }
        return false;
    }
}
