using System.Collections.Concurrent;
using EdgeTwin.Agent.Cli;
using EdgeTwin.Agent.Sources;
using EdgeTwin.Agent.Sources.Snmp;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.IntegrationTests.Agent;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>
/// A device whose profile has mistakes (the onboarding audit's): a missing scalar, a scalar without .0, a text scalar
/// declared a gauge, a column given with its instance, a column that does not exist, a Counter64 column over v1, a
/// max_rows below the row count. Against a real snmpd: the good data must flow and every mistake must be named once.
/// </summary>
public sealed class SnmpDeviceErrorsTests(SnmpdEnvMonProcess snmpd) : IClassFixture<SnmpdEnvMonProcess>, IAsyncDisposable
{
    private const string Base = ".1.3.6.1.4.1.99999";
    private readonly SnmpSourceFactory _factory = new();
    private readonly ConcurrentQueue<(LogLevel Level, string Message)> _logs = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static DeviceProfile Profile(int maxRows = 64) => new(
        "acme-envmon", "Acme", "EnvMon 3", DeviceProtocol.Snmp, "ACME-ENVMON-MIB",
        [
            new ProfileMetric("supply_voltage", "V", MetricKind.Gauge, "room.supply_voltage") { Oid = Base + ".2.1.0", Scale = 0.1 },
            new ProfileMetric("supply_voltage_noinst", "V", MetricKind.Gauge, "room.supply_voltage2") { Oid = Base + ".2.1" },
            new ProfileMetric("missing_scalar", "V", MetricKind.Gauge, "room.missing") { Oid = Base + ".2.9.0" },
            new ProfileMetric("firmware", "1", MetricKind.Gauge, "room.firmware") { Oid = Base + ".2.2.0" },
            new ProfileMetric("alarm_events", "1", MetricKind.Counter, "room.alarm_events") { Oid = Base + ".2.3.0" },
        ],
        [
            new ProfileTable("zone", "zone",
            [
                new ProfileMetric("temperature", "Cel", MetricKind.Gauge, "room.temperature") { Oid = Base + ".1.1.1.3", Scale = 0.1 },
                new ProfileMetric("temp_with_instance", "Cel", MetricKind.Gauge, "room.temperature2") { Oid = Base + ".1.1.1.3.1", Scale = 0.1 },
                new ProfileMetric("no_such_column", "1", MetricKind.Gauge, "room.nothing") { Oid = Base + ".1.1.1.9" },
                new ProfileMetric("energy", "W.h", MetricKind.Counter, "room.energy") { Oid = Base + ".1.1.1.5" },
                new ProfileMetric("airflow", "1", MetricKind.Gauge, "room.airflow") { Oid = Base + ".1.1.1.6" },
            ]) { LabelOid = Base + ".1.1.1.2", LabelTag = "zone_name", MaxRows = maxRows },
        ]);

    private static CredentialsConfig V1 => new("v1", EdgeTwin.Core.Config.SnmpVersion.V1) { Community = "public" };

    private static CredentialsConfig V2c => CredentialsConfig.V2c("v2", "public");

    private void Skip() => Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");

    private (IPolledSource Source, SeriesRegistry Registry) Build(CredentialsConfig credentials, DeviceProfile profile, TimeSpan? timeout = null)
    {
        var device = new DeviceConfig("env1", profile.Id, DeviceAddress.Udp("127.0.0.1", snmpd.Port))
        {
            Credentials = credentials.Name,
            // snmpd's pass runs python3 once per OID: on a loaded 2-core machine one walk took over 10 s.
            Timeout = timeout ?? TimeSpan.FromSeconds(30),
        };
        var sources = _factory.Create(new SourceContext(device, profile, credentials, new ListLoggerFactory(_logs), TimeProvider.System));
        var registry = new SeriesRegistry();
        sources.Polled!.RegisterSeries(registry);
        return (sources.Polled, registry);
    }

    private static async Task<Dictionary<string, Sample>> PollAsync(IPolledSource source, SeriesRegistry registry, long at)
    {
        var sink = new RecordingSink();
        await source.PollAsync(sink, at, Ct);
        return sink.Samples.ToDictionary(s => registry[s.Series].Key);
    }

    private string[] Warnings() => _logs.Where(l => l.Level == LogLevel.Warning).Select(l => l.Message).ToArray();

