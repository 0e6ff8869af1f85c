using EdgeTwin.Agent.Cli;
using EdgeTwin.Agent.Sources.Snmp;
using EdgeTwin.Core.Sources;
using EdgeTwin.IntegrationTests.Agent;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>The shipped ietf-if-mib profile against net-snmp's snmpd, which serves this machine's own IF-MIB.</summary>
public sealed class IfMibSnmpdTests(SnmpdProcess snmpd) : IClassFixture<SnmpdProcess>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<(int Code, string Out, string Err)> PollAsync()
    {
        var path = AgentFiles.WriteConfig($"  - {{ id: tor-a01, profile: ietf-if-mib, address: \"udp:127.0.0.1:{snmpd.Port}\", credentials: pub, interval: 10s, timeout: 2s }}");
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await PollCommand.PollAsync(AgentFiles.Load(path), "tor-a01", new SourceFactories([new SnmpSourceFactory()]),
            NullLoggerFactory.Instance, TimeProvider.System, json: false, output, error, Ct);
        return (code, output.ToString(), error.ToString());
    }

    // Before, one poll printed uptime, oper_status and speed only: the five rate columns (octets, errors, discards) only
    // prime on a first reading, so the engineer saw no traffic at all and took the profile for broken. And the octet
    // rates' series said "By" (the Modbus source and the docs say <unit>/s): bytes or bytes per second, nobody could tell.
    [Fact]
    public async Task Regression_edgetwin_poll_of_a_switch_printed_no_traffic_and_its_rates_were_in_By_not_By_per_second()
    {
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");

        var (code, output, error) = await PollAsync();

        Assert.True(code == 0, output + error);
        Assert.Contains("5 rate metric(s) (in_octets, out_octets, in_errors, out_errors, …) need two readings: polled again after 1s", error, StringComparison.Ordinal);
        var lines = output.Split('\n');
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^in_octets\{ifindex=1,if_name=lo\} +[0-9.]+ By/s +net\.in_bytes$"));
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^in_errors\{ifindex=1,if_name=lo\} +[0-9.]+ 1/s +net\.in_errors$"));
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^admin_status\{ifindex=1,if_name=lo\} +1 \(up\) +1 +net\.admin_status$"));
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^speed\{ifindex=1,if_name=lo\} +[0-9.]+ Mbit/s +net\.speed$"));
    }
}
