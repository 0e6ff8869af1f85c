namespace EdgeTwin.Uplink.Delivery;

/// <summary>How an uplink moves entries from the outbox to its peer; shared by MQTT and Kafka.</summary>
public sealed record DeliveryOptions
{
    /// <summary>Messages sent but not yet acknowledged, both lanes together (capped by the peer's receive maximum).</summary>
    public int Window { get; init; } = 256;

    /// <summary>
    /// Slots of <see cref="Window"/> the backlog lane may hold; the rest always stay free for live data.
    /// Null means three quarters: live data (summaries once a window, events) needs few slots, and a broker's receive
    /// maximum can be small (mosquitto: 20), where half the window held MQTT 5 replay to 10 messages in flight.
    /// </summary>
    public int? BacklogWindow { get; init; }

    /// <summary>Backlog (replay) messages per second; 0 = unlimited. Live data is never rate-limited.</summary>
    public double BacklogRatePerSecond { get; init; } = 2000;

    /// <summary>
    /// Bytes per second this uplink may put on the link (a metered cellular plan), 0 = unlimited. Live data is never
    /// held for it (it spends the budget, into debt if need be); the backlog replay waits for what live leaves over.
    /// Counted as the uplink's messages (MQTT PUBLISH packets; Kafka key, value and headers before compression).
    /// </summary>
    public double MaxBytesPerSecond { get; init; }

    /// <summary>Entries fetched from the outbox per read.</summary>
    public int ReadBatch { get; init; } = 256;

    /// <summary>Longest wait for one acknowledgement before the connection is considered broken.</summary>
    public TimeSpan AckTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Longest wait for a connection (TCP, TLS, CONNACK, birth).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>First delay before reconnecting; doubles per failed attempt up to <see cref="ReconnectMaxDelay"/>, with jitter.</summary>
    public TimeSpan ReconnectInitialDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Longest delay between reconnect attempts (±20 % jitter). 15 s: a site is back on the centre within about that
    /// once its broker returns (60 s kept sites dark for up to 70 s), while a fleet of gateways still spreads its retries.
    /// </summary>
    public TimeSpan ReconnectMaxDelay { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Longest time an outbox acknowledgement write may take.</summary>
    public TimeSpan OutboxTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Least time between two writes of the acknowledged position to the outbox; 0 = write as soon as it moves.</summary>
    public TimeSpan AckFlushInterval { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// How often a connected uplink publishes its progress (acknowledged sequence; MQTT JSON: the retained status) besides
    /// right after connecting and when the replay of its backlog is complete; 0 = only those two.
    /// </summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// How long refusals for good are gathered before their <c>data_gap</c> event (reason <c>rejected_by_peer</c>) is
    /// written, so a burst of them is one event (at most 16 entries each); 0 = at once. A refused entry counts as done
    /// for the uplink only once its event is in the outbox, so this delays the acknowledged position that long.
    /// </summary>
    public TimeSpan RefusalBatchDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The least budget: 100 B/s (800 bit/s); below it a day's summaries of one rack do not fit.</summary>
    public const double MinBytesPerSecond = 100;

    internal int EffectiveBacklogWindow(int window) =>
        window <= 1 ? 1 : Math.Clamp(BacklogWindow ?? (window - Math.Max(1, window / 4)), 1, window - 1);

    /// <summary>Every problem, each naming the setting; empty when valid.</summary>
    public IEnumerable<string> Validate(string prefix)
    {
        if (Window is < 1 or > 65535)
        {
            yield return $"{prefix}.Window must be 1..65535 (was {Window})";
        }

        if (BacklogWindow is { } b && (b < 1 || b >= Window))
        {
            yield return $"{prefix}.BacklogWindow must be 1..Window-1 so live data keeps a slot (was {b}, Window {Window})";
        }

        if (BacklogRatePerSecond < 0 || double.IsNaN(BacklogRatePerSecond))
        {
            yield return $"{prefix}.BacklogRatePerSecond must be >= 0 (0 = unlimited) (was {BacklogRatePerSecond})";
        }

        if (MaxBytesPerSecond < 0 || !double.IsFinite(MaxBytesPerSecond) || MaxBytesPerSecond is > 0 and < MinBytesPerSecond)
        {
            yield return $"{prefix}.MaxBytesPerSecond must be 0 (unlimited) or at least {MinBytesPerSecond} (was {MaxBytesPerSecond})";
        }

        if (ReadBatch is < 1 or > 100_000)
        {
            yield return $"{prefix}.ReadBatch must be 1..100000 (was {ReadBatch})";
        }

        foreach (var (name, value) in new[]
                 {
                     (nameof(AckTimeout), AckTimeout), (nameof(ConnectTimeout), ConnectTimeout),
                     (nameof(ReconnectInitialDelay), ReconnectInitialDelay), (nameof(ReconnectMaxDelay), ReconnectMaxDelay),
                     (nameof(OutboxTimeout), OutboxTimeout),
                 })
        {
            if (value <= TimeSpan.Zero)
            {
                yield return $"{prefix}.{name} must be positive (was {value})";
            }
        }

        if (ProgressInterval < TimeSpan.Zero)
        {
            yield return $"{prefix}.ProgressInterval must not be negative (0 = only at connect and replay end) (was {ProgressInterval})";
        }

        if (RefusalBatchDelay < TimeSpan.Zero || RefusalBatchDelay > TimeSpan.FromMinutes(1))
        {
            yield return $"{prefix}.RefusalBatchDelay must be 0..1 min (was {RefusalBatchDelay})";
        }

        if (AckFlushInterval < TimeSpan.Zero)
        {
            yield return $"{prefix}.AckFlushInterval must not be negative (was {AckFlushInterval})";
        }

        if (ReconnectMaxDelay < ReconnectInitialDelay)
        {
            yield return $"{prefix}.ReconnectMaxDelay ({ReconnectMaxDelay}) must not be below ReconnectInitialDelay ({ReconnectInitialDelay})";
        }
    }
}
