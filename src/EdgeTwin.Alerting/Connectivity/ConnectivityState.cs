namespace EdgeTwin.Alerting.Connectivity;

/// <summary>Whether the centre can see this gateway.</summary>
public enum UplinkState : byte
{
    Online,

    /// <summary>Some evidence of trouble (one failed probe, or the uplink not connected while the probe succeeds).</summary>
    Degraded,

    Offline,
}

public static class UplinkStates
{
    public static string ToWireName(this UplinkState state) => state switch
    {
        UplinkState.Online => "online",
        UplinkState.Degraded => "degraded",
        _ => "offline",
    };
}
