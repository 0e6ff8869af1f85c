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
}
