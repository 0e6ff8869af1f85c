using System.Globalization;

namespace EdgeTwin.Sensors.OneWire;

/// <summary>What the kernel's w1_therm driver said in a <c>w1_slave</c> file.</summary>
public enum W1SlaveStatus
{
    Ok,
    /// <summary>First line ends in <c>NO</c>: the scratchpad CRC failed (noise, long cable, weak pull-up).</summary>
    CrcError,
    /// <summary>The 85.000 °C power-on reset value (scratchpad 50 05): the sensor browned out or never converted.</summary>
    PowerOnReset,
    /// <summary>All-zero scratchpad: its CRC is 00 too, so the kernel says YES and t=0 although the sensor did not answer.</summary>
    NoResponse,
    Malformed,
}

/// <summary>
/// A parsed <c>w1_slave</c> file of a DS18B20 (family 28):
/// <code>
/// 72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
/// 72 01 4b 46 7f ff 0e 10 57 t=23125
/// </code>
/// The temperature is taken from the scratchpad bytes (LSB, MSB; 1/16 °C) and cross-checked against <c>t=</c>.
/// </summary>
public readonly record struct W1SlaveReading(W1SlaveStatus Status, double Celsius, string Detail)
{
    private const int ScratchpadLength = 9;

    public static W1SlaveReading Parse(ReadOnlySpan<char> text)
    {
        var lines = text.Trim().ToString().Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length < 2)
        {
            return new(W1SlaveStatus.Malformed, double.NaN, $"expected 2 lines, got {lines.Length}");
        }

        var first = lines[0];
        if (first.EndsWith(" NO", StringComparison.Ordinal))
        {
            return new(W1SlaveStatus.CrcError, double.NaN, "scratchpad CRC check failed (crc=… NO)");
        }

        if (!first.EndsWith(" YES", StringComparison.Ordinal))
        {
            return new(W1SlaveStatus.Malformed, double.NaN, $"first line does not end in YES/NO: '{first}'");
        }

        Span<byte> scratchpad = stackalloc byte[ScratchpadLength];
        if (!TryParseScratchpad(first, scratchpad))
        {
            return new(W1SlaveStatus.Malformed, double.NaN, $"scratchpad is not {ScratchpadLength} hex bytes: '{first}'");
        }

        var second = lines[1];
        var tIndex = second.LastIndexOf("t=", StringComparison.Ordinal);
        if (tIndex < 0 || !int.TryParse(second.AsSpan(tIndex + 2), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var milli))
        {
            return new(W1SlaveStatus.Malformed, double.NaN, $"no t=<millidegrees> on second line: '{second}'");
        }

        var allZero = true;
        foreach (var b in scratchpad)
        {
            allZero &= b == 0;
        }

        if (allZero)
        {
            return new(W1SlaveStatus.NoResponse, double.NaN, "all-zero scratchpad (sensor did not drive the bus)");
        }

        var raw = (short)(scratchpad[0] | (scratchpad[1] << 8));
        var celsius = raw / 16.0;
        if (raw == 0x0550)
        {
            return new(W1SlaveStatus.PowerOnReset, celsius, "85 °C power-on reset value (sensor reset or conversion never ran)");
        }

        // The kernel rounds differently for some resolutions; more than one LSB apart means the two lines disagree.
        if (Math.Abs(celsius - (milli / 1000.0)) > 0.0625)
        {
            return new(W1SlaveStatus.Malformed, double.NaN, $"t={milli} disagrees with scratchpad value {celsius} °C");
        }

        return new(W1SlaveStatus.Ok, celsius, string.Empty);
    }

    private static bool TryParseScratchpad(string line, Span<byte> scratchpad)
    {
        var colon = line.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0)
        {
            return false;
        }

        var parts = line[..colon].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length != scratchpad.Length)
        {
            return false;
        }

        for (var i = 0; i < parts.Length; i++)
        {
            if (!byte.TryParse(parts[i], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out scratchpad[i]))
            {
                return false;
            }
        }

        return true;
    }
}
