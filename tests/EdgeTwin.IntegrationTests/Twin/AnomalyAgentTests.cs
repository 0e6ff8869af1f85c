using System.Collections.Concurrent;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.Twin;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.IntegrationTests.Simulator;
using EdgeTwin.Simulator.Faults;
using EdgeTwin.Twin.Anomaly;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Twin;

/// <summary>
/// The agent's anomaly stage on a simulated site served over real SNMP and Modbus on loopback: a fault injected into
/// the simulator (a utility failure behind a UPS) must become one anomaly event on the UPS's input voltage, with score,
/// series, model and version.
/// </summary>
public sealed class AnomalyAgentTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Agent_raises_one_anomaly_event_when_the_utility_fails()
    {
        await using var sim = await SimPaths.StartAsync(racks: 2, units: 1, machines: 1);
        var config = sim.BuildConfig(TimeSpan.FromMilliseconds(250), SimPaths.Profiles, TimeSpan.FromMilliseconds(400)) with { Profiles = SimPaths.LoadProfiles() };
        var ups = sim.Site.Upses[0];
        var series = "";

        // The default configuration with a short warm-up (a test cannot wait for 150 polls).
        var anomaly = AnomalyConfig.Default with { Defaults = AnomalyDetectorOptions.Default with { WarmUpSamples = 20 } };
        var events = new ConcurrentQueue<EdgeEvent>();
        var trace = new ConcurrentQueue<string>();
        AnomalyStage? stageRef = null;
        var options = new AgentHostOptions
        {
            UseSystemd = false,
            StatusLogInterval = null,
            MinimumLogLevel = LogLevel.Warning,
            ConfigureServices = s => s.AddTwinModels(anomaly),
        }.ObserveSamples("trace", (batch, _) =>
        {
            foreach (var x in batch.Span)
            {
                if (stageRef is { } st && st.SamplesSeen(x.Series) > 0 && x.Series.Value == TraceId)
                {
                    trace.Enqueue($"{x.Value:G6}:{st.LastScore(x.Series):F2}");
                }
            }

            return ValueTask.CompletedTask;
        }).ObserveEvents("test", (e, _) =>
        {
            events.Enqueue(e);
            return ValueTask.CompletedTask;
        });

        using var agent = AgentHostBuilder.Build(config, options);
        var runtime = agent.Services.GetRequiredService<AgentRuntime>();
        var stage = agent.Services.GetRequiredService<AnomalyStage>();
        stageRef = stage;
        using var physics = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var physicsTask = sim.RunAsync(physics.Token);
        try
        {
            await agent.StartAsync(Ct);
            await runtime.Started.WaitAsync(TimeSpan.FromSeconds(60), Ct);

            // Past warm-up on the PDU's series: its detector has scored well over 20 samples.
            // The UPS's input voltage series (its key may carry tags such as the line).
            await WaitUntilAsync(() => runtime.Registry.Snapshot().Any(x => x.Descriptor.DeviceId == ups.Id && x.Descriptor.Metric.StartsWith("input_voltage", StringComparison.Ordinal)),
                () => $"a series ups input voltage among {string.Join(", ", runtime.Registry.Snapshot().Where(x => x.Descriptor.DeviceId == ups.Id).Select(x => x.Descriptor.Key))}", 90);
            series = runtime.Registry.Snapshot().First(x => x.Descriptor.DeviceId == ups.Id && x.Descriptor.Metric.StartsWith("input_voltage", StringComparison.Ordinal)).Descriptor.Key;
            await WaitUntilAsync(() => runtime.Registry.TryGet(series, out var id) && stage.SamplesSeen(id) >= 60, $"60 polls of {series}", 90);
            runtime.Registry.TryGet(series, out var seriesId);
            TraceId = seriesId.Value;
            Assert.DoesNotContain(events, e => e.Kind == EdgeEventKind.Anomaly && e.Source == series);

            sim.Site.Apply(FaultCommand.Parse($"utility-fail:{ups.Id}"));
            await WaitUntilAsync(() => events.Any(e => e.Kind == EdgeEventKind.Anomaly && e.Source == series),
                () => $"an anomaly event on {series}; events: {string.Join(", ", events.Select(e => e.Kind + " " + e.Source))}; value:score {string.Join(' ', trace.TakeLast(60))}", 60);

            // One event per episode: the outage goes on, but no second event for the series follows.
            await Task.Delay(TimeSpan.FromSeconds(3), Ct);
            var raised = events.Where(e => e.Kind == EdgeEventKind.Anomaly && e.Source == series).ToList();
            var e = Assert.Single(raised);
            Assert.Equal(series, e.Attributes!["series"]);
            Assert.Equal(AnomalyStage.ModelName, e.Attributes["model"]);
            Assert.Equal(AnomalyStage.ModelVersion, e.Attributes["version"]);
            Assert.Equal(AnomalyStage.ModelVersion, e.Attributes["model_version"]); // the one name on every model's events (consumer audit F7)
            var score = double.Parse(e.Attributes["score"], System.Globalization.CultureInfo.InvariantCulture);
            Assert.InRange(score, AnomalyDetectorOptions.Default.Threshold, 1.0);

            await agent.StopAsync(Ct);
        }
        finally
        {
            await physics.CancelAsync();
            await physicsTask;
        }
    }

    [Fact]
    public void Twin_anomaly_section_is_validated_with_file_line_and_key()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-twin-");
        try
        {
            var path = Path.Combine(dir.FullName, "twin.yaml");
            File.WriteAllText(path, """
                anomaly:
                  threshold: 0.6
                  overrides:
                    "ups-*/battery_*":
                      threshold: 0.8
                      counter: maybe
                    "pdu-*/energy":
                      warm_up: 10
                    "pdu-*/outlet_*":
                      threshold_interval: soon
                  treshold: 2
                """);
            var diagnostics = new ConfigDiagnostics();
            var root = (ConfigMapping)YamlTree.Parse(File.ReadAllText(path), path, diagnostics)!;
            new TwinAnomalySectionValidator().Validate(new ConfigReader(root, diagnostics));
            var problems = diagnostics.Items.Select(d => $"{Path.GetFileName(d.File)}:{d.Line} {d.Path}: {d.Message}").ToList();
            Assert.Contains(problems, p => p.StartsWith("twin.yaml:6 ", StringComparison.Ordinal) && p.Contains("counter", StringComparison.Ordinal));
            Assert.Contains(problems, p => p.StartsWith("twin.yaml:10 ", StringComparison.Ordinal) && p.Contains("threshold_interval", StringComparison.Ordinal) && p.Contains("duration", StringComparison.Ordinal));
            Assert.Contains(problems, p => p.StartsWith("twin.yaml:11 ", StringComparison.Ordinal) && p.Contains("treshold", StringComparison.Ordinal));
            Assert.Equal(3, problems.Count);

            File.WriteAllText(path, """
                anomaly:
                  threshold: 0.6
                  overrides:
                    "ups-*/battery_*": { threshold: 0.8 }
                    "pdu-*/outlet_*": { threshold_interval: 5m }
                """);
            diagnostics = new ConfigDiagnostics();
            root = (ConfigMapping)YamlTree.Parse(File.ReadAllText(path), path, diagnostics)!;
            var config = AnomalyConfig.From(root);
            Assert.Equal(0.6, config.Defaults.Threshold);
            Assert.Equal(0.8, config.OptionsFor(new Core.Samples.SeriesDescriptor("ups-1", "battery_temperature", "Cel")).Threshold);
            Assert.Equal(0.6, config.OptionsFor(new Core.Samples.SeriesDescriptor("pdu-1", "total_power", "kW")).Threshold);
            Assert.Equal(TimeSpan.Zero, config.OptionsFor(new Core.Samples.SeriesDescriptor("pdu-1", "total_power", "kW")).ThresholdInterval);
            Assert.Equal(TimeSpan.FromMinutes(5), config.OptionsFor(new Core.Samples.SeriesDescriptor("pdu-1", "outlet_power{1}", "W")).ThresholdInterval);
            Assert.True(config.OptionsFor(new Core.Samples.SeriesDescriptor("pdu-1", "energy", "kW.h", Core.Samples.MetricKind.Counter)).IsCounter);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Resonance_replay_keys_are_validated_in_the_site_config()
    {
        static List<string> Problems(string yaml)
        {
            var diagnostics = new ConfigDiagnostics();
            var root = (ConfigMapping)YamlTree.Parse(yaml, "twin.yaml", diagnostics)!;
            new TwinAnomalySectionValidator().Validate(new ConfigReader(root, diagnostics));
            return diagnostics.Items.Select(d => $"{d.Line} {d.Message}").ToList();
        }

        var bad = Problems("""
            anomaly:
              algorithm: max
              resonance_replay: sometimes
              overrides:
                "sw-*/if_*":
                  resonance_replay_widening: 2
            """);
        Assert.Contains(bad, p => p.StartsWith("3 ", StringComparison.Ordinal) && p.Contains("resonance_replay", StringComparison.Ordinal));
        Assert.Contains(bad, p => p.Contains("resonance_replay_widening must be in [0, 1]", StringComparison.Ordinal));
        Assert.Equal(2, bad.Count);

        var diagnostics = new ConfigDiagnostics();
        var root = (ConfigMapping)YamlTree.Parse("""
            anomaly:
              algorithm: max
              resonance_replay: true
              resonance_replay_blocks: 1024
              resonance_replay_widening: 0.02
            """, "twin.yaml", diagnostics)!;
        var options = AnomalyConfig.From(root).Defaults;
        Assert.Equal((true, 1024, 0.02), (options.ResonanceReplay, options.ResonanceReplayBlocks, options.ResonanceReplayWidening));
        Assert.Equal(1024, new StreamingAnomalyDetector(options).Resonance!.ReplayBlocks);
    }

    [Fact]
    public void Site_config_twin_section_is_checked_and_reaches_the_agent()
    {
        const string Pdu = """
              - { id: pdu-1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: pub, interval: 1s, timeout: 500ms }
            """;
        var options = new SiteConfigLoadOptions { SectionValidators = ConfigSectionValidators.Discover(typeof(AgentHostBuilder).Assembly) };

        // As edgetwin check loads it: a bad value is reported with file, line and key.
        var bad = SiteConfigLoader.Load(Agent.AgentFiles.WriteConfig(Pdu, "twin:\n  anomaly:\n    threshold: 1.5\n    overrides:\n      \"pdu-*\": { warm_up: soon }\n"), options);
        Assert.False(bad.IsValid);
        Assert.Contains(bad.Problems, p => p.Path.StartsWith("twin.anomaly", StringComparison.Ordinal) && p.Line > 0 && p.Message.Contains("threshold", StringComparison.Ordinal));
        Assert.Contains(bad.Problems, p => p.Path.Contains("warm_up", StringComparison.Ordinal) && p.Line > 0);

        var good = SiteConfigLoader.Load(Agent.AgentFiles.WriteConfig(Pdu, "twin:\n  anomaly:\n    threshold: 0.55\n    overrides:\n      \"pdu-*/total_*\": { threshold: 0.7 }\n"), options);
        Assert.True(good.IsValid, string.Join("\n", good.Problems));
        using var host = AgentHostBuilder.Build(good.Config!, new AgentHostOptions { UseSystemd = false, StatusLogInterval = null, ConfigureServices = s => s.AddTwinModels() });
        var config = host.Services.GetRequiredService<AnomalyConfig>();
        Assert.Equal(0.55, config.Defaults.Threshold);
        Assert.Equal(0.7, config.OptionsFor(new Core.Samples.SeriesDescriptor("pdu-1", "total_power", "kW")).Threshold);
    }

    [Fact]
    public void Regression_anomaly_range_errors_pointed_at_the_enclosing_mapping_instead_of_the_key()
    {
        var diagnostics = new ConfigDiagnostics();
        var root = (ConfigMapping)YamlTree.Parse("""
            anomaly:
              threshold: 1.5
              overrides:
                "drive1/*": { threshold: abc, warm_up: -3 }
                "drive2/*":
                  fast_alpha: 2
                "drive3/*": { warm_up: 5 }
            """, "twin.yaml", diagnostics)!;
        new TwinAnomalySectionValidator().Validate(new ConfigReader(root, diagnostics));
        var problems = diagnostics.Items.Select(d => $"{d.Line}:{d.Column} {d.Path}: {d.Message}").ToList();

        // Each range error at its key's value, with the key's path, as the type errors already were.
        Assert.Contains("2:14 anomaly.threshold: anomaly detector option threshold must be in (0, 1]", problems);
        Assert.Contains(problems, p => p.StartsWith("4:44 anomaly.overrides.drive1/*.warm_up: anomaly detector option warm_up must be >= 0", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("6:19 anomaly.overrides.drive2/*.fast_alpha: anomaly detector option fast_alpha must be in (0, 1]", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("drive1/*.threshold: 'threshold' must be a number", StringComparison.Ordinal));

        // The overrides inherit the bad default threshold (drive1's own 'abc' did not parse): reported once, at the default.
        Assert.Equal(4, problems.Count);
    }

    [Fact]
    public void An_override_glob_is_unmatched_only_when_no_series_and_no_later_table_row_can_match_it()
    {
        var config = AnomalyConfig.Default with
        {
            Overrides =
            [
                new AnomalyOverride("drive9/*", AnomalyDetectorOptions.Default),
                new AnomalyOverride("drive1/motor_*", AnomalyDetectorOptions.Default),
                new AnomalyOverride("pdu-1/outlet_current{outlet=?}", AnomalyDetectorOptions.Default),
                new AnomalyOverride("pdu-1/outlet_currents*", AnomalyDetectorOptions.Default),
            ],
        };
        string[] keys = ["drive1/motor_torque", "pdu-1/total_power"];
        string[] tableRows = ["pdu-1/outlet_current{"];
        Assert.Equal(["drive9/*", "pdu-1/outlet_currents*"], config.UnmatchedOverrides(keys, tableRows).Select(o => o.Glob));
        Assert.Equal(["drive9/*", "pdu-1/outlet_current{outlet=?}", "pdu-1/outlet_currents*"], config.UnmatchedOverrides(keys, []).Select(o => o.Glob));
    }

    [Fact]
    public async Task Regression_an_override_glob_that_matches_no_series_was_accepted_silently()
    {
        const string Pdu = """
              - { id: pdu-1, profile: apc-rpdu2, address: "udp:127.0.0.1:9", credentials: pub, interval: 10s, timeout: 200ms }
            """;
        var loadOptions = new SiteConfigLoadOptions { SectionValidators = ConfigSectionValidators.Discover(typeof(AgentHostBuilder).Assembly) };
        var loaded = SiteConfigLoader.Load(Agent.AgentFiles.WriteConfig(Pdu, """
            twin:
              anomaly:
                overrides:
                  "drive9/*": { threshold: 0.5 }
                  "pdu-*/total_*": { threshold: 0.7 }
                  "pdu-1/outlet_current{*": { threshold: 0.6 }

            """), loadOptions);
        Assert.True(loaded.IsValid, string.Join("\n", loaded.Problems)); // check cannot know the series: it accepts the typo

        var logs = new CapturedWarnings();
        using var host = AgentHostBuilder.Build(loaded.Config!, new AgentHostOptions
        {
            UseSystemd = false,
            StatusLogInterval = null,
            ConfigureServices = s => s.AddTwinModels(),
            ConfigureLogging = b => b.AddProvider(logs),
        });
        var runtime = host.Services.GetRequiredService<AgentRuntime>();
        await host.StartAsync(Ct);
        try
        {
            await runtime.Started.WaitAsync(TimeSpan.FromSeconds(30), Ct);
            await WaitUntilAsync(() => logs.Messages.Any(m => m.Contains("'drive9/*'", StringComparison.Ordinal)), () => "the warning; logged: " + string.Join(" | ", logs.Messages), 10);
            var warning = logs.Messages.Single(m => m.Contains("twin.anomaly.overrides", StringComparison.Ordinal));
            Assert.Contains("matches none of the site's", warning, StringComparison.Ordinal);
            Assert.Contains("pdu-1/", warning, StringComparison.Ordinal); // an example key shows the form
        }
        finally
        {
            await host.StopAsync(Ct);
        }
    }

    /// <summary>Warnings and worse, formatted, from every logger of the host.</summary>
    private sealed class CapturedWarnings : ILoggerProvider
    {
        public ConcurrentQueue<string> Messages { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this);

        public void Dispose()
        {
        }

        private sealed class Logger(CapturedWarnings owner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (IsEnabled(logLevel))
                {
                    owner.Messages.Enqueue(formatter(state, exception));
                }
            }
        }
    }

    private static int TraceId { get; set; } = -1;

    private static Task WaitUntilAsync(Func<bool> condition, string what, int seconds) => WaitUntilAsync(condition, () => what, seconds);

    private static async Task WaitUntilAsync(Func<bool> condition, Func<string> what, int seconds)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("timed out waiting for " + what());
            }

            await Task.Delay(50, Ct);
        }
    }
}
