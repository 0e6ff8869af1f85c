using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Payloads;
using EdgeTwin.Uplink.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Mqtt;

/// <summary>
/// The uplink against a broker that speaks only MQTT 3.1.1: a real mosquitto behind <see cref="Mqtt311OnlyFront"/>,
/// which answers an MQTT 5 CONNECT with "unacceptable protocol version" as such a broker does.
/// </summary>
public sealed class Mqtt311OnlyBrokerTests
{
    private static MqttTransport Transport(MqttUplinkOptions o) =>
        new(o, new JsonMqttEncoder(o.Identity, new TopicTemplate(o.TopicTemplate, o.Identity)), TimeProvider.System, NullLogger.Instance);

    [Fact]
    public async Task Regression_an_mqtt5_uplink_refused_by_a_311_broker_said_only_refused_the_connection_1()
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var front = new Mqtt311OnlyFront(broker.Port);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        var ex = await Assert.ThrowsAsync<UplinkConnectException>(async () =>
        {
            await using var session = await Transport(Options(front.Port, MqttProtocol.V500)).ConnectAsync(cts.Token);
        });
        Assert.Equal(1, front.Refused);
        Assert.Equal(
            $"mqtt://127.0.0.1:{front.Port} refused the connection: unacceptable protocol version: the broker does not speak MQTT 5 (it answered as an MQTT 3.1.1 broker); set uplinks.mqtt.protocol: \"3.1.1\"",
            ex.Message);

        // With protocol 3.1.1 the same broker takes the session (and the birth published on it).
        await using (await Transport(Options(front.Port, MqttProtocol.V311)).ConnectAsync(cts.Token))
        {
            Assert.Equal(1, front.Forwarded);
        }
    }
}
