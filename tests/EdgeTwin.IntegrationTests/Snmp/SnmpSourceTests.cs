using System.Diagnostics;
using EdgeTwin.Agent.Sources.Snmp;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Snmp;
using EdgeTwin.Snmp.Responder;
using Microsoft.Extensions.Logging.Abstractions;
using LibUser = EdgeTwin.Snmp.Security.SnmpV3User;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>The agent's SNMP source reading simulated PDUs served by our responder over real UDP.</summary>
public sealed class SnmpSourceTests : IAsyncDisposable
{
    private const string Rpdu = ".1.3.6.1.4.1.318.1.1.26";
    private static readonly Oid OutletEntry = Oid.Parse("1.3.6.1.4.1.318.1.1.26.9.4.3.1");
    private readonly SnmpSourceFactory _factory = new();
    private readonly List<SnmpResponder> _responders = [];
    private uint _energy = 4_294_967_000; // close to the 32-bit wrap
    private ulong _octets = 9_000_000_000_000; // a switch port's ifHCInOctets
    private uint _uptime = 8_640_000; // sysUpTime: one day

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly DeviceProfile Profile = new(
        "test-rpdu", "APC", "test", DeviceProtocol.Snmp, "PowerNet-MIB subset",
        [
            new ProfileMetric("total_power", "kW", MetricKind.Gauge, "pdu.power") { Oid = Rpdu + ".4.3.1.5.1", Scale = 0.01, Min = 0, Max = 100 },
            new ProfileMetric("energy_rate", "kW.h", MetricKind.Counter, "pdu.energy") { Oid = Rpdu + ".4.3.1.9.1", Scale = 0.1, Rate = true },
            new ProfileMetric("octets_rate", "By", MetricKind.Counter, "net.octets") { Oid = Rpdu + ".4.3.1.10.1", Rate = true },
            new ProfileMetric("load_state", "1", MetricKind.State, "pdu.load_state") { Oid = Rpdu + ".4.3.1.4.1" },
            new ProfileMetric("missing", "1", MetricKind.Gauge, "pdu.missing") { Oid = Rpdu + ".4.3.1.99.1" },
        ],
        [
            new ProfileTable("outlet", "outlet",
            [
                new ProfileMetric("outlet_current", "A", MetricKind.Gauge, "pdu.outlet_current") { Oid = Rpdu + ".9.4.3.1.6", Scale = 0.1, Min = 0, Max = 32 },
                new ProfileMetric("outlet_power", "W", MetricKind.Gauge, "pdu.outlet_power") { Oid = Rpdu + ".9.4.3.1.7" },
            ]) { LabelOid = Rpdu + ".9.4.3.1.3", LabelTag = "outlet_name" },
        ]);

    private SnmpResponder StartPdu(IReadOnlyCollection<LibUser>? users = null)
    {
        var store = new SnmpMibStore();
        store.Set(Rpdu + ".4.3.1.5.1", SnmpValue.Integer(345));
        store.Set(Rpdu + ".4.3.1.9.1", () => SnmpValue.Counter32(_energy));
        store.Set(Rpdu + ".4.3.1.4.1", SnmpValue.Integer(2));
        store.Set(Rpdu + ".4.3.1.10.1", () => SnmpValue.Counter64(_octets));
        store.Set("1.3.6.1.2.1.1.3.0", () => SnmpValue.TimeTicks(_uptime));
        for (uint i = 1; i <= 24; i++)
        {
            store.SetCell(OutletEntry, 3, [i], SnmpValue.OctetString($"server-{i:00}"));
            store.SetCell(OutletEntry, 6, [i], SnmpValue.Gauge32(i == 24 ? 999u : i * 3)); // outlet 24 reads 99.9 A: out of range
            store.SetCell(OutletEntry, 7, [i], SnmpValue.Gauge32(i * 70));
        }
        var r = new SnmpResponder(store, new SnmpResponderOptions { Users = users ?? [] });
        _responders.Add(r);
        return r;
    }

    private (IPolledSource Source, SeriesRegistry Registry) Build(SnmpResponder responder, string id, CredentialsConfig credentials, TimeSpan? timeout = null)
    {
        var device = new DeviceConfig(id, Profile.Id, DeviceAddress.Udp("127.0.0.1", responder.LocalEndPoint.Port))
        {
            Credentials = credentials.Name,
            Timeout = timeout ?? TimeSpan.FromSeconds(2),
        };
        var sources = _factory.Create(new SourceContext(device, Profile, credentials, NullLoggerFactory.Instance, TimeProvider.System));
        var registry = new SeriesRegistry();
        sources.Polled!.RegisterSeries(registry);
        return (sources.Polled, registry);
    }

