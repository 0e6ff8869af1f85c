using EdgeTwin.Agent.Sources.Snmp;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Snmp;
using Verdict = EdgeTwin.Agent.Sources.Snmp.InterfaceUtilization.Verdict;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>The arithmetic of interface utilisation (no device): speeds per RFC 2863, and when a value is not published.</summary>
public sealed class InterfaceUtilizationTests
{
    private static readonly ProfileMetric HighSpeed = new("speed", "Mbit/s", MetricKind.Gauge, "net.speed") { Oid = ".1.3.6.1.2.1.31.1.1.1.15" };

    // The fallback of the shipped profile: ifSpeed (bit/s) at 0.000001, so the series stays in Mbit/s.
    private static readonly ProfileMetric IfSpeedFallback = HighSpeed with { Oid = ".1.3.6.1.2.1.2.2.1.5", Scale = 0.000001 };

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(2);

    [Theory]
    [InlineData(10_000, 1e10)]          // ifHighSpeed of a 10G port
    [InlineData(100_000, 1e11)]         // 100G
    [InlineData(10, 1e7)]               // lo as snmpd serves it
    public void IfHighSpeed_is_in_Mbit_per_second(double raw, double bps) =>
        Assert.Equal(bps, InterfaceUtilization.SpeedBitsPerSecond(raw, HighSpeed, InterfaceUtilization.BitsPerSecondPerUnit("Mbit/s")));

    [Theory]
    [InlineData(10_000_000, 1e7)]
    [InlineData(1_544_000, 1_544_000)]  // a T1: exact in ifSpeed
    [InlineData(4_294_967_294, 4_294_967_294)]
    public void IfSpeed_read_as_the_fallback_keeps_its_bits_per_second(double raw, double bps) =>
        Assert.Equal(bps, InterfaceUtilization.SpeedBitsPerSecond(raw, IfSpeedFallback, 1e6), 6);

    [Fact]
    public void A_speed_of_0_or_a_saturated_ifSpeed_is_unknown()
    {
        // RFC 2863: 0 = no concept of bandwidth; ifSpeed 4,294,967,295 = faster, see ifHighSpeed (which this device lacks).
        Assert.True(double.IsNaN(InterfaceUtilization.SpeedBitsPerSecond(0, HighSpeed, 1e6)));
        Assert.True(double.IsNaN(InterfaceUtilization.SpeedBitsPerSecond(4_294_967_295, IfSpeedFallback, 1e6)));
        Assert.True(double.IsNaN(InterfaceUtilization.SpeedBitsPerSecond(double.NaN, HighSpeed, 1e6)));
    }

    [Theory]
    [InlineData(1e9, 1e10, 80)]          // 8 Gbit/s of 10
    [InlineData(62_500_000, 1e9, 50)]    // 500 Mbit/s of 1G
    [InlineData(0, 1e9, 0)]
    [InlineData(1.25e9, 1e10, 100)]      // a full link is 100, not more
    public void The_octet_rate_in_percent_of_the_speed(double octetsPerSecond, double speed, double percent)
    {
        Assert.Equal(Verdict.Published, InterfaceUtilization.Evaluate(octetsPerSecond, 10, speed, speed, Timeout, out var p));
        Assert.Equal(percent, p, 9);
    }

    [Fact]
    public void Unknown_speed_speed_changes_and_primed_rates_give_nothing()
    {
        Assert.Equal(Verdict.SpeedUnknown, InterfaceUtilization.Evaluate(1e6, 10, double.NaN, double.NaN, Timeout, out var p));
        Assert.True(double.IsNaN(p));
        // 10G → 1G during the interval: 1e9 By/s (counted mostly at 10G) over 1 Gbit/s would be 800 %.
        Assert.Equal(Verdict.SpeedChanged, InterfaceUtilization.Evaluate(1e9, 10, 1e9, 1e10, Timeout, out _));
        Assert.Equal(Verdict.SpeedChanged, InterfaceUtilization.Evaluate(1e6, 10, 1e9, double.NaN, Timeout, out _)); // known only now
        Assert.Equal(Verdict.NoRate, InterfaceUtilization.Evaluate(double.NaN, double.NaN, 1e9, 1e9, Timeout, out _));
        Assert.Equal(Verdict.NoRate, InterfaceUtilization.Evaluate(-5, 10, 1e9, 1e9, Timeout, out _));
    }

