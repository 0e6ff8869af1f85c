using EdgeTwin.Outbox;

namespace EdgeTwin.Uplink.Delivery;

/// <summary>What the bytes an uplink sends are: the outbox kinds, with forecasts told apart from other events.</summary>
public enum TrafficKind
{
    Summary = 0,
    Raw = 1,
    Event = 2,

    /// <summary>Events with <c>"event":"prediction"</c> (forecasts, twin state) and the reserved prediction kinds.</summary>
    Prediction = 3,
}

/// <summary>Bytes an uplink put on the link since the agent started, per kind and lane (for <c>edgetwin status</c>).</summary>
public sealed record UplinkTrafficSnapshot(
    IReadOnlyDictionary<string, long> LiveBytes,
    IReadOnlyDictionary<string, long> BacklogBytes,
    double MaxBytesPerSecond,
    TimeSpan BacklogThrottled)
{
    public static readonly UplinkTrafficSnapshot None = new(new Dictionary<string, long>(), new Dictionary<string, long>(), 0, TimeSpan.Zero);

    public long Total => LiveBytes.Values.Sum() + BacklogBytes.Values.Sum();
}

/// <summary>Counts an uplink's bytes per <see cref="TrafficKind"/> and lane; allocation-free on the send path.</summary>
internal sealed class UplinkTraffic
{
    internal static readonly string[] KindNames = ["summary", "raw", "event", "prediction"];

    private readonly long[] _live = new long[KindNames.Length];
    private readonly long[] _backlog = new long[KindNames.Length];

    public static TrafficKind Classify(in OutboxRecord record) => record.Kind switch
    {
        OutboxKind.Summary => TrafficKind.Summary,
        OutboxKind.Raw => TrafficKind.Raw,
        OutboxKind.Prediction or OutboxKind.TwinState => TrafficKind.Prediction,
        // Bodies are written compactly by the agent (Outbox README), so the member is found as written.
        _ when record.Payload.Span.IndexOf("\"event\":\"prediction\""u8) >= 0 => TrafficKind.Prediction,
        _ => TrafficKind.Event,
    };

    public void Add(TrafficKind kind, bool historical, long bytes) =>
        Interlocked.Add(ref (historical ? _backlog : _live)[(int)kind], bytes);

    public UplinkTrafficSnapshot Snapshot(ByteBudget? budget) => new(
        Read(_live), Read(_backlog), budget?.BytesPerSecond ?? 0, budget?.Waited ?? TimeSpan.Zero);

    private static Dictionary<string, long> Read(long[] counts)
    {
        var d = new Dictionary<string, long>(KindNames.Length, StringComparer.Ordinal);
        for (var i = 0; i < counts.Length; i++)
        {
            d[KindNames[i]] = Interlocked.Read(ref counts[i]);
        }

        return d;
    }
}
