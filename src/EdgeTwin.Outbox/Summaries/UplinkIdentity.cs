namespace EdgeTwin.Outbox.Summaries;

/// <summary>Who is speaking: carried by every uplink body so the centre can tell gateways and sites apart.</summary>
public sealed record UplinkIdentity(string GatewayId, string SiteId)
{
    public string GatewayId { get; } = string.IsNullOrWhiteSpace(GatewayId) ? throw new ArgumentException("Gateway id is empty.", nameof(GatewayId)) : GatewayId;

    public string SiteId { get; } = string.IsNullOrWhiteSpace(SiteId) ? throw new ArgumentException("Site id is empty.", nameof(SiteId)) : SiteId;
}

/// <summary>One raw (report-by-exception) point: time, value, quality as its <see cref="Core.Samples.SampleQuality"/> number.</summary>
public readonly record struct RawPoint(long TimestampMs, double Value, byte Quality);

/// <summary>
/// A twin model's forecast for one quantity, sent at once (never held for a window).
/// </summary>
/// <param name="Model">The model that made it (<c>thermal</c>, <c>capacity</c>…).</param>
/// <param name="DeviceId">The device, rack or machine it is about.</param>
/// <param name="Quantity">What is forecast, usually a role (<c>rack.inlet_temperature</c>).</param>
/// <param name="Unit">Unit of <paramref name="Value"/>.</param>
/// <param name="MadeAtMs">When the forecast was made (unix ms).</param>
/// <param name="Horizon">How far ahead it looks; the forecast is for <paramref name="MadeAtMs"/> + horizon.</param>
/// <param name="Value">The forecast value.</param>
/// <param name="Lower">Lower bound of the interval, if the model gives one.</param>
/// <param name="Upper">Upper bound of the interval, if the model gives one.</param>
/// <param name="Confidence">0..1, the probability the interval (or the model) claims.</param>
/// <param name="SeriesKey">The series it forecasts, when it forecasts one.</param>
/// <param name="Attributes">Model-specific details (e.g. <c>time_to_limit_s</c>).</param>
public sealed record Prediction(
    string Model,
    string DeviceId,
    string Quantity,
    string Unit,
    long MadeAtMs,
    TimeSpan Horizon,
    double Value,
    double? Lower,
    double? Upper,
    double Confidence,
    string? SeriesKey = null,
    IReadOnlyDictionary<string, string>? Attributes = null);
