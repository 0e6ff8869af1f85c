using System.Collections.Concurrent;
using EdgeTwin.Agent.Sources.Snmp;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.State;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>
/// A real snmpd whose probe table loses a row while the agent is down: the SNMP source remembers its rows in the state
/// directory, so the row's series is registered at the next start and its <c>missing</c> rule raises.
/// </summary>
public sealed class SnmpRememberedRowsTests(SnmpdProbeRowsProcess snmpd) : IClassFixture<SnmpdProbeRowsProcess>, IDisposable
{
    private readonly SnmpSourceFactory _factory = new();
    private readonly ConcurrentQueue<(LogLevel Level, string Message)> _logs = new();
    private readonly string _state = Directory.CreateTempSubdirectory("edgetwin-it-snmp-rows-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly DeviceProfile Profile = new(
        "probe-hub", "Acme", "Hub 1", DeviceProtocol.Snmp, "ACME-PROBE-MIB",
        [],
        [
            new ProfileTable("probe", "probe",
            [
                new ProfileMetric("temperature", "Cel", MetricKind.Gauge, "rack.inlet_temperature") { Oid = SnmpdProbeRowsProcess.Base + ".1.1.1.2", Scale = 0.1 },
            ]),
        ]);

    // As device-profiles/examples/alert-rules/datacenter.yaml ships it.
    private const string Rules = """
        alerts:
          rules:
            - name: rack-inlet-missing
              type: missing
              match: { role: rack.inlet_temperature }
              after: 2m
              severity: warning
        """;

    private static readonly CredentialsConfig Credentials = CredentialsConfig.V2c("v2", "public");

    private DeviceConfig Device(string id, int maxSeries = 1000, TimeSpan? rowRetention = null) => new(id, Profile.Id, DeviceAddress.Udp("127.0.0.1", snmpd.Port))
    {
        Credentials = Credentials.Name,
        Timeout = TimeSpan.FromSeconds(30),
        MaxSeries = maxSeries,
        RowRetention = rowRetention ?? DeviceConfig.DefaultRowRetention,
    };

    private DeviceSources Create(DeviceConfig device, string? stateDirectory, TimeProvider? time = null) =>
        _factory.Create(new SourceContext(device, Profile, Credentials, new SnmpDeviceErrorsTests.ListLoggerFactory(_logs), time ?? TimeProvider.System) { StateDirectory = stateDirectory });

    private SeriesRegistry Registry(DeviceConfig device)
    {
        var registry = new SeriesRegistry(new SnmpDeviceErrorsTests.ListLoggerFactory(_logs).CreateLogger<SeriesRegistry>());
        registry.LimitDevice(device.Id, device.MaxSeries, $"max_series of device '{device.Id}'");
        return registry;
    }

    private static string[] Keys(SeriesRegistry registry) => [.. registry.Snapshot().Select(s => s.Descriptor.Key).Order(StringComparer.Ordinal)];

    /// <summary>Agent run 1: the device lists probes 1–3; the source polls it once and stops.</summary>
    private async Task FirstRunAsync(DeviceConfig device)
    {
        snmpd.SetRows(1, 2, 3);
        await using var sources = Create(device, _state);
        var registry = Registry(device);
        sources.Polled!.RegisterSeries(registry);
        await sources.Polled.PollAsync(new RecordingSink(), 1_000, Ct);
        Assert.Equal([$"{device.Id}/temperature{{probe=1}}", $"{device.Id}/temperature{{probe=2}}", $"{device.Id}/temperature{{probe=3}}"], Keys(registry));
    }

    private static AlertsConfig Alerts(string dir, string rules = Rules)
    {
        var diagnostics = new ConfigDiagnostics();
        var root = (ConfigMapping)YamlTree.Parse(rules, "site.yaml", diagnostics)!;
        var config = AlertsConfig.Read(new ConfigReader((ConfigMapping)root["alerts"]!, diagnostics), dir);
        Assert.Empty(diagnostics.Items);
        return config;
    }

