using EdgeTwin.Modbus.Protocol;

namespace EdgeTwin.Modbus.Tests.Protocol;

public sealed class FramingTests
{
    private static byte[] Hex(string s) => Convert.FromHexString(s.Replace(" ", "", StringComparison.Ordinal));

    [Theory]
    [InlineData("313233343536373839", 0x4B37)] // CRC catalogue check value for CRC-16/MODBUS
    [InlineData("11 03 006B 0003", 0x8776)] // Serial line guide example: sent as 76 87
    [InlineData("01 03 0000 000A", 0xCDC5)] // sent as C5 CD
    public void Crc16_known_vectors(string hex, int crc) => Assert.Equal((ushort)crc, Crc16.Compute(Hex(hex)));

    [Fact]
    public void Rtu_frame_both_directions()
    {
        var frame = Hex("11 03 006B 0003 76 87");
        var buffer = new byte[RtuFrame.MaxFrameLength];
        int n = RtuFrame.Write(buffer, 0x11, Hex("03 006B 0003"));
        Assert.Equal(frame, buffer[..n]);
        var pdu = RtuFrame.Read(frame, out byte unit);
        Assert.Equal(0x11, unit);
        Assert.Equal(Hex("03 006B 0003"), pdu.ToArray());
        Assert.Equal(8, RtuFrame.ExpectedRequestLength(frame));
    }

    [Fact]
    public void Rtu_frame_with_bad_crc_throws_carrying_the_bytes()
    {
        var frame = Hex("11 03 006B 0003 76 88");
        var ex = Assert.Throws<ModbusProtocolException>(() => RtuFrame.Read(frame, out _));
        Assert.Equal(frame, ex.Frame);
        Assert.Contains("CRC", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("11", 0)]
    [InlineData("11 03", 0)]
    [InlineData("11 03 06", 11)]
    [InlineData("11 83", 5)]
    [InlineData("11 10 0001", 8)]
    [InlineData("11 05", 8)]
    [InlineData("11 2B 0E 01 01 00 00 02 00 03", 0)]
    [InlineData("11 2B 0E 01 01 00 00 02 00 03 414243 01", 0)]
    [InlineData("11 2B 0E 01 01 00 00 02 00 03 414243 01 01", 18)]
    public void Rtu_expected_response_length(string hex, int expected) =>
        Assert.Equal(expected, RtuFrame.ExpectedResponseLength(Hex(hex)));

    [Fact]
    public void Rtu_response_with_unknown_function_throws() =>
        Assert.Throws<ModbusProtocolException>(() => RtuFrame.ExpectedResponseLength(Hex("01 41 00")));

    [Theory]
    [InlineData("01 0F 0013 000A 02", 11)]
    [InlineData("01 10 0001 0002 04", 13)]
    [InlineData("01 17 0003 0006 000E 0003 06", 19)]
    [InlineData("01 10 0001", 0)]
    [InlineData("01 2B", 7)]
    [InlineData("01 41", -1)]
    public void Rtu_expected_request_length(string hex, int expected) =>
        Assert.Equal(expected, RtuFrame.ExpectedRequestLength(Hex(hex)));

    [Fact]
    public void Mbap_frame_both_directions()
    {
        var frame = Hex("0001 0000 0006 11 03 006B 0003");
        var buffer = new byte[MbapFrame.MaxFrameLength];
        int n = MbapFrame.Write(buffer, 1, 0x11, Hex("03 006B 0003"));
        Assert.Equal(frame, buffer[..n]);
        var pdu = MbapFrame.Read(frame, out var header);
        Assert.Equal(new MbapHeader(1, 0x11, 5), header);
        Assert.Equal(Hex("03 006B 0003"), pdu.ToArray());
    }

    [Theory]
    [InlineData("0001 0001 0006 11")] // protocol id 1
    [InlineData("0001 0000 0001 11")] // no PDU
    [InlineData("0001 0000 00FF 11")] // longer than 253 + 1
    [InlineData("0001 0000")] // short header
    public void Mbap_header_rejects_malformed(string hex) =>
        Assert.Throws<ModbusProtocolException>(() => MbapFrame.ReadHeader(Hex(hex)));

    [Fact]
    public void Mbap_frame_length_mismatch_throws() =>
        Assert.Throws<ModbusProtocolException>(() => MbapFrame.Read(Hex("0001 0000 0006 11 03 006B 00"), out _));

    // Answer of unit 1 to "01 03 0000 0002": 1000, 1001.
    private const string Answer = "01 03 04 03E8 03E9 BB 3D";

    [Theory]
    [InlineData(Answer, 0, 9, 0)]
    [InlineData("00 FF 13 37 AA " + Answer, 5, 9, 5)] // line noise before the answer
    [InlineData("01 03 04 03E8 03E9 BB 3E " + Answer, 9, 9, 3)] // a garbled copy (bad CRC), then the answer
    [InlineData("09 03 04 03E8 03E9 32 FD " + Answer, 0, 9, 0)] // another unit's valid frame comes first: the caller discards it
    public void Rtu_response_is_found_past_noise(string hex, int start, int length, int garbage)
    {
        Assert.True(RtuFrame.TryFindResponse(Hex(hex), default, out int s, out int n, out bool echo, out int g));
        Assert.Equal((start, length, false), (s, n, echo));
        Assert.True(g <= s);
        if (start == 0)
        {
            Assert.Equal(garbage, g);
        }
    }

    [Fact]
    public void Rtu_echo_of_the_request_is_told_from_the_answer()
    {
        var sent = Hex("01 03 0000 0002 C4 0B");
        Assert.True(RtuFrame.TryFindResponse(Hex("01 03 0000 0002 C4 0B " + Answer), sent, out int s, out int n, out bool echo, out _));
        Assert.Equal((0, 8, true), (s, n, echo));

        // Half an echo: wait for the rest, nothing is garbage yet.
        Assert.False(RtuFrame.TryFindResponse(Hex("01 03 0000"), sent, out _, out _, out _, out int garbage));
        Assert.Equal(0, garbage);
    }

    [Fact]
    public void Rtu_noise_alone_is_garbage_up_to_what_may_still_become_a_frame()
    {
        // 00 41 and FF 41: no function 0x41; 41 FF 41 01 03 is no exception answer (its CRC fails); 41 01 03 C8 may be
        // the start of a coil answer still arriving.
        Assert.False(RtuFrame.TryFindResponse(Hex("00 41 FF 41 01 03 C8"), default, out _, out _, out _, out int garbage));
        Assert.Equal(3, garbage);
    }
}
