namespace EdgeTwin.Snmp.Client;

/// <summary>What RFC 3414 3.2.7(b) makes of an authenticated message's boots and time.</summary>
internal enum Timeliness
{
    InWindow,

    /// <summary>Boots lower than ours, or the same boots and a time more than 150 s behind our notion of it.</summary>
    Behind,

    /// <summary>Our notion of the agent's boots is 2147483647 (RFC 3414 2.2.2): no message of it is timely any more.</summary>
    Latched,

    /// <summary>Boots or time outside 0..2147483647 (net-snmp 5.9 wraps its boots to -2147483648 instead of latching).</summary>
    OutOfRange,
}

/// <summary>
/// A non-authoritative engine's notion of one authoritative engine (RFC 3414 2.3): its id, snmpEngineBoots, an
/// snmpEngineTime that runs on with our own monotonic clock between messages, and latestReceivedEngineTime.
/// </summary>
internal sealed class EngineClock(byte[] engineId, int boots, int time, TimeProvider clock)
{
    public const int MaxBoots = int.MaxValue;
    public const int WindowSeconds = 150;

    private readonly Lock _lock = new();
    private int _boots = boots;
    private int _time = time;
    private int _latestReceived = time;
    private long _syncedAt = clock.GetTimestamp();

    public byte[] EngineId { get; } = engineId;

    /// <summary>Our notion's boots and the latest time received under them (what a re-learn gives up).</summary>
    public (int Boots, int Time) LatestReceived
    {
        get
        {
            lock (_lock)
            {
                return (_boots, _latestReceived);
            }
        }
    }

    /// <summary>The boots and time to put in a request.</summary>
    public (int Boots, int Time) Now()
    {
        lock (_lock)
        {
            return (_boots, LocalTime());
        }
    }

    private int LocalTime() => (int)Math.Min(int.MaxValue, _time + (long)clock.GetElapsedTime(_syncedAt).TotalSeconds);

    /// <summary>
    /// RFC 3414 3.2.7(b) for an authenticated message: first take its boots and time when they are newer (boots greater,
    /// or the same boots and a time later than the latest received), then check it against the window.
    /// </summary>
    public Timeliness Accept(int boots, int time)
    {
        if (boots < 0 || time < 0)
        {
            return Timeliness.OutOfRange;
        }
        lock (_lock)
        {
            if (boots > _boots || (boots == _boots && time > _latestReceived))
            {
                Set(boots, time);
            }
            return _boots == MaxBoots ? Timeliness.Latched
                : boots < _boots || (boots == _boots && time < LocalTime() - WindowSeconds) ? Timeliness.Behind
                : Timeliness.InWindow;
        }
    }

    /// <summary>An unauthenticated notInTimeWindow Report's values: nothing to check them with, taken as they come (as before).</summary>
    public void Force(int boots, int time)
    {
        lock (_lock)
        {
            Set(boots, time);
        }
    }

    private void Set(int boots, int time)
    {
        _boots = boots;
        _time = time;
        _latestReceived = time;
        _syncedAt = clock.GetTimestamp();
    }

    /// <summary>Why a message of <paramref name="verdict"/> was refused, for the error.</summary>
    public string Explain(Timeliness verdict, int boots, int time)
    {
        var (ourBoots, ourTime) = Now();
        return verdict switch
        {
            Timeliness.Latched => $"the agent's snmpEngineBoots is {MaxBoots}, latched there (RFC 3414 2.2.2): no message is timely until the agent gets a new engine id (or its boots are reset) (engine {Convert.ToHexString(EngineId)})",
            Timeliness.OutOfRange => $"the agent sent snmpEngineBoots {boots}, snmpEngineTime {time}, outside 0..{MaxBoots} (net-snmp 5.9 wraps its boots past {MaxBoots}): reset its engine id or boots (engine {Convert.ToHexString(EngineId)})",
            _ => $"the agent's snmpEngineBoots {boots}, snmpEngineTime {time} are behind ours ({ourBoots}, {ourTime}) by more than {WindowSeconds} s even after a re-discovery (a replayed message, or an agent whose clock went back)",
        };
    }
}
