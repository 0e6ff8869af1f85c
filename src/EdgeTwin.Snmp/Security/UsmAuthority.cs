using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using EdgeTwin.Snmp.Messages;

namespace EdgeTwin.Snmp.Security;

/// <summary>Outcome of checking an incoming v3 message.</summary>
/// <param name="Detail">For a rejection, what in the message was wrong beyond <paramref name="Error"/> (for the log).</param>
/// <param name="Relearned">Set when this trap made the receiver re-learn its sender's engine clock (for a warning).</param>
public readonly record struct UsmIncoming(SnmpMessage? Message, SnmpV3User? User, byte[]? Report, UsmError? Error, string? Detail = null, SenderClockRelearned? Relearned = null)
{
    public bool Accepted => Message is not null && Error is null;
}

/// <summary>A trap sender's engine clock went back and was re-learnt: the notion given up and the one taken.</summary>
public sealed record SenderClockRelearned(string EngineId, int OldBoots, int OldTime, int NewBoots, int NewTime, int Traps);

/// <summary>
/// The authoritative side of USM (an agent, or a receiver of informs): owns an engine id, boots and time; answers
/// discovery; checks user, level, digest, time window and privacy in the RFC 3414 section 3.2 order, producing the
/// matching usmStats Report for each failure.
/// </summary>
public sealed class UsmAuthority
{
    private readonly Dictionary<string, SnmpV3User> _users;
    private readonly long[] _stats = new long[7];
    private long _startedAt = Stopwatch.GetTimestamp();

    // Our notion of each trap sender's engine clock (RFC 3414 2.3), learned from its authenticated traps.
    private readonly Dictionary<string, TrapSenderClock> _senders = new(StringComparer.Ordinal);
    private readonly TimeProvider _clock;

    /// <summary>Trap senders whose clock is kept; past this, the one heard from least recently is forgotten.</summary>
    public const int MaxSenders = 4096;

    public UsmAuthority(byte[]? engineId, IEnumerable<SnmpV3User> users, int boots = 1, TimeProvider? clock = null)
    {
        _clock = clock ?? TimeProvider.System;
        EngineId = engineId ?? NewEngineId();
        if (EngineId.Length is < 5 or > 32)
        {
            throw new ArgumentException($"engine id must be 5..32 octets, got {EngineId.Length}", nameof(engineId));
        }
        _users = users.ToDictionary(u => u.Name, StringComparer.Ordinal);
        Boots = boots;
    }

    /// <summary>An RFC 3411 engine id: enterprise 8072 (net-snmp's, as its agents use), format 5 (octets), 8 random octets.</summary>
    public static byte[] NewEngineId()
    {
        var id = new byte[13];
        id[0] = 0x80;
        id[1] = 0x00;
        id[2] = 0x1f;
        id[3] = 0x88;
        id[4] = 0x05;
        RandomNumberGenerator.Fill(id.AsSpan(5));
        return id;
    }

    public byte[] EngineId { get; }
    public int Boots { get; private set; }
    public int EngineTime => (int)Stopwatch.GetElapsedTime(Interlocked.Read(ref _startedAt)).TotalSeconds;
    public IReadOnlyCollection<SnmpV3User> Users => _users.Values;

    /// <summary>The count of one usmStats counter (<see cref="Usm.UsmStatsNotInTimeWindows"/>, …) since start.</summary>
    public long StatCount(Oid usmStatsCounter) => Interlocked.Read(ref _stats[(int)usmStatsCounter[^2]]);

    /// <summary>Simulates a restart: boots + 1, time back to 0 (managers must re-sync).</summary>
    public void Reboot()
    {
        Boots++;
        Interlocked.Exchange(ref _startedAt, Stopwatch.GetTimestamp());
    }

