namespace EdgeTwin.Uplink;

/// <summary>Uplink settings that cannot work; <see cref="Errors"/> lists every problem, each naming its setting.</summary>
public sealed class UplinkOptionsException(IReadOnlyList<string> errors)
    : Exception("Invalid uplink settings: " + string.Join("; ", errors))
{
    public IReadOnlyList<string> Errors { get; } = errors;
}

/// <summary>The peer refused the connection (bad credentials, not authorised, unsupported protocol).</summary>
public sealed class UplinkConnectException(string message) : Exception(message);

/// <summary>The peer answered a message with an error that a new connection may cure.</summary>
public sealed class UplinkPeerException(string message) : Exception(message);

/// <summary>
/// A setting that works but is risky (a password over plaintext, a pass-through setting the uplink overrides);
/// <see cref="Key"/> is the config key under the uplink's section (<c>password</c>, <c>settings.acks</c>), for <c>edgetwin check</c>.
/// </summary>
public sealed record UplinkWarning(string Key, string Message);
