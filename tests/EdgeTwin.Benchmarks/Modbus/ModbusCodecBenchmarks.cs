using BenchmarkDotNet.Attributes;
using EdgeTwin.Modbus.Data;
using EdgeTwin.Modbus.Protocol;

namespace EdgeTwin.Benchmarks.Modbus;

/// <summary>Codec cost per frame: encode a request, decode a full 125-register response, MBAP and RTU (with CRC).</summary>
[MemoryDiagnoser]
public class ModbusCodecBenchmarks
{
    private readonly byte[] _buffer = new byte[RtuFrame.MaxFrameLength];
    private readonly ushort[] _registers = new ushort[125];
    private byte[] _mbapResponse = [];
    private byte[] _rtuResponse = [];

    [GlobalSetup]
    public void Setup()
    {
        var values = Enumerable.Range(0, 125).Select(i => (ushort)(i * 517)).ToArray();
        var pdu = new byte[ModbusPdu.MaxLength];
        int n = ModbusPdu.WriteReadRegistersResponse(pdu, ModbusFunctionCode.ReadHoldingRegisters, values);
        _mbapResponse = new byte[MbapFrame.MaxFrameLength];
        _mbapResponse = _mbapResponse[..MbapFrame.Write(_mbapResponse, 7, 1, pdu.AsSpan(0, n))];
        _rtuResponse = new byte[RtuFrame.MaxFrameLength];
        _rtuResponse = _rtuResponse[..RtuFrame.Write(_rtuResponse, 1, pdu.AsSpan(0, n))];

        // Each benchmark runs in its own process: the float decode reads _registers, which only a decode fills (all zeros
        // otherwise). Both decodes must give back the values, which also fills them for the float benchmark.
        if (DecodeResponse125_Rtu() != values[124] || !_registers.AsSpan().SequenceEqual(values) || DecodeResponse125_Mbap() != values[124] || !_registers.AsSpan().SequenceEqual(values))
        {
            throw new InvalidOperationException("ModbusCodec: the 125-register responses do not decode to the registers written");
        }

        if (EncodeReadRequest_Mbap() != 12 || EncodeReadRequest_Rtu() != 8)
        {
            throw new InvalidOperationException($"ModbusCodec: read requests encode to {EncodeReadRequest_Mbap()} (MBAP) and {EncodeReadRequest_Rtu()} (RTU) bytes, not 12 and 8");
        }
    }

    [Benchmark]
    public int EncodeReadRequest_Mbap()
    {
        Span<byte> pdu = stackalloc byte[5];
        ModbusPdu.WriteReadRequest(pdu, ModbusFunctionCode.ReadHoldingRegisters, 100, 40);
        return MbapFrame.Write(_buffer, 1, 1, pdu);
    }

    [Benchmark]
    public int EncodeReadRequest_Rtu()
    {
        Span<byte> pdu = stackalloc byte[5];
        ModbusPdu.WriteReadRequest(pdu, ModbusFunctionCode.ReadHoldingRegisters, 100, 40);
        return RtuFrame.Write(_buffer, 1, pdu);
    }

    [Benchmark]
    public ushort DecodeResponse125_Mbap()
    {
        var pdu = MbapFrame.Read(_mbapResponse, out _);
        ModbusPdu.ThrowIfException(1, pdu);
        ModbusPdu.ReadRegistersResponse(pdu, ModbusFunctionCode.ReadHoldingRegisters, 125, _registers);
        return _registers[124];
    }

    [Benchmark]
    public ushort DecodeResponse125_Rtu()
    {
        var pdu = RtuFrame.Read(_rtuResponse, out _);
        ModbusPdu.ThrowIfException(1, pdu);
        ModbusPdu.ReadRegistersResponse(pdu, ModbusFunctionCode.ReadHoldingRegisters, 125, _registers);
        return _registers[124];
    }

    [Benchmark]
    public double DecodeFloat32x62_CDAB()
    {
        double sum = 0;
        for (int i = 0; i + 1 < 125; i += 2)
        {
            sum += ModbusValueCodec.DecodeNumber(_registers.AsSpan(i, 2), ModbusDataType.Float32, ModbusWordOrder.CDAB);
        }

        return sum;
    }
}
