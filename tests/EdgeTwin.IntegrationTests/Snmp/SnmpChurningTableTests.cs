using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using EdgeTwin.Agent.Sources.Snmp;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.IntegrationTests.Agent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
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
        // Churning indices start at 1000 and grow with every walk of the shared snmpd, whichever test walked it before.
        Assert.Matches(@"A dropped series: churn1/(temperature|power)\{port=\d{4,}\}", warning);
    }

    [Fact]
    public async Task Rows_gone_for_row_retention_are_retired_so_a_churning_table_stays_bounded_without_refusing_new_rows()
    {
        // Before: the series of vanished rows were kept until a restart; at max_series every new row was refused.
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        const int polls = 10;
        var credentials = CredentialsConfig.V2c("v2", "public");
        var device = new DeviceConfig("churn-retire", Profile.Id, DeviceAddress.Udp("127.0.0.1", snmpd.Port))
        {
            Credentials = credentials.Name,
            Timeout = TimeSpan.FromSeconds(30),
            RowRetention = TimeSpan.FromMilliseconds(1), // the polls alone decide: a row missing from 3 complete polls goes
        };
        var loggers = new SnmpDeviceErrorsTests.ListLoggerFactory(_logs);
        await using var sources = _factory.Create(new SourceContext(device, Profile, credentials, loggers, TimeProvider.System));
        var registry = new SeriesRegistry(loggers.CreateLogger<SeriesRegistry>());
        registry.LimitDevice(device.Id, device.MaxSeries);
        sources.Polled!.RegisterSeries(registry);
        var live = new List<int>();
        var stableIds = new List<HashSet<SeriesId>>();
        string[] stable = ["churn-retire/supply_voltage", .. Enumerable.Range(1, SnmpdChurningTableProcess.StableRows).SelectMany(i => new[] { $"churn-retire/temperature{{port={i}}}", $"churn-retire/power{{port={i}}}" })];
        for (var poll = 0; poll < polls; poll++)
        {
            var sink = new RecordingSink();
            await sources.Polled.PollAsync(sink, 1_000 * poll, Ct);
            live.Add(registry.Budget("churn-retire").Count);
            stableIds.Add([.. sink.Samples.Where(x => stable.Contains(registry[x.Series].Key)).Select(x => x.Series)]);
        }

        // 7 stable series and 10 new ones per poll; each poll's new rows are retired after the next three complete polls.
        Assert.True(live.SequenceEqual([17, 27, 37, 37, 37, 37, 37, 37, 37, 37]), "live series after each poll: " + string.Join(", ", live));
        Assert.Equal((polls - 3) * SnmpdChurningTableProcess.ChurningRowsPerWalk * 2, registry.RetiredCount);
        Assert.Equal((long)registry.RetiredCount, registry.Budget("churn-retire").Retired);
        Assert.Equal(17 + ((polls - 1) * 10), registry.Count);
        // The stable rows keep their series, and none of them is retired.
        Assert.All(stableIds, ids => Assert.Equal(stableIds[0], ids));
        Assert.All(stableIds[0], id => Assert.False(registry.IsRetired(id)));
        var retiredLines = _logs.Where(l => l.Level == LogLevel.Information && l.Message.Contains("table row series retired", StringComparison.Ordinal)).Select(l => l.Message).ToList();
        Assert.Equal(polls - 3, retiredLines.Count);
        Assert.Matches(@"^SNMP device churn-retire: 10 table row series retired, their rows absent for at least row_retention 1ms and 3 complete polls \(.*\): churn-retire/(temperature|power)\{port=\d{4,}\}, ", retiredLines[0]);
    }

    [Fact]
    public async Task At_max_series_new_rows_are_admitted_again_once_the_vanished_ones_are_retired()
    {
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        var credentials = CredentialsConfig.V2c("v2", "public");
        var device = new DeviceConfig("churn-cap-retire", Profile.Id, DeviceAddress.Udp("127.0.0.1", snmpd.Port))
        {
            Credentials = credentials.Name,
            Timeout = TimeSpan.FromSeconds(30),
            MaxSeries = 30,
            RowRetention = TimeSpan.FromMilliseconds(1),
        };
        var loggers = new SnmpDeviceErrorsTests.ListLoggerFactory(_logs);
        await using var sources = _factory.Create(new SourceContext(device, Profile, credentials, loggers, TimeProvider.System));
        var registry = new SeriesRegistry(loggers.CreateLogger<SeriesRegistry>());
        registry.LimitDevice(device.Id, device.MaxSeries);
        sources.Polled!.RegisterSeries(registry);
        var newRowsPerPoll = new List<int>();
        for (var poll = 0; poll < 12; poll++)
        {
            var sink = new RecordingSink();
            await sources.Polled.PollAsync(sink, 1_000 * poll, Ct);
            Assert.True(registry.Budget("churn-cap-retire").Count <= 30);
            newRowsPerPoll.Add(sink.Samples.Count(x => registry[x.Series].Tags is [var port, ..] && port.Value.Length >= 4));
        }

        // Without retirement: 10, 10, 3, then 0 on every poll for as long as the agent ran (the first test above). Now the
        // rows retired at the end of the 4th poll (those of the 1st) make room for the next polls' rows, and so on: at a
        // cap this tight, the cycle repeats every four polls.
        Assert.Equal([10, 10, 3, 0, 10, 10, 3, 0, 10, 10, 3, 0], newRowsPerPoll);
        Assert.True(registry.Budget("churn-cap-retire").Dropped > 0);
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
        using var host = await RunAgentUntilAsync(
            path,
            _ => _logs.Any(l => l.Message.StartsWith("Status:", StringComparison.Ordinal) && l.Message.Contains("churn-agent 30/30", StringComparison.Ordinal)),
            "no status line naming the capped device",
            TimeSpan.FromSeconds(60));
        var runtime = host.Services.GetRequiredService<AgentRuntime>();

        var status = runtime.DeviceStatus().Single(d => d.DeviceId == "churn-agent");
        Assert.Equal((30, 30), (status.Series, status.MaxSeries));
        Assert.True(status.SeriesDropped > 0);
        Assert.Equal(30, runtime.Registry.Count);
        var line = _logs.Last(l => l.Message.StartsWith("Status:", StringComparison.Ordinal)).Message;
        Assert.Matches(@"; at max_series, samples of new series dropped: churn-agent 30/30 \(\d+ dropped\)$", line);
        var warning = Assert.Single(_logs, l => l.Level == LogLevel.Warning && l.Message.Contains("reached its cap", StringComparison.Ordinal)).Message;
        Assert.Contains($"raise max_series of device 'churn-agent' in {path}", warning, StringComparison.Ordinal);
    }

    /// <summary>Runs the agent on <paramref name="path"/> until <paramref name="done"/> (or fails with <paramref name="failure"/> and the log), then stops it; the caller disposes it.</summary>
    private async Task<IHost> RunAgentUntilAsync(string path, Func<AgentRuntime, bool> done, string failure, TimeSpan within, Action<IServiceCollection>? services = null)
    {
        var options = new AgentHostOptions
        {
            UseSystemd = false,
            StatusLogInterval = TimeSpan.FromSeconds(1),
            ConfigureLogging = b => b.AddProvider(new ListLoggerProvider(_logs)),
        };
        if (services is not null)
        {
            options.ConfigureServices += services;
        }
        var host = AgentHostBuilder.Build(AgentFiles.Load(path), options);
        var runtime = host.Services.GetRequiredService<AgentRuntime>();
        await host.StartAsync(Ct);
        try
        {
            var deadline = DateTime.UtcNow + within;
            while (!done(runtime))
            {
                Assert.True(DateTime.UtcNow < deadline, failure + "; logs:\n" + string.Join("\n", _logs.Select(l => l.Message)));
                await Task.Delay(100, Ct);
            }
        }
        finally
        {
            await host.StopAsync(Ct);
        }

        return host;
    }

    /// <summary>A site config with one device on the churning snmpd, its profile in a directory of its own.</summary>
    private string WriteConfig(string id, int maxSeries, string extra = "")
    {
        var path = AgentFiles.WriteConfig($$"""
              - { id: {{id}}, profile: churn-switch, address: "udp:127.0.0.1:{{snmpd.Port}}", credentials: pub, interval: 1s, timeout: 900ms, max_series: {{maxSeries}}{{extra}} }
            """);
        var profiles = Path.Combine(Path.GetDirectoryName(path)!, "profiles");
        Directory.CreateDirectory(profiles);
        File.WriteAllText(Path.Combine(profiles, "churn-switch.yaml"), ProfileYaml);
        File.WriteAllText(path, File.ReadAllText(path).Replace($"profiles_dir: {AgentFiles.ProfilesDir}", $"profiles_dir: {profiles}", StringComparison.Ordinal));
        return path;
    }

    [Fact]
    public async Task The_running_agent_retires_vanished_rows_and_stays_under_max_series_without_a_cap_warning()
    {
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        // 60 would be reached at the sixth poll if vanished rows kept their series (7 + 10 per poll); with row_retention
        // they leave after three polls, so at most 47 are live (at the end of a poll, before its retirements).
        var path = WriteConfig("churn-agent-retire", maxSeries: 60, extra: ", row_retention: 1s");
        using var host = await RunAgentUntilAsync(path, r => r.Registry.Budget("churn-agent-retire").Retired >= 30, "fewer than 30 series retired", TimeSpan.FromSeconds(90));
        var runtime = host.Services.GetRequiredService<AgentRuntime>();

        var budget = runtime.Registry.Budget("churn-agent-retire");
        Assert.InRange(budget.Count, 17, 47);
        Assert.Equal(0, budget.Dropped);
        Assert.True(runtime.Registry.Count > 60, $"{runtime.Registry.Count} ids handed out");
        Assert.DoesNotContain(_logs, l => l.Message.Contains("reached its cap", StringComparison.Ordinal));
        Assert.DoesNotContain(_logs, l => l.Level >= LogLevel.Error);
        Assert.Contains(_logs, l => l.Message.StartsWith("SNMP device churn-agent-retire: 10 table row series retired", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_running_agent_keeps_the_absent_time_of_vanished_rows_in_its_rows_file_beside_the_outbox()
    {
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        // row_retention 1h: the rows of earlier walks stay, absent; the file beside the outbox says for how long.
        var path = WriteConfig("churn-agent-absent", maxSeries: 500, extra: ", row_retention: 1h");
        using var host = await RunAgentUntilAsync(path, r => r.Registry.Budget("churn-agent-absent").Count >= 37, "fewer than three polls", TimeSpan.FromSeconds(60),
            s => s.AddStoreAndForward()); // the outbox, as `edgetwin run` has it: its directory is the state directory

        var (rows, problem) = SnmpRowsFile.Read(SnmpRowsFile.PathOf(Path.GetDirectoryName(path)!, "churn-agent-absent"), "churn-agent-absent");
        Assert.Null(problem);
        Assert.True(rows.Count >= 36, $"{rows.Count} rows remembered");
        static int Index(SnmpRowsFile.Row r) => int.Parse(r.Key[(r.Key.IndexOf('|', StringComparison.Ordinal) + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        // The three stable rows answer every walk; the churning rows of the walks before the last are absent since.
        Assert.All(rows.Where(r => Index(r) < 1000), r => Assert.Equal(TimeSpan.Zero, r.Absent));
        Assert.Equal(6, rows.Count(r => Index(r) < 1000));
        Assert.True(rows.Count(r => r.Absent > TimeSpan.Zero) >= 20, string.Join(", ", rows.Select(r => $"{r.Key} {r.Absent.TotalMilliseconds} ms")));
        Assert.All(rows.Where(r => r.Absent > TimeSpan.Zero), r => Assert.InRange(r.Absent, TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(60)));
        Assert.DoesNotContain(_logs, l => l.Level >= LogLevel.Error || l.Message.Contains("remembered table rows", StringComparison.Ordinal));
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
