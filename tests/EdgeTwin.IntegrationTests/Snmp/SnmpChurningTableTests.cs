using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using EdgeTwin.Agent.Sources.Snmp;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.IntegrationTests.Agent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>A real snmpd whose table rows get new indices on every walk: the series of the device must stay bounded.</summary>
public sealed class SnmpChurningTableTests(SnmpdChurningTableProcess snmpd) : IClassFixture<SnmpdChurningTableProcess>, IAsyncDisposable
{
    private const string Base = SnmpdChurningTableProcess.Base;
    private readonly SnmpSourceFactory _factory = new();
    private readonly ConcurrentQueue<(LogLevel Level, string Message)> _logs = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly DeviceProfile Profile = new(
        "churn-switch", "Acme", "Churn 1", DeviceProtocol.Snmp, "ACME-CHURN-MIB",
        [new ProfileMetric("supply_voltage", "V", MetricKind.Gauge, "room.supply_voltage") { Oid = Base + ".2.1.0", Scale = 0.1 }],
        [
            new ProfileTable("port", "port",
            [
                new ProfileMetric("temperature", "Cel", MetricKind.Gauge, "room.temperature") { Oid = Base + ".1.1.1.2", Scale = 0.1 },
                new ProfileMetric("power", "W", MetricKind.Gauge, "room.power") { Oid = Base + ".1.1.1.3" },
            ]),
        ]);

