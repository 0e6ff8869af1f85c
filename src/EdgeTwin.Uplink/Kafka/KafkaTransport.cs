using Confluent.Kafka;
using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Payloads;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Uplink.Kafka;

/// <summary>
/// One idempotent producer (acks=all) per session; a delivery report with status Persisted is the acknowledgement.
/// The device id is the key, so a device's messages share a partition and keep their order. The gateway's status
/// (online with its progress, offline at a clean stop) goes to the <c>status</c> topic keyed by the gateway id, so a
/// compacted topic keeps the latest one per gateway, as MQTT's retained status does.
/// </summary>
internal sealed class KafkaTransport : IUplinkTransport
{
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(3);
    private readonly KafkaUplinkOptions _options;
    private readonly UplinkIdentity _identity;
    private readonly TopicTemplate _topics;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    // Set for the transport's life once a broker refused a record's timestamp (INVALID_TIMESTAMP: the topic's
    // message.timestamp.before/after.max.ms limits, e.g. Kafka 4's one hour into the future for a gateway booted with its
    // clock ahead, or a day-old backlog on a topic that keeps only recent times). The refusal is for good, so with the
    // described time the outbox would retry the same record forever and deliver nothing after it.
    private int _sendTimeStamps;

    // librdkafka reports every failed reconnect (every ~50 ms against a refusing port): one line per error (its code and
    // reason, digits aside: "after 0ms") per ErrorLogEvery, carrying how many were held back; another reason, e.g. a TLS
    // failure after the refusals, is logged at once. The callback runs on librdkafka's thread.
    private static readonly TimeSpan ErrorLogEvery = TimeSpan.FromMinutes(5);
    private const int MaxErrorKinds = 64;
    private readonly Lock _errorGate = new();
    private readonly Dictionary<string, (long LoggedAt, int Held)> _errorsLogged = new(StringComparer.Ordinal);

    // Header values are copied by librdkafka at produce time, so one array per value serves every record.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<OutboxKind, byte[]> KindHeaders = new();
    private readonly byte[] _siteHeader;
    private readonly byte[] _gatewayHeader;

    public KafkaTransport(KafkaUplinkOptions options, ILogger logger, TimeProvider? time = null)
    {
        _options = options;
        _identity = options.Identity;
        _siteHeader = System.Text.Encoding.UTF8.GetBytes(_identity.Site);
        _gatewayHeader = System.Text.Encoding.UTF8.GetBytes(_identity.Gateway);
        _topics = new TopicTemplate(options.TopicTemplate, _identity, kafkaNames: true);
        _time = time ?? TimeProvider.System;
        _logger = logger;
    }

    private string StatusTopic => _topics.Format("status", _identity.Gateway);

    public string Name => _options.Name;

    public string Peer => $"kafka://{_options.BootstrapServers}";

    /// <summary>True once a broker refused a described time: records carry the send time from then on.</summary>
    internal bool StampsSendTime => Volatile.Read(ref _sendTimeStamps) != 0;

    internal ProducerConfig BuildConfig() => BuildConfig(_options);

