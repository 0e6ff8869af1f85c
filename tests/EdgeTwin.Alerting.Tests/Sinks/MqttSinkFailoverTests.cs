using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;
using EdgeTwin.Uplink.Mqtt;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Alerting.Tests.Sinks;

/// <summary>
/// The alert MQTT sink on a site whose local broker is an HA pair (<c>hosts:</c>, as <c>uplinks.mqtt.hosts</c>): two real
/// mosquittos on random ports, each stopped and started again by the test.
/// </summary>
public sealed class MqttSinkFailoverTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static AlertNotification Message(long id) => new("room=room1",
    [
        new AlertSnapshot(id, "inlet-hot", $"rack-r{id:00}/inlet", AlertStatus.Firing, AlertState.Firing, EventSeverity.Critical, 31.5,
            $"rack-r{id:00}/inlet = 31.5, above 30", new Dictionary<string, string> { ["room"] = "room1" }, [], T0, null, null, false, T0),
    ], T0);

    private static MqttSinkConfig Pair(string a, string b, int retries = 1) => (MqttSinkConfig)Yaml.Valid($$"""
        alerts:
          sinks:
            - { name: local, type: mqtt, hosts: ["{{a}}", "{{b}}"], topic: "edgetwin/{site}/{gateway}/alerts", timeout: 2s, retries: {{retries}}, retry_delay: 100ms }
        """).Sinks[0];

    /// <summary>The alert ids each message on a broker carried, in arrival order.</summary>
    private static List<long> Ids(ConcurrentQueue<(string Topic, byte[] Payload)> received) =>
        [.. received.Select(m =>
        {
            using var json = JsonDocument.Parse(m.Payload);
            return json.RootElement.GetProperty("alerts")[0].GetProperty("id").GetInt64();
        })];

    [Fact]
    public async Task Regression_the_alert_mqtt_sink_sent_nothing_while_the_first_broker_of_an_ha_pair_was_down()
    {
        // Both keep sessions, so an observer subscribed with a session id gets what arrived while it reconnected after
        // a broker's restart (the sink's held message may go out the moment the broker is back).
        await using var a = await Mosquitto.StartAsync(keepSessions: true);
        await using var b = await Mosquitto.StartAsync(keepSessions: true);
        var atA = new ConcurrentQueue<(string Topic, byte[] Payload)>();
        var atB = new ConcurrentQueue<(string Topic, byte[] Payload)>();
        var observerA = await a.SubscribeAsync("edgetwin/#", atA, "observer-a");
        var observerB = await b.SubscribeAsync("edgetwin/#", atB, "observer-b");
        observerA.Dispose();
        await a.StopKeepingSessionsAsync();

        var config = Pair($"127.0.0.1:{a.Port}", $"127.0.0.1:{b.Port}");
        Assert.Equal([new MqttBrokerAddress("127.0.0.1", a.Port), new MqttBrokerAddress("127.0.0.1", b.Port)], config.Servers);
        var sinkLog = new ListLogger();
        var runnerLog = new ListLogger();
        await using var runner = new SinkRunner(new MqttSink(config, "dc1", "gw1", sinkLog), config, runnerLog);
        await runner.StartAsync(Ct);

        // The first broker down: the alerts go to the second, at the first attempt (no retry, no outage). Before, the
        // sink knew one host: no local alert while that broker was down.
        Send(runner, 1);
        await Wait.UntilAsync(() => runner.Delivered == 1, "alert 1 through broker B", 30);
        Send(runner, 2);
        await Wait.UntilAsync(() => runner.Delivered == 2, "alert 2 through broker B", 30);
        Assert.Null(runner.Outage);
        Assert.DoesNotContain(runnerLog.Lines, l => l.Level >= LogLevel.Warning);
        Assert.StartsWith($"alert sink local: server mqtt://127.0.0.1:{a.Port} failed: ", Assert.Single(sinkLog.At(LogLevel.Warning)), StringComparison.Ordinal);
        Assert.EndsWith($"; trying mqtt://127.0.0.1:{b.Port} now", sinkLog.At(LogLevel.Warning).Single(), StringComparison.Ordinal);

        // A comes back and B goes: the sink, on B while it worked, loses its session there and tries A (after B, wrapping).
        await a.RestartAsync();
        observerA = await a.SubscribeAsync("edgetwin/#", atA, "observer-a");
        await Wait.UntilAsync(() => atB.Count == 2, "alerts 1 and 2 at broker B's observer", 30);
        observerB.Dispose();
        await b.StopKeepingSessionsAsync();
        Send(runner, 3);
        await Wait.UntilAsync(() => runner.Delivered == 3, "alert 3 through broker A", 30);
        Send(runner, 4);
        await Wait.UntilAsync(() => runner.Delivered == 4, "alert 4 through broker A", 30);
        Assert.Contains($"alert sink local is now on server mqtt://127.0.0.1:{a.Port} (was on mqtt://127.0.0.1:{b.Port}); it stays there while it works", sinkLog.At(LogLevel.Warning));

        // The broker forwards to its subscribers after the PUBACK: let A's observer have them before it goes (failed once
        // in CI: disposed at once, it had none).
        await Wait.UntilAsync(() => atA.Count == 2, "alerts 3 and 4 at broker A's observer", 30);

        // Both down: the alert is held (the runner's outage, retried per round) and goes to the first broker that answers.
        observerA.Dispose();
        await a.StopKeepingSessionsAsync();
        Send(runner, 5);
        await Wait.UntilAsync(() => runner.Outage is not null, "the sink down with both brokers gone", 30);
        Assert.Contains("none of the 2 servers took the connection: ", runner.Outage!.Reason, StringComparison.Ordinal);
        await b.RestartAsync();
        observerB = await b.SubscribeAsync("edgetwin/#", atB, "observer-b");
        await Wait.UntilAsync(() => runner.Delivered == 5, "the held alert 5 through broker B, back first", 60);
        await Wait.UntilAsync(() => atB.Count == 3, "alert 5 at broker B's observer", 30);
        observerB.Dispose();

        // Each alert at exactly one broker, once: the brokers went down between messages, so no PUBACK was lost in flight
        // (the only way QoS 1 sends one twice).
        Assert.Equal([1, 2, 5], Ids(atB));
        Assert.Equal([3, 4], Ids(atA));
        Assert.Equal(5, runner.Delivered);
        Assert.Equal(0, runner.Dropped);
        Assert.Null(runner.Outage);
        Assert.Contains($"alert sink local is now on server mqtt://127.0.0.1:{b.Port} (was on mqtt://127.0.0.1:{a.Port}); it stays there while it works", sinkLog.At(LogLevel.Warning));
    }

    [Fact]
    public async Task Regression_a_hung_first_broker_used_up_the_alert_sinks_attempt_before_the_second_was_tried()
    {
        // A takes the TCP connection and never answers the CONNECT (a hung broker, or a firewall that drops the rest).
        using var hung = new TcpListener(IPAddress.Loopback, 0);
        hung.Start();
        var accepted = new ConcurrentBag<Socket>();
        var accepting = Task.Run(async () =>
        {
            while (true)
            {
                accepted.Add(await hung.AcceptSocketAsync(Ct));
            }
        }, Ct);
        await using var b = await Mosquitto.StartAsync();
        var atB = new ConcurrentQueue<(string Topic, byte[] Payload)>();
        using var observer = await b.SubscribeAsync("edgetwin/#", atB);

        // timeout: 1s, no retry: each server gets its own second, and the attempt as long as the list needs. Before, the
        // runner's one timeout ran out on A, every attempt started at A again, and the alert never reached B.
        var config = Pair($"127.0.0.1:{((IPEndPoint)hung.LocalEndpoint).Port}", $"127.0.0.1:{b.Port}", retries: 0) with { Timeout = TimeSpan.FromSeconds(1) };
        var sinkLog = new ListLogger();
        await using var runner = new SinkRunner(new MqttSink(config, "dc1", "gw1", sinkLog), config);
        await runner.StartAsync(Ct);
        Send(runner, 1);
        await Wait.UntilAsync(() => runner.Delivered == 1, "the alert through broker B", 30);
        Assert.Equal(0, runner.Failed);
        Assert.Null(runner.Outage);
        Assert.Equal([1], Ids(atB));
        Assert.Equal(
            $"alert sink local: server mqtt://127.0.0.1:{((IPEndPoint)hung.LocalEndpoint).Port} failed: no connection within 1s; trying mqtt://127.0.0.1:{b.Port} now",
            Assert.Single(sinkLog.At(LogLevel.Warning)));

        hung.Stop();
        foreach (var s in accepted)
        {
            s.Dispose();
        }

        await Assert.ThrowsAnyAsync<Exception>(() => accepting);
    }

    [Fact]
    public async Task A_pair_that_refuses_the_sinks_login_on_both_brokers_is_a_refusal_and_one_down_is_an_outage()
    {
        await using var a = await Mosquitto.StartAsync(account: ("u", "right"));
        await using var b = await Mosquitto.StartAsync(account: ("u", "right"));
        var config = Pair($"127.0.0.1:{a.Port}", $"127.0.0.1:{b.Port}") with { Username = "u", Password = "wrong" };
        await using (var sink = new MqttSink(config, "dc1", "gw1"))
        {
            // Both answered "not authorised": retrying cannot help, as with one broker.
            var ex = await Assert.ThrowsAsync<SinkRejectedException>(() => sink.DeliverAsync(Message(1), Message(1).Alerts, Ct));
            Assert.StartsWith($"none of the 2 servers took the connection: mqtt://127.0.0.1:{a.Port}: refused the connection: NotAuthorized (as client id 'edgetwin-alerts-gw1-local' and user 'u': ", ex.Message, StringComparison.Ordinal);
            Assert.Contains($"; mqtt://127.0.0.1:{b.Port}: refused the connection: NotAuthorized (", ex.Message, StringComparison.Ordinal);
        }

        // One refused, the other did not answer: that one may come back, so the message is held, not given up.
        b.Stop();
        await using (var sink = new MqttSink(config, "dc1", "gw1"))
        {
            var ex = await Assert.ThrowsAsync<IOException>(() => sink.DeliverAsync(Message(1), Message(1).Alerts, Ct));
            Assert.StartsWith("none of the 2 servers took the connection: ", ex.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Each_broker_of_the_pair_is_held_to_its_own_certificate_name()
    {
        // A's certificate is for another name (refused at A); B's for 127.0.0.1 alone, the name B is reached by. Had the
        // first broker's name (localhost) been asked of both, B's certificate would not match it either.
        using var pki = new EdgeTwin.Uplink.Tests.Support.TestPki(serverExpired: false, "broker-x.example.net", "127.0.0.1");
        await using var a = await Mosquitto.StartAsync(pki, serverCertificate: pki.ServerFor("broker-x.example.net"));
        await using var b = await Mosquitto.StartAsync(pki, serverCertificate: pki.ServerFor("127.0.0.1"));
        var atB = new ConcurrentQueue<(string Topic, byte[] Payload)>();
        using var observer = await b.SubscribeAsync("edgetwin/#", atB);
        var config = (MqttSinkConfig)Yaml.Valid($$"""
            alerts:
              sinks:
                - name: local
                  type: mqtt
                  hosts: ["localhost:{{a.TlsPort}}", "127.0.0.1:{{b.TlsPort}}"]
                  topic: "edgetwin/{site}/{gateway}/alerts"
                  timeout: 5s
                  retries: 0
                  tls: { ca_file: {{pki.CaFile}}, client_cert_file: {{pki.ClientCertFile}}, client_key_file: {{pki.ClientKeyFile}} }
            """).Sinks[0];
        var sinkLog = new ListLogger();
        await using var runner = new SinkRunner(new MqttSink(config, "dc1", "gw1", sinkLog), config);
        await runner.StartAsync(Ct);
        Send(runner, 1);
        await Wait.UntilAsync(() => runner.Delivered == 1, "the alert through broker B over TLS", 30);
        Assert.Equal(0, runner.Failed);
        await Wait.UntilAsync(() => atB.Count == 1, "the alert at broker B's observer", 30);
        Assert.StartsWith(
            $"alert sink local: server mqtts://localhost:{a.TlsPort} failed: TLS handshake failed: the broker's certificate (CN=broker-x.example.net, issued by CN=EdgeTwin Test CA) is not for 'localhost'",
            Assert.Single(sinkLog.At(LogLevel.Warning)),
            StringComparison.Ordinal);
    }

    private static void Send(SinkRunner runner, long id)
    {
        var message = Message(id);
        runner.Enqueue(message, message.Alerts);
    }
}

/// <summary><c>hosts:</c> of an alert MQTT sink in the config: each problem at its own line and key, as for <c>uplinks.mqtt.hosts</c>.</summary>
public sealed class MqttSinkHostsConfigTests
{
    private static IReadOnlyList<Core.Config.ConfigDiagnostic> Problems(string sink) => Yaml.Alerts($$"""
        alerts:
          sinks:
            - name: local
              type: mqtt
        {{sink}}
        """).Problems;

    /// <summary>The warnings of a valid site config with this uplink and alert sink.</summary>
    internal static IReadOnlyList<Core.Config.ConfigDiagnostic> Check(string uplink, string sink, string uplinkProtocol = "3.1.1")
    {
        var yaml = $$"""
            site: { id: s1, gateway_id: g1 }
            devices: []
            uplinks:
              mqtt: { {{uplink}}, protocol: "{{uplinkProtocol}}" }
            alerts:
              sinks:
                - { name: noc, type: mqtt, {{sink}} }
            """;
        var result = Core.Config.SiteConfigLoader.Parse(yaml, "site.yaml", new Core.Config.SiteConfigLoadOptions { SectionValidators = [new AlertsSectionValidator()] });
        Assert.True(result.IsValid, string.Join(Environment.NewLine, result.Problems));
        return result.Warnings;
    }

    [Fact]
    public void A_hosts_list_reaches_the_sink_in_order_with_the_ports_defaulted_as_the_uplinks()
    {
        var config = (MqttSinkConfig)Yaml.Valid("""
            alerts:
              sinks:
                - { name: local, type: mqtt, hosts: ["broker-a:1884", "[fd00::20]", broker-c], tls: {} }
            """).Sinks[0];
        Assert.Equal([new MqttBrokerAddress("broker-a", 1884), new MqttBrokerAddress("fd00::20", 8883), new MqttBrokerAddress("broker-c", 8883)], config.Servers);
        Assert.Equal("broker-a", config.Host);

        // host:/port: as before: one broker.
        var single = (MqttSinkConfig)Yaml.Valid("alerts: { sinks: [ { name: local, type: mqtt, host: broker.lan, port: 1884 } ] }").Sinks[0];
        Assert.Null(single.Hosts);
        Assert.Equal([new MqttBrokerAddress("broker.lan", 1884)], single.Servers);
    }

    [Theory]
    [InlineData("\"mqtt://broker-b:1883\"", "'mqtt://broker-b:1883' is not host[:port]: give the broker's host (and port) alone, TLS in tls:, e.g. broker-a.example.net:8883")]
    [InlineData("\"broker-b:70000\"", "'broker-b:70000' has port '70000': must be 1..65535")]
    [InlineData("\"fd00::20\"", "'fd00::20': write an IPv6 address in brackets, [fd00::20] or [fd00::20]:port")]
    [InlineData("\"BROKER-A:1883\"", "'BROKER-A:1883' is the same broker as hosts[0] (broker-a:1883): each broker once")]
    [InlineData("{ host: broker-b }", "expected a broker as host, host:port or [IPv6]:port, got a mapping")]
    public void A_bad_entry_is_named_at_its_own_line(string second, string message)
    {
        var problem = Assert.Single(Problems($"""
                  hosts:
                    - broker-a
                    - {second}
            """));
        Assert.Equal((7, "alerts.sinks[0].hosts[1]", message), (problem.Line, problem.Path, problem.Message));
    }

    [Fact]
    public void Host_and_hosts_together_and_an_empty_list_are_errors_at_hosts()
    {
        var both = Assert.Single(Problems("""
                  host: broker-a
                  hosts: [broker-a, broker-b]
            """));
        Assert.Equal((6, "alerts.sinks[0].hosts", "host: and hosts: are both set: keep hosts: (the brokers, tried in order) or host: (one broker), not both"), (both.Line, both.Path, both.Message));

        var empty = Assert.Single(Problems("      hosts: []"));
        Assert.Equal((5, "alerts.sinks[0].hosts", "is empty: list at least one broker, or use host: for a single one"), (empty.Line, empty.Path, empty.Message));
    }

    [Fact]
    public void Credentials_without_tls_to_a_broker_of_the_list_off_this_machine_are_a_warning_naming_it()
    {
        var warning = Assert.Single(Check("host: broker.lan", "hosts: [\"127.0.0.1:1884\", \"10.0.0.5\"], username: gw", uplinkProtocol: "5"));
        Assert.Equal("alerts.sinks[0].username", warning.Path);
        Assert.Equal("alert sink 'noc' sends its username to 10.0.0.5:1883 without TLS, readable by anyone on the network path; add tls: (port 8883) or use a broker on this machine", warning.Message);
        Assert.Empty(Check("host: broker.lan", "hosts: [\"127.0.0.1:1884\", localhost], username: gw", uplinkProtocol: "5"));
    }

    [Fact]
    public void An_mqtt5_sink_on_a_broker_of_the_311_uplinks_list_is_warned_about()
    {
        // The second broker of the sink's pair is the second of the uplink's; before, the uplink's hosts: read as 127.0.0.1.
        var w = Assert.Single(Check("hosts: [broker-a, broker-b]", "hosts: [broker-c, \"BROKER-B:1883\"]"));
        Assert.Equal(("site.yaml", 7, "alerts.sinks[0].hosts"), (w.File, w.Line, w.Path));
        Assert.StartsWith("alert sink 'noc' speaks MQTT 5 (protocol defaults to \"5\") to BROKER-B:1883, the broker uplinks.mqtt reaches with protocol 3.1.1;", w.Message, StringComparison.Ordinal);
        Assert.Single(Check("hosts: [broker-a, broker-b]", "host: broker-b"));
        Assert.Empty(Check("hosts: [broker-a, broker-b]", "hosts: [broker-c, \"broker-b:1884\"]"));
        Assert.Empty(Check("hosts: [broker-a, broker-b]", "host: 127.0.0.1"));
    }
}
