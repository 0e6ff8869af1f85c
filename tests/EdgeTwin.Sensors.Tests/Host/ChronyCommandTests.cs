using System.Buffers.Binary;
using System.Net;
using EdgeTwin.Sensors.Host;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace EdgeTwin.Sensors.Tests.Host;

/// <summary>
/// The tracking request and reply against bytes captured once between chronyc 4.3 and chronyd 4.3 (Debian 12) through a
/// UDP relay: the request chronyc sent, and chronyd's replies with no source, on its <c>local stratum 10</c> reference,
/// and synchronised to another chronyd serving NTP on 127.0.0.1 (values as chronyc printed them).
/// </summary>
public sealed class ChronyCommandTests
{
    private static byte[] Capture(string name) => File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Host", "Captures", name));

    [Fact]
    public void The_request_is_chronycs_byte_for_byte()
    {
        var request = new byte[200];
        Array.Fill(request, (byte)0xAA); // what WriteTrackingRequest does not write stays visible
        var length = ChronyCommand.WriteTrackingRequest(request, 0xbb38b731);
        Assert.Equal(104, length);
        Assert.Equal(Capture("chrony-tracking-request.bin"), request[..length]);
    }

    [Fact]
    public void A_chronyd_without_sources_is_unsynchronised()
    {
        var t = ChronyCommand.ReadTrackingReply(Capture("chrony-tracking-reply-unsynchronised.bin"), 0xc380cefa);
        Assert.Equal(0u, t.RefId);
        Assert.Null(t.Address);
        Assert.Equal(0, t.Stratum);
        Assert.Equal(ChronyLeap.Unsynchronised, t.Leap);
        Assert.Null(t.RefTime); // "Ref time (UTC)  : Thu Jan 01 00:00:00 1970"
        Assert.Equal(1.0, t.RootDispersionSeconds); // "Root dispersion : 1.000000000 seconds"
        Assert.False(t.Synchronized);
    }

