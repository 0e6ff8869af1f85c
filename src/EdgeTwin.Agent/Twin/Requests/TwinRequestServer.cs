using System.Buffers;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Threading.Channels;
using EdgeTwin.Agent.Twin.Thermal;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Twin.Line;
using EdgeTwin.Uplink.Mqtt;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MQTTnet;
using MQTTnet.Protocol;

namespace EdgeTwin.Agent.Twin.Requests;

/// <summary>
/// Answers what-if requests from the central twins over MQTT 5 request/response, on the MQTT uplink's broker with the
/// uplink's connection settings but its own client and session (<c>{uplink client id}-rpc</c>), so the outbox's delivery
/// path is untouched. A request is a PUBLISH on <c>…/twin/request/{scenario}</c> with a response topic and correlation
/// data; the reply goes to the response topic with the same correlation data, the CLI's <c>--json</c> result (or an error
/// object) as payload, content type <c>application/json</c> and user property <c>status</c> = ok | error.
/// The receive handler only queues (bounded; a full queue answers <c>busy</c> at once); <c>max_concurrency</c> workers run
/// the scenarios on the live calibrated twin with a per-request timeout. Successful results are also published as
/// events on the outbox. Never touches a real device.
/// </summary>
public sealed partial class TwinRequestServer : IHostedService, IAsyncDisposable
{
    public const string MeterName = "EdgeTwin.Agent.TwinRequests";