    /// <summary>
    /// The producer's settings: <c>settings:</c> first, then what the uplink sets itself over them (which
    /// <see cref="KafkaUplinkOptions.Warnings"/> reports when a pass-through entry is lost that way).
    /// </summary>
    internal static ProducerConfig BuildConfig(KafkaUplinkOptions _options)
    {
        // Java's partitioner (murmur2 of the key): a device's records land on the partition a Java, Kafka Streams or
        // Connect producer would give the same key, so the centre can co-partition and join our topics with theirs.
        // librdkafka's default (CRC32) put them elsewhere. Settings may still choose another.
        var config = new ProducerConfig { Partitioner = Partitioner.Murmur2Random };
        foreach (var (k, v) in _options.Settings)
        {
            config.Set(k, v);
        }

        config.BootstrapServers = _options.BootstrapServers;
        config.ClientId = $"edgetwin-{_options.Gateway}";
        config.Acks = Acks.All;
        config.EnableIdempotence = true;
        config.MaxInFlight = 5; // the most idempotence allows while keeping order
        config.CompressionType = _options.Compression switch
        {
            "gzip" => CompressionType.Gzip,
            "snappy" => CompressionType.Snappy,
            "lz4" => CompressionType.Lz4,
            "zstd" => CompressionType.Zstd,
            _ => CompressionType.None,
        };
        config.LingerMs = _options.Linger.TotalMilliseconds;
        // librdkafka retries inside this time; past it the delivery fails and the session is renewed.
        config.MessageTimeoutMs = (int)_options.Delivery.AckTimeout.TotalMilliseconds;
        config.SocketConnectionSetupTimeoutMs = (int)_options.Delivery.ConnectTimeout.TotalMilliseconds;
        config.SecurityProtocol = _options.Security switch
        {
            KafkaSecurity.Ssl => SecurityProtocol.Ssl,
            KafkaSecurity.SaslPlaintext => SecurityProtocol.SaslPlaintext,
            KafkaSecurity.SaslSsl => SecurityProtocol.SaslSsl,
            _ => SecurityProtocol.Plaintext,
        };
        if (_options.Security is KafkaSecurity.SaslPlaintext or KafkaSecurity.SaslSsl)
        {
            config.SaslMechanism = _options.SaslMechanism switch
            {
                KafkaSaslMechanism.Plain => SaslMechanism.Plain,
                KafkaSaslMechanism.ScramSha256 => SaslMechanism.ScramSha256,
                _ => SaslMechanism.ScramSha512,
            };
            config.SaslUsername = _options.SaslUsername;
            config.SaslPassword = _options.SaslPassword;
        }

        if (_options.Security is KafkaSecurity.Ssl or KafkaSecurity.SaslSsl)
        {
            config.SslCaLocation = _options.SslCaFile;
            config.SslCertificateLocation = _options.SslCertificateFile;
            config.SslKeyLocation = _options.SslKeyFile;
            config.SslKeyPassword = _options.SslKeyPassword;
            config.EnableSslCertificateVerification = true;
            config.SslEndpointIdentificationAlgorithm = SslEndpointIdentificationAlgorithm.Https;
        }

        return config;
    }

    /// <summary>librdkafka's error callback (internal for tests).</summary>
    internal void OnError(Error e)
    {
        int held;
        var kind = ErrorKind(e);
        lock (_errorGate)
        {
            var now = _time.GetTimestamp();
            if (!e.IsFatal && _errorsLogged.TryGetValue(kind, out var last) && _time.GetElapsedTime(last.LoggedAt, now) < ErrorLogEvery)
            {
                _errorsLogged[kind] = (last.LoggedAt, last.Held + 1);
                return;
            }

            held = _errorsLogged.TryGetValue(kind, out last) ? last.Held : 0;
            if (_errorsLogged.Count >= MaxErrorKinds)
            {
                _errorsLogged.Clear();
            }

            _errorsLogged[kind] = (now, 0);
        }

        if (held == 0)
        {
            Log.KafkaError(_logger, _options.Name, e.Code.ToString(), e.Reason, e.IsFatal);
        }
        else
        {
            Log.KafkaErrorRepeated(_logger, _options.Name, e.Code.ToString(), e.Reason, e.IsFatal, held, ErrorLogEvery);
        }
    }

    /// <summary>
    /// What makes two errors the same for the log: the code and the reason without digits ("after 0ms") and without
    /// librdkafka's own count (", 1 identical error(s) suppressed", added to the same error after a while): with it, the
    /// refused reconnects of a day-long outage came back every 5 min as a second, "new" error with its first-time line.
    /// </summary>
    internal static string ErrorKind(Error e)
    {
        const string Suppressed = " identical error(s) suppressed";
        var reason = e.Reason;
        var at = reason.IndexOf(Suppressed, StringComparison.Ordinal);
        if (at > 0)
        {
            var from = at;
            while (from > 0 && char.IsAsciiDigit(reason[from - 1]))
            {
                from--;
            }

            if (from >= 2 && reason[from - 2] == ',' && reason[from - 1] == ' ')
            {
                from -= 2;
            }

            reason = reason.Remove(from, at + Suppressed.Length - from);
        }

        return e.Code + ":" + string.Concat(reason.Where(c => !char.IsAsciiDigit(c)));
    }

