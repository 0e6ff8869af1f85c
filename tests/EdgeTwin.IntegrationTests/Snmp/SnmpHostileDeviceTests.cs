using System.Collections.Concurrent;
using EdgeTwin.Agent.Sources;
using EdgeTwin.Agent.Sources.Snmp;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Snmp.Tests.Peers;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>
/// The SNMP source against the wire audit's scripted misbehaving agent (snmp_bad_agent.py): cheap firmware that answers
/// another OID, a 64 KB string for a gauge, or never answers a walk. Wrong data must not be stored under a metric, and
/// what is logged or kept must stay small and say what the poll was doing.
/// </summary>
public sealed class SnmpHostileDeviceTests : IAsyncLifetime
{
    private const string Base = ".1.3.6.1.4.1.99999";
    private readonly SnmpSourceFactory _factory = new();
    private readonly ConcurrentQueue<(LogLevel Level, string Message)> _logs = new();
    private BadSnmpAgent? _agent;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _agent = await BadSnmpAgent.StartAsync();

    public async ValueTask DisposeAsync()
    {
        await _factory.DisposeAsync();
        if (_agent is not null)
        {
            await _agent.DisposeAsync();
        }
    }

    private static DeviceProfile Profile => new(
        "bad-envmon", "Test", "scripted peer", DeviceProtocol.Snmp, "snmp_bad_agent.py",
        [
            new ProfileMetric("supply_voltage", "V", MetricKind.Gauge, "room.supply_voltage") { Oid = Base + ".2.1.0", Scale = 0.1 },
            new ProfileMetric("humidity", "%", MetricKind.Gauge, "room.humidity") { Oid = Base + ".2.2.0" },
        ],
        [
            new ProfileTable("zone", "zone",
            [
                new ProfileMetric("temperature", "Cel", MetricKind.Gauge, "room.temperature") { Oid = Base + ".1.1.1.3" },
            ]),
        ]);

    private (IPolledSource Source, SeriesRegistry Registry) Build()
    {
        var device = new DeviceConfig("pdu7", Profile.Id, DeviceAddress.Udp("127.0.0.1", _agent!.Port))
        {
            Credentials = "v2",
            Timeout = TimeSpan.FromSeconds(2),
        };
        var sources = _factory.Create(new SourceContext(device, Profile, CredentialsConfig.V2c("v2", "public"), new SnmpDeviceErrorsTests.ListLoggerFactory(_logs), TimeProvider.System));
        var registry = new SeriesRegistry();
        sources.Polled!.RegisterSeries(registry);
        return (sources.Polled, registry);
    }

    private static async Task<Dictionary<string, Sample>> PollAsync(IPolledSource source, SeriesRegistry registry)
    {
        var sink = new RecordingSink();
        await source.PollAsync(sink, 1_000_000, Ct);
        return sink.Samples.ToDictionary(s => registry[s.Series].Key);
    }