    /// <summary>Checks a request addressed to this engine.</summary>
    public UsmIncoming ProcessAuthoritative(ReadOnlySpan<byte> packet, SnmpMessage msg)
    {
        var usm = msg.Usm;
        if (!usm.EngineId.AsSpan().SequenceEqual(EngineId))
        {
            return Fail(msg, UsmError.UnknownEngineId, Usm.UsmStatsUnknownEngineIds, null, authenticated: false);
        }
        var user = FindUser(usm.UserName);
        if (user is null)
        {
            return Fail(msg, UsmError.UnknownUserName, Usm.UsmStatsUnknownUserNames, null, authenticated: false);
        }
        if (!LevelMatches(msg.Flags, user))
        {
            return Fail(msg, UsmError.UnsupportedSecurityLevel, Usm.UsmStatsUnsupportedSecLevels, null, authenticated: false);
        }
        if ((msg.Flags & V3Flags.Auth) != 0)
        {
            if (!Usm.VerifyAuthentication(packet, user, EngineId))
            {
                return Fail(msg, UsmError.WrongDigest, Usm.UsmStatsWrongDigests, null, authenticated: false);
            }
            var now = EngineTime;
            if (usm.EngineBoots != Boots || Math.Abs((long)usm.EngineTime - now) > Usm.TimeWindowSeconds)
            {
                return Fail(msg, UsmError.NotInTimeWindow, Usm.UsmStatsNotInTimeWindows, user, authenticated: true);
            }
        }
        if (!Usm.TryDecrypt(msg, user, out _))
        {
            return Fail(msg, UsmError.DecryptionError, Usm.UsmStatsDecryptionErrors, user, authenticated: false, Usm.KeyExtensionHint(user));
        }
        return new UsmIncoming(msg, user, null, null);
    }

    /// <summary>Checks a message from another authoritative engine (an SNMPv3 trap): keys are localized to the sender's engine id.</summary>
    public UsmIncoming ProcessNonAuthoritative(ReadOnlySpan<byte> packet, SnmpMessage msg)
    {
        var user = FindUser(msg.Usm.UserName);
        if (user is null)
        {
            return new UsmIncoming(null, null, null, UsmError.UnknownUserName);
        }
        if (!LevelMatches(msg.Flags, user))
        {
            return new UsmIncoming(null, user, null, UsmError.UnsupportedSecurityLevel);
        }
        if ((msg.Flags & V3Flags.Auth) != 0)
        {
            if (!Usm.VerifyAuthentication(packet, user, msg.Usm.EngineId))
            {
                return new UsmIncoming(null, user, null, UsmError.WrongDigest);
            }

            var (late, relearnt) = SenderTimeliness(msg.Usm.EngineId, msg.MessageId, msg.Usm.EngineBoots, msg.Usm.EngineTime);
            if (late is not null)
            {
                Interlocked.Increment(ref _stats[(int)Usm.UsmStatsNotInTimeWindows[^2]]);
                SnmpMetrics.UsmErrors.Add(1, new KeyValuePair<string, object?>("kind", nameof(UsmError.NotInTimeWindow)));
                return new UsmIncoming(null, user, null, UsmError.NotInTimeWindow, late);
            }
            if (!Usm.TryDecrypt(msg, user, out _))
            {
                return new UsmIncoming(null, user, null, UsmError.DecryptionError, Usm.KeyExtensionHint(user), relearnt);
            }
            return new UsmIncoming(msg, user, null, null, null, relearnt);
        }
        if (!Usm.TryDecrypt(msg, user, out _))
        {
            return new UsmIncoming(null, user, null, UsmError.DecryptionError, Usm.KeyExtensionHint(user));
        }
        return new UsmIncoming(msg, user, null, null);
    }

