using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Payloads;
using Microsoft.Extensions.Logging;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace EdgeTwin.Uplink.Mqtt;

/// <summary>MQTTnet 5 client per connection; QoS 1 publishes whose PUBACK is the delivery acknowledgement.</summary>
internal sealed class MqttTransport : IUplinkTransport
{
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(3);
    private static readonly CoalescingStreamProvider CoalescingStreams = new();
    private readonly MqttUplinkOptions _options;
    private readonly IMqttEncoder _encoder;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly X509Certificate2Collection? _trustedCas;
    private readonly X509Certificate2Collection? _clientCertificates;

    public MqttTransport(MqttUplinkOptions options, IMqttEncoder encoder, TimeProvider time, ILogger logger)
    {
        _options = options;
        _encoder = encoder;
        _time = time;
        _logger = logger;
        if (options.Tls.Enabled)
        {
            // Loaded once at start, so a bad file is a start-up error, not a reconnect loop.
            if (options.Tls.CaFile is { } ca)
            {
                _trustedCas = [];
                _trustedCas.ImportFromPemFile(ca);
                if (_trustedCas.Count == 0)
                {
                    throw new UplinkOptionsException([$"Tls.CaFile '{ca}' holds no PEM certificate"]);
                }
            }

            if (options.Tls.ClientCertificateFile is { } certFile)
            {
                _clientCertificates = [LoadClientCertificate(certFile, options.Tls.ClientKeyFile, options.Tls.ClientCertificatePassword)];
            }
        }
    }

    public string Name => _options.Name;

    public string Peer => $"mqtt{(_options.Tls.Enabled ? "s" : "")}://{_options.Host}:{_options.EffectivePort}";

