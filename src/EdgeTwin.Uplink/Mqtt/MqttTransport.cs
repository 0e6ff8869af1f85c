using System.Buffers;
using EdgeTwin.Core;
using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Payloads;
using EdgeTwin.Uplink.Sparkplug;
using Microsoft.Extensions.Logging;
using MQTTnet;
using MQTTnet.Protocol;

namespace EdgeTwin.Uplink.Mqtt;

/// <summary>MQTTnet 5 client per connection; QoS 1 publishes whose PUBACK is the delivery acknowledgement.</summary>
internal sealed class MqttTransport : IUplinkTransport
{
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(3);
    private readonly MqttUplinkOptions _options;
    private readonly IMqttEncoder _encoder;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly MqttClientOptionsFactory _connection;

    public MqttTransport(MqttUplinkOptions options, IMqttEncoder encoder, TimeProvider time, ILogger logger)
    {
        _options = options;
        _encoder = encoder;
        _time = time;
        _logger = logger;
        _connection = new MqttClientOptionsFactory(options, logger); // loads the TLS files now: a bad file is a start-up error
        _servers = [.. options.Servers];
        _peers = [.. _servers.Select(_connection.PeerOf)];
        _allPeers = string.Join(", ", _peers);
        _serverFailures = [.. _servers.Select(_ => new RepeatedFailureLog(time))];
        // One STATE per server: a host application publishes its STATE on each broker it is connected to, and an offline
        // on A (older timestamp) must not be taken as stale against the online seen on B, nor B's online as A's.
        _hosts = encoder is SparkplugEncoder && options.SparkplugPrimaryHostId is { } hostId
            ? [.. _servers.Select(_ => new PrimaryHostState(hostId))]
            : null;
    }

    private readonly MqttBrokerAddress[] _servers;
    private readonly string[] _peers; // mqtt[s]://host:port of each server, for logs
    private readonly string _allPeers;
    // Per server, which of its failed connects get a line: a long outage of one broker of the pair must not log every round.
    private readonly RepeatedFailureLog[] _serverFailures; // only the connect loop (one ConnectAsync at a time) uses them
    // The configured primary host's STATE per server, kept across connections (its last timestamp decides what is stale); null without one.
    private readonly PrimaryHostState[]? _hosts;
    private object? _waitingSince; // a boxed DateTimeOffset while a connection waits for the primary host, else null
    private int _server; // the server connected to or tried last (index into _servers)
    private int _connected = -1; // the server of the session up now, -1 while none
    private int _lastSession = -1; // the server of the last session that came up, -1 before the first
    private int _afterSession = -1; // set when a session ended: the next round starts at the server after it
    private int _roundStart; // where a round of connect attempts starts
    private int _hostMisses; // servers in a row on which the primary host was not online (several servers only)

    /// <summary>The primary host the edge node waits for before its births and since when it waits now; null without one.</summary>
    public PrimaryHostWait? PrimaryHost => _options.SparkplugPrimaryHostId is { } id && _hosts is not null ? new PrimaryHostWait(id, Volatile.Read(ref _waitingSince) as DateTimeOffset?) : null;

    public string Name => _options.Name;

    /// <summary>
    /// <c>mqtt[s]://host:port</c> of the server the session is with (or being connected to); with several servers and no
    /// session, all of them (<c>mqtt://a:1883, mqtt://b:1883</c>): a failed round is about the whole list.
    /// </summary>
    public string Peer => _servers.Length > 1 && Volatile.Read(ref _connected) < 0 ? _allPeers : _peers[Volatile.Read(ref _server)];

    /// <summary><c>host:port</c> of the server the uplink has a session with now; null while it has none.</summary>
    public string? ConnectedServer => Volatile.Read(ref _connected) is var i and >= 0 ? _servers[i].ToString() : null;

    /// <summary>A round tries every server once, each with its own connect timeout.</summary>
    public int ConnectAttempts => _servers.Length;

