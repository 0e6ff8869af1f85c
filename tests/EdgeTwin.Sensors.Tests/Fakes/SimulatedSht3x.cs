using System.Buffers.Binary;
using System.Device.I2c;
using EdgeTwin.Sensors.I2c;

namespace EdgeTwin.Sensors.Tests.Fakes;

/// <summary>
/// An SHT3x (datasheet SHT3x-DIS §4): 16-bit big-endian commands; a single-shot command (0x2400/0B/16, no clock
/// stretching) starts a conversion whose 6-byte answer is T, CRC, RH, CRC; a read with no finished measurement is
/// NACKed; soft reset 0x30A2; status 0xF32D answers 2 bytes + CRC. <see cref="CorruptNextFrame"/> flips a bit on the
/// wire after the CRC was computed.
/// </summary>
internal sealed class SimulatedSht3x : SimulatedI2cDevice
{
    private byte[]? _pending;
    private byte[]? _status;

    public SimulatedSht3x(int bus = 1, int address = 0x44)
        : base(new I2cConnectionSettings(bus, address))
    {
    }

    public double Celsius { get; set; } = 23.0;

    public double RelativeHumidity { get; set; } = 40.0;

    public bool CorruptNextFrame { get; set; }

    public int Resets { get; private set; }

    public int Measurements { get; private set; }

    protected override void OnWrite(ReadOnlySpan<byte> buffer)
    {
        if (buffer.Length != 2)
        {
            throw Nack();
        }

        var command = BinaryPrimitives.ReadUInt16BigEndian(buffer);
        switch (command)
        {
            case 0x2400 or 0x240B or 0x2416:
                Measurements++;
                _pending = new byte[6];
                Sht3xProtocol.Encode(_pending, Celsius, RelativeHumidity);
                if (CorruptNextFrame)
                {
                    _pending[1] ^= 0x04;
                    CorruptNextFrame = false;
                }

                break;
            case 0x30A2:
                Resets++;
                _pending = null;
                break;
            case 0xF32D:
                _status = [0x80, 0x10, 0];
                _status[2] = Sht3xProtocol.Crc8(_status.AsSpan(0, 2));
                break;
            case 0x306D or 0x3066:
                break;
            default:
                throw Nack();
        }
    }

    protected override void OnRead(Span<byte> buffer)
    {
        var answer = _status ?? _pending ?? throw Nack();
        _status = null;
        if (answer == _pending)
        {
            _pending = null;
        }

        answer.AsSpan(0, Math.Min(answer.Length, buffer.Length)).CopyTo(buffer);
    }
}
