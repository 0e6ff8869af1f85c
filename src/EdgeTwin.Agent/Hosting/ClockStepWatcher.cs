using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Outbox;
using EdgeTwin.Sensors.Host;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Hosting;

/// <summary>A wall-clock step the agent saw, for <c>edgetwin status</c>.</summary>
/// <param name="SeenAt">The wall clock (the new one) when the step was seen.</param>
/// <param name="StepMs">How far it moved (negative: back).</param>
/// <param name="FirstSequence">The first outbox entry of the range stamped by the old clock, null when none.</param>
/// <param name="LastSequence">The last of that range, null when none.</param>
public sealed record ClockStep(DateTimeOffset SeenAt, long StepMs, long? FirstSequence, long? LastSequence);

/// <summary>What the last check of the clock saw, for <c>edgetwin status</c> (another thread than the checks').</summary>
/// <param name="Synchronized">The clock's state: adjtimex(2), or when that is denied timesyncd's marker, else chronyd's tracking report; null unknown.</param>
/// <param name="UnsynchronizedSince">With <paramref name="Synchronized"/> false: the wall clock (the unsynchronised one) at the first check that saw it.</param>
/// <param name="SinceStart">That first check was this run's first.</param>
/// <param name="OpenFrom">This run stamps from this outbox sequence on under the unsynchronised clock, held in the state file until a <c>clock_stepped</c> event names it; null when none is held.</param>
/// <param name="By">Who told <paramref name="Synchronized"/>: <c>adjtimex</c>, <c>timesyncd</c>, <c>chronyd</c>; null when unknown.</param>
/// <param name="Chrony">chronyd's report, when it told.</param>
/// <param name="ChronyError">Why chronyd did not tell, when it was asked (adjtimex denied, no timesyncd) and did not answer.</param>
public sealed record ClockSyncState(bool? Synchronized, DateTimeOffset? UnsynchronizedSince, bool SinceStart, long? OpenFrom,
    string? By = null, ChronyTracking? Chrony = null, string? ChronyError = null);

/// <summary>
/// Watches the wall clock against the monotonic clock for the whole agent. A gateway without a real-time clock boots with
/// the time fake-hwclock saved (hours or days off) and, its uplink down, the agent starts before NTP syncs: everything it
/// stamps is on the wrong clock until NTP steps it. The twin stages cope with the step on their own; this tells the
/// centre, with a <c>clock_stepped</c> event naming the outbox sequences stamped by the old clock and the step, so they
/// can be filed at the right time. One warning per step and the <c>edgetwin.clock.steps</c> counter.
/// </summary>
public sealed partial class ClockStepWatcher
{
    /// <summary>
    /// A change of "wall minus monotonic" larger than this between two checks is a step. Slewing moves it 0.5 ms/s at most
    /// (2.5 ms per check); timesyncd and chrony step from 0.4 s and 1 s, so smaller steps go unreported.
    /// </summary>
    public const long ThresholdMs = 2_000;

    /// <summary>
    /// systemd-timesyncd's runtime directory: it exists while timesyncd runs, and holds <c>synchronized</c> once it has
    /// synchronised the clock in this boot (systemd 239 on; <c>/run</c> is emptied at boot).
    /// </summary>
    public const string TimesyncDirectory = "/run/systemd/timesync";

    /// <summary>How often the clocks are compared: two clock reads and one adjtimex(2).</summary>
    public static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(5);

    private readonly Func<ClockReading> _kernel;
    private readonly ChronyCommandClient? _chrony;
    private readonly TimeProvider _time;
    private readonly string _timesync;
    private readonly string? _boot;
    private readonly string _device;
    private readonly ILogger _logger;
    private readonly Counter<long> _steps;
    private readonly WallClockWatch _watch;
    private bool? _synchronized;
    private string? _by;
    private ChronyAnswer? _chronyAnswer; // the last refresh's, taken by the next check
    private ChronyAnswer? _chronyUsed; // what that check used
    private bool _chronyFailing;
    private long _rangeFirst;
    private ClockStep? _last;
    private int _count;
    private UnsyncedRunsFile? _runs;
    private bool _runStarted;
    private long _runFirst;
    private long? _openFirst;
    private readonly List<(EdgeEvent Event, SequenceRange[] Named)> _naming = [];
    private ClockSyncState? _state;

