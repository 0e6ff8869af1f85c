using System.Buffers.Binary;
using EdgeTwin.Modbus.Protocol;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace EdgeTwin.Modbus.Tests.Protocol;

public sealed class CodecProperties
{
    [Property]
    public bool Register_responses_round_trip(ushort[] values)
    {
        var regs = values.Take(ModbusPdu.MaxReadRegisters).ToArray();
        if (regs.Length == 0)
        {
            return true;
        }

        var buffer = new byte[ModbusPdu.MaxLength];
        int n = ModbusPdu.WriteReadRegistersResponse(buffer, ModbusFunctionCode.ReadInputRegisters, regs);
        var back = new ushort[regs.Length];
        ModbusPdu.ReadRegistersResponse(buffer.AsSpan(0, n), ModbusFunctionCode.ReadInputRegisters, regs.Length, back);
        return back.AsSpan().SequenceEqual(regs);
    }

    [Property]
    public bool Bit_responses_round_trip(bool[] values)
    {
        var bits = values.Take(ModbusPdu.MaxReadBits).ToArray();
        if (bits.Length == 0)
        {
            return true;
        }

        var buffer = new byte[ModbusPdu.MaxLength];
        int n = ModbusPdu.WriteReadBitsResponse(buffer, ModbusFunctionCode.ReadCoils, bits);
        var back = new bool[bits.Length];
        ModbusPdu.ReadBitsResponse(buffer.AsSpan(0, n), ModbusFunctionCode.ReadCoils, bits.Length, back);
        return back.AsSpan().SequenceEqual(bits);
    }

    [Property]
    public bool Write_multiple_registers_request_round_trips(ushort address, ushort[] values)
    {
        var regs = values.Take(ModbusPdu.MaxWriteRegisters).ToArray();
        if (regs.Length == 0 || address + regs.Length > 0x10000)
        {
            return true;
        }

        var buffer = new byte[ModbusPdu.MaxLength];
        int n = ModbusPdu.WriteWriteMultipleRegistersRequest(buffer, address, regs);
        var req = ModbusPdu.ParseRequest(buffer.AsSpan(0, n));
        var back = new ushort[req.Count];
        ModbusPdu.ReadRegisters(req.Data, back);
        return req.Address == address && back.AsSpan().SequenceEqual(regs);
    }

    [Property]
    public bool Rtu_frames_round_trip_and_any_single_bit_flip_is_caught(byte unit, byte[] payload, PositiveInt flip)
    {
        var pdu = payload.Take(ModbusPdu.MaxLength).ToArray();
        if (pdu.Length == 0)
        {
            return true;
        }

        var buffer = new byte[RtuFrame.MaxFrameLength];
        int n = RtuFrame.Write(buffer, unit, pdu);
        var frame = buffer[..n];
        bool roundTrips = RtuFrame.Read(frame, out byte u).SequenceEqual(pdu) && u == unit;
        int bit = flip.Get % (n * 8);
        frame[bit / 8] ^= (byte)(1 << (bit % 8));
        try
        {
            RtuFrame.Read(frame, out _);
            return false;
        }
        catch (ModbusProtocolException)
        {
            return roundTrips;
        }
    }

    [Property]
    public bool Mbap_frames_round_trip(ushort tid, byte unit, byte[] payload)
    {
        var pdu = payload.Take(ModbusPdu.MaxLength).ToArray();
        if (pdu.Length == 0)
        {
            return true;
        }

        var buffer = new byte[MbapFrame.MaxFrameLength];
        int n = MbapFrame.Write(buffer, tid, unit, pdu);
        var back = MbapFrame.Read(buffer.AsSpan(0, n), out var header);
        return back.SequenceEqual(pdu) && header.TransactionId == tid && header.UnitId == unit;
    }

    /// <summary>Decoders must never fail with anything but the protocol or device exception, whatever the bytes.</summary>
    [Property]
    public void Decoders_only_throw_protocol_or_device_exceptions(byte[] junk, byte count)
    {
        int n = Math.Max(1, (int)count);
        Check(() => ModbusPdu.ParseRequest(junk));
        Check(() => ModbusPdu.ThrowIfException(1, junk));
        Check(() => ModbusPdu.ReadRegistersResponse(junk, ModbusFunctionCode.ReadHoldingRegisters, Math.Min(n, 125), new ushort[125]));
        Check(() => ModbusPdu.ReadBitsResponse(junk, ModbusFunctionCode.ReadCoils, n, new bool[256]));
        Check(() => ModbusPdu.ReadDeviceIdentificationResponse(junk));
        Check(() => RtuFrame.Read(junk, out _));
        Check(() => RtuFrame.ExpectedResponseLength(junk));
        Check(() => MbapFrame.Read(junk, out _));

        static void Check(Action action)
        {
            try
            {
                action();
            }
            catch (ModbusProtocolException)
            {
            }
            catch (ModbusDeviceException)
            {
            }
        }
    }

    /// <summary>
    /// The RTU hunt over any bytes (line noise, with a valid frame somewhere or not) never throws, stays inside the buffer,
    /// finds only frames with a valid CRC, never calls a byte garbage past a frame it found, and finds a valid frame
    /// placed after noise.
    /// </summary>
    [Property]
    public bool Rtu_hunt_never_throws_and_finds_a_frame_behind_noise(byte[] noise, byte unit, ushort[] registers, byte[] sent)
    {
        var pdu = new byte[ModbusPdu.MaxLength];
        int n = ModbusPdu.WriteReadRegistersResponse(pdu, ModbusFunctionCode.ReadHoldingRegisters, registers.Take(100).ToArray());
        var frame = new byte[RtuFrame.MaxFrameLength];
        int f = RtuFrame.Write(frame, unit, pdu.AsSpan(0, n));
        byte[] noiseOnly = noise;
        byte[] withFrame = [.. noise, .. frame[..f]];
        foreach (var buffer in new[] { noiseOnly, withFrame })
        {
            bool found = RtuFrame.TryFindResponse(buffer, sent, out int start, out int length, out bool echo, out int garbage);
            if (garbage < 0 || garbage > buffer.Length || (found && (start < 0 || start + length > buffer.Length || garbage > start)))
            {
                return false;
            }

            if (found && !echo && Crc16.Compute(buffer.AsSpan(start, length - 2)) != BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(start + length - 2)))
            {
                return false;
            }
        }

        // Behind any noise the frame is found (or an earlier valid frame, or the echo, which the caller skips and hunts on).
        return RtuFrame.TryFindResponse(withFrame, sent, out _, out _, out _, out _);
    }

    [Fact]
    public void Device_identification_round_trips_for_generated_pages()
    {
        var gen = from count in Gen.Choose(0, 5)
                  from strings in Gen.ListOf(Gen.Elements("A", "ACME", "PM-1", "V2.11", "", "Power meter 3ph"), count)
                  from more in Gen.Elements(true, false)
                  select new DeviceIdentificationPage(ReadDeviceIdCode.Regular, 0x82, more, more ? (byte)4 : (byte)0,
                      strings.Select((s, i) => new KeyValuePair<byte, string>((byte)i, s)).ToList());
        Prop.ForAll(gen.ToArbitrary(), page =>
        {
            var buffer = new byte[ModbusPdu.MaxLength];
            int n = ModbusPdu.WriteDeviceIdentificationResponse(buffer, page);
            var back = ModbusPdu.ReadDeviceIdentificationResponse(buffer.AsSpan(0, n));
            return back.MoreFollows == page.MoreFollows && back.Objects.SequenceEqual(page.Objects);
        }).QuickCheckThrowOnFailure();
    }
}