    public async Task<IUplinkSession> ConnectAsync(CancellationToken cancellationToken)
    {
        // Read before the first status reads the facts: a change in between is published again at the first send.
        var factsRevision = _options.FactsRevision?.Invoke() ?? 0;
        var producer = new ProducerBuilder<string, byte[]>(BuildConfig())
            .SetErrorHandler((_, e) => OnError(e))
            .SetLogHandler((_, m) => { })
            .Build();
        // librdkafka connects lazily; ask for metadata so an unreachable cluster shows up as a failed connect.
        // GetMetadata blocks (with its own timeout), so it runs on the pool rather than the caller's thread.
        var timeout = _options.Delivery.ConnectTimeout;
        var probe = Task.Run(
            () =>
            {
                using var admin = new DependentAdminClientBuilder(producer.Handle).Build();
                var metadata = admin.GetMetadata(timeout);
                if (metadata.Brokers.Count == 0)
                {
                    throw new UplinkConnectException($"{Peer} returned no brokers");
                }
            },
            CancellationToken.None);
        try
        {
            await probe.WaitAsync(timeout + TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
            return new KafkaSession(this, producer, factsRevision);
        }
        catch
        {
            // A stop or our own timeout can come while GetMetadata still uses the producer's handle; freeing the
            // producer under it aborted the process (librdkafka: pthread_mutex_lock assertion). Free it after the probe.
            _ = probe.ContinueWith(
                static (t, p) =>
                {
                    _ = t.Exception; // observed: the connect already failed for its own reason
                    ((IProducer<string, byte[]>)p!).Dispose();
                },
                producer,
                CancellationToken.None,
                TaskContinuationOptions.None, TaskScheduler.Default);
            throw;
        }
    }

    private static readonly HashSet<ErrorCode> Permanent =
    [
        ErrorCode.MsgSizeTooLarge, ErrorCode.InvalidMsg, ErrorCode.InvalidMsgSize,
        ErrorCode.TopicAuthorizationFailed, ErrorCode.TopicException, ErrorCode.InvalidRecord, ErrorCode.Local_InvalidArg,
    ];

    private sealed class KafkaSession(KafkaTransport transport, IProducer<string, byte[]> producer, long factsRevision) : IUplinkSession, IUplinkProgressSession
    {
        private long _factsRevision = factsRevision;

        // The progress of the last status, repeated by a status made for new facts: a compacted topic keeps only the
        // latest record of the gateway, and that one must not lose the progress members.
        private readonly Lock _progressGate = new();
        private UplinkProgress? _lastProgress; // under _progressGate: the pump's progress task writes, a lane reads

        // Set when a send failed for a reason other than a refusal: the session is over and a closing status would
        // only wait out its timeout before the reconnect.
        private volatile bool _broken;

        public int? PeerWindow => null;

        public bool ReportsProgress => true;

        public async Task PublishProgressAsync(UplinkProgress progress, CancellationToken cancellationToken)
        {
            var value = JsonEnvelope.Status(transport._identity, online: true, transport._time.GetUtcNow(), transport._options.Facts?.Invoke(), progress);
            lock (_progressGate)
            {
                _lastProgress = progress;
            }

            await PublishStatusAsync(value, cancellationToken).ConfigureAwait(false);
        }

        /// <summary>
        /// A status with the new facts when they changed since the session's last one (a model hot-reloaded), enqueued
        /// before the entry's record. Before, a Kafka consumer learnt of a model update only with the next progress status
        /// (60 s; never with <c>ProgressInterval: 0</c>) while predictions of the new model were already arriving. Its
        /// outcome is not the entry's: a refused status is logged.
        /// </summary>
        private void RepublishIfFactsChanged()
        {
            if (transport._options.FactsRevision is not { } revision)
            {
                return;
            }

            var now = revision();
            var before = Interlocked.Exchange(ref _factsRevision, now);
            if (now == before)
            {
                return;
            }

            Log.Rebirth(transport._logger, transport.Name);
            UplinkProgress? progress;
            lock (_progressGate)
            {
                progress = _lastProgress;
            }

            var value = JsonEnvelope.Status(transport._identity, online: true, transport._time.GetUtcNow(), transport._options.Facts?.Invoke(), progress);
            _ = ObserveAsync(PublishStatusAsync(value, CancellationToken.None));

            async Task ObserveAsync(Task publish)
            {
                try
                {
                    await publish.ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    Log.RebirthFailed(transport._logger, ex, transport.Name, transport.StatusTopic);
                }
            }
        }

        private async Task PublishStatusAsync(byte[] value, CancellationToken cancellationToken)
        {
            var topic = transport.StatusTopic;
            var message = new Message<string, byte[]> { Key = transport._identity.Gateway, Value = value };
            try
            {
                var result = await producer.ProduceAsync(topic, message, cancellationToken).ConfigureAwait(false);
                if (result.Status != PersistenceStatus.Persisted)
                {
                    throw new UplinkPeerException($"Kafka status record to {result.TopicPartition} ended {result.Status}");
                }
            }
            catch (ProduceException<string, byte[]> ex)
            {
                throw new UplinkPeerException($"{transport.Peer} refused the status record on '{topic}': {ex.Error.Code} {ex.Error.Reason}".TrimEnd());
            }
        }

        public Task<DeliveryOutcome> SendAsync(OutboxEntry entry, bool historical, CancellationToken cancellationToken) =>
            SendAsync(entry, historical, out _, cancellationToken);

        public Task<DeliveryOutcome> SendAsync(OutboxEntry entry, bool historical, out long wireBytes, CancellationToken cancellationToken)
        {
            wireBytes = 0;
            RepublishIfFactsChanged();
            byte[] value;
            try
            {
                value = JsonEnvelope.Encode(transport._identity, entry, historical);
            }
            catch (InvalidBodyException ex)
            {
                Log.EncodeFailed(transport._logger, ex, transport.Name, entry.Sequence);
                return Task.FromResult(DeliveryOutcome.Refused($"not sent: the body cannot be encoded ({ex.Message})"));
            }

            var message = new Message<string, byte[]>
            {
                Key = entry.Record.DeviceId,
                Value = value,
                Timestamp = transport.StampsSendTime ? Timestamp.Default : new Timestamp(entry.Record.TimestampUnixMs, TimestampType.CreateTime),
                Headers =
                [
                    new Header("edgetwin-seq", System.Text.Encoding.ASCII.GetBytes(entry.Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture))),
                    new Header("edgetwin-historical", historical ? "1"u8.ToArray() : "0"u8.ToArray()),
                    // The default topic (edgetwin.{site}.{kind}) is shared by every gateway of a site and seq is per
                    // gateway: without these a consumer that works from headers (dedup, contiguity, routing) mixed them up.
                    new Header("edgetwin-site", transport._siteHeader),
                    new Header("edgetwin-gateway", transport._gatewayHeader),
                    new Header("edgetwin-kind", KindHeaders.GetOrAdd(entry.Record.Kind, static k => System.Text.Encoding.ASCII.GetBytes(UplinkIdentity.KindName(k)))),
                ],
            };
            // ProduceAsync enqueues synchronously before returning, so call order is the order on the partition.
            var topic = transport._topics.Format(entry.Record.Kind, entry.Record.DeviceId);
            var produce = producer.ProduceAsync(topic, message, cancellationToken);
            // The record as produced, before compression (lz4 shrinks a batch of them; the budget errs on the safe side).
            wireBytes = value.Length + System.Text.Encoding.UTF8.GetByteCount(message.Key);
            foreach (var header in message.Headers)
            {
                wireBytes += header.Key.Length + header.GetValueBytes().Length;
            }

            return Await(produce, topic, value.Length);
        }

        private async Task<DeliveryOutcome> Await(Task<DeliveryResult<string, byte[]>> produce, string topic, long size)
        {
            try
            {
                var result = await produce.ConfigureAwait(false);
                return result.Status == PersistenceStatus.Persisted
                    ? DeliveryOutcome.Delivered
                    : throw new UplinkPeerException($"Kafka delivery to {result.TopicPartition} ended {result.Status}");
            }
            catch (ProduceException<string, byte[]> ex) when (Permanent.Contains(ex.Error.Code))
            {
                return DeliveryOutcome.Refused($"{ex.Error.Code}: {ex.Error.Reason}".TrimEnd(' ', ':'), topic, size);
            }
            catch (ProduceException<string, byte[]> ex) when (ex.Error.Code == ErrorCode.InvalidTimestamp && Interlocked.Exchange(ref transport._sendTimeStamps, 1) == 0)
            {
                // Not per record: a resend of one record would land behind later ones of its partition. The session ends
                // and the next one sends again from the last acknowledged entry, in order, stamped with the send time.
                // (The other records of the refused batch fail the same way and end the session below, unlogged.)
                _broken = true;
                Log.KafkaTimestampRefused(transport._logger, transport.Name, transport.Peer, ex.DeliveryResult?.Topic ?? "?", ex.DeliveryResult?.Message?.Timestamp.UnixTimestampMs ?? 0);
                throw new UplinkPeerException($"{transport.Peer} refused the record's timestamp (INVALID_TIMESTAMP); sending again with the send time");
            }
            catch
            {
                _broken = true;
                throw;
            }
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                if (!_broken)
                {
                    // Kafka has no last will: a clean end says offline (with the time), so a consumer of the status
                    // topic can tell a stopped gateway from a quiet one; a crash shows as a status that stops ageing.
                    using var cts = new CancellationTokenSource(CloseTimeout);
                    try
                    {
                        await PublishStatusAsync(JsonEnvelope.Status(transport._identity, online: false, transport._time.GetUtcNow()), cts.Token).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is not OutOfMemoryException)
                    {
                        Log.OfflineStatusFailed(transport._logger, ex, transport.Name, transport.Peer);
                    }
                }
            }
            finally
            {
                // Disposing waits for librdkafka's threads; keep that off the caller's thread.
                await Task.Run(producer.Dispose).ConfigureAwait(false);
            }
        }
    }
}