    [Fact]
    public async Task Regression_one_bad_oid_on_snmpv1_took_the_whole_device_down()
    {
        Skip();
        var (source, registry) = Build(V1, Profile());
        var byKey = await PollAsync(source, registry, 1_000_000);

        Assert.Equal(230.1, byKey["env1/supply_voltage"].Value, 6);
        Assert.Equal(SampleQuality.Good, byKey["env1/supply_voltage"].Quality);
        Assert.Equal(4294967290, byKey["env1/alarm_events"].Value);
        Assert.Equal(SampleQuality.DeviceError, byKey["env1/missing_scalar"].Quality);
        Assert.Equal(SampleQuality.DeviceError, byKey["env1/supply_voltage_noinst"].Quality);
        Assert.Contains("noSuchName", ((ISampleReasons)source).ReasonOf(byKey["env1/missing_scalar"].Series), StringComparison.Ordinal);
        // The tables are still walked after the dropped varbinds.
        Assert.Equal(21.5, byKey["env1/temperature{zone=1,zone_name=zone-a}"].Value, 6);
        Assert.Equal(100.3, byKey["env1/temperature{zone=3,zone_name=zone-c}"].Value, 6);
        Assert.Equal(4000000002, byKey["env1/airflow{zone=2,zone_name=zone-b}"].Value);
    }