    public ClockStepWatcher(TimeProvider time, IMeterFactory meters, ILogger<ClockStepWatcher> logger, string device)
        : this(time, meters, logger, device, KernelClock.Read, BootId.Read, TimesyncDirectory,
            new ChronyCommandClient(ChronyCommandClient.DefaultEndPoint, ChronyCommandClient.DefaultTimeout))
    {
    }

    /// <param name="time">The clock (wall and monotonic).</param>
    /// <param name="meters">For <c>edgetwin.clock.steps</c> (meter <c>EdgeTwin.Agent</c>).</param>
    /// <param name="logger">One warning per step.</param>
    /// <param name="device">The event's device: the gateway id (the step is about the gateway, not a device it reads).</param>
    /// <param name="kernel">The kernel clock state; an <see cref="IOException"/> (ProtectClock=) leaves it out of the event.</param>
    /// <param name="bootId">This boot's id (<c>/proc/sys/kernel/random/boot_id</c>; null when unknown): the monotonic clock
    /// runs on across the agent's restarts within one boot, so an earlier run's wall-minus-monotonic offset compares with this one's.</param>
    /// <param name="timesync">systemd-timesyncd's runtime directory, asked when adjtimex(2) is denied (<see cref="TimesyncDirectory"/>).</param>
    /// <param name="chrony">chronyd's command port, asked by <see cref="RefreshAsync"/> when adjtimex(2) is denied and timesyncd does not run; null: never.</param>
    internal ClockStepWatcher(TimeProvider time, IMeterFactory meters, ILogger logger, string device, Func<ClockReading> kernel, Func<string?> bootId, string timesync,
        ChronyCommandClient? chrony = null)
    {
        ArgumentNullException.ThrowIfNull(meters);
        ArgumentNullException.ThrowIfNull(bootId);
        _chrony = chrony;
        _timesync = timesync;
        _kernel = kernel;
        _time = time;
        _boot = bootId();
        _device = device;
        _logger = logger;
        _watch = new WallClockWatch(time, ThresholdMs);
        _steps = meters.Create(AgentMetrics.MeterName).CreateCounter<long>("edgetwin.clock.steps", "{step}",
            "Wall-clock steps seen (NTP's first sync, date -s), tag direction = forward | back; each sends a clock_stepped event.");
    }

    /// <summary>The last step seen, or null.</summary>
    public ClockStep? LastStep => Volatile.Read(ref _last);

    /// <summary>Steps seen since the agent started.</summary>
    public int Steps => Volatile.Read(ref _count);

    /// <summary>What the last <see cref="Check"/> saw; null before the first.</summary>
    public ClockSyncState? SyncState => Volatile.Read(ref _state);

    /// <summary>
    /// The ranges earlier runs stamped under an unsynchronised clock that no <c>clock_stepped</c> event has named yet
    /// (oldest first): they are named when this run sees the clock synchronised. Any thread.
    /// </summary>
    public IReadOnlyList<SequenceRange> PendingEarlierRanges() => Earlier(SyncState?.OpenFrom);

    /// <summary>
    /// Keeps the ranges stamped while the clock is not synchronised in <paramref name="runs"/> across restarts (the state
    /// directory's <see cref="UnsyncedRunsFile"/>), so that the event that tells the centre of the sync names those of
    /// earlier runs too. Before the first <see cref="Check"/>.
    /// </summary>
    public void UseStateFile(UnsyncedRunsFile runs) => _runs = runs;

    /// <summary>
    /// The outbox stage stored <paramref name="edgeEvent"/>: the ranges it named are dropped from the state file (until
    /// then a crash leaves them there, and the next run names them again).
    /// </summary>
    public void Stored(EdgeEvent edgeEvent)
    {
        SequenceRange[]? named = null;
        lock (_naming)
        {
            var i = _naming.FindIndex(n => ReferenceEquals(n.Event, edgeEvent));
            if (i >= 0)
            {
                named = _naming[i].Named;
                _naming.RemoveAt(i);
            }
        }

        if (named is not null)
        {
            _runs?.Remove(named);
        }
    }

