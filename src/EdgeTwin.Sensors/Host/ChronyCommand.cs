using System.Buffers.Binary;
using System.Globalization;
using System.Net;

namespace EdgeTwin.Sensors.Host;

/// <summary>chronyd's leap status (its <c>tracking</c> report).</summary>
public enum ChronyLeap
{
    Normal = 0,
    InsertSecond = 1,
    DeleteSecond = 2,

    /// <summary>chronyd has not synchronised the clock (no selectable source yet, or none left).</summary>
    Unsynchronised = 3,
}

/// <summary>What chronyd's <c>tracking</c> report says of the system clock (chronyc <c>tracking</c>).</summary>
/// <param name="RefId">The reference's id: an IPv4 address, a hash of an IPv6 one, a refclock's name; 0 without a reference; 0x7F7F0101 for <c>local</c>.</param>
/// <param name="Address">The reference's address, null for a refclock, <c>local</c> or none.</param>
/// <param name="Stratum">chronyd's stratum (0 while unsynchronised, 16 is unsynchronised too).</param>
/// <param name="Leap">The leap status; <see cref="ChronyLeap.Unsynchronised"/> until chronyd has synchronised the clock.</param>
/// <param name="RefTime">When the clock was last updated from the reference, null when never.</param>
/// <param name="CorrectionSeconds">chronyd's correction of the system clock now: positive when the clock is slow of NTP time (chronyc's "System time … slow"), negative fast; chronyd slews it away.</param>
/// <param name="LastOffsetSeconds">The offset measured at the last clock update.</param>
/// <param name="RootDispersionSeconds">The reference's accumulated error bound.</param>
public readonly record struct ChronyTracking(
    uint RefId, IPAddress? Address, int Stratum, ChronyLeap Leap, DateTimeOffset? RefTime, double CorrectionSeconds, double LastOffsetSeconds, double RootDispersionSeconds)
{
    /// <summary>chronyd's reference id for its own <c>local</c> reference (127.127.1.1).</summary>
    public const uint LocalRefId = 0x7F7F0101;

    /// <summary>The stratum NTP calls unsynchronised.</summary>
    public const int UnsynchronisedStratum = 16;

    /// <summary>chronyd has synchronised the clock to a reference: leap status not unsynchronised, a reference, stratum below 16.</summary>
    public bool Synchronized => Leap != ChronyLeap.Unsynchronised && RefId != 0 && Stratum < UnsynchronisedStratum;

    /// <summary>The reference as chronyc names it: its address, <c>local</c>, a refclock's name (<c>GPS</c>, <c>PPS</c>), or the id in hex.</summary>
    public string Reference
    {
        get
        {
            if (Address is not null)
            {
                return Address.ToString();
            }

            if (RefId == LocalRefId)
            {
                return "local";
            }

            Span<char> name = stackalloc char[4];
            var length = 0;
            for (var shift = 24; shift >= 0; shift -= 8)
            {
                var c = (char)((RefId >> shift) & 0xFF);
                if (c == '\0')
                {
                    break;
                }

                if (c is < ' ' or > '~')
                {
                    return RefId.ToString("X8", CultureInfo.InvariantCulture);
                }

                name[length++] = c;
            }

            return length == 0 ? RefId.ToString("X8", CultureInfo.InvariantCulture) : new string(name[..length]);
        }
    }
}

/// <summary>
/// A reply chronyd sent that cannot be used: too short, another protocol version, a reply to another request, an error
/// status. The only exception <see cref="ChronyCommand.ReadTrackingReply"/> throws.
/// </summary>
public sealed class ChronyReplyException(string message) : IOException(message);

/// <summary>
/// chronyd's command and monitoring protocol (cmdmon, UDP port 323), just the <c>tracking</c> request: protocol version 6,
/// big-endian, a 20-byte request header and a 28-byte reply header. The request is padded to the reply's length (104
/// bytes): chronyd drops or refuses shorter ones so that it cannot amplify spoofed traffic.
/// </summary>
public static class ChronyCommand
{
    /// <summary>chronyd's default command port.</summary>
    public const int DefaultPort = 323;

