using System.Collections.Concurrent;
using System.Diagnostics;
using EdgeTwin.Agent.Sources.Snmp;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.IntegrationTests.Agent;
using EdgeTwin.Snmp;
using EdgeTwin.Snmp.Client;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>
/// The shipped ietf-if-mib profile against net-snmp's snmpd serving 1,001 interfaces (a data-hall switch): how many round
/// trips a poll costs, and that walking a table's columns together reads exactly what walking each alone read.
/// </summary>
public sealed class BigSwitchSnmpdTests(SnmpdBigSwitch snmpd) : IClassFixture<SnmpdBigSwitch>
{
    private readonly ConcurrentQueue<(LogLevel Level, string Message)> _logs = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    internal static DeviceProfile IfMib => DeviceProfileLoader.LoadFileOrThrow(Path.Combine(AgentFiles.ProfilesDir, "ietf-if-mib.yaml"));

    internal static (SnmpSource Source, SeriesRegistry Registry) Build(SnmpClient client, SnmpdNetnsProcess agent, DeviceProfile profile, bool together,
        int maxSeries = 20_000, ILoggerFactory? loggers = null)
    {
        var credentials = CredentialsConfig.V2c("v2", "public");
        var device = new DeviceConfig("hall-sw1", profile.Id, DeviceAddress.Udp("127.0.0.1", agent.Port))
        {
            Credentials = credentials.Name,
            Timeout = TimeSpan.FromSeconds(60),
            MaxSeries = maxSeries,
        };
        loggers ??= Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance;
        var source = new SnmpSource(device, SnmpPollPlan.Build(device.Id, profile), SnmpSourceFactory.Target(device, credentials), () => client, loggers, TimeProvider.System)
        {
            WalkColumnsTogether = together,
        };
        var registry = new SeriesRegistry();
        registry.LimitDevice(device.Id, maxSeries);
        source.RegisterSeries(registry);
        return (source, registry);
    }

    /// <summary>Requests snmpd received during <paramref name="poll"/> (its snmpInPkts, less the read that follows it).</summary>
    internal static async Task<long> RequestsDuringAsync(SnmpClient client, SnmpdNetnsProcess agent, Func<Task> poll)
    {
        var target = agent.Target();
        var before = (await client.GetAsync(target, [SnmpdNetnsProcess.SnmpInPkts], Ct))[0].Value.AsUInt32();
        await poll();
        var after = (await client.GetAsync(target, [SnmpdNetnsProcess.SnmpInPkts], Ct))[0].Value.AsUInt32();
        return after - before - 1;
    }

    // Before, every column (8), the ifName labels and any filter had a GETBULK walk of its own: 9 walks of 41 round trips
    // for 1,001 interfaces, ~370 request/response pairs per poll, each a wait on the switch's agent. Now one walk carries
    // a varbind per column; snmpd cuts a GETBULK to 100 varbinds (11 rows of 9 columns), so 92 round trips and one GET.
    [Fact]
    public async Task Regression_a_1000_port_switch_took_370_round_trips_per_poll()
    {
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        await using var client = snmpd.CreateClient();
        var (alone, _) = Build(client, snmpd, IfMib, together: false);
        var (together, registry) = Build(client, snmpd, IfMib, together: true);

        var aloneRequests = await RequestsDuringAsync(client, snmpd, () => alone.PollAsync(new RecordingSink(), 1_000_000, Ct).AsTask());
        var sink = new RecordingSink();
        var togetherRequests = await RequestsDuringAsync(client, snmpd, () => together.PollAsync(sink, 1_000_000, Ct).AsTask());

        Assert.InRange(aloneRequests, 360, 380);
        Assert.InRange(togetherRequests, 1, 100);
        // Every interface read: 8 series each (the 5 rates prime on this first poll, so 3 samples each) and uptime.
        Assert.Equal(1 + (8 * snmpd.Interfaces), registry.Budget("hall-sw1").Count);
        Assert.Equal(1 + (3 * snmpd.Interfaces), sink.Samples.Count);
    }

