namespace EdgeTwin.Uplink;

/// <summary>Uplink settings that cannot work; <see cref="Errors"/> lists every problem, each naming its setting.</summary>
public sealed class UplinkOptionsException(IReadOnlyList<string> errors)
    : Exception("Invalid uplink settings: " + string.Join("; ", errors))
{
    public IReadOnlyList<string> Errors { get; } = errors;
}

/// <summary>The peer refused the connection (bad credentials, not authorised, unsupported protocol).</summary>
public sealed class UplinkConnectException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The broker ended the session because another connection logged in with the same client id (MQTT 5 DISCONNECT 0x8E,
/// session taken over): two gateways run with one identity, and each reconnect takes the session from the other.
/// </summary>
public sealed class UplinkTakenOverException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The session ends on purpose though its connection works: the pump stops sending, disposes the session (NDEATH,
/// DISCONNECT) and connects again at once. Not a failure: no backoff, nothing refused, the entries stay in the outbox.
/// </summary>
public abstract class UplinkLeavingException(string message) : Exception(message);

/// <summary>
/// The Sparkplug primary host application went offline (its STATE): the edge node ends the session (NDEATH, DISCONNECT)
/// and connects again at once, waiting for the host before its births. Not a failure: no backoff, the entries stay.
/// </summary>
public sealed class UplinkHostOfflineException(string message) : UplinkLeavingException(message);

/// <summary>
/// A Sparkplug host sent NCMD <c>Node Control/Next Server</c>: the edge node ends the session (NDEATH, DISCONNECT) and
/// connects to the next server of <c>uplinks.mqtt.hosts</c> at once. Not a failure: no backoff, the entries stay.
/// </summary>
public sealed class UplinkNextServerException(string message) : UplinkLeavingException(message);

/// <summary>The peer answered a message with an error that a new connection may cure.</summary>
public sealed class UplinkPeerException(string message) : Exception(message);

/// <summary>
/// A setting that works but is risky (a password over plaintext, a pass-through setting the uplink overrides);
/// <see cref="Key"/> is the config key under the uplink's section (<c>password</c>, <c>settings.acks</c>), for <c>edgetwin check</c>.
/// </summary>
public sealed record UplinkWarning(string Key, string Message);
