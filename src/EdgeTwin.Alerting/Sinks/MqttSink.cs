using System.Net.Security;
using System.Security.Authentication;
using EdgeTwin.Core;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.State;
using EdgeTwin.Uplink;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Mqtt;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MQTTnet;
using MQTTnet.Protocol;

namespace EdgeTwin.Alerting.Sinks;

/// <summary>
/// Publishes the JSON message (<see cref="AlertJson"/>) at QoS 1 to a broker (on this machine, on the LAN, or the agent's
/// embedded one). Connects on first delivery and again after a failure; a PUBACK is delivery. The connection is built
/// by the MQTT uplink's <see cref="MqttClientOptionsFactory"/>: the same <c>tls:</c> (CA pinning or the system store,
/// host name checked, client certificate) and credentials handling. With <c>hosts:</c> (an HA pair or cluster) a connect
/// walks the list by the uplink's rule: a failed server moves on to the next at once, each with its own timeout; the
/// sink stays on a server while it works, and after losing one starts with the server after it, so that one comes last.
/// The runner's retries and backoff come once per round, after every server failed.
/// </summary>
public sealed partial class MqttSink : IAlertSink
{
    private readonly MqttSinkConfig _config;
    private readonly string _site;
    private readonly string _gateway;
    private readonly MqttClientOptionsFactory _factory;
    private readonly MqttBrokerAddress[] _servers;
    private readonly ILogger _logger;

    // Per server, which failed connects get a line: one broker of a pair down for days must not log every round.
    private readonly RepeatedFailureLog[] _serverFailures;
    private IMqttClient? _client;
    private int _on = -1; // the server _client is connected to
    private int _last = -1; // the server of the last session, for the switch line
    private int _start; // where the next round starts: the first server, then the one after the server last lost
    private string? _rejection; // why the last handshake refused the broker's certificate, for the error
    private AlertNotification? _closedOn; // the message the broker last closed a fresh connection on
    private int _closedOnCount;

    /// <exception cref="EdgeTwin.Uplink.UplinkOptionsException">A TLS file cannot be used (check reports it before).</exception>
    public MqttSink(MqttSinkConfig config, string site, string gateway)
        : this(config, site, gateway, null)
    {
    }

    /// <summary>As <see cref="MqttSink(MqttSinkConfig, string, string)"/>; with <c>hosts:</c> a failed server and a switch are logged to <paramref name="logger"/>.</summary>
    /// <exception cref="EdgeTwin.Uplink.UplinkOptionsException">A TLS file cannot be used (check reports it before).</exception>
    public MqttSink(MqttSinkConfig config, string site, string gateway, ILogger? logger, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _site = site;
        _gateway = gateway;
        _logger = logger ?? NullLogger.Instance;
        _factory = ConnectionFactory(config);
        _servers = [.. config.Servers];
        if (_servers.Length == 0)
        {
            throw new ArgumentException($"alert sink '{config.Name}' has no broker that parses in hosts: (check reports each entry)", nameof(config));
        }

        _serverFailures = [.. _servers.Select(_ => new RepeatedFailureLog(time ?? TimeProvider.System))];
    }

    public string Name => _config.Name;

    /// <summary>The sink's <c>client_id</c>, by default <c>edgetwin-alerts-{gateway}-{sink}</c>.</summary>
    public string ClientId => _config.ClientId ?? $"edgetwin-alerts-{_gateway}-{_config.Name}";

    public bool FollowsState => false;

    /// <summary>
    /// <c>mqtt://host:port</c> or <c>mqtts://host:port</c>, for messages: the server of the session, or while there is
    /// none the one the next connect tries first.
    /// </summary>
    public string Peer => _factory.PeerOf(_servers[Volatile.Read(ref _on) is >= 0 and var on ? on : Volatile.Read(ref _start)]);

    /// <summary>Each server its own connect timeout: a dead first broker of a pair must not use up the attempt before the second is tried.</summary>
    public TimeSpan AttemptTimeout(TimeSpan timeout) => timeout * _servers.Length;