    /// <summary>
    /// One round over the servers (README "Reconnecting"): in list order, from the first at start; after a session ended,
    /// from the server after the one it was on, so that one (just lost, or without the primary host) is tried last.
    /// A failure of one moves to the next at once; the pump's backoff follows only a round in which all failed.
    /// </summary>
    public async Task<IUplinkSession> ConnectAsync(CancellationToken cancellationToken)
    {
        var n = _servers.Length;
        if (Interlocked.Exchange(ref _afterSession, -1) is var ended and >= 0)
        {
            _roundStart = (ended + 1) % n;
        }

        if (n == 1)
        {
            Volatile.Write(ref _server, 0);
            return await ConnectToAsync(0, cancellationToken).ConfigureAwait(false);
        }

        var failures = new List<string>(n);
        Exception? last = null;
        for (var k = 0; k < n; k++)
        {
            var i = (_roundStart + k) % n;
            Volatile.Write(ref _server, i);
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            attempt.CancelAfter(_options.Delivery.ConnectTimeout);
            try
            {
                var session = await ConnectToAsync(i, attempt.Token).ConfigureAwait(false);
                _serverFailures[i].Succeeded();
                if (_lastSession is var previous and >= 0 && previous != i)
                {
                    Log.ServerSwitched(_logger, Name, _peers[i], _peers[previous]);
                }

                _lastSession = i;
                return session;
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested && ex is not OutOfMemoryException)
            {
                var failure = ex is OperationCanceledException
                    ? new TimeoutException($"{_peers[i]} did not complete the connect within {_options.Delivery.ConnectTimeout.TotalSeconds:0.###} s", ex)
                    : ex;
                var reason = ConnectFailures.Describe(failure);
                failures.Add($"{_peers[i]}: {reason}");
                last = failure;
                var line = _serverFailures[i].Failed(reason);
                if (k < n - 1 && line.Kind == FailureLineKind.Log)
                {
                    Log.ServerFailed(_logger, Name, _peers[i], reason, _peers[(i + 1) % n]);
                }
            }
        }

        throw new UplinkConnectException($"none of the {n} servers took the connection: {string.Join("; ", failures)}", last);
    }

