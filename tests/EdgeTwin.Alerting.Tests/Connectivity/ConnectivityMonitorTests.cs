using System.Net;
using System.Net.Sockets;
using EdgeTwin.Alerting.Connectivity;
using EdgeTwin.Alerting.Rules;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Alerting.Tests.Connectivity;

public sealed class ConnectivityMonitorTests
{
    [Fact]
    public void Regression_uplink_waited_70s_after_the_broker_returned_probe_recovery_is_told_once_per_return()
    {
        // The agent wakes the uplink's reconnect on this edge; a broker that keeps accepting TCP (but refuses the client)
        // must not cause a wake per probe, and neither must the uplink staying unhealthy.
        var monitor = new ConnectivityMonitor(new ConnectivityConfig { ProbeHost = "127.0.0.1", ProbePort = 1, OfflineAfter = 2 }, () => false, new FakeTimeProvider());
        var wakes = 0;
        monitor.ProbeRecovered += () => wakes++;

        monitor.Observe(probeOk: true, uplinkHealthy: true);
        monitor.Observe(probeOk: false, uplinkHealthy: false);
        monitor.Observe(probeOk: false, uplinkHealthy: false);
        Assert.Equal(0, wakes);
        Assert.Equal(UplinkState.Offline, monitor.Observe(probeOk: true, uplinkHealthy: false)); // broker back, uplink still waiting
        Assert.Equal(1, wakes);
        monitor.Observe(probeOk: true, uplinkHealthy: false);
        monitor.Observe(probeOk: true, uplinkHealthy: true);
        Assert.Equal(1, wakes);
        monitor.Observe(probeOk: false, uplinkHealthy: true);
        monitor.Observe(probeOk: true, uplinkHealthy: true);
        Assert.Equal(2, wakes);
    }

    /// <summary>
    /// Without a probe host only the uplink's health is watched; bracketing IPv6 probe endpoints made the reason text
    /// throw (ArgumentNullException on the missing host) the first time such an uplink stopped delivering.
    /// </summary>
    [Fact]
    public void Regression_an_uplink_watched_without_a_probe_threw_when_it_stopped_delivering()
    {
        var monitor = new ConnectivityMonitor(new ConnectivityConfig { ProbeHost = null, OfflineAfter = 2 }, () => false, new FakeTimeProvider());
        Assert.Equal(UplinkState.Online, monitor.Observe(probeOk: true, uplinkHealthy: true));
        Assert.Equal(UplinkState.Degraded, monitor.Observe(probeOk: true, uplinkHealthy: false));
        Assert.Equal(UplinkState.Offline, monitor.Observe(probeOk: true, uplinkHealthy: false));
        Assert.Equal("the uplink has delivered nothing for 2 checks (refused login, TLS or ACL? see the uplink's log)", monitor.History()[^1].Reason);
        Assert.Equal(UplinkState.Online, monitor.Observe(probeOk: true, uplinkHealthy: true));
        Assert.Equal("the uplink delivers", monitor.History()[^1].Reason);
    }

    /// <summary>
    /// Regression: with the MQTT uplink's broker list (hosts:) the probe connected to the first entry's host on port:'s
    /// port only; with broker A down the uplink delivered through B while the alarm said the uplink was offline.
    /// </summary>
    [Fact]
    public async Task Regression_with_a_broker_list_the_probe_said_offline_while_the_uplink_delivered_through_the_second_broker()
    {
        using var closed = new TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        var downPort = ((IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop(); // broker A: nothing listens
        using var b = new TcpListener(IPAddress.Loopback, 0);
        b.Start();
        var upPort = ((IPEndPoint)b.LocalEndpoint).Port;
        var monitor = new ConnectivityMonitor(new ConnectivityConfig { ProbeHost = "127.0.0.1", ProbePort = downPort, AlsoProbe = [("127.0.0.1", upPort)], OfflineAfter = 2, Timeout = TimeSpan.FromSeconds(5) }, () => true, new FakeTimeProvider());

        Assert.True(await monitor.ProbeAsync(TestContext.Current.CancellationToken));
        b.Stop();
        Assert.False(await monitor.ProbeAsync(TestContext.Current.CancellationToken));
        monitor.Observe(false, true);
        Assert.Equal($"1 failed probe of 127.0.0.1:{downPort} and 127.0.0.1:{upPort}", monitor.History()[^1].Reason);
    }

    [Fact]
    public async Task Probe_of_a_listening_port_is_online_a_closed_one_degrades_then_goes_offline()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
        var monitor = new ConnectivityMonitor(new ConnectivityConfig { ProbeHost = "127.0.0.1", ProbePort = port, OfflineAfter = 2, Timeout = TimeSpan.FromSeconds(5) }, () => true, time);
        var changes = new List<ConnectivityChange>();
        monitor.Changed += changes.Add;

        Assert.True(await monitor.ProbeAsync(TestContext.Current.CancellationToken));
        Assert.Equal(UplinkState.Online, monitor.Observe(true, true));

        listener.Stop();
        var ok = await monitor.ProbeAsync(TestContext.Current.CancellationToken);
        Assert.False(ok);
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(UplinkState.Degraded, monitor.Observe(ok, true));
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(UplinkState.Offline, monitor.Observe(false, false));
        Assert.Equal(time.GetUtcNow(), monitor.Since);
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(UplinkState.Offline, monitor.Observe(true, false)); // broker reachable, uplink still not delivering
        Assert.Equal(UplinkState.Online, monitor.Observe(true, true));

        // The first result is reported even without a change (a restored uplink alert must learn the uplink is fine),
        // but only real changes are kept in the history.
        Assert.Equal((UplinkState.Online, "first probe"), (changes[0].State, changes[0].Reason));
        var real = changes.Skip(1).ToList();
        Assert.Equal([UplinkState.Degraded, UplinkState.Offline, UplinkState.Online], real.Select(c => c.State));
        Assert.Equal(real, monitor.History());
        Assert.Contains("failed probes", real[1].Reason, StringComparison.Ordinal);
    }
}
