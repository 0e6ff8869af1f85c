using System.Globalization;

namespace EdgeTwin.Simulator.Faults;

public enum FaultKind
{
    CoolingStop,
    CoolingFanFail,
    CoolingRestore,
    PduOverload,
    PduClear,
    UtilityFail,
    UtilityRestore,
    MachineStop,
    MachineStart,
    MachineWear,
    /// <summary>Power on a rack's servers that shut down on over-temperature.</summary>
    RackRestart,
    DeviceDark,
    DeviceSlow,
    DeviceGarble,
    DeviceOk,
    /// <summary>A rack's inlet probe (device probe-RACK) loses its connection to its card.</summary>
    ProbeLost,
    /// <summary>The card's high temperature threshold of a rack's probe set to ARG °C (its critical threshold 5 K above).</summary>
    ProbeThreshold,
    /// <summary>A rack's probe connected again with the default thresholds.</summary>
    ProbeOk,
}

/// <summary>
/// One fault to inject, optionally at a time after the start: <c>KIND:TARGET[:ARG][@WHEN]</c>, e.g.
/// <c>cooling-stop:crac1@60s</c>, <c>pdu-overload:pdu-a01-a:5</c>, <c>device-slow:ups1:800ms</c>,
/// <c>device-garble:crac2:0.3</c>, <c>machine-wear:m1:0.95</c>, <c>probe-lost:A01</c>, <c>probe-threshold:A01:20</c>.
/// </summary>
public sealed record FaultCommand(FaultKind Kind, string Target, double? Argument = null, TimeSpan? Delay = null, TimeSpan? At = null)
{
    private static readonly Dictionary<string, FaultKind> Names = new(StringComparer.OrdinalIgnoreCase)
    {
        ["cooling-stop"] = FaultKind.CoolingStop,
        ["cooling-fan-fail"] = FaultKind.CoolingFanFail,
        ["cooling-restore"] = FaultKind.CoolingRestore,
        ["pdu-overload"] = FaultKind.PduOverload,
        ["pdu-clear"] = FaultKind.PduClear,
        ["utility-fail"] = FaultKind.UtilityFail,
        ["utility-restore"] = FaultKind.UtilityRestore,
        ["machine-stop"] = FaultKind.MachineStop,
        ["machine-start"] = FaultKind.MachineStart,
        ["machine-wear"] = FaultKind.MachineWear,
        ["rack-restart"] = FaultKind.RackRestart,
        ["device-dark"] = FaultKind.DeviceDark,
        ["device-slow"] = FaultKind.DeviceSlow,
        ["device-garble"] = FaultKind.DeviceGarble,
        ["device-ok"] = FaultKind.DeviceOk,
        ["probe-lost"] = FaultKind.ProbeLost,
        ["probe-threshold"] = FaultKind.ProbeThreshold,
        ["probe-ok"] = FaultKind.ProbeOk,
    };

    public static IReadOnlyCollection<string> KindNames => Names.Keys;

    public static FaultCommand Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        TimeSpan? at = null;
        var body = text.Trim();
        var atIndex = body.LastIndexOf('@');
        if (atIndex >= 0)
        {
            at = ParseDuration(body[(atIndex + 1)..], text);
            body = body[..atIndex];
        }

        var parts = body.Split(':');
        if (parts.Length < 2 || parts.Length > 3 || string.IsNullOrWhiteSpace(parts[1]))
        {
            throw new FormatException($"fault '{text}': expected KIND:TARGET[:ARG][@WHEN]");
        }

        if (!Names.TryGetValue(parts[0], out var kind))
        {
            throw new FormatException($"fault '{text}': unknown kind '{parts[0]}' (known: {string.Join(", ", Names.Keys)})");
        }

        double? argument = null;
        TimeSpan? delay = null;
        if (parts.Length == 3)
        {
            if (kind == FaultKind.DeviceSlow)
            {
                delay = ParseDuration(parts[2], text);
            }
            else if (double.TryParse(parts[2], NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                argument = value;
            }
            else
            {
                throw new FormatException($"fault '{text}': argument '{parts[2]}' is not a number");
            }
        }

        if (kind == FaultKind.DeviceSlow && delay is null)
        {
            throw new FormatException($"fault '{text}': device-slow needs a delay, e.g. device-slow:{parts[1]}:800ms");
        }

        if (kind == FaultKind.MachineWear && argument is not (>= 0 and <= 1))
        {
            throw new FormatException($"fault '{text}': machine-wear needs a wear between 0 and 1");
        }

        if (kind == FaultKind.ProbeThreshold && argument is not (>= -50 and <= 100))
        {
            throw new FormatException($"fault '{text}': probe-threshold needs a temperature in °C, e.g. probe-threshold:{parts[1]}:20");
        }

        if (kind == FaultKind.DeviceGarble && argument is < 0 or > 1)
        {
            throw new FormatException($"fault '{text}': device-garble probability must be between 0 and 1");
        }

        return new FaultCommand(kind, parts[1], argument, delay, at);
    }

    /// <summary>Parses <c>500ms</c>, <c>10s</c>, <c>5m</c>, <c>1h</c>, <c>7d</c> (the config's duration format).</summary>
    public static TimeSpan ParseDuration(string text, string context)
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = text.Trim();
        var (unit, factor) = t.EndsWith("ms", StringComparison.Ordinal) ? ("ms", 0.001)
            : t.EndsWith('s') ? ("s", 1.0)
            : t.EndsWith('m') ? ("m", 60.0)
            : t.EndsWith('h') ? ("h", 3600.0)
            : t.EndsWith('d') ? ("d", 86400.0)
            : (string.Empty, 1.0);
        if (unit.Length == 0
            || !double.TryParse(t[..^unit.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
            || value < 0)
        {
            throw new FormatException($"'{context}': '{text}' is not a duration like 500ms, 10s, 5m, 1h");
        }

        return TimeSpan.FromSeconds(value * factor);
    }

    public override string ToString()
    {
        var name = Names.First(n => n.Value == Kind).Key;
        var arg = Delay is { } d ? $":{d.TotalMilliseconds.ToString(CultureInfo.InvariantCulture)}ms"
            : Argument is { } a ? ":" + a.ToString(CultureInfo.InvariantCulture) : string.Empty;
        var when = At is { } w ? $"@{w.TotalSeconds.ToString(CultureInfo.InvariantCulture)}s" : string.Empty;
        return $"{name}:{Target}{arg}{when}";
    }
}
