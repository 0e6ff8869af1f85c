namespace EdgeTwin.Simulator.Devices;

/// <summary>
/// Turns a simulated value into the raw number a device puts on the wire for a profile metric: the
/// inverse of the agent's <c>value = raw × scale + offset</c>, after converting to the metric's unit;
/// state values map to the profile's state code whose label matches the state word.
/// </summary>
public static class RawValue
{
    /// <returns>False when the value's unit cannot be converted to the metric's unit.</returns>
    public static bool TryEncode(
        SimValue value,
        string? metricUnit,
        double scale,
        double offset,
        IReadOnlyDictionary<long, string>? states,
        out double raw)
    {
        raw = 0;
        if (value.StateWord is { } words && states is { Count: > 0 })
        {
            // Prefer an exact label for any candidate word, then a label containing one ("onBattery" for "battery").
            var candidates = words.Split('|');
            foreach (var word in candidates)
            {
                foreach (var (code, label) in states)
                {
                    if (string.Equals(label, word, StringComparison.OrdinalIgnoreCase))
                    {
                        raw = code;
                        return true;
                    }
                }
            }

            foreach (var word in candidates)
            {
                foreach (var (code, label) in states)
                {
                    if (label.Contains(word, StringComparison.OrdinalIgnoreCase))
                    {
                        raw = code;
                        return true;
                    }
                }
            }
        }

        if (!Units.TryConvert(value.Value, value.Unit, metricUnit, out var converted))
        {
            return false;
        }

        raw = (converted - offset) / (scale == 0 ? 1 : scale);
        return true;
    }
}
