using EdgeTwin.Modbus.Protocol;

namespace EdgeTwin.Modbus.Tests.Protocol;

/// <summary>Frames from the examples in Modbus Application Protocol V1.1b3, section 6, in both directions.</summary>
public sealed class PduFixedFrameTests
{
    private static byte[] Hex(string s) => Convert.FromHexString(s.Replace(" ", "", StringComparison.Ordinal));

    private static byte[] Encode(Func<byte[], int> write)
    {
        var buffer = new byte[ModbusPdu.MaxLength];
        int n = write(buffer);
        return buffer[..n];
    }

    [Theory]
    [InlineData(ModbusFunctionCode.ReadCoils, 0x0013, 0x0013, "01 0013 0013")]
    [InlineData(ModbusFunctionCode.ReadDiscreteInputs, 0x00C4, 0x0016, "02 00C4 0016")]
    [InlineData(ModbusFunctionCode.ReadHoldingRegisters, 0x006B, 0x0003, "03 006B 0003")]
    [InlineData(ModbusFunctionCode.ReadInputRegisters, 0x0008, 0x0001, "04 0008 0001")]
    public void Read_requests_encode_and_decode(ModbusFunctionCode fc, ushort address, ushort count, string hex)
    {
        Assert.Equal(Hex(hex), Encode(b => ModbusPdu.WriteReadRequest(b, fc, address, count)));
        var req = ModbusPdu.ParseRequest(Hex(hex));
        Assert.Equal(fc, req.FunctionCode);
        Assert.Equal(address, req.Address);
        Assert.Equal(count, req.Count);
    }

    [Fact]
    public void Read_coils_response_spec_example()
    {
        // Coils 20..38: CD 6B 05
        var pdu = Hex("01 03 CD 6B 05");
        var bits = new bool[19];
        ModbusPdu.ReadBitsResponse(pdu, ModbusFunctionCode.ReadCoils, 19, bits);
        Assert.Equal([true, false, true, true, false, false, true, true], bits[..8]);
        Assert.Equal([true, true, false, true, false, true, true, false], bits[8..16]);
        Assert.Equal([true, false, true], bits[16..]);
        Assert.Equal(pdu, Encode(b => ModbusPdu.WriteReadBitsResponse(b, ModbusFunctionCode.ReadCoils, bits)));
    }

    [Fact]
    public void Read_discrete_inputs_response_spec_example()
    {
        var pdu = Hex("02 03 AC DB 35");
        var bits = new bool[22];
        ModbusPdu.ReadBitsResponse(pdu, ModbusFunctionCode.ReadDiscreteInputs, 22, bits);
        Assert.Equal(pdu, Encode(b => ModbusPdu.WriteReadBitsResponse(b, ModbusFunctionCode.ReadDiscreteInputs, bits)));
        Assert.False(bits[0]);
        Assert.True(bits[2]);
    }

    [Fact]
    public void Read_holding_registers_response_spec_example()
    {
        var pdu = Hex("03 06 022B 0000 0064");
        var regs = new ushort[3];
        ModbusPdu.ReadRegistersResponse(pdu, ModbusFunctionCode.ReadHoldingRegisters, 3, regs);
        Assert.Equal(new ushort[] { 555, 0, 100 }, regs);
        Assert.Equal(pdu, Encode(b => ModbusPdu.WriteReadRegistersResponse(b, ModbusFunctionCode.ReadHoldingRegisters, regs)));
    }

    [Fact]
    public void Read_input_registers_response_spec_example()
    {
        var pdu = Hex("04 02 000A");
        var regs = new ushort[1];
        ModbusPdu.ReadRegistersResponse(pdu, ModbusFunctionCode.ReadInputRegisters, 1, regs);
        Assert.Equal(10, regs[0]);
    }

