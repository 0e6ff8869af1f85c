using System.Globalization;
using System.Text;

namespace EdgeTwin.Sensors.Tests.Fakes;

/// <summary>
/// A fake /sys/bus/w1/devices tree in a temp dir, written the way the kernel's w1_therm driver formats
/// <c>w1_slave</c>: nine scratchpad bytes, the Dallas/Maxim CRC-8 the driver computed, YES/NO, then t=millidegrees.
/// </summary>
internal sealed class FakeW1Bus : IDisposable
{
    private readonly TempDir _dir = new();

    public FakeW1Bus()
    {
        Directory.CreateDirectory(Path.Combine(Root, "w1_bus_master1"));
    }

    public string Root => _dir.Path;

    /// <summary>Puts a DS18B20 on the bus reading <paramref name="raw"/> sixteenths of a degree.</summary>
    public void SetRaw(string id, short raw, bool corruptCrc = false)
    {
        var scratchpad = new byte[9];
        scratchpad[0] = (byte)raw;
        scratchpad[1] = (byte)(raw >> 8);
        scratchpad[2] = 0x4b; // TH
        scratchpad[3] = 0x46; // TL
        scratchpad[4] = 0x7f; // config: 12-bit
        scratchpad[5] = 0xff;
        scratchpad[6] = (byte)(0x10 - (raw & 0x0f) == 0 ? 0x10 : 0x10 - (raw & 0x0f));
        scratchpad[7] = 0x10;
        scratchpad[8] = DallasCrc8(scratchpad.AsSpan(0, 8));
        if (corruptCrc)
        {
            scratchpad[3] ^= 0x20; // a flipped bit on the wire
        }

        var ok = DallasCrc8(scratchpad.AsSpan(0, 8)) == scratchpad[8];
        var millis = raw * 1000 / 16;
        WriteSlave(id, scratchpad, ok, millis);
    }

    public void SetCelsius(string id, double celsius) => SetRaw(id, checked((short)Math.Round(celsius * 16)));

    public void WriteSlave(string id, ReadOnlySpan<byte> scratchpad, bool crcOk, int millis)
    {
        var hex = string.Join(' ', scratchpad.ToArray().Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));
        var crc = scratchpad[^1].ToString("x2", CultureInfo.InvariantCulture);
        var text = $"{hex} : crc={crc} {(crcOk ? "YES" : "NO")}\n{hex} t={millis.ToString(CultureInfo.InvariantCulture)}\n";
        WriteRawText(id, text);
    }

    public void WriteRawText(string id, string text)
    {
        var dir = Path.Combine(Root, id);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "w1_slave"), text, Encoding.ASCII);
    }

    public void Unplug(string id) => Directory.Delete(Path.Combine(Root, id), recursive: true);

    /// <summary>CRC-8/MAXIM (x^8 + x^5 + x^4 + 1, reflected), as the DS18B20 appends to its scratchpad.</summary>
    public static byte DallasCrc8(ReadOnlySpan<byte> data)
    {
        byte crc = 0;
        foreach (var d in data)
        {
            var b = d;
            for (var i = 0; i < 8; i++)
            {
                var mix = (byte)((crc ^ b) & 0x01);
                crc >>= 1;
                if (mix != 0)
                {
                    crc ^= 0x8C;
                }

                b >>= 1;
            }
        }

        return crc;
    }

    public void Dispose() => _dir.Dispose();
}
