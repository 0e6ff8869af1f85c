using System.Collections.Concurrent;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.Twin.Models;
using EdgeTwin.Agent.Twin.Thermal;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.IntegrationTests.Agent;
using EdgeTwin.IntegrationTests.Deployment;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Twin.Models;
using EdgeTwin.Twin.Models.Maintenance;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.IntegrationTests.Twin;

/// <summary>
/// The agent's maintenance stage, built by <c>AddMaintenance()</c> from DI with the committed machine-health model,
/// fed with the samples of simulated machines in accelerated time (days of bearing wear in seconds) and publishing
/// through a real event hub.
/// </summary>
public sealed class MaintenanceStageTests
{
    private static readonly TimeSpan SamplePeriod = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_degrading_machine_raises_one_prediction_a_day_or_more_before_failure_and_a_healthy_one_none()
    {
        var run = await RunAsync(costModel: null);
        Assert.NotNull(run.FailureAt);
        var prediction = Assert.Single(run.Events, IsRaised);
        // Later messages are updates of the same fault (worse), never a new prediction.
        Assert.All(run.Events.Where(e => !IsRaised(e)), e => Assert.Equal(("updated", prediction.Attributes!["prediction_id"]), (e.Attributes!["state"], e.Attributes["prediction_id"])));
        Assert.Equal(EdgeEventKind.Prediction, prediction.Kind);
        Assert.Equal("d1", prediction.Source);
        Assert.True(run.FailureAt!.Value - prediction.Time >= TimeSpan.FromHours(24), $"prediction at {prediction.Time:O}, failure at {run.FailureAt:O}");
        var a = prediction.Attributes!;
        Assert.Equal("d1", a["machine"]);
        Assert.InRange(double.Parse(a["failure_probability"], System.Globalization.CultureInfo.InvariantCulture), 0.7, 1);
        var eta = DateTimeOffset.Parse(a["estimated_failure_time"], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(eta > prediction.Time && eta < run.FailureAt.Value + TimeSpan.FromHours(48), $"eta {eta:O}");
        Assert.Equal("replace drive-end bearing", a["recommended_action"]);
        Assert.Equal("6.0", a["expected_downtime_hours"]);
        Assert.Equal("6.0", a["estimated_downtime"]);
        Assert.Equal("7200", a["cost"]);
        Assert.Equal("7200", a["cost_of_unplanned_failure"]);
        Assert.Equal("config", a["cost_source"]);
        Assert.Equal("bearing-rul", a["model"]);
    }

    [Fact]
    public async Task A_cooling_units_blower_is_predicted_from_the_transmitter_located_on_the_unit_and_a_healthy_one_is_not()
    {
        var fans = new SimulatedMachines(fans: true);
        await using var agent = await MaintenanceAgent.StartAsync(fans, null, statePath: null, onCoolingUnits: true);
        await agent.FeedAsync(1, Steps);
        await agent.Hub.CompleteAsync(Ct);

        Assert.NotNull(fans.FailureAt);
        var prediction = Assert.Single(agent.Events, IsRaised);
        Assert.Equal("d1", prediction.Attributes!["machine"]);
        Assert.True(fans.FailureAt!.Value - prediction.Time >= TimeSpan.FromHours(24), $"prediction at {prediction.Time:O}, failure at {fans.FailureAt:O}");
        Assert.DoesNotContain(agent.Events, e => e.Attributes!["machine"] == "h1");
    }

    /// <summary>
    /// A blower about to fail in a room whose other units carry the load can wait for next week's window; one without
    /// which racks reach 32 °C in minutes cannot. The prediction said neither: with the thermal twin in the agent it
    /// now carries the unit's what-if, the same answer `edgetwin simulate cooling-failure` gives on the same twin.
    /// </summary>
    [Fact]
    public async Task A_cooling_units_blower_prediction_says_what_its_failure_would_do_to_the_room()
    {
        var spec = SiteGenerator.Generate(new SiteGenerationOptions { Seed = 7, Racks = 12, CoolingUnits = 2, RacksPerRow = 6, Start = DateTimeOffset.UtcNow });
        var (failing, healthy) = (spec.CoolingUnits[0].Id, spec.CoolingUnits[1].Id);
        var fans = new SimulatedMachines(fans: true, ids: (failing, healthy));
        await using var agent = await MaintenanceAgent.StartAsync(fans, null, statePath: null, thermalSite: spec);
        Assert.IsType<ThermalFailureConsequence>(agent.Stage.ConsequenceModel);
        await agent.FeedAsync(1, Steps);
        await agent.Hub.CompleteAsync(Ct);

        var prediction = Assert.Single(agent.Events, IsRaised);
        var a = prediction.Attributes!;
        Assert.Equal(failing, a["machine"]);
        Assert.Equal("thermal-twin:" + spec.Room.Id, a["consequence_source"]);
        Assert.Equal("true", a["if_failed_known"]);
        // Through the unit's 6 h repair (models.maintenance.machines' downtime_hours).
        Assert.Equal("360", a["if_failed_horizon_min"]);
        Assert.StartsWith($"if {failing} stops for its 6 h repair: ", a["if_failed"], StringComparison.Ordinal);
        Assert.EndsWith("; " + a["if_failed"], prediction.Message, StringComparison.Ordinal);

        // The operator's own what-if on the same twin: the same racks, the same first crossing.
        var thermal = agent.Services.GetRequiredService<ThermalTwinStage>();
        var whatIf = Assert.Single(EdgeTwin.Agent.Twin.Requests.TwinScenarios.CoolingFailure(thermal.CurrentTwin(out _)!, [failing], 360, []));
        Assert.Equal(string.Join(',', whatIf.AffectedRacks), a["if_failed_affected_racks"]);
        var first32 = whatIf.Racks.Where(r => r.TimeTo32Seconds is not null).MinBy(r => r.TimeTo32Seconds);
        Assert.Equal(first32?.Rack, a.GetValueOrDefault("if_failed_first_rack_32c"));
        Assert.Equal(first32 is null ? null : (first32.TimeTo32Seconds!.Value / 60).ToString("0.#", System.Globalization.CultureInfo.InvariantCulture), a.GetValueOrDefault("if_failed_time_to_32c_min"));

        // With its repair time known, when to do it: the operator's cooling-maintenance-window on the same twin.
        var window = Assert.Single(EdgeTwin.Agent.Twin.Requests.TwinScenarios.CoolingWindow(thermal.CurrentTwin(out _)!, [failing], 360, 60, 24));
        Assert.Equal((window.Best.StartInSeconds / 3600).ToString("0.#", System.Globalization.CultureInfo.InvariantCulture), a["repair_window_best_start_in_h"]);
        Assert.Equal(window.Best.Holds ? "true" : "false", a["repair_window_holds"]);
        Assert.Equal($"{window.Candidates.Count(c => c.Holds)}/25", a["repair_window_starts_holding"]);
        var start = DateTimeOffset.Parse(a["repair_window_best_start"], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(start - DateTimeOffset.UtcNow, TimeSpan.FromSeconds(window.Best.StartInSeconds) - TimeSpan.FromMinutes(10), TimeSpan.FromSeconds(window.Best.StartInSeconds) + TimeSpan.FromMinutes(1));
        Assert.Contains("; for the repair: " + (window.Best.Holds ? $"best start for {failing} stopped for 6 h: in " : $"no start within 24 h keeps every rack below 32 °C with {failing} stopped for 6 h"), a["if_failed"], StringComparison.Ordinal);
        Assert.Contains($" ({start:HH:mm} UTC)", a["if_failed"], StringComparison.Ordinal);
        TestContext.Current.TestOutputHelper?.WriteLine(prediction.Message);

        // The planner's `edgetwin maintenance status` says it too, for the open prediction only, asked at that moment.
        var lines = EdgeTwin.Agent.Cli.MaintenanceStatusCommand.Lines(StatusJson(agent.Stage)).ToList();
        Assert.EndsWith("; " + a["if_failed"], Assert.Single(lines, l => l.StartsWith(failing + ":", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.EndsWith("; no prediction open", Assert.Single(lines, l => l.StartsWith(healthy + ":", StringComparison.Ordinal)), StringComparison.Ordinal);
    }

    [Fact]
    public void A_room_with_one_cooling_unit_names_the_racks_that_overheat_without_it_and_how_soon()
    {
        var spec = SiteGenerator.Generate(new SiteGenerationOptions { Seed = 7, Racks = 12, CoolingUnits = 1, RacksPerRow = 6, Start = DateTimeOffset.UtcNow });
        var config = EdgeTwin.Simulator.Devices.SimSiteConfig.Build(spec, [], TimeSpan.FromSeconds(10));
        using var stage = new ThermalTwinStage(config, new SeriesRegistry(), new EventHub(), Microsoft.Extensions.Logging.Abstractions.NullLogger<ThermalTwinStage>.Instance, ThermalTwinOptions.DemoWarmStart(spec));
        stage.Twin.Recalibrate(0);
        var unit = spec.CoolingUnits[0].Id;

        var model = new ThermalFailureConsequence(stage, Microsoft.Extensions.Logging.Abstractions.NullLogger<ThermalFailureConsequence>.Instance);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var consequence = model.IfFailed(unit, TimeSpan.Zero);
        var first = clock.Elapsed;
        clock.Restart();
        for (var i = 0; i < 5; i++)
        {
            model.IfFailed(unit, TimeSpan.Zero);
        }

        TestContext.Current.TestOutputHelper?.WriteLine($"what-if for the prediction: first {first.TotalMilliseconds:0} ms, then {clock.Elapsed.TotalMilliseconds / 5:0.0} ms mean of 5");
        Assert.DoesNotContain(consequence!.Attributes.Keys, k => k.StartsWith("repair_window_", StringComparison.Ordinal)); // no repair time, no window

        // With a 4 h repair the planner also gets when to do it; the search tries 25 starts of 4 h each.
        clock.Restart();
        var withRepair = model.IfFailed(unit, TimeSpan.FromHours(4))!;
        TestContext.Current.TestOutputHelper?.WriteLine($"what-if and repair window for the prediction: {clock.Elapsed.TotalMilliseconds:0} ms");
        var window = Assert.Single(EdgeTwin.Agent.Twin.Requests.TwinScenarios.CoolingWindow(stage.CurrentTwin(out _)!, [unit], 240, 60, 24));
        Assert.Equal(window.Best.Holds ? "true" : "false", withRepair.Attributes["repair_window_holds"]);
        Assert.Equal(window.Best.PeakInletC.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture), withRepair.Attributes["repair_window_best_peak_inlet_c"]);
        Assert.Contains("; for the repair: " + CoolingMaintenanceWindowText(window), withRepair.Summary, StringComparison.Ordinal);
        TestContext.Current.TestOutputHelper?.WriteLine(withRepair.Summary);

        Assert.NotNull(consequence);
        var whatIf = Assert.Single(EdgeTwin.Agent.Twin.Requests.TwinScenarios.CoolingFailure(stage.CurrentTwin(out _)!, [unit], 120, []));
        Assert.NotEmpty(whatIf.AffectedRacks);
        var first32 = whatIf.Racks.Where(r => r.TimeTo32Seconds is not null).MinBy(r => r.TimeTo32Seconds)!;
        var a = consequence.Attributes;
        Assert.Equal(string.Join(',', whatIf.AffectedRacks), a["if_failed_affected_racks"]);
        Assert.Equal(first32.Rack, a["if_failed_first_rack_32c"]);
        Assert.Equal((first32.TimeTo32Seconds!.Value / 60).ToString("0.#", System.Globalization.CultureInfo.InvariantCulture), a["if_failed_time_to_32c_min"]);
        Assert.StartsWith($"if {unit} stops: {first32.Rack} ", consequence.Summary, StringComparison.Ordinal);
        Assert.Contains($", {whatIf.AffectedRacks.Count} rack(s) affected ({first32.Rack}, ", consequence.Summary, StringComparison.Ordinal);
        if (whatIf.TimeToThermalShutdownSeconds is { } shutdown)
        {
            Assert.Equal((shutdown / 60).ToString("0.#", System.Globalization.CultureInfo.InvariantCulture), a["if_failed_time_to_thermal_shutdown_min"]);
        }

        TestContext.Current.TestOutputHelper?.WriteLine(consequence.Summary);
    }

    /// <summary>The window's sentence up to its first wall-clock time (which the prediction adds).</summary>
    private static string CoolingMaintenanceWindowText(EdgeTwin.Twin.Scenarios.CoolingWindowResult window)
    {
        var text = EdgeTwin.Twin.Scenarios.CoolingMaintenanceWindow.Describe(window, _ => "\u0001");
        return text[..text.IndexOf('\u0001', StringComparison.Ordinal)];
    }

    [Fact]
    public void Before_its_first_calibration_the_thermal_twin_says_it_does_not_know_yet_and_a_line_machine_gets_nothing()
    {
        var spec = SiteGenerator.Generate(new SiteGenerationOptions { Seed = 7, Racks = 12, CoolingUnits = 2, RacksPerRow = 6, Start = DateTimeOffset.UtcNow });
        var config = EdgeTwin.Simulator.Devices.SimSiteConfig.Build(spec, [], TimeSpan.FromSeconds(10));
        using var stage = new ThermalTwinStage(config, new SeriesRegistry(), new EventHub(), Microsoft.Extensions.Logging.Abstractions.NullLogger<ThermalTwinStage>.Instance);
        var model = new ThermalFailureConsequence(stage, Microsoft.Extensions.Logging.Abstractions.NullLogger<ThermalFailureConsequence>.Instance);

        var unit = spec.CoolingUnits[0].Id;
        var consequence = model.IfFailed(unit, TimeSpan.FromHours(4));
        Assert.NotNull(consequence);
        Assert.Equal("false", consequence.Attributes["if_failed_known"]);
        Assert.StartsWith($"if {unit} stops for its 4 h repair: not known yet (the thermal twin of zone '{spec.Room.Id}' is not calibrated yet", consequence.Summary, StringComparison.Ordinal);
        Assert.Null(model.IfFailed("m1", TimeSpan.FromHours(4)));
    }

    [Fact]
    public async Task Downtime_and_cost_come_from_the_cost_model_registered_in_DI()
    {
        var costModel = new FixedCostModel();
        var run = await RunAsync(costModel);
        var prediction = Assert.Single(run.Events, IsRaised);
        Assert.Same(costModel, run.Stage.CostModel);
        Assert.Equal("d1", costModel.Asked.Distinct().Single());
        Assert.Equal("2.5", prediction.Attributes!["estimated_downtime"]);
        Assert.Equal("4321", prediction.Attributes!["cost_of_unplanned_failure"]);
        Assert.Equal("line-twin:line1", prediction.Attributes!["cost_source"]);
    }

    [Fact]
    public void Regression_a_machine_without_vibration_or_bearing_series_was_counted_as_watched()
    {
        var b = new SiteConfigBuilder("s1", "g1");
        b.Line("line1").Machine("m1").Machine("m2").Machine("m3");
        b.Device(new DeviceConfig("drive1", "abb-acs580", DeviceAddress.Tcp("127.0.0.1", 15020)) { UnitId = 1, Location = new(Machine: "m1") });
        b.Device(new DeviceConfig("vib-m2", "generic-vibration-transmitter", DeviceAddress.Tcp("127.0.0.1", 15021)) { UnitId = 1, Location = new(Machine: "m2") });
        string[] profileIds = ["abb-acs580", "generic-vibration-transmitter"];
        var profiles = profileIds.ToDictionary(id => id, id => DeviceProfileLoader.LoadFileOrThrow(Path.Combine(AgentFiles.ProfilesDir, id + ".yaml")), StringComparer.Ordinal);
        var site = b.Build() with { Profiles = profiles };
        string[] machines = ["m1", "m2", "m3"];
        var figures = machines.ToDictionary(m => m, _ => new MachineCostFigures(6, 1200, "replace drive-end bearing"), StringComparer.Ordinal);
        var logs = new FakeLogCollector();
        using var catalog = new ModelCatalog(Path.Combine(Tool.RepoRoot(), "models"));
        catalog.Reload();

        using var stage = new MaintenanceStage(
            new AgentRuntime(site, new SeriesRegistry(), TimeProvider.System),
            new ModelsConfig(catalog.Directory, 0.7, TimeSpan.FromHours(48), figures),
            catalog,
            new FakeLogger<MaintenanceStage>(logs));

        var messages = logs.GetSnapshot().Select(r => (r.Level, r.Message)).ToList();
        Assert.Contains((LogLevel.Warning, "Maintenance: machine m1 has no vibration_rms, vibration_kurtosis, bearing_temperature series (devices located on it: drive1); model bearing-rul needs vibration_rms, vibration_kurtosis, bearing_temperature (by role or metric name), so no prediction can be raised for it"), messages);
        Assert.Contains(messages, m => m.Level == LogLevel.Warning && m.Message.StartsWith("Maintenance: machine m3 has no vibration_rms, vibration_kurtosis, bearing_temperature series (devices located on it: none)", StringComparison.Ordinal));
        Assert.DoesNotContain(messages, m => m.Message.StartsWith("Maintenance: machine m2", StringComparison.Ordinal));
        Assert.Contains((LogLevel.Information, "Maintenance: watching 1 of 3 configured machines with model bearing-rul (2 devices located on them)"), messages);

        // `maintenance status` says so too, not "no estimate yet" as if data were coming (seen on the sim's drive-only machines).
        var lines = EdgeTwin.Agent.Cli.MaintenanceStatusCommand.Lines(StatusJson(stage)).ToList();
        Assert.Equal("m1: cannot be predicted: no device located on it carries vibration_rms, vibration_kurtosis, bearing_temperature (the model needs all three; see the agent's log); no prediction open", lines[1]);
        Assert.StartsWith("m2: no estimate yet", lines[2], StringComparison.Ordinal);
        Assert.StartsWith("m3: cannot be predicted", lines[3], StringComparison.Ordinal);
    }

    private static System.Text.Json.JsonElement StatusJson(MaintenanceStage stage)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            stage.WriteStatus(w);
            w.WriteEndObject();
        }

        return System.Text.Json.JsonDocument.Parse(buffer.WrittenMemory).RootElement.Clone();
    }

    private static bool IsRaised(EdgeEvent e) => e.Attributes!["state"] == "raised";

    private static List<string> Describe(IEnumerable<EdgeEvent> events) =>
        [.. events.Select(e => $"{e.Time:O} {e.Attributes!["state"]} {e.Attributes["prediction_id"]} {e.Attributes["failure_probability"]} {e.Attributes["estimated_failure_time"]}")];

    /// <summary>
    /// The bearing of d1 is replaced 6 h after its prediction: the planner's work order stayed open for good, the
    /// prediction was never withdrawn. A weekend stop and an hour without data before that are neither a repair nor a
    /// new fault; after the repair the prediction is withdrawn once, under its id, and nothing is raised for the new bearing.
    /// </summary>
    [Fact]
    public async Task Regression_a_replaced_bearing_left_its_maintenance_prediction_open()
    {
        var unbroken = await RunAsync(costModel: null);
        var raised = Assert.Single(unbroken.Events, IsRaised);
        var id = raised.Attributes!["prediction_id"];
        var at = (int)((raised.Time - Start) / SamplePeriod);
        var hour = (int)(TimeSpan.FromHours(1) / SamplePeriod);

        var machines = new SimulatedMachines();
        var d1 = machines.Machines[0].Sim;
        await using var agent = await MaintenanceAgent.StartAsync(machines, null, statePath: null);
        await agent.FeedAsync(1, at + hour);
        agent.Dropout = true; // an hour without samples of either machine
        await agent.FeedAsync(at + hour + 1, at + (2 * hour));
        agent.Dropout = false;
        d1.State = MachineState.Stopped; // the weekend: vibration down to nothing, bearing cooling down
        await agent.FeedAsync(at + (2 * hour) + 1, at + (50 * hour));
        d1.State = MachineState.Running;
        await agent.FeedAsync(at + (50 * hour) + 1, at + (52 * hour));
        var beforeRepair = agent.Events.ToList();
        Assert.Single(beforeRepair, IsRaised);
        Assert.DoesNotContain(beforeRepair, e => e.Attributes!["state"] == "resolved");
        Assert.Null(machines.FailureAt);

        d1.ReplaceBearing();
        await agent.FeedAsync(at + (52 * hour) + 1, at + (52 * hour) + (60 * hour));
        await agent.Hub.CompleteAsync(Ct);

        var after = agent.Events.Skip(beforeRepair.Count).ToList();
        var resolved = Assert.Single(after, e => e.Attributes!["state"] == "resolved");
        Assert.Equal(id, resolved.Attributes!["prediction_id"]);
        Assert.Equal(EventSeverity.Info, resolved.Severity);
        Assert.True(resolved.Time - (Start + (SamplePeriod * (at + (52 * hour)))) <= TimeSpan.FromHours(48), $"withdrawn at {resolved.Time:O}");
        Assert.DoesNotContain(after, IsRaised);
    }

    /// <summary>
    /// Plant manager: the bearing of d1 was replaced, and the agent noticed only a day later (the probability had to stay
    /// low for 24 h of intervals, the model reading the worn bearing's day of history meanwhile): the work order stayed
    /// open, the alert on. The technician now says so — `edgetwin maintenance done d1`, over the control socket as
    /// `alerts ack` — and the prediction is withdrawn with the next samples, under its id, with who reported it; the new
    /// bearing raises nothing. A machine that is not watched is refused, naming the watched ones.
    /// </summary>
    [Fact]
    public async Task Regression_a_repair_was_noticed_only_24_h_after_the_machine_was_fixed()
    {
        var unbroken = await RunAsync(costModel: null);
        var raised = Assert.Single(unbroken.Events, IsRaised);
        var id = raised.Attributes!["prediction_id"];
        var at = (int)((raised.Time - Start) / SamplePeriod);
        var hour = (int)(TimeSpan.FromHours(1) / SamplePeriod);

        var machines = new SimulatedMachines();
        await using var agent = await MaintenanceAgent.StartAsync(machines, null, statePath: null);
        await agent.FeedAsync(1, at + (6 * hour));
        machines.Machines[0].Sim.ReplaceBearing();
        await agent.FeedAsync(at + (6 * hour) + 1, at + (7 * hour)); // an hour on the new bearing: not noticed yet
        Assert.DoesNotContain(agent.Events, e => e.Attributes!["state"] == "resolved");

        var dir = Directory.CreateTempSubdirectory("edgetwin-maintenance-done-");
        try
        {
            await using var control = await ControlHost.StartAsync(agent.Stage, dir.FullName);
            var socket = control.Socket;

            var (exit, output, error) = await InProcessCli.RunAsync("maintenance", "done", "d9", "--socket", socket);
            Assert.Equal(1, exit);
            Assert.Contains("machine 'd9' is not watched by the maintenance predictions (models.maintenance.machines: d1, h1)", error, StringComparison.Ordinal);

            (exit, output, error) = await InProcessCli.RunAsync("maintenance", "done", "d1", "--socket", socket);
            Assert.True(exit == 0, error);
            Assert.Contains($"d1: repair recorded; prediction {id} is withdrawn (state resolved) with the next samples", output, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }

        var reportedAt = Start + (SamplePeriod * (at + (7 * hour)));
        await agent.FeedAsync(at + (7 * hour) + 1, at + (7 * hour) + (60 * hour));
        await agent.Hub.CompleteAsync(Ct);

        var resolved = Assert.Single(agent.Events, e => e.Attributes!["state"] == "resolved");
        Assert.Equal(id, resolved.Attributes!["prediction_id"]);
        Assert.Equal(EventSeverity.Info, resolved.Severity);
        var by = resolved.Attributes["repair_reported_by"];
        Assert.True(by == Environment.UserName || by.StartsWith("uid ", StringComparison.Ordinal), $"repair_reported_by {by}"); // the caller's user, from the socket
        Assert.True(resolved.Time - reportedAt <= SamplePeriod, $"withdrawn at {resolved.Time:O}, reported at {reportedAt:O}");
        Assert.Contains("repaired (reported by", resolved.Message, StringComparison.Ordinal);
        Assert.Single(agent.Events, IsRaised); // the new bearing's history restarted: nothing raised for it
    }

    private sealed record Run(MaintenanceStage Stage, IReadOnlyList<EdgeEvent> Events, DateTimeOffset? FailureAt);

    private static readonly DateTimeOffset Start = new(2026, 3, 2, 0, 0, 0, TimeSpan.Zero);
    private static readonly int Steps = (int)(TimeSpan.FromDays(14) / SamplePeriod);

    private static async Task<Run> RunAsync(IUnplannedFailureCostModel? costModel)
    {
        var site = new SimulatedMachines();
        await using var agent = await MaintenanceAgent.StartAsync(site, costModel, statePath: null);
        await agent.FeedAsync(1, Steps);
        await agent.Hub.CompleteAsync(Ct);
        Assert.True(agent.Stage.Monitor!.Inferences > 500, $"{agent.Stage.Monitor.Inferences} inferences");
        return new Run(agent.Stage, [.. agent.Events], site.FailureAt);
    }

    /// <summary>
    /// The machines of the tests: d1 wears out (fails after about 110 h of running), h1 stays healthy. With
    /// <paramref name="fans"/> both are cooling-unit blowers whose speed follows the day (d1 then fails later: wear runs with speed).
    /// </summary>
    /// <param name="fans">Cooling-unit blowers rather than process machines.</param>
    /// <param name="ids">The ids of the failing and the healthy one (default d1 and h1).</param>
    private sealed class SimulatedMachines(bool fans = false, (string Failing, string Healthy)? ids = null)
    {
        public (SimMachine Sim, string Id)[] Machines { get; } = fans
            ?
            [
                (new SimMachine(new MachineSpec(ids?.Failing ?? "d1", "room1", RatedKw: 5.5, RatedSpeedRpm: 1450, HoursToFailure: 110) { MeanHoursToDefect = 48, Fan = new FanDuty(0.7, 0.15) }, 11), ids?.Failing ?? "d1"),
                (new SimMachine(new MachineSpec(ids?.Healthy ?? "h1", "room1", RatedKw: 5.5, RatedSpeedRpm: 1450) { MeanHoursToDefect = double.PositiveInfinity, Fan = new FanDuty(0.6, 0.2) }, 12), ids?.Healthy ?? "h1"),
            ]
            :
            [
                (new SimMachine(new MachineSpec("d1", "line1", HoursToFailure: 110, LoadFactor: 0.7) { MeanHoursToDefect = 48, KnocksPerDay = 2, DailyLoadSwing = 0.1 }, 11), "d1"),
                (new SimMachine(new MachineSpec("h1", "line1", LoadFactor: 0.6) { MeanHoursToDefect = double.PositiveInfinity, KnocksPerDay = 2, DailyLoadSwing = 0.1 }, 12), "h1"),
            ];

        public DateTimeOffset? FailureAt { get; set; }
    }

    /// <summary>The maintenance stage as <c>AddMaintenance()</c> builds it (with the outbox's options when a state file is wanted), and a real event hub.</summary>
    /// <summary>
    /// The agent's own wiring of <c>edgetwin maintenance</c>: the alerting host's control socket hands the request to the
    /// maintenance stage it finds in DI.
    /// </summary>
    private sealed class ControlHost(ServiceProvider services, EdgeTwin.Agent.Alerting.AlertingHostedService host) : IAsyncDisposable
    {
        public string Socket => host.ControlSocket!;

        public static async Task<ControlHost> StartAsync(MaintenanceStage stage, string stateDirectory)
        {
            var diagnostics = new ConfigDiagnostics();
            var root = (ConfigMapping)YamlTree.Parse("alerts:\n  rules: []\n", "site.yaml", diagnostics)!;
            var config = EdgeTwin.Alerting.Rules.AlertsConfig.Read(new ConfigReader((ConfigMapping)root["alerts"]!, diagnostics), stateDirectory);
            Assert.Empty(diagnostics.Sorted());
            var services = new ServiceCollection().AddMetrics().AddSingleton(stage).BuildServiceProvider();
            var site = new SiteConfigBuilder("s1", "g1").Build();
            var host = new EdgeTwin.Agent.Alerting.AlertingHostedService(
                site,
                new EdgeTwin.Agent.Alerting.AlertingAgentOptions { StateDirectory = stateDirectory, Config = config },
                new AgentRuntime(site, new SeriesRegistry(), TimeProvider.System),
                TimeProvider.System,
                Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance,
                services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(),
                services);
            await host.StartingAsync(Ct);
            return new ControlHost(services, host);
        }

        public async ValueTask DisposeAsync()
        {
            await host.DisposeAsync();
            await services.DisposeAsync();
        }
    }

    private sealed class MaintenanceAgent : IAsyncDisposable
    {
        private readonly SimulatedMachines _site;
        private readonly ServiceProvider _provider;
        private readonly SeriesId[][] _ids;
        private readonly SeriesId _other;

        private MaintenanceAgent(SimulatedMachines site, ServiceProvider provider, MaintenanceStage stage, EventHub hub, SeriesRegistry registry)
        {
            _site = site;
            _provider = provider;
            Stage = stage;
            Hub = hub;
            _ids = site.Machines.Select(m => new[]
            {
                registry.GetOrAdd(new SeriesDescriptor("vib-" + m.Id, "vibration_rms", "mm/s", Role: "machine.vibration_rms")),
                registry.GetOrAdd(new SeriesDescriptor("vib-" + m.Id, "vibration_kurtosis", "1", Role: "machine.vibration_kurtosis")),
                registry.GetOrAdd(new SeriesDescriptor("vib-" + m.Id, "bearing_temperature", "Cel", Role: "machine.bearing_temperature")),
            }).ToArray();
            _other = registry.GetOrAdd(new SeriesDescriptor("vib-d1", "run_hours", "h"));
        }

        public MaintenanceStage Stage { get; }

        public IServiceProvider Services => _provider;

        public EventHub Hub { get; }

        public ConcurrentQueue<EdgeEvent> Events { get; } = new();

        /// <summary>While set, the machines run on but no sample reaches the stage (a sensor or network dropout).</summary>
        public bool Dropout { get; set; }

        /// <summary>When set, what machine d1's vibration transmitter reads instead of the machine (a stuck transmitter).</summary>
        public double? D1VibrationStuckAt { get; set; }

        /// <param name="configured">The machines of models.maintenance.machines (default: both).</param>
        /// <param name="onCoolingUnits">d1 and h1 are cooling units of a room (no line), their transmitters located on the units.</param>
        /// <param name="thermalSite">A generated data-center site whose first two cooling units the machines are (their ids), with the agent's thermal twin warm-started and calibrated on it.</param>
        public static async Task<MaintenanceAgent> StartAsync(SimulatedMachines machines, IUnplannedFailureCostModel? costModel, string? statePath, IReadOnlyCollection<string>? configured = null, TimeProvider? time = null, ILoggerProvider? logs = null, bool onCoolingUnits = false, SiteSpec? thermalSite = null)
        {
            var site = thermalSite is not null ? OnGeneratedSite(thermalSite, machines) : Built(onCoolingUnits);
            var figures = machines.Machines.ToDictionary(m => m.Id, _ => new MachineCostFigures(6, 1200, "replace drive-end bearing"), StringComparer.Ordinal);
            if (configured is not null)
            {
                figures = figures.Where(f => configured.Contains(f.Key)).ToDictionary(StringComparer.Ordinal);
            }
            var services = new ServiceCollection();
            services.AddLogging(l =>
            {
                // The stage's information lines too when a test reads them (the recovery of its state file).
                l.SetMinimumLevel(logs is null ? LogLevel.Warning : LogLevel.Information);
                if (logs is not null)
                {
                    l.AddProvider(logs);
                }
            });
            var registry = new SeriesRegistry();
            var runtime = new AgentRuntime(site, registry, time ?? TimeProvider.System);
            services.AddSingleton(runtime);
            services.AddSingleton(new ModelsConfig(Path.Combine(Tool.RepoRoot(), "models"), 0.7, TimeSpan.FromHours(48), figures));
            services.AddSingleton(sp =>
            {
                var c = new ModelCatalog(sp.GetRequiredService<ModelsConfig>().Directory);
                c.Reload();
                return c;
            });
            if (costModel is not null)
            {
                services.AddSingleton(costModel);
            }

            if (statePath is not null)
            {
                services.AddSingleton(new EdgeTwin.Agent.StoreAndForward.StoreAndForwardOptions { OutboxPath = Path.Combine(Path.GetDirectoryName(statePath)!, "outbox.db") });
            }

            services.AddMaintenance();
            if (thermalSite is not null)
            {
                services.AddMetrics();
                services.AddThermalTwin(ThermalTwinOptions.DemoWarmStart(thermalSite));
            }

            var provider = services.BuildServiceProvider();
            if (thermalSite is not null)
            {
                // The demo's warm start and its first calibration, as the stage's worker does at start.
                var thermal = provider.GetRequiredService<ThermalTwinStage>();
                for (var z = 0; z < thermal.Twin.Zones.Count; z++)
                {
                    thermal.Twin.Recalibrate(z);
                }
            }

            // The maintenance stage's registration is the first (the thermal twin's follows it when there is one).
            var registration = provider.GetServices<SampleStageRegistration>().First();
            var stage = Assert.IsType<MaintenanceStage>(registration.Create(provider));
            var hub = new EventHub();
            var agent = new MaintenanceAgent(machines, provider, stage, hub, registry);
            hub.AddStage(new Capture(agent.Events));
            runtime.Events = hub;
            hub.Start();
            await Task.Yield();
            return agent;
        }

        /// <summary>d1 and h1 on a line, or (<paramref name="onCoolingUnits"/>) cooling units of a one-rack room.</summary>
        private static SiteConfig Built(bool onCoolingUnits)
        {
            var b = new SiteConfigBuilder("s1", "g1");
            if (onCoolingUnits)
            {
                b.Room("room1").Row("A").Rack("A01", 8);
                b.CoolingUnit("d1", "room1", 30, ["A01"]).CoolingUnit("h1", "room1", 30, ["A01"]);
                b.Device(new DeviceConfig("vib-d1", "generic-vibration-transmitter", DeviceAddress.Tcp("127.0.0.1", 15001)) { Location = new(CoolingUnit: "d1") });
                b.Device(new DeviceConfig("vib-h1", "generic-vibration-transmitter", DeviceAddress.Tcp("127.0.0.1", 15002)) { Location = new(CoolingUnit: "h1") });
            }
            else
            {
                b.Line("line1").Machine("d1").Machine("h1");
                b.Device(new DeviceConfig("vib-d1", "generic-vibration-transmitter", DeviceAddress.Tcp("127.0.0.1", 15001)) { Location = new(Machine: "d1") });
                b.Device(new DeviceConfig("vib-h1", "generic-vibration-transmitter", DeviceAddress.Tcp("127.0.0.1", 15002)) { Location = new(Machine: "h1") });
            }

            return b.Build();
        }

        /// <summary>The generated site's config with a vibration transmitter located on each simulated fan's cooling unit.</summary>
        private static SiteConfig OnGeneratedSite(SiteSpec spec, SimulatedMachines machines)
        {
            var generated = EdgeTwin.Simulator.Devices.SimSiteConfig.Build(spec, [], TimeSpan.FromSeconds(10));
            return generated with
            {
                Devices = [.. generated.Devices, .. machines.Machines.Select((m, i) => new DeviceConfig("vib-" + m.Id, "generic-vibration-transmitter", DeviceAddress.Tcp("127.0.0.1", 15001 + i)) { Location = new(CoolingUnit: m.Id) })],
            };
        }

        /// <summary>
        /// Steps the machines and feeds steps <paramref name="from"/>..<paramref name="to"/> (30 s apart). With
        /// <paramref name="perMachine"/> each machine's samples are a batch of their own, as the agent's polls of their
        /// devices are, and each batch waits for the state file write it started.
        /// </summary>
        public async Task FeedAsync(int from, int to, bool perMachine = false)
        {
            var batch = new Sample[_site.Machines.Length * 4];
            for (var s = from; s <= to; s++)
            {
                var t = (Start + (SamplePeriod * s)).ToUnixTimeMilliseconds();
                var n = 0;
                for (var i = 0; i < _site.Machines.Length; i++)
                {
                    var m = _site.Machines[i].Sim;
                    if (m.State == MachineState.Failed)
                    {
                        continue;
                    }

                    if (m.Step(SamplePeriod) == BearingStep.Failed)
                    {
                        _site.FailureAt = DateTimeOffset.FromUnixTimeMilliseconds(t);
                        continue;
                    }

                    batch[n++] = new Sample(_ids[i][0], t, i == 0 && D1VibrationStuckAt is { } stuck ? stuck : m.VibrationSensor.Reading);
                    batch[n++] = new Sample(_ids[i][1], t, m.KurtosisSensor.Reading);
                    batch[n++] = new Sample(_ids[i][2], t, m.BearingSensor.Reading);
                    batch[n++] = new Sample(_other, t, m.RunHours); // not a machine-health series: ignored
                    if (perMachine && !Dropout)
                    {
                        await Stage.ProcessAsync(batch.AsMemory(0, n), Ct);
                        await Stage.PendingSave.WaitAsync(Ct);
                        n = 0;
                    }
                }

                if (!Dropout)
                {
                    await Stage.ProcessAsync(batch.AsMemory(0, n), Ct);
                }
            }
        }

        /// <summary>Stops as the agent does: the stage's flush, then the hub drained.</summary>
        public async Task StopAsync()
        {
            await Stage.FlushAsync(Ct);
            await Hub.CompleteAsync(Ct);
        }

        public async ValueTask DisposeAsync()
        {
            await Hub.DisposeAsync();
            await _provider.DisposeAsync();
        }
    }

    /// <summary>
    /// The model reads a day of half-hour intervals: a restart (an Ansible deploy) used to start every machine's history
    /// from nothing, so the model saw one padded interval for a day, and a prediction already raised was raised again.
    /// A restart 12 h before the prediction and one 6 h after it must change nothing.
    /// </summary>
    [Theory]
    [InlineData(-12)]
    [InlineData(6)]
    public async Task Regression_a_restart_blinded_the_bearing_model_for_a_day_and_raised_its_prediction_again(int restartHoursFromPrediction)
    {
        var unbroken = await RunAsync(costModel: null);
        var predicted = Assert.Single(unbroken.Events, IsRaised).Time;
        var restartStep = (int)((predicted - Start + TimeSpan.FromHours(restartHoursFromPrediction)) / SamplePeriod);

        var dir = Directory.CreateTempSubdirectory("edgetwin-maintenance-state-");
        try
        {
            var statePath = Path.Combine(dir.FullName, MaintenanceStage.StateFileName);
            var machines = new SimulatedMachines();
            var before = new List<EdgeEvent>();
            await using (var first = await MaintenanceAgent.StartAsync(machines, null, statePath))
            {
                await first.FeedAsync(1, restartStep);
                await first.StopAsync();
                before.AddRange(first.Events);
            }

            Assert.True(File.Exists(statePath));
            await using var second = await MaintenanceAgent.StartAsync(machines, null, statePath);
            await second.FeedAsync(restartStep + 1, Steps);
            await second.StopAsync();

            var all = before.Concat(second.Events).ToList();
            var prediction = Assert.Single(all, IsRaised);
            Assert.Equal(predicted, prediction.Time);
            Assert.Equal(unbroken.Events[0].Attributes!["failure_probability"], prediction.Attributes!["failure_probability"]);
            Assert.Equal(1, (restartHoursFromPrediction < 0 ? [.. second.Events] : before).Count(IsRaised));

            // Its updates after the restart are the same as without one, under the same id.
            Assert.Equal(Describe(unbroken.Events), Describe(all));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Regression_a_read_only_state_directory_logged_a_warning_per_machine_and_closed_interval()
    {
        // Each machine's closed half-hour interval saved the state file, and each failed save was a warning: 2 lines an
        // hour per machine for the same cause (40 an hour on a line of 20 machines) while the storage stays read-only.
        // Now the first (with its stack), a summary at most every 5 min, one line when a save works again.
        var dir = Directory.CreateTempSubdirectory("edgetwin-maintenance-state-");
        try
        {
            var statePath = Path.Combine(dir.FullName, MaintenanceStage.StateFileName);
            var clock = new FakeTimeProvider(Start);
            var logs = new ConcurrentQueue<(LogLevel Level, string Message, Exception? Exception)>();
            var machines = new SimulatedMachines();
            await using var agent = await MaintenanceAgent.StartAsync(machines, null, statePath, time: clock, logs: new StageLogs(logs));
            Directory.CreateDirectory(statePath + ".tmp"); // the temp file's name taken: every save fails, as on a read-only mount
            for (var step = 1; step <= 120; step++) // an hour
            {
                clock.Advance(SamplePeriod);
                await agent.FeedAsync(step, step, perMachine: true);
            }

            var warnings = logs.Where(l => l.Level == LogLevel.Warning).ToList();
            Assert.Equal(2, warnings.Count); // the first and the summary half an hour later (4 before: 2 machines × 2 intervals)
            Assert.Contains($"cannot write {statePath}", warnings[0].Message, StringComparison.Ordinal);
            Assert.NotNull(warnings[0].Exception);
            Assert.Contains($"{statePath} still cannot be written", warnings[1].Message, StringComparison.Ordinal);
            Assert.Contains("3 saves failed", warnings[1].Message, StringComparison.Ordinal);
            Assert.Null(warnings[1].Exception);

            Directory.Delete(statePath + ".tmp");
            for (var step = 121; step <= 181; step++)
            {
                clock.Advance(SamplePeriod);
                await agent.FeedAsync(step, step, perMachine: true);
            }

            Assert.Single(logs, l => l.Message.Contains($"{statePath} written again after", StringComparison.Ordinal));
            Assert.True(File.Exists(statePath));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>
    /// A vibration transmitter stuck at a healthy reading while the bearing wore out: the stage fed the model its
    /// intervals and the planner saw nothing (0 % to the failure). Now the stage says once which machine and signal froze,
    /// raises nothing from it, and says once when it reads again.
    /// </summary>
    [Fact]
    public async Task Regression_a_stuck_vibration_transmitter_was_not_said_and_its_machine_looked_healthy()
    {
        var predictionStep = await StepAfterThePredictionAsync(TimeSpan.Zero);
        var logs = new ConcurrentQueue<(LogLevel Level, string Message, Exception? Exception)>();
        var machines = new SimulatedMachines();
        await using var agent = await MaintenanceAgent.StartAsync(machines, null, statePath: null, logs: new StageLogs(logs));
        var hour = (int)(TimeSpan.FromHours(1) / SamplePeriod);
        var freezeStep = predictionStep - (12 * hour);
        await agent.FeedAsync(1, freezeStep);
        agent.D1VibrationStuckAt = 1.25;
        await agent.FeedAsync(freezeStep + 1, predictionStep + (6 * hour));
        Assert.DoesNotContain(agent.Events, IsRaised);
        var frozen = Assert.Single(logs, l => l.Message.Contains("throughout", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Warning, frozen.Level);
        Assert.Contains("machine d1: vibration_rms read 1.25 throughout the last 30 min while the machine ran (a stuck or dead transmitter?)", frozen.Message, StringComparison.Ordinal);
        Assert.True(agent.Stage.Monitor!.FrozenIntervals >= 35, $"{agent.Stage.Monitor.FrozenIntervals} intervals left out");

        agent.D1VibrationStuckAt = null; // the transmitter replaced: its intervals count again, and the worn bearing is predicted
        await agent.FeedAsync(predictionStep + (6 * hour) + 1, Steps);
        await agent.Hub.CompleteAsync(Ct);
        Assert.Single(agent.Events, IsRaised);
        Assert.Null(agent.Stage.Monitor.Frozen(0, out _));
        Assert.Single(logs, l => l.Message == "Maintenance: machine d1: its signals vary again; its intervals count again");
    }

    /// <summary>
    /// <c>maintenance done</c> (a bearing replaced), then a restart before the next interval closed: the restart must not
    /// bring back the worn bearing's history or its prediction (the report saves the state at once). Checked, held.
    /// </summary>
    [Fact]
    public async Task A_reported_repair_survives_a_restart_before_the_next_interval()
    {
        var after = await StepAfterThePredictionAsync(TimeSpan.FromHours(6));
        var dir = Directory.CreateTempSubdirectory("edgetwin-maintenance-state-");
        try
        {
            var statePath = Path.Combine(dir.FullName, MaintenanceStage.StateFileName);
            var machines = new SimulatedMachines();
            await using (var first = await MaintenanceAgent.StartAsync(machines, null, statePath))
            {
                await first.FeedAsync(1, after);
                machines.Machines[0].Sim.ReplaceBearing();
                Assert.True(first.Stage.ReportRepaired("d1", "alice").Ok);
                await first.FeedAsync(after + 1, after + 1); // applied with the next batch
                await first.Stage.PendingSave.WaitAsync(Ct);
                await first.Hub.CompleteAsync(Ct); // killed: no flush at stop
                Assert.Single(first.Events, e => e.Attributes!["state"] == "resolved");
            }

            var state = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(statePath, Ct))!["d1"]!;
            Assert.False(state["raised"]!.GetValue<bool>());
            Assert.Empty(state["window"]!["intervals"]!.AsArray());

            await using var second = await MaintenanceAgent.StartAsync(machines, null, statePath);
            await second.FeedAsync(after + 2, after + (int)(TimeSpan.FromHours(36) / SamplePeriod));
            await second.StopAsync();
            Assert.DoesNotContain(second.Events, e => e.Source == "d1");
            var rul = second.Stage.Monitor!.LastRul(0);
            Assert.InRange(rul, 110, 120); // the new bearing, read as healthy (the 120 h cap)
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>
    /// A planner saw a machine only once its failure probability crossed the threshold (an event): a healthy machine, one
    /// whose transmitter froze, one warming up after a repair all looked the same — nothing. <c>edgetwin maintenance
    /// status</c> now shows each watched machine: RUL in running hours, probability within the horizon, the history it
    /// rests on, a frozen signal, the open prediction.
    /// </summary>
    [Fact]
    public async Task Regression_a_planner_could_see_no_machine_until_its_failure_probability_crossed_the_threshold()
    {
        var predictionStep = await StepAfterThePredictionAsync(TimeSpan.Zero);
        var hour = (int)(TimeSpan.FromHours(1) / SamplePeriod);
        var machines = new SimulatedMachines();
        await using var agent = await MaintenanceAgent.StartAsync(machines, null, statePath: null);
        var dir = Directory.CreateTempSubdirectory("edgetwin-maintenance-status-");
        try
        {
            await using var control = await ControlHost.StartAsync(agent.Stage, dir.FullName);
            var socket = control.Socket;
            async Task<string[]> StatusAsync()
            {
                var (exit, output, error) = await InProcessCli.RunAsync("maintenance", "status", "--socket", socket);
                Assert.True(exit == 0, error);
                return output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            }

            var lines = await StatusAsync();
            Assert.Equal("model bearing-rul, failure probability within 48 h, RUL in running hours", lines[0]);
            Assert.StartsWith("d1: no estimate yet", lines[1], StringComparison.Ordinal);

            await agent.FeedAsync(1, 6 * hour);
            lines = await StatusAsync();
            Assert.Matches(@"^h1: RUL 1[12]\d(\.\d)? h, failure probability 0 %, from 6 h of data of 24 h \(warming up\), as of 2026-03-02T06:00:00\.000Z; no prediction open$", lines[2]);

            await agent.FeedAsync(6 * hour + 1, predictionStep - (6 * hour));
            agent.D1VibrationStuckAt = 1.25;
            await agent.FeedAsync(predictionStep - (6 * hour) + 1, predictionStep - (5 * hour));
            lines = await StatusAsync();
            Assert.Contains("from 24 h of data", lines[1], StringComparison.Ordinal);
            Assert.Contains("; vibration_rms stuck at 1.25 (left out: check the transmitter); no prediction open", lines[1], StringComparison.Ordinal);

            agent.D1VibrationStuckAt = null;
            await agent.FeedAsync(predictionStep - (5 * hour) + 1, predictionStep + hour);
            var open = agent.Stage.Status()[0];
            Assert.NotNull(open.OpenPrediction);
            lines = await StatusAsync();
            Assert.Contains($"; prediction {open.OpenPrediction} open, estimated failure {EdgeTwin.Core.Events.WireTime.Instant(open.EstimatedFailureTime!.Value)}", lines[1], StringComparison.Ordinal);
            Assert.DoesNotContain("stuck", lines[1], StringComparison.Ordinal);

            var (code, json, _) = await InProcessCli.RunAsync("maintenance", "status", "--socket", socket, "--json");
            Assert.Equal(0, code);
            using var doc = System.Text.Json.JsonDocument.Parse(json);
            var d1 = doc.RootElement.GetProperty("machines")[0];
            Assert.Equal("d1", d1.GetProperty("machine").GetString());
            Assert.InRange(d1.GetProperty("failure_probability").GetDouble(), 0.7, 1);
            Assert.Equal("h", doc.RootElement.GetProperty("rul_unit").GetString());

            Assert.True(agent.Stage.ReportRepaired("d1", "alice").Ok);
            machines.Machines[0].Sim.ReplaceBearing();
            await agent.FeedAsync(predictionStep + hour + 1, predictionStep + hour + 1);
            lines = await StatusAsync();
            Assert.StartsWith("d1: no estimate yet", lines[1], StringComparison.Ordinal);
            Assert.EndsWith("; no prediction open", lines[1], StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>The maintenance stage's lines (warnings and above, as the harness's logging is set), with their exceptions.</summary>
    private sealed class StageLogs(ConcurrentQueue<(LogLevel Level, string Message, Exception? Exception)> logs) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => categoryName == typeof(MaintenanceStage).FullName
            ? new ListLogger(logs)
            : Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

        public void Dispose()
        {
        }
    }

    /// <summary>The step <paramref name="after"/> the uninterrupted run raised its one prediction (machine d1).</summary>
    private static async Task<int> StepAfterThePredictionAsync(TimeSpan after)
    {
        var unbroken = await RunAsync(costModel: null);
        return (int)((Assert.Single(unbroken.Events, IsRaised).Time - Start + after) / SamplePeriod);
    }

    /// <summary>A state file written before predictions had ids (only <c>raised</c>): the open prediction is not raised again.</summary>
    [Fact]
    public async Task A_state_file_of_an_older_agent_keeps_its_raised_prediction_open()
    {
        var restartStep = await StepAfterThePredictionAsync(TimeSpan.FromHours(6));
        var dir = Directory.CreateTempSubdirectory("edgetwin-maintenance-state-");
        try
        {
            var statePath = Path.Combine(dir.FullName, MaintenanceStage.StateFileName);
            var machines = new SimulatedMachines();
            await using (var first = await MaintenanceAgent.StartAsync(machines, null, statePath))
            {
                await first.FeedAsync(1, restartStep);
                await first.StopAsync();
            }

            var state = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(statePath, Ct))!.AsObject();
            Assert.True(state["d1"]!["raised"]!.GetValue<bool>());
            foreach (var (_, machine) in state)
            {
                machine!.AsObject().Remove("open");
            }

            await File.WriteAllTextAsync(statePath, state.ToJsonString(), Ct);
            await using var second = await MaintenanceAgent.StartAsync(machines, null, statePath);
            await second.FeedAsync(restartStep + 1, Steps);
            await second.StopAsync();
            Assert.DoesNotContain(second.Events, IsRaised);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>
    /// A machine taken out of models.maintenance.machines (sold, or moved to another gateway) while its prediction was
    /// open: the prediction stayed open at the centre for ever (and with it the CMMS work order), and the next save
    /// dropped the machine from the state file, so nothing could withdraw it any more. Now it is withdrawn, once.
    /// </summary>
    [Theory]
    [InlineData("h1")]
    [InlineData("")]
    public async Task Regression_a_machine_removed_from_the_config_kept_its_maintenance_prediction_open_for_ever(string stillConfigured)
    {
        string[] remaining = stillConfigured.Length == 0 ? [] : [stillConfigured];
        var restartStep = await StepAfterThePredictionAsync(TimeSpan.FromHours(6));
        var dir = Directory.CreateTempSubdirectory("edgetwin-maintenance-state-");
        try
        {
            var statePath = Path.Combine(dir.FullName, MaintenanceStage.StateFileName);
            var machines = new SimulatedMachines();
            EdgeEvent raised;
            await using (var first = await MaintenanceAgent.StartAsync(machines, null, statePath))
            {
                await first.FeedAsync(1, restartStep);
                await first.StopAsync();
                raised = Assert.Single(first.Events, IsRaised);
                Assert.Equal("d1", raised.Attributes!["machine"]);
            }

            // Stopped before any sample: the withdrawal is still owed, and the file still holds it.
            await using (var idle = await MaintenanceAgent.StartAsync(machines, null, statePath, remaining))
            {
                await idle.StopAsync();
                Assert.Empty(idle.Events);
            }

            await using (var second = await MaintenanceAgent.StartAsync(machines, null, statePath, remaining))
            {
                await second.FeedAsync(restartStep + 1, restartStep + 10);
                await second.StopAsync();
                var withdrawn = Assert.Single(second.Events, e => e.Attributes!["machine"] == "d1");
                Assert.Equal("resolved", withdrawn.Attributes!["state"]);
                Assert.Equal(raised.Attributes!["prediction_id"], withdrawn.Attributes["prediction_id"]);
                Assert.Contains("no longer in models.maintenance.machines", withdrawn.Attributes["withdrawn_because"], StringComparison.Ordinal);
                Assert.Contains("withdrawn: the machine is no longer", withdrawn.Message, StringComparison.Ordinal);
                Assert.Equal(EventSeverity.Info, withdrawn.Severity);
            }

            await using (var third = await MaintenanceAgent.StartAsync(machines, null, statePath, remaining))
            {
                await third.FeedAsync(restartStep + 11, restartStep + 20);
                await third.StopAsync();
                Assert.DoesNotContain(third.Events, e => e.Attributes!["machine"] == "d1");
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_corrupt_maintenance_state_is_set_aside_with_a_warning_and_the_stage_goes_on()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-maintenance-state-");
        try
        {
            var statePath = Path.Combine(dir.FullName, MaintenanceStage.StateFileName);
            await File.WriteAllTextAsync(statePath, "{\"d1\": {\"window\": ", Ct);
            var machines = new SimulatedMachines();
            await using var agent = await MaintenanceAgent.StartAsync(machines, null, statePath);
            Assert.True(File.Exists(statePath + ".corrupt"));
            await agent.FeedAsync(1, 2 * 120 + 1);
            await agent.Stage.PendingSave.WaitAsync(Ct);
            Assert.True(agent.Stage.Monitor!.IntervalsClosed > 0);
            using var saved = System.Text.Json.JsonDocument.Parse(await File.ReadAllBytesAsync(statePath, Ct));
            Assert.True(saved.RootElement.GetProperty("d1").GetProperty("window").GetProperty("intervals").GetArrayLength() > 0);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private sealed class Capture(ConcurrentQueue<EdgeEvent> events) : IEventStage
    {
        public string Name => "capture";

        public ValueTask HandleAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken)
        {
            events.Enqueue(edgeEvent);
            return ValueTask.CompletedTask;
        }
    }

    private sealed class FixedCostModel : IUnplannedFailureCostModel
    {
        public ConcurrentQueue<string> Asked { get; } = new();

        public UnplannedFailureCost? Estimate(string machine, DateTimeOffset failureTime)
        {
            Asked.Enqueue(machine);
            return new UnplannedFailureCost(2.5, 4321, "line-twin:line1");
        }
    }
}