    /// <summary>
    /// The uplink's connection factory for this sink's brokers; loads the TLS files now (what <c>check</c> runs too).
    /// </summary>
    /// <exception cref="EdgeTwin.Uplink.UplinkOptionsException">A TLS file holds no certificate or the client certificate has no key.</exception>
    public static MqttClientOptionsFactory ConnectionFactory(MqttSinkConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new MqttClientOptionsFactory(new MqttUplinkOptions
        {
            Name = "alerts." + config.Name,
            Host = config.Host,
            Hosts = config.Hosts,
            Port = config.Port,
            Protocol = config.Protocol,
            Username = config.Username,
            Password = config.Password,
            Tls = config.Tls,
            Delivery = new DeliveryOptions { ConnectTimeout = config.Timeout },
        });
    }

    public string TopicFor(IReadOnlyList<AlertSnapshot> alerts)
    {
        ArgumentNullException.ThrowIfNull(alerts);
        var severity = alerts.Count == 0 ? Core.Events.EventSeverity.Info : alerts.Max(a => a.Severity);
        return _config.Topic
            .Replace("{site}", _site, StringComparison.Ordinal)
            .Replace("{gateway}", _gateway, StringComparison.Ordinal)
            .Replace("{rule}", alerts.Count == 0 ? "none" : alerts[0].Rule, StringComparison.Ordinal)
            .Replace("{severity}", AlertManager.SeverityName(severity), StringComparison.Ordinal);
    }

    public async Task DeliverAsync(AlertNotification notification, IReadOnlyList<AlertSnapshot> alerts, CancellationToken cancellationToken)
    {
        var client = _client;
        var fresh = false; // connected in this attempt: a close on the publish is then the broker's answer to it
        if (client is not { IsConnected: true })
        {
            fresh = true;
            if (client is not null)
            {
                // The broker dropped the session between two messages.
                Lost();
                client.Dispose();
                _client = null;
            }

            client = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        }

        var topic = TopicFor(alerts);
        var payload = AlertJson.Encode(_site, _gateway, notification, alerts);
        var builder = new MqttApplicationMessageBuilder()
            .WithTopic(topic)
            .WithPayload(payload)
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce);
        if (_config.Protocol == MqttProtocol.V500)
        {
            // MQTT 3.1.1 has no message properties: MQTTnet refuses to send one that carries any.
            builder = builder.WithContentType("application/json");
        }

        var message = builder.Build();
        try
        {
            var published = await client.PublishAsync(message, cancellationToken).ConfigureAwait(false);
            if (published.ReasonCode is not (MqttClientPublishReasonCode.Success or MqttClientPublishReasonCode.NoMatchingSubscribers))
            {
                throw new SinkRejectedException($"{Peer} refused the message: {published.ReasonCode}");
            }
        }
        catch (Exception ex) when (ex is not SinkRejectedException)
        {
            var closedOnIt = fresh && ex is not OperationCanceledException && !client.IsConnected;
            var peer = Peer; // the server that closed, before the next round's start moves past it
            Lost();
            client.Dispose();
            _client = null;
            if (closedOnIt)
            {
                ClosedOn(notification, topic, payload.Length, ex, peer);
            }

            throw;
        }

