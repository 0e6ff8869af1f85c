using System.Diagnostics.CodeAnalysis;

namespace EdgeTwin.Simulator.Devices;

/// <summary>
/// Converts the simulator's values (in its canonical units) to whatever unit a device profile states,
/// so a profile that reports watts and one that reports kilowatts both get the right number.
/// Unit symbols are UCUM-style (<c>Cel</c>, <c>kW</c>, <c>kW.h</c>, <c>%</c>), with common spellings accepted.
/// </summary>
public static class Units
{
    // Symbol → (dimension, factor to the dimension's base unit, offset to base).
    private static readonly Dictionary<string, (string Dimension, double Factor, double Offset)> Known = new(StringComparer.OrdinalIgnoreCase)
    {
        ["Cel"] = ("temperature", 1, 0),
        ["°C"] = ("temperature", 1, 0),
        ["C"] = ("temperature", 1, 0),
        ["degC"] = ("temperature", 1, 0),
        ["[degF]"] = ("temperature", 5.0 / 9, -32 * 5.0 / 9),
        ["°F"] = ("temperature", 5.0 / 9, -32 * 5.0 / 9),
        ["degF"] = ("temperature", 5.0 / 9, -32 * 5.0 / 9),
        ["K"] = ("temperature", 1, -273.15),
        ["W"] = ("power", 1, 0),
        ["kW"] = ("power", 1000, 0),
        ["MW"] = ("power", 1e6, 0),
        ["VA"] = ("apparent", 1, 0),
        ["kVA"] = ("apparent", 1000, 0),
        ["var"] = ("reactive", 1, 0),
        ["kvar"] = ("reactive", 1000, 0),
        ["W.h"] = ("energy", 1, 0),
        ["Wh"] = ("energy", 1, 0),
        ["kW.h"] = ("energy", 1000, 0),
        ["kWh"] = ("energy", 1000, 0),
        ["MW.h"] = ("energy", 1e6, 0),
        ["A"] = ("current", 1, 0),
        ["mA"] = ("current", 0.001, 0),
        ["V"] = ("voltage", 1, 0),
        ["kV"] = ("voltage", 1000, 0),
        ["Hz"] = ("frequency", 1, 0),
        ["%"] = ("fraction", 0.01, 0),
        ["1"] = ("fraction", 1, 0),
        ["s"] = ("time", 1, 0),
        ["min"] = ("time", 60, 0),
        ["h"] = ("time", 3600, 0),
        ["d"] = ("time", 86400, 0),
        ["ms"] = ("time", 0.001, 0),
        ["mm/s"] = ("velocity", 0.001, 0),
        ["m/s"] = ("velocity", 1, 0),
        ["in/s"] = ("velocity", 0.0254, 0),
        ["[in_i]/s"] = ("velocity", 0.0254, 0),
        ["rpm"] = ("speed", 1, 0),
        ["{rpm}"] = ("speed", 1, 0),
        ["/min"] = ("speed", 1, 0),
        ["1/min"] = ("speed", 1, 0),
        ["m3/h"] = ("airflow", 1.0 / 3600, 0),
        ["m3/s"] = ("airflow", 1, 0),
        ["[cft_i]/min"] = ("airflow", 0.000471947, 0),
        ["CFM"] = ("airflow", 0.000471947, 0),
        ["%RH"] = ("fraction", 0.01, 0),
        ["Pa"] = ("pressure", 1, 0),
        ["kPa"] = ("pressure", 1000, 0),
    };

    /// <summary>Converts <paramref name="value"/> from <paramref name="from"/> to <paramref name="to"/>.</summary>
    /// <returns>False when either unit is unknown or they measure different things (then <paramref name="converted"/> is the value unchanged).</returns>
    public static bool TryConvert(double value, string from, string? to, out double converted)
    {
        converted = value;
        if (string.IsNullOrEmpty(to) || string.Equals(from, to, StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        if (!TryGet(from, out var f) || !TryGet(to, out var t) || f.Dimension != t.Dimension)
        {
            return false;
        }

        var baseValue = (value * f.Factor) + f.Offset;
        converted = (baseValue - t.Offset) / t.Factor;
        return true;
    }

    private static bool TryGet(string unit, [MaybeNullWhen(false)] out (string Dimension, double Factor, double Offset) info) =>
        Known.TryGetValue(unit.Trim(), out info);
}