    /// <summary>PROTO_VERSION_NUMBER, chrony 2.x on (padding in requests; chrony 1.x spoke 5).</summary>
    public const byte ProtocolVersion = 6;

    /// <summary>REQ_TRACKING.</summary>
    public const ushort TrackingCommand = 33;

    /// <summary>RPY_TRACKING.</summary>
    public const ushort TrackingReply = 5;

    /// <summary>The request's length: its 20-byte header padded to the reply's length.</summary>
    public const int TrackingRequestLength = TrackingReplyLength;

    /// <summary>The reply's length: the 28-byte header and the 76-byte RPY_Tracking.</summary>
    public const int TrackingReplyLength = ReplyHeaderLength + 76;

    private const byte RequestType = 1; // PKT_TYPE_CMD_REQUEST
    private const byte ReplyType = 2; // PKT_TYPE_CMD_REPLY
    private const int ReplyHeaderLength = 28;
    private const uint NoHighSeconds = 0x7FFFFFFF; // TV_NOHIGHSEC: a 32-bit time_t sent no high word

    /// <summary>Writes the <c>tracking</c> request with <paramref name="sequence"/> (echoed by the reply) into <paramref name="buffer"/>; returns its length.</summary>
    public static int WriteTrackingRequest(Span<byte> buffer, uint sequence)
    {
        var request = buffer[..TrackingRequestLength];
        request.Clear(); // res1, res2, attempt 0, pad1, pad2 and the padding are zero
        request[0] = ProtocolVersion;
        request[1] = RequestType;
        BinaryPrimitives.WriteUInt16BigEndian(request[4..], TrackingCommand);
        BinaryPrimitives.WriteUInt32BigEndian(request[8..], sequence);
        return TrackingRequestLength;
    }

    /// <summary>
    /// Reads chronyd's reply to the <c>tracking</c> request sent with <paramref name="sequence"/>. Throws
    /// <see cref="ChronyReplyException"/>, saying what is wrong, for anything else; never another exception.
    /// </summary>
    public static ChronyTracking ReadTrackingReply(ReadOnlySpan<byte> reply, uint sequence)
    {
        if (reply.Length < ReplyHeaderLength)
        {
            throw Bad($"a reply of {reply.Length} bytes, shorter than the {ReplyHeaderLength}-byte reply header (not chronyd's command protocol)");
        }

        if (reply[0] != ProtocolVersion)
        {
            throw Bad($"protocol version {reply[0]}, this agent speaks {ProtocolVersion} (chrony 2.0 and later)");
        }

        if (reply[1] != ReplyType || reply[2] != 0 || reply[3] != 0)
        {
            throw Bad($"packet type {reply[1]} (reserved bytes {reply[2]}, {reply[3]}), not a command reply (2, 0, 0)");
        }

        var command = BinaryPrimitives.ReadUInt16BigEndian(reply[4..]);
        if (command != TrackingCommand)
        {
            throw Bad($"a reply to command {command}, not to tracking ({TrackingCommand})");
        }

        var echoed = BinaryPrimitives.ReadUInt32BigEndian(reply[16..]);
        if (echoed != sequence)
        {
            throw Bad($"a reply to sequence {echoed:x8}, not {sequence:x8} (a stale or foreign reply)");
        }

        var status = BinaryPrimitives.ReadUInt16BigEndian(reply[8..]);
        if (status != 0)
        {
            throw Bad(StatusText(status));
        }

        var code = BinaryPrimitives.ReadUInt16BigEndian(reply[6..]);
        if (code != TrackingReply)
        {
            throw Bad($"reply type {code}, not a tracking report ({TrackingReply})");
        }

        if (reply.Length < TrackingReplyLength)
        {
            throw Bad($"a tracking report of {reply.Length} bytes, shorter than its {TrackingReplyLength}");
        }

        var data = reply[ReplyHeaderLength..];
        var refId = BinaryPrimitives.ReadUInt32BigEndian(data);
        var address = Address(data.Slice(4, 20));
        var stratum = BinaryPrimitives.ReadUInt16BigEndian(data[24..]);
        var leap = BinaryPrimitives.ReadUInt16BigEndian(data[26..]);
        if (leap > (int)ChronyLeap.Unsynchronised)
        {
            throw Bad($"leap status {leap}, not one of 0-3");
        }

        var refTime = Time(data.Slice(28, 12));
        return new ChronyTracking(refId, address, stratum, (ChronyLeap)leap, refTime,
            Float(data[40..]), Float(data[44..]), Float(data[68..]));
    }

