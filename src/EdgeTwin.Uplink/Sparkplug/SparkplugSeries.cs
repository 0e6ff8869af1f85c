namespace EdgeTwin.Uplink.Sparkplug;

/// <summary>
/// A series the agent polls, as the Sparkplug encoder declares it in its device's DBIRTH before any data of it was
/// sent (so a device is born once with all its series, not once per series as their first windows close).
/// </summary>
/// <param name="DeviceId">The device (the outbox device of its summaries and raw points).</param>
/// <param name="Key">The series key, <c>device/metric{tag=v,…}</c> (the JSON body's <c>series</c>).</param>
/// <param name="Unit">UCUM-style unit (the <c>engUnit</c> property), empty for none.</param>
/// <param name="Raw">True when the series goes as raw points (one metric), false when summarised (the statistics).</param>
public sealed record SparkplugSeries(string DeviceId, string Key, string Unit, bool Raw);
