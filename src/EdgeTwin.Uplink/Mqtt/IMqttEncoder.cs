using EdgeTwin.Outbox;

namespace EdgeTwin.Uplink.Mqtt;

/// <summary>One MQTT message to publish (always QoS 1).</summary>
internal readonly record struct MqttOutgoing(string Topic, byte[] Payload, bool Retain, bool IsJson);

/// <summary>
/// Turns outbox entries into MQTT messages for one payload format. Called under the transport's send lock, so an
/// implementation may keep per-session state (Sparkplug seq, which devices had their birth) without locking.
/// </summary>
internal interface IMqttEncoder
{
    /// <summary>Starts a connection: returns the will, fixed for the connection (Sparkplug: NDEATH with the new bdSeq).</summary>
    MqttOutgoing BeginSession();

    /// <summary>Published right after CONNACK, before any data (retained online / NBIRTH).</summary>
    IReadOnlyList<MqttOutgoing> Birth(DateTimeOffset now);

    /// <summary>The birth again, mid-connection: the facts changed, or (Sparkplug) a host asked in an NCMD (retained status / NBIRTH then DBIRTHs anew).</summary>
    IReadOnlyList<MqttOutgoing> Rebirth(DateTimeOffset now);

    /// <summary>Appends what <paramref name="entry"/> becomes (Sparkplug may first add a DBIRTH).</summary>
    void Encode(OutboxEntry entry, bool historical, List<MqttOutgoing> output);

    /// <summary>Published before a clean disconnect, since the broker sends the will only on an unclean one.</summary>
    MqttOutgoing Death(DateTimeOffset now);
}
