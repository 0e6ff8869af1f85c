using System.Globalization;
using System.Text.Json;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Delivery;

namespace EdgeTwin.Agent.StoreAndForward;

/// <summary>
/// The outbox part of <c>edgetwin status</c>: what waits, since when, how fast it grows and, from that, when the disk
/// budget starts condensing and dropping, and when <c>max_age</c> starts dropping. During an outage of hours these are
/// the operator's questions; <c>outbox stats</c> gives the figures but no rate, and reads a copy of the whole file.
/// </summary>
public sealed class OutboxStatus
{
    /// <summary>Samples kept: with <see cref="SampleInterval"/> a growth rate over the last ten minutes.</summary>
    private const int Kept = 21;

    /// <summary>How often the timer samples the outbox's figures (in-memory, no I/O).</summary>
    public static readonly TimeSpan SampleInterval = TimeSpan.FromSeconds(30);

    /// <summary>A rate needs at least this much history (one sample after start says nothing).</summary>
    private static readonly TimeSpan MinWindow = TimeSpan.FromSeconds(55);

    /// <summary>Within this, a projected budget round is reported as a problem (exit 1) before it happens.</summary>
    private static readonly TimeSpan WarnAhead = TimeSpan.FromHours(1);

    /// <summary>A wait for the Sparkplug primary host this long is a problem (a reconnect's short wait is not).</summary>
    private static readonly TimeSpan HostWaitProblem = TimeSpan.FromMinutes(1);

    /// <summary>The outbox's low watermark: a budget round condenses and drops down to it.</summary>
    private const double LowWatermark = 0.75;

    private readonly Func<OutboxStats?> _stats;
    private readonly long _budgetBytes;
    private readonly double _highWatermark;
    private readonly TimeSpan _maxAge;
    private readonly TimeProvider _time;
    private readonly Queue<Sample> _samples = new();
    private readonly Lock _lock = new();
    private readonly Func<long?> _diskFree;
    private readonly Func<IReadOnlyDictionary<string, UplinkRejections>> _rejections;
    private readonly Func<IReadOnlyDictionary<string, UplinkTakeovers>> _takeovers;
    private readonly Func<IReadOnlyDictionary<string, UplinkTrafficSnapshot>> _traffic;
    private readonly Func<IReadOnlyDictionary<string, EdgeTwin.Uplink.Sparkplug.PrimaryHostWait>> _primaryHosts;
    private readonly Func<IReadOnlyDictionary<string, string?>> _servers;
    private readonly DateTimeOffset _started;
    private Sample? _first;

    /// <param name="diskFree">Free bytes on the outbox's filesystem (one statvfs), null when unknown.</param>
    /// <param name="rejections">Per running uplink, what its peer refused for good since start (each named by a data_gap event).</param>
    /// <param name="takeovers">Per running MQTT uplink, the sessions the broker gave to another connection with its client id since start.</param>
    /// <param name="servers">Per running MQTT uplink, the broker (<c>host:port</c>) it has a session with now, null while none: which one of a <c>hosts:</c> list.</param>
    public OutboxStatus(Func<OutboxStats?> stats, long budgetBytes, TimeSpan maxAge, TimeProvider time, double highWatermark = 0.9, Func<long?>? diskFree = null,
        Func<IReadOnlyDictionary<string, UplinkRejections>>? rejections = null, Func<IReadOnlyDictionary<string, UplinkTakeovers>>? takeovers = null,
        Func<IReadOnlyDictionary<string, UplinkTrafficSnapshot>>? traffic = null, Func<IReadOnlyDictionary<string, EdgeTwin.Uplink.Sparkplug.PrimaryHostWait>>? primaryHosts = null,
        Func<IReadOnlyDictionary<string, string?>>? servers = null)
    {
        _servers = servers ?? (() => new Dictionary<string, string?>());
        _primaryHosts = primaryHosts ?? (() => new Dictionary<string, EdgeTwin.Uplink.Sparkplug.PrimaryHostWait>());
        _traffic = traffic ?? (() => new Dictionary<string, UplinkTrafficSnapshot>());
        _started = time.GetUtcNow();
        _takeovers = takeovers ?? (() => new Dictionary<string, UplinkTakeovers>());
        _diskFree = diskFree ?? (() => null);
        _rejections = rejections ?? (() => new Dictionary<string, UplinkRejections>());
        _stats = stats;
        _budgetBytes = budgetBytes;
        _maxAge = maxAge;
        _time = time;
        _highWatermark = highWatermark;
    }

