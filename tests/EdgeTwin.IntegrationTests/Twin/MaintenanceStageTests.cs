using System.Collections.Concurrent;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.Twin.Models;
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
        var prediction = Assert.Single(run.Events);
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
    public async Task Downtime_and_cost_come_from_the_cost_model_registered_in_DI()
    {
        var costModel = new FixedCostModel();
        var run = await RunAsync(costModel);
        var prediction = Assert.Single(run.Events);
        Assert.Same(costModel, run.Stage.CostModel);
        Assert.Equal("d1", Assert.Single(costModel.Asked));
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
    }

    private sealed record Run(MaintenanceStage Stage, IReadOnlyList<EdgeEvent> Events, DateTimeOffset? FailureAt);

    private static async Task<Run> RunAsync(IUnplannedFailureCostModel? costModel)
    {
        var b = new SiteConfigBuilder("s1", "g1");
        b.Line("line1").Machine("d1").Machine("h1");
        b.Device(new DeviceConfig("vib-d1", "generic-vibration-transmitter", DeviceAddress.Tcp("127.0.0.1", 15001)) { Location = new(Machine: "d1") });
        b.Device(new DeviceConfig("vib-h1", "generic-vibration-transmitter", DeviceAddress.Tcp("127.0.0.1", 15002)) { Location = new(Machine: "h1") });
        var site = b.Build();
        var figures = new Dictionary<string, MachineCostFigures>(StringComparer.Ordinal)
        {
            ["d1"] = new(6, 1200, "replace drive-end bearing"),
            ["h1"] = new(6, 1200, "replace drive-end bearing"),
        };
        var services = new ServiceCollection();
        services.AddLogging(l => l.SetMinimumLevel(LogLevel.Warning));
        var registry = new SeriesRegistry();
        var runtime = new AgentRuntime(site, registry, TimeProvider.System);
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

        services.AddMaintenance();
        await using var provider = services.BuildServiceProvider();
        var registration = Assert.Single(provider.GetServices<SampleStageRegistration>());
        var stage = Assert.IsType<MaintenanceStage>(registration.Create(provider));
        var events = new ConcurrentQueue<EdgeEvent>();
        await using var hub = new EventHub().AddStage(new Capture(events));
        runtime.Events = hub;
        hub.Start();

        var machines = new[]
        {
            (Sim: new SimMachine(new MachineSpec("d1", "line1", HoursToFailure: 110, LoadFactor: 0.7) { MeanHoursToDefect = 48, KnocksPerDay = 2, DailyLoadSwing = 0.1 }, 11), Id: "d1"),
            (Sim: new SimMachine(new MachineSpec("h1", "line1", LoadFactor: 0.6) { MeanHoursToDefect = double.PositiveInfinity, KnocksPerDay = 2, DailyLoadSwing = 0.1 }, 12), Id: "h1"),
        };
        var ids = machines.Select(m => new[]
        {
            registry.GetOrAdd(new SeriesDescriptor("vib-" + m.Id, "vibration_rms", "mm/s", Role: "machine.vibration_rms")),
            registry.GetOrAdd(new SeriesDescriptor("vib-" + m.Id, "vibration_kurtosis", "1", Role: "machine.vibration_kurtosis")),
            registry.GetOrAdd(new SeriesDescriptor("vib-" + m.Id, "bearing_temperature", "Cel", Role: "machine.bearing_temperature")),
        }).ToArray();
        var other = registry.GetOrAdd(new SeriesDescriptor("vib-d1", "run_hours", "h"));

        var start = new DateTimeOffset(2026, 3, 2, 0, 0, 0, TimeSpan.Zero);
        DateTimeOffset? failure = null;
        var batch = new Sample[machines.Length * 4];
        var steps = (int)(TimeSpan.FromDays(14) / SamplePeriod);
        for (var s = 1; s <= steps; s++)
        {
            var t = (start + (SamplePeriod * s)).ToUnixTimeMilliseconds();
            var n = 0;
            for (var i = 0; i < machines.Length; i++)
            {
                var m = machines[i].Sim;
                if (m.State == MachineState.Failed)
                {
                    continue;
                }

                if (m.Step(SamplePeriod) == BearingStep.Failed)
                {
                    failure = DateTimeOffset.FromUnixTimeMilliseconds(t);
                    continue;
                }

                batch[n++] = new Sample(ids[i][0], t, m.VibrationSensor.Reading);
                batch[n++] = new Sample(ids[i][1], t, m.KurtosisSensor.Reading);
                batch[n++] = new Sample(ids[i][2], t, m.BearingSensor.Reading);
                batch[n++] = new Sample(other, t, m.RunHours); // not a machine-health series: ignored
            }

            await stage.ProcessAsync(batch.AsMemory(0, n), Ct);
        }

        await hub.CompleteAsync(Ct);
        Assert.True(stage.Monitor!.Inferences > 500, $"{stage.Monitor.Inferences} inferences");
        return new Run(stage, [.. events], failure);
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