    public async Task<IUplinkSession> ConnectAsync(CancellationToken cancellationToken)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        try
        {
            var will = _encoder.BeginSession();
            var result = await client.ConnectAsync(BuildOptions(will), cancellationToken).ConfigureAwait(false);
            if (result.ResultCode != MqttClientConnectResultCode.Success)
            {
                throw new UplinkConnectException($"{Peer} refused the connection: {result.ResultCode} {result.ReasonString}".TrimEnd());
            }

            var session = new MqttSession(this, client, result.ReceiveMaximum);
            await session.PublishAllAsync(_encoder.Birth(_time.GetUtcNow()), cancellationToken).ConfigureAwait(false);
            return session;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    private MqttClientOptions BuildOptions(MqttOutgoing will)
    {
        var v5 = _options.Protocol == MqttProtocol.V500;
        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer(_options.Host, _options.EffectivePort)
            .WithStreamProvider(CoalescingStreams)
            .WithProtocolVersion(v5 ? MqttProtocolVersion.V500 : MqttProtocolVersion.V311)
            .WithClientId(_options.EffectiveClientId)
            .WithKeepAlivePeriod(_options.KeepAlive)
            .WithTimeout(_options.Delivery.ConnectTimeout)
            .WithWillTopic(will.Topic)
            .WithWillPayload(will.Payload)
            .WithWillQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .WithWillRetain(will.Retain);
        if (v5)
        {
            builder = builder.WithCleanStart(!_options.PersistentSession)
                .WithSessionExpiryInterval(_options.PersistentSession ? (uint)_options.SessionExpiry.TotalSeconds : 0);
            if (will.IsJson)
            {
                builder = builder.WithWillContentType("application/json").WithWillPayloadFormatIndicator(MqttPayloadFormatIndicator.CharacterData);
            }
        }
        else
        {
            builder = builder.WithCleanSession(!_options.PersistentSession);
        }

        if (_options.Username is { } user)
        {
            builder = builder.WithCredentials(user, _options.Password ?? "");
        }

        if (_options.Tls.Enabled)
        {
            var tls = new MqttClientTlsOptionsBuilder()
                .UseTls()
                .WithTargetHost(_options.Tls.ServerName ?? _options.Host)
                .WithCertificateValidationHandler(ValidateServerCertificate);
            if (_clientCertificates is not null)
            {
                tls = tls.WithClientCertificates(_clientCertificates);
            }

            builder = builder.WithTlsOptions(tls.Build());
        }

        return builder.Build();
    }

    /// <summary>Chain to the configured CA (or the system store) and host name must both hold; nothing is ever waved through.</summary>
    private bool ValidateServerCertificate(MqttClientCertificateValidationEventArgs args)
    {
        var errors = args.SslPolicyErrors;
        if (args.Certificate is null || (errors & (SslPolicyErrors.RemoteCertificateNotAvailable | SslPolicyErrors.RemoteCertificateNameMismatch)) != 0)
        {
            return false;
        }

        if (_trustedCas is null)
        {
            return errors == SslPolicyErrors.None;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(_trustedCas);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (args.Chain is not null)
        {
            foreach (var element in args.Chain.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        using var leaf = X509CertificateLoader.LoadCertificate(args.Certificate.GetRawCertData());
        return chain.Build(leaf);
    }

    private static X509Certificate2 LoadClientCertificate(string certFile, string? keyFile, string? password)
    {
        if (keyFile is null && (certFile.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase) || certFile.EndsWith(".p12", StringComparison.OrdinalIgnoreCase)))
        {
            return X509CertificateLoader.LoadPkcs12FromFile(certFile, password);
        }

        using var pem = keyFile is null ? X509Certificate2.CreateFromPemFile(certFile) : X509Certificate2.CreateFromPemFile(certFile, keyFile);
        if (!pem.HasPrivateKey)
        {
            throw new UplinkOptionsException([$"Tls.ClientCertificateFile '{certFile}' has no private key (set Tls.ClientKeyFile)"]);
        }

        // A PEM key is ephemeral; SslStream wants a certificate whose key it can use for the handshake.
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
    }

    private MqttApplicationMessage ToMessage(MqttOutgoing outgoing)
    {
        var message = new MqttApplicationMessage
        {
            Topic = outgoing.Topic,
            PayloadSegment = new ArraySegment<byte>(outgoing.Payload),
            QualityOfServiceLevel = MqttQualityOfServiceLevel.AtLeastOnce,
            Retain = outgoing.Retain,
        };
        if (_options.Protocol == MqttProtocol.V500 && outgoing.IsJson)
        {
            message.ContentType = "application/json";
            message.PayloadFormatIndicator = MqttPayloadFormatIndicator.CharacterData;
        }

        return message;
    }

    private static DeliveryOutcome Classify(MqttClientPublishResult result, string topic) => result.ReasonCode switch
    {
        MqttClientPublishReasonCode.Success or MqttClientPublishReasonCode.NoMatchingSubscribers => DeliveryOutcome.Delivered,
        // Refusals that a resend cannot change: pass over the message rather than stall the outbox.
        MqttClientPublishReasonCode.NotAuthorized or MqttClientPublishReasonCode.TopicNameInvalid
            or MqttClientPublishReasonCode.PayloadFormatInvalid => DeliveryOutcome.Rejected,
        _ => throw new UplinkPeerException($"Broker answered {result.ReasonCode} {result.ReasonString} to a publish on '{topic}'".TrimEnd()),
    };

    private sealed class MqttSession(MqttTransport transport, IMqttClient client, ushort? receiveMaximum) : IUplinkSession
    {
        private readonly Lock _sendLock = new();
        private readonly List<MqttOutgoing> _outgoing = new(2); // only under _sendLock

        public int? PeerWindow => receiveMaximum is > 0 ? receiveMaximum : null;

        public Task<DeliveryOutcome> SendAsync(OutboxEntry entry, bool historical, CancellationToken cancellationToken)
        {
            lock (_sendLock)
            {
                // Encoding and starting the publishes under one lock keeps Sparkplug seq in wire order.
                _outgoing.Clear();
                try
                {
                    transport._encoder.Encode(entry, historical, _outgoing);
                }
                catch (InvalidBodyException ex)
                {
                    Log.EncodeFailed(transport._logger, ex, transport.Name, entry.Sequence);
                    return Task.FromResult(DeliveryOutcome.Rejected);
                }

                if (_outgoing.Count == 1)
                {
                    var only = _outgoing[0];
                    return ClassifyAsync(client.PublishAsync(transport.ToMessage(only), cancellationToken), only.Topic);
                }

                var publishes = new (Task<MqttClientPublishResult> Publish, string Topic)[_outgoing.Count];
                for (var i = 0; i < publishes.Length; i++)
                {
                    publishes[i] = (client.PublishAsync(transport.ToMessage(_outgoing[i]), cancellationToken), _outgoing[i].Topic);
                }

                return CollectAsync(publishes);
            }
        }

        private static async Task<DeliveryOutcome> ClassifyAsync(Task<MqttClientPublishResult> publish, string topic) =>
            Classify(await publish.ConfigureAwait(false), topic);

        private static async Task<DeliveryOutcome> CollectAsync((Task<MqttClientPublishResult> Publish, string Topic)[] publishes)
        {
            var outcome = DeliveryOutcome.Delivered;
            foreach (var (publish, topic) in publishes)
            {
                if (Classify(await publish.ConfigureAwait(false), topic) == DeliveryOutcome.Rejected)
                {
                    outcome = DeliveryOutcome.Rejected;
                }
            }

            return outcome;
        }

        public async Task PublishAllAsync(IReadOnlyList<MqttOutgoing> messages, CancellationToken cancellationToken)
        {
            foreach (var m in messages)
            {
                Task<MqttClientPublishResult> publish;
                lock (_sendLock)
                {
                    publish = client.PublishAsync(transport.ToMessage(m), cancellationToken);
                }

                if (Classify(await publish.ConfigureAwait(false), m.Topic) == DeliveryOutcome.Rejected)
                {
                    throw new UplinkPeerException($"{transport.Peer} refused the publish on '{m.Topic}'");
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                if (client.IsConnected)
                {
                    using var cts = new CancellationTokenSource(CloseTimeout);
                    try
                    {
                        await PublishAllAsync([transport._encoder.Death(transport._time.GetUtcNow())], cts.Token).ConfigureAwait(false);
                    }
                    finally
                    {
                        await client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), cts.Token).ConfigureAwait(false);
                    }
                }
            }
            finally
            {
                client.Dispose();
            }
        }
    }
}