    /// <summary>Live traffic is judged against <c>max_rate</c> only after this much uptime (a start sends its first windows at once).</summary>
    internal static readonly TimeSpan TrafficJudgedAfter = TimeSpan.FromMinutes(5);

    /// <summary>
    /// What the uplink put on the link since the agent started (a metered plan: what eats it), per kind, and its byte
    /// budget. Live traffic alone over <c>max_rate</c> is a problem: the budget is then exceeded and the backlog never
    /// replays (the live lane is never held back, so alerts are never delayed behind it).
    /// </summary>
    private static void WriteTraffic(Utf8JsonWriter w, string name, UplinkTrafficSnapshot t, TimeSpan uptime, ICollection<string> problems)
    {
        long live = 0, replay = 0;
        w.WriteStartObject("bytes_by_kind");
        foreach (var (kind, bytes) in t.LiveBytes.OrderBy(k => k.Key, StringComparer.Ordinal))
        {
            var backlog = t.BacklogBytes.GetValueOrDefault(kind);
            live += bytes;
            replay += backlog;
            w.WriteNumber(kind, bytes + backlog);
        }

        w.WriteEndObject();
        w.WriteNumber("bytes_since_start", live + replay);
        w.WriteNumber("replay_bytes_since_start", replay);
        var seconds = uptime.TotalSeconds;
        if (seconds >= 60)
        {
            w.WriteNumber("live_bytes_per_day", Math.Round(live / seconds * 86400));
        }
        else
        {
            w.WriteNull("live_bytes_per_day");
        }

        if (t.MaxBytesPerSecond > 0)
        {
            w.WriteNumber("max_rate_bytes_per_s", t.MaxBytesPerSecond);
            w.WriteNumber("replay_held_by_max_rate_s", Math.Round(t.BacklogThrottled.TotalSeconds, 1));
            var liveRate = live / Math.Max(1, seconds);
            if (uptime >= TrafficJudgedAfter && liveRate > t.MaxBytesPerSecond)
            {
                problems.Add(string.Create(CultureInfo.InvariantCulture,
                    $"uplink {name}: live data alone sends {liveRate * 8 / 1000:0.#} kbit/s, over its max_rate of {t.MaxBytesPerSecond * 8 / 1000:0.#} kbit/s: the link budget is exceeded and a backlog cannot replay; raise max_rate, or send less (a longer outbox.summary_window, fewer raw: true metrics)"));
            }
        }
        else
        {
            w.WriteNull("max_rate_bytes_per_s");
            w.WriteNull("replay_held_by_max_rate_s");
        }
    }

