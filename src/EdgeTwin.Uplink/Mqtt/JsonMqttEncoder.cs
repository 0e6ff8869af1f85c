using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Payloads;

namespace EdgeTwin.Uplink.Mqtt;

/// <summary>The JSON envelope on <c>edgetwin/{site}/{gateway}/{kind}</c>; birth and will on the <c>status</c> kind, retained.</summary>
/// <param name="server">With a <c>hosts:</c> list: the server the session is on (<c>host:port</c>), written into the birth and progress as <c>server</c>.</param>
internal sealed class JsonMqttEncoder(UplinkIdentity identity, TopicTemplate topics, Func<GatewayFacts>? facts = null, Func<string?>? server = null) : IMqttEncoder
{
    private string StatusTopic => topics.Format("status", identity.Gateway);

    // The connection's last progress, repeated by a rebirth: the retained status is the one a late subscriber reads, and a
    // rebirth (models reloaded) without it dropped acked_through_seq/backlog until the next periodic status.
    private readonly Lock _progressGate = new();
    private UplinkProgress? _lastProgress;

    public MqttOutgoing BeginSession()
    {
        lock (_progressGate)
        {
            _lastProgress = null; // another connection's replay is not this one's
        }

        return new(StatusTopic, JsonEnvelope.Status(identity, online: false, time: null), Retain: true, IsJson: true);
    }

    public IReadOnlyList<MqttOutgoing> Birth(DateTimeOffset now) =>
        [new(StatusTopic, JsonEnvelope.Status(identity, online: true, now, facts?.Invoke(), null, server?.Invoke()), Retain: true, IsJson: true)];

    public IReadOnlyList<MqttOutgoing> Rebirth(DateTimeOffset now)
    {
        UplinkProgress? progress;
        lock (_progressGate)
        {
            progress = _lastProgress;
        }

        return [new(StatusTopic, JsonEnvelope.Status(identity, online: true, now, facts?.Invoke(), progress, server?.Invoke()), Retain: true, IsJson: true)];
    }

    /// <summary>The retained birth again, with the uplink's progress (replaces the birth: same topic, facts kept).</summary>
    public MqttOutgoing Progress(DateTimeOffset now, UplinkProgress progress)
    {
        lock (_progressGate)
        {
            _lastProgress = progress;
        }

        return new(StatusTopic, JsonEnvelope.Status(identity, online: true, now, facts?.Invoke(), progress, server?.Invoke()), Retain: true, IsJson: true);
    }

    public void Encode(OutboxEntry entry, bool historical, List<MqttOutgoing> output) =>
        output.Add(new(topics.Format(entry.Record.Kind, entry.Record.DeviceId), JsonEnvelope.Encode(identity, entry, historical), Retain: false, IsJson: true));

    public MqttOutgoing Death(DateTimeOffset now) => new(StatusTopic, JsonEnvelope.Status(identity, online: false, now), Retain: true, IsJson: true);
}
