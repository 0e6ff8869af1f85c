using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.State;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace EdgeTwin.Alerting.Sinks;

/// <summary>
/// Publishes the JSON message (<see cref="AlertJson"/>) at QoS 1 to a local broker (any broker on the LAN, or the agent's
/// embedded one). Connects on first delivery and again after a failure; a PUBACK is delivery.
/// </summary>
public sealed class MqttSink : IAlertSink
{
    private readonly MqttSinkConfig _config;
    private readonly string _site;
    private readonly string _gateway;
    private IMqttClient? _client;

    public MqttSink(MqttSinkConfig config, string site, string gateway)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _site = site;
        _gateway = gateway;
    }

    public string Name => _config.Name;

    public bool FollowsState => false;

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
        if (client is not { IsConnected: true })
        {
            client?.Dispose();
            _client = null;
            client = new MqttClientFactory().CreateMqttClient();
            var builder = new MqttClientOptionsBuilder()
                .WithTcpServer(_config.Host, _config.Port)
                .WithProtocolVersion(MqttProtocolVersion.V500)
                .WithClientId($"edgetwin-alerts-{_gateway}-{_config.Name}")
                .WithCleanStart(true)
                .WithTimeout(_config.Timeout);
            if (_config.Username is { } user)
            {
                builder = builder.WithCredentials(user, _config.Password ?? "");
            }

            try
            {
                var result = await client.ConnectAsync(builder.Build(), cancellationToken).ConfigureAwait(false);
                if (result.ResultCode != MqttClientConnectResultCode.Success)
                {
                    throw new SinkRejectedException($"mqtt://{_config.Host}:{_config.Port} refused the connection: {result.ResultCode}");
                }
            }
            catch
            {
                client.Dispose();
                throw;
            }

            _client = client;
        }

        var message = new MqttApplicationMessageBuilder()
            .WithTopic(TopicFor(alerts))
            .WithPayload(AlertJson.Encode(_site, _gateway, notification, alerts))
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .WithContentType("application/json")
            .Build();
        try
        {
            var published = await client.PublishAsync(message, cancellationToken).ConfigureAwait(false);
            if (published.ReasonCode is not (MqttClientPublishReasonCode.Success or MqttClientPublishReasonCode.NoMatchingSubscribers))
            {
                throw new SinkRejectedException($"mqtt://{_config.Host}:{_config.Port} refused the message: {published.ReasonCode}");
            }
        }
        catch (Exception ex) when (ex is not SinkRejectedException)
        {
            client.Dispose();
            _client = null;
            throw;
        }
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