    [Fact]
    public async Task Regression_a_device_answering_another_oid_had_that_value_stored_under_the_asked_metric()
    {
        var (source, registry) = Build();
        await _agent!.SetModeAsync("other_oid");

        var sink = new RecordingSink();
        var ex = await Assert.ThrowsAsync<DeviceException>(async () => await source.PollAsync(sink, 1_000_000, Ct));

        Assert.Contains($"127.0.0.1:{_agent.Port}", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"GET of {Base}.2.1.0 answered {Base}.2.1.0.7", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(sink.Samples, s => s.Quality == SampleQuality.Good);

        await _agent.SetModeAsync("good");
        var byKey = await PollAsync(source, registry);
        Assert.Equal(230.1, byKey["pdu7/supply_voltage"].Value, 6);
    }

    [Fact]
    public async Task Regression_a_64_KB_string_answered_for_a_gauge_went_whole_into_the_warning_and_the_kept_reason()
    {
        var (source, registry) = Build();
        await _agent!.SetModeAsync("huge");

        var byKey = await PollAsync(source, registry);

        Assert.Equal(230.1, byKey["pdu7/supply_voltage"].Value, 6);
        var humidity = byKey["pdu7/humidity"];
        Assert.Equal(SampleQuality.DeviceError, humidity.Quality);
        var reason = ((ISampleReasons)source).ReasonOf(humidity.Series);
        Assert.NotNull(reason);
        Assert.StartsWith("OctetString \"xxxx", reason, StringComparison.Ordinal);
        Assert.EndsWith("... (64000 octets) is not numeric", reason, StringComparison.Ordinal);
        Assert.InRange(reason.Length, 1, 200);
        var warning = Assert.Single(_logs, l => l.Level == LogLevel.Warning).Message;
        Assert.Contains($"humidity ({Base}.2.2.0): OctetString", warning, StringComparison.Ordinal);
        Assert.InRange(warning.Length, 1, 400);
    }

    [Fact]
    public async Task Regression_a_poll_that_ran_out_of_time_did_not_say_what_it_was_waiting_for()
    {
        var (source, _) = Build();
        await _agent!.SetModeAsync("silent_walk");

        var sink = new RecordingSink();
        var ex = await Assert.ThrowsAsync<DeviceException>(async () => await source.PollAsync(sink, 1_000_000, Ct));

        // Whichever bound fires first (the request's retries or the poll's budget), the column walked is named.
        Assert.Contains($"{Base}.1.1.1.3", ex.Message, StringComparison.Ordinal);
        Assert.Contains("pdu7", ex.Message, StringComparison.Ordinal);
        // The scalars answered before the walk went silent are kept.
        Assert.Contains(sink.Samples, s => s.Quality == SampleQuality.Good);
    }

    [Theory]
    [InlineData("slow_get+wrong_id", "the last: request-id ")]
    [InlineData("slow_get+garbage", "the last: malformed (")]
    public async Task Regression_a_poll_that_ran_out_of_its_budget_did_not_say_what_the_device_sent_meanwhile(string mode, string expected)
    {
        var (source, _) = Build();
        // The scalars take 0.8 s of the 2 s budget; each walk attempt has 1 s, so the budget ends the walk's second
        // attempt (at 2 s), before its own timeout (at 2.8 s) would have named the ignored answers.
        await _agent!.SetModeAsync(mode);

        var sink = new RecordingSink();
        var ex = await Assert.ThrowsAsync<DeviceException>(async () => await source.PollAsync(sink, 1_000_000, Ct));

        // Names the step, then the request and what the device sent instead of an answer (on a loaded machine the
        // budget may end the first attempt already, having ignored one datagram).
        Assert.Contains($"took longer than its timeout of 2 s, in the walk of table zone column temperature ({Base}.1.1.1.3); 127.0.0.1:{_agent.Port} (V2c): GETBULK of {Base}.1.1.1.3: no response before the caller's deadline (attempt ", ex.Message, StringComparison.Ordinal);
        Assert.Contains(" datagram(s) meanwhile, ", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.InRange(ex.Message.Length, 1, 600);
        Assert.Contains(sink.Samples, s => s.Quality == SampleQuality.Good);
    }

    [Theory]
    [InlineData("walk")]
    [InlineData("bulkwalk")]
    public async Task Regression_a_walk_of_an_endless_table_stopped_at_max_rows_without_a_word(string walk)
    {
        await _agent!.SetModeAsync("endless");

        var (exit, output, error) = await InProcessCli.RunAsync("snmp", walk, "-v", "2c", "-c", "public", "-t", "2", "-r", "1", "--max-rows", "7", $"udp:127.0.0.1:{_agent.Port}", Base + ".1");

        Assert.Equal(0, exit);
        Assert.Equal(7, output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains($"stopped at --max-rows 7; the agent may hold more rows under {Base}.1", error, StringComparison.Ordinal);
    }

}
