namespace EdgeTwin.Core.Samples;

/// <summary>Whether a metric is a level (gauge) or a monotonically increasing count (counter).</summary>
public enum MetricKind : byte
{
    Gauge = 0,
    Counter = 1,
    /// <summary>A discrete state (on/off, running/faulted) carried as a number.</summary>
    State = 2,
}

/// <summary>
/// Everything that identifies a series and describes its values. Two descriptors with the same
/// <see cref="Key"/> are the same series.
/// </summary>
/// <param name="DeviceId">The device id from the site config (e.g. <c>pdu-r01-a</c>).</param>
/// <param name="Metric">The metric name from the device profile (e.g. <c>outlet_current</c>).</param>
/// <param name="Unit">UCUM-style unit symbol (<c>Cel</c>, <c>A</c>, <c>W</c>, <c>kW.h</c>, <c>%</c>, <c>1</c>).</param>
/// <param name="Kind">Gauge, counter or state.</param>
/// <param name="Role">The role the metric plays in the twin (<c>rack.inlet_temperature</c>), or null.</param>
/// <param name="Tags">Extra identity, e.g. <c>outlet=7</c> for a table row; sorted by key for a stable <see cref="Key"/>.</param>
public sealed record SeriesDescriptor(
    string DeviceId,
    string Metric,
    string Unit,
    MetricKind Kind = MetricKind.Gauge,
    string? Role = null,
    IReadOnlyList<KeyValuePair<string, string>>? Tags = null)
{
    /// <summary>Canonical identity: <c>device/metric</c> plus <c>{k=v,…}</c> when tagged.</summary>
    public string Key { get; } = BuildKey(DeviceId, Metric, Tags);

    public string? Tag(string name)
    {
        if (Tags is null)
        {
            return null;
        }

        foreach (var (k, v) in Tags)
        {
            if (k == name)
            {
                return v;
            }
        }

        return null;
    }

    private static string BuildKey(string deviceId, string metric, IReadOnlyList<KeyValuePair<string, string>>? tags)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(deviceId);
        ArgumentException.ThrowIfNullOrWhiteSpace(metric);
        if (tags is null || tags.Count == 0)
        {
            return string.Concat(deviceId, "/", metric);
        }

        var sorted = tags.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => t.Key + "=" + t.Value);
        return string.Concat(deviceId, "/", metric, "{", string.Join(',', sorted), "}");
    }
}
