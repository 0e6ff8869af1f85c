using System.Collections.Concurrent;
using System.Text.Json;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;
using EdgeTwin.Uplink.Tests.Support;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Alerting.Tests.Sinks;

/// <summary>
/// The alert MQTT sink at a site whose broker speaks only MQTT 3.1.1: a real mosquitto behind
/// <see cref="Mqtt311OnlyFront"/>, which refuses MQTT 5 CONNECTs with "unacceptable protocol version" as such a broker does.
/// </summary>
public sealed class MqttSink311Tests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static AlertNotification Message() => MqttSinkTlsTests.Message();

    private static string Sink(int port, string extra) => $$"""
        alerts:
          sinks:
            - { name: noc, type: mqtt, host: 127.0.0.1, port: {{port}}, topic: "edgetwin/{site}/{gateway}/alerts", timeout: 10s, retries: 0{{extra}} }
        """;

    [Fact]
    public async Task Regression_the_alert_mqtt_sink_could_not_reach_a_broker_that_speaks_only_mqtt_311()
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var front = new Mqtt311OnlyFront(broker.Port);
        var received = new ConcurrentQueue<(string Topic, byte[] Payload)>();
        using var subscriber = await broker.SubscribeAsync("edgetwin/#", received);

        // protocol: "3.1.1", the value of uplinks.mqtt.protocol: the alert arrives. Before, the sink had no such key (an
        // unknown key in check) and always sent an MQTT 5 CONNECT, which the broker refused: no alert ever got through.
        var config = (MqttSinkConfig)Yaml.Valid(Sink(front.Port, ", protocol: \"3.1.1\"")).Sinks[0];
        Assert.Equal(Uplink.Mqtt.MqttProtocol.V311, config.Protocol);
        await using var sink = new MqttSink(config, "dc1", "gw1");
        await using var runner = new SinkRunner(sink, config);
        await MqttSinkTlsTests.DeliversOneAlertAsync(runner, received);
        Assert.Equal(0, front.Refused);
        Assert.Equal(1, front.Forwarded);
    }

    [Fact]
    public async Task Regression_an_mqtt5_sink_refused_by_a_311_broker_did_not_say_to_set_protocol_311()
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var front = new Mqtt311OnlyFront(broker.Port);
        var config = (MqttSinkConfig)Yaml.Valid(Sink(front.Port, "")).Sinks[0];
        await using var sink = new MqttSink(config, "dc1", "gw1");

        // Refused for good (a retry cannot change it), saying what to set; before: "… refused the connection: 1".
        var ex = await Assert.ThrowsAsync<SinkRejectedException>(() => sink.DeliverAsync(Message(), Message().Alerts, Ct));
        Assert.Equal(1, front.Refused);
        Assert.Equal(
            $"mqtt://127.0.0.1:{front.Port} refused the connection: unacceptable protocol version: the broker does not speak MQTT 5 (it answered as an MQTT 3.1.1 broker); set protocol: \"3.1.1\" on alert sink 'noc' (alerts.sinks)",
            ex.Message);
    }

    [Fact]
    public void Regression_check_passed_an_mqtt5_alert_sink_on_the_broker_the_uplink_reaches_with_311()
    {
        // The check's warnings for an uplink on broker.lan speaking 3.1.1 and this sink (MqttSinkHostsConfigTests' rig).
        static IReadOnlyList<Core.Config.ConfigDiagnostic> Check(string sink) => MqttSinkHostsConfigTests.Check("host: broker.lan", sink);

        // The sink left at MQTT 5 on the uplink's 3.1.1 broker: refused at the first alarm; check now says so at the sink.
        var w = Assert.Single(Check("host: broker.lan"));
        Assert.Equal(("site.yaml", 7, "alerts.sinks[0].host"), (w.File, w.Line, w.Path));
        Assert.Equal(
            "alert sink 'noc' speaks MQTT 5 (protocol defaults to \"5\") to broker.lan:1883, the broker uplinks.mqtt reaches with protocol 3.1.1; a broker that speaks only 3.1.1 refuses it and no alert gets through: add protocol: \"3.1.1\" to the sink",
            w.Message);

        Assert.Empty(Check("host: broker.lan, protocol: \"3.1.1\""));
        Assert.Empty(Check("host: broker.lan, protocol: \"5\"")); // said on purpose
        Assert.Empty(Check("host: broker.lan, port: 1884"));        // another broker
        Assert.Empty(Check("host: 127.0.0.1"));                     // a local broker of its own
    }

    [Fact]
    public async Task Regression_an_alert_message_a_311_broker_closed_the_connection_on_held_every_later_alert_as_peer_down()
    {
        // mosquitto's max_packet_size closes an MQTT 3.1.1 client's connection on a larger publish (3.1.1 has no refusal);
        // so do cloud brokers over their size limit. 30 alerts of one room in one message are over 4 KB.
        await using var broker = await Mosquitto.StartAsync(maxPacketSize: 4096);
        var received = new ConcurrentQueue<(string Topic, byte[] Payload)>();
        using var subscriber = await broker.SubscribeAsync("edgetwin/#", received);
        var config = (MqttSinkConfig)Yaml.Valid(Sink(broker.Port, ", protocol: \"3.1.1\"")).Sinks[0] with { Retries = 3, RetryDelay = TimeSpan.FromMilliseconds(100) };
        var logs = new ConcurrentQueue<(LogLevel Level, string Message, Exception? Exception)>();
        await using var sink = new MqttSink(config, "dc1", "gw1");
        await using var runner = new SinkRunner(sink, config, new ListLogger(logs));
        await runner.StartAsync(Ct);
        AlertSnapshot A(long id, string room) => new(id, "inlet-hot", $"rack-r{id:00}/inlet", AlertStatus.Firing, AlertState.Firing, EventSeverity.Critical, 31.5,
            new string('x', 300), new Dictionary<string, string> { ["room"] = room }, [], T0, null, null, false, T0);
        var big = new AlertNotification("room=room1", [.. Enumerable.Range(1, 30).Select(i => A(i, "room1"))], T0);
        var small = new AlertNotification("room=room2", [A(99, "room2")], T0);
        runner.Enqueue(big, big.Alerts);
        runner.Enqueue(small, small.Alerts);

        // The next alert gets through. Before, the sink retried the big message as an outage ("peer down … holding 2
        // messages"), then every 30 s for ever, and room2's alert never reached the broker.
        await Wait.UntilAsync(() => !received.IsEmpty, "room2's alert at the subscriber", 30);
        Assert.True(received.TryDequeue(out var m));
        using (var json = JsonDocument.Parse(m.Payload))
        {
            Assert.Equal(99, json.RootElement.GetProperty("alerts")[0].GetProperty("id").GetInt64());
        }

        await Wait.UntilAsync(() => runner.Delivered == 1, "the delivery counted", 30);
        Assert.Equal(1, runner.Failed);
        Assert.DoesNotContain(logs, l => l.Message.Contains("peer down", StringComparison.Ordinal));
        var refused = Assert.Single(logs, l => l.Level == LogLevel.Error);
        Assert.Equal("alert sink noc: the peer refused the message for group room=room1", refused.Message);
        Assert.StartsWith(
            $"mqtt://127.0.0.1:{broker.Port} closed the connection on this message twice, each time right after accepting the connection, so it will not take it (",
            refused.Exception!.Message, StringComparison.Ordinal);
        Assert.Contains(" bytes of JSON to edgetwin/dc1/gw1/alerts; MQTT 3.1.1 has no refusal: most likely over the broker's maximum packet size, or a topic its ACL forbids): ",
            refused.Exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_the_alert_mqtt_sinks_client_id_could_not_be_set_for_a_broker_that_expects_its_own()
    {
        // The broker takes only client ids it knows (mosquitto's clientid_prefixes here; ACLs keyed by client id, an
        // MQTT 3.1.1 broker that takes only 1-23 letters and digits). The uplink has client_id; the sink had no such key
        // and always sent edgetwin-alerts-{gateway}-{sink}, refused with a bare "NotAuthorized".
        await using var broker = await Mosquitto.StartAsync(clientIdPrefix: "gw1");
        var received = new ConcurrentQueue<(string Topic, byte[] Payload)>();
        var subscriber = new MQTTnet.MqttClientFactory().CreateMqttClient();
        subscriber.ApplicationMessageReceivedAsync += e =>
        {
            received.Enqueue((e.ApplicationMessage.Topic, System.Buffers.BuffersExtensions.ToArray(e.ApplicationMessage.Payload)));
            return Task.CompletedTask;
        };
        using var _ = subscriber;
        await subscriber.ConnectAsync(new MQTTnet.MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", broker.Port).WithClientId("gw1centre").Build(), Ct);
        await subscriber.SubscribeAsync(new MQTTnet.MqttClientSubscribeOptionsBuilder().WithTopicFilter("edgetwin/#", MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce).Build(), Ct);

        var byDefault = (MqttSinkConfig)Yaml.Valid(Sink(broker.Port, ", protocol: \"3.1.1\"")).Sinks[0];
        await using (var sink = new MqttSink(byDefault, "gw1", "gw1"))
        {
            var ex = await Assert.ThrowsAsync<SinkRejectedException>(() => sink.DeliverAsync(Message(), Message().Alerts, Ct));
            Assert.Equal(
                $"mqtt://127.0.0.1:{broker.Port} refused the connection: NotAuthorized (as client id 'edgetwin-alerts-gw1-noc' without a username: check the credentials, or set client_id on alert sink 'noc' if the broker expects another client id)",
                ex.Message);
        }

        var config = (MqttSinkConfig)Yaml.Valid(Sink(broker.Port, ", protocol: \"3.1.1\", client_id: gw1alerts")).Sinks[0];
        await using (var sink = new MqttSink(config, "dc1", "gw1"))
        {
            Assert.Equal("gw1alerts", sink.ClientId);
            await sink.DeliverAsync(Message(), Message().Alerts, Ct);
        }

        await Wait.UntilAsync(() => !received.IsEmpty, "the alert at the subscriber", 30);
        Assert.Equal("edgetwin/dc1/gw1/alerts", received.Single().Topic);
        Assert.Contains("client_id must be 1..65535 characters when set", Yaml.Alerts(Sink(broker.Port, ", client_id: ''")).Problems.Single().Message, StringComparison.Ordinal);
    }
}
