using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using EdgeTwin.Core.Config;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Twin.Scenarios;
using EdgeTwin.Twin.Thermal;

namespace EdgeTwin.Agent.Twin.Thermal;

/// <summary>
/// Where the <c>simulate</c>/<c>optimize</c> commands get their twin: a site config (<c>--config</c> or <c>--site</c>) plus
/// recorded history (<c>--history CSV</c>), or with <c>--demo-seed N</c> a generated simulated site whose 24 h of normal
/// telemetry is simulated here (nothing leaves the process). Either way the twin is calibrated before the what-if runs.
/// </summary>
internal sealed class TwinCliSource
{
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        // What-if answers go to the centre (twin requests over MQTT) as well as to the terminal: printable ASCII as it
        // is, like every other body on the wire (the default encoder wrote "rack-A+B" as "rack-A\u002BB").
        Encoder = EdgeTwin.Core.Events.WireJsonEncoder.Instance,
    };

    public Option<FileInfo?> Config { get; } = new("--config", "-c") { Description = "Site config file (YAML): rooms, racks, cooling units, power chain." };

    public Option<FileInfo?> Site { get; } = new("--site") { Description = "Same as --config (for replaying an export with its site file)." };

    public Option<FileInfo?> History { get; } = new("--history") { Description = "Recorded telemetry: CSV timestamp,series,value with role-named series (see src/EdgeTwin.Twin/Thermal/README.md)." };

    public Option<int?> DemoSeed { get; } = new("--demo-seed") { Description = "No site or history: generate a simulated site from this seed and calibrate on 24 simulated hours." };

    public Option<int> DemoRacks { get; } = new("--demo-racks") { Description = "Racks of the --demo-seed site.", DefaultValueFactory = _ => 20 };

    public Option<double> ShutdownInlet { get; } = new("--shutdown-inlet") { Description = "Inlet temperature (°C) at which servers shut themselves down.", DefaultValueFactory = _ => 40 };

    public Option<bool> JsonOutput { get; } = new("--json") { Description = "Print JSON for scripts." };

    /// <summary>The frames per zone the last <see cref="Load"/> calibrated from (the history, or the simulated day).</summary>
    public IReadOnlyList<IReadOnlyList<ZoneFrame>> LastFrames { get; private set; } = [];

    public void AddTo(Command command)
    {
        command.Options.Add(Config);
        command.Options.Add(Site);
        command.Options.Add(History);
        command.Options.Add(DemoSeed);
        command.Options.Add(DemoRacks);
        command.Options.Add(ShutdownInlet);
        command.Options.Add(JsonOutput);
    }

    /// <summary>Loads and calibrates the twin; on a problem prints it (with file, line and column) and returns null.</summary>
    public SiteTwin? Load(ParseResult parse, TextWriter error, string command)
    {
        var settings = new ThermalSettings { ShutdownInletC = parse.GetValue(ShutdownInlet) };
        var siteFile = parse.GetValue(Config) ?? parse.GetValue(Site);
        var history = parse.GetValue(History);
        if (siteFile is null)
        {
            if (parse.GetValue(DemoSeed) is not { } seed)
            {
                error.WriteLine($"{command}: give --config FILE (or --site FILE) with --history CSV, or --demo-seed N for a simulated site");
                return null;
            }

            return Demo(seed, Math.Max(2, parse.GetValue(DemoRacks)), settings);
        }

        // The config first: a mistyped path was answered "--history CSV is required with site.yaml", as if it existed.
        var loaded = Cli.AgentConfigFile.LoadSite(siteFile.FullName);
        if (!loaded.IsValid)
        {
            foreach (var p in loaded.Problems)
            {
                error.WriteLine(p.ToString());
            }

            error.WriteLine($"{command}: {siteFile} is not a valid site config");
            return null;
        }

        if (history is null)
        {
            error.WriteLine($"{command}: --history CSV is required with {siteFile.FullName}: the twin is calibrated from recorded telemetry (the running agent publishes its live results as events)");
            return null;
        }

        var topology = loaded.Config!.Site;
        var zones = ThermalZone.FromTopology(topology);
        if (zones.Count == 0 || zones.All(z => z.Racks.Count == 0))
        {
            error.WriteLine($"{command}: {siteFile}: the site has no rooms with racks (site.rooms[].rows[].racks)");
            return null;
        }

        if (!history.Exists)
        {
            error.WriteLine($"{command}: history file {history.FullName} does not exist");
            return null;
        }

        ThermalHistory data;
        try
        {
            data = HistoryCsv.Read(history.FullName, zones);
        }
        catch (HistoryCsvException e)
        {
            foreach (var p in e.Problems)
            {
                error.WriteLine(p);
            }

            error.WriteLine($"{command}: {e.Problems.Count} problem(s) in {history.Name}");
            return null;
        }

        LastFrames = data.Frames;
        var models = zones.Select((z, k) => ThermalCalibrator.Calibrate(z, data.Frames[k], settings)).ToList();
        var now = data.Frames.Select((f, k) => f.Count > 0 ? f[^1] : new ZoneFrame(0, zones[k].Racks.Count, zones[k].Units.Count)).ToList();
        // The site's own mitigation lead times, as the running agent plans with them (the section was checked with the config).
        return new SiteTwin(topology, models, now, data.Power) { MitigationLeads = ThermalTwinConfig.From(loaded.Config!).Twin.MitigationLeads };
    }

    private SiteTwin Demo(int seed, int racks, ThermalSettings settings)
    {
        var spec = SiteGenerator.Generate(new SiteGenerationOptions { Seed = seed, Racks = racks, CoolingUnits = Math.Max(1, racks / 8), RacksPerRow = 10 });
        var plant = new SimulatedThermalPlant(spec);
        var frames = new List<ZoneFrame>(8640);
        ZoneFrame? last = null;
        for (var k = 0; k < 8640; k++)
        {
            plant.Step(TimeSpan.FromSeconds(10));
            var f = plant.Read();
            if (last is not null)
            {
                f.FillFrom(last);
            }

            frames.Add(f);
            last = f;
        }

        LastFrames = [frames];
        var model = ThermalCalibrator.Calibrate(plant.Zone, frames, settings with { ShutdownInletC = spec.ThermalShutdownInletC });
        return new SiteTwin(plant.Topology, [model], [frames[^1]]);
    }

    public static string Minutes(double? seconds) => seconds is { } s ? s < 120 ? $"{s:0} s" : $"{s / 60:0.0} min" : "-";
}
