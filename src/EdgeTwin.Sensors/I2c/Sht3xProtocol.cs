using System.Buffers.Binary;

namespace EdgeTwin.Sensors.I2c;

public enum Sht3xRepeatability
{
    High,
    Medium,
    Low,
}

/// <summary>
/// Sensirion SHT3x single-shot measurement frames (datasheet SHT3x-DIS §4): two big-endian 16-bit words, each
/// followed by CRC-8 (polynomial 0x31, init 0xFF). Pure functions, no I/O.
/// </summary>
public static class Sht3xProtocol
{
    /// <summary>Single shot, high repeatability, clock stretching disabled: measurement takes at most 15.5 ms.</summary>
    public const ushort MeasureHighRepeatability = 0x2400;

    public const ushort SoftReset = 0x30A2;

    public static readonly TimeSpan MeasurementTime = TimeSpan.FromMilliseconds(16);

    /// <summary>Single-shot command without clock stretching and its maximum duration (datasheet table 4 and 9).</summary>
    public static (ushort Command, TimeSpan Duration) SingleShot(Sht3xRepeatability repeatability) => repeatability switch
    {
        Sht3xRepeatability.High => (MeasureHighRepeatability, MeasurementTime),
        Sht3xRepeatability.Medium => (0x240B, TimeSpan.FromMilliseconds(7)),
        Sht3xRepeatability.Low => (0x2416, TimeSpan.FromMilliseconds(5)),
        _ => throw new ArgumentOutOfRangeException(nameof(repeatability), repeatability, null),
    };

    public static byte Crc8(ReadOnlySpan<byte> data)
    {
        byte crc = 0xFF;
        foreach (var b in data)
        {
            crc ^= b;
            for (var i = 0; i < 8; i++)
            {
                crc = (crc & 0x80) != 0 ? (byte)((crc << 1) ^ 0x31) : (byte)(crc << 1);
            }
        }

        return crc;
    }

    public static void WriteCommand(Span<byte> destination, ushort command) =>
        BinaryPrimitives.WriteUInt16BigEndian(destination, command);

    /// <summary>Decodes a 6-byte answer; false with a reason when a CRC does not match.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> frame, out double celsius, out double relativeHumidity, out string error)
    {
        celsius = double.NaN;
        relativeHumidity = double.NaN;
        if (frame.Length != 6)
        {
            error = $"expected 6 bytes, got {frame.Length}";
            return false;
        }

        var tCrc = Crc8(frame[..2]);
        if (tCrc != frame[2])
        {
            error = $"temperature CRC mismatch: got 0x{frame[2]:x2}, computed 0x{tCrc:x2} (frame {Convert.ToHexString(frame)})";
            return false;
        }

        var hCrc = Crc8(frame.Slice(3, 2));
        if (hCrc != frame[5])
        {
            error = $"humidity CRC mismatch: got 0x{frame[5]:x2}, computed 0x{hCrc:x2} (frame {Convert.ToHexString(frame)})";
            return false;
        }

        var st = BinaryPrimitives.ReadUInt16BigEndian(frame);
        var srh = BinaryPrimitives.ReadUInt16BigEndian(frame[3..]);
        celsius = -45 + (175.0 * st / 65535.0);
        relativeHumidity = 100.0 * srh / 65535.0;
        error = string.Empty;
        return true;
    }

    /// <summary>The inverse of <see cref="TryDecode"/> (used by simulators and tests).</summary>
    public static void Encode(Span<byte> frame, double celsius, double relativeHumidity)
    {
        var st = (ushort)Math.Clamp(Math.Round((celsius + 45) * 65535.0 / 175.0), 0, 65535);
        var srh = (ushort)Math.Clamp(Math.Round(relativeHumidity * 65535.0 / 100.0), 0, 65535);
        BinaryPrimitives.WriteUInt16BigEndian(frame, st);
        frame[2] = Crc8(frame[..2]);
        BinaryPrimitives.WriteUInt16BigEndian(frame[3..], srh);
        frame[5] = Crc8(frame.Slice(3, 2));
    }
}