    private static readonly TimeSpan PublishTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);

    private readonly TwinRequestsConfig _config;
    private readonly MqttUplinkOptions? _uplink;
    private readonly ThermalTwinStage? _stage;
    private readonly LineTwinStage? _line;
    private readonly IEventSink? _events;
    private readonly ILogger _logger;
    // Per server of the list, which failed connects get a line: one broker of a pair down for days must not log every round.
    private EdgeTwin.Core.RepeatedFailureLog[]? _serverFailures; // set at start, then only the connect loop uses them
    private string? _peer; // mqtt[s]://host:port of the server serving now, null while none
    private static readonly string QuietEvery = Durations.Approximate(TimeSpan.FromMinutes(5));
    private readonly Meter _meter;
    private readonly Counter<long> _requests;
    private readonly Histogram<double> _duration;
    private readonly Channel<Request> _queue;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _tasks = [];
    private readonly TaskCompletionSource _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private IMqttClient? _client;
    private ResponseTopicGuard? _responseTopics;
    private int _queued;

    /// <param name="line">The live line twin for the line what-ifs (null when the site has no <c>line:</c> section).</param>
    public TwinRequestServer(TwinRequestsConfig config, MqttUplinkOptions? uplink, ThermalTwinStage? stage, IEventSink? events, ILogger<TwinRequestServer> logger, IMeterFactory? meterFactory = null, LineTwinStage? line = null)
    {
        _line = line;
        _config = config ?? throw new ArgumentNullException(nameof(config));
        _uplink = uplink;
        _stage = stage;
        _events = events;
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        _queue = Channel.CreateBounded<Request>(new BoundedChannelOptions(config.Queue) { SingleWriter = false, SingleReader = config.MaxConcurrency == 1, FullMode = BoundedChannelFullMode.Wait });
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _requests = _meter.CreateCounter<long>("edgetwin.twin.requests", "{request}", "Twin requests answered, by scenario, status (ok/error) and code.");
        _duration = _meter.CreateHistogram<double>("edgetwin.twin.request.duration", "s", "Time from a request's arrival to its reply, by scenario.");
        _meter.CreateObservableGauge("edgetwin.twin.requests.queued", () => Volatile.Read(ref _queued), "{request}", "Requests waiting for a worker.");
    }

    /// <summary>Whether <see cref="StartAsync"/> started the server (MQTT 5 uplink, not disabled).</summary>
    public bool Running { get; private set; }

    /// <summary>The subscription filter in use (null while off).</summary>
    public string? Filter { get; private set; }

    /// <summary>Completes once the first subscription is acknowledged by the broker (tests wait on it).</summary>
    public Task Subscribed => _subscribed.Task;

    /// <summary><c>mqtt[s]://host:port</c> of the server the requests are served on now; null while there is none.</summary>
    public string? Server => Volatile.Read(ref _peer);

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (_config.Enabled == false)
        {
            LogDisabled(_logger, "twin_requests.enabled is false");
            return Task.CompletedTask;
        }

        if (_uplink is null)
        {
            LogDisabled(_logger, "there is no MQTT uplink (uplinks.mqtt)");
            return Task.CompletedTask;
        }

        if (_uplink.Protocol != MqttProtocol.V500)
        {
            // Request/response needs MQTT 5's response topic and correlation data.
            if (_config.Enabled == true)
            {
                LogNeedsV5(_logger);
            }
            else
            {
                LogDisabled(_logger, "uplinks.mqtt.protocol is 3.1.1; MQTT 5 request/response needs protocol 5");
            }

            return Task.CompletedTask;
        }

        MqttClientOptionsFactory factory;
        try
        {
            // The uplink's factory logs a broker certificate it rejects with the reason (name, trust, validity), as the
            // uplink does; without the logger the server only said "cannot connect" for every retry.
            factory = new MqttClientOptionsFactory(_uplink with { Name = "mqtt (twin requests)" }, _logger);
        }
        catch (Exception ex) when (ex is EdgeTwin.Uplink.UplinkOptionsException or System.Security.Cryptography.CryptographicException or IOException)
        {
            // The uplink reports the same file problem itself; the agent keeps polling and buffering.
            LogTlsFailed(_logger, ex);
            return Task.CompletedTask;
        }

        var clientId = _config.ClientId ?? factory.UplinkClientId + "-rpc";
        // The uplink's broker list (uplinks.mqtt.hosts), walked by the uplink's rule (ConnectLoopAsync); each server is
        // held to its own certificate name, as the uplink's connections are.
        var servers = _uplink.Servers.Select(server => new Broker(
            factory.CreateBuilder(clientId, server).WithCleanStart(true).WithSessionExpiryInterval(0).Build(),
            factory.PeerOf(server),
            // A broker that speaks only MQTT 3.1.1 refuses the CONNECT with a bare "1": say what that means here.
            result => factory.Refusal(result, "uplinks.mqtt.protocol: \"3.1.1\" (twin requests need MQTT 5 and stay off with it)", server, (clientId, "twin_requests.client_id")))).ToArray();
        Filter = _config.Filter(_uplink.Site, _uplink.Gateway);
        _responseTopics = new ResponseTopicGuard(_uplink.TopicTemplate, _uplink.Site, _uplink.Gateway, Filter, _config.ResponseFilters(_uplink.Site, _uplink.Gateway));
        Running = true;
        for (var i = 0; i < _config.MaxConcurrency; i++)
        {
            _tasks.Add(Task.Run(() => WorkAsync(_stop.Token), CancellationToken.None));
        }

        _serverFailures = [.. servers.Select(_ => new EdgeTwin.Core.RepeatedFailureLog(TimeProvider.System, every: TimeSpan.FromMinutes(5)))];
        _tasks.Add(Task.Run(() => ConnectLoopAsync(servers, _stop.Token), CancellationToken.None));
        var peers = string.Join(", ", servers.Select(b => b.Peer)); // once per start
        LogStarted(_logger, Filter, peers, clientId, _config.MaxConcurrency);
        return Task.CompletedTask;
    }

    /// <summary>One server of the list: its connect options, its name for logs, and how a refused CONNECT is told.</summary>
    private sealed record Broker(MqttClientOptions Options, string Peer, Func<MqttClientConnectResult, string> Refusal);

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (!_stop.IsCancellationRequested)
        {
            await _stop.CancelAsync().ConfigureAwait(false);
        }

        _queue.Writer.TryComplete();
        try
        {
            await Task.WhenAll(_tasks).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The host's stop window ended; the tasks observe _stop and end on their own.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        _client?.Dispose();
        _stop.Dispose();
        _meter.Dispose();
    }

    /// <summary>
    /// Connects and serves, following the uplink's rule for its broker list (Uplink README, "Reconnecting"): from the first
    /// server at start; a failed connect moves on to the next server at once; the 1 → 30 s backoff follows only a round
    /// in which every server failed; a lost session waits 1 s, then tries the server after the one lost, so that one comes
    /// last. The server need not be the uplink's of the moment: both walk the same list on their own, and requests are
    /// answered wherever the central twin reaches this client (README "Several brokers").
    /// </summary>
    private async Task ConnectLoopAsync(Broker[] servers, CancellationToken ct)
    {
        var n = servers.Length;
        var i = 0;
        var failedInARow = 0;
        var backoff = TimeSpan.FromSeconds(1);
        while (!ct.IsCancellationRequested)
        {
            var (options, peer, refusal) = servers[i];
            var client = new MqttClientFactory().CreateMqttClient();
            var lost = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var served = false;
            client.ApplicationMessageReceivedAsync += OnMessageAsync;
            client.DisconnectedAsync += _ =>
            {
                lost.TrySetResult();
                return Task.CompletedTask;
            };
            try
            {
                using (var connect = CancellationTokenSource.CreateLinkedTokenSource(ct))
                {
                    connect.CancelAfter(options.Timeout + TimeSpan.FromSeconds(5));
                    var result = await client.ConnectAsync(options, connect.Token).ConfigureAwait(false);
                    if (result.ResultCode != MqttClientConnectResultCode.Success)
                    {
                        // As the uplink's: an expected failure, one line with the reason (it was a warning with a stack trace).
                        throw new EdgeTwin.Uplink.UplinkConnectException(refusal(result));
                    }

                    var sub = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(Filter, MqttQualityOfServiceLevel.AtLeastOnce).Build(), connect.Token).ConfigureAwait(false);
                    var code = sub.Items.Count > 0 ? sub.Items.First().ResultCode : MqttClientSubscribeResultCode.UnspecifiedError;
                    if (code > MqttClientSubscribeResultCode.GrantedQoS2)
                    {
                        throw new InvalidOperationException($"{peer} refused the subscription to {Filter}: {code}");
                    }
                }

                Volatile.Write(ref _client, client);
                Volatile.Write(ref _peer, peer);
                _subscribed.TrySetResult();
                served = true;
                LogConnected(_logger, peer, Filter!);
                _serverFailures![i].Succeeded();
                failedInARow = 0;
                backoff = TimeSpan.FromSeconds(1);
                await lost.Task.WaitAsync(ct).ConfigureAwait(false);
                Volatile.Write(ref _peer, null);
                LogConnectionLost(_logger, peer);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                await CloseAsync(client).ConfigureAwait(false);
                return;
            }
            catch (Exception ex) when (ex is MQTTnet.Exceptions.MqttCommunicationException or EdgeTwin.Uplink.UplinkConnectException or InvalidOperationException or OperationCanceledException or System.Net.Sockets.SocketException or IOException or System.Security.Authentication.AuthenticationException)
            {
                failedInARow++;
                LogFailure(ex, peer, _serverFailures![i], failedInARow < n ? servers[(i + 1) % n].Peer : null, backoff);
            }

            await CloseAsync(client).ConfigureAwait(false);
            i = (i + 1) % n; // after a failure or a lost session alike: the next server of the list
            if (!served && failedInARow < n)
            {
                continue; // the round goes on at once
            }

            failedInARow = 0;
            try
            {
                await Task.Delay(backoff, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (!served)
            {
                backoff = TimeSpan.FromTicks(Math.Min(MaxBackoff.Ticks, backoff.Ticks * 2));
            }
        }
    }

    /// <summary>
    /// A failed connect to <paramref name="peer"/>: one line with the reason, the trace only at Debug (or for a bug),
    /// rate-limited per server as the uplinks' are (a broker gone for days is a line every few minutes, not per retry).
    /// <paramref name="next"/>: the server tried at once after it, null when the round is over and the backoff follows.
    /// </summary>
    private void LogFailure(Exception ex, string peer, EdgeTwin.Core.RepeatedFailureLog failures, string? next, TimeSpan backoff)
    {
        var expected = EdgeTwin.Uplink.ConnectFailures.IsExpected(ex);
        var reason = expected ? EdgeTwin.Uplink.ConnectFailures.Describe(ex) : ex.GetType().FullName + ": " + ex.Message;
        var line = failures.Failed(reason);
        if (line.Kind == EdgeTwin.Core.FailureLineKind.Log && next is not null)
        {
            LogServerFailed(_logger, peer, expected ? reason : ex.Message, next, expected ? null : ex);
        }
        else if (line.Kind == EdgeTwin.Core.FailureLineKind.Log && line.Unlogged > 0)
        {
            LogStillCannotConnect(_logger, peer, Durations.Approximate(line.Down), line.Unlogged, expected ? reason : ex.Message, Durations.Approximate(backoff), expected ? null : ex);
        }
        else if (line.Kind == EdgeTwin.Core.FailureLineKind.Log && expected)
        {
            LogCannotConnect(_logger, peer, reason, Durations.Approximate(backoff));
        }
        else if (line.Kind == EdgeTwin.Core.FailureLineKind.Log)
        {
            LogConnectFailed(_logger, peer, Durations.Approximate(backoff), ex);
        }
        else if (line.Kind == EdgeTwin.Core.FailureLineKind.QuietFromNow)
        {
            LogConnectFailuresQuiet(_logger, peer, QuietEvery);
        }

        if (expected)
        {
            LogConnectDetail(_logger, peer, ex);
        }
    }

    private static async Task CloseAsync(IMqttClient client)
    {
        try
        {
            if (client.IsConnected)
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(3));
                await client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), cts.Token).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException or InvalidOperationException)
        {
            // Closing a connection that is already gone.
        }

        client.Dispose();
    }

    /// <summary>On the MQTT receive path: validate the envelope and queue; never runs a scenario here.</summary>
    private async Task OnMessageAsync(MqttApplicationMessageReceivedEventArgs e)
    {
        var message = e.ApplicationMessage;
        var scenario = message.Topic[(message.Topic.LastIndexOf('/') + 1)..];
        if (string.IsNullOrEmpty(message.ResponseTopic))
        {
            _requests.Add(1, Tags(scenario, "dropped", "no_response_topic"));
            LogNoResponseTopic(_logger, message.Topic);
            return;
        }

        if (_responseTopics?.Problem(message.ResponseTopic) is { } refused)
        {
            // Not answered at all: the error reply would go to the very topic refused.
            _requests.Add(1, Tags(scenario, "dropped", "response_topic_refused"));
            LogResponseTopicRefused(_logger, message.Topic, message.ResponseTopic, refused);
            return;
        }

        var request = new Request(scenario, message.ResponseTopic, message.CorrelationData, new ReadOnlySequence<byte>(message.Payload.ToArray()), Stopwatch.GetTimestamp());
        if (_queue.Writer.TryWrite(request))
        {
            Interlocked.Increment(ref _queued);
            return;
        }

        // Full: say so at once rather than let the requester time out. QoS 0, so the receive path never waits for an ack.
        LogBusy(_logger, scenario, message.ResponseTopic, _config.Queue);
        var reply = TwinReply.Failure(scenario, TwinRequestErrors.Busy, $"busy: {_config.Queue} request(s) already waiting (twin_requests.queue); retry later");
        await ReplyAsync(request, reply, MqttQualityOfServiceLevel.AtMostOnce, _stop.Token).ConfigureAwait(false);
    }

    private async Task WorkAsync(CancellationToken ct)
    {
        try
        {
            await foreach (var request in _queue.Reader.ReadAllAsync(ct).ConfigureAwait(false))
            {
                Interlocked.Decrement(ref _queued);
                await ServeAsync(request, ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    private async Task ServeAsync(Request request, CancellationToken ct)
    {
        // The scenarios are synchronous CPU work: run them on the pool, answer "timeout" when they take too long, and keep
        // this worker (the concurrency slot) until the work really ends so the bound holds.
        var work = Task.Run(() => TwinRequestHandler.Handle(request.Scenario, request.Payload, _stage, _line), CancellationToken.None);
        TwinReply reply;
        var finished = await Task.WhenAny(work, Task.Delay(_config.Timeout, ct)).ConfigureAwait(false) == work;
        if (finished)
        {
            try
            {
                reply = await work.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is InvalidOperationException or ArithmeticException or IndexOutOfRangeException or NullReferenceException or MathNet.Numerics.NonConvergenceException or KeyNotFoundException)
            {
                LogFailed(_logger, request.Scenario, ex);
                reply = TwinReply.Failure(request.Scenario, TwinRequestErrors.Internal, $"{request.Scenario} failed in the agent: {ex.Message}");
            }
        }
        else if (ct.IsCancellationRequested)
        {
            return;
        }
        else
        {
            reply = TwinReply.Failure(request.Scenario, TwinRequestErrors.Timeout, string.Create(CultureInfo.InvariantCulture, $"{request.Scenario} did not finish within {_config.Timeout.TotalSeconds:0.###} s (twin_requests.timeout)"));
        }

        await ReplyAsync(request, reply, MqttQualityOfServiceLevel.AtLeastOnce, ct).ConfigureAwait(false);
        if (!finished)
        {
            try
            {
                await work.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is InvalidOperationException or ArithmeticException or IndexOutOfRangeException or NullReferenceException or MathNet.Numerics.NonConvergenceException or KeyNotFoundException)
            {
                LogFailed(_logger, request.Scenario, ex);
            }
        }

        if (reply.Ok && _events is not null)
        {
            await PublishEventAsync(request, reply, ct).ConfigureAwait(false);
        }
    }

    private async Task ReplyAsync(Request request, TwinReply reply, MqttQualityOfServiceLevel qos, CancellationToken ct)
    {
        var status = reply.Ok ? "ok" : "error";
        _requests.Add(1, Tags(request.Scenario, status, reply.Code ?? "ok"));
        var elapsed = Stopwatch.GetElapsedTime(request.Arrived);
        _duration.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("scenario", Known(request.Scenario)));
        if (reply.Ok)
        {
            LogAnswered(_logger, request.Scenario, elapsed.TotalMilliseconds);
        }
        else
        {
            LogRejected(_logger, request.Scenario, reply.Code!, reply.Error!);
        }

        var builder = new MqttApplicationMessageBuilder()
            .WithTopic(request.ResponseTopic)
            .WithPayload(System.Text.Encoding.UTF8.GetBytes(reply.Json))
            .WithContentType("application/json")
            .WithPayloadFormatIndicator(MqttPayloadFormatIndicator.CharacterData)
            .WithQualityOfServiceLevel(qos)
            .WithUserProperty("status", Utf8(status))
            .WithUserProperty("scenario", Utf8(request.Scenario));
        if (reply.Code is { } code)
        {
            builder = builder.WithUserProperty("code", Utf8(code));
        }

        if (request.CorrelationData is { } correlation)
        {
            builder = builder.WithCorrelationData(correlation);
        }

        if (Volatile.Read(ref _client) is not { IsConnected: true } client)
        {
            LogReplyLost(_logger, request.Scenario, request.ResponseTopic, "not connected");
            return;
        }

        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(PublishTimeout);
            var result = await client.PublishAsync(builder.Build(), cts.Token).ConfigureAwait(false);
            if (!result.IsSuccess && _logger.IsEnabled(LogLevel.Warning))
            {
                LogReplyLost(_logger, request.Scenario, request.ResponseTopic, $"{result.ReasonCode} {result.ReasonString}".TrimEnd());
            }
        }
        catch (Exception ex) when (ex is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException or InvalidOperationException)
        {
            LogReplyLost(_logger, request.Scenario, request.ResponseTopic, ex.Message);
        }
    }

    private async Task PublishEventAsync(Request request, TwinReply reply, CancellationToken ct)
    {
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["scenario"] = request.Scenario,
            ["model"] = TwinRequestHandler.IsLineScenario(request.Scenario) ? EdgeTwin.Twin.Line.LineTwinStage.ModelName : ThermalTwinStage.ModelName,
            ["model_version"] = TwinRequestHandler.IsLineScenario(request.Scenario) ? EdgeTwin.Twin.Line.LineTwinStage.ModelVersion : ThermalTwinStage.ModelVersion,
            ["quantity"] = "what_if",
            ["origin"] = "twin_request",
            ["result"] = reply.Json,
        };
        if (request.CorrelationData is { Length: > 0 and <= 64 } c)
        {
            attributes["correlation_data"] = Convert.ToHexString(c);
        }

        var kind = request.Scenario == TwinRequestHandler.OptimizeCooling ? EdgeEventKind.Recommendation : EdgeEventKind.Prediction;
        try
        {
            await _events!.PublishAsync(new EdgeEvent(kind, "twin_request/" + request.Scenario, DateTimeOffset.UtcNow, EventSeverity.Info, $"{request.Scenario} what-if answered for a central twin", attributes), ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    private static ReadOnlyMemory<byte> Utf8(string value) => System.Text.Encoding.UTF8.GetBytes(value);

    private static string Known(string scenario) => TwinRequestHandler.Fields.ContainsKey(scenario) ? scenario : "unknown";

    private static TagList Tags(string scenario, string status, string code) => new()
    {
        { "scenario", Known(scenario) },
        { "status", status },
        { "code", code },
    };

    private sealed record Request(string Scenario, string ResponseTopic, byte[]? CorrelationData, ReadOnlySequence<byte> Payload, long Arrived);

    [LoggerMessage(Level = LogLevel.Information, Message = "Twin requests off: {Reason}")]
    private static partial void LogDisabled(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Twin requests off: twin_requests.enabled is true but uplinks.mqtt.protocol is 3.1.1; MQTT 5 request/response (response topic, correlation data) needs protocol 5")]
    private static partial void LogNeedsV5(ILogger logger);

    [LoggerMessage(Level = LogLevel.Error, Message = "Twin requests off: the MQTT uplink's TLS files cannot be loaded")]
    private static partial void LogTlsFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Twin requests: serving {Filter} on {Peer} as {ClientId} ({Workers} worker(s))")]
    private static partial void LogStarted(ILogger logger, string filter, string peer, string clientId, int workers);

    [LoggerMessage(Level = LogLevel.Information, Message = "Twin requests: connected to {Peer}, subscribed to {Filter}")]
    private static partial void LogConnected(ILogger logger, string peer, string filter);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Twin requests: connection to {Peer} lost; reconnecting")]
    private static partial void LogConnectionLost(ILogger logger, string peer);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Twin requests: cannot connect to {Peer}; retrying in {Delay}")]
    private static partial void LogConnectFailed(ILogger logger, string peer, string delay, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Twin requests: cannot connect to {Peer}: {Reason}; trying {Next} now")]
    private static partial void LogServerFailed(ILogger logger, string peer, string reason, string next, Exception? exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Twin requests: cannot connect to {Peer}: {Reason}; retrying in {Delay}")]
    private static partial void LogCannotConnect(ILogger logger, string peer, string reason, string delay);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Twin requests: still cannot connect to {Peer} (down {Down}, {Unlogged} failed attempts not logged since the last line): {Reason}; retrying in {Delay}")]
    private static partial void LogStillCannotConnect(ILogger logger, string peer, string down, int unlogged, string reason, string delay, Exception? exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Twin requests: further failed connects to {Peer} are logged once every {Every}, or when the reason changes")]
    private static partial void LogConnectFailuresQuiet(ILogger logger, string peer, string every);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Twin requests: the connect failure with {Peer} in full")]
    private static partial void LogConnectDetail(ILogger logger, string peer, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Twin request on {Topic} has no response topic (MQTT 5 ResponseTopic; a requester publishing with MQTT 3.1.1 cannot set one, it must use MQTT 5); dropped")]
    private static partial void LogNoResponseTopic(ILogger logger, string topic);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Twin request on {Topic} dropped: its response topic {ResponseTopic} is refused because {Reason}; no reply sent")]
    private static partial void LogResponseTopicRefused(ILogger logger, string topic, string responseTopic, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Twin request {Scenario} for {ResponseTopic} refused: busy ({Queue} waiting)")]
    private static partial void LogBusy(ILogger logger, string scenario, string responseTopic, int queue);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Twin request {Scenario} answered in {Milliseconds:0.0} ms")]
    private static partial void LogAnswered(ILogger logger, string scenario, double milliseconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Twin request {Scenario} answered with error {Code}: {Error}")]
    private static partial void LogRejected(ILogger logger, string scenario, string code, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "Twin request {Scenario} failed")]
    private static partial void LogFailed(ILogger logger, string scenario, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Twin request {Scenario}: reply to {ResponseTopic} not delivered: {Reason}")]
    private static partial void LogReplyLost(ILogger logger, string scenario, string responseTopic, string reason);
}
