namespace EdgeTwin.Snmp;

/// <summary>Base of every error the SNMP library raises on purpose.</summary>
public class SnmpException : Exception
{
    public SnmpException() { }
    public SnmpException(string message) : base(message) { }
    public SnmpException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// Malformed bytes: the only exception the codec throws. Carries a copy of the offending packet and the
/// offset where decoding stopped, so a capture can be turned into a regression test.
/// </summary>
public sealed class SnmpProtocolException : SnmpException
{
    /// <summary>Largest packet kept for diagnostics (one UDP datagram).</summary>
    public const int MaxKeptBytes = 65_536;

    public SnmpProtocolException() { }
    public SnmpProtocolException(string message) : base(message) { }
    public SnmpProtocolException(string message, Exception inner) : base(message, inner) { }

    public SnmpProtocolException(string reason, ReadOnlySpan<byte> data, int offset)
        : base($"{reason} at offset {offset} of {data.Length}-byte packet")
    {
        Data = data.Length > MaxKeptBytes ? data[..MaxKeptBytes].ToArray() : data.ToArray();
        Offset = offset;
        Reason = reason;
    }

    public string Reason { get; } = "";

    /// <summary>The packet that failed to decode (a copy).</summary>
    public new ReadOnlyMemory<byte> Data { get; }

    /// <summary>Offset into <see cref="Data"/> where decoding failed.</summary>
    public int Offset { get; }
}

/// <summary>No response within the timeout after every retry.</summary>
public sealed class SnmpTimeoutException : SnmpException
{
    public SnmpTimeoutException() { }
    public SnmpTimeoutException(string message) : base(message) { }
    public SnmpTimeoutException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>The agent answered with a non-zero error-status.</summary>
public sealed class SnmpErrorStatusException : SnmpException
{
    public SnmpErrorStatusException() { }
    public SnmpErrorStatusException(string message) : base(message) { }
    public SnmpErrorStatusException(string message, Exception inner) : base(message, inner) { }

    public SnmpErrorStatusException(SnmpErrorStatus status, int index, string where)
        : base($"{where}: agent returned error-status {status} ({(int)status}) at index {index}")
    {
        Status = status;
        Index = index;
    }

    public SnmpErrorStatus Status { get; }
    public int Index { get; }
}

/// <summary>Socket-level failure (unreachable, address in use...), translated in one place.</summary>
public sealed class SnmpCommunicationException : SnmpException
{
    public SnmpCommunicationException() { }
    public SnmpCommunicationException(string message) : base(message) { }
    public SnmpCommunicationException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>What went wrong in SNMPv3 user-based security.</summary>
public enum UsmError
{
    /// <summary>usmStatsUnsupportedSecLevels: the user does not support the requested security level.</summary>
    UnsupportedSecurityLevel,
    /// <summary>usmStatsNotInTimeWindows: boots/time out of the window (after one re-sync).</summary>
    NotInTimeWindow,
    /// <summary>usmStatsUnknownUserNames: the agent has no such user.</summary>
    UnknownUserName,
    /// <summary>usmStatsUnknownEngineIDs: engine id unknown to the agent (discovery failed).</summary>
    UnknownEngineId,
    /// <summary>usmStatsWrongDigests: wrong authentication password or protocol.</summary>
    WrongDigest,
    /// <summary>usmStatsDecryptionErrors: wrong privacy password or protocol.</summary>
    DecryptionError,
    /// <summary>A response failed our own authentication check (wrong auth key on our side).</summary>
    ResponseAuthenticationFailed,
    /// <summary>A response could not be decrypted (wrong privacy password on our side).</summary>
    ResponseDecryptionFailed,
    /// <summary>The agent reported something else (see the message).</summary>
    OtherReport,
}

/// <summary>An SNMPv3 security failure, from a Report PDU's usmStats counter or our own checks.</summary>
public sealed class SnmpUsmException : SnmpException
{
    public SnmpUsmException() { }
    public SnmpUsmException(string message) : base(message) { }
    public SnmpUsmException(string message, Exception inner) : base(message, inner) { }

    public SnmpUsmException(UsmError error, string message) : base(message) => Error = error;

    public UsmError Error { get; }
}