    [Fact]
    public void Above_the_link_within_the_polls_timing_is_100_and_beyond_it_nothing()
    {
        // 10 s interval, 2 s timeout: a row's counters may be read up to 2 s late, so up to 120 % is a full link.
        Assert.Equal(Verdict.Capped, InterfaceUtilization.Evaluate(1.25e9 * 1.19, 10, 1e10, 1e10, Timeout, out var capped));
        Assert.Equal(100, capped);
        Assert.Equal(Verdict.AboveLink, InterfaceUtilization.Evaluate(1.25e9 * 1.21, 10, 1e10, 1e10, Timeout, out var above));
        Assert.Equal(121, above, 9);
    }

    [Fact]
    public void Counter32_wrap_and_clear_of_the_fallback_octets_reach_the_utilisation_as_the_rates_have_them()
    {
        // Through the source's own rate code (a table walk handed to AddColumnRows): ifInOctets 1,000,000 short of 2^32,
        // then 5,250,000 after the wrap: 6.25e6 octets in 10 s on a 10 Mbit/s port = 50 %; then cleared to 10: nothing.
        var profile = new DeviceProfile("u", "IETF", "test", DeviceProtocol.Snmp, "IF-MIB", [],
        [
            new ProfileTable("interface", "ifindex",
            [
                new ProfileMetric("in_octets", "By", MetricKind.Counter, "net.in_bytes") { Oid = ".1.3.6.1.2.1.2.2.1.10", Rate = true },
                new ProfileMetric("out_octets", "By", MetricKind.Counter, "net.out_bytes") { Oid = ".1.3.6.1.2.1.2.2.1.16", Rate = true },
                IfSpeedFallback with { Oid = ".1.3.6.1.2.1.2.2.1.5" },
            ]) { Utilization = new TableUtilization("in_octets", "out_octets", "speed") },
        ]);
        var device = new EdgeTwin.Core.Config.DeviceConfig("sw", "u", EdgeTwin.Core.Config.DeviceAddress.Udp("127.0.0.1", 161)) { Credentials = "v2", Timeout = Timeout };
        var credentials = EdgeTwin.Core.Config.CredentialsConfig.V2c("v2", "public");
        var source = new SnmpSource(device, SnmpPollPlan.Build("sw", profile), SnmpSourceFactory.Target(device, credentials), () => throw new InvalidOperationException("no I/O here"),
            Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance, TimeProvider.System);
        var registry = new SeriesRegistry();
        source.RegisterSeries(registry);
        static VarBind[] Column(int column, SnmpValue value) => [new(Oid.Parse($".1.3.6.1.2.1.2.2.1.{column}.7"), value)];
        var speed = Column(5, SnmpValue.Gauge32(10_000_000));
        List<Sample> Poll(uint inOctets, long at)
        {
            var samples = new List<Sample>();
            var walks = new[] { Column(10, SnmpValue.Counter32(inOctets)), Column(16, SnmpValue.Counter32(0)), speed };
            for (var c = 0; c < walks.Length; c++)
            {
                source.UseWalk(0, c, walks[c]);
            }
            for (var c = 0; c < walks.Length; c++)
            {
                source.AddColumnRows(0, c, walks[c], 1, null, null, registry, samples, at, at, at);
            }
            return samples;
        }
        double? Utilization(List<Sample> samples) =>
            samples.Where(s => registry[s.Series].Metric == "in_utilization").Select(s => (double?)s.Value).SingleOrDefault();

        Assert.Null(Utilization(Poll(uint.MaxValue - 999_999, 0)));
        Assert.Equal(50, Utilization(Poll(5_250_000, 10_000))!.Value, 9);
        Assert.Equal(0, Utilization(Poll(5_250_000, 20_000))!.Value, 9);
        Assert.Null(Utilization(Poll(10, 30_000))); // cleared, not a wrap of 4.29e9 octets (3,400 %): the rate primes
        Assert.Equal(0.00008, Utilization(Poll(20, 40_000))!.Value, 12); // 1 By/s of 10 Mbit/s
    }
}