    [Fact]
    public async Task Scalars_and_outlet_table_become_tagged_series_with_quality()
    {
        var pdu = StartPdu();
        var (source, registry) = Build(pdu, "pdu-a1", CredentialsConfig.V2c("ro", "public"));
        var sink = new RecordingSink();
        await source.PollAsync(sink, 1_000_000, Ct);
        var byKey = sink.Samples.ToDictionary(s => registry[s.Series].Key);
        Assert.Equal(3.45, byKey["pdu-a1/total_power"].Value, 6);
        Assert.Equal(2, byKey["pdu-a1/load_state"].Value);
        Assert.Equal(SampleQuality.DeviceError, byKey["pdu-a1/missing"].Quality);
        Assert.False(byKey.ContainsKey("pdu-a1/energy_rate")); // first poll primes the rate
        Assert.Equal(0.9, byKey["pdu-a1/outlet_current{outlet=3,outlet_name=server-03}"].Value, 6);
        Assert.Equal(SampleQuality.OutOfRange, byKey["pdu-a1/outlet_current{outlet=24,outlet_name=server-24}"].Quality);
        Assert.Equal(48, sink.Samples.Count(s => registry[s.Series].Tag("outlet") is not null));
        Assert.Equal("3", registry[byKey["pdu-a1/outlet_power{outlet=3,outlet_name=server-03}"].Series].Tag("outlet"));
    }

    [Fact]
    public async Task Counter_rate_survives_a_32_bit_wrap()
    {
        var pdu = StartPdu();
        var (source, registry) = Build(pdu, "pdu-rate", CredentialsConfig.V2c("ro", "public"));
        var sink = new RecordingSink();
        await source.PollAsync(sink, 1_000_000, Ct);
        _energy = unchecked(_energy + 500); // wraps past 2^32: +500 tenths of kWh
        await source.PollAsync(sink, 1_010_000, Ct);
        var rate = sink.Samples.Single(s => registry[s.Series].Metric == "energy_rate");
        Assert.Equal(5.0, rate.Value, 6); // 500 × 0.1 kWh over 10 s
        Assert.Equal(MetricKind.Gauge, registry[rate.Series].Kind);
    }

    [Fact]
    public async Task Regression_counter64_cleared_on_the_device_gave_a_rate_of_1e18_per_second()
    {
        // A switch's "clear counters" (or a restart) sets a Counter64 back to 0. It was taken for a 64-bit wrap: 2^64
        // added, a rate of 1.8e18 B/s. A Counter64 does not wrap in practice (46 years of 100 Gbit/s): going back is a
        // discontinuity, so the rate primes again.
        var pdu = StartPdu();
        var (source, registry) = Build(pdu, "sw-rate", CredentialsConfig.V2c("ro", "public"));
        var sink = new RecordingSink();
        double[] Rates() => sink.Samples.Where(s => registry[s.Series].Metric == "octets_rate").Select(s => s.Value).ToArray();
        await source.PollAsync(sink, 1_000_000, Ct);
        _octets += 12_500;
        await source.PollAsync(sink, 1_010_000, Ct);
        Assert.Equal([1250.0], Rates());
        _octets = 300;
        await source.PollAsync(sink, 1_020_000, Ct);
        Assert.Equal([1250.0], Rates());
        _octets += 1000;
        await source.PollAsync(sink, 1_030_000, Ct);
        Assert.Equal([1250.0, 100.0], Rates());
    }

    [Fact]
    public async Task Regression_pdu_restart_reset_its_counter32_energy_and_was_published_as_a_wrap()
    {
        // The PDU restarts (a firmware update) and its Counter32 energy starts again from 0. Taken for a 32-bit wrap, that
        // published one rate of about 2^32 × 0.1 kWh per interval (4.3e7 kW.h/s here). sysUpTime going back tells.
        var pdu = StartPdu();
        var (source, registry) = Build(pdu, "pdu-restart", CredentialsConfig.V2c("ro", "public"));
        var sink = new RecordingSink();
        double[] Rates() => sink.Samples.Where(s => registry[s.Series].Metric == "energy_rate").Select(s => s.Value).ToArray();
        _energy = 123_456;
        await source.PollAsync(sink, 1_000_000, Ct);
        _energy += 500;
        _uptime += 1000;
        await source.PollAsync(sink, 1_010_000, Ct);
        Assert.Equal(5.0, Assert.Single(Rates()), 6);
        (_energy, _uptime) = (20, 3000); // restarted 30 s ago
        await source.PollAsync(sink, 1_020_000, Ct);
        Assert.Single(Rates());
        (_energy, _uptime) = (120, 4000);
        await source.PollAsync(sink, 1_030_000, Ct);
        Assert.Equal([5.0, 1.0], Rates().Select(r => Math.Round(r, 6)));

        // A real wrap with the agent up all along is still a wrap.
        (_energy, _uptime) = (4_294_967_000, _uptime + 1000);
        await source.PollAsync(sink, 1_040_000, Ct);
        (_energy, _uptime) = (unchecked(_energy + 500), _uptime + 1000);
        await source.PollAsync(sink, 1_050_000, Ct);
        Assert.Equal(5.0, Rates()[^1], 6);
    }

