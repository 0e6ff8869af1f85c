using System.Net.Security;
using System.Security.Authentication;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.State;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Mqtt;
using MQTTnet;
using MQTTnet.Protocol;

namespace EdgeTwin.Alerting.Sinks;

/// <summary>
/// Publishes the JSON message (<see cref="AlertJson"/>) at QoS 1 to a broker (on this machine, on the LAN, or the agent's
/// embedded one). Connects on first delivery and again after a failure; a PUBACK is delivery. The connection is built
/// by the MQTT uplink's <see cref="MqttClientOptionsFactory"/>: the same <c>tls:</c> (CA pinning or the system store,
/// host name checked, client certificate) and credentials handling.
/// </summary>
public sealed class MqttSink : IAlertSink
{
    private readonly MqttSinkConfig _config;
    private readonly string _site;
    private readonly string _gateway;
    private readonly MqttClientOptionsFactory _factory;
    private IMqttClient? _client;
    private string? _rejection; // why the last handshake refused the broker's certificate, for the error
    private AlertNotification? _closedOn; // the message the broker last closed a fresh connection on
    private int _closedOnCount;

    /// <exception cref="EdgeTwin.Uplink.UplinkOptionsException">A TLS file cannot be used (check reports it before).</exception>
    public MqttSink(MqttSinkConfig config, string site, string gateway)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _site = site;
        _gateway = gateway;
        _factory = ConnectionFactory(config);
    }

    public string Name => _config.Name;

    /// <summary>The sink's <c>client_id</c>, by default <c>edgetwin-alerts-{gateway}-{sink}</c>.</summary>
    public string ClientId => _config.ClientId ?? $"edgetwin-alerts-{_gateway}-{_config.Name}";

    public bool FollowsState => false;

    /// <summary><c>mqtt://host:port</c> or <c>mqtts://host:port</c>, for messages.</summary>
    public string Peer => _factory.Peer;

    /// <summary>
    /// The uplink's connection factory for this sink's broker; loads the TLS files now (what <c>check</c> runs too).
    /// </summary>
    /// <exception cref="EdgeTwin.Uplink.UplinkOptionsException">A TLS file holds no certificate or the client certificate has no key.</exception>
    public static MqttClientOptionsFactory ConnectionFactory(MqttSinkConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new MqttClientOptionsFactory(new MqttUplinkOptions
        {
            Name = "alerts." + config.Name,
            Host = config.Host,
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
            client?.Dispose();
            _client = null;
            client = new MqttClientFactory().CreateMqttClient();
            var options = _factory.CreateBuilder(ClientId).WithCleanStart(true).Build();
            Explain(options);
            try
            {
                _rejection = null;
                var result = await client.ConnectAsync(options, cancellationToken).ConfigureAwait(false);
                if (result.ResultCode != MqttClientConnectResultCode.Success)
                {
                    throw new SinkRejectedException(_factory.Refusal(result, $"protocol: \"3.1.1\" on alert sink '{_config.Name}' (alerts.sinks)", (ClientId, $"client_id on alert sink '{_config.Name}'")));
                }
            }
            catch (Exception ex) when (_rejection is { } why && ex is not OperationCanceledException)
            {
                client.Dispose();
                throw new AuthenticationException($"{Peer}: TLS handshake failed: {why}", ex);
            }
            catch
            {
                client.Dispose();
                throw;
            }

            _client = client;
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
            client.Dispose();
            _client = null;
            if (closedOnIt)
            {
                ClosedOn(notification, topic, payload.Length, ex);
            }

            throw;
        }

        _closedOn = null;
        _closedOnCount = 0;
    }

    /// <summary>
    /// The broker accepted a new connection and closed it on this message. An MQTT 3.1.1 broker has no other way to
    /// refuse a publish (mosquitto's <c>max_packet_size</c>, a cloud broker's size limit or ACL): retried as an outage,
    /// the message was held for ever as "peer down", and every alert queued behind it with it. Twice on the same message,
    /// each time right after a successful connect, is a refusal: rejected, so the runner goes on with the next one.
    /// </summary>
    private void ClosedOn(AlertNotification notification, string topic, int bytes, Exception ex)
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
            $"{Peer} closed the connection on this message twice, each time right after accepting the connection, so it will not take it " +
            $"({bytes} bytes of JSON to {topic}; {(_config.Protocol == MqttProtocol.V311 ? "MQTT 3.1.1 has no refusal" : "no reason given")}: " +
            $"most likely over the broker's maximum packet size, or a topic its ACL forbids): {ex.Message}", ex);
    }

    /// <summary>
    /// Wraps the factory's certificate check to keep why it refused: MQTTnet reports only "rejected by the
    /// RemoteCertificateValidationCallback", which does not tell a wrong <c>ca_file</c> from a wrong host name.
    /// </summary>
    private void Explain(MqttClientOptions options)
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

            _rejection = Reason(args);
            return false;
        };
    }

    private string Reason(MqttClientCertificateValidationEventArgs args)
    {
        var name = _config.Tls.ServerName ?? _config.Host;
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
        }
    }
}