    [Fact]
    public async Task A_v1_device_that_does_not_answer_still_fails_the_poll()
    {
        Skip();
        // A wrong community draws no answer at all: that is the device failing, not one OID.
        var (source, _) = Build(new CredentialsConfig("v1", EdgeTwin.Core.Config.SnmpVersion.V1) { Community = "wrong" }, Profile(), TimeSpan.FromSeconds(1));
        var ex = await Assert.ThrowsAsync<DeviceException>(async () => await source.PollAsync(new RecordingSink(), 1, Ct));
        Assert.Contains("env1", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_unreadable_scalars_were_device_error_with_no_reason_anywhere()
    {
        Skip();
        var (source, registry) = Build(V2c, Profile());
        var byKey = await PollAsync(source, registry, 1_000_000);
        await PollAsync(source, registry, 1_010_000);

        var reasons = (ISampleReasons)source;
        Assert.Contains("noSuchInstance", reasons.ReasonOf(byKey["env1/missing_scalar"].Series), StringComparison.Ordinal);
        Assert.Contains("ends in .0", reasons.ReasonOf(byKey["env1/supply_voltage_noinst"].Series), StringComparison.Ordinal);
        Assert.Equal("OctetString \"fw 4.2.1\" is not numeric", reasons.ReasonOf(byKey["env1/firmware"].Series));
        Assert.Null(reasons.ReasonOf(byKey["env1/supply_voltage"].Series));

        // One warning for the set, not one per poll; it names metric, OID and reason.
        var scalarWarnings = Warnings().Where(w => w.Contains("scalars unreadable", StringComparison.Ordinal)).ToArray();
        var warning = Assert.Single(scalarWarnings);
        Assert.StartsWith("SNMP device env1: 3 of 5 scalars unreadable: ", warning, StringComparison.Ordinal);
        Assert.Contains("missing_scalar (.1.3.6.1.4.1.99999.2.9.0): noSuchInstance", warning, StringComparison.Ordinal);
        Assert.Contains("firmware (.1.3.6.1.4.1.99999.2.2.0): OctetString \"fw 4.2.1\" is not numeric", warning, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_empty_table_columns_were_dropped_without_a_word()
    {
        Skip();
        var (source, registry) = Build(V2c, Profile());
        var byKey = await PollAsync(source, registry, 1_000_000);
        await PollAsync(source, registry, 1_010_000);

        Assert.Equal(123456789012, byKey["env1/energy{zone=1,zone_name=zone-a}"].Value);
        var warnings = Warnings().Where(w => w.Contains("table zone", StringComparison.Ordinal)).ToArray();
        Assert.Equal(2, warnings.Length); // once per column, not again on the second poll
        Assert.Contains(warnings, w => w.Contains("column temp_with_instance (.1.3.6.1.4.1.99999.1.1.1.3.1): no rows", StringComparison.Ordinal)
            && w.Contains("an instance (.1) looks included", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("column no_such_column (.1.3.6.1.4.1.99999.1.1.1.9): no rows", StringComparison.Ordinal)
            && w.Contains("wrong column OID", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Regression_a_counter64_column_vanished_over_snmpv1_without_a_word()
    {
        Skip();
        var (source, registry) = Build(V1, Profile());
        var byKey = await PollAsync(source, registry, 1_000_000);

        Assert.DoesNotContain(byKey.Keys, k => k.StartsWith("env1/energy", StringComparison.Ordinal));
        Assert.Contains(Warnings(), w => w.Contains("column energy (.1.3.6.1.4.1.99999.1.1.1.5): no rows", StringComparison.Ordinal)
            && w.Contains("Counter64 needs v2c/v3", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Regression_rows_past_max_rows_were_cut_without_a_word()
    {
        Skip();
        var (source, registry) = Build(V2c, Profile(maxRows: 2));
        var byKey = await PollAsync(source, registry, 1_000_000);
        await PollAsync(source, registry, 1_010_000);

        Assert.True(byKey.ContainsKey("env1/temperature{zone=2,zone_name=zone-b}"));
        Assert.False(byKey.ContainsKey("env1/temperature{zone=3,zone_name=zone-c}"));
        var cut = Assert.Single(Warnings(), w => w.Contains("max_rows", StringComparison.Ordinal));
        Assert.Contains("table zone", cut, StringComparison.Ordinal);
        Assert.Contains("max_rows 2", cut, StringComparison.Ordinal);
        Assert.Contains("rows were cut", cut, StringComparison.Ordinal);
        Assert.Contains("temperature", cut, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_table_of_exactly_max_rows_rows_is_not_reported_as_cut()
    {
        Skip();
        var (source, registry) = Build(V2c, Profile(maxRows: 3));
        var byKey = await PollAsync(source, registry, 1_000_000);

        Assert.True(byKey.ContainsKey("env1/temperature{zone=3,zone_name=zone-c}"));
        Assert.DoesNotContain(Warnings(), w => w.Contains("max_rows", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Poll_prints_the_reason_next_to_device_error_and_the_column_notes()
    {
        Skip();
        var dir = AgentFiles.TempDir("edgetwin-snmp-poll-");
        var profiles = Directory.CreateDirectory(Path.Combine(dir.FullName, "profiles")).FullName;
        await File.WriteAllTextAsync(Path.Combine(profiles, "acme-envmon.yaml"), $$"""
            profile: acme-envmon
            vendor: Acme
            model: EnvMon 3
            protocol: snmp
            source: "ACME-ENVMON-MIB"
            metrics:
              - { name: supply_voltage, oid: {{Base}}.2.1.0, unit: V, kind: gauge, scale: 0.1, role: room.supply_voltage }
              - { name: missing_scalar, oid: {{Base}}.2.9.0, unit: V, kind: gauge, role: room.missing }
              - { name: firmware, oid: {{Base}}.2.2.0, unit: "1", kind: gauge, role: room.firmware }
            tables:
              - name: zone
                index_tag: zone
                columns:
                  - { name: temperature, oid: {{Base}}.1.1.1.3, unit: Cel, kind: gauge, scale: 0.1, role: room.temperature }
                  - { name: no_such_column, oid: {{Base}}.1.1.1.9, unit: "1", kind: gauge, role: room.nothing }
            """, Ct);
        var config = Path.Combine(dir.FullName, "site.yaml");
        await File.WriteAllTextAsync(config, $$"""
            site:
              id: plant9
              gateway_id: gw-plant9
            profiles_dir: {{profiles}}
            devices:
              - { id: env1, profile: acme-envmon, address: "udp:127.0.0.1:{{snmpd.Port}}", credentials: env-v1, interval: 60s, timeout: 30s }
            credentials:
              env-v1: { version: 1, community: public }
            outbox: { path: {{Path.Combine(dir.FullName, "outbox.db")}} }
            """, Ct);
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await PollCommand.PollAsync(AgentFiles.Load(config), "env1", new SourceFactories([_factory]), new ListLoggerFactory(_logs),
            TimeProvider.System, false, output, error, Ct);

        Assert.True(code == 0, error.ToString());
        var lines = output.ToString().Split('\n');
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^missing_scalar +NaN V +room\.missing +\[device_error\] noSuchName: "));
        Assert.Contains(lines, l => l.StartsWith("firmware ", StringComparison.Ordinal) && l.EndsWith("[device_error] OctetString \"fw 4.2.1\" is not numeric", StringComparison.Ordinal));
        Assert.Contains(Warnings(), w => w.Contains("column no_such_column", StringComparison.Ordinal));

        var json = new StringWriter();
        code = await PollCommand.PollAsync(AgentFiles.Load(config), "env1", new SourceFactories([_factory]), new ListLoggerFactory(_logs),
            TimeProvider.System, true, json, error, Ct);
        Assert.True(code == 0, error.ToString());
        using var doc = System.Text.Json.JsonDocument.Parse(json.ToString());
        var metrics = doc.RootElement.GetProperty("metrics").EnumerateArray().ToDictionary(m => m.GetProperty("series").GetString()!, m => m, StringComparer.Ordinal);
        Assert.Equal("device_error", metrics["env1/firmware"].GetProperty("quality").GetString());
        Assert.Equal("OctetString \"fw 4.2.1\" is not numeric", metrics["env1/firmware"].GetProperty("reason").GetString());
        Assert.False(metrics["env1/supply_voltage"].TryGetProperty("reason", out _));
    }

    public ValueTask DisposeAsync() => _factory.DisposeAsync();

    internal sealed class ListLoggerFactory(ConcurrentQueue<(LogLevel Level, string Message)> logs) : ILoggerFactory
    {
        public ILogger CreateLogger(string categoryName) => new ListLogger<object>(logs);

        public void AddProvider(ILoggerProvider provider)
        {
        }

        public void Dispose()
        {
        }
    }
}
