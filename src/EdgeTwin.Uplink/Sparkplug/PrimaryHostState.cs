using System.Text.Json;

namespace EdgeTwin.Uplink.Sparkplug;

/// <summary>What one STATE message did to the edge node's view of its primary host.</summary>
internal enum HostStateVerdict
{
    /// <summary>Accepted: the host is online (the births may go).</summary>
    Online,

    /// <summary>Accepted: the host is offline (a born node publishes NDEATH and disconnects).</summary>
    Offline,

    /// <summary>Older than the last STATE accepted: ignored ([tck-id-message-flow-edge-node-birth-publish-phid-wait-timestamp]).</summary>
    Stale,
}

/// <summary>The primary host application the edge node waits for, and when the uplink started waiting (for status).</summary>
public sealed record PrimaryHostWait(string HostId, DateTimeOffset? WaitingSince);

/// <summary>
/// The Sparkplug 3.0 STATE of the configured primary host application as the edge node saw it: <c>spBv1.0/STATE/{host_id}</c>
/// (retained, QoS 1) carrying UTF-8 JSON <c>{"online": bool, "timestamp": ms}</c>. A message counts when its timestamp is not
/// older than the last one accepted (the same one again is the retained message at the next subscribe). Kept across
/// connections, so a retained STATE older than one seen before is stale after a reconnect too. Thread-safe: the MQTT
/// client raises messages on its own thread while the pump waits.
/// </summary>
internal sealed class PrimaryHostState(string hostId)
{
    private readonly Lock _lock = new();
    private long _timestamp = -1; // the last accepted STATE's, -1 before the first
    private bool _online;
    private TaskCompletionSource _onlineSignal = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string HostId => hostId;

    /// <summary>The topic the edge node subscribes to ([tck-id-message-flow-edge-node-birth-publish-phid-wait-id]: the last token is the host id).</summary>
    public string Topic => $"{SparkplugEncoder.Namespace}/STATE/{hostId}";

    public bool IsOnline
    {
        get
        {
            lock (_lock)
            {
                return _online;
            }
        }
    }

    /// <summary>The timestamp of the last STATE accepted, -1 before the first.</summary>
    public long LastTimestamp
    {
        get
        {
            lock (_lock)
            {
                return _timestamp;
            }
        }
    }

    /// <summary>
    /// Applies one STATE payload. Throws <see cref="FormatException"/> when it is not the 3.0 JSON (not JSON, no boolean
    /// <c>online</c>, no non-negative integer <c>timestamp</c>): the caller logs it with the topic and ignores it.
    /// </summary>
    public HostStateVerdict Observe(ReadOnlySpan<byte> payload, out long timestamp)
    {
        (var online, timestamp) = Parse(payload);
        lock (_lock)
        {
            if (timestamp < _timestamp)
            {
                return HostStateVerdict.Stale;
            }

            _timestamp = timestamp;
            _online = online;
            if (online)
            {
                _onlineSignal.TrySetResult();
            }
            else if (_onlineSignal.Task.IsCompleted)
            {
                _onlineSignal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            return online ? HostStateVerdict.Online : HostStateVerdict.Offline;
        }
    }

    /// <summary>Completes when the host is online (at once if it is now).</summary>
    public Task WaitOnlineAsync(CancellationToken cancellationToken)
    {
        Task signal;
        lock (_lock)
        {
            signal = _onlineSignal.Task;
        }

        return signal.WaitAsync(cancellationToken);
    }

    internal static (bool Online, long Timestamp) Parse(ReadOnlySpan<byte> payload)
    {
        try
        {
            var reader = new Utf8JsonReader(payload);
            using var doc = JsonDocument.ParseValue(ref reader);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new FormatException($"a JSON {root.ValueKind}, not an object");
            }

            if (!root.TryGetProperty("online", out var online) || online.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            {
                throw new FormatException("no boolean 'online'");
            }

            if (!root.TryGetProperty("timestamp", out var ts) || ts.ValueKind != JsonValueKind.Number || !ts.TryGetInt64(out var timestamp) || timestamp < 0)
            {
                throw new FormatException("no 'timestamp' in milliseconds since 1970 (a non-negative integer)");
            }

            return (online.GetBoolean(), timestamp);
        }
        catch (JsonException ex)
        {
            throw new FormatException($"not JSON ({ex.Message})", ex);
        }
    }
}
