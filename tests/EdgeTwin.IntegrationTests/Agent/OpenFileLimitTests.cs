using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using EdgeTwin.IntegrationTests.Deployment;
using EdgeTwin.IntegrationTests.Snmp;
using EdgeTwin.Modbus.Tests.Peers;

namespace EdgeTwin.IntegrationTests.Agent;

/// <summary>
/// A big site on a gateway whose service has too few file descriptors: Modbus TCP meters each on its own IP (all of
/// 127.0.0.0/8 is loopback, so one pymodbus server on 0.0.0.0 is a distinct TCP peer per address) and the agent as a
/// child process under <c>prlimit --nofile=256:256</c>, as a unit's <c>LimitNOFILE=256</c> would start it.
/// </summary>
public sealed class OpenFileLimitTests(SnmpdProcess snmpd) : IClassFixture<SnmpdProcess>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const int Limit = 256;

    // More meters than the limit leaves room for (the agent holds about 185 with no device).
    private const int Meters = 150;

    private const string Profile = """
        profile: fd-test-meter
        vendor: Acme
        model: FD1
        protocol: modbus
        source: "test register map"
        modbus: { addressing: 0, max_registers_per_read: 60, gap_tolerance: 10, byte_order: ABCD }
        metrics:
          - { name: voltage, table: holding, address: 0, type: uint16, scale: 0.1, unit: V, kind: gauge, role: meter.voltage }
        """;

    private const string SnmpProfile = """
        profile: fd-test-agent
        vendor: net-snmp
        model: snmpd
        protocol: snmp
        source: "SNMPv2-MIB"
        metrics:
          - { name: uptime, oid: .1.3.6.1.2.1.1.3.0, unit: s, kind: gauge, scale: 0.01, role: net.uptime, min: 0 }
        """;

    private static string WriteSite(int port, int snmpPort = 0, int snmpDevices = 0)
    {
        var dir = AgentFiles.TempDir("edgetwin-fds-");
        var profiles = Directory.CreateDirectory(Path.Combine(dir.FullName, "profiles"));
        File.WriteAllText(Path.Combine(profiles.FullName, "fd-test-meter.yaml"), Profile);
        File.WriteAllText(Path.Combine(profiles.FullName, "fd-test-agent.yaml"), SnmpProfile);
        var yaml = new StringBuilder();
        yaml.Append(CultureInfo.InvariantCulture, $"""
            site: {"{"} id: dc1, gateway_id: gw-fds {"}"}
            profiles_dir: {profiles.FullName}
            outbox: {"{"} path: {Path.Combine(dir.FullName, "outbox.db")} {"}"}
            devices:

            """);
        for (var i = 1; i <= Meters; i++)
        {
            yaml.Append(CultureInfo.InvariantCulture, $"  - {{ id: m{i}, profile: fd-test-meter, address: \"tcp:127.0.{i / 250}.{(i % 250) + 1}:{port}\", interval: 2s, timeout: 1s }}\n");
        }

        for (var i = 1; i <= snmpDevices; i++)
        {
            yaml.Append(CultureInfo.InvariantCulture, $"  - {{ id: pdu{i}, profile: fd-test-agent, address: \"udp:127.0.0.1:{snmpPort}\", credentials: pub, interval: 2s, timeout: 1s }}\n");
        }

        if (snmpDevices > 0)
        {
            yaml.Append("credentials:\n  pub: { version: 2c, community: public }\n");
        }

        var path = Path.Combine(dir.FullName, "edgetwin.yaml");
        File.WriteAllText(path, yaml.ToString());
        return path;
    }

    [Fact]
    public async Task Regression_descriptor_limit_aborted_the_agent_and_named_no_limit()
    {
        // Before: past the limit socket(2) failed with EMFILE outside the connect's error handling (a failed request every
        // poll, no backoff, ".NET's "Too many open files in system"), then the runtime could not open an assembly it loads
        // on first use and aborted the whole agent ("Out of memory.", exit 134), losing the polls of the devices that did
        // connect. Now: connects stop short of the limit with an error naming it and LimitNOFILE=, the start says what the
        // config needs, and the agent keeps polling the connected meters and stops cleanly with their samples.
        await using var server = await PymodbusServer.StartTcpAsync(PymodbusServer.Units((1, "hr", 0, [2300])), host: "0.0.0.0");
        var config = WriteSite(server.Port);
        await using var agent = AgentProcess.StartWithOpenFileLimit(Limit, "run", "--config", config);

        Assert.Equal("READY=1", await agent.ReceiveNotifyAsync(TimeSpan.FromSeconds(60), Ct));
        await WaitForAsync(agent, () => agent.Stdout.Contains("connect failed: too many open files", StringComparison.Ordinal), "a device refused at the limit");
        Assert.Matches(new Regex(@"Open files: the devices need about \d+ open files \(150 Modbus TCP connections, .*but this process may open only 256 \(soft RLIMIT_NOFILE\).*Set LimitNOFILE=\d+"), agent.Stdout);
        Assert.Matches(new Regex(@"Device m\d+: first poll failed \(error\).*connect failed: too many open files: the process's limit of 256 descriptors \(soft RLIMIT_NOFILE\) is reached but for the last 64, kept for the agent's own files; raise LimitNOFILE= in the edgetwin unit"), agent.Stdout);

        // Past the refusals the agent goes on: the connected meters keep answering for several more polls.
        var polled = Regex.Count(agent.Stdout, "Modbus connected to");
        Assert.True(polled > 0, agent.Stdout);
        await Task.Delay(TimeSpan.FromSeconds(8), Ct);
        Assert.False(agent.HasExited, $"the agent exited at the descriptor limit; stdout tail:\n{Tail(agent.Stdout)}\nstderr:\n{agent.Stderr}");
        Assert.DoesNotContain("Too many open files in system", agent.Stdout, StringComparison.Ordinal);
        // Each refused endpoint warns once; its retries are Debug (the reason does not change with the open count).
        var refused = Regex.Matches(agent.Stdout, @"warn: EdgeTwin\.Modbus\.(tcp://[0-9.:]+)\[2\] Modbus connect to").Select(m => m.Groups[1].Value).ToList();
        Assert.NotEmpty(refused);
        var loudest = refused.GroupBy(e => e).MaxBy(g => g.Count())!;
        Assert.True(loudest.Count() == 1, $"{loudest.Count()} connect warnings for {loudest.Key}");

        // The control socket still answers at the limit (the reserve keeps descriptors for its clients and the stores).
        var status = await AgentProcess.RunCliAsync("status", "--config", config);
        Assert.True(status.Code is 0 or 1, $"status exit {status.Code}: {status.Out}{status.Err}");
        Assert.Contains("outbox", status.Out, StringComparison.Ordinal);

        await agent.TerminateAsync(Ct);
        var code = await agent.WaitForExitAsync(TimeSpan.FromSeconds(60), Ct);
        Assert.True(code == 0, $"exit {code}; stdout tail:\n{Tail(agent.Stdout)}\nstderr:\n{agent.Stderr}");
        Assert.Matches(new Regex(@"Outbox closed cleanly with [1-9]\d* entries"), agent.Stdout);
    }

    [Fact]
    public async Task Regression_snmp_devices_stopped_with_the_agent_when_modbus_meters_took_the_last_descriptors()
    {
        // Before: the meters' connects took every descriptor and the runtime aborted the agent, PDUs included; the SNMP
        // socket, opened at the first SNMP poll, could not be had either. Now the PDUs poll on beside the refused meters.
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        await using var server = await PymodbusServer.StartTcpAsync(PymodbusServer.Units((1, "hr", 0, [2300])), host: "0.0.0.0");
        var config = WriteSite(server.Port, snmpd.Port, snmpDevices: 10);
        await using var agent = AgentProcess.StartWithOpenFileLimit(Limit, "run", "--config", config, "--log-level", "Trace");

        Assert.Equal("READY=1", await agent.ReceiveNotifyAsync(TimeSpan.FromSeconds(60), Ct));
        await WaitForAsync(agent, () => agent.Stdout.Contains("connect failed: too many open files", StringComparison.Ordinal), "a meter refused at the limit");
        var before = Regex.Count(agent.Stdout, @"Device pdu\d+: poll returned 1 samples");
        await WaitForAsync(agent, () => Regex.Count(agent.Stdout, @"Device pdu\d+: poll returned 1 samples") >= before + 20, "two more rounds of PDU polls at the limit");
        Assert.Contains("1 SNMP socket", agent.Stdout, StringComparison.Ordinal);

        await agent.TerminateAsync(Ct);
        var code = await agent.WaitForExitAsync(TimeSpan.FromSeconds(60), Ct);
        Assert.True(code == 0, $"exit {code}; stdout tail:\n{Tail(agent.Stdout)}\nstderr:\n{agent.Stderr}");
    }

    [Fact]
    public async Task Regression_check_said_nothing_about_a_descriptor_limit_too_low_for_the_site()
    {
        // Before: `edgetwin check` passed a 150-meter site under a 256-descriptor limit without a word. Now: a warning
        // with the figure needed, the limit, and the unit key (the check still passes: the config itself is valid).
        var config = WriteSite(502);
        var prlimit = Tool.Require("prlimit", "util-linux");
        var run = await Tool.RunAsync(prlimit,
            [$"--nofile={Limit}:{Limit}", "--", Tool.Find("dotnet") ?? "dotnet", Path.Combine(AppContext.BaseDirectory, "edgetwin.dll"), "check", "--config", config],
            TimeSpan.FromSeconds(60), Ct);

        Assert.True(run.ExitCode == 0, run.All);
        Assert.Contains($"{config}: warning: devices: the devices need about 414 open files (150 Modbus TCP connections, 0 RTU-over-TCP, 0 serial lines, 0 SNMP socket, 0 sensors, 200 fixed and 64 kept in reserve), but this process may open only 256 (soft RLIMIT_NOFILE): devices past it cannot connect. Set LimitNOFILE=1024 (at least 414) in the edgetwin unit (Ansible: edgetwin_limit_nofile)", run.StdOut, StringComparison.Ordinal);

        // With the limit the role sets, the same site checks without it.
        var roomy = await Tool.RunAsync(Tool.Find("dotnet") ?? "dotnet", [Path.Combine(AppContext.BaseDirectory, "edgetwin.dll"), "check", "--config", config], TimeSpan.FromSeconds(60), Ct);
        Assert.True(roomy.ExitCode == 0, roomy.All);
        Assert.DoesNotContain("RLIMIT_NOFILE", roomy.StdOut, StringComparison.Ordinal);
    }

    private static string Tail(string text) => text.Length > 4000 ? text[^4000..] : text;

    private static async Task WaitForAsync(AgentProcess agent, Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline || agent.HasExited)
            {
                Assert.Fail($"no {what} within 30 s (exited: {agent.HasExited}); stdout tail:\n{Tail(agent.Stdout)}\nstderr:\n{agent.Stderr}");
            }

            await Task.Delay(200, Ct);
        }
    }
}
