using System.Collections.Concurrent;
using EdgeTwin.Agent.Sources.Snmp;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using Microsoft.Extensions.Logging;
using Interface = EdgeTwin.IntegrationTests.Snmp.SnmpdIfUtilizationProcess.Interface;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>
/// Interface utilisation (ietf-if-mib's <c>utilization:</c>) polled from a real snmpd whose IF-MIB counters, speeds and
/// sysUpTime the test sets, so every expected percentage is exact.
/// </summary>
public sealed class IfUtilizationSnmpdTests(SnmpdIfUtilizationProcess snmpd) : IClassFixture<SnmpdIfUtilizationProcess>, IAsyncDisposable
{
    private const long T0 = 1_000_000;
    private const long Interval = 10_000; // ms between the polls' time stamps
    private const uint Saturated = uint.MaxValue;
    private readonly ConcurrentQueue<(LogLevel Level, string Message)> _logs = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private (SnmpSource Source, SeriesRegistry Registry) Build(string id, CredentialsConfig credentials)
    {
        var device = new DeviceConfig(id, "ietf-if-mib", DeviceAddress.Udp("127.0.0.1", snmpd.Port))
        {
            Credentials = credentials.Name,
            Timeout = TimeSpan.FromSeconds(2),
        };
        var source = new SnmpSource(device, SnmpPollPlan.Build(device.Id, BigSwitchSnmpdTests.IfMib), SnmpSourceFactory.Target(device, credentials),
            () => _client, new SnmpDeviceErrorsTests.ListLoggerFactory(_logs), TimeProvider.System);
        var registry = new SeriesRegistry();
        source.RegisterSeries(registry);
        return (source, registry);
    }

    private readonly EdgeTwin.Snmp.Client.SnmpClient _client = new();

    public ValueTask DisposeAsync() => _client.DisposeAsync();

    /// <summary>Polls at <paramref name="at"/> and returns the samples by series key.</summary>
    private static async Task<Dictionary<string, Sample>> PollAsync(SnmpSource source, SeriesRegistry registry, long at)
    {
        var sink = new RecordingSink();
        await source.PollAsync(sink, at, Ct);
        return sink.Samples.ToDictionary(s => registry[s.Series].Key, s => s);
    }

    private static IEnumerable<KeyValuePair<string, Sample>> Utilization(Dictionary<string, Sample> samples) =>
        samples.Where(s => s.Key.Contains("_utilization{", StringComparison.Ordinal));