    [Fact]
    public async Task Walking_the_columns_together_gives_the_series_and_samples_of_walking_each_alone()
    {
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        await using var client = snmpd.CreateClient();
        var (alone, aloneRegistry) = Build(client, snmpd, IfMib, together: false);
        var (together, togetherRegistry) = Build(client, snmpd, IfMib, together: true);

        var aloneSamples = new Dictionary<string, Sample>();
        var togetherSamples = new Dictionary<string, Sample>();
        for (var poll = 0; poll < 2; poll++)
        {
            var at = 1_000_000 + (poll * 10_000);
            var a = new RecordingSink();
            var t = new RecordingSink();
            await alone.PollAsync(a, at, Ct);
            await together.PollAsync(t, at, Ct);
            aloneSamples = a.Samples.ToDictionary(s => aloneRegistry[s.Series].Key, s => s);
            togetherSamples = t.Samples.ToDictionary(s => togetherRegistry[s.Series].Key, s => s);
        }

        Assert.Equal(aloneSamples.Keys.Order(StringComparer.Ordinal), togetherSamples.Keys.Order(StringComparer.Ordinal));
        // 8 per interface, and its in and out utilisation (every veth has a speed, ifHighSpeed 10000, and lo 10).
        Assert.Equal(1 + (10 * snmpd.Interfaces), togetherSamples.Count);
        Assert.Contains(togetherSamples.Keys, k => k.Contains("if_name=ep499", StringComparison.Ordinal));
        Assert.Equal(snmpd.Interfaces, togetherSamples.Keys.Count(k => k.Contains("/in_utilization{", StringComparison.Ordinal)));
        foreach (var (key, sample) in aloneSamples)
        {
            // Loopback carries the polls themselves: its traffic differs between two polls; the veths stand still.
            if (key.Contains("if_name=lo", StringComparison.Ordinal) || key.Contains("uptime", StringComparison.Ordinal))
            {
                continue;
            }
            Assert.Equal((key, sample.Value, sample.Quality), (key, togetherSamples[key].Value, togetherSamples[key].Quality));
        }
    }

    [Fact]
    public async Task Walking_the_columns_together_keeps_max_rows_filter_and_max_series_as_walking_each_alone()
    {
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        await using var client = snmpd.CreateClient();
        // 600 of 1,001 rows (cut), of which those whose ifType (.3) is ethernetCsmacd (6): the veths, not loopback; and a
        // device cap that refuses most of them.
        var table = IfMib.Tables[0] with { MaxRows = 600, Filter = new TableRowFilter(".1.3.6.1.2.1.2.2.1.3", [6]) };
        var profile = IfMib with { Tables = [table] };
        var aloneLogs = new ConcurrentQueue<(LogLevel Level, string Message)>();
        var (alone, aloneRegistry) = Build(client, snmpd, profile, together: false, maxSeries: 1_500, new SnmpDeviceErrorsTests.ListLoggerFactory(aloneLogs));
        var (together, togetherRegistry) = Build(client, snmpd, profile, together: true, maxSeries: 1_500, new SnmpDeviceErrorsTests.ListLoggerFactory(_logs));

        var a = new RecordingSink();
        var t = new RecordingSink();
        await alone.PollAsync(a, 1_000_000, Ct);
        var requests = await RequestsDuringAsync(client, snmpd, () => together.PollAsync(t, 1_000_000, Ct).AsTask());

        Assert.Equal(a.Samples.Select(s => aloneRegistry[s.Series].Key), t.Samples.Select(s => togetherRegistry[s.Series].Key));
        Assert.Equal(aloneRegistry.Budget("hall-sw1").Dropped, togetherRegistry.Budget("hall-sw1").Dropped);
        Assert.Equal(1_500, togetherRegistry.Budget("hall-sw1").Count);
        Assert.DoesNotContain(t.Samples, s => togetherRegistry[s.Series].Key.Contains("if_name=lo", StringComparison.Ordinal));
        Assert.Equal(aloneLogs.Select(l => l.Message), _logs.Select(l => l.Message));
        Assert.Contains(_logs, l => l.Message.Contains("stopped at max_rows 600", StringComparison.Ordinal));
        // 10 columns (the filter too) of 601 rows at 10 per answer: 61 round trips and the GET.
        Assert.InRange(requests, 1, 70);
    }

    [Fact]
    public async Task Walking_columns_together_reads_the_rows_each_walk_alone_reads()
    {
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        await using var client = snmpd.CreateClient();
        var target = snmpd.Target();
        // ifDescr, ifType, ifMtu, ifAdminStatus, ifName, ifHighSpeed, and a column the agent does not have (.99: empty);
        // capped at 1, 700 and all rows; ifHighSpeed is the last column of ifXTable that snmpd serves before ifAlias.
        Oid[] roots =
        [
            Oid.Parse("1.3.6.1.2.1.2.2.1.2"), Oid.Parse("1.3.6.1.2.1.2.2.1.3"), Oid.Parse("1.3.6.1.2.1.2.2.1.4"),
            Oid.Parse("1.3.6.1.2.1.2.2.1.7"), Oid.Parse("1.3.6.1.2.1.31.1.1.1.1"), Oid.Parse("1.3.6.1.2.1.31.1.1.1.15"),
            Oid.Parse("1.3.6.1.2.1.2.2.1.99"),
        ];
        int[] caps = [1_000_000, 700, 1, 1_000_000, 1_000_000, 1_000_000, 1_000_000];

        var together = await client.BulkWalkColumnsAsync(target, roots, caps, Ct);

        for (var i = 0; i < roots.Length; i++)
        {
            var alone = await client.BulkWalkAsync(target, roots[i], Ct, caps[i]);
            Assert.Equal(alone.Select(v => (v.Oid, v.Value)), together[i].Select(v => (v.Oid, v.Value)));
        }
        Assert.Equal([snmpd.Interfaces, 700, 1, snmpd.Interfaces, snmpd.Interfaces, snmpd.Interfaces, 0], together.Select(r => r.Count));
    }

