using EdgeTwin.Snmp.Client;

namespace EdgeTwin.Snmp.Security;

/// <summary>What the receiver makes of one authenticated trap's boots and time.</summary>
internal enum SenderVerdict
{
    Timely,

    /// <summary>Behind our notion, but the last of <see cref="TrapSenderClock.RelearnAfter"/> consistent ones: our notion now follows it.</summary>
    Relearned,

    /// <summary>Boots lower than our notion, or the same boots and more than 150 s behind.</summary>
    Behind,

    /// <summary>Ahead of the re-learnt clock by more than 150 s but no later than the clock given up: from the old clock.</summary>
    Abandoned,

    Latched,
    OutOfRange,
}

/// <summary>
/// The receiver's notion of one trap sender's engine clock (RFC 3414 2.3, 3.2.7 b, the receiver non-authoritative), plus
/// a way back for a sender whose clock went back without its boots rising (boots not kept over a firmware reload, a
/// config restore): RFC 3414 has none for the non-authoritative side of a trap (the sender cannot be asked), so such a
/// sender was refused until the agent restarted. Only authenticated traps reach here (the HMAC is verified first).
/// </summary>
internal sealed class TrapSenderClock(byte[] engineId, int boots, int time, TimeProvider clock)
{
    /// <summary>Consecutive behind traps, all on one new clock, that make it the sender's.</summary>
    public const int RelearnAfter = 3;

    /// <summary>How far the candidates' offsets to our clock may differ (whole-second times, send and delivery delays).</summary>
    public const int RelearnToleranceSeconds = 10;

    private readonly EngineClock _clock = new(engineId, boots, time, clock);
    private readonly long _origin = clock.GetTimestamp();
    private readonly List<(int MessageId, int Boots, int Time, double Offset)> _candidates = new(RelearnAfter);
    private readonly Lock _lock = new();

    // What the clock given up at the last re-learn read then (boots, time): captured traps of that clock
    // would otherwise read as newer than the re-learnt one and pull our notion back to it (a replay made timely).
    private (int Boots, int Time)? _abandoned;

    public (int Boots, int Time) Now() => _clock.Now();

    /// <summary>
    /// Checks one authenticated trap. Our notion is re-learnt when <see cref="RelearnAfter"/> consecutive traps are all
    /// behind it and consistent with one new clock: the same boots, distinct msgIDs, times that do not go back, and the
    /// same offset to our clock within <see cref="RelearnToleranceSeconds"/> (a sender's clock runs on with ours; a
    /// timely trap in between starts the count again). <paramref name="previous"/> is the notion given up.
    /// </summary>
    public SenderVerdict Accept(int messageId, int boots, int time, out (int Boots, int Time) previous)
    {
        previous = default;
        if (boots < 0 || time < 0)
        {
            return SenderVerdict.OutOfRange;
        }
        lock (_lock)
        {
            var (ourBoots, ourTime) = _clock.Now();
            var abandoned = false;
            if (_abandoned is { } gone)
            {
                if (Compare(_clock.LatestReceived, gone) > 0)
                {
                    _abandoned = null; // the new clock has run past the old one: nothing of it can be told apart any more
                }
                else
                {
                    // Ahead of the new clock yet no later than the old one: taken as newer, it would pull our notion back
                    // to the old clock. Behind or timely ones go the usual way (a second reset can be re-learnt too).
                    abandoned = Compare((boots, time), gone) <= 0 && Compare((boots, time), (ourBoots, (long)ourTime + EngineClock.WindowSeconds)) > 0;
                }
            }

            var verdict = abandoned ? Timeliness.Behind : _clock.Accept(boots, time);
            if (verdict == Timeliness.InWindow)
            {
                _candidates.Clear();
                return SenderVerdict.Timely;
            }
            if (verdict == Timeliness.OutOfRange || (verdict == Timeliness.Latched && boots == EngineClock.MaxBoots))
            {
                return verdict == Timeliness.Latched ? SenderVerdict.Latched : SenderVerdict.OutOfRange;
            }

            var offset = time - clock.GetElapsedTime(_origin).TotalSeconds;
            if (_candidates.Count > 0)
            {
                var first = _candidates[0];
                var last = _candidates[^1];
                var consistent = boots == first.Boots && time >= last.Time && Math.Abs(offset - first.Offset) <= RelearnToleranceSeconds
                    && !_candidates.Exists(c => c.MessageId == messageId);
                if (!consistent)
                {
                    _candidates.Clear();
                }
            }
            _candidates.Add((messageId, boots, time, offset));
            if (_candidates.Count < RelearnAfter)
            {
                return abandoned ? SenderVerdict.Abandoned : verdict == Timeliness.Latched ? SenderVerdict.Latched : SenderVerdict.Behind;
            }

            // What the old clock reads now (not less than its latest received): no trap of it can be from later.
            previous = (ourBoots, ourTime);
            _abandoned = _abandoned is { } older && Compare(older, previous) > 0 ? older : previous;
            _clock.Force(boots, time);
            _candidates.Clear();
            return SenderVerdict.Relearned;
        }
    }

    private static int Compare((long Boots, long Time) a, (long Boots, long Time) b) =>
        a.Boots != b.Boots ? a.Boots.CompareTo(b.Boots) : a.Time.CompareTo(b.Time);
}
