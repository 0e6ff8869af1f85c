using System.Globalization;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Core.Samples;

/// <summary>
/// The latest sample time a stage has seen, and the backward wall-clock steps its samples show. Samples are stamped with
/// the wall clock, which NTP (or <c>date -s</c>) steps back when a gateway booted with a clock ahead: a stage that compared
/// sample times with a "next" or "last" time it stored produced nothing for the size of the step (an hour of thermal
/// frames, multivariate rows, OEE books). The rule every stage follows: a sample older than the latest by more than
/// <see cref="ToleranceMs"/> is a clock step; the stage re-anchors its schedule at the sample, clears (or moves back by the
/// step) what no longer belongs to one stretch of time, and logs the step once (<see cref="LogSteppedBack"/>). Older by
/// less is poll jitter between devices and is taken as it is; durations computed from sample times never go negative.
/// </summary>
public sealed class SampleClock
{
    /// <summary>
    /// Samples of one batch, or of devices polled side by side, differ by a poll's duration (seconds, bounded by its
    /// timeout); a step shorter than this stalls a stage for no longer than that.
    /// </summary>
    public const long ToleranceMs = 60_000;

    /// <summary>The latest sample time seen (0 before the first); after a step, the sample that showed it.</summary>
    public long LatestMs { get; private set; }

    /// <summary>Backward steps seen.</summary>
    public int Steps { get; private set; }

    /// <summary>
    /// Takes a sample time; returns how far the clock stepped back (ms, &gt; 0) when it is older than the latest by more
    /// than <see cref="ToleranceMs"/>, 0 otherwise. After a step the latest is the sample's time.
    /// </summary>
    public long Observe(long ms)
    {
        if (LatestMs != 0 && ms < LatestMs - ToleranceMs)
        {
            var step = LatestMs - ms;
            LatestMs = ms;
            Steps++;
            return step;
        }

        if (ms > LatestMs)
        {
            LatestMs = ms;
        }

        return 0;
    }

    /// <summary>Logs a backward step once, naming the stage, the step and what the stage did about it.</summary>
    public static void LogSteppedBack(ILogger logger, string stage, long stepMs, long atMs, string what)
    {
        ArgumentNullException.ThrowIfNull(logger);
        var step = TimeSpan.FromMilliseconds(stepMs);
        SampleClockLog.SteppedBack(
            logger,
            stage,
            step.ToString(step >= TimeSpan.FromDays(1) ? @"d\.hh\:mm\:ss" : @"hh\:mm\:ss", CultureInfo.InvariantCulture),
            DateTimeOffset.FromUnixTimeMilliseconds(atMs + stepMs),
            DateTimeOffset.FromUnixTimeMilliseconds(atMs),
            what);
    }
}

internal static partial class SampleClockLog
{
    [LoggerMessage(EventId = 1210, Level = LogLevel.Warning, Message = "{Stage}: the wall clock stepped back {Step} (a sample stamped {At:u} after one stamped {Latest:u}; NTP or a manual set); {What}")]
    public static partial void SteppedBack(ILogger logger, string stage, string step, DateTimeOffset latest, DateTimeOffset at, string what);
}
