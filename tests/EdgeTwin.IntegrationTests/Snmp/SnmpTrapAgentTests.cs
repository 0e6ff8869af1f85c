using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.IntegrationTests.Agent;
using Microsoft.Extensions.DependencyInjection;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>The agent's trap listener (<c>snmp_traps:</c>) with a real snmpd polled through ietf-if-mib and real snmptrap.</summary>
public sealed class SnmpTrapAgentTests(SnmpdProcess snmpd) : IClassFixture<SnmpdProcess>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // Before, SnmpTrapSource existed but the agent never started it and no config key asked for it: a switch's linkDown
    // reached no running agent at all.
    [Fact]
    public async Task Regression_the_agent_started_no_trap_listener_so_a_switch_linkDown_reached_nothing()
    {
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        Assert.SkipWhen(SnmpdProcess.FindTool("snmptrap") is null, "snmptrap (Debian package 'snmp') is not installed");
        var trapPort = FreeUdpPort();
        var path = AgentFiles.WriteConfig(
            $"  - {{ id: tor-a01, profile: ietf-if-mib, address: \"udp:127.0.0.1:{snmpd.Port}\", credentials: pub, interval: 1s, timeout: 900ms }}",
            $"""
            snmp_traps:
              address: 127.0.0.1
              port: {trapPort}
              credentials: [pub]

            """);
        var loaded = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { SectionValidators = ConfigSectionValidators.Discover(typeof(AgentHostBuilder).Assembly) });
        Assert.True(loaded.IsValid, string.Join("\n", loaded.Problems));

        var traps = Channel.CreateUnbounded<EdgeEvent>();
        var options = new AgentHostOptions { UseSystemd = false, StatusLogInterval = null };
        options.EventObservers.Add(("traps", (e, _) =>
        {
            if (e.Kind == EdgeEventKind.Trap)
            {
                traps.Writer.TryWrite(e);
            }

            return ValueTask.CompletedTask;
        }));
        using var host = AgentHostBuilder.Build(loaded.Config!, options);
        var runtime = host.Services.GetRequiredService<AgentRuntime>();
        await host.StartAsync(Ct);
        try
        {
            await runtime.Started.WaitAsync(TimeSpan.FromSeconds(30), Ct);

            // The first poll names snmpd's interfaces (ifIndex 1 is lo on Linux); then the trap can name the port.
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!runtime.Registry.TryGet("tor-a01/oper_status{if_name=lo,ifindex=1}", out _) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100, Ct);
            }

            Assert.True(runtime.Registry.TryGet("tor-a01/oper_status{if_name=lo,ifindex=1}", out _), "the IF-MIB poll of snmpd made no series for lo");

            // The listener binds as the agent starts; a trap sent before it is bound is lost (UDP), so send until heard.
            EdgeEvent? e = null;
            for (var attempt = 0; attempt < 20 && e is null; attempt++)
            {
                var (exit, _, err) = await SnmpdProcess.RunToolAsync("snmptrap",
                    ["-v2c", "-c", "public", $"127.0.0.1:{trapPort}", "", "1.3.6.1.6.3.1.1.5.3",
                     "1.3.6.1.2.1.2.2.1.1.1", "i", "1", "1.3.6.1.2.1.2.2.1.7.1", "i", "1", "1.3.6.1.2.1.2.2.1.8.1", "i", "2"], Ct);
                Assert.True(exit == 0, err);
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(Ct);
                wait.CancelAfter(TimeSpan.FromMilliseconds(500));
                try
                {
                    e = await traps.Reader.ReadAsync(wait.Token);
                }
                catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
                {
                }
            }

            Assert.NotNull(e);
            Assert.Equal("tor-a01/lo", e.Source);
            Assert.Equal("tor-a01 port lo link down (ifIndex 1, admin up, oper down)", e.Message);
            Assert.Equal("1", e.Attributes!["link_down"]);
        }
        finally
        {
            await host.StopAsync(Ct);
        }
    }

    [Fact]
    public void A_snmp_traps_section_with_a_bad_address_oid_or_credentials_is_refused_at_the_key()
    {
        var path = AgentFiles.WriteConfig(
            "  - { id: tor-a01, profile: ietf-if-mib, address: \"udp:127.0.0.1:161\", credentials: pub }",
            """
            snmp_traps:
              address: 10.0.0.300
              credentials: [pub]
              critical: [linkDown]

            """);
        var loaded = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { SectionValidators = ConfigSectionValidators.Discover(typeof(AgentHostBuilder).Assembly) });
        Assert.False(loaded.IsValid);
        var text = string.Join("\n", loaded.Problems);
        Assert.Contains("snmp_traps.address: address '10.0.0.300' is not an IP address", text, StringComparison.Ordinal);
        Assert.Contains("expected a numeric trap OID (e.g. .1.3.6.1.4.1.318.0.5), got 'linkDown'", text, StringComparison.Ordinal);

        // References are checked once the rest is valid, as the agent's start would refuse them.
        path = AgentFiles.WriteConfig(
            "  - { id: tor-a01, profile: ietf-if-mib, address: \"udp:127.0.0.1:161\", credentials: pub }",
            """
            snmp_traps:
              credentials: [pub, tarps]

            """);
        loaded = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { SectionValidators = ConfigSectionValidators.Discover(typeof(AgentHostBuilder).Assembly) });
        Assert.False(loaded.IsValid);
        Assert.Contains("snmp_traps.credentials[1]: credentials 'tarps' are not defined under credentials: (defined: ops, pub)",
            string.Join("\n", loaded.Problems), StringComparison.Ordinal);
    }

    private static int FreeUdpPort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