    /// <summary>
    /// RFC 3414 3.2.7(b) for an authenticated trap: the sender is the authoritative engine, so its boots and time are
    /// checked against our notion of its clock, learned from its first trap and running on with ours. Null when timely,
    /// else why not. Regression: v3 traps had no time window, so a captured authenticated trap (a UPS "on battery", a
    /// door contact) could be replayed at any later time and raised as new. Regression: a sender whose clock went back
    /// without its boots rising was refused until the agent restarted; now re-learnt after consistent traps
    /// (<see cref="TrapSenderClock"/>).
    /// </summary>
    private (string? Late, SenderClockRelearned? Relearned) SenderTimeliness(byte[] engineId, int messageId, int boots, int time)
    {
        var key = Convert.ToHexString(engineId);
        TrapSenderClock clock;
        lock (_senders)
        {
            if (!_senders.Remove(key, out clock!))
            {
                if (_senders.Count >= MaxSenders)
                {
                    _senders.Remove(_senders.Keys.First()); // insertion order: the least recently heard
                }

                clock = new TrapSenderClock(engineId, Math.Max(0, boots), Math.Max(0, time), _clock);
            }

            _senders[key] = clock; // re-added: the most recently heard goes last
        }

        var (ourBoots, ourTime) = clock.Now();
        var verdict = clock.Accept(messageId, boots, time, out var previous);
        return verdict switch
        {
            SenderVerdict.Timely => (null, null),
            SenderVerdict.Relearned => (null, new SenderClockRelearned(key, previous.Boots, previous.Time, boots, time, TrapSenderClock.RelearnAfter)),
            SenderVerdict.Latched => ($"the sender's snmpEngineBoots is {Client.EngineClock.MaxBoots}, latched there (RFC 3414 2.2.2): none of its traps is timely until it gets a new engine id or {TrapSenderClock.RelearnAfter} consistent traps with lower boots re-learn its clock (engine {key})", null),
            SenderVerdict.OutOfRange => ($"the trap carries snmpEngineBoots {boots}, snmpEngineTime {time}, outside 0..{Client.EngineClock.MaxBoots}: reset the sender's engine boots (engine {key})", null),
            SenderVerdict.Abandoned => ($"the trap's snmpEngineBoots {boots}, snmpEngineTime {time} belong to the clock the sender had before it went back (re-learnt since; now {ourBoots}, {ourTime}): a replayed trap, unless {TrapSenderClock.RelearnAfter} consistent ones re-learn it (engine {key})", null),
            _ => ($"the trap's snmpEngineBoots {boots}, snmpEngineTime {time} are behind what the sender's earlier traps make it now ({ourBoots}, {ourTime}) by more than {Client.EngineClock.WindowSeconds} s: a replayed trap, or a sender whose engine time went back without its boots rising (its clock is re-learnt after {TrapSenderClock.RelearnAfter} consecutive authenticated traps on one new clock) (engine {key})", null),
        };
    }

    /// <summary>Encodes a response to an accepted request at the request's level.</summary>
    public byte[] EncodeResponse(SnmpMessage request, SnmpV3User? user, SnmpPdu response)
    {
        var msg = new SnmpMessage
        {
            Version = SnmpVersion.V3,
            MessageId = request.MessageId,
            MaxSize = 65507,
            Flags = request.Flags & (V3Flags.Auth | V3Flags.Priv),
            Pdu = response,
            ContextEngineId = request.ContextEngineId.Length > 0 ? request.ContextEngineId : EngineId,
            ContextName = request.ContextName,
        };
        return Usm.Encode(msg, user, EngineId, Boots, EngineTime);
    }

    private SnmpV3User? FindUser(byte[] name) =>
        name.Length > 0 && _users.TryGetValue(Encoding.UTF8.GetString(name), out var u) ? u : null;

    /// <summary>The request must come at exactly the user's level (stricter than RFC 3414, which leaves lower levels to VACM).</summary>
    private static bool LevelMatches(V3Flags flags, SnmpV3User user)
    {
        var level = (flags & V3Flags.Priv) != 0 ? SnmpSecurityLevel.AuthPriv
            : (flags & V3Flags.Auth) != 0 ? SnmpSecurityLevel.AuthNoPriv : SnmpSecurityLevel.NoAuthNoPriv;
        return level == user.Level;
    }

    private UsmIncoming Fail(SnmpMessage msg, UsmError error, Oid counter, SnmpV3User? user, bool authenticated, string? detail = null)
    {
        var count = Interlocked.Increment(ref _stats[(int)counter[^2]]);
        SnmpMetrics.UsmErrors.Add(1, new KeyValuePair<string, object?>("kind", error.ToString()));
        if ((msg.Flags & V3Flags.Reportable) == 0)
        {
            return new UsmIncoming(null, user, null, error, detail);
        }
        var requestId = msg.Pdu?.RequestId ?? 0;
        var report = new SnmpPdu(PduType.Report, requestId, [new VarBind(counter, SnmpValue.Counter32((uint)count))]);
        var reply = new SnmpMessage
        {
            Version = SnmpVersion.V3,
            MessageId = msg.MessageId,
            Flags = authenticated ? V3Flags.Auth : V3Flags.None,
            Pdu = report,
            ContextEngineId = EngineId,
            ContextName = msg.Pdu is null ? [] : msg.ContextName,
        };
        var bytes = Usm.Encode(reply, authenticated ? user : null, EngineId, Boots, EngineTime);
        return new UsmIncoming(null, user, bytes, error, detail);
    }
}