    /// <summary>
    /// A read-only file system (the outbox went on in memory) or failing writes: before, status said "nothing unsent" and
    /// exited 0 while nothing reached the outbox or the uplinks.
    /// </summary>
    private static void WriteStorage(Utf8JsonWriter w, OutboxStorageState storage, ICollection<string> problems)
    {
        if (storage.MemoryOnlySince is { } memory)
        {
            w.WriteString("memory_only_since", WireTime.Instant(memory));
            w.WriteNumber("memory_budget_bytes", storage.MemoryBudgetBytes);
            w.WriteNumber("first_seq_in_memory", storage.FirstSequenceInMemory);
            if (storage.WriteBackFailedAt is { } failedAt)
            {
                // Only while a write-back to the file fails for more than the read-only file system (the log said it once).
                w.WriteString("write_back_failed_at", WireTime.Instant(failedAt));
                w.WriteString("write_back_failure", storage.WriteBackFailure);
                w.WriteNumber("write_back_next_in_s", Math.Round((storage.NextWriteBackIn ?? TimeSpan.Zero).TotalSeconds));
            }

            problems.Add(string.Create(CultureInfo.InvariantCulture,
                $"the outbox's file system turned read-only at {memory.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'} ({storage.MemoryOnlyCause}): the outbox keeps its entries in memory only (at most {Size(storage.MemoryBudgetBytes)}) and the uplinks deliver from there; what is not delivered when the agent stops or the gateway loses power is lost. The storage is failing: check dmesg, reboot to fsck it, or replace it"));
        }
        else
        {
            w.WriteNull("memory_only_since");
        }

        if (storage.FailingSince is { } failing)
        {
            w.WriteString("storage_failing_since", WireTime.Instant(failing));
            w.WriteString("storage_failure", storage.FailingCause);
            problems.Add(string.Create(CultureInfo.InvariantCulture,
                $"the outbox cannot write since {failing.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'}: {storage.FailingCause}; new data is held in memory by the feeder and nothing new reaches the uplinks until it writes again"));
        }
        else
        {
            w.WriteNull("storage_failing_since");
        }
    }

    private readonly record struct Sample(DateTimeOffset At, long EntryBytes, long Condensed, long Dropped);

    /// <summary>Records the figures now (the timer, every <see cref="SampleInterval"/>; tests call it directly).</summary>
    public void Record()
    {
        if (_stats() is not { } s)
        {
            return;
        }

        var sample = new Sample(_time.GetUtcNow(), s.EntryBytes, s.Condensed, s.Dropped);
        lock (_lock)
        {
            _first ??= sample;
            _samples.Enqueue(sample);
            while (_samples.Count > Kept)
            {
                _samples.Dequeue();
            }
        }
    }

    /// <summary>Writes <c>"outbox":{…}</c> and adds what needs attention to <paramref name="problems"/>.</summary>
    public void Write(Utf8JsonWriter w, ICollection<string> problems)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(problems);
        if (_stats() is not { } s)
        {
            w.WriteNull("outbox");
            problems.Add("the outbox is not open (the agent is starting or stopping)");
            return;
        }

        var now = _time.GetUtcNow();
        var condenseAt = (long)(_budgetBytes * _highWatermark);
        Sample? first;
        double? rate;
        lock (_lock)
        {
            first = _first;
            rate = Rate(new Sample(now, s.EntryBytes, s.Condensed, s.Dropped));
        }

        w.WriteStartObject("outbox");
        WriteStorage(w, s.Storage, problems);
        w.WriteNumber("entries", s.Depth);
        w.WriteNumber("entry_bytes", s.EntryBytes);
        w.WriteNumber("file_bytes", s.Bytes);
        w.WriteNumber("budget_bytes", _budgetBytes);
        w.WriteNumber("budget_used", _budgetBytes > 0 ? Math.Round((double)s.EntryBytes / _budgetBytes, 4) : 0);
        var oldestAge = s.OldestAge(now);
        if (s.OldestTimestampUnixMs is { } oldest)
        {
            w.WriteString("oldest_unsent", DateTimeOffset.FromUnixTimeMilliseconds(oldest).ToString("O", CultureInfo.InvariantCulture));
            w.WriteNumber("oldest_unsent_age_s", Math.Round(oldestAge!.Value.TotalSeconds));
        }
        else
        {
            w.WriteNull("oldest_unsent");
            w.WriteNull("oldest_unsent_age_s");
        }

