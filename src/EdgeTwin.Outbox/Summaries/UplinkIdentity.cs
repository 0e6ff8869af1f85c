namespace EdgeTwin.Outbox.Summaries;

/// <summary>Who is speaking: carried by every uplink body so the centre can tell gateways and sites apart.</summary>
public sealed record UplinkIdentity(string GatewayId, string SiteId)
{
    public string GatewayId { get; } = string.IsNullOrWhiteSpace(GatewayId) ? throw new ArgumentException("Gateway id is empty.", nameof(GatewayId)) : GatewayId;

    public string SiteId { get; } = string.IsNullOrWhiteSpace(SiteId) ? throw new ArgumentException("Site id is empty.", nameof(SiteId)) : SiteId;
}

/// <summary>One raw (report-by-exception) point: time, value, quality as its <see cref="Core.Samples.SampleQuality"/> number.</summary>
public readonly record struct RawPoint(long TimestampMs, double Value, byte Quality);