    [Fact]
    public async Task Regression_a_table_whose_rows_change_index_every_poll_grew_the_series_registry_without_bound()
    {
        // Before the cap: 17, 27, 37, ... 107 series after 10 polls, ten more with every poll, for as long as the agent ran.
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        const int cap = 30;
        const int polls = 10;
        var credentials = CredentialsConfig.V2c("v2", "public");
        var device = new DeviceConfig("churn1", Profile.Id, DeviceAddress.Udp("127.0.0.1", snmpd.Port))
        {
            Credentials = credentials.Name,
            Timeout = TimeSpan.FromSeconds(30),
            MaxSeries = cap,
        };
        long droppedMetric = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == SeriesRegistry.MeterName && instrument.Name == "edgetwin.series.dropped")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, v, tags, _) =>
        {
            foreach (var t in tags)
            {
                if (t.Key == "device" && (string?)t.Value == "churn1")
                {
                    Interlocked.Add(ref droppedMetric, v);
                }
            }
        });
        listener.Start();

        var loggers = new SnmpDeviceErrorsTests.ListLoggerFactory(_logs);
        await using var sources = _factory.Create(new SourceContext(device, Profile, credentials, loggers, TimeProvider.System));
        var registry = new SeriesRegistry(loggers.CreateLogger<SeriesRegistry>());
        // As the agent does before any source registers.
        registry.LimitDevice(device.Id, device.MaxSeries, "max_series of device 'churn1' in site.yaml");
        sources.Polled!.RegisterSeries(registry);
        var counts = new List<int>();
        var perPoll = new List<HashSet<string>>();
        for (var poll = 0; poll < polls; poll++)
        {
            var sink = new RecordingSink();
            await sources.Polled.PollAsync(sink, 1_000 * poll, Ct);
            counts.Add(registry.Count);
            perPoll.Add([.. sink.Samples.Select(s => registry[s.Series].Key)]);
        }

        var trace = "series after each poll: " + string.Join(", ", counts);
        Assert.True(counts.SequenceEqual([17, 27, 30, 30, 30, 30, 30, 30, 30, 30]), trace);
        var budget = registry.Budget("churn1");
        Assert.Equal((cap, cap), (budget.Count, budget.MaxSeries));
        // The series the device already had keep flowing on every poll: the scalar and both columns of the stable rows.
        string[] stable = ["churn1/supply_voltage", .. Enumerable.Range(1, SnmpdChurningTableProcess.StableRows).SelectMany(i => new[] { $"churn1/temperature{{port={i}}}", $"churn1/power{{port={i}}}" })];
        Assert.All(perPoll, keys => Assert.Superset(stable.ToHashSet(), keys));
        Assert.All(perPoll.Skip(3), keys => Assert.Equal(stable.Length, keys.Count));
        // Every churning cell is a new series: 10 polls × 5 rows × 2 columns, of which 23 fitted under the cap.
        var expectedDropped = polls * SnmpdChurningTableProcess.ChurningRowsPerWalk * 2 - (cap - stable.Length);
        Assert.Equal(expectedDropped, budget.Dropped);
        Assert.Equal(expectedDropped, Interlocked.Read(ref droppedMetric));
        var warning = Assert.Single(_logs, l => l.Level == LogLevel.Warning && l.Message.Contains("reached its cap", StringComparison.Ordinal)).Message;
        Assert.Contains("Device churn1 reached its cap of 30 series", warning, StringComparison.Ordinal);
        Assert.Contains("raise max_series of device 'churn1' in site.yaml", warning, StringComparison.Ordinal);
        Assert.Matches(@"A dropped series: churn1/(temperature|power)\{port=10\d\d\}", warning);
    }

    private const string ProfileYaml = $$"""
        profile: churn-switch
        vendor: Acme
        model: Churn 1
        protocol: snmp
        source: ACME-CHURN-MIB
        metrics:
          - { name: supply_voltage, oid: {{Base}}.2.1.0, unit: V, kind: gauge, role: pdu.voltage, scale: 0.1 }
        tables:
          - name: port
            index_tag: port
            columns:
              - { name: temperature, oid: {{Base}}.1.1.1.2, unit: Cel, kind: gauge, role: net.device_temperature, scale: 0.1 }
              - { name: power, oid: {{Base}}.1.1.1.3, unit: W, kind: gauge, role: pdu.outlet_power }
        """;

    [Fact]
    public async Task Regression_the_running_agent_showed_nothing_while_a_churning_table_grew_a_device_series_forever()
    {
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        var path = WriteConfig("churn-agent", maxSeries: 30);
        var config = AgentFiles.Load(path);
        var options = new AgentHostOptions
        {
            UseSystemd = false,
            StatusLogInterval = TimeSpan.FromSeconds(1),
            ConfigureLogging = b => b.AddProvider(new ListLoggerProvider(_logs)),
        };
        using var host = AgentHostBuilder.Build(config, options);
        var runtime = host.Services.GetRequiredService<AgentRuntime>();
        await host.StartAsync(Ct);
        try
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (!_logs.Any(l => l.Message.StartsWith("Status:", StringComparison.Ordinal) && l.Message.Contains("churn-agent 30/30", StringComparison.Ordinal)))
            {
                Assert.True(DateTime.UtcNow < deadline, "no status line naming the capped device; logs:\n" + string.Join("\n", _logs.Select(l => l.Message)));
                await Task.Delay(100, Ct);
            }
        }
        finally
        {
            await host.StopAsync(Ct);
        }

        var status = runtime.DeviceStatus().Single(d => d.DeviceId == "churn-agent");
        Assert.Equal((30, 30), (status.Series, status.MaxSeries));
        Assert.True(status.SeriesDropped > 0);
        Assert.Equal(30, runtime.Registry.Count);
        var line = _logs.Last(l => l.Message.StartsWith("Status:", StringComparison.Ordinal)).Message;
        Assert.Matches(@"; at max_series, samples of new series dropped: churn-agent 30/30 \(\d+ dropped\)$", line);
        var warning = Assert.Single(_logs, l => l.Level == LogLevel.Warning && l.Message.Contains("reached its cap", StringComparison.Ordinal)).Message;
        Assert.Contains($"raise max_series of device 'churn-agent' in {path}", warning, StringComparison.Ordinal);
    }

    /// <summary>A site config with one device on the churning snmpd, its profile in a directory of its own.</summary>
    private string WriteConfig(string id, int maxSeries)
    {
        var path = AgentFiles.WriteConfig($$"""
              - { id: {{id}}, profile: churn-switch, address: "udp:127.0.0.1:{{snmpd.Port}}", credentials: pub, interval: 1s, timeout: 900ms, max_series: {{maxSeries}} }
            """);
        var profiles = Path.Combine(Path.GetDirectoryName(path)!, "profiles");
        Directory.CreateDirectory(profiles);
        File.WriteAllText(Path.Combine(profiles, "churn-switch.yaml"), ProfileYaml);
        File.WriteAllText(path, File.ReadAllText(path).Replace($"profiles_dir: {AgentFiles.ProfilesDir}", $"profiles_dir: {profiles}", StringComparison.Ordinal));
        return path;
    }

    [Fact]
    public async Task Edgetwin_poll_applies_the_cap_and_says_how_many_samples_it_left_out()
    {
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        var path = WriteConfig("churn-poll", maxSeries: 5);
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await EdgeTwin.Agent.Cli.PollCommand.PollAsync(AgentFiles.Load(path), "churn-poll", new SourceFactories([_factory]),
            new SnmpDeviceErrorsTests.ListLoggerFactory(_logs), TimeProvider.System, json: false, output, error, Ct);

        Assert.Equal(0, code);
        // One poll: the scalar and 16 table cells; the scalar and the first 4 cells fit under 5, 12 samples are left out.
        Assert.Equal(
            $"edgetwin: device 'churn-poll' has more series than its max_series (5): 12 sample(s) of further series not shown; raise max_series of device 'churn-poll' in {path}",
            error.ToString().TrimEnd('\n'));
        Assert.Equal(5, output.ToString().TrimEnd('\n').Split('\n').Count(l => l.StartsWith("supply_voltage", StringComparison.Ordinal) || l.StartsWith("temperature", StringComparison.Ordinal) || l.StartsWith("power", StringComparison.Ordinal)));
    }

    public ValueTask DisposeAsync() => _factory.DisposeAsync();
}
