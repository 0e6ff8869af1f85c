namespace EdgeTwin.Uplink.Payloads;

/// <summary>One model the agent runs, as named in the models manifest.</summary>
public sealed record ModelFact(string Name, string Version);

/// <summary>
/// What runs on this gateway, announced in every birth (JSON status <c>facts</c>, Sparkplug NBIRTH metrics) so the
/// centre sees the fleet: agent version, CPU architecture, SHA-256 of the site config file bytes, model versions.
/// </summary>
public sealed record GatewayFacts(string Version, string Architecture, string ConfigSha256, IReadOnlyList<ModelFact> Models);