    [Fact]
    public async Task Regression_an_uplink_at_80_percent_needed_a_rule_per_port_speed_as_there_was_no_utilization_series()
    {
        // Before: no utilisation; "80 % of an uplink" was an octet-rate threshold per port speed (1e9 By/s for 10 Gbit/s).
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        var (source, registry) = Build("tor-u1", CredentialsConfig.V2c("v2", "public"));
        // A 10G uplink whose ifSpeed is saturated (ifHighSpeed holds the speed), a 1G port, and a VLAN interface without speed.
        var rows = new Dictionary<int, Interface>
        {
            [1] = new("Te1/1/1", 1_000_000_000_000, 500_000_000_000, Saturated, 10_000),
            [2] = new("Gi1/0/2", 0, 0, 1_000_000_000, 1_000),
            [3] = new("Vlan10", 0, 0, 0, 0),
        };
        uint uptime = 100_000;
        var at = T0;
        async Task<Dictionary<string, Sample>> Next(Func<int, Interface, Interface> change, uint advanceTicks = 1_000)
        {
            foreach (var (i, r) in rows.ToArray())
            {
                rows[i] = change(i, r);
            }
            uptime += advanceTicks;
            at += Interval;
            snmpd.Set(uptime, xtable: true, rows);
            return await PollAsync(source, registry, at);
        }

        snmpd.Set(uptime, xtable: true, rows);
        var first = await PollAsync(source, registry, at);
        Assert.Empty(Utilization(first)); // the rates prime
        Assert.Equal(10_000, first["tor-u1/speed{if_name=Te1/1/1,ifindex=1}"].Value); // ifHighSpeed, not the saturated ifSpeed

        // 10 s: the uplink received 1e10 octets (8 Gbit/s of 10) and sent 2.5e9; the 1G port received 6.25e8 (5e8 bit/s).
        var second = await Next((i, r) => i switch
        {
            1 => r with { In = r.In + 10_000_000_000, Out = r.Out + 2_500_000_000 },
            2 => r with { In = r.In + 625_000_000 },
            _ => r with { In = r.In + 1_000_000 },
        });
        var utilization = Utilization(second).ToDictionary(s => s.Key, s => s.Value.Value);
        Assert.Equal(4, utilization.Count);
        Assert.Equal(80, utilization["tor-u1/in_utilization{if_name=Te1/1/1,ifindex=1}"], 9);
        Assert.Equal(20, utilization["tor-u1/out_utilization{if_name=Te1/1/1,ifindex=1}"], 9);
        Assert.Equal(50, utilization["tor-u1/in_utilization{if_name=Gi1/0/2,ifindex=2}"], 9);
        Assert.Equal(0, utilization["tor-u1/out_utilization{if_name=Gi1/0/2,ifindex=2}"], 9);
        var series = registry[second["tor-u1/in_utilization{if_name=Te1/1/1,ifindex=1}"].Series];
        Assert.Equal(("%", MetricKind.Gauge, "net.in_utilization"), (series.Unit, series.Kind, series.Role));
        Assert.All(Utilization(second), s => Assert.Equal(SampleQuality.Good, s.Value.Quality));

        // The 1G port renegotiates to 100M: the interval spanning the change has no value, the next one has.
        var changed = await Next((i, r) => i switch
        {
            1 => r with { In = r.In + 10_000_000_000 },
            2 => r with { In = r.In + 62_500_000, IfSpeed = 100_000_000, HighSpeed = 100 },
            _ => r,
        });
        Assert.DoesNotContain(changed.Keys, k => k.Contains("_utilization{if_name=Gi1/0/2", StringComparison.Ordinal));
        Assert.Equal(80, changed["tor-u1/in_utilization{if_name=Te1/1/1,ifindex=1}"].Value, 9);
        var after = await Next((i, r) => i == 2 ? r with { In = r.In + 62_500_000 } : r);
        Assert.Equal(50, after["tor-u1/in_utilization{if_name=Gi1/0/2,ifindex=2}"].Value, 9); // of 100 Mbit/s now

        // The switch reboots: sysUpTime and the counters start again. No rate and no utilisation from the reset; the
        // poll after has them again.
        var rebooted = await Next((i, r) => r with { In = 1_000, Out = 1_000 }, advanceTicks: 0);
        uptime = 500;
        snmpd.Set(uptime, xtable: true, rows);
        rebooted = await PollAsync(source, registry, at += 1);
        Assert.Empty(Utilization(rebooted));
        var up = await Next((i, r) => i == 1 ? r with { In = r.In + 5_000_000_000 } : r);
        Assert.Equal(40, up["tor-u1/in_utilization{if_name=Te1/1/1,ifindex=1}"].Value, 1); // 10 s + 1 ms

        // Counters that jump far past the link's speed with no flag (a discontinuity the device did not report): left
        // out, and said once.
        var jumped = await Next((i, r) => i == 1 ? r with { In = r.In + 1_000_000_000_000 } : r);
        Assert.DoesNotContain("tor-u1/in_utilization{if_name=Te1/1/1,ifindex=1}", jumped.Keys);
        jumped = await Next((i, r) => i == 1 ? r with { In = r.In + 1_000_000_000_000 } : r);
        Assert.DoesNotContain("tor-u1/in_utilization{if_name=Te1/1/1,ifindex=1}", jumped.Keys);

        var messages = _logs.Select(l => l.Message).ToList();
        var unknown = Assert.Single(messages, m => m.Contains("without a known link speed", StringComparison.Ordinal));
        Assert.Contains("tor-u1: table interface: 1 interface(s)", unknown, StringComparison.Ordinal);
        Assert.Contains("if_name=Vlan10", unknown, StringComparison.Ordinal);
        var speed = Assert.Single(messages, m => m.Contains("link speed changed", StringComparison.Ordinal));
        Assert.Contains("tor-u1/in_octets{if_name=Gi1/0/2,ifindex=2}: link speed changed from 1000 to 100 Mbit/s", speed, StringComparison.Ordinal);
        var above = Assert.Single(_logs, m => m.Message.Contains("more than the poll's timing explains", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Warning, above.Level);
        Assert.True(above.Message.Contains("in_utilization of tor-u1/in_octets{if_name=Te1/1/1,ifindex=1} came to 8000 % of its 10000 Mbit/s link", StringComparison.Ordinal), above.Message);
        Assert.DoesNotContain(registry.Snapshot(), s => s.Descriptor.Key.Contains("_utilization{if_name=Vlan10", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_device_without_ifXTable_gets_utilization_from_ifInOctets_and_ifSpeed_across_a_Counter32_wrap()
    {
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        var (source, registry) = Build("old-sw", CredentialsConfig.V2c("v2", "public"));
        // A 10 Mbit/s port whose ifInOctets is 1,000,000 short of 2^32, and one whose ifSpeed is saturated: with no
        // ifHighSpeed its speed is unknown.
        var rows = new Dictionary<int, Interface>
        {
            [1] = new("", 4_294_967_296 - 1_000_000, 0, 10_000_000, 0),
            [2] = new("", 0, 0, Saturated, 0),
        };
        snmpd.Set(1_000, xtable: false, rows);
        var first = await PollAsync(source, registry, T0);
        Assert.Equal(10, first["old-sw/speed{ifindex=1}"].Value); // ifSpeed in bit/s at 0.000001: the series stays Mbit/s
        Assert.Empty(Utilization(first));

        // 10 s at 5 Mbit/s in (6.25e6 octets, across the 32-bit wrap) and 1 Mbit/s out.
        rows[1] = rows[1] with { In = rows[1].In + 6_250_000, Out = 1_250_000 };
        rows[2] = rows[2] with { In = 1_000_000 };
        snmpd.Set(2_000, xtable: false, rows);
        var second = await PollAsync(source, registry, T0 + Interval);
        Assert.Equal(625_000, second["old-sw/in_octets{ifindex=1}"].Value, 9);
        Assert.Equal(50, second["old-sw/in_utilization{ifindex=1}"].Value, 9);
        Assert.Equal(10, second["old-sw/out_utilization{ifindex=1}"].Value, 9);
        Assert.Equal(100_000, second["old-sw/in_octets{ifindex=2}"].Value, 9);
        Assert.Equal(2, Utilization(second).Count());

        var messages = _logs.Select(l => l.Message).ToList();
        Assert.Contains(messages, m => m.Contains("column in_octets (.1.3.6.1.2.1.31.1.1.1.6) has no rows: read from its fallback .1.3.6.1.2.1.2.2.1.10", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.Contains("column speed (.1.3.6.1.2.1.31.1.1.1.15) has no rows: read from its fallback .1.3.6.1.2.1.2.2.1.5", StringComparison.Ordinal));
        Assert.Single(messages, m => m.Contains("without a known link speed", StringComparison.Ordinal) && m.Contains("old-sw/in_octets{ifindex=2}", StringComparison.Ordinal));
        // The empty ifXTable columns are not warned about as a wrong OID: their fallback filled them.
        Assert.DoesNotContain(_logs, l => l.Level >= LogLevel.Warning);
    }

    [Fact]
    public async Task Over_SNMPv1_which_carries_no_Counter64_the_utilization_comes_from_the_32_bit_counters()
    {
        // The same ifXTable device polled with a v1 community: snmpd leaves the ifHC* Counter64 out of v1 answers, so the
        // octets come from ifInOctets/ifOutOctets; ifHighSpeed (a Gauge32) is still read.
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        var (source, registry) = Build("v1-sw", new CredentialsConfig("v1", EdgeTwin.Core.Config.SnmpVersion.V1) { Community = "public" });
        var rows = new Dictionary<int, Interface> { [5] = new("Gi0/5", 10_000_000_000, 0, 1_000_000_000, 1_000) };
        snmpd.Set(1_000, xtable: true, rows);
        var first = await PollAsync(source, registry, T0);
        Assert.Equal(1_000, first["v1-sw/speed{if_name=Gi0/5,ifindex=5}"].Value); // ifHighSpeed: no fallback needed
        rows[5] = rows[5] with { In = rows[5].In + 312_500_000, Out = 125_000_000 };
        snmpd.Set(2_000, xtable: true, rows);
        var second = await PollAsync(source, registry, T0 + Interval);
        Assert.Equal(25, second["v1-sw/in_utilization{if_name=Gi0/5,ifindex=5}"].Value, 9);
        Assert.Equal(10, second["v1-sw/out_utilization{if_name=Gi0/5,ifindex=5}"].Value, 9);
        Assert.Contains(_logs, l => l.Message.Contains("column out_octets (.1.3.6.1.2.1.31.1.1.1.10) has no rows: read from its fallback .1.3.6.1.2.1.2.2.1.16", StringComparison.Ordinal));
        Assert.DoesNotContain(_logs, l => l.Level >= LogLevel.Warning); // before, the empty Counter64 columns were warned about
    }
}