    // An agent with an embedded device's buffer (1,472 octets) cuts each answer to what fits, which need not end on a
    // whole row of the columns asked: every column still reads what its own walk reads.
    [Fact]
    public async Task Walking_columns_together_against_a_small_buffer_reads_the_rows_each_walk_alone_reads()
    {
        await using var agent = new SnmpdNetnsProcess(24, $"[snmp] sendMessageMaxSize {SnmpdSmallBufferProcess.MaxMessageSize}");
        await agent.InitializeAsync();
        Assert.SkipWhen(agent.SkipReason is not null, agent.SkipReason ?? "");
        await using var client = agent.CreateClient();
        var target = agent.Target();
        // ifDescr, ifName, ifAlias (empty strings), ifPhysAddress, ifType, ifHCInOctets, ifHighSpeed
        Oid[] roots =
        [
            Oid.Parse("1.3.6.1.2.1.2.2.1.2"), Oid.Parse("1.3.6.1.2.1.31.1.1.1.1"), Oid.Parse("1.3.6.1.2.1.31.1.1.1.18"),
            Oid.Parse("1.3.6.1.2.1.2.2.1.6"), Oid.Parse("1.3.6.1.2.1.2.2.1.3"), Oid.Parse("1.3.6.1.2.1.31.1.1.1.6"),
            Oid.Parse("1.3.6.1.2.1.31.1.1.1.15"),
        ];
        int[] caps = [.. roots.Select(_ => 1_000)];

        var requests = await RequestsDuringAsync(client, agent, async () =>
        {
            var together = await client.BulkWalkColumnsAsync(target, roots, caps, Ct);
            for (var i = 0; i < roots.Length; i++)
            {
                var alone = await client.BulkWalkAsync(target, roots[i], Ct, caps[i]);
                // ifHCInOctets of loopback counts these very walks
                Assert.Equal(alone.Select(v => v.Oid), together[i].Select(v => v.Oid));
                Assert.Equal(alone.Where(v => v.Oid[^1] != 1).Select(v => v.Value), together[i].Where(v => v.Oid[^1] != 1).Select(v => v.Value));
                Assert.Equal(agent.Interfaces, together[i].Count);
            }
        });
        Assert.True(requests > 7, $"{requests} requests: the answers were not cut");
    }

    // The figures in src/EdgeTwin.Snmp/README.md (Performance): a poll of the shipped ietf-if-mib profile, each table
    // column walked alone and all together, against snmpd with 49 and 1,001 interfaces (printed as MEASURE lines); the
    // request counts and wire bytes are what the walk together must save, the times and allocations are only reported.
    [Theory]
    [InlineData(24, false, 19, 6)]
    [InlineData(500, false, 370, 93)]
    [InlineData(500, true, 370, 42)]
    public async Task Measure_a_poll_of_a_switch_walked_per_column_and_together(int vethPairs, bool unlimitedBulk, int perColumnRequests, int togetherRequests)
    {
        await using var agent = unlimitedBulk ? new SnmpdNetnsProcess(vethPairs, SnmpdNetnsProcess.UnlimitedBulk) : new SnmpdNetnsProcess(vethPairs);
        await agent.InitializeAsync();
        Assert.SkipWhen(agent.SkipReason is not null, agent.SkipReason ?? "");
        await using var client = agent.CreateClient();
        var wire = new Dictionary<bool, long>();
        foreach (var together in new[] { false, true })
        {
            var (source, _) = Build(client, agent, IfMib, together);
            await source.PollAsync(new RecordingSink(), 1_000_000, Ct); // primes the rates; the measured poll publishes them
            var bytes = await agent.LoopbackBytesAsync();
            var allocated = GC.GetTotalAllocatedBytes(true);
            var watch = Stopwatch.StartNew();
            var requests = await RequestsDuringAsync(client, agent, () => source.PollAsync(new RecordingSink(), 1_010_000, Ct).AsTask());
            var elapsed = watch.Elapsed;
            allocated = GC.GetTotalAllocatedBytes(true) - allocated;
            wire[together] = await agent.LoopbackBytesAsync() - bytes;
            Console.WriteLine($"MEASURE {agent.Interfaces} {(unlimitedBulk ? "unlimited" : "default")} {(together ? "together" : "per-column")} requests={requests} ms={elapsed.TotalMilliseconds:0} wire={wire[together]} alloc={allocated}");
            // Debian 12's snmpd: 11 rows of 9 columns per answer under its default 100-varbind cap; one request of slack.
            Assert.InRange(requests, together ? togetherRequests - 1 : perColumnRequests - 1, together ? togetherRequests + 1 : perColumnRequests + 1);
        }

        Assert.True(wire[true] < wire[false], $"walked together {wire[true]} B on the wire, per column {wire[false]} B");
    }
}
