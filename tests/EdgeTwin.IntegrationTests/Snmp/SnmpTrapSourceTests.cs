using System.Net;
using System.Threading.Channels;
using EdgeTwin.Agent.Sources.Snmp;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.IntegrationTests.Snmp;

public sealed class SnmpTrapSourceTests
{
    private sealed class Events : IEventSink
    {
        public Channel<EdgeEvent> Channel { get; } = System.Threading.Channels.Channel.CreateUnbounded<EdgeEvent>();

        public ValueTask PublishAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken)
        {
            Channel.Writer.TryWrite(edgeEvent);
            return ValueTask.CompletedTask;
        }
    }

    private sealed class NoSamples : ISampleSink
    {
        public ValueTask WriteAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken) => throw new InvalidOperationException("traps write no samples");
    }

    [Fact]
    public async Task Ups_on_battery_trap_from_snmptrap_becomes_a_critical_event_naming_the_device()
    {
        Assert.SkipWhen(SnmpdProcess.FindTool("snmptrap") is null, "snmptrap (Debian package 'snmp') is not installed");
        var ct = TestContext.Current.CancellationToken;
        var source = new SnmpTrapSource(new SnmpTrapSourceOptions
        {
            EndPoint = new IPEndPoint(IPAddress.Loopback, 0),
            Devices = new Dictionary<IPAddress, string> { [IPAddress.Loopback] = "ups-1" },
            CriticalTrapOids = [".1.3.6.1.4.1.318.0.5"],
        });
        var events = new Events();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var run = source.RunAsync(new NoSamples(), events, stop.Token);
        await ListeningAsync(source, ct);
        var (exit, _, err) = await SnmpdProcess.RunToolAsync("snmptrap",
            ["-v2c", "-c", "public", $"127.0.0.1:{source.LocalEndPoint!.Port}", "100", "1.3.6.1.4.1.318.0.5", "1.3.6.1.4.1.318.1.1.1.2.2.1.0", "i", "87"], ct);
        Assert.True(exit == 0, err);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct);
        wait.CancelAfter(TimeSpan.FromSeconds(30));
        var e = await events.Channel.Reader.ReadAsync(wait.Token);
        Assert.Equal(EdgeEventKind.Trap, e.Kind);
        Assert.Equal("ups-1", e.Source);
        Assert.Equal(EventSeverity.Critical, e.Severity);
        Assert.Equal(".1.3.6.1.4.1.318.0.5", e.Attributes!["trap_oid"]);
        Assert.Equal("INTEGER: 87", e.Attributes[".1.3.6.1.4.1.318.1.1.1.2.2.1.0"]);
        await stop.CancelAsync();
        await run;
    }

    // Before, every linkDown/linkUp was "SNMP trap .1.3.6.1.6.3.1.1.5.3 from tor-a01" with the port only in a varbind
    // keyed by its OID: an event rule kept one alert per switch (port 18's linkUp cleared port 17's linkDown) and could
    // not tell a port shut on purpose from a failed link.
    [Fact]
    public async Task Regression_a_linkDown_trap_named_neither_the_port_nor_whether_it_was_shut()
    {
        Assert.SkipWhen(SnmpdProcess.FindTool("snmptrap") is null, "snmptrap (Debian package 'snmp') is not installed");
        var ct = TestContext.Current.CancellationToken;
        var source = new SnmpTrapSource(new SnmpTrapSourceOptions
        {
            EndPoint = new IPEndPoint(IPAddress.Loopback, 0),
            Devices = new Dictionary<IPAddress, string> { [IPAddress.Loopback] = "tor-a01" },
        });
        var registry = new EdgeTwin.Core.Samples.SeriesRegistry();
        source.RegisterSeries(registry);

        // The IF-MIB poll's series (ietf-if-mib: index_tag ifindex, label_tag if_name) name the ports.
        registry.GetOrAdd(new SeriesDescriptor("tor-a01", "oper_status", "1", MetricKind.State, "net.oper_status",
            [new("ifindex", "17"), new("if_name", "Gi1/0/17")]));
        var events = new Events();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var run = source.RunAsync(new NoSamples(), events, stop.Token);
        await ListeningAsync(source, ct);
        var target = $"127.0.0.1:{source.LocalEndPoint!.Port}";

        // What a switch sends (RFC 2863 linkDown: ifIndex, ifAdminStatus, ifOperStatus), v2c and v1 (generic trap 2/3).
        async Task<EdgeEvent> SendAsync(params string[] args)
        {
            var (exit, _, err) = await SnmpdProcess.RunToolAsync("snmptrap", [.. args.Take(3), target, .. args.Skip(3)], ct);
            Assert.True(exit == 0, err);
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct);
            wait.CancelAfter(TimeSpan.FromSeconds(30));
            return await events.Channel.Reader.ReadAsync(wait.Token);
        }

        var down = await SendAsync("-v2c", "-c", "public", "", "1.3.6.1.6.3.1.1.5.3",
            "1.3.6.1.2.1.2.2.1.1.17", "i", "17", "1.3.6.1.2.1.2.2.1.7.17", "i", "1", "1.3.6.1.2.1.2.2.1.8.17", "i", "2");
        Assert.Equal("tor-a01/Gi1/0/17", down.Source);
        Assert.Equal("tor-a01", down.Device);
        Assert.Equal("tor-a01 port Gi1/0/17 link down (ifIndex 17, admin up, oper down)", down.Message);
        Assert.Equal(EventSeverity.Warning, down.Severity);
        Assert.Equal("linkDown", down.Attributes!["trap"]);
        Assert.Equal("1", down.Attributes["link_down"]);
        Assert.Equal("17", down.Attributes["if_index"]);
        Assert.Equal("Gi1/0/17", down.Attributes["if_name"]);
        Assert.Equal("1", down.Attributes["if_admin_status"]);
        Assert.Equal("2", down.Attributes["if_oper_status"]);
        Assert.Equal("tor-a01", down.Attributes["device"]);
        Assert.Equal(".1.3.6.1.6.3.1.1.5.3", down.Attributes["trap_oid"]); // the old attributes stay
        Assert.Equal("INTEGER: 2", down.Attributes[".1.3.6.1.2.1.2.2.1.8.17"]);

        // A port the polls have not named yet, shut on purpose: its own source, no link_down, Info.
        var shut = await SendAsync("-v2c", "-c", "public", "", "1.3.6.1.6.3.1.1.5.3",
            "1.3.6.1.2.1.2.2.1.1.40", "i", "40", "1.3.6.1.2.1.2.2.1.7.40", "i", "2", "1.3.6.1.2.1.2.2.1.8.40", "i", "2");
        Assert.Equal("tor-a01/ifIndex 40", shut.Source);
        Assert.Equal("tor-a01 port ifIndex 40 link down, shut by admin (admin down, oper down)", shut.Message);
        Assert.Equal("0", shut.Attributes!["link_down"]);
        Assert.Equal(EventSeverity.Info, shut.Severity);

        // SNMPv1 generic linkUp (3) maps to .1.3.6.1.6.3.1.1.5.4 (RFC 3584) and clears port 17 only: same source.
        var up = await SendAsync("-v1", "-c", "public", "1.3.6.1.4.1.8072.3.2.10", "", "3", "0", "",
            "1.3.6.1.2.1.2.2.1.1.17", "i", "17", "1.3.6.1.2.1.2.2.1.7.17", "i", "1", "1.3.6.1.2.1.2.2.1.8.17", "i", "1");
        Assert.Equal("tor-a01/Gi1/0/17", up.Source);
        Assert.Equal("tor-a01 port Gi1/0/17 link up (ifIndex 17, admin up, oper up)", up.Message);
        Assert.Equal("0", up.Attributes!["link_down"]);
        Assert.Equal(EventSeverity.Info, up.Severity);
        await stop.CancelAsync();
        await run;
    }

    // The listener binds a free port once it runs.
    // Before, a trap's sender was matched to the configured devices by IP literal only: a switch configured as
    // udp:switch-a.example:161 never matched, and its traps (a linkDown too) were named by its bare IP.
    [Fact]
    public async Task Regression_traps_of_a_switch_configured_by_host_name_were_named_by_its_bare_ip()
    {
        Assert.SkipWhen(SnmpdProcess.FindTool("snmptrap") is null, "snmptrap (Debian package 'snmp') is not installed");
        var ct = TestContext.Current.CancellationToken;
        var path = EdgeTwin.IntegrationTests.Agent.AgentFiles.WriteConfig(
            "  - { id: switch-a, profile: ietf-if-mib, address: \"udp:localhost:161\", credentials: pub, interval: 10s }",
            """
            snmp_traps:
              address: 127.0.0.1
              port: 0
              credentials: [pub]

            """);
        var loaded = EdgeTwin.Core.Config.SiteConfigLoader.Load(path, new EdgeTwin.Core.Config.SiteConfigLoadOptions
        {
            SectionValidators = EdgeTwin.Core.Config.ConfigSectionValidators.Discover(typeof(SnmpTrapSource).Assembly),
        });
        Assert.True(loaded.IsValid, string.Join("\n", loaded.Problems));
        var source = new SnmpTrapSource(SnmpTrapsConfig.From(loaded.Config!)!.ToOptions(loaded.Config!));
        var events = new Events();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var run = source.RunAsync(new NoSamples(), events, stop.Token);
        await ListeningAsync(source, ct);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (source.DeviceOf(IPAddress.Loopback) is null && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20, ct); // localhost resolved as the listener started
        }

        var (exit, _, err) = await SnmpdProcess.RunToolAsync("snmptrap",
            ["-v2c", "-c", "public", $"127.0.0.1:{source.LocalEndPoint!.Port}", "", "1.3.6.1.6.3.1.1.5.3",
             "1.3.6.1.2.1.2.2.1.1.7", "i", "7", "1.3.6.1.2.1.2.2.1.7.7", "i", "1", "1.3.6.1.2.1.2.2.1.8.7", "i", "2"], ct);
        Assert.True(exit == 0, err);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct);
        wait.CancelAfter(TimeSpan.FromSeconds(30));
        var e = await events.Channel.Reader.ReadAsync(wait.Token);

        Assert.Equal("switch-a", e.Device);
        Assert.Equal("switch-a/ifIndex 7", e.Source);
        Assert.StartsWith("switch-a port ifIndex 7 link down", e.Message, StringComparison.Ordinal);
        await stop.CancelAsync();
        await run;
    }

    [Fact]
    public async Task A_host_name_that_does_not_resolve_is_logged_once_and_keeps_its_last_addresses()
    {
        var ct = TestContext.Current.CancellationToken;
        var logs = new System.Collections.Concurrent.ConcurrentQueue<(Microsoft.Extensions.Logging.LogLevel Level, string Message)>();
        var answers = new Queue<Func<Task<IPAddress[]>>>(
        [
            () => Task.FromResult(new[] { IPAddress.Parse("10.9.8.7") }),
            () => throw new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.HostNotFound),
            () => throw new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.HostNotFound),
            () => Task.Delay(Timeout.Infinite, ct).ContinueWith(_ => Array.Empty<IPAddress>(), TaskScheduler.Default), // hangs
            () => Task.FromResult(new[] { IPAddress.Parse("10.9.8.6") }),
        ]);
        var source = new SnmpTrapSource(
            new SnmpTrapSourceOptions
            {
                EndPoint = new IPEndPoint(IPAddress.Loopback, 0),
                Devices = new Dictionary<IPAddress, string> { [IPAddress.Parse("10.0.0.1")] = "pdu-1" },
                Hosts = [new TrapSenderHost("switch-a.example", "switch-a", Interfaces: true)],
                ResolveTimeout = TimeSpan.FromMilliseconds(200),
                Resolve = (_, _) => answers.Dequeue()(),
            },
            new EdgeTwin.Tests.Shared.ListLogger<SnmpTrapSource>(logs));

        await source.ResolveHostsAsync(ct);
        Assert.Equal("switch-a", source.DeviceOf(IPAddress.Parse("10.9.8.7")));
        await source.ResolveHostsAsync(ct); // fails: logged
        await source.ResolveHostsAsync(ct); // fails again: not logged again
        await source.ResolveHostsAsync(ct); // no answer within the timeout: not logged again
        Assert.Equal("switch-a", source.DeviceOf(IPAddress.Parse("10.9.8.7")));
        var warning = Assert.Single(logs, l => l.Level == Microsoft.Extensions.Logging.LogLevel.Warning).Message;
        Assert.Contains("switch-a.example does not resolve (HostNotFound)", warning, StringComparison.Ordinal);
        await source.ResolveHostsAsync(ct); // renumbered
        Assert.Null(source.DeviceOf(IPAddress.Parse("10.9.8.7")));
        Assert.Equal("switch-a", source.DeviceOf(IPAddress.Parse("10.9.8.6")));
        Assert.Equal("pdu-1", source.DeviceOf(IPAddress.Parse("10.0.0.1")));
        Assert.Contains(logs, l => l.Message.Contains("resolves again", StringComparison.Ordinal));
    }

    private static async Task ListeningAsync(SnmpTrapSource source, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (source.LocalEndPoint is null && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20, ct);
        }

        Assert.NotNull(source.LocalEndPoint);
    }
}
