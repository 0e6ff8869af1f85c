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
        if (stepMs == 0)
        {
            return null;
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

        if (first is { } f && last is { } l)
        {
            attributes["first_seq"] = f.ToString(CultureInfo.InvariantCulture);
            attributes["last_seq"] = l.ToString(CultureInfo.InvariantCulture);
        }

        var message = first is null
            ? $"the gateway's wall clock stepped {direction} by {size}; nothing this run sent was stamped by the old clock"
            : string.Create(CultureInfo.InvariantCulture, $"the gateway's wall clock stepped {direction} by {size}: entries {first} to {last} were stamped by the old clock; add step_ms to their times");
        return new EdgeEvent(EdgeEventKind.ClockStepped, "clock", wallAfter, EventSeverity.Warning, message, attributes) { Device = _device };
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

    [LoggerMessage(EventId = 2030, Level = LogLevel.Warning, Message = "the wall clock stepped {Direction} by {Step} ({StepMs} ms: it read {WallAfter} where it would have read {WallBefore}; kernel clock {SyncBefore} before, {SyncAfter} after): outbox entries {Range} of this run were stamped by the old clock; a clock_stepped event tells the centre")]
    private static partial void LogStepped(ILogger logger, string direction, string step, long stepMs, string wallBefore, string wallAfter, string range, string syncBefore, string syncAfter);
}
