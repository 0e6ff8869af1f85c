using System.Globalization;
using EdgeTwin.Twin.Power;

namespace EdgeTwin.Twin.Thermal;

/// <summary>A malformed history file: every problem with its line and column (1-based).</summary>
public sealed class HistoryCsvException(IReadOnlyList<string> problems)
    : FormatException(string.Join(Environment.NewLine, problems))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}

/// <summary>Telemetry read from a history CSV, as frames per zone (oldest first) and the last power readings.</summary>
public sealed record ThermalHistory(IReadOnlyList<IReadOnlyList<ZoneFrame>> Frames, PowerReadings Power, int Rows, int EmptyValues);

/// <summary>
/// Reads <c>timestamp,series,value</c> history (an export of the agent's samples, or any recorder's) for the offline
/// twin. Timestamps are ISO 8601 or Unix seconds; series are named by role (<c>rack/R01/inlet_temperature</c>; every role
/// in Thermal/README.md). An empty value is a missing reading (held from the previous one); anything else that does
/// not parse is an error naming file, line and column. Rows with the same timestamp form one frame.
/// </summary>
public static class HistoryCsv
{
    private const int MaxProblems = 50;

    public static ThermalHistory Read(string path, IReadOnlyList<ThermalZone> zones)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var reader = new StreamReader(path);
        return Read(reader, zones, Path.GetFileName(path));
    }

    public static ThermalHistory Read(TextReader reader, IReadOnlyList<ThermalZone> zones, string file = "history.csv")
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(zones);
        var racks = new Dictionary<string, (int Zone, int Index)>(StringComparer.Ordinal);
        var units = new Dictionary<string, (int Zone, int Index)>(StringComparer.Ordinal);
        for (var z = 0; z < zones.Count; z++)
        {
            for (var i = 0; i < zones[z].Racks.Count; i++)
            {
                racks[zones[z].Racks[i].Id] = (z, i);
            }

            for (var j = 0; j < zones[z].Units.Count; j++)
            {
                units[zones[z].Units[j].Id] = (z, j);
            }
        }

        var problems = new List<string>();
        var rows = new List<(double Time, string Kind, string Id, string Quantity, string? Index, double Value, int Line)>();
        var empty = 0;
        var lineNumber = 0;
        string? line;
        while ((line = reader.ReadLine()) is not null)
        {
            lineNumber++;
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var fields = line.Split(',');
            if (lineNumber == 1 && fields.Length == 3 && fields[0].Trim().Equals("timestamp", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            void Problem(int column, string message)
            {
                if (problems.Count < MaxProblems)
                {
                    problems.Add($"{file}:{lineNumber}:{column}: {message}");
                }
            }

            if (fields.Length != 3)
            {
                Problem(1, $"expected 3 columns (timestamp,series,value), found {fields.Length}");
                continue;
            }

            var columnSeries = fields[0].Length + 2;
            var columnValue = columnSeries + fields[1].Length + 1;
            if (!TryTime(fields[0].Trim(), out var time))
            {
                Problem(1, $"timestamp '{fields[0].Trim()}' is neither ISO 8601 nor Unix seconds");
                continue;
            }

            var parts = fields[1].Trim().Split('/');
            if (parts.Length is < 3 or > 4 || parts.Any(p => p.Length == 0))
            {
                Problem(columnSeries, $"series '{fields[1].Trim()}' is not kind/id/quantity (e.g. rack/R01/inlet_temperature)");
                continue;
            }

            var (kind, id, quantity) = (parts[0], parts[1], parts[2]);
            var known = (kind, quantity) switch
            {
                ("rack", "inlet_temperature" or "outlet_temperature" or "power") => racks.ContainsKey(id) ? null : $"rack '{id}' is not in the site",
                ("cooling", "supply_temperature" or "return_temperature" or "fan_speed" or "running") => units.ContainsKey(id) ? null : $"cooling unit '{id}' is not in the site",
                ("pdu", "phase_current") => parts.Length == 4 ? null : "pdu phase_current needs a phase: pdu/ID/phase_current/1",
                ("pdu", "power") => null,
                ("ups", "battery_charge" or "runtime" or "output_power" or "battery_energy") => null,
                _ => $"unknown role '{kind}/…/{quantity}' (see Thermal/README.md for the roles)",
            };
            if (known is not null)
            {
                Problem(columnSeries, known);
                continue;
            }

            var text = fields[2].Trim();
            if (text.Length == 0)
            {
                empty++;
                continue;
            }

            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value))
            {
                Problem(columnValue, $"value '{text}' is not a number");
                continue;
            }

            rows.Add((time, kind, id, quantity, parts.Length == 4 ? parts[3] : null, value, lineNumber));
        }

        if (problems.Count > 0)
        {
            throw new HistoryCsvException(problems);
        }

        if (rows.Count == 0)
        {
            throw new HistoryCsvException([$"{file}: no readings"]);
        }

        rows.Sort((a, b) => a.Time.CompareTo(b.Time));
        var t0 = rows[0].Time;
        var frames = zones.Select(_ => new List<ZoneFrame>()).ToList();
        var power = new PowerReadings();
        var phases = new Dictionary<string, SortedDictionary<int, double>>(StringComparer.Ordinal);
        var rackPowerAt = new Dictionary<string, double>(StringComparer.Ordinal);
        var k = 0;
        while (k < rows.Count)
        {
            var time = rows[k].Time;
            var current = zones.Select(z => new ZoneFrame(time - t0, z.Racks.Count, z.Units.Count)).ToArray();
            var running = zones.Select(z => new bool?[z.Units.Count]).ToArray();
            for (; k < rows.Count && rows[k].Time == time; k++)
            {
                var r = rows[k];
                switch (r.Kind)
                {
                    case "rack":
                        var (rz, ri) = racks[r.Id];
                        var target = r.Quantity switch { "inlet_temperature" => current[rz].RackInletC, "outlet_temperature" => current[rz].RackOutletC, _ => current[rz].RackPowerKw };
                        target[ri] = r.Value;
                        if (r.Quantity == "power")
                        {
                            rackPowerAt[r.Id] = r.Time;
                        }

                        break;
                    case "cooling":
                        var (uz, uj) = units[r.Id];
                        switch (r.Quantity)
                        {
                            case "supply_temperature": current[uz].UnitSupplyC[uj] = r.Value; break;
                            case "return_temperature": current[uz].UnitReturnC[uj] = r.Value; break;
                            case "fan_speed": current[uz].UnitFanSpeed[uj] = r.Value > 1.5 ? r.Value / 100 : r.Value; break;
                            default: running[uz][uj] = r.Value >= 0.5; break;
                        }

                        break;
                    case "pdu" when r.Quantity == "phase_current":
                        if (!phases.TryGetValue(r.Id, out var p))
                        {
                            phases[r.Id] = p = [];
                        }

                        p[int.TryParse(r.Index, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : p.Count + 1] = r.Value;
                        break;
                    case "ups":
                        var b = power.UpsBatteries.GetValueOrDefault(r.Id) ?? new UpsBattery(double.NaN, double.NaN, double.NaN);
                        power.UpsBatteries[r.Id] = r.Quantity switch
                        {
                            "battery_charge" => b with { ChargePercent = r.Value },
                            "runtime" => b with { RuntimeMinutes = r.Value },
                            "output_power" => b with { AtLoadKw = r.Value },
                            _ => b with { BatteryKwh = r.Value },
                        };
                        break;
                    default:
                        break;
                }
            }

            for (var z = 0; z < zones.Count; z++)
            {
                var previous = frames[z].Count > 0 ? frames[z][^1] : null;
                for (var j = 0; j < zones[z].Units.Count; j++)
                {
                    current[z].UnitRunning[j] = running[z][j] ?? previous?.UnitRunning[j] ?? true;
                    current[z].UnitStateRead[j] = running[z][j] is not null || previous?.UnitStateRead[j] == true;
                }

                current[z].DropImplausiblePower(zones[z].Racks);
                if (previous is not null)
                {
                    current[z].FillFrom(previous);
                }

                frames[z].Add(current[z]);
            }
        }

        foreach (var (id, p) in phases)
        {
            power.PduPhaseCurrentA[id] = [.. p.Values];
        }

        // A rack's power is held from its last reading; how old that is decides whether it is still its load.
        foreach (var (id, at) in rackPowerAt)
        {
            power.RackReadingAgeS[id] = rows[^1].Time - at;
        }

        return new ThermalHistory([.. frames.Select(f => (IReadOnlyList<ZoneFrame>)f)], power, rows.Count, empty);
    }

    private static bool TryTime(string text, out double seconds)
    {
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out seconds) && double.IsFinite(seconds))
        {
            return true;
        }

        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t))
        {
            seconds = t.ToUnixTimeMilliseconds() / 1000.0;
            return true;
        }

        return false;
    }
}
