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

    private DeviceConfig Device(string id, int maxSeries = 1000) => new(id, Profile.Id, DeviceAddress.Udp("127.0.0.1", snmpd.Port))
    {
        Credentials = Credentials.Name,
        Timeout = TimeSpan.FromSeconds(30),
        MaxSeries = maxSeries,
    };

    private DeviceSources Create(DeviceConfig device, string? stateDirectory) =>
        _factory.Create(new SourceContext(device, Profile, Credentials, new SnmpDeviceErrorsTests.ListLoggerFactory(_logs), TimeProvider.System) { StateDirectory = stateDirectory });

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

    private static AlertsConfig Alerts(string dir)
    {
        var diagnostics = new ConfigDiagnostics();
        var root = (ConfigMapping)YamlTree.Parse(Rules, "site.yaml", diagnostics)!;
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
        Assert.Contains("\ntemperature|2\tprobe=2\n", await File.ReadAllTextAsync(SnmpRowsFile.PathOf(_state, device.Id), Ct), StringComparison.Ordinal);
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