    /// <summary>
    /// chrony's 32-bit float: a 7-bit signed exponent over a 25-bit signed coefficient, value = coef × 2^(exp − 25)
    /// (UTI_FloatNetworkToHost). Every bit pattern is a finite number.
    /// </summary>
    public static double Float(ReadOnlySpan<byte> bytes)
    {
        var x = BinaryPrimitives.ReadUInt32BigEndian(bytes);
        var exp = (int)(x >> 25);
        if (exp >= 64)
        {
            exp -= 128;
        }

        var coef = (int)(x & 0x1FFFFFF);
        if (coef >= 1 << 24)
        {
            coef -= 1 << 25;
        }

        return Math.ScaleB(coef, exp - 25);
    }

    // IPAddr: a 16-byte union (in4 in its first 4 bytes, in6, or an id), family (0 unspec, 1 IPv4, 2 IPv6, 3 id), pad.
    private static IPAddress? Address(ReadOnlySpan<byte> ip) => BinaryPrimitives.ReadUInt16BigEndian(ip[16..]) switch
    {
        1 => new IPAddress(ip[..4]),
        2 => new IPAddress(ip[..16]),
        _ => null,
    };

    // Timespec: seconds high and low words, nanoseconds; 0 when chronyd never updated the clock.
    private static DateTimeOffset? Time(ReadOnlySpan<byte> ts)
    {
        var high = BinaryPrimitives.ReadUInt32BigEndian(ts);
        var seconds = (high == NoHighSeconds ? 0UL : (ulong)high << 32) | BinaryPrimitives.ReadUInt32BigEndian(ts[4..]);
        var nanoseconds = Math.Min(BinaryPrimitives.ReadUInt32BigEndian(ts[8..]), 999_999_999u);
        if (seconds == 0 && nanoseconds == 0)
        {
            return null;
        }

        if (seconds > (ulong)DateTimeOffset.MaxValue.ToUnixTimeSeconds())
        {
            throw Bad($"reference time {seconds} s after 1970, beyond year 9999");
        }

        return DateTimeOffset.FromUnixTimeSeconds((long)seconds).AddTicks(nanoseconds / 100);
    }

    private static string StatusText(ushort status) => status switch
    {
        1 => "status 1 (STT_FAILED): chronyd failed the request",
        2 => "status 2 (STT_UNAUTH): chronyd does not allow this command from this address (its cmdallow/cmddeny)",
        3 => "status 3 (STT_INVALID): chronyd does not know the tracking command",
        9 => "status 9 (STT_ACCESSDENIED): chronyd denies this address (its cmdallow/cmddeny)",
        10 => "status 10 (STT_NOHOSTACCESS): chronyd denies this address (its cmdallow/cmddeny)",
        18 => "status 18 (STT_BADPKTVERSION): chronyd speaks another protocol version",
        19 => "status 19 (STT_BADPKTLENGTH): chronyd found the request too short",
        _ => string.Create(CultureInfo.InvariantCulture, $"status {status}: chronyd refused the request"),
    };

    private static ChronyReplyException Bad(string what) => new(what);
}