    /// <summary>
    /// Compares the clocks. The first call sets the baseline; a later one that sees a step returns its
    /// <c>clock_stepped</c> event (null otherwise). <paramref name="outbox"/> gives the outbox's figures, read only on a
    /// step (null: no outbox, or not open), for the range of sequences stamped by the old clock. One caller at a time.
    /// </summary>
    public EdgeEvent? Check(Func<OutboxStats?> outbox)
    {
        ArgumentNullException.ThrowIfNull(outbox);
        var stepped = CheckClocks(outbox);
        var before = Volatile.Read(ref _state);
        DateTimeOffset? since = null;
        var sinceStart = false;
        if (_synchronized == false)
        {
            (since, sinceStart) = before is { Synchronized: false, UnsynchronizedSince: { } s } ? (s, before.SinceStart) : (_time.GetUtcNow(), before is null);
        }

        Volatile.Write(ref _state, new ClockSyncState(_synchronized, since, sinceStart, _openFirst, _by, _chronyUsed?.Tracking, _chronyUsed?.Error));
        return stepped;
    }

    /// <summary>
    /// Asks chronyd for its tracking report when the next <see cref="Check"/> has no other way to learn the clock's sync
    /// state: adjtimex(2) denied (<c>ProtectClock=yes</c>) and no systemd-timesyncd. <see cref="Check"/> cannot wait on
    /// the network (it is synchronous, and its clock reads should be close together), so the caller refreshes first and
    /// the check uses this answer, once. Never throws but for <paramref name="cancellationToken"/>; at most
    /// <see cref="ChronyCommandClient.DefaultTimeout"/> (the client's). Same caller as <see cref="Check"/>.
    /// </summary>
    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        Volatile.Write(ref _chronyAnswer, null);
        if (_chrony is null || KernelReadable() || Directory.Exists(_timesync))
        {
            return;
        }

        ChronyAnswer answer;
        try
        {
            answer = new ChronyAnswer(await _chrony.TrackingAsync(cancellationToken).ConfigureAwait(false), null);
            if (_chronyFailing)
            {
                _chronyFailing = false;
                LogChronyAnswers(_logger, _chrony.EndPoint, answer.Tracking!.Value.Synchronized);
            }
        }
        catch (ChronyException ex)
        {
            answer = new ChronyAnswer(null, ex.Message);
            if (!_chronyFailing)
            {
                _chronyFailing = true;
                LogChronyUnanswered(_logger, ex.Message);
            }
        }

