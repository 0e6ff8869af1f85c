using System.Collections.Concurrent;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.Twin;
using EdgeTwin.Agent.Twin.Multivariate;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Samples;
using EdgeTwin.Simulator.Devices;
using EdgeTwin.Simulator.Faults;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Twin.Models;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Twin;

/// <summary>The <c>twin.multivariate</c> section and the agent's multivariate stage on simulated drive series.</summary>
public sealed class MultivariateStageTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly string[] Metrics = ["motor_torque", "motor_temperature", "inverter_temperature"];
    private static readonly string[] Roles = ["machine.torque", "machine.motor_temperature", "machine.drive_temperature_ratio"];

    private static SiteConfigLoadOptions Validators => new() { SectionValidators = [new TwinAnomalySectionValidator(), new TwinMultivariateSectionValidator()] };

    [Fact]
    public void Section_problems_are_reported_with_file_line_and_key()
    {
        const string yaml = """
            site: { id: s1, gateway_id: g1 }
            devices: []
            twin:
              anomaly: { threshold: 0.4 }
              multivariate:
                threshold: 1.5
                groups:
                  - name: m1
                    series: [drive1/motor_torque, drive1/motor_temperature, drive1/motor_torque]
                  - name: m1
                    interval: 0s
                    series: [drive2/motor_torque, nodevice]
                  - { name: m3, serise: [a/b] }
            """;
        var result = SiteConfigLoader.Parse(yaml, "site.yaml", Validators);
        var problems = result.Problems.Select(p => p.ToString()).ToList();
        var all = string.Join(Environment.NewLine, problems);
        Assert.Contains(problems, p => p.StartsWith("site.yaml:6:", StringComparison.Ordinal) && p.Contains("twin.multivariate.threshold", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("site.yaml:9:", StringComparison.Ordinal) && p.Contains("'drive1/motor_torque' is listed twice", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("site.yaml:10:", StringComparison.Ordinal) && p.Contains("duplicate group name 'm1'", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("site.yaml:11:", StringComparison.Ordinal) && p.Contains("interval", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("site.yaml:12:", StringComparison.Ordinal) && p.Contains("expected a series key 'device/metric'", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("unknown key 'serise' (did you mean 'series'?)", StringComparison.Ordinal));
        Assert.DoesNotContain(problems, p => p.Contains("twin.anomaly", StringComparison.Ordinal));
        Assert.True(problems.Count >= 6, all);
    }

    [Fact]
    public void Valid_section_reads_groups_with_defaults()
    {
        const string yaml = """
            site: { id: s1, gateway_id: g1 }
            devices: []
            twin:
              multivariate:
                groups:
                  - { name: m1, series: [drive1/motor_torque, drive1/motor_temperature, drive1/inverter_temperature] }
                  - { name: m2, model: mv-other, interval: 10s, series: [drive2/motor_torque] }
            """;
        var result = SiteConfigLoader.Parse(yaml, "site.yaml", Validators);
        Assert.True(result.IsValid, string.Join(Environment.NewLine, result.Problems));
        var config = MultivariateConfig.From(result.Config!.Sections["twin"]);
        Assert.Equal(0.5, config.Threshold);
        Assert.Equal(new MultivariateGroup("m1", "mv-machine", TimeSpan.FromSeconds(30), ["drive1/motor_torque", "drive1/motor_temperature", "drive1/inverter_temperature"]), config.Groups[0] with { Series = [.. config.Groups[0].Series] }, new GroupComparer());
        Assert.Equal(("mv-other", TimeSpan.FromSeconds(10)), (config.Groups[1].Model, config.Groups[1].Interval));
    }

    private sealed class GroupComparer : IEqualityComparer<MultivariateGroup>
    {
        public bool Equals(MultivariateGroup? x, MultivariateGroup? y) =>
            x is not null && y is not null && x.Name == y.Name && x.Model == y.Model && x.Interval == y.Interval && x.Series.SequenceEqual(y.Series);

        public int GetHashCode(MultivariateGroup obj) => obj.Name.GetHashCode(StringComparison.Ordinal);
    }

    /// <summary>
    /// Drive series of a simulated machine polled every 30 s (simulated time): healthy for 3 hours, then an advanced bearing
    /// wear. The stage raises exactly one anomaly event for the machine's group, after the fault, with score, series, model
    /// and version.
    /// </summary>
    [Fact]
    public async Task Stage_raises_one_event_for_a_bearing_fault_with_score_series_model_and_version()
    {
        var (events, logs, stage, runtime, hub) = await StartAsync(Path.Combine(RepoRoot(), "models"));
        await using (hub)
        using (stage)
        {
            var faultAtMs = await FeedAsync(stage, runtime, seed: 3, hours: 5, faultAfterHours: 3);
            await Eventually.UntilAsync(() => !events.IsEmpty, "the anomaly event", 30);
            var e = Assert.Single(events);
            Assert.Equal(EdgeEventKind.Anomaly, e.Kind);
            Assert.Equal("group:m1", e.Source);
            Assert.True(e.Time.ToUnixTimeMilliseconds() > faultAtMs, $"event at {e.Time:O} before the fault");
            Assert.True(e.Time.ToUnixTimeMilliseconds() < faultAtMs + (60 * 60_000), $"event at {e.Time:O} more than an hour after the fault");
            var a = e.Attributes!;
            Assert.Equal("mv-machine", a["model"]);
            Assert.Equal("1.1.0", a["version"]);
            Assert.Equal("1.1.0", a["model_version"]); // the one name on every model's events (consumer audit F7)
            Assert.Equal("drive1/motor_torque,drive1/motor_temperature,drive1/inverter_temperature", a["series"]);
            Assert.InRange(double.Parse(a["score"], System.Globalization.CultureInfo.InvariantCulture), 0.5, 1.0);
            Assert.DoesNotContain(logs, l => l.Level >= LogLevel.Warning);
        }
    }

    [Fact]
    public async Task Regression_a_backward_clock_step_stopped_the_multivariate_detector_for_its_size()
    {
        // A gateway that booted four hours ahead, then synced, 1.5 h into the run: the samples after the step are stamped
        // four hours before the last ones. Before, no row was due until the clock caught up with the old "next row" time,
        // so the bearing fault 1.5 h after the step went unseen. The rows restart at the step, the window refills, and the
        // fault is found, stamped on the new time.
        var (events, logs, stage, runtime, hub) = await StartAsync(Path.Combine(RepoRoot(), "models"));
        await using (hub)
        using (stage)
        {
            var stepMs = 4 * 3_600_000L;
            var faultAtMs = await FeedAsync(stage, runtime, seed: 3, hours: 5, faultAfterHours: 3, stepBackAfterHours: 1.5, stepBackMs: stepMs);
            await Eventually.UntilAsync(() => !events.IsEmpty, "the anomaly event after the step", 30);
            var e = Assert.Single(events);
            Assert.Equal("group:m1", e.Source);
            Assert.InRange(e.Time.ToUnixTimeMilliseconds(), faultAtMs, faultAtMs + (60 * 60_000));
            var warning = Assert.Single(logs, l => l.Level >= LogLevel.Warning);
            Assert.Contains("twin.multivariate group m1: the wall clock stepped back 03:59:30", warning.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Missing_model_falls_back_with_one_warning_and_no_events()
    {
        using var empty = new Deployment.TempDir();
        var (events, logs, stage, runtime, hub) = await StartAsync(empty.Path);
        await using (hub)
        using (stage)
        {
            await FeedAsync(stage, runtime, seed: 3, hours: 1.5, faultAfterHours: 0.5);
            Assert.True(events.IsEmpty);
            var warning = Assert.Single(logs, l => l.Level == LogLevel.Warning);
            Assert.Contains("mv-machine unavailable, falling back to the streaming anomaly detector", warning.Message, StringComparison.Ordinal);
        }
    }

    private static async Task<(ConcurrentQueue<EdgeEvent>, ConcurrentQueue<(LogLevel Level, string Message)>, MultivariateAnomalyStage, AgentRuntime, EventHub)> StartAsync(string modelsDir)
    {
        var parsed = SiteConfigLoader.Parse("site: { id: s1, gateway_id: g1 }\ndevices: []\n", "site.yaml");
        Assert.True(parsed.IsValid, string.Join(Environment.NewLine, parsed.Problems));
        var runtime = new AgentRuntime(parsed.Config!, new SeriesRegistry(), TimeProvider.System);
        var events = new ConcurrentQueue<EdgeEvent>();
        var hub = new EventHub().AddStage(new Collector(events));
        hub.Start();
        runtime.Events = hub;
        var catalog = new ModelCatalog(modelsDir);
        catalog.Reload();
        var logs = new ConcurrentQueue<(LogLevel, string)>();
        var config = MultivariateConfig.Default with { Groups = [new MultivariateGroup("m1", "mv-machine", TimeSpan.FromSeconds(30), [.. Metrics.Select(m => "drive1/" + m)])] };
        var stage = new MultivariateAnomalyStage(runtime, config, catalog, new ListLogger<MultivariateAnomalyStage>(logs));
        await Task.Yield();
        return (events, logs, stage, runtime, hub);
    }

    /// <summary>Steps a one-machine simulated site and feeds its drive values (profile scales) to the stage, one poll per 30 s.</summary>
    private static async Task<long> FeedAsync(MultivariateAnomalyStage stage, AgentRuntime runtime, int seed, double hours, double faultAfterHours, double stepBackAfterHours = double.PositiveInfinity, long stepBackMs = 0)
    {
        var spec = SiteGenerator.Generate(new SiteGenerationOptions { Racks = 1, CoolingUnits = 1, Machines = 1, Seed = seed });
        spec = spec with { Machines = [spec.Machines[0] with { InitialWear = 0.1, HoursToFailure = 24 * 90, LoadFactor = 0.7 }] };
        var site = new SimulatedSite(spec);
        var drive = new SimDeviceBinding("drive1", "abb-acs580", SimEntityKind.Machine, "m1");
        var ids = Metrics.Select(m => runtime.Registry.GetOrAdd(new SeriesDescriptor("drive1", m, m == "motor_temperature" ? "Cel" : "%"))).ToArray();
        var batch = new Sample[3];
        var faultAtMs = 0L;
        for (var t = 0; t < hours * 120; t++)
        {
            site.Step(TimeSpan.FromSeconds(30));
            var clockMs = t >= stepBackAfterHours * 120 ? -stepBackMs : 0; // the wall clock that stamps the samples, stepped back
            if (faultAtMs == 0 && t >= faultAfterHours * 120)
            {
                site.Apply(FaultCommand.Parse("machine-wear:m1:0.75"));
                faultAtMs = site.Now.ToUnixTimeMilliseconds() + clockMs;
            }

            for (var f = 0; f < 3; f++)
            {
                Assert.True(RoleValues.TryRead(site, drive, Roles[f], null, out var v));
                var value = f == 0 ? Math.Round(v.Value * 10) / 10 : Math.Round(v.Value);
                batch[f] = new Sample(ids[f], site.Now.ToUnixTimeMilliseconds() + clockMs + (f * 40), value);
            }

            await stage.ProcessAsync(batch, Ct);
        }

        return faultAtMs;
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "EdgeTwin.sln")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException($"EdgeTwin.sln not found above {AppContext.BaseDirectory}");
    }

    private sealed class Collector(ConcurrentQueue<EdgeEvent> events) : IEventStage
    {
        public string Name => "test";

        public ValueTask HandleAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken)
        {
            events.Enqueue(edgeEvent);
            return ValueTask.CompletedTask;
        }
    }
}