    [Fact]
    public async Task Regression_counter32_cleared_on_the_device_without_a_restart_was_published_as_a_wrap()
    {
        // "Reset energy" on the PDU's web page sets its Counter32 back to 0 while it stays up (sysUpTime goes on): taken
        // for a wrap, that published one rate of about 2^32 × 0.1 kWh per interval. More than the last rate makes
        // plausible is a clear: the rate primes again.
        var pdu = StartPdu();
        var (source, registry) = Build(pdu, "pdu-clear", CredentialsConfig.V2c("ro", "public"));
        var sink = new RecordingSink();
        double[] Rates() => sink.Samples.Where(s => registry[s.Series].Metric == "energy_rate").Select(s => Math.Round(s.Value, 6)).ToArray();
        _energy = 2_000_000_000;
        await source.PollAsync(sink, 1_000_000, Ct);
        (_energy, _uptime) = (_energy + 500, _uptime + 1000);
        await source.PollAsync(sink, 1_010_000, Ct);
        Assert.Equal([5.0], Rates());
        (_energy, _uptime) = (30, _uptime + 1000); // cleared
        await source.PollAsync(sink, 1_020_000, Ct);
        Assert.Equal([5.0], Rates());
        (_energy, _uptime) = (530, _uptime + 1000);
        await source.PollAsync(sink, 1_030_000, Ct);
        Assert.Equal([5.0, 5.0], Rates());

        // Cleared before any rate was known: more than half the range back is a clear too.
        var (fresh, freshRegistry) = Build(pdu, "pdu-clear-2", CredentialsConfig.V2c("ro", "public"));
        var freshSink = new RecordingSink();
        _energy = 1_500_000_000;
        await fresh.PollAsync(freshSink, 2_000_000, Ct);
        (_energy, _uptime) = (100, _uptime + 1000);
        await fresh.PollAsync(freshSink, 2_010_000, Ct);
        Assert.DoesNotContain(freshSink.Samples, s => freshRegistry[s.Series].Metric == "energy_rate");

        // A wrap at the rate the counter runs stays a wrap.
        (_energy, _uptime) = (4_294_967_000, _uptime + 1000);
        await source.PollAsync(sink, 1_040_000, Ct);
        (_energy, _uptime) = (unchecked(_energy + 500), _uptime + 1000);
        await source.PollAsync(sink, 1_050_000, Ct);
        (_energy, _uptime) = (unchecked(_energy + 500), _uptime + 1000);
        await source.PollAsync(sink, 1_060_000, Ct);
        Assert.Equal(5.0, Rates()[^1], 6);
    }

    [Fact]
    public async Task Regression_counter32_cleared_just_under_2_pow_32_read_as_one_odd_rate_instead_of_a_clear()
    {
        // The wrap allowance was 8× the last increase + 2^20 counts: an energy counter counting 500 per 10 s, cleared at
        // 4 294 000 000 (967 296 under 2^32) to 100, read as a wrap of 967 396 and published 9 673.96 kWh/s once.
        // Now the allowance is 8× the larger of the last increase and the new reading (at least 1): byte-exact edges below.
        var pdu = StartPdu();
        async Task<double[]> Readings(string id, params uint[] energy)
        {
            var (source, registry) = Build(pdu, id, CredentialsConfig.V2c("ro", "public"));
            var sink = new RecordingSink();
            for (var i = 0; i < energy.Length; i++)
            {
                (_energy, _uptime) = (energy[i], _uptime + 1000); // 10 s apart, sysUpTime going on: no restart
                await source.PollAsync(sink, 5_000_000 + (i * 10_000), Ct);
            }
            return sink.Samples.Where(s => registry[s.Series].Metric == "energy_rate").Select(s => Math.Round(s.Value, 6)).ToArray();
        }

        // The report: cleared just under 2^32; the rate primes again and goes on from the cleared value.
        Assert.Equal<double>([5.0, 5.0], (await Readings("clear-near-top", 4_293_999_500, 4_294_000_000, 100, 600)).AsEnumerable());

        // Wraps at the counter's rate stay wraps: 296 to the top and 204 past it; an idle counter (the same reading twice)
        // whose burst of 3000 crosses 2^32 (its reading 2704 bounds the rate from below).
        Assert.Equal<double>([5.0, 5.0], (await Readings("wrap-at-rate", 4_294_966_500, 4_294_967_000, 204)).AsEnumerable());
        Assert.Equal<double>([0.0, 30.0], (await Readings("wrap-from-idle", 4_294_967_000, 4_294_967_000, 2704)).AsEnumerable());

        // The edge: last increase 500, reading 1000, so a wrapped increase up to 8 × 1000 is a wrap, one count more a clear.
        Assert.Equal<double>([5.0, 80.0], (await Readings("edge-wrap", 4_294_959_796, 4_294_960_296, 1000)).AsEnumerable());
        Assert.Equal<double>([5.0], (await Readings("edge-clear", 4_294_959_795, 4_294_960_295, 1000)).AsEnumerable());

        // Cleared to 0 from 296 under 2^32 at this rate is indistinguishable from a wrap of 296 (a Counter32 carries no
        // more): it reads as one rate of 29.6 counts/s, within the 8× allowance, then the counter goes on.
        Assert.Equal<double>([5.0, 2.96, 5.0], (await Readings("clear-within-a-wrap", 4_294_966_500, 4_294_967_000, 0, 500)).AsEnumerable());
    }