        Volatile.Write(ref _chronyAnswer, answer);
    }

    private bool KernelReadable()
    {
        try
        {
            _kernel();
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    private EdgeEvent? CheckClocks(Func<OutboxStats?> outbox)
    {
        var wallMs = _watch.Read(out var stepMs);
        var offsetMs = wallMs - MonotonicMs();
        var before = _synchronized;
        var chrony = Interlocked.Exchange(ref _chronyAnswer, null); // a refresh's answer serves one check: never a stale one
        var after = Synchronized(chrony);
        _synchronized = after;
        var starting = false;
        if (_runs is not null && !_runStarted && outbox() is { RunFirstSequence: > 0 } opened)
        {
            // This run's start (the outbox open): earlier runs' open ranges end below its first sequence; this run's
            // opens when the clock is not synchronised (an unknown state records nothing: it cannot be told later either).
            starting = true;
            _runStarted = true;
            _runFirst = opened.RunFirstSequence;
            _runs.CloseEarlier(opened.RunFirstSequence);
            if (after == false)
            {
                _openFirst = Math.Max(_rangeFirst, opened.RunFirstSequence);
                _runs.Open(new SequenceRange(_openFirst.Value, null, _boot, offsetMs));
            }
        }

        if (stepMs == 0)
        {
            return after == true && _runStarted ? NameEarlierRuns(wallMs, offsetMs, starting) : null;
        }

        // The range: from this run's first entry (or the one after the previous step's range) to the last appended now.
        // Entries appended later were stamped after the check that saw the step (or wait in a stage's queue: see the
        // Outbox README, "How old an entry is").
        long? first = null, last = null, from = null;
        if (outbox() is { RunFirstSequence: > 0 } stats)
        {
            from = Math.Max(_rangeFirst, stats.RunFirstSequence);
            if (stats.LastSequence >= from)
            {
                (first, last) = (from, stats.LastSequence);
            }

            _rangeFirst = Math.Max(from.Value, stats.LastSequence + 1);
        }

        SequenceRange? thisRun = first is { } f0 && last is { } l0 ? new SequenceRange(f0, l0, _boot, offsetMs - stepMs) : null;
        var earlier = Earlier();
        // Earlier runs of this boot that went on under the same old clock (a restart: watchdog, upgrade, crash) and end
        // where this run's range begins were stamped by it too: the step moves them alike.
        var chain = from is { } anchor ? Chain(earlier, first ?? anchor, offsetMs - stepMs) : [];
        if (chain.Count > 0)
        {
            last ??= from - 1;
            first = chain[^1].First;
        }

        var wallAfter = DateTimeOffset.FromUnixTimeMilliseconds(wallMs);
        var wallBefore = wallAfter - TimeSpan.FromMilliseconds(stepMs);
        var step = new ClockStep(wallAfter, stepMs, first, last);
        Volatile.Write(ref _last, step);
        Interlocked.Increment(ref _count);
        var direction = stepMs < 0 ? "back" : "forward";
        _steps.Add(1, new KeyValuePair<string, object?>("direction", direction));
        var size = Durations.Approximate(TimeSpan.FromMilliseconds(stepMs));
        var range = first is null ? "none" : string.Create(CultureInfo.InvariantCulture, $"{first}..{last}");
        var seqs = string.Join(',', earlier);
        LogStepped(_logger, direction, size, stepMs, WireTime.Instant(wallBefore), WireTime.Instant(wallAfter), range, SyncText(before), SyncText(after),
            earlier.Count == 0 ? "" : $"; entries {seqs} of earlier runs were stamped by an unsynchronised clock whose offset is not known");

        var attributes = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["step_ms"] = stepMs.ToString(CultureInfo.InvariantCulture),
            ["wall_before"] = WireTime.Instant(wallBefore),
            ["wall_after"] = WireTime.Instant(wallAfter),
        };
        if (before is { } b)
        {
            attributes["synchronized_before"] = b ? "true" : "false";
        }

        if (after is { } a)
        {
            attributes["synchronized_after"] = a ? "true" : "false";
        }

        if (first is { } f && last is { } l)
        {
            attributes["first_seq"] = f.ToString(CultureInfo.InvariantCulture);
            attributes["last_seq"] = l.ToString(CultureInfo.InvariantCulture);
        }

        var message = first is null
            ? $"the gateway's wall clock stepped {direction} by {size}; nothing this run sent was stamped by the old clock"
            : string.Create(CultureInfo.InvariantCulture, $"the gateway's wall clock stepped {direction} by {size}: entries {first} to {last} were stamped by the old clock; add step_ms to their times");
        if (earlier.Count > 0)
        {
            attributes["earlier_seqs"] = seqs;
            message += $"; entries {seqs} of earlier runs were stamped by an unsynchronised clock, offset not known";
        }

        var stepped = new EdgeEvent(EdgeEventKind.ClockStepped, "clock", wallAfter, EventSeverity.Warning, message, attributes) { Device = _device };
        if (_runs is not null && _runStarted)
        {
            // This run's range (held only when it began unsynchronised) stays in the file until the event is stored; still
            // unsynchronised after the step (date -s), what it stamps next is open.
            var held = _openFirst is not null ? thisRun : null;
            long? next = after == false ? (_rangeFirst > 0 ? _rangeFirst : _openFirst) : null;
            _runs.Close(_openFirst, held, next is { } n ? new SequenceRange(n, null, _boot, offsetMs) : null);
            _openFirst = next;
            Naming(stepped, [.. earlier, .. chain, .. held is { } r ? [r] : Array.Empty<SequenceRange>()]);
        }

        return stepped;
    }

    /// <summary>
    /// The clock is synchronised without a step seen in this run: at the start (NTP synced while the agent was stopped) or
    /// later by slewing (this run's clock was within the threshold). Earlier runs of this boot that end where this run
    /// began tell how far the clock moved since (wall minus monotonic then and now); the offset of other earlier runs died
    /// with them and is not made up.
    /// </summary>
    private EdgeEvent? NameEarlierRuns(long wallMs, long offsetMs, bool starting)
    {
        if (_openFirst is { } open)
        {
            _runs!.Close(open, null, null); // within 2 s of the synchronised clock: nothing to move
            _openFirst = null;
        }

        var earlier = Earlier();
        if (earlier.Count == 0)
        {
            return null;
        }

        // The latest earlier run of this boot, ending where this run began, and those before it under the same clock.
        long? stepMs = null;
        List<SequenceRange> chain = [];
        if (earlier.FirstOrDefault(r => r.Last == _runFirst - 1 && r.Boot is not null && r.Boot == _boot && r.OffsetMs is not null) is { OffsetMs: { } then })
        {
            chain = Chain(earlier, _runFirst, then);
            if (Math.Abs(offsetMs - then) <= ThresholdMs)
            {
                _runs!.Remove(chain); // that clock was right (within 2 s) although not synchronised: nothing to move
                chain = [];
            }
            else
            {
                stepMs = offsetMs - then;
            }
        }

        if (chain.Count == 0 && earlier.Count == 0)
        {
            return null;
        }

        var how = starting ? "while the agent was stopped" : "without a step";
        var at = DateTimeOffset.FromUnixTimeMilliseconds(wallMs);
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["synchronized_before"] = "false",
            ["synchronized_after"] = "true",
        };
        var message = new StringBuilder($"the gateway's wall clock was synchronised {how}");
        if (stepMs is { } s)
        {
            // The step happened while the agent was stopped (this run began on the new clock, or within 2 s of it).
            var size = Durations.Approximate(TimeSpan.FromMilliseconds(s));
            var direction = s < 0 ? "back" : "forward";
            attributes["reason"] = "stepped_while_stopped";
            attributes["step_ms"] = s.ToString(CultureInfo.InvariantCulture);
            attributes["wall_before"] = WireTime.Instant(at - TimeSpan.FromMilliseconds(s));
            attributes["wall_after"] = WireTime.Instant(at);
            attributes["first_seq"] = chain[^1].First.ToString(CultureInfo.InvariantCulture);
            attributes["last_seq"] = chain[0].Last!.Value.ToString(CultureInfo.InvariantCulture);
            message.Append(CultureInfo.InvariantCulture, $", after stepping {direction} by {size} while the agent was stopped: entries {chain[^1].First} to {chain[0].Last} of earlier runs were stamped by the old clock; add step_ms to their times");
        }
        else
        {
            attributes["reason"] = starting ? "synchronized_while_stopped" : "synchronized_without_step";
        }

        var seqs = string.Join(',', earlier);
        if (earlier.Count > 0)
        {
            attributes["earlier_seqs"] = seqs;
            message.Append(CultureInfo.InvariantCulture, $"{(stepMs is null ? ":" : ";")} entries {seqs} of earlier runs were stamped by an unsynchronised clock, offset not known");
        }

        var parts = new List<string>(2);
        if (stepMs is { } moved)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"entries {chain[^1].First}..{chain[0].Last} of earlier runs of this boot were stamped by a clock {moved} ms off"));
        }

        if (earlier.Count > 0)
        {
            parts.Add($"entries {seqs} of earlier runs by a clock whose offset is not known");
        }

        LogEarlierRunsNamed(_logger, how, string.Join("; ", parts), attributes["reason"]);
        var named = new EdgeEvent(EdgeEventKind.ClockStepped, "clock", at, EventSeverity.Warning, message.ToString(), attributes) { Device = _device };
        Naming(named, [.. earlier, .. chain]);
        return named;
    }

    /// <summary>
    /// Takes out of <paramref name="earlier"/> the ranges of this boot stamped by the clock whose wall-minus-monotonic
    /// offset was <paramref name="offsetMs"/>, contiguous down from <paramref name="below"/> (exclusive): newest first.
    /// </summary>
    private List<SequenceRange> Chain(List<SequenceRange> earlier, long below, long offsetMs)
    {
        List<SequenceRange> chain = [];
        if (_boot is null)
        {
            return chain;
        }

        while (earlier.FindIndex(r => r.Last == below - 1 && r.Boot == _boot && r.OffsetMs is { } o && Math.Abs(o - offsetMs) <= ThresholdMs) is var i and >= 0)
        {
            chain.Add(earlier[i]);
            below = earlier[i].First;
            earlier.RemoveAt(i);
        }

        return chain;
    }

    // CLOCK_MONOTONIC in ms (since boot: the same in every process of one boot, which is what lets a range of an earlier
    // run be compared with this run's clock).
    private long MonotonicMs() => (long)(_time.GetTimestamp() * 1000.0 / _time.TimestampFrequency);

    // The ranges of earlier runs that no event named yet: all held but this run's open one and those of an event on its way.
    private List<SequenceRange> Earlier() => Earlier(_openFirst);

    private List<SequenceRange> Earlier(long? openFirst)
    {
        if (_runs is null)
        {
            return [];
        }

        lock (_naming)
        {
            return _runs.Ranges.Where(r => !(r.Last is null && r.First == openFirst) && !_naming.Any(n => n.Named.Contains(r))).ToList();
        }
    }

    private void Naming(EdgeEvent edgeEvent, SequenceRange[] named)
    {
        lock (_naming)
        {
            _naming.Add((edgeEvent, named));
        }
    }

    private bool? Synchronized(ChronyAnswer? chrony)
    {
        _chronyUsed = null;
        try
        {
            var synchronized = _kernel().Synchronized;
            _by = "adjtimex";
            return synchronized;
        }
        catch (IOException)
        {
            // ProtectClock= denies even the read (the role's unit without a host device): timesyncd's marker tells instead,
            // else chronyd's tracking report (RefreshAsync asked it). Without either (ntpd, no client, chronyd not
            // answering) the state is unknown and the event says nothing of it.
            if (Directory.Exists(_timesync))
            {
                _by = "timesyncd";
                return File.Exists(Path.Combine(_timesync, "synchronized"));
            }

            _chronyUsed = chrony;
            _by = chrony?.Tracking is null ? null : "chronyd";
            return chrony?.Tracking?.Synchronized;
        }
    }

    /// <summary>chronyd's report, or why there is none.</summary>
    private sealed record ChronyAnswer(ChronyTracking? Tracking, string? Error);

    private static string SyncText(bool? synchronized) => synchronized switch
    {
        true => "synchronised",
        false => "not synchronised",
        null => "unknown",
    };

    [LoggerMessage(EventId = 2036, Level = LogLevel.Information, Message = "the kernel clock's sync state cannot be read (adjtimex(2) denied) and systemd-timesyncd does not run; {Error}: the clock's state is unknown until it answers")]
    private static partial void LogChronyUnanswered(ILogger logger, string error);

    [LoggerMessage(EventId = 2037, Level = LogLevel.Information, Message = "chronyd at {Address} answers: it tells the clock's sync state again (synchronised: {Synchronized})")]
    private static partial void LogChronyAnswers(ILogger logger, System.Net.IPEndPoint address, bool synchronized);

    [LoggerMessage(EventId = 2032, Level = LogLevel.Warning, Message = "the kernel clock was synchronised {How}, and before that {What}: a clock_stepped event (reason {Reason}) tells the centre")]
    private static partial void LogEarlierRunsNamed(ILogger logger, string how, string what, string reason);

    [LoggerMessage(EventId = 2030, Level = LogLevel.Warning, Message = "the wall clock stepped {Direction} by {Step} ({StepMs} ms: it read {WallAfter} where it would have read {WallBefore}; kernel clock {SyncBefore} before, {SyncAfter} after): outbox entries {Range} were stamped by the old clock{Earlier}; a clock_stepped event tells the centre")]
    private static partial void LogStepped(ILogger logger, string direction, string step, long stepMs, string wallBefore, string wallAfter, string range, string syncBefore, string syncAfter, string earlier);
}
