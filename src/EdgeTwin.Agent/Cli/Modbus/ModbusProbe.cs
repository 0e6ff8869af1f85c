using System.Globalization;
using EdgeTwin.Modbus.Client;
using EdgeTwin.Modbus.Data;
using EdgeTwin.Modbus.Protocol;

namespace EdgeTwin.Agent.Cli.Modbus;

/// <summary>
/// Reads the registers around an address once and decodes them every way a meter might mean them: each
/// numeric type, each byte/word order, the address as 0- or 1-based, each scale. Keeps the readings in range.
/// </summary>
internal static class ModbusProbe
{
    public sealed record Match(ModbusDataType Type, ModbusWordOrder Order, ModbusAddressBase Base, int ProtocolAddress, double Scale, double Value);

    public sealed record Outcome(IReadOnlyList<Match> Matches, IReadOnlyDictionary<int, ushort> Registers);

    public static async Task<Outcome> RunAsync(
        ModbusClient client, byte unit, ModbusTable table, int given, double min, double max, IReadOnlyList<double> scales, CancellationToken ct)
    {
        // Needed registers: [given-1, given+4) covers 1-based starts and 64-bit values.
        int from = Math.Max(0, given - 1);
        int to = Math.Min(0x10000, given + 4);
        var registers = await ReadWindowAsync(client, unit, table, from, to, ct).ConfigureAwait(false);

        var matches = new List<Match>();
        foreach (var addressBase in new[] { ModbusAddressBase.Zero, ModbusAddressBase.One })
        {
            int start = given - (int)addressBase;
            if (start < 0)
            {
                continue;
            }

            foreach (var type in ModbusCliConnection.ProbeTypes)
            {
                int n = type.RegisterCount();
                var regs = new ushort[n];
                bool have = true;
                for (int i = 0; i < n && have; i++)
                {
                    have = registers.TryGetValue(start + i, out regs[i]);
                }

                if (!have)
                {
                    continue;
                }

                // 16-bit values only have a byte order; CDAB/DCBA would repeat ABCD/BADC.
                var orders = n == 1 ? [ModbusWordOrder.ABCD, ModbusWordOrder.BADC] : Enum.GetValues<ModbusWordOrder>();
                foreach (var order in orders)
                {
                    double raw = ModbusValueCodec.DecodeNumber(regs, type, order);
                    if (double.IsNaN(raw) || double.IsInfinity(raw))
                    {
                        continue;
                    }

                    foreach (double scale in scales)
                    {
                        double value = ModbusValueCodec.ApplyScale(raw, scale);
                        if (value >= min && value <= max)
                        {
                            matches.Add(new Match(type, order, addressBase, start, scale, value));
                        }
                    }
                }
            }
        }

        return new Outcome(matches, registers);
    }

    /// <summary>Reads the window in one request; if the device refuses it (holes, short maps), register by register.</summary>
    private static async Task<SortedDictionary<int, ushort>> ReadWindowAsync(ModbusClient client, byte unit, ModbusTable table, int from, int to, CancellationToken ct)
    {
        var result = new SortedDictionary<int, ushort>();
        try
        {
            var all = await client.ReadAsync(unit, table, (ushort)from, (ushort)(to - from), ct).ConfigureAwait(false);
            for (int i = 0; i < all.Length; i++)
            {
                result[from + i] = all[i];
            }

            return result;
        }
        catch (ModbusDeviceException ex) when (ex.ExceptionCode is ModbusExceptionCode.IllegalDataAddress or ModbusExceptionCode.IllegalDataValue)
        {
            ModbusDeviceException? last = ex;
            for (int a = from; a < to; a++)
            {
                try
                {
                    result[a] = (await client.ReadAsync(unit, table, (ushort)a, 1, ct).ConfigureAwait(false))[0];
                }
                catch (ModbusDeviceException one) when (one.ExceptionCode is ModbusExceptionCode.IllegalDataAddress or ModbusExceptionCode.IllegalDataValue)
                {
                    last = one;
                }
            }

            if (result.Count == 0)
            {
                throw last;
            }

            return result;
        }
    }

    public static bool TryParseRange(string? text, out double min, out double max)
    {
        min = max = 0;
        if (text is null)
        {
            return false;
        }

        // Find the ".." that separates the bounds (a bound may itself be negative or hold a decimal point).
        int sep = text.IndexOf("..", StringComparison.Ordinal);
        return sep > 0
            && double.TryParse(text.AsSpan(0, sep), NumberStyles.Float, CultureInfo.InvariantCulture, out min)
            && double.TryParse(text.AsSpan(sep + 2), NumberStyles.Float, CultureInfo.InvariantCulture, out max)
            && min <= max;
    }

    public static bool TryParseScales(string? text, out List<double> scales)
    {
        scales = [];
        foreach (var part in (text ?? "1").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out double s) || s == 0 || !double.IsFinite(s))
            {
                return false;
            }

            scales.Add(s);
        }

        return scales.Count > 0;
    }
}