        _closedOn = null;
        _closedOnCount = 0;
    }

    /// <summary>
    /// A round over the servers from <see cref="_start"/>: the first that takes the connection is the session. One server:
    /// its failure as it is. Several: each failure is logged (rate-limited per server) and the next is tried at once; when
    /// all failed, the error names each, and is a refusal for good only when every server refused (not authorised, MQTT 5
    /// unknown): one that did not answer may come back. The next round starts where this one started.
    /// </summary>
    private async Task<IMqttClient> ConnectAsync(CancellationToken cancellationToken)
    {
        var n = _servers.Length;
        List<string>? failures = null;
        var refusals = 0;
        Exception? last = null;
        for (var k = 0; k < n; k++)
        {
            var i = (_start + k) % n;
            using var own = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            own.CancelAfter(_config.Timeout);
            try
            {
                var client = await ConnectAsync(_servers[i], own.Token).ConfigureAwait(false);
                _on = i;
                if (n > 1)
                {
                    _serverFailures[i].Succeeded();
                    if (_last >= 0 && _last != i)
                    {
                        LogSwitched(_config.Name, _factory.PeerOf(_servers[i]), _factory.PeerOf(_servers[_last]));
                    }
                }

                _last = i;
                return client;
            }
            catch (Exception ex) when (n > 1 && !cancellationToken.IsCancellationRequested)
            {
                var peer = _factory.PeerOf(_servers[i]);
                var why = own.IsCancellationRequested || TimedOut(ex) ? $"no connection within {Core.Config.Durations.Format(_config.Timeout)}" : WithoutPeer(ex.Message, peer);
                refusals += ex is SinkRejectedException ? 1 : 0;
                last = ex;
                (failures ??= []).Add($"{peer}: {why}");
                var next = k + 1 < n ? _factory.PeerOf(_servers[(i + 1) % n]) : null;
                switch (_serverFailures[i].Failed(why).Kind)
                {
                    case FailureLineKind.Log:
                        LogServerFailed(_config.Name, peer, why, next ?? "none left in this round (the sink retries the round)");
                        break;
                    case FailureLineKind.QuietFromNow:
                        LogServerQuiet(_config.Name, peer, (int)_serverFailures[i].Every.TotalMinutes);
                        break;
                }
            }
        }

        var text = $"none of the {n} servers took the connection: {string.Join("; ", failures!)}";
        throw refusals == n ? new SinkRejectedException(text, last!) : new IOException(text, last);
    }

    private static bool TimedOut(Exception ex)
    {
        for (Exception? e = ex; e is not null; e = e.InnerException)
        {
            if (e is OperationCanceledException or TimeoutException or MQTTnet.Exceptions.MqttCommunicationTimedOutException)
            {
                return true;
            }
        }

        return false;
    }

    // "mqtt://a:1883 refused the connection: …" and "mqtt://a:1883: TLS handshake failed: …" without the server, which
    // the line and the summary name once before it.
    private static string WithoutPeer(string message, string peer) =>
        message.StartsWith(peer, StringComparison.Ordinal) ? message[peer.Length..].TrimStart(':', ' ') : message;

    /// <summary>One connect to <paramref name="server"/>, as the sink always made it: a refused CONNECT is rejected, a refused certificate says why.</summary>
    private async Task<IMqttClient> ConnectAsync(MqttBrokerAddress server, CancellationToken cancellationToken)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        var options = _factory.CreateBuilder(ClientId, server).WithCleanStart(true).Build();
        // The caller's token times the connect (a server's own timeout in a round), so a timeout is told by that token:
        // MQTTnet reports its own, and a cancelled CONNACK wait, as "Error while authenticating. Connection closed.".
        options.Timeout = _config.Timeout + TimeSpan.FromSeconds(1);
        Explain(options, server);
        try
        {
            _rejection = null;
            var result = await client.ConnectAsync(options, cancellationToken).ConfigureAwait(false);
            if (result.ResultCode != MqttClientConnectResultCode.Success)
            {
                throw new SinkRejectedException(_factory.Refusal(result, $"protocol: \"3.1.1\" on alert sink '{_config.Name}' (alerts.sinks)", server, (ClientId, $"client_id on alert sink '{_config.Name}'")));
            }
        }
        catch (Exception ex) when (_rejection is { } why && ex is not OperationCanceledException)
        {
            client.Dispose();
            throw new AuthenticationException($"{_factory.PeerOf(server)}: TLS handshake failed: {why}", ex);
        }
        catch
        {
            client.Dispose();
            throw;
        }

        _client = client;
        return client;
    }

    /// <summary>The session is gone: the next round starts with the server after it (the one lost is likeliest down).</summary>
    private void Lost()
    {
        if (_on >= 0)
        {
            _start = (_on + 1) % _servers.Length;
            _on = -1;
        }
    }

    /// <summary>
    /// The broker accepted a new connection and closed it on this message. An MQTT 3.1.1 broker has no other way to
    /// refuse a publish (mosquitto's <c>max_packet_size</c>, a cloud broker's size limit or ACL): retried as an outage,
    /// the message was held for ever as "peer down", and every alert queued behind it with it. Twice on the same message,
    /// each time right after a successful connect, is a refusal: rejected, so the runner goes on with the next one.
    /// </summary>
    private void ClosedOn(AlertNotification notification, string topic, int bytes, Exception ex, string peer)
    {
        _closedOnCount = ReferenceEquals(_closedOn, notification) ? _closedOnCount + 1 : 1;
        _closedOn = notification;
        if (_closedOnCount < 2)
        {
            return;
        }

        _closedOn = null;
        _closedOnCount = 0;
        throw new SinkRejectedException(
            $"{peer} closed the connection on this message twice, each time right after accepting the connection, so it will not take it " +
            $"({bytes} bytes of JSON to {topic}; {(_config.Protocol == MqttProtocol.V311 ? "MQTT 3.1.1 has no refusal" : "no reason given")}: " +
            $"most likely over the broker's maximum packet size, or a topic its ACL forbids): {ex.Message}", ex);
    }

    /// <summary>
    /// Wraps the factory's certificate check to keep why it refused: MQTTnet reports only "rejected by the
    /// RemoteCertificateValidationCallback", which does not tell a wrong <c>ca_file</c> from a wrong host name.
    /// </summary>
    private void Explain(MqttClientOptions options, MqttBrokerAddress server)
    {
        if (options.ChannelOptions is not MqttClientTcpOptions { TlsOptions: { UseTls: true, CertificateValidationHandler: { } validate } tls })
        {
            return;
        }

        tls.CertificateValidationHandler = args =>
        {
            if (validate(args))
            {
                return true;
            }

            _rejection = Reason(args, server);
            return false;
        };
    }

    private string Reason(MqttClientCertificateValidationEventArgs args, MqttBrokerAddress server)
    {
        var name = _config.Tls.ServerName ?? server.Host;
        if (args.Certificate is not { } certificate || (args.SslPolicyErrors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
        {
            return "the broker sent no certificate";
        }

        var broker = $"the broker's certificate ({certificate.Subject}, issued by {certificate.Issuer})";
        if ((args.SslPolicyErrors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            return $"{broker} is not for '{name}' (set tls.server_name to the name it carries, or connect by that name)";
        }

        return _config.Tls.CaFile is { } ca
            ? $"{broker} does not chain to a CA in tls.ca_file '{ca}'"
            : $"{broker} is not trusted by the system trust store (set tls.ca_file to the CA that signed it)";
    }

    public async ValueTask DisposeAsync()
    {
        if (_client is { } c)
        {
            if (c.IsConnected)
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                try
                {
                    await c.DisconnectAsync(new MqttClientDisconnectOptions(), cts.Token).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is OperationCanceledException or MQTTnet.Exceptions.MqttCommunicationException)
                {
                }
            }

            c.Dispose();
            _client = null;
            _on = -1;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert sink {Sink}: server {Peer} failed: {Reason}; trying {Next} now")]
    private partial void LogServerFailed(string sink, string peer, string reason, string next);

    [LoggerMessage(Level = LogLevel.Information, Message = "alert sink {Sink}: server {Peer} keeps failing the same way; logged every {Minutes} min from now")]
    private partial void LogServerQuiet(string sink, string peer, int minutes);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert sink {Sink} is now on server {Peer} (was on {Previous}); it stays there while it works")]
    private partial void LogSwitched(string sink, string peer, string previous);
}