    [Fact]
    public async Task V3_authPriv_device()
    {
        var user = new LibUser("poller", EdgeTwin.Snmp.Security.SnmpAuthProtocol.Sha256, "authpass123", EdgeTwin.Snmp.Security.SnmpPrivProtocol.Aes256, "privpass123");
        var pdu = StartPdu([user]);
        var creds = new CredentialsConfig("v3", EdgeTwin.Core.Config.SnmpVersion.V3)
        {
            User = "poller",
            Level = EdgeTwin.Core.Config.SnmpSecurityLevel.AuthPriv,
            Auth = EdgeTwin.Core.Config.SnmpAuthProtocol.Sha256,
            AuthPassword = "authpass123",
            Priv = EdgeTwin.Core.Config.SnmpPrivProtocol.Aes256,
            PrivPassword = "privpass123",
        };
        var (source, _) = Build(pdu, "pdu-v3", creds);
        var sink = new RecordingSink();
        await source.PollAsync(sink, 1_000_000, Ct);
        Assert.True(sink.Samples.Count > 40);
    }

    [Fact]
    public async Task A_dead_device_fails_within_its_timeout_and_never_delays_a_live_one()
    {
        var dead = StartPdu();
        dead.Mute = true;
        var live = StartPdu();
        var (deadSource, _) = Build(dead, "pdu-dead", CredentialsConfig.V2c("ro", "public"), TimeSpan.FromSeconds(3));
        var (liveSource, _) = Build(live, "pdu-live", CredentialsConfig.V2c("ro", "public"));
        var sw = Stopwatch.StartNew();
        var deadPoll = deadSource.PollAsync(new RecordingSink(), 1, Ct).AsTask();
        var liveSink = new RecordingSink();
        await liveSource.PollAsync(liveSink, 1, Ct);
        var liveTime = sw.Elapsed;
        Assert.True(liveTime < TimeSpan.FromSeconds(2.5), $"live device took {liveTime} next to a dead one");
        Assert.NotEmpty(liveSink.Samples);
        var ex = await Assert.ThrowsAsync<DeviceException>(() => deadPoll);
        Assert.Equal("pdu-dead", ex.DeviceId);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"dead device held its poll for {sw.Elapsed}");
    }

    [Fact]
    public void Bad_config_is_reported_at_creation_naming_the_device()
    {
        var device = new DeviceConfig("pdu-x", Profile.Id, DeviceAddress.Tcp("127.0.0.1", 502)) { Credentials = "ro" };
        var ex = Assert.Throws<SourceCreationException>(() =>
            _factory.Create(new SourceContext(device, Profile, CredentialsConfig.V2c("ro", "public"), NullLoggerFactory.Instance, TimeProvider.System)));
        Assert.Contains("pdu-x", ex.Message, StringComparison.Ordinal);
        var noCreds = new DeviceConfig("pdu-y", Profile.Id, DeviceAddress.Udp("127.0.0.1"));
        Assert.Throws<SourceCreationException>(() =>
            _factory.Create(new SourceContext(noCreds, Profile, null, NullLoggerFactory.Instance, TimeProvider.System)));
    }

    public async ValueTask DisposeAsync()
    {
        await _factory.DisposeAsync();
        foreach (var r in _responders)
        {
            await r.DisposeAsync();
        }
    }
}

public sealed class SnmpSourceDiscoveryTests
{
    [Fact]
    public void The_agent_discovers_the_snmp_source_factory()
    {
        Assert.Contains(typeof(SnmpSourceFactory), EdgeTwin.Agent.Hosting.AgentHostBuilder.DiscoverSourceFactoryTypes());
        var factories = new SourceFactories([new SnmpSourceFactory()]);
        Assert.True(factories.Supports(DeviceProtocol.Snmp));
    }
}