    private async Task<IUplinkSession> ConnectToAsync(int server, CancellationToken cancellationToken)
    {
        var host = _hosts?[server];
        var client = new MqttClientFactory().CreateMqttClient();
        var end = new SessionEnd();
        client.DisconnectedAsync += e =>
        {
            OnDisconnected(end, e);
            return Task.CompletedTask;
        };
        MqttSession? born = null; // set once the NBIRTH is out: a rebirth request before it is answered by that NBIRTH
        MqttSession? current = null; // set once the session exists: it learns the primary host's STATE
        client.ApplicationMessageReceivedAsync += e =>
        {
            if (host is not null && e.ApplicationMessage.Topic == host.Topic)
            {
                OnHostState(host, e.ApplicationMessage, Volatile.Read(ref current));
            }
            else
            {
                Volatile.Read(ref born)?.OnCommand(e.ApplicationMessage);
            }

            return Task.CompletedTask;
        };
        try
        {
            var will = _encoder.BeginSession();
            MqttClientConnectResult result;
            try
            {
                result = await client.ConnectAsync(BuildOptions(will, _servers[server]), cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                Volatile.Write(ref _shortSessions, 0); // the broker is away, not busy with another connection of ours
                throw;
            }

            end.ConnectedAt = _time.GetTimestamp();
            if (result.ResultCode != MqttClientConnectResultCode.Success)
            {
                throw new UplinkConnectException(_connection.Refusal(result, "uplinks.mqtt.protocol: \"3.1.1\"", _servers[server], (_options.EffectiveClientId, "uplinks.mqtt.client_id")));
            }

            Volatile.Write(ref _connected, server);

            if (_encoder is SparkplugEncoder sparkplug)
            {
                await SubscribeAsync(client, sparkplug.CommandTopic, static (t, uplink, peer, topic, reason) => Log.CommandSubscribeRefused(t._logger, uplink, peer, topic, reason), cancellationToken).ConfigureAwait(false);
            }

            // Read before the birth reads the facts: a change in between is published again at the first send.
            var session = new MqttSession(this, client, end, server, host, result.ReceiveMaximum, _options.FactsRevision?.Invoke() ?? 0, result.MaximumPacketSize, () => Volatile.Write(ref born, current));
            Volatile.Write(ref current, session);
            if (host is not null)
            {
                // Before any birth ([tck-id-message-flow-edge-node-birth-publish-phid-wait]): a retained STATE arrives with the
                // SUBACK; the births wait in ReadyAsync, outside the connect timeout.
                await SubscribeAsync(client, host.Topic, (t, uplink, peer, topic, reason) => Log.HostSubscribeRefused(t._logger, uplink, peer, topic, reason, host.HostId), cancellationToken).ConfigureAwait(false);
                return session;
            }

            await session.PublishAllAsync(_encoder.Birth(_time.GetUtcNow()), cancellationToken).ConfigureAwait(false);
            session.Born();
            return session;
        }
        catch
        {
            Interlocked.CompareExchange(ref _connected, -1, server);
            client.Dispose();
            throw;
        }
    }

    /// <summary>The session on <paramref name="server"/> ended (failed, stopped or left for want of the primary host).</summary>
    private void SessionEnded(int server)
    {
        Interlocked.CompareExchange(ref _connected, -1, server);
        Volatile.Write(ref _afterSession, server);
    }

    /// <summary>A session that the broker closed within this of its connect counts toward <see cref="ShortSessionsForTakeover"/>.</summary>
    internal static readonly TimeSpan ShortSession = TimeSpan.FromSeconds(30);

    /// <summary>Broker-closed short sessions in a row, each reconnect accepted at once, taken as a takeover by another connection.</summary>
    internal const int ShortSessionsForTakeover = 3;

    // Sessions in a row the broker closed (no DISCONNECT from us) within ShortSession of their connect; a failed connect or a
    // longer session resets it. A broker that closes the old connection on a takeover without saying so (MQTT 3.1.1, and
    // mosquitto 2.0.11 for MQTT 5 too: checked, it sends no DISCONNECT 0x8E) shows only this.
    private int _shortSessions;

    /// <summary>How one connection ended, as the client's Disconnected event and our own close saw it.</summary>
    private sealed class SessionEnd
    {
        public long ConnectedAt;
        public volatile bool ClosedByUs;
        public volatile bool TakenOver;
        public volatile bool Short; // within ShortSession of the connect
        public volatile bool PeerClosed; // the broker closed or reset the connection (not a keep-alive timeout)
        public readonly TaskCompletionSource Seen = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private static readonly TimeSpan DisconnectEventWait = TimeSpan.FromSeconds(1);

    private void OnDisconnected(SessionEnd end, MqttClientDisconnectedEventArgs e)
    {
        if (e.ClientWasConnected && !end.ClosedByUs)
        {
            // MQTT 5 brokers that say so (EMQX, HiveMQ, mosquitto 2.0.12+)
            end.TakenOver = e.Reason == MqttClientDisconnectReason.SessionTakenOver;
            end.Short = _time.GetElapsedTime(end.ConnectedAt) < ShortSession;
            end.PeerClosed = !IsTimeout(e.Exception);
        }

        end.Seen.TrySetResult();

        static bool IsTimeout(Exception? e)
        {
            for (; e is not null; e = e.InnerException)
            {
                if (e is MQTTnet.Exceptions.MqttCommunicationTimedOutException or TimeoutException)
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>True when the broker closed (or reset) <paramref name="end"/>'s connection; waits briefly for MQTTnet to say so.</summary>
    private static async ValueTask<bool> PeerClosedAsync(SessionEnd end)
    {
        try
        {
            await end.Seen.Task.WaitAsync(DisconnectEventWait).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return false;
        }

        return end.PeerClosed && !end.ClosedByUs;
    }

    /// <summary>
    /// Why the broker ended <paramref name="end"/>'s session when another connection with our client id is the cause, else
    /// null. <paramref name="closedOnOurSend"/>: the close answered a publish of ours (see <see cref="IUplinkSession.EndedByPeerAsync"/>),
    /// so it neither counts toward nor continues a run of short sessions.
    /// </summary>
    private UplinkTakenOverException? TakeoverOf(SessionEnd end, bool closedOnOurSend)
    {
        var who = $"client id '{_options.EffectiveClientId}'";
        var cause = $"a second gateway runs with gateway_id '{_options.Gateway}' (an old gateway revived next to its replacement, or two configs with one gateway_id or client_id); the two take the session from each other until one is stopped";
        if (end.TakenOver)
        {
            return new UplinkTakenOverException($"{Peer} ended the session because another connection logged in with {who} (MQTT 5 DISCONNECT 0x8E, session taken over): {cause}");
        }

        bool shortClose;
        if (closedOnOurSend || !end.Short)
        {
            Volatile.Write(ref _shortSessions, 0);
            shortClose = false;
        }
        else
        {
            shortClose = Interlocked.Increment(ref _shortSessions) >= ShortSessionsForTakeover;
        }

        return shortClose
            ? new UplinkTakenOverException(
                $"{Peer} closed the session {Volatile.Read(ref _shortSessions)} times in a row within {ShortSession.TotalSeconds:0} s of connecting, each reconnect accepted at once, " +
                $"without saying why: most likely another connection logs in with {who} and the broker closes the older one; {cause}")
            : null;
    }

    private MqttClientOptions BuildOptions(MqttOutgoing will, MqttBrokerAddress server)
    {
        var v5 = _options.Protocol == MqttProtocol.V500;
        var builder = _connection.CreateBuilder(_options.EffectiveClientId, server)
            .WithWillTopic(will.Topic)
            .WithWillPayload(will.Payload)
            .WithWillQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .WithWillRetain(will.Retain);
        if (v5)
        {
            builder = builder.WithCleanStart(!_options.EffectivePersistentSession)
                .WithSessionExpiryInterval(_options.EffectivePersistentSession ? (uint)_options.SessionExpiry.TotalSeconds : 0);
            if (will.IsJson)
            {
                builder = builder.WithWillContentType("application/json").WithWillPayloadFormatIndicator(MqttPayloadFormatIndicator.CharacterData);
            }
        }
        else
        {
            builder = builder.WithCleanSession(!_options.EffectivePersistentSession);
        }

        return builder.Build();
    }

    /// <summary>
    /// Subscribes the edge node with QoS 1 before its NBIRTH: to its NCMD topic ([tck-id-message-flow-edge-node-ncmd-subscribe])
    /// and, with a primary host, to its STATE topic; the clean session drops them with the connection, so every connection
    /// subscribes again. A refusal (broker ACL) is logged through <paramref name="refused"/>, not fatal.
    /// </summary>
    private async Task SubscribeAsync(IMqttClient client, string topic, Action<MqttTransport, string, string, string, string> refused, CancellationToken cancellationToken)
    {
        var options = new MqttClientSubscribeOptionsBuilder().WithTopicFilter(topic, MqttQualityOfServiceLevel.AtLeastOnce).Build();
        var result = await client.SubscribeAsync(options, cancellationToken).ConfigureAwait(false);
        foreach (var item in result.Items)
        {
            if (item.ResultCode is not (MqttClientSubscribeResultCode.GrantedQoS0 or MqttClientSubscribeResultCode.GrantedQoS1 or MqttClientSubscribeResultCode.GrantedQoS2))
            {
                refused(this, Name, Peer, topic, item.ResultCode.ToString());
            }
        }
    }

    /// <summary>
    /// One STATE message of the primary host: malformed and stale ones are logged and ignored; an accepted offline ends a
    /// born session (<see cref="MqttSession.OnHostOffline"/>); an accepted online releases a session waiting in ReadyAsync.
    /// </summary>
    private void OnHostState(PrimaryHostState host, MqttApplicationMessage message, MqttSession? session)
    {
        HostStateVerdict verdict;
        long timestamp;
        try
        {
            verdict = host.Observe(message.Payload.ToArray(), out timestamp);
        }
        catch (FormatException ex)
        {
            Log.HostStateUnreadable(_logger, Name, message.Topic, ex.Message);
            return;
        }

        switch (verdict)
        {
            case HostStateVerdict.Stale:
                Log.HostStateStale(_logger, Name, message.Topic, timestamp, host.LastTimestamp);
                break;
            case HostStateVerdict.Offline:
                session?.OnHostOffline(timestamp);
                break;
        }
    }

    /// <summary>
    /// The clean stop's DISCONNECT. A Sparkplug edge node on MQTT 5 sets reason 0x04 "Disconnect with Will Message"
    /// ([tck-id-payloads-ndeath-will-message-publisher-disconnect-mqtt50]), so the broker publishes the NDEATH will as
    /// well as the one published just before; a normal DISCONNECT discards the will. 3.1.1 has no reason codes (its
    /// NDEATH is the one published before, [tck-id-payloads-ndeath-will-message-publisher-disconnect-mqtt311]).
    /// </summary>
    private MqttClientDisconnectOptions DisconnectOptions()
    {
        var builder = new MqttClientDisconnectOptionsBuilder();
        if (_options.Encoding == MqttPayloadEncoding.SparkplugB && _options.Protocol == MqttProtocol.V500)
        {
            builder = builder.WithReason(MqttClientDisconnectOptionsReason.DisconnectWithWillMessage);
        }

        return builder.Build();
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

    private const MqttClientPublishReasonCode PacketTooLarge = (MqttClientPublishReasonCode)0x95;

    private static DeliveryOutcome Classify(MqttClientPublishResult result, string topic, long? size = null) => result.ReasonCode switch
    {
        MqttClientPublishReasonCode.Success or MqttClientPublishReasonCode.NoMatchingSubscribers => DeliveryOutcome.Delivered,
        // Refusals that a resend cannot change: pass over the message rather than stall the outbox.
        // 0x95 (packet too large: mosquitto's message_size_limit answers a v5 PUBACK so) is not in MQTTnet's enum;
        // as a session failure the same message went again after every reconnect and nothing behind it was delivered.
        MqttClientPublishReasonCode.NotAuthorized or MqttClientPublishReasonCode.TopicNameInvalid
            or MqttClientPublishReasonCode.PayloadFormatInvalid or PacketTooLarge => DeliveryOutcome.Refused(ReasonText(result), topic, size),
        _ => throw new UplinkPeerException($"Broker answered {result.ReasonCode} {result.ReasonString} to a publish on '{topic}'".TrimEnd()),
    };

    /// <summary>The PUBACK's reason code (hex and name, as the MQTT 5 specification lists it) and the broker's reason string.</summary>
    internal static string ReasonText(MqttClientPublishResult result)
    {
        var code = result.ReasonCode;
        var name = code == PacketTooLarge ? "PacketTooLarge" : code.ToString();
        return $"PUBACK 0x{(int)code:X2} {name}{(string.IsNullOrEmpty(result.ReasonString) ? "" : ": " + result.ReasonString)}";
    }

    /// <summary>
    /// The bytes a QoS 1 PUBLISH of <paramref name="m"/> takes on the wire (what an MQTT 5 broker's maximum packet size
    /// counts): fixed header, topic, packet id, properties (v5: payload format indicator and content type for JSON), payload.
    /// </summary>
    internal static long PublishPacketSize(MqttOutgoing m, bool v5)
    {
        var properties = v5 ? (m.IsJson ? 2 + 3 + "application/json".Length : 0) : -1;
        long remaining = 2 + System.Text.Encoding.UTF8.GetByteCount(m.Topic) + 2
            + (properties < 0 ? 0 : VarIntSize(properties) + properties) + m.Payload.Length;
        return 1 + VarIntSize(remaining) + remaining;

        static int VarIntSize(long n) => n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
    }

    private sealed class MqttSession(MqttTransport transport, IMqttClient client, SessionEnd end, int server, PrimaryHostState? host, ushort? receiveMaximum, long factsRevision, uint? maximumPacketSize, Action onBorn) : IUplinkSession, IUplinkProgressSession
    {
        private bool _born; // the NBIRTH is out (under _sendLock)
        private bool _hostOffline; // the primary host went offline after the births: nothing more is published (under _sendLock)
        private bool _leavingForNext; // a host asked for the next server: nothing more is published here (under _sendLock)
        private readonly CancellationTokenSource _ending = new();

        public CancellationToken Ending => _ending.Token;

        public UplinkLeavingException EndingCause
        {
            get
            {
                lock (_sendLock)
                {
                    return _leavingForNext
                        ? new UplinkNextServerException($"Uplink {transport.Name}: a Sparkplug host asked for the next server (NCMD {SparkplugEncoder.NextServerMetric})")
                        : new UplinkHostOfflineException("the Sparkplug primary host went offline");
                }
            }
        }

        /// <summary>The births went out (the caller published them): NCMDs are answered from now on.</summary>
        public void Born()
        {
            lock (_sendLock)
            {
                _born = true;
            }

            onBorn();
        }

        /// <summary>
        /// With a primary host: waits until its STATE says online, then publishes the births (under the send lock, after a
        /// last look at the state, so an offline between the two cannot let an NBIRTH out). While it waits the status says so.
        /// </summary>
        public async Task ReadyAsync(CancellationToken cancellationToken)
        {
            if (host is null)
            {
                return; // ConnectAsync published the births
            }

            while (true)
            {
                if (!host.IsOnline)
                {
                    Interlocked.CompareExchange(ref transport._waitingSince, transport._time.GetUtcNow(), null);
                    Log.WaitingForHost(transport._logger, transport.Name, host.HostId, host.Topic);
                    var online = host.WaitOnlineAsync(cancellationToken);
                    using var walk = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    var walkOn = WalkOnAsync(walk.Token);
                    var done = await Task.WhenAny(online, end.Seen.Task, walkOn).ConfigureAwait(false);
                    await walk.CancelAsync().ConfigureAwait(false);
                    if (done == end.Seen.Task)
                    {
                        throw new UplinkPeerException($"{transport.Peer} closed the connection while the edge node waited for primary host '{host.HostId}' to be online");
                    }

                    if (done == walkOn && await walkOn.ConfigureAwait(false) is { } reason && !host.IsOnline)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        var n = transport._servers.Length;
                        Interlocked.Increment(ref transport._hostMisses);
                        Log.HostNotOnlineHere(transport._logger, transport.Name, host.HostId, transport._peers[server], reason, transport._peers[(server + 1) % n]);
                        throw new UplinkHostOfflineException($"Uplink {transport.Name}: primary host '{host.HostId}' is not online on {transport._peers[server]} ({reason})");
                    }

                    await online.ConfigureAwait(false); // a cancellation (stop) ends the wait here
                }

                IReadOnlyList<MqttOutgoing> births;
                var publishes = new List<(Task<MqttClientPublishResult> Publish, string Topic)>();
                lock (_sendLock)
                {
                    if (!host.IsOnline)
                    {
                        continue; // offline again meanwhile: wait once more
                    }

                    births = transport._encoder.Birth(transport._time.GetUtcNow());
                    foreach (var m in births)
                    {
                        publishes.Add((client.PublishAsync(transport.ToMessage(m), cancellationToken), m.Topic));
                    }

                    _born = true;
                }

                Volatile.Write(ref transport._waitingSince, null);
                Volatile.Write(ref transport._hostMisses, 0);
                Log.HostOnline(transport._logger, transport.Name, host.HostId, host.LastTimestamp, transport._encoder is SparkplugEncoder s ? s.BdSeq : -1);
                foreach (var (publish, topic) in publishes)
                {
                    if (Classify(await publish.ConfigureAwait(false), topic).IsRejected)
                    {
                        throw new UplinkPeerException($"{transport.Peer} refused the publish on '{topic}'");
                    }
                }

                onBorn();
                return;
            }
        }

        // An offline STATE on this server while the session waits (before its births), for WalkOnAsync.
        private readonly TaskCompletionSource _offlineWhileWaiting = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>
        /// With several servers: why the edge node should leave this server for the next while its primary host is not
        /// online here (Sparkplug 3.0 has an edge node walk its server list when the host is offline on the current one).
        /// At once on an offline STATE, until every server was tried in a row without the host; then, and when no STATE
        /// comes at all (the host never connected to this broker), after <see cref="MqttUplinkOptions.PrimaryHostWait"/>,
        /// so a host away everywhere costs one connect per wait, not a busy loop. One server: never (it waits here).
        /// </summary>
        private async Task<string?> WalkOnAsync(CancellationToken cancellationToken)
        {
            var n = transport._servers.Length;
            if (n == 1)
            {
                await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
                return null;
            }

            var wait = transport._options.PrimaryHostWait;
            var delay = Task.Delay(wait, transport._time, cancellationToken);
            if (Volatile.Read(ref transport._hostMisses) < n - 1
                && await Task.WhenAny(_offlineWhileWaiting.Task, delay).ConfigureAwait(false) == _offlineWhileWaiting.Task)
            {
                return "its STATE says offline";
            }

            await delay.ConfigureAwait(false);
            return host!.LastTimestamp < 0
                ? $"no STATE within {EdgeTwin.Core.Config.Durations.Approximate(wait)}"
                : $"still offline after {EdgeTwin.Core.Config.Durations.Approximate(wait)}";
        }

        /// <summary>
        /// The primary host went offline ([tck-id-message-flow-edge-node-birth-publish-phid-offline]): a born session stops
        /// publishing at once and ends (the pump disposes it: NDEATH, DISCONNECT, a new connection that waits for the host,
        /// on the next server when there are several). Before the births the session still waits; with several servers the
        /// wait learns of it (<see cref="WalkOnAsync"/>).
        /// </summary>
        public void OnHostOffline(long timestamp)
        {
            lock (_sendLock)
            {
                if (!_born)
                {
                    _offlineWhileWaiting.TrySetResult();
                    return;
                }

                if (_hostOffline || end.ClosedByUs)
                {
                    return;
                }

                _hostOffline = true;
            }

            if (transport._servers.Length > 1)
            {
                Interlocked.Increment(ref transport._hostMisses);
            }

            Log.HostOffline(transport._logger, transport.Name, host!.HostId, timestamp);
            _ending.Cancel();
        }

        // The broker's CONNACK maximum packet size (MQTT 5; 0/null = none). A larger PUBLISH is a protocol error to it:
        // mosquitto dropped the connection, the uplink reconnected and sent the same message again, for ever.
        private readonly long _maximumPacketSize = maximumPacketSize is > 0 ? maximumPacketSize.Value : long.MaxValue;

        public bool ReportsProgress => transport._encoder is JsonMqttEncoder;

        public async ValueTask<Exception?> EndedByPeerAsync(bool closedOnOurSend)
        {
            // The sends may fail ("not connected") a moment before MQTTnet raises Disconnected with the reason.
            try
            {
                await end.Seen.Task.WaitAsync(DisconnectEventWait).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                return null; // not closed by the broker (an acknowledgement timeout, a failed send of our own)
            }

            return end.ClosedByUs ? null : transport.TakeoverOf(end, closedOnOurSend);
        }

        public async Task PublishProgressAsync(UplinkProgress progress, CancellationToken cancellationToken)
        {
            if (transport._encoder is not JsonMqttEncoder json)
            {
                throw new NotSupportedException($"Uplink {transport.Name}: progress is published with the JSON encoding only");
            }

            Task<MqttClientPublishResult> publish;
            string topic;
            lock (_sendLock)
            {
                var m = json.Progress(transport._time.GetUtcNow(), progress);
                topic = m.Topic;
                publish = client.PublishAsync(transport.ToMessage(m), cancellationToken);
            }

            if (Classify(await publish.ConfigureAwait(false), topic).IsRejected)
            {
                throw new UplinkPeerException($"{transport.Peer} refused the status publish on '{topic}'");
            }
        }

        private readonly Lock _sendLock = new();
        private readonly List<MqttOutgoing> _outgoing = new(2); // only under _sendLock
        private long _factsRevision = factsRevision; // only under _sendLock

        public int? PeerWindow => receiveMaximum is > 0 ? receiveMaximum : null;

        public Task<DeliveryOutcome> SendAsync(OutboxEntry entry, bool historical, CancellationToken cancellationToken) =>
            SendAsync(entry, historical, out _, cancellationToken);

        public Task<DeliveryOutcome> SendAsync(OutboxEntry entry, bool historical, out long wireBytes, CancellationToken cancellationToken)
        {
            wireBytes = 0;
            lock (_sendLock)
            {
                if (_hostOffline)
                {
                    // Not refused: the entry stays in the outbox and goes after the host is back.
                    return Task.FromException<DeliveryOutcome>(new UplinkHostOfflineException($"Uplink {transport.Name}: primary host '{host!.HostId}' is offline"));
                }

                if (_leavingForNext)
                {
                    // Not sent here: the entry stays in the outbox and goes to the next server.
                    return Task.FromException<DeliveryOutcome>(EndingCause);
                }

                // Encoding and starting the publishes under one lock keeps Sparkplug seq in wire order.
                RebirthIfFactsChanged(cancellationToken);
                _outgoing.Clear();
                try
                {
                    transport._encoder.Encode(entry, historical, _outgoing);
                }
                catch (InvalidBodyException ex)
                {
                    Log.EncodeFailed(transport._logger, ex, transport.Name, entry.Sequence);
                    return Task.FromResult(DeliveryOutcome.Refused($"not sent: the body cannot be encoded ({ex.Message})"));
                }

                var v5 = transport._options.Protocol == MqttProtocol.V500;
                foreach (var m in _outgoing)
                {
                    var size = PublishPacketSize(m, v5);
                    if (size > _maximumPacketSize)
                    {
                        Log.PacketTooLarge(transport._logger, transport.Name, entry.Sequence, size, m.Topic, transport.Peer, _maximumPacketSize);
                        return Task.FromResult(DeliveryOutcome.Refused(
                            $"not sent: a {size}-byte packet is over the broker's maximum packet size of {_maximumPacketSize} bytes (CONNACK)", m.Topic, size));
                    }
                }

                if (_outgoing.Count == 1)
                {
                    var only = _outgoing[0];
                    wireBytes = PublishPacketSize(only, v5);
                    return AnswerAsync(client.PublishAsync(transport.ToMessage(only), cancellationToken), only.Topic, wireBytes);
                }

                var publishes = new (Task<MqttClientPublishResult> Publish, string Topic, long Size)[_outgoing.Count];
                for (var i = 0; i < publishes.Length; i++)
                {
                    var size = PublishPacketSize(_outgoing[i], v5);
                    wireBytes += size;
                    publishes[i] = (client.PublishAsync(transport.ToMessage(_outgoing[i]), cancellationToken), _outgoing[i].Topic, size);
                }

                return CollectAsync(publishes);
            }
        }

        /// <summary>
        /// An NCMD with <c>Node Control/Rebirth</c> = true: NBIRTH again (same bdSeq, seq 0) under the send lock, so it
        /// lands between two entries' messages; every device's DBIRTH precedes its next DDATA. With <c>Node Control/Next
        /// Server</c> = true and several servers: the session ends (<see cref="OnNextServer"/>); that wins over a rebirth in
        /// the same NCMD, the next server gets fresh births anyway. Other commands are ignored (no other writable metrics).
        /// </summary>
        public void OnCommand(MqttApplicationMessage message)
        {
            if (transport._encoder is not SparkplugEncoder sparkplug || message.Topic != sparkplug.CommandTopic)
            {
                return;
            }

            NodeCommands asked;
            try
            {
                asked = SparkplugEncoder.ReadCommand(message.Payload.ToArray(), sparkplug.Aliases);
            }
            catch (Google.Protobuf.InvalidProtocolBufferException ex)
            {
                Log.CommandUnreadable(transport._logger, ex, transport.Name, message.Topic);
                return;
            }

            if ((asked & NodeCommands.NextServer) != 0 && OnNextServer())
            {
                return;
            }

            if ((asked & NodeCommands.Rebirth) == 0)
            {
                return;
            }

            lock (_sendLock)
            {
                if (end.ClosedByUs || _hostOffline || _leavingForNext)
                {
                    return; // stopping (or the host went away): an NBIRTH after our NDEATH would revive a node that is going away
                }

                Log.RebirthRequested(transport._logger, transport.Name);
                foreach (var m in transport._encoder.Rebirth(transport._time.GetUtcNow()))
                {
                    _ = ObserveCommandRebirthAsync(m);
                }
            }
        }

        /// <summary>
        /// <c>Node Control/Next Server</c> (Sparkplug 3.0: a host asks the edge node to walk to the next MQTT server of its
        /// list). Several servers: nothing more is published here, the session ends like on a primary host going offline
        /// (the pump lets what is in flight answer, the dispose publishes NDEATH and disconnects with the will) and the next
        /// round starts at the server after this one, at once; what this server did not acknowledge goes there. One server:
        /// there is no other to walk to, and leaving and coming back would only cost the host an NDEATH and a rebirth, so
        /// the node logs it and stays. True when the session ends.
        /// </summary>
        private bool OnNextServer()
        {
            var n = transport._servers.Length;
            if (n == 1)
            {
                Log.NextServerAlone(transport._logger, transport.Name, transport._peers[server]);
                return false;
            }

            lock (_sendLock)
            {
                if (end.ClosedByUs || _hostOffline || _leavingForNext)
                {
                    return true; // already ending
                }

                _leavingForNext = true;
            }

            Log.NextServerRequested(transport._logger, transport.Name, transport._peers[server], transport._peers[(server + 1) % n]);
            _ending.Cancel();
            return true;
        }

        private async Task ObserveCommandRebirthAsync(MqttOutgoing m)
        {
            using var timeout = new CancellationTokenSource(transport._options.Delivery.AckTimeout);
            await ObserveRebirthAsync(client.PublishAsync(transport.ToMessage(m), timeout.Token), m.Topic).ConfigureAwait(false);
        }

        /// <summary>
        /// Publishes the birth again when the facts changed since the last one (under the send lock, before the entry's
        /// messages). Its outcome is not the entry's: a refused status is logged, never a reason to drop data.
        /// </summary>
        private void RebirthIfFactsChanged(CancellationToken cancellationToken)
        {
            if (transport._options.FactsRevision is not { } revision)
            {
                return;
            }

            var now = revision();
            if (now == _factsRevision)
            {
                return;
            }

            _factsRevision = now;
            Log.Rebirth(transport._logger, transport.Name);
            foreach (var m in transport._encoder.Rebirth(transport._time.GetUtcNow()))
            {
                _ = ObserveRebirthAsync(client.PublishAsync(transport.ToMessage(m), cancellationToken), m.Topic);
            }
        }

        private async Task ObserveRebirthAsync(Task<MqttClientPublishResult> publish, string topic)
        {
            try
            {
                if (Classify(await publish.ConfigureAwait(false), topic).IsRejected)
                {
                    Log.RebirthFailed(transport._logger, null, transport.Name, topic);
                }
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // The connection's own publishes fail too and the pump reconnects, which publishes a fresh birth.
                Log.RebirthFailed(transport._logger, ex, transport.Name, topic);
            }
        }

        private async Task<DeliveryOutcome> AnswerAsync(Task<MqttClientPublishResult> publish, string topic, long size)
        {
            try
            {
                return Classify(await publish.ConfigureAwait(false), topic, size);
            }
            // Not when the session is ending on purpose (host offline, Next Server): the pump aborted this send, the broker
            // closed nothing, and waiting for its close cost every such switch a second (DisconnectEventWait).
            catch (MQTTnet.Exceptions.MqttCommunicationException ex) when (!end.ClosedByUs && !_ending.IsCancellationRequested)
            {
                if (await PeerClosedAsync(end).ConfigureAwait(false))
                {
                    throw new UplinkPeerClosedException($"{transport.Peer} closed the connection while a {size}-byte publish on '{topic}' awaited its PUBACK", topic, size, ex);
                }

                throw;
            }
        }

        private async Task<DeliveryOutcome> CollectAsync((Task<MqttClientPublishResult> Publish, string Topic, long Size)[] publishes)
        {
            var outcome = DeliveryOutcome.Delivered;
            foreach (var (publish, topic, size) in publishes)
            {
                if (await AnswerAsync(publish, topic, size).ConfigureAwait(false) is { IsRejected: true } refused && !outcome.IsRejected)
                {
                    outcome = refused; // the first refusal names the entry's
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

                if (Classify(await publish.ConfigureAwait(false), m.Topic).IsRejected)
                {
                    throw new UplinkPeerException($"{transport.Peer} refused the publish on '{m.Topic}'");
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            end.ClosedByUs = true;
            transport.SessionEnded(server);
            bool born;
            lock (_sendLock)
            {
                born = _born;
            }

            try
            {
                if (client.IsConnected && born)
                {
                    using var cts = new CancellationTokenSource(CloseTimeout);
                    try
                    {
                        await PublishAllAsync([transport._encoder.Death(transport._time.GetUtcNow())], cts.Token).ConfigureAwait(false);
                    }
                    finally
                    {
                        await client.DisconnectAsync(transport.DisconnectOptions(), cts.Token).ConfigureAwait(false);
                    }
                }
                else if (client.IsConnected)
                {
                    // Never born (still waiting for the primary host): a normal DISCONNECT, which discards the will.
                    using var cts = new CancellationTokenSource(CloseTimeout);
                    await client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), cts.Token).ConfigureAwait(false);
                }
            }
            finally
            {
                client.Dispose(); // _ending has no timer to release; a late OnHostOffline may still cancel it
            }
        }
    }
}