    [Fact]
    public void Write_single_coil_request_and_echo()
    {
        var pdu = Hex("05 00AC FF00");
        Assert.Equal(pdu, Encode(b => ModbusPdu.WriteWriteSingleCoilRequest(b, 0xAC, true)));
        var req = ModbusPdu.ParseRequest(pdu);
        Assert.Equal(0xFF00, req.Count);
        ModbusPdu.CheckWriteResponse(pdu, ModbusFunctionCode.WriteSingleCoil, 0xAC, 0xFF00);
        Assert.Equal(Hex("05 00AC 0000"), Encode(b => ModbusPdu.WriteWriteSingleCoilRequest(b, 0xAC, false)));
    }

    [Fact]
    public void Write_single_register_request_and_echo()
    {
        var pdu = Hex("06 0001 0003");
        Assert.Equal(pdu, Encode(b => ModbusPdu.WriteWriteSingleRegisterRequest(b, 1, 3)));
        ModbusPdu.CheckWriteResponse(pdu, ModbusFunctionCode.WriteSingleRegister, 1, 3);
        Assert.Equal(pdu, Encode(b => ModbusPdu.WriteWriteResponse(b, ModbusFunctionCode.WriteSingleRegister, 1, 3)));
    }

    [Fact]
    public void Write_multiple_coils_spec_example()
    {
        // Coils 20..29 = CD 01
        bool[] values = [true, false, true, true, false, false, true, true, true, false];
        var pdu = Hex("0F 0013 000A 02 CD 01");
        Assert.Equal(pdu, Encode(b => ModbusPdu.WriteWriteMultipleCoilsRequest(b, 0x13, values)));
        var req = ModbusPdu.ParseRequest(pdu);
        Assert.Equal(10, req.Count);
        Assert.Equal(Hex("CD 01"), req.Data.ToArray());
        ModbusPdu.CheckWriteResponse(Hex("0F 0013 000A"), ModbusFunctionCode.WriteMultipleCoils, 0x13, 10);
    }

    [Fact]
    public void Write_multiple_registers_spec_example()
    {
        var pdu = Hex("10 0001 0002 04 000A 0102");
        Assert.Equal(pdu, Encode(b => ModbusPdu.WriteWriteMultipleRegistersRequest(b, 1, new ushort[] { 0x000A, 0x0102 })));
        var req = ModbusPdu.ParseRequest(pdu);
        Assert.Equal(ModbusFunctionCode.WriteMultipleRegisters, req.FunctionCode);
        Assert.Equal(Hex("000A 0102"), req.Data.ToArray());
        ModbusPdu.CheckWriteResponse(Hex("10 0001 0002"), ModbusFunctionCode.WriteMultipleRegisters, 1, 2);
    }

    [Fact]
    public void Read_write_multiple_registers_spec_example()
    {
        var pdu = Hex("17 0003 0006 000E 0003 06 00FF 00FF 00FF");
        Assert.Equal(pdu, Encode(b => ModbusPdu.WriteReadWriteMultipleRegistersRequest(b, 3, 6, 0x0E, new ushort[] { 0xFF, 0xFF, 0xFF })));
        var req = ModbusPdu.ParseRequest(pdu);
        Assert.Equal(3, req.Address);
        Assert.Equal(6, req.Count);
        Assert.Equal(0x0E, req.WriteAddress);
        Assert.Equal(3, req.WriteCount);

        var response = Hex("17 0C 00FE 0ACD 0001 0003 000D 00FF");
        var regs = new ushort[6];
        ModbusPdu.ReadRegistersResponse(response, ModbusFunctionCode.ReadWriteMultipleRegisters, 6, regs);
        Assert.Equal(new ushort[] { 0xFE, 0x0ACD, 1, 3, 0x0D, 0xFF }, regs);
    }

    [Fact]
    public void Exception_response_names_the_code()
    {
        var ex = Assert.Throws<ModbusDeviceException>(() => ModbusPdu.ThrowIfException(7, Hex("81 02")));
        Assert.Equal(ModbusExceptionCode.IllegalDataAddress, ex.ExceptionCode);
        Assert.Equal(ModbusFunctionCode.ReadCoils, ex.FunctionCode);
        Assert.Contains("ILLEGAL DATA ADDRESS", ex.Message, StringComparison.Ordinal);
        Assert.Equal(Hex("83 02"), Encode(b => ModbusPdu.WriteExceptionResponse(b, 0x03, ModbusExceptionCode.IllegalDataAddress)));
    }