    [Fact]
    public async Task Regression_a_probe_row_gone_before_a_restart_never_raised_missing()
    {
        // Before: run 2 registered the rows the device listed (1 and 3) only; probe 2 had no series, no rule bound it,
        // and its rack inlet went unwatched without an alert or a line in the log.
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        var device = Device("probes1");
        await FirstRunAsync(device);
        Assert.True(File.Exists(SnmpRowsFile.PathOf(_state, device.Id)), "the rows are written after the poll that found them");

        snmpd.SetRows(1, 3); // probe 2 unplugged while the agent was down

        // Agent run 2, same state directory: the alerting binds rules as the registry announces series.
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 6, 6, 0, 0, TimeSpan.Zero));
        var registry = Registry(device);
        using var manager = new AlertManager(Alerts(_state), new SiteIndex((SiteConfig?)null), Path.Combine(_state, "alerts.db"), time);
        using var engine = new RuleEngine(manager, registry, time);
        await using var sources = Create(device, _state);
        sources.Polled!.RegisterSeries(registry);
        Assert.Contains("probes1/temperature{probe=2}", Keys(registry));
        Assert.Equal(3, engine.BoundSeries);
        Assert.Contains(_logs, l => l.Level == LogLevel.Information && l.Message.Contains("SNMP device probes1: 3 table row(s) remembered from the last run", StringComparison.Ordinal));

        for (var poll = 0; poll < 3; poll++)
        {
            var sink = new RecordingSink();
            await sources.Polled.PollAsync(sink, 2_000 + poll, Ct);
            Assert.Equal(["probes1/temperature{probe=1}", "probes1/temperature{probe=3}"], sink.Samples.Select(s => registry[s.Series].Key).Order(StringComparer.Ordinal));
            engine.Process(sink.Samples.ToArray());
            time.Advance(TimeSpan.FromSeconds(61));
            engine.Tick();
        }

        // 183 s after the start: probe 2 reported missing (its after is 2m), probes 1 and 3 not; no sample was made up for it.
        var missing = Assert.Single(manager.Active(), a => a.Rule == "rack-inlet-missing");
        Assert.Equal("probes1/temperature{probe=2}", missing.Key);
        Assert.Equal(AlertState.Firing, missing.State);
        // Still remembered (row_retention 1 day has not passed): a further restart watches it too.
        var (remembered, problem) = SnmpRowsFile.Read(SnmpRowsFile.PathOf(_state, device.Id), device.Id);
        Assert.Null(problem);
        Assert.Contains(remembered, r => r.Key == "temperature|2" && r.Tags.SequenceEqual([new("probe", "2")]));
    }

    private const string RulesAfter1s = """
        alerts:
          rules:
            - name: rack-inlet-missing
              type: missing
              match: { role: rack.inlet_temperature }
              after: 1s
              severity: warning
        """;

    private IReadOnlyList<SnmpRowsFile.Row> Remembered(DeviceConfig device)
    {
        var (rows, problem) = SnmpRowsFile.Read(SnmpRowsFile.PathOf(_state, device.Id), device.Id);
        Assert.Null(problem);
        return rows;
    }

    [Fact]
    public async Task Regression_a_removed_probe_row_was_never_retired_on_a_gateway_restarted_more_often_than_row_retention()
    {
        // Before: every start registered a remembered row as seen at that start, so row_retention began again at each
        // restart; on a gateway restarted more often than row_retention (daily deploys, watchdog restarts) a probe removed
        // for good kept its series and its rack-inlet-missing alert for ever. Here row_retention is 3 s and each run lasts
        // 1.2 s with probe 2 gone: its absent time is kept across the restarts (1.2 s, 2.4 s), the hour of downtime
        // between runs is not counted, and the third run retires it after its third complete poll.
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        var device = Device("probes5", rowRetention: TimeSpan.FromSeconds(3));
        await FirstRunAsync(device);
        snmpd.SetRows(1, 3); // probe 2 removed for good

        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 6, 6, 0, 0, TimeSpan.Zero));
        const string probe2 = "probes5/temperature{probe=2}";
        for (var run = 1; run <= 3; run++)
        {
            var registry = Registry(device);
            using var manager = new AlertManager(Alerts(_state, RulesAfter1s), new SiteIndex((SiteConfig?)null), Path.Combine(_state, "alerts.db"), time);
            using var engine = new RuleEngine(manager, registry, time);
            await using (var sources = Create(device, _state, time))
            {
                sources.Polled!.RegisterSeries(registry);
                Assert.Contains(probe2, Keys(registry));
                for (var poll = 1; poll <= 3; poll++)
                {
                    time.Advance(TimeSpan.FromMilliseconds(400));
                    var sink = new RecordingSink();
                    await sources.Polled.PollAsync(sink, time.GetUtcNow().ToUnixTimeMilliseconds(), Ct);
                    engine.Process(sink.Samples.ToArray());
                    engine.Tick();
                    // Absent 2.4 s + 0.8 s in the third run is past row_retention, but only 2 complete polls of this run.
                    Assert.Equal(run == 3 && poll == 3, !Keys(registry).Contains(probe2));
                }
                if (run < 3)
                {
                    Assert.Contains(manager.Active(), a => a.Rule == "rack-inlet-missing" && a.Key == probe2);
                }
            }
            if (run < 3)
            {
                // Written at the clean stop: absent for the 1.2 s of each run so far, measured on the monotonic clock.
                var row = Assert.Single(Remembered(device), r => r.Key == "temperature|2");
                Assert.Equal(TimeSpan.FromMilliseconds(1200 * run), row.Absent);
            }
            time.Advance(TimeSpan.FromHours(1)); // the gateway is down: not counted
        }

        Assert.Contains(_logs, l => l.Message.Contains("SNMP device probes5: 3 table row(s) remembered from the last run", StringComparison.Ordinal)
            && l.Message.Contains("(1 already absent in earlier runs, the longest 2.4s, credited;", StringComparison.Ordinal));
        Assert.Contains(_logs, l => l.Message.Contains("SNMP device probes5: 1 table row series retired", StringComparison.Ordinal)
            && l.Message.Contains(probe2, StringComparison.Ordinal));
        Assert.Equal(["temperature|1", "temperature|3"], Remembered(device).Select(r => r.Key).Order(StringComparer.Ordinal));
        Assert.All(Remembered(device), r => Assert.Equal(TimeSpan.Zero, r.Absent));
        // Its alert cleared with the series and is gone: a fourth start neither registers nor alerts on probe 2.
        var after = Registry(device);
        using (var manager = new AlertManager(Alerts(_state, RulesAfter1s), new SiteIndex((SiteConfig?)null), Path.Combine(_state, "alerts.db"), time))
        {
            Assert.DoesNotContain(manager.Active(), a => a.Key == probe2);
        }
        await using var fourth = Create(device, _state, time);
        fourth.Polled!.RegisterSeries(after);
        Assert.DoesNotContain(probe2, Keys(after));
    }

    [Fact]
    public async Task A_version_1_rows_file_is_still_read_with_its_rows_absent_0()
    {
        // Files written before the absent time was kept: their rows are read, as absent for no time yet.
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        var device = Device("probes6", rowRetention: TimeSpan.FromSeconds(3));
        var path = SnmpRowsFile.PathOf(_state, device.Id);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await File.WriteAllTextAsync(path, "edgetwin-snmp-rows 1 probes6\ntemperature|2\tprobe=2\ntemperature|1\tprobe=1\n", Ct);
        snmpd.SetRows(1);

        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 6, 6, 0, 0, TimeSpan.Zero));
        var registry = Registry(device);
        await using (var sources = Create(device, _state, time))
        {
            sources.Polled!.RegisterSeries(registry);
            Assert.Equal(["probes6/temperature{probe=1}", "probes6/temperature{probe=2}"], Keys(registry));
            Assert.Contains(_logs, l => l.Message.Contains("SNMP device probes6: 2 table row(s) remembered from the last run", StringComparison.Ordinal)
                && l.Message.Contains("(0 already absent in earlier runs", StringComparison.Ordinal));
            // Absent from the start: 2.7 s of three polls is not row_retention yet, 3.1 s is.
            for (var poll = 1; poll <= 3; poll++)
            {
                time.Advance(TimeSpan.FromMilliseconds(900));
                await sources.Polled.PollAsync(new RecordingSink(), 1_000 + poll, Ct);
                Assert.Contains("probes6/temperature{probe=2}", Keys(registry));
            }
            time.Advance(TimeSpan.FromMilliseconds(400));
            await sources.Polled.PollAsync(new RecordingSink(), 1_004, Ct);
            Assert.Equal(["probes6/temperature{probe=1}"], Keys(registry));
        }
        Assert.StartsWith("edgetwin-snmp-rows 2 probes6\n", await File.ReadAllTextAsync(path, Ct), StringComparison.Ordinal);
        Assert.Equal([new SnmpRowsFile.Row("temperature|1", [new("probe", "1")])], Remembered(device), RowComparer.Instance);
        Assert.DoesNotContain(_logs, l => l.Level >= LogLevel.Warning);
    }

    [Fact]
    public async Task A_probe_row_that_comes_back_has_its_absent_time_reset()
    {
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        var device = Device("probes7", rowRetention: TimeSpan.FromSeconds(3));
        await FirstRunAsync(device);

        // Run 2: probe 2 unplugged for 2 s, then a clean stop.
        snmpd.SetRows(1, 3);
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 6, 6, 0, 0, TimeSpan.Zero));
        await using (var sources = Create(device, _state, time))
        {
            sources.Polled!.RegisterSeries(Registry(device));
            for (var poll = 1; poll <= 2; poll++)
            {
                time.Advance(TimeSpan.FromSeconds(1));
                await sources.Polled.PollAsync(new RecordingSink(), 1_000 + poll, Ct);
            }
        }
        Assert.Equal(TimeSpan.FromSeconds(2), Assert.Single(Remembered(device), r => r.Key == "temperature|2").Absent);

        // Run 3 (its clock earlier than run 2's: no wall clock is compared): probe 2 plugged back in. The first complete
        // poll that sees it writes it absent 0, not a minute later, not only at the stop.
        snmpd.SetRows(1, 2, 3);
        time = new FakeTimeProvider(new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero));
        await using (var sources = Create(device, _state, time))
        {
            sources.Polled!.RegisterSeries(Registry(device));
            Assert.Contains(_logs, l => l.Message.Contains("SNMP device probes7: 3 table row(s) remembered from the last run", StringComparison.Ordinal)
                && l.Message.Contains("(1 already absent in earlier runs, the longest 2.0s, credited;", StringComparison.Ordinal));
            time.Advance(TimeSpan.FromMilliseconds(500));
            await sources.Polled.PollAsync(new RecordingSink(), 2_000, Ct);
            Assert.All(Remembered(device), r => Assert.Equal(TimeSpan.Zero, r.Absent));
            Assert.Equal(3, Remembered(device).Count);
        }

        // Run 4: gone again. Had run 3 kept its 2 s, three polls over 2.5 s would retire it (4.5 s); it starts from 0.
        snmpd.SetRows(1, 3);
        time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 6, 8, 0, 0, TimeSpan.Zero));
        var registry = Registry(device);
        await using (var sources = Create(device, _state, time))
        {
            sources.Polled!.RegisterSeries(registry);
            for (var poll = 1; poll <= 3; poll++)
            {
                time.Advance(TimeSpan.FromMilliseconds(833));
                await sources.Polled.PollAsync(new RecordingSink(), 3_000 + poll, Ct);
            }
            Assert.Contains("probes7/temperature{probe=2}", Keys(registry));
        }
        Assert.Equal(TimeSpan.FromMilliseconds(2499), Assert.Single(Remembered(device), r => r.Key == "temperature|2").Absent);
    }

    [Fact]
    public async Task The_rows_file_is_not_rewritten_while_every_row_answers_and_at_most_every_hundredth_of_row_retention_while_one_is_absent()
    {
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        var device = Device("probes8");
        var path = SnmpRowsFile.PathOf(_state, device.Id);
        var marked = new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        snmpd.SetRows(1, 2, 3);
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 6, 6, 0, 0, TimeSpan.Zero));
        await using (var sources = Create(device, _state, time))
        {
            sources.Polled!.RegisterSeries(Registry(device));
            await sources.Polled.PollAsync(new RecordingSink(), 1_000, Ct);
            Assert.Equal(3, Remembered(device).Count); // new rows: written at once

            // Every row answers: no poll writes, however long it runs, nor the stop.
            File.SetLastWriteTimeUtc(path, marked);
            for (var poll = 1; poll <= 5; poll++)
            {
                time.Advance(TimeSpan.FromSeconds(61));
                await sources.Polled.PollAsync(new RecordingSink(), 1_000 + poll, Ct);
            }
            Assert.Equal(marked, File.GetLastWriteTimeUtc(path));
        }
        Assert.Equal(marked, File.GetLastWriteTimeUtc(path));

        // Probe 2 gone: its growing absent time is written every row_retention / 100 (14.4 min of the default day) at
        // most, not on every poll.
        Assert.Equal(TimeSpan.FromMinutes(14.4), SnmpSource.RowsAbsentWriteEvery(device.RowRetention));
        await using (var sources = Create(device, _state, time))
        {
            sources.Polled!.RegisterSeries(Registry(device));
            snmpd.SetRows(1, 3);
            for (var poll = 1; poll <= 7; poll++)
            {
                time.Advance(TimeSpan.FromMinutes(2)); // 2 … 14 min after the start
                await sources.Polled.PollAsync(new RecordingSink(), 2_000 + poll, Ct);
            }
            Assert.Equal(marked, File.GetLastWriteTimeUtc(path));
            time.Advance(TimeSpan.FromSeconds(24)); // 14.4 min
            await sources.Polled.PollAsync(new RecordingSink(), 2_008, Ct);
            Assert.NotEqual(marked, File.GetLastWriteTimeUtc(path));
            Assert.Equal(TimeSpan.FromMinutes(14.4), Assert.Single(Remembered(device), r => r.Key == "temperature|2").Absent);
            File.SetLastWriteTimeUtc(path, marked);
            time.Advance(TimeSpan.FromMinutes(10));
            await sources.Polled.PollAsync(new RecordingSink(), 2_009, Ct);
            Assert.Equal(marked, File.GetLastWriteTimeUtc(path));
            time.Advance(TimeSpan.FromSeconds(36));
        }
        // And at the clean stop: 25 min.
        Assert.Equal(TimeSpan.FromMinutes(25), Assert.Single(Remembered(device), r => r.Key == "temperature|2").Absent);
        Assert.Equal(TimeSpan.FromMinutes(1), SnmpSource.RowsAbsentWriteEvery(TimeSpan.FromSeconds(3)));
        Assert.Equal(TimeSpan.FromMinutes(15), SnmpSource.RowsAbsentWriteEvery(TimeSpan.FromDays(7)));
        Assert.DoesNotContain(_logs, l => l.Level >= LogLevel.Warning);
    }

    private sealed class RowComparer : IEqualityComparer<SnmpRowsFile.Row>
    {
        public static readonly RowComparer Instance = new();

        public bool Equals(SnmpRowsFile.Row? x, SnmpRowsFile.Row? y) =>
            x is not null && y is not null && x.Key == y.Key && x.Absent == y.Absent && x.Tags.SequenceEqual(y.Tags);

        public int GetHashCode(SnmpRowsFile.Row obj) => obj.Key.GetHashCode(StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_corrupt_rows_file_is_named_in_one_warning_and_the_device_polls_and_replaces_it()
    {
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        var device = Device("probes2");
        var path = SnmpRowsFile.PathOf(_state, device.Id);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await File.WriteAllBytesAsync(path, [0x00, 0xff, 0x13, 0x37, (byte)'\n', (byte)'x'], Ct);
        snmpd.SetRows(1, 2, 3);

        await using (var sources = Create(device, _state))
        {
            var registry = Registry(device);
            sources.Polled!.RegisterSeries(registry);
            Assert.Empty(Keys(registry));
            await sources.Polled.PollAsync(new RecordingSink(), 1_000, Ct);
            Assert.Equal(3, Keys(registry).Length);
        }

        var warning = Assert.Single(_logs, l => l.Level == LogLevel.Warning).Message;
        Assert.Contains($"SNMP device probes2: the remembered table rows {path} cannot be read (", warning, StringComparison.Ordinal);

        // Replaced by this run's rows: the next start remembers them.
        snmpd.SetRows(1);
        await using var again = Create(device, _state);
        var next = Registry(device);
        again.Polled!.RegisterSeries(next);
        Assert.Equal(["probes2/temperature{probe=1}", "probes2/temperature{probe=2}", "probes2/temperature{probe=3}"], Keys(next));
        Assert.Single(_logs, l => l.Level == LogLevel.Warning);
    }

    [Fact]
    public async Task Remembered_rows_count_against_max_series_and_those_past_it_are_dropped()
    {
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        await FirstRunAsync(Device("probes3"));

        snmpd.SetRows(1, 2, 3);
        var device = Device("probes3", maxSeries: 2);
        var registry = Registry(device);
        await using var sources = Create(device, _state);
        sources.Polled!.RegisterSeries(registry);
        Assert.Equal(2, Keys(registry).Length);
        Assert.Contains(_logs, l => l.Message.Contains("SNMP device probes3: 2 table row(s) remembered from the last run", StringComparison.Ordinal)
            && l.Message.Contains("1 past max_series dropped", StringComparison.Ordinal));
        Assert.Equal(0, registry.Budget(device.Id).Dropped); // no sample was refused for them
    }

    [Fact]
    public async Task Without_a_state_directory_nothing_is_remembered_or_written()
    {
        // edgetwin poll builds sources without one: it must not write next to the agent's outbox.
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        var device = Device("probes4");
        snmpd.SetRows(1, 2, 3);
        await using var sources = Create(device, null);
        var registry = Registry(device);
        sources.Polled!.RegisterSeries(registry);
        await sources.Polled.PollAsync(new RecordingSink(), 1_000, Ct);
        Assert.Equal(3, Keys(registry).Length);
        Assert.False(Directory.Exists(Path.Combine(_state, SnmpRowsFile.DirectoryName)));
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_state, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
