using System.CommandLine;
using System.Text.Json;
using EdgeTwin.Agent.Cli;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary><c>edgetwin snmp ...</c> against a real snmpd, compared line by line with net-snmp's own tools.</summary>
public sealed class SnmpCliTests(SnmpdProcess snmpd) : IClassFixture<SnmpdProcess>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // Values that do not move between two reads (sysUpTime and traffic counters do).
    private static readonly string[] StableOids =
    [
        ".1.3.6.1.2.1.1.1.0", ".1.3.6.1.2.1.1.2.0", ".1.3.6.1.2.1.1.4.0", ".1.3.6.1.2.1.1.6.0", ".1.3.6.1.2.1.1.7.0",
        ".1.3.6.1.2.1.2.1.0", ".1.3.6.1.2.1.2.2.1.3.1", ".1.3.6.1.2.1.2.2.1.6.1", ".1.3.6.1.2.1.2.2.1.5.1",
        ".1.3.6.1.2.1.4.20.1.1.127.0.0.1", ".1.3.6.1.2.1.1.99.0",
    ];

    private static async Task<(int Exit, string Out, string Err)> EdgetwinAsync(params string[] args)
    {
        var root = new RootCommand();
        root.Subcommands.Add(new SnmpCommand().Create());
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await root.Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, Ct);
        return (exit, output.ToString(), error.ToString());
    }

    private void Skip() => Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");

    [Fact]
    public async Task Get_prints_exactly_what_snmpget_On_prints()
    {
        Skip();
        var (exit, ours, err) = await EdgetwinAsync(["snmp", "get", "-v", "2c", "-c", "public", snmpd.Agent, .. StableOids]);
        Assert.True(exit == 0, err);
        var (theirExit, theirs, theirErr) = await SnmpdProcess.RunToolAsync("snmpget", ["-v2c", "-c", "public", "-On", snmpd.Agent, .. StableOids], Ct);
        Assert.True(theirExit == 0, theirErr);
        Assert.Equal(theirs, ours);
    }

    [Fact]
    public async Task V3_authPriv_get_matches_snmpget()
    {
        Skip();
        string[] v3 = ["-v", "3", "-u", "clisha", "-l", "authPriv", "-a", "SHA-256", "-A", "authpass123", "-x", "AES-256", "-X", "privpass123"];
        var (exit, ours, err) = await EdgetwinAsync(["snmp", "get", .. v3, snmpd.Agent, ".1.3.6.1.2.1.1.1.0", ".1.3.6.1.2.1.1.6.0"]);
        Assert.True(exit == 0, err);
        var (_, theirs, _) = await SnmpdProcess.RunToolAsync("snmpget", [.. v3, "-On", snmpd.Agent, ".1.3.6.1.2.1.1.1.0", ".1.3.6.1.2.1.1.6.0"], Ct);
        Assert.Equal(theirs, ours);
    }

    [Fact]
    public async Task Getnext_and_walks_match_net_snmp()
    {
        Skip();
        var (_, ours, _) = await EdgetwinAsync(["snmp", "getnext", snmpd.Agent, ".1.3.6.1.2.1.1.1", ".1.3.6.1.2.1.1.4"]);
        var (_, theirs, _) = await SnmpdProcess.RunToolAsync("snmpgetnext", ["-v2c", "-c", "public", "-On", snmpd.Agent, ".1.3.6.1.2.1.1.1", ".1.3.6.1.2.1.1.4"], Ct);
        Assert.Equal(theirs, ours);
        foreach (var table in new[] { ".1.3.6.1.2.1.2.2.1.2", ".1.3.6.1.2.1.2.2.1.3" })
        {
            var (e1, walk, err1) = await EdgetwinAsync(["snmp", "walk", "-v", "1", snmpd.Agent, table]);
            Assert.True(e1 == 0, err1);
            var (_, theirWalk, _) = await SnmpdProcess.RunToolAsync("snmpwalk", ["-v1", "-c", "public", "-On", snmpd.Agent, table], Ct);
            Assert.Equal(theirWalk, walk);
            var (e2, bulk, err2) = await EdgetwinAsync(["snmp", "bulkwalk", "--max-repetitions", "3", snmpd.Agent, table]);
            Assert.True(e2 == 0, err2);
            var (_, theirBulk, _) = await SnmpdProcess.RunToolAsync("snmpbulkwalk", ["-v2c", "-c", "public", "-On", "-Cr3", snmpd.Agent, table], Ct);
            Assert.Equal(theirBulk, bulk);
        }
    }

    [Fact]
    public async Task Json_output_is_machine_readable()
    {
        Skip();
        var (exit, ours, _) = await EdgetwinAsync(["snmp", "get", "--json", snmpd.Agent, ".1.3.6.1.2.1.1.6.0", ".1.3.6.1.2.1.2.2.1.3.1"]);
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(ours);
        var vbs = doc.RootElement.GetProperty("varbinds");
        Assert.Equal("rack B7", vbs[0].GetProperty("value").GetString());
        Assert.Equal("STRING", vbs[0].GetProperty("type").GetString());
        Assert.Equal(24, vbs[1].GetProperty("value").GetInt32());
    }

    [Fact]
    public async Task Failures_give_one_line_reason_and_distinct_exit_codes()
    {
        Skip();
        var (timeoutExit, _, timeoutErr) = await EdgetwinAsync(["snmp", "get", "-c", "wrong", "-t", "0.3", "-r", "1", snmpd.Agent, ".1.3.6.1.2.1.1.1.0"]);
        Assert.Equal(2, timeoutExit);
        Assert.Single(timeoutErr.TrimEnd('\n').Split('\n'));
        Assert.Contains("no response after 2 attempt(s)", timeoutErr, StringComparison.Ordinal);

        var (userExit, _, userErr) = await EdgetwinAsync(["snmp", "get", "-v", "3", "-u", "ghost", "-l", "authNoPriv", "-a", "SHA", "-A", "authpass123", snmpd.Agent, ".1.3.6.1.2.1.1.1.0"]);
        Assert.Equal(1, userExit);
        Assert.Contains("unknown user name", userErr, StringComparison.Ordinal);

        var (authExit, _, authErr) = await EdgetwinAsync(["snmp", "get", "-v", "3", "-u", "clisha", "-l", "authPriv", "-a", "SHA-256", "-A", "wrongpass1", "-x", "AES-256", "-X", "privpass123", snmpd.Agent, ".1.3.6.1.2.1.1.1.0"]);
        Assert.Equal(1, authExit);
        Assert.Contains("wrong auth password", authErr, StringComparison.Ordinal);

        var (privExit, _, privErr) = await EdgetwinAsync(["snmp", "get", "-v", "3", "-u", "clisha", "-l", "authPriv", "-a", "SHA-256", "-A", "authpass123", "-x", "AES-256", "-X", "wrongpriv1", "-t", "0.7", "-r", "0", snmpd.Agent, ".1.3.6.1.2.1.1.1.0"]);
        Assert.Equal(1, privExit);
        Assert.Contains("privacy password", privErr, StringComparison.Ordinal);

        var (usageExit, _, usageErr) = await EdgetwinAsync(["snmp", "get", snmpd.Agent, "sysDescr.0"]);
        Assert.Equal(3, usageExit);
        Assert.Contains("not a numeric OID", usageErr, StringComparison.Ordinal);
    }
}
