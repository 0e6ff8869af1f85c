namespace EdgeTwin.Uplink.Payloads;

/// <summary>One model of the agent's models catalog: the version serving (or, when none does, the manifest's).</summary>
public sealed record ModelFact(string Name, string Version)
{
    /// <summary><c>available</c>, <c>servingprevious</c> or <c>unavailable</c> (as in <c>edgetwin models list --json</c>); null = not reported.</summary>
    public string? State { get; init; }

    /// <summary>Why the manifest's version does not serve, or null.</summary>
    public string? Error { get; init; }
}

/// <summary>
/// What runs on this gateway, announced in every birth (JSON status <c>facts</c>, Sparkplug NBIRTH metrics) so the
/// centre sees the fleet: agent version, CPU architecture, SHA-256 of the site config file bytes, model versions.
/// </summary>
public sealed record GatewayFacts(string Version, string Architecture, string ConfigSha256, IReadOnlyList<ModelFact> Models)
{
    /// <summary>
    /// A random id of this agent process (JSON <c>instance</c>, Sparkplug <c>edgetwin/facts/instance</c>), new at every
    /// start; null = not announced. Two different ids in the births of one gateway id within minutes are two gateways
    /// running with one identity (an old gateway revived next to its replacement): their births were byte-identical before.
    /// </summary>
    public string? Instance { get; init; }
}