    [Fact]
    public void A_chronyd_on_its_local_reference_is_synchronised()
    {
        var t = ChronyCommand.ReadTrackingReply(Capture("chrony-tracking-reply-local.bin"), 0xbb38b731);
        Assert.Equal(ChronyTracking.LocalRefId, t.RefId); // "Reference ID    : 7F7F0101 ()"
        Assert.Equal("local", t.Reference);
        Assert.Null(t.Address);
        Assert.Equal(10, t.Stratum);
        Assert.Equal(ChronyLeap.Normal, t.Leap);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_796_480_523).AddTicks(634_580_229 / 100), t.RefTime); // chronyc -c: 1796480523.634580229
        Assert.Equal(0.0, t.CorrectionSeconds);
        Assert.True(t.Synchronized);
    }

    [Fact]
    public void A_chronyd_synchronised_to_a_server_names_it_and_its_offsets()
    {
        // chronyc: Reference ID 7F000001 (localhost), Stratum 9, Ref time Sat Dec 05 14:25:31 2026, System time
        // 0.000000022 seconds slow of NTP time, Last offset +0.000000025 seconds, Root dispersion 0.000000810 seconds.
        var t = ChronyCommand.ReadTrackingReply(Capture("chrony-tracking-reply-server.bin"), 0xfb31ca8b);
        Assert.Equal(0x7F000001u, t.RefId);
        Assert.Equal(IPAddress.Loopback, t.Address);
        Assert.Equal("127.0.0.1", t.Reference);
        Assert.Equal(9, t.Stratum);
        Assert.Equal(ChronyLeap.Normal, t.Leap);
        Assert.Equal(new DateTimeOffset(2026, 12, 5, 14, 25, 31, TimeSpan.Zero), t.RefTime!.Value.AddTicks(-(t.RefTime.Value.Ticks % TimeSpan.TicksPerSecond)));
        Assert.Equal(0.000000022, t.CorrectionSeconds, 9); // positive: slow
        Assert.Equal(0.000000025, t.LastOffsetSeconds, 9);
        Assert.Equal(0.000000810, t.RootDispersionSeconds, 9);
        Assert.True(t.Synchronized);
    }

    [Theory]
    [InlineData(0x04800000u, 1.0)] // exponent 2, coefficient 2^23: chronyd's 1 s root delay while unsynchronised
    [InlineData(0x00000000u, 0.0)]
    [InlineData(0x04000000u, 0.0)] // a zero coefficient with any exponent
    [InlineData(0x05FFFFFFu, -1.0 / (1 << 23))] // coefficient −1, exponent 2: −2^(2−25)
    [InlineData(0x80000001u, 1.6155871338926322E-27)] // the smallest exponent (−64), coefficient 1: 2^−89
    [InlineData(0x81000000u, -2.710505431213761E-20)] // the most negative coefficient (−2^24) with it: −2^−65
    [InlineData(0x7EFFFFFFu, 4611685743549480960.0)] // exponent 63, coefficient 2^24 − 1: the largest value, 2^62 − 2^38
    public void Chronys_float_decodes_as_utility_float_network_to_host(uint wire, double expected)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, wire);
        Assert.Equal(expected, ChronyCommand.Float(bytes));
    }

    public static TheoryData<string, Func<byte[], byte[]>, string> BadReplies => new()
    {
        { "short", r => r[..20], "a reply of 20 bytes, shorter than the 28-byte reply header" },
        { "version", r => Set(r, 0, 5), "protocol version 5, this agent speaks 6" },
        { "request", r => Set(r, 1, 1), "packet type 1 (reserved bytes 0, 0), not a command reply" },
        { "command", r => Set16(r, 4, 14), "a reply to command 14, not to tracking (33)" },
        { "sequence", r => Set(r, 19, 0x30), "a reply to sequence bb38b730, not bb38b731 (a stale or foreign reply)" },
        { "unauth", r => Set16(r, 8, 2), "status 2 (STT_UNAUTH): chronyd does not allow this command from this address" },
        { "badlength", r => Set16(r, 8, 19), "status 19 (STT_BADPKTLENGTH)" },
        { "other status", r => Set16(r, 8, 77), "status 77: chronyd refused the request" },
        { "reply type", r => Set16(r, 6, 2), "reply type 2, not a tracking report (5)" },
        { "truncated", r => r[..100], "a tracking report of 100 bytes, shorter than its 104" },
        { "leap", r => Set16(r, 28 + 26, 4), "leap status 4, not one of 0-3" },
        { "ref time", r => Set(r, 28 + 28, 0x10), "reference time" },
    };

    [Theory]
    [MemberData(nameof(BadReplies))]
    public void A_reply_that_cannot_be_used_says_what_is_wrong(string what, Func<byte[], byte[]> spoil, string expected)
    {
        var reply = spoil(Capture("chrony-tracking-reply-local.bin"));
        var ex = Assert.Throws<ChronyReplyException>(() => ChronyCommand.ReadTrackingReply(reply, 0xbb38b731));
        Assert.True(ex.Message.Contains(expected, StringComparison.Ordinal), $"{what}: {ex.Message}");
    }

    [Property(MaxTest = 2000)]
    public Property Random_bytes_decode_or_throw_only_the_reply_exception(byte[] bytes, uint sequence, bool matching) =>
        Decodes(bytes, matching && bytes.Length >= 20 ? BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(16)) : sequence).ToProperty();

    [Property(MaxTest = 2000)]
    public Property Random_reports_behind_a_good_header_decode_or_throw_only_the_reply_exception(byte[] bytes, byte family, byte leap, bool cut)
    {
        // Past the header checks: the report's own fields (address, times, floats) on random bytes, the address family
        // and leap status mostly in range (random ones would stop the decoder at the leap check nearly every time).
        var reply = Capture("chrony-tracking-reply-local.bin");
        for (var i = 28; i < reply.Length; i++)
        {
            reply[i] = bytes.Length == 0 ? (byte)0 : bytes[i % bytes.Length];
        }

        BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(28 + 20), (ushort)(family % 5));
        BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(28 + 26), (ushort)(leap % 5));
        return Decodes(cut ? reply[..(28 + (bytes.Length % 76))] : reply, 0xbb38b731).ToProperty();
    }

    private static bool Decodes(byte[] reply, uint sequence)
    {
        try
        {
            var t = ChronyCommand.ReadTrackingReply(reply, sequence);
            _ = t.Reference;
            return double.IsFinite(t.CorrectionSeconds) && double.IsFinite(t.LastOffsetSeconds) && double.IsFinite(t.RootDispersionSeconds);
        }
        catch (ChronyReplyException)
        {
            return true;
        }
    }

    private static byte[] Set(byte[] reply, int offset, byte value)
    {
        reply[offset] = value;
        return reply;
    }

    private static byte[] Set16(byte[] reply, int offset, ushort value)
    {
        BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(offset), value);
        return reply;
    }
}