    [Fact]
    public void Read_device_identification_both_directions()
    {
        var request = Hex("2B 0E 01 00");
        Assert.Equal(request, Encode(b => ModbusPdu.WriteReadDeviceIdentificationRequest(b, ReadDeviceIdCode.Basic, 0)));
        var req = ModbusPdu.ParseRequest(request);
        Assert.Equal(0x0E, req.MeiType);
        Assert.Equal(1, req.ReadDeviceIdCode);

        // "ACME" / "PM-1" / "V2.11", no more pages.
        var response = Hex("2B 0E 01 01 00 00 03 00 04 41434D45 01 04 504D2D31 02 05 56322E3131");
        var page = ModbusPdu.ReadDeviceIdentificationResponse(response);
        Assert.False(page.MoreFollows);
        Assert.Equal(["ACME", "PM-1", "V2.11"], page.Objects.Select(o => o.Value));
        Assert.Equal(response, Encode(b => ModbusPdu.WriteDeviceIdentificationResponse(b, page)));
    }

    [Theory]
    [InlineData("03 02")] // byte count says 2, no data
    [InlineData("03 04 0001")] // byte count says 4, 2 present
    [InlineData("03 02 0001 00")] // trailing byte
    [InlineData("04 02 0001")] // wrong function
    [InlineData("")]
    public void Malformed_register_responses_throw_with_bytes(string hex)
    {
        var pdu = Hex(hex);
        var ex = Assert.Throws<ModbusProtocolException>(() => ModbusPdu.ReadRegistersResponse(pdu, ModbusFunctionCode.ReadHoldingRegisters, 1, new ushort[1]));
        Assert.Equal(pdu, ex.Frame);
    }

    [Theory]
    [InlineData("83")] // exception without code
    [InlineData("83 02 00")] // exception too long
    public void Malformed_exception_responses_throw(string hex) =>
        Assert.Throws<ModbusProtocolException>(() => ModbusPdu.ThrowIfException(1, Hex(hex)));

    [Theory]
    [InlineData("03 0000")]
    [InlineData("10 0001 0002 04 000A")]
    [InlineData("17 0003 0006 000E 0003 06 00FF")]
    [InlineData("2B 0E 01")]
    public void Truncated_requests_throw(string hex) =>
        Assert.Throws<ModbusProtocolException>(() => ModbusPdu.ParseRequest(Hex(hex)));

    [Fact]
    public void Device_identification_object_past_end_throws() =>
        Assert.Throws<ModbusProtocolException>(() => ModbusPdu.ReadDeviceIdentificationResponse(Hex("2B 0E 01 01 00 00 01 00 09 41")));

    [Fact]
    public void Write_echo_mismatch_throws() =>
        Assert.Throws<ModbusProtocolException>(() => ModbusPdu.CheckWriteResponse(Hex("06 0001 0004"), ModbusFunctionCode.WriteSingleRegister, 1, 3));

    [Fact]
    public void Quantity_limits_are_enforced_when_encoding()
    {
        var buffer = new byte[ModbusPdu.MaxLength];
        Assert.Throws<ArgumentOutOfRangeException>(() => ModbusPdu.WriteReadRequest(buffer, ModbusFunctionCode.ReadHoldingRegisters, 0, 126));
        Assert.Throws<ArgumentOutOfRangeException>(() => ModbusPdu.WriteReadRequest(buffer, ModbusFunctionCode.ReadCoils, 0, 2001));
        Assert.Throws<ArgumentOutOfRangeException>(() => ModbusPdu.WriteReadRequest(buffer, ModbusFunctionCode.ReadCoils, 0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => ModbusPdu.WriteReadRequest(buffer, ModbusFunctionCode.ReadHoldingRegisters, 65530, 10));
        Assert.Equal(5, ModbusPdu.WriteReadRequest(buffer, ModbusFunctionCode.ReadCoils, 0, 2000));
        Assert.Equal(5, ModbusPdu.WriteReadRequest(buffer, ModbusFunctionCode.ReadHoldingRegisters, 65535, 1));
    }
}