        var rejections = _rejections();
        var takeovers = _takeovers();
        var traffic = _traffic();
        var hosts = _primaryHosts();
        var servers = _servers();
        long rejectedNow = 0;
        w.WriteStartObject("uplinks");
        foreach (var (name, acked) in s.UplinkPositions.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            w.WriteStartObject(name);
            w.WriteNumber("acked", acked);
            // Sequences of dropped entries are gaps: what this uplink still has to send is at most what is held.
            w.WriteNumber("behind", Math.Clamp(s.LastSequence - acked, 0, s.Depth));
            var refused = rejections.GetValueOrDefault(name) ?? UplinkRejections.None;
            rejectedNow += refused.Count;
            w.WriteNumber("rejected_since_start", refused.Count);
            if (refused is { LastSequence: { } seq, LastAt: { } at })
            {
                w.WriteStartObject("last_rejected");
                w.WriteNumber("seq", seq);
                w.WriteString("time", WireTime.Instant(at));
                w.WriteString("reason", refused.LastReason);
                w.WriteEndObject();
            }
            else
            {
                w.WriteNull("last_rejected");
            }

            if (refused.ClosesOnEveryEntrySince is { } closing)
            {
                w.WriteString("closes_on_every_entry_since", WireTime.Instant(closing));
            }
            else
            {
                w.WriteNull("closes_on_every_entry_since");
            }

            // A second gateway with this identity: the broker gives the session to whichever connected last.
            var taken = takeovers.GetValueOrDefault(name) ?? UplinkTakeovers.None;
            w.WriteNumber("taken_over_since_start", taken.Count);
            if (servers.TryGetValue(name, out var server))
            {
                // Additive: which broker of the list (or the one host) the uplink is on; null while it has no session.
                if (server is null)
                {
                    w.WriteNull("server");
                }
                else
                {
                    w.WriteString("server", server);
                }
            }

            if (hosts.GetValueOrDefault(name) is { } host)
            {
                // Sparkplug with a primary host: while it is not online nothing is published and the outbox keeps the entries.
                w.WriteString("primary_host", host.HostId);
                if (host.WaitingSince is { } waiting)
                {
                    w.WriteString("waits_for_primary_host_since", WireTime.Instant(waiting));
                    if (now - waiting >= HostWaitProblem)
                    {
                        problems.Add(string.Create(CultureInfo.InvariantCulture,
                            $"uplink {name}: waits for Sparkplug primary host '{host.HostId}' since {waiting.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'} (its STATE is offline, or none was seen): nothing is published, the entries wait in the outbox; check the host application and its STATE topic spBv1.0/STATE/{host.HostId}"));
                    }
                }
                else
                {
                    w.WriteNull("waits_for_primary_host_since");
                }
            }

            WriteTraffic(w, name, traffic.GetValueOrDefault(name) ?? UplinkTrafficSnapshot.None, now - _started, problems);
            w.WriteEndObject();
            if (taken is { Count: > 0, LastAt: { } takenAt })
            {
                problems.Add(string.Create(CultureInfo.InvariantCulture,
                    $"uplink {name}: the broker gave its session to another connection with the same client id {taken.Count} {(taken.Count == 1 ? "time" : "times")} since the agent started, last at {takenAt.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'}: a second gateway runs with this gateway_id (an old gateway revived next to its replacement?); stop one of them"));
            }

            if (refused.ClosesOnEveryEntrySince is { } closingSince)
            {
                problems.Add(string.Create(CultureInfo.InvariantCulture,
                    $"uplink {name}: its peer closes the connection on every entry sent, since {closingSince.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'}: nothing is delivered and the entries wait in the outbox; check the broker's ACL and size limit for this client (an MQTT 3.1.1 broker closes the connection on a publish it forbids)"));
            }

            if (refused is { Count: > 0, LastSequence: { } last })
            {
                problems.Add(string.Create(CultureInfo.InvariantCulture,
                    $"uplink {name}: its peer refused {refused.Count} {(refused.Count == 1 ? "entry" : "entries")} for good since the agent started (data_gap events with reason rejected_by_peer name them; the last: entry {last}, {refused.LastReason})"));
            }
        }

        w.WriteEndObject();
        w.WriteNumber("rejected_since_start", rejectedNow);
        w.WriteNumber("condensed", s.Condensed);
        w.WriteNumber("dropped", s.Dropped);
        var droppedNow = first is { } f ? s.Dropped - f.Dropped : 0;
        w.WriteNumber("dropped_since_start", droppedNow);
        WriteOrNull(w, "growth_bytes_per_s", rate is { } r ? Math.Round(r, 1) : null);
        w.WriteNumber("condense_at_bytes", condenseAt);
        double? condenseIn = null;
        if (s.EntryBytes >= condenseAt)
        {
            condenseIn = 0;
        }
        else if (rate is > 0)
        {
            condenseIn = Math.Round((condenseAt - s.EntryBytes) / rate.Value);
        }

