using System.Globalization;
using System.Text;
using EdgeTwin.Core.Config;
using EdgeTwin.Simulator.Devices;

namespace EdgeTwin.Simulator.Line;

/// <summary>
/// The <c>line:</c> section an operator would write for the simulated line: stations and buffers as built, the
/// nameplate cycle times, rounded failure figures as a maintenance department would state them (the twin learns
/// the real ones), the PackML state map, and each station's PLC device. The hidden speed loss, noise, jams and
/// tool wear are not in it.
/// </summary>
public static class SimLineConfig
{
    /// <summary>The PackML → line-twin state map of the simulated PLCs.</summary>
    public const string StateMap = "{ 6: running, 4: idle, 5: starved, 11: faulted, 9: faulted, 15: setup, 2: planned_stop }";

    /// <summary>Device id of one lamp of a station's stack light (profile <c>generic-stack-light</c>, e.g. <c>light-s3-red</c>).</summary>
    public static string LampDevice(string stationId, SimLamp lamp)
    {
        ArgumentNullException.ThrowIfNull(stationId);
        return $"light-{stationId.ToLowerInvariant()}-{lamp.ToString().ToLowerInvariant()}";
    }

    /// <summary>
    /// The section as a config mapping (what <c>SiteConfig.Sections["line"]</c> holds for a loaded file). Stations in
    /// <paramref name="stackLightStations"/> give their state through their stack light's lamps (devices
    /// <see cref="LampDevice"/>) instead of the PLC's state word; their part counters still come from the PLC.
    /// </summary>
    public static ConfigMapping Section(SimLineSpec spec, IReadOnlyCollection<string>? stackLightStations = null)
    {
        var diagnostics = new ConfigDiagnostics();
        var root = YamlTree.Parse(Yaml(spec, SimDevicePlan.LineStationDevice, stackLightStations), "simulated-line.yaml", diagnostics) as ConfigMapping;
        return diagnostics.IsEmpty && root?["line"] is ConfigMapping line
            ? line
            : throw new InvalidOperationException("simulated line section: " + string.Join("; ", diagnostics.Sorted()));
    }

    /// <summary>Path of the simulated line's base quality model, relative to a models directory.</summary>
    public const string QualityModelFile = "models/line-quality/sim-line-quality.json";

    /// <summary>
    /// The simulated line's quality model (<see cref="QualityModelFile"/>): beside the binary, in the working directory, or
    /// in a parent of either (a source checkout); null when not found (the section then has no <c>quality:</c> block).
    /// </summary>
    public static string? FindQualityModel()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var p = Path.Combine(dir.FullName, QualityModelFile);
                if (File.Exists(p))
                {
                    return p;
                }
            }
        }

        return null;
    }

    /// <param name="deviceFor">Device id of a station's PLC.</param>
    /// <param name="stackLightStations">Stations whose state comes from a stack light (see <see cref="Section"/>).</param>
    /// <param name="qualityModel">
    /// The quality model file for the stations with tool wear (the drift behind rejects); default <see cref="FindQualityModel"/>.
    /// Written as an absolute path so the section works wherever the config is written.
    /// </param>
    public static string Yaml(SimLineSpec spec, Func<string, string> deviceFor, IReadOnlyCollection<string>? stackLightStations = null, string? qualityModel = null)
    {
        qualityModel ??= FindQualityModel();
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(deviceFor);
        var b = new StringBuilder();
        var minCycle = spec.Stations.Min(s => s.IdealCycleSeconds);
        b.AppendLine("line:");
        b.AppendLine(Inv($"  id: {spec.Id}"));
        // The forecast's tick: an eighth of the shortest cycle, so cycle times round by at most ~6 %.
        b.AppendLine(Inv($"  tick: {Ms(Math.Max(0.05, minCycle / 8))}"));
        b.AppendLine(Inv($"  margin_per_unit: {spec.MarginPerUnit}"));
        b.AppendLine(Inv($"  micro_stop: {Ms(spec.MicroStopLimitSeconds)}"));
        b.AppendLine("  shift: { length: 8h, starts: [\"06:00\", \"14:00\", \"22:00\"] }");
        b.AppendLine("  buffers:");
        for (var i = 0; i < spec.BufferCapacities.Count; i++)
        {
            // Buffer i feeds station i + 1, whose PLC counts the parts waiting at its infeed.
            b.AppendLine(Inv($"    - {{ id: B{i + 1}, capacity: {spec.BufferCapacities[i]}, level: {{ device: {deviceFor(spec.Stations[i + 1].Id)}, metric: infeed_level }} }}"));
        }

        b.AppendLine("  stations:");
        for (var i = 0; i < spec.Stations.Count; i++)
        {
            var s = spec.Stations[i];
            var device = deviceFor(s.Id);
            b.AppendLine(Inv($"    - id: {s.Id}"));
            if (s.Machine is not null)
            {
                b.AppendLine(Inv($"      machine: {s.Machine}"));
            }

            b.AppendLine(Inv($"      ideal_cycle_time: {Ms(s.IdealCycleSeconds)}"));
            if (s.MtbfSeconds > 0)
            {
                // Stated figures: rounded to whole minutes (at least one), as a maintenance log would give them.
                b.AppendLine(Inv($"      mtbf: {Math.Max(1, Math.Round(s.MtbfSeconds / 60))}m"));
                b.AppendLine(Inv($"      mttr: {Math.Max(1, Math.Round(s.MttrSeconds / 60))}m"));
            }

            b.AppendLine("      cycle_time_cv: 0.1");
            if (s.ToolLifeParts == 0)
            {
                // A stated scrap rate, as a quality log would give it (a worn tool's station has its model instead).
                b.AppendLine(Inv($"      reject_rate: {Math.Round(s.RejectBase, 3)}"));
            }
            if (i > 0)
            {
                b.AppendLine(Inv($"      inputs: [B{i}]"));
            }

            if (i < spec.Stations.Count - 1)
            {
                b.AppendLine(Inv($"      output: B{i + 1}"));
            }

            b.AppendLine("      signals:");
            if (stackLightStations?.Contains(s.Id) == true)
            {
                b.AppendLine(Inv($"        stack_light: {{ red: {LampDevice(s.Id, SimLamp.Red)}, amber: {LampDevice(s.Id, SimLamp.Amber)}, green: {LampDevice(s.Id, SimLamp.Green)} }}"));
            }
            else
            {
                b.AppendLine(Inv($"        state: {{ device: {device}, metric: machine_state, map: {StateMap} }}"));
            }

            b.AppendLine(Inv($"        good: {{ device: {device}, metric: good_parts }}"));
            b.AppendLine(Inv($"        reject: {{ device: {device}, metric: reject_parts }}"));
            if (s.ToolLifeParts > 0 && qualityModel is not null)
            {
                // Inputs in the model's order (models/line-quality/train_sim_quality.py): temperature, pressure.
                b.AppendLine("      quality:");
                b.AppendLine(Inv($"        model: \"{Path.GetFullPath(qualityModel).Replace("\\", "/", StringComparison.Ordinal)}\""));
                b.AppendLine(Inv($"        inputs: [{{ device: {device}, metric: process_temperature }}, {{ device: {device}, metric: process_pressure }}]"));
            }
        }

        return b.ToString();
    }

    private static string Ms(double seconds) => Inv($"{Math.Max(1, Math.Round(seconds * 1000)):0}ms");

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
