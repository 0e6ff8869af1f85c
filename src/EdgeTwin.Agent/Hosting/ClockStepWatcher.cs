using System.Diagnostics.Metrics;
using System.Globalization;
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

    /// <summary>How often the clocks are compared: two clock reads and one adjtimex(2).</summary>
    public static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(5);

    private readonly Func<ClockReading> _kernel;
    private readonly string _device;
    private readonly ILogger _logger;
    private readonly Counter<long> _steps;
    private readonly WallClockWatch _watch;
    private bool? _synchronized;
    private long _rangeFirst;
    private ClockStep? _last;
    private int _count;
    private UnsyncedRunsFile? _runs;
    private bool _runStarted;
    private long? _openFirst;
    private readonly List<(EdgeEvent Event, SequenceRange[] Named)> _naming = [];

    public ClockStepWatcher(TimeProvider time, IMeterFactory meters, ILogger<ClockStepWatcher> logger, string device)
        : this(time, meters, logger, device, KernelClock.Read)
    {
    }

    /// <param name="time">The clock (wall and monotonic).</param>
    /// <param name="meters">For <c>edgetwin.clock.steps</c> (meter <c>EdgeTwin.Agent</c>).</param>
    /// <param name="logger">One warning per step.</param>
    /// <param name="device">The event's device: the gateway id (the step is about the gateway, not a device it reads).</param>
    /// <param name="kernel">The kernel clock state; an <see cref="IOException"/> (ProtectClock=) leaves it out of the event.</param>
    internal ClockStepWatcher(TimeProvider time, IMeterFactory meters, ILogger logger, string device, Func<ClockReading> kernel)
    {
        ArgumentNullException.ThrowIfNull(meters);
        _kernel = kernel;
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
        var wallMs = _watch.Read(out var stepMs);
        var before = _synchronized;
        var after = Synchronized();
        _synchronized = after;
        var starting = false;
        if (_runs is not null && !_runStarted && outbox() is { RunFirstSequence: > 0 } opened)
        {
            starting = true;
            // This run's start (the outbox open): earlier runs' open ranges end below its first sequence; this run's
            // opens when the clock is not synchronised (an unknown state records nothing: it cannot be told later either).
            _runStarted = true;
            _runs.CloseEarlier(opened.RunFirstSequence);
            if (after == false)
            {
                _openFirst = Math.Max(_rangeFirst, opened.RunFirstSequence);
                _runs.Open(_openFirst.Value);
            }
        }

        if (stepMs == 0)
        {
            return after == true && _runStarted ? NameEarlierRuns(wallMs, before, starting) : null;
        }

        // The range: from this run's first entry (or the one after the previous step's range) to the last appended now.
        // Entries appended later were stamped after the check that saw the step (or wait in a stage's queue: see the
        // Outbox README, "How old an entry is").
        long? first = null, last = null;
        if (outbox() is { RunFirstSequence: > 0 } stats)
        {
            var from = Math.Max(_rangeFirst, stats.RunFirstSequence);
            if (stats.LastSequence >= from)
            {
                (first, last) = (from, stats.LastSequence);
            }

            _rangeFirst = Math.Max(from, stats.LastSequence + 1);
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
        LogStepped(_logger, direction, size, stepMs, WireTime.Instant(wallBefore), WireTime.Instant(wallAfter), range, SyncText(before), SyncText(after));

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

        SequenceRange? thisRun = null;
        if (first is { } f && last is { } l)
        {
            attributes["first_seq"] = f.ToString(CultureInfo.InvariantCulture);
            attributes["last_seq"] = l.ToString(CultureInfo.InvariantCulture);
            thisRun = new SequenceRange(f, l);
        }

        var earlier = Earlier();
        var message = first is null
            ? $"the gateway's wall clock stepped {direction} by {size}; nothing this run sent was stamped by the old clock"
            : string.Create(CultureInfo.InvariantCulture, $"the gateway's wall clock stepped {direction} by {size}: entries {first} to {last} were stamped by the old clock; add step_ms to their times");
        if (earlier.Count > 0)
        {
            var seqs = string.Join(',', earlier);
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
            _runs.Close(_openFirst, held, next);
            _openFirst = next;
            Naming(stepped, held is { } r ? [.. earlier, r] : [.. earlier]);
        }

        return stepped;
    }

    /// <summary>
    /// The clock is synchronised without a step seen in this run: at the start (NTP synced while the agent was stopped) or
    /// later by slewing (this run's clock was within the threshold). Earlier runs' ranges are named, with no step: their
    /// clock's offset died with them.
    /// </summary>
    private EdgeEvent? NameEarlierRuns(long wallMs, bool? before, bool starting)
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

        var reason = starting ? "synchronized_while_stopped" : "synchronized_without_step";
        var how = starting ? "while the agent was stopped" : "without a step";
        var seqs = string.Join(',', earlier);
        var at = DateTimeOffset.FromUnixTimeMilliseconds(wallMs);
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["reason"] = reason,
            ["earlier_seqs"] = seqs,
            ["synchronized_after"] = "true",
        };
        if (before is { } b)
        {
            attributes["synchronized_before"] = b ? "true" : "false";
        }

        LogEarlierRunsUnsynchronised(_logger, seqs, how);
        var message = $"the gateway's wall clock was synchronised {how}: entries {seqs} of earlier runs were stamped by an unsynchronised clock, offset not known";
        var synced = new EdgeEvent(EdgeEventKind.ClockStepped, "clock", at, EventSeverity.Warning, message, attributes) { Device = _device };
        Naming(synced, [.. earlier]);
        return synced;
    }

    // The ranges of earlier runs that no event named yet: all held but this run's open one and those of an event on its way.
    private List<SequenceRange> Earlier()
    {
        if (_runs is null)
        {
            return [];
        }

        lock (_naming)
        {
            return _runs.Ranges.Where(r => !(r.Last is null && r.First == _openFirst) && !_naming.Any(n => n.Named.Contains(r))).ToList();
        }
    }

    private void Naming(EdgeEvent edgeEvent, SequenceRange[] named)
    {
        lock (_naming)
        {
            _naming.Add((edgeEvent, named));
        }
    }

    private bool? Synchronized()
    {
        try
        {
            return _kernel().Synchronized;
        }
        catch (IOException)
        {
            return null; // ProtectClock= denies even the read: the event says nothing of it
        }
    }

    private static string SyncText(bool? synchronized) => synchronized switch
    {
        true => "synchronised",
        false => "not synchronised",
        null => "unknown",
    };

    [LoggerMessage(EventId = 2032, Level = LogLevel.Warning, Message = "the kernel clock is synchronised ({How}) but earlier runs stamped outbox entries {Ranges} before it was, by an offset not known: a clock_stepped event (reason synchronized_while_stopped | synchronized_without_step, no step_ms) tells the centre")]
    private static partial void LogEarlierRunsUnsynchronised(ILogger logger, string ranges, string how);

    [LoggerMessage(EventId = 2030, Level = LogLevel.Warning, Message = "the wall clock stepped {Direction} by {Step} ({StepMs} ms: it read {WallAfter} where it would have read {WallBefore}; kernel clock {SyncBefore} before, {SyncAfter} after): outbox entries {Range} of this run were stamped by the old clock; a clock_stepped event tells the centre")]
    private static partial void LogStepped(ILogger logger, string direction, string step, long stepMs, string wallBefore, string wallAfter, string range, string syncBefore, string syncAfter);
}