        WriteOrNull(w, "condense_in_s", condenseIn);

        // A budget the disk cannot hold: the outbox condenses once the free space runs low (disk pressure, Outbox README),
        // so the disk, not disk_budget_mb, bounds the outage.
        var free = _diskFree();
        if (free is { } freeBytes)
        {
            w.WriteNumber("disk_free_bytes", freeBytes);
        }
        else
        {
            w.WriteNull("disk_free_bytes");
        }

        var diskBinds = s.Storage.MemoryOnlySince is null && free is { } f2 && s.EntryBytes < condenseAt && f2 < condenseAt - s.EntryBytes;
        w.WriteBoolean("disk_smaller_than_budget", diskBinds);
        w.WriteString("at_budget", "raw entries are condensed into summaries, then the oldest summaries, raw entries and twin-state snapshots are dropped; events and predictions are kept");
        w.WriteNumber("max_age_s", Math.Round(_maxAge.TotalSeconds));
        WriteOrNull(w, "max_age_drop_in_s", oldestAge is { } age ? Math.Max(0, Math.Round((_maxAge - age).TotalSeconds)) : null);
        w.WriteEndObject();

        if (droppedNow > 0)
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture, $"the outbox dropped {droppedNow} entries since the agent started (disk budget or max_age; data_gap events name them)"));
        }

        if (diskBinds)
        {
            problems.Add($"the outbox's disk has {Size(free!.Value)} free, less than the {Size(condenseAt - s.EntryBytes)} its budget still allows: the disk fills first, and condensing starts when it runs low");
        }

        if (_budgetBytes > 0 && s.EntryBytes >= _budgetBytes * LowWatermark)
        {
            // From here on the budget rounds keep it between 75 and 90 %: it is dropping or about to, whatever the rate.
            problems.Add(string.Create(CultureInfo.InvariantCulture, $"the outbox is at {100.0 * s.EntryBytes / _budgetBytes:0.#} % of its disk budget: at 90 % raw data is condensed and the oldest summaries dropped ({s.Dropped} entries dropped so far)"));
        }
        else if (condenseIn is { } ahead && TimeSpan.FromSeconds(ahead) <= WarnAhead)
        {
            problems.Add($"the outbox reaches 90 % of its disk budget in ~{Durations.Approximate(TimeSpan.FromSeconds(ahead))}: then raw data is condensed, the oldest summaries dropped");
        }
    }

    /// <summary>
    /// Bytes per second since the oldest sample after the last budget or max_age round (a round shrinks the store: a rate
    /// across it is meaningless); null without a minute of such history or when the store is not growing.
    /// </summary>
    private double? Rate(Sample now)
    {
        Sample? from = null;
        foreach (var sample in _samples.Reverse())
        {
            if (sample.Condensed != now.Condensed || sample.Dropped != now.Dropped)
            {
                break;
            }

            from = sample;
        }

        if (from is not { } start || now.At - start.At < MinWindow)
        {
            return null;
        }

        var rate = (now.EntryBytes - start.EntryBytes) / (now.At - start.At).TotalSeconds;
        return rate > 0 ? rate : null;
    }

    private static string Size(long bytes) => (bytes / 1048576.0).ToString("0.0", CultureInfo.InvariantCulture) + " MiB";

    /// <summary>Free bytes of the filesystem holding <paramref name="path"/>; null when it cannot be read.</summary>
    public static long? FreeBytes(string path)
    {
        try
        {
            return new DriveInfo(Path.GetDirectoryName(Path.GetFullPath(path)) ?? "/").AvailableFreeSpace;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }

    private static void WriteOrNull(Utf8JsonWriter w, string name, double? value)
    {
        if (value is { } v)
        {
            w.WriteNumber(name, v);
        }
        else
        {
            w.WriteNull(name);
        }
    }
}
