using EdgeTwin.Uplink.Delivery;
using MQTTnet.Exceptions;

namespace EdgeTwin.Uplink.Tests.Delivery;

/// <summary>The reason text of the uplink's failure lines, from fixed exception chains.</summary>
public sealed class FailureReasonTests
{
    [Fact]
    public void Describe_joins_the_chains_messages_once_each_without_their_full_stops()
    {
        var ex = new IOException("Sending to the broker failed: The MQTT client is not connected.", new MqttCommunicationException("The MQTT client is not connected."));

        Assert.Equal("Sending to the broker failed: The MQTT client is not connected", ConnectFailures.Describe(ex));
        Assert.Equal("Connection refused", ConnectFailures.Describe(new System.Net.Sockets.SocketException(111)));
    }

    [Fact]
    public void Regression_a_lost_session_line_repeated_the_uplink_and_its_peer_and_ended_its_reason_with_a_full_stop_before_the_semicolon()
    {
        // Logged as "Uplink mqtt lost its session with mqtt://127.0.0.1:46697 at position 1796562921360019: Uplink mqtt:
        // sending to mqtt://127.0.0.1:46697 failed: The MQTT client is not connected.; reconnecting in 1.1s".
        var lost = new UplinkSessionException("Uplink mqtt: sending to mqtt://127.0.0.1:46697 failed", new MqttCommunicationException("The MQTT client is not connected."));

        Assert.Equal("sending failed: The MQTT client is not connected", UplinkPump.SessionLostReason(lost));
        Assert.Equal("Connection reset by peer", UplinkPump.SessionLostReason(new IOException("Connection reset by peer.")));
    }
}
