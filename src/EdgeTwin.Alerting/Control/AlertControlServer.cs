using System.Buffers;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using EdgeTwin.Alerting.Connectivity;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.State;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Alerting.Control;

/// <summary>
/// The running agent's alert control: a Unix stream socket (file mode 0660, so only the service user and its group may
/// talk to it; no TCP port), one JSON request per line, one JSON answer per line:
/// <c>{"op":"list"}</c>, <c>{"op":"history","limit":50}</c>, <c>{"op":"ack","id":12}</c> (or
/// <c>"ids":[11,15]</c>, <c>"rule":"inlet-hot"</c>, <c>"all":true</c> with an optional <c>"severity":"critical"</c>),
/// <c>{"op":"silence","rule":"inlet-hot","seconds":7200}</c> (at most <c>alerts.max_silence</c>). Acknowledges and
/// silences are recorded under the connecting user as the kernel reports it (<see cref="ControlPeer"/>); a <c>by</c> in
/// the request is ignored. Answers carry <c>"ok":true</c> or <c>"ok":false,"error":…</c>; every refused or failed
/// request is also logged as a warning.
/// </summary>
public sealed partial class AlertControlServer : IAsyncDisposable
{
    private const int MaxRequestBytes = 64 * 1024;

    /// <summary>The answer buffer a connection starts with: most answers fit; a history batch grows it once or twice.</summary>
    private const int InitialAnswerBytes = 4096;

    /// <summary>Refusals answered at once beyond which a connection is just closed (a flood must not pile up tasks).</summary>
    private const int MaxRefusing = 64;

    private readonly AlertingService _alerting;
    private string _path;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private int _disposed;
    private int _connections;
    private int _refusing;
    private long _refusedSinceLog;
    private long _lastRefusalLog;
    private Socket? _listener;
    private Task? _accept;

    public AlertControlServer(AlertingService alerting, string path, TimeProvider? time = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(alerting);
        _alerting = alerting;
        _path = path;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>Where it listens (<see cref="FallbackPath"/> when the configured path could not be used).</summary>
    public string Path => _path;

    /// <summary>
    /// Where to listen when the configured path cannot be used: a state directory on storage turned read-only (a failed
    /// SD card) holds no new socket, and the stale one there cannot be removed. Null: no second place.
    /// </summary>
    public string? FallbackPath { get; init; }

    /// <summary>
    /// Connections served at once; one more is answered <c>{"ok":false,"error":"busy: …"}</c> and closed. A script
    /// looping <c>edgetwin status</c> in parallel, or clients that connect and hang, cannot pile up tasks, sockets and
    /// descriptors in the agent.
    /// </summary>
    public int MaxConnections { get; init; } = 16;

    /// <summary>How long a client may take to send its request line after connecting (the CLI sends it at once).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long one connection may last in all, answer included (a client that never reads it).</summary>
    public TimeSpan ConnectionTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Adds the agent's part to a <c>{"op":"status"}</c> answer (the outbox) and its problems to the list: called on the
    /// connection's task, it must only read in-memory state (and at most a statvfs). Null: the answer has the alerting's part alone.
    /// </summary>
    public Action<Utf8JsonWriter, ICollection<string>>? StatusWriter { get; init; }

    /// <summary>
    /// Takes <c>{"op":"maintenance_done","machine":"m1"}</c> (<c>edgetwin maintenance done m1</c>): the operator reports a
    /// machine repaired, so its maintenance prediction closes now, not a day later. Called on the connection's task with
    /// the machine and the caller's user; it must only hand the report over. Null: the agent has no maintenance predictions.
    /// </summary>
    public Func<string, string, (bool Ok, string? PredictionId, string Message)>? MaintenanceDone { get; init; }

    /// <summary>
    /// Answers <c>{"op":"maintenance_status"}</c> (<c>edgetwin maintenance status</c>): writes the maintenance predictions'
    /// members into the answer. Called on the connection's task; it must only read a snapshot. Null: no maintenance predictions.
    /// </summary>
    public Action<Utf8JsonWriter>? MaintenanceStatus { get; init; }

    /// <summary>Counts refused connections (<c>edgetwin.alerts.control.refused</c>); null: not counted.</summary>
    public AlertingMetrics? Metrics { get; init; }

    /// <summary>Connections being served now (tests, and the refusal's text).</summary>
    public int Connections => Volatile.Read(ref _connections);

    public void Start()
    {
        try
        {
            Listen();
        }
        catch (Exception ex) when ((ex is IOException or UnauthorizedAccessException or SocketException) && FallbackPath is { } fallback && fallback != _path)
        {
            LogFallback(_path, ex.Message, fallback);
            _path = fallback;
            Listen();
        }

        _accept = Task.Run(() => AcceptAsync(_stop.Token), CancellationToken.None);
        LogListening(_path);
    }

    private void Listen()
    {
        var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(_path));
        if (dir is not null)
        {
            Directory.CreateDirectory(dir);
        }

        // A socket file left by a killed agent would make bind fail.
        if (File.Exists(_path))
        {
            File.Delete(_path);
        }

        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(_path));
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(_path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
            }

            listener.Listen(16);
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.SocketError && WhyNotWritable(dir) is { } why)
        {
            // .NET names EROFS and other file errors of bind "Unknown socket error": say what it was.
            listener.Dispose();
            throw new IOException($"{(why.HResult == EdgeTwin.Core.StorageErrors.ReadOnlyFileSystem ? "read-only file system" : why.Message)} under {dir}", why);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        _listener = listener;
    }

    /// <summary>The error creating a file in <paramref name="dir"/> gives (a read-only file system), or null when it can be written.</summary>
    private static IOException? WhyNotWritable(string? dir)
    {
        if (dir is null)
        {
            return null;
        }

        try
        {
            using var probe = new FileStream(System.IO.Path.Combine(dir, $".alerts-sock-probe-{Environment.ProcessId}"), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose);
            return null;
        }
        catch (IOException ex)
        {
            return ex;
        }
        catch (UnauthorizedAccessException ex)
        {
            return new IOException(ex.Message, ex);
        }
    }

    private async Task AcceptAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener!.AcceptAsync(stop).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            if (Interlocked.Increment(ref _connections) > MaxConnections)
            {
                Interlocked.Decrement(ref _connections);
                Refuse(client, stop);
                continue;
            }

            _ = Task.Run(
                async () =>
                {
                    try
                    {
                        await ServeAsync(client, stop).ConfigureAwait(false);
                    }
                    finally
                    {
                        Interlocked.Decrement(ref _connections);
                    }
                },
                CancellationToken.None);
        }
    }

    /// <summary>
    /// Over <see cref="MaxConnections"/>: a one-line answer saying so (the CLI prints it), then close. Logged at most every
    /// 10 s with the count, or a looping script would flood the journal.
    /// </summary>
    private void Refuse(Socket client, CancellationToken stop)
    {
        Metrics?.ControlRefused();
        Interlocked.Increment(ref _refusedSinceLog);
        var now = _time.GetTimestamp();
        var last = Interlocked.Read(ref _lastRefusalLog);
        if ((last == 0 || _time.GetElapsedTime(last, now) >= TimeSpan.FromSeconds(10)) && Interlocked.CompareExchange(ref _lastRefusalLog, now, last) == last)
        {
            LogBusy(Interlocked.Exchange(ref _refusedSinceLog, 0), MaxConnections, _path);
        }

        if (Interlocked.Increment(ref _refusing) > MaxRefusing)
        {
            Interlocked.Decrement(ref _refusing);
            client.Dispose();
            return;
        }

        _ = Task.Run(
            async () =>
            {
                using (client)
                {
                    try
                    {
                        // Inside the try: the server may be disposed meanwhile, and nothing here may end unobserved.
                        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
                        timeout.CancelAfter(TimeSpan.FromSeconds(1));
                        var answer = ErrorAnswer($"busy: {MaxConnections} control connections are already open (the limit); try again in a few seconds");
                        await client.SendAsync(answer.Concat("\n"u8.ToArray()).ToArray(), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                        client.Shutdown(SocketShutdown.Send);

                        // Read what the client sent before closing: closing a Unix socket with unread data resets the peer,
                        // which could lose the answer it has not read yet.
                        var sink = new byte[4096];
                        while (await client.ReceiveAsync(sink, SocketFlags.None, timeout.Token).ConfigureAwait(false) > 0)
                        {
                        }
                    }
                    catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
                    {
                        LogClientFailed(ex.Message);
                    }
                    finally
                    {
                        Interlocked.Decrement(ref _refusing);
                    }
                }
            },
            CancellationToken.None);
    }

    private async Task ServeAsync(Socket client, CancellationToken stop)
    {
        HistoryAnswer? rest = null;
        using (client)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
            timeout.CancelAfter(ConnectionTimeout);
            try
            {
                await using var stream = new NetworkStream(client, ownsSocket: false);
                var peer = await ControlPeer.IdentifyAsync(client, timeout.Token).ConfigureAwait(false);
                var output = new ArrayBufferWriter<byte>(InitialAnswerBytes);
                try
                {
                    // A client that connects and sends nothing holds one of MaxConnections slots: not for long.
                    using var requestTimeout = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
                    requestTimeout.CancelAfter(RequestTimeout);
                    var request = await ReadLineAsync(stream, requestTimeout.Token).ConfigureAwait(false);
                    if (request is null)
                    {
                        return;
                    }

                    rest = Respond(request, peer, output, whole: false);
                }
                catch (RequestTooLongException ex)
                {
                    LogRefused("?", Who(peer), ex.Message);
                    WriteErrorAnswer(output, ex.Message);
                }

                // An acknowledge or silence is answered once it is durable: a SIGKILL right after cannot undo it.
                await _alerting.Manager.FlushAsync(timeout.Token).ConfigureAwait(false);

                // A history goes out a batch at a time, each written while the client reads the one before: the agent holds
                // one batch per connection, not the whole answer (ConnectionTimeout still bounds a client that stops reading).
                while (true)
                {
                    var more = rest is { More: true };
                    if (!more)
                    {
                        output.Write("\n"u8);
                    }

                    await stream.WriteAsync(output.WrittenMemory, timeout.Token).ConfigureAwait(false);
                    if (!more)
                    {
                        break;
                    }

                    output.ResetWrittenCount();
                    try
                    {
                        rest!.WriteBatch();
                    }
                    catch (Exception ex) when (ex is LiteDB.LiteException or IOException or ObjectDisposedException)
                    {
                        // Part of the answer is out: it cannot become an error answer. The connection is closed without
                        // the closing newline, so the client sees an answer cut short, not a shorter history.
                        LogHistoryCut(ex, rest!.Written, _alerting.Manager.Store.Path, ex.Message);
                        return;
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException)
            {
                LogClientFailed(ex.Message);
            }
            catch (Exception ex)
            {
                // Nothing of one connection may end unobserved: the server serves the next one either way.
                LogServeFailed(ex, ex.Message);
            }
            finally
            {
                rest?.Dispose();
            }
        }
    }

    private static async Task<byte[]?> ReadLineAsync(Stream stream, CancellationToken cancellationToken)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        var one = new byte[512];
        while (buffer.WrittenCount < MaxRequestBytes)
        {
            var n = await stream.ReadAsync(one, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                return buffer.WrittenCount == 0 ? null : buffer.WrittenSpan.ToArray();
            }

            var nl = Array.IndexOf(one, (byte)'\n', 0, n);
            if (nl >= 0)
            {
                buffer.Write(one.AsSpan(0, nl));
                return buffer.WrittenSpan.ToArray();
            }

            buffer.Write(one.AsSpan(0, n));
        }

        throw new RequestTooLongException($"request longer than {MaxRequestBytes} bytes");
    }

    /// <summary>
    /// Answers one request from <paramref name="peer"/> (null: the kernel could not tell who it is; then nothing is
    /// recorded in anyone's name). Never throws: a malformed or out-of-range request, or a failure underneath, is an
    /// <c>ok:false</c> answer naming the field and a warning in the log. Public for tests.
    /// </summary>
    public byte[] Handle(ReadOnlySpan<byte> request, ControlPeer? peer)
    {
        var output = new ArrayBufferWriter<byte>(1024);
        Respond(request, peer, output, whole: true);
        return output.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Writes the answer to <paramref name="request"/> into <paramref name="output"/>. A history answer is written whole
    /// with <paramref name="whole"/>; otherwise its first batch only, and the rest is returned to be written batch by batch
    /// into the same buffer once the caller has sent it. Never throws (see <see cref="Handle"/>): a failure before any of
    /// the answer left replaces it with an error answer.
    /// </summary>
    private HistoryAnswer? Respond(ReadOnlySpan<byte> request, ControlPeer? peer, ArrayBufferWriter<byte> output, bool whole)
    {
        string? op = null;
        Utf8JsonWriter? w = null;
        HistoryAnswer? rest = null;
        try
        {
            w = new Utf8JsonWriter(output);
            w.WriteStartObject();
            AlertHistoryCursor? history = null;
            var error = Dispatch(w, request, peer, ref op, ref history);
            if (error is not null)
            {
                LogRefused(op ?? "?", Who(peer), error);
            }

            if (history is null)
            {
                w.WriteEndObject();
                w.Flush();
                return null;
            }

            rest = new HistoryAnswer(w, history);
            w = null;
            rest.WriteBatch();
            while (whole && rest.More)
            {
                rest.WriteBatch();
            }

            if (!rest.More)
            {
                rest.Dispose();
                rest = null;
            }

            var answer = rest;
            rest = null;
            return answer;
        }
        catch (Exception ex) when (op == "history" && ex is LiteDB.LiteException or IOException or ObjectDisposedException)
        {
            // LiteDB failed underneath (the store reopens it in the background): say so instead of dropping the client.
            var error = $"alert history unavailable for now ({_alerting.Manager.Store.Path}: {ex.Message}); alarms are not affected, try again shortly";
            LogRefused(op, Who(peer), error);
            Restart(ref w, ref rest, output);
            WriteErrorAnswer(output, error);
            return null;
        }
        catch (Exception ex)
        {
            // What the checks did not foresee: the half-written answer is dropped for one that says what failed.
            var error = $"{op ?? "request"} failed: {ex.GetType().Name}: {ex.Message}";
            LogRequestFailed(ex, op ?? "?", Who(peer), error);
            Restart(ref w, ref rest, output);
            WriteErrorAnswer(output, error);
            return null;
        }
        finally
        {
            w?.Dispose();
            rest?.Dispose();
        }
    }

    /// <summary>Drops a half-written answer: its writer first (disposing one flushes what it holds into the buffer).</summary>
    private static void Restart(ref Utf8JsonWriter? w, ref HistoryAnswer? rest, ArrayBufferWriter<byte> output)
    {
        w?.Dispose();
        w = null;
        rest?.Dispose();
        rest = null;
        output.ResetWrittenCount();
    }

    /// <summary>
    /// A history answer being written: its JSON writer, left inside the <c>history</c> array, and the cursor with the lines
    /// still to come. One writer for the whole answer, so the bytes are those of one answer written at once.
    /// </summary>
    private sealed class HistoryAnswer(Utf8JsonWriter writer, AlertHistoryCursor cursor) : IDisposable
    {
        /// <summary>Lines written so far (the log names how far an answer cut short got).</summary>
        public int Written { get; private set; }

        public bool More { get; private set; } = true;

        private bool _started;

        /// <summary>Writes the next batch into the writer's buffer (and the answer's end after the last one).</summary>
        public void WriteBatch()
        {
            if (!_started)
            {
                writer.WriteStartArray("history");
                _started = true;
            }

            foreach (var e in cursor.Next())
            {
                WriteHistoryEntry(writer, e);
                Written++;
            }

            if (cursor.Done)
            {
                writer.WriteEndArray();
                writer.WriteEndObject();
                More = false;
            }

            writer.Flush();
        }

        public void Dispose() => writer.Dispose();
    }

    private string? Dispatch(Utf8JsonWriter w, ReadOnlySpan<byte> request, ControlPeer? peer, ref string? op, ref AlertHistoryCursor? history)
    {
        // JSON is UTF-8 (RFC 8259 8.1), and JsonDocument checks string contents only when one is read: a request with
        // invalid UTF-8 inside a string failed there as an unforeseen InvalidOperationException instead of a bad request.
        if (EdgeTwin.Core.Utf8Text.InvalidAt(request) is { } bad)
        {
            return Error(w, string.Create(CultureInfo.InvariantCulture, $"request is not UTF-8 (invalid byte 0x{request[bad]:X2} at offset {bad})"));
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(request.ToArray());
        }
        catch (JsonException ex)
        {
            return Error(w, "request is not JSON: " + ex.Message);
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return Error(w, $"request must be a JSON object like {{\"op\":\"list\"}}, got {Show(root)}");
            }

            try
            {
                op = Text(root, "request", "op");
                switch (op)
                {
                    case "list":
                        w.WriteBoolean("ok", true);
                        WriteList(w);
                        return null;
                    case "status":
                        w.WriteBoolean("ok", true);
                        WriteStatus(w);
                        return null;
                    case "history":
                        return History(w, root, out history);
                    case "ack":
                        return Ack(w, root, RequirePeer(peer));
                    case "silence":
                        return Silence(w, root, RequirePeer(peer));
                    case "maintenance_done":
                        return MaintenanceRepaired(w, root, RequirePeer(peer));
                    case "maintenance_status":
                        if (MaintenanceStatus is null)
                        {
                            return Error(w, "this agent makes no maintenance predictions (models.maintenance is off or not configured)");
                        }

                        w.WriteBoolean("ok", true);
                        MaintenanceStatus(w);
                        return null;
                    default:
                        return Error(w, $"unknown op {(op is null ? "(none)" : "'" + op + "'")} (status, list, history, ack, silence, maintenance_done, maintenance_status)");
                }
            }
            catch (BadRequestException ex)
            {
                return Error(w, ex.Message);
            }
        }
    }

    private string? MaintenanceRepaired(Utf8JsonWriter w, JsonElement root, ControlPeer peer)
    {
        var machine = Text(root, "maintenance_done", "machine") ?? throw new BadRequestException("maintenance_done needs 'machine' (the machine's id in models.maintenance.machines)");
        if (MaintenanceDone is null)
        {
            return Error(w, "this agent makes no maintenance predictions (models.maintenance is off or not configured)");
        }

        var (ok, id, message) = MaintenanceDone(machine, Attribute(root, "maintenance_done", peer));
        if (!ok)
        {
            return Error(w, message);
        }

        w.WriteBoolean("ok", true);
        w.WriteString("machine", machine);
        if (id is null)
        {
            w.WriteNull("prediction_id");
        }
        else
        {
            w.WriteString("prediction_id", id);
        }

        w.WriteString("message", message);
        return null;
    }

    /// <summary>
    /// Checks a history request and opens its cursor (LiteDB's index is read here, so a LiteDB failure is still an error
    /// answer); the lines are written by <see cref="HistoryAnswer"/>, a batch at a time.
    /// </summary>
    private string? History(Utf8JsonWriter w, JsonElement root, out AlertHistoryCursor? history)
    {
        var limit = 100;
        if (Field(root, "limit") is { } l)
        {
            if (l.ValueKind != JsonValueKind.Number || !l.TryGetInt32(out limit))
            {
                throw new BadRequestException($"history's 'limit' must be a whole number, got {Show(l)}");
            }

            limit = Math.Clamp(limit, 1, 10_000);
        }

        history = _alerting.Manager.OpenHistory(limit, AlertHistoryCursor.DefaultBatch);
        w.WriteBoolean("ok", true);
        return null;
    }

    /// <summary>
    /// Silences a rule for <c>seconds</c> (0 lifts a silence), at most <see cref="Rules.AlertsConfig.MaxSilence"/>: a
    /// request beyond it is refused, not shortened, so nobody believes a rule is muted longer than it is.
    /// </summary>
    private string? Silence(Utf8JsonWriter w, JsonElement root, ControlPeer peer)
    {
        var rule = Text(root, "silence", "rule") ?? throw new BadRequestException("silence needs 'rule' (the rule's name)");
        if (Field(root, "seconds") is not { } s)
        {
            throw new BadRequestException("silence needs 'seconds' (how long; 0 lifts a silence)");
        }

        if (s.ValueKind != JsonValueKind.Number)
        {
            throw new BadRequestException($"silence's 'seconds' must be a number, got {Show(s)}");
        }

        if (!s.TryGetDouble(out var seconds) || !double.IsFinite(seconds))
        {
            throw new BadRequestException($"silence's 'seconds' is out of range, got {Show(s)}");
        }

        if (seconds < 0)
        {
            throw new BadRequestException($"silence's 'seconds' must not be negative, got {Show(s)} (0 lifts a silence)");
        }

        var config = _alerting.Manager.Config;
        if (seconds > config.MaxSilence.TotalSeconds)
        {
            return Error(w, $"silence of {Span(seconds)} refused: longer than alerts.max_silence ({config.MaxSilenceText})");
        }

        var by = Attribute(root, "silence", peer);
        var until = _time.GetUtcNow().AddSeconds(seconds);
        var untilText = until.ToString("O", CultureInfo.InvariantCulture);
        var error = Result(w, _alerting.Manager.Silence(rule, until, by), $"rule '{rule}'");
        w.WriteString("until", untilText);
        w.WriteString("by", by);
        WriteNotSaved(w, "silenced", "silence");
        if (error is null)
        {
            if (seconds == 0)
            {
                LogSilenceLifted(rule, peer);
            }
            else
            {
                LogSilenced(rule, untilText, peer);
            }
        }

        return error;
    }

    /// <summary>
    /// While the alert store cannot write its directory, an acknowledge or silence is in effect at once (notifications and
    /// <c>silence_on_ack</c> outputs stop) but held in memory only: the answer says so (<c>saved: false</c> and a
    /// <c>warning</c>) instead of waiting for a durability that may not come before a reboot.
    /// </summary>
    private void WriteNotSaved(Utf8JsonWriter w, string done, string what)
    {
        if (_alerting.Manager.Store.Outage is { } outage)
        {
            w.WriteBoolean("saved", false);
            w.WriteString("warning", $"{done} in memory only: the alert store cannot write {_alerting.Manager.Store.StateDirectory} ({outage.Cause}); a restart forgets this {what}");
        }
    }

    /// <summary>
    /// Acknowledges the alerts named by <c>id</c>, <c>ids</c>, <c>rule</c> or <c>all</c> (the last two optionally only
    /// of one <c>severity</c>): during a storm the buzzer stops only once every critical alert is acknowledged, so one
    /// request takes them all. Each alert is tried on its own; the answer lists what was acknowledged and what failed, and
    /// is <c>ok</c> only if nothing failed.
    /// </summary>
    private string? Ack(Utf8JsonWriter w, JsonElement root, ControlPeer peer)
    {
        var ids = new List<long>();
        if (Field(root, "id") is { } idElement)
        {
            if (idElement.ValueKind != JsonValueKind.Number || !idElement.TryGetInt64(out var one))
            {
                throw new BadRequestException($"ack's 'id' must be an alert id (a whole number), got {Show(idElement)}");
            }

            ids.Add(one);
        }

        if (Field(root, "ids") is { } idsElement)
        {
            if (idsElement.ValueKind != JsonValueKind.Array
                || idsElement.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out _)))
            {
                throw new BadRequestException($"ack's 'ids' must be an array of alert ids (whole numbers), got {Show(idsElement)}");
            }

            ids.AddRange(idsElement.EnumerateArray().Select(e => e.GetInt64()));
        }

        var rule = Text(root, "ack", "rule");
        var all = Field(root, "all") is { } a && a.ValueKind == JsonValueKind.True;
        var severity = Text(root, "ack", "severity");
        if ((ids.Count > 0 ? 1 : 0) + (rule is not null ? 1 : 0) + (all ? 1 : 0) != 1)
        {
            return Error(w, "ack needs alert ids, a 'rule' or 'all' (one of them)");
        }

        if (severity is not null && severity is not ("critical" or "warning" or "info"))
        {
            return Error(w, $"unknown severity '{severity}' (critical, warning, info)");
        }

        if (rule is not null && !_alerting.Manager.Config.Rules.Any(x => x.Name == rule))
        {
            return Error(w, $"rule '{rule}' not found");
        }

        var by = Attribute(root, "ack", peer);
        var byId = _alerting.Manager.Active().ToDictionary(x => x.Id);
        if (ids.Count == 0)
        {
            // Only what is firing and not yet acknowledged matches a selector: pending or acknowledged ones are no failure.
            ids.AddRange(byId.Values
                .Where(x => x.State == AlertState.Firing && x.AckedAt is null)
                .Where(x => rule is null || x.Rule == rule)
                .Where(x => severity is null || AlertManager.SeverityName(x.Severity) == severity)
                .Select(x => x.Id));
        }

        var failed = new List<(long Id, string Error)>();
        w.WriteStartArray("acknowledged");
        foreach (var id in ids.Distinct())
        {
            var result = _alerting.Manager.Acknowledge(id, by);
            if (result != ControlResult.Done)
            {
                failed.Add((id, Describe(result, $"alert {id}")));
                continue;
            }

            w.WriteStartObject();
            w.WriteNumber("id", id);
            if (byId.TryGetValue(id, out var acked))
            {
                w.WriteString("rule", acked.Rule);
                w.WriteString("key", acked.Key);
                w.WriteString("severity", AlertManager.SeverityName(acked.Severity));
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartArray("failed");
        foreach (var (id, error) in failed)
        {
            w.WriteStartObject();
            w.WriteNumber("id", id);
            w.WriteString("error", error);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteString("by", by);
        WriteNotSaved(w, "acknowledged", "acknowledge");

        if (failed.Count == 0)
        {
            w.WriteBoolean("ok", true);
            return null;
        }

        return Error(w, string.Join("; ", failed.Select(f => f.Error)));
    }

    /// <summary>
    /// The name an acknowledge or silence is recorded under: the peer's, whatever the request claims. A different claim
    /// (an old CLI sends its <c>$USER</c>; anyone can type one) is logged so that the attempt is seen.
    /// </summary>
    private string Attribute(JsonElement root, string op, ControlPeer peer)
    {
        if (Field(root, "by") is { ValueKind: JsonValueKind.String } b && b.GetString() is { } claimed && claimed != peer.Name)
        {
            LogClaimIgnored(op, claimed, peer);
        }

        return peer.Name;
    }

    private static ControlPeer RequirePeer(ControlPeer? peer) => peer
        ?? throw new BadRequestException("cannot tell who is asking (the kernel gave no peer credentials, SO_PEERCRED is Linux-only): ack, silence and maintenance_done are refused");

    /// <summary>The member <paramref name="name"/>; null when absent or JSON null.</summary>
    private static JsonElement? Field(JsonElement root, string name) =>
        root.TryGetProperty(name, out var e) && e.ValueKind != JsonValueKind.Null ? e : null;

    /// <summary>A string member, null when absent; anything else is a bad request naming the field.</summary>
    private static string? Text(JsonElement root, string op, string name) => Field(root, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } e => e.GetString(),
        { } e => throw new BadRequestException($"{op}'s '{name}' must be a string, got {Show(e)}"),
    };

    /// <summary>A value as the client sent it, cut short, for error messages.</summary>
    private static string Show(JsonElement e)
    {
        var raw = e.GetRawText();
        var kind = e.ValueKind switch
        {
            JsonValueKind.Array => "an array ",
            JsonValueKind.String => "a string ",
            JsonValueKind.True or JsonValueKind.False => "a boolean ",
            JsonValueKind.Object => "an object ",
            _ => "",
        };
        return kind + (raw.Length <= 40 ? raw : raw[..40] + "…");
    }

    /// <summary><c>365d</c>, <c>90m</c>; a number of seconds when it is too long for a duration.</summary>
    private static string Span(double seconds) => seconds < TimeSpan.MaxValue.TotalSeconds / 2
        ? Durations.Format(TimeSpan.FromMilliseconds(Math.Round(seconds * 1000)))
        : seconds.ToString("R", CultureInfo.InvariantCulture) + " s";

    private static string Who(ControlPeer? peer) => peer?.ToString() ?? "an unidentified peer";

    private static byte[] ErrorAnswer(string message)
    {
        var output = new ArrayBufferWriter<byte>(256);
        WriteErrorAnswer(output, message);
        return output.WrittenSpan.ToArray();
    }

    private static void WriteErrorAnswer(ArrayBufferWriter<byte> output, string message)
    {
        using var w = new Utf8JsonWriter(output);
        w.WriteStartObject();
        Error(w, message);
        w.WriteEndObject();
    }

    private static string Describe(ControlResult result, string what) => result switch
    {
        ControlResult.NotFound => what + " not found",
        ControlResult.NotFiring => what + " is not firing",
        ControlResult.AlreadyAcknowledged => what + " is already acknowledged",
        _ => what + ": " + result,
    };

    private static string? Result(Utf8JsonWriter w, ControlResult result, string what)
    {
        if (result == ControlResult.Done)
        {
            w.WriteBoolean("ok", true);
            return null;
        }

        return Error(w, Describe(result, what));
    }

    /// <summary>Writes <c>"ok":false,"error":…</c> and returns the message (for the log).</summary>
    private static string Error(Utf8JsonWriter w, string message)
    {
        w.WriteBoolean("ok", false);
        w.WriteString("error", message);
        return message;
    }

    /// <summary>A request the server refuses with a message naming the field.</summary>
    private sealed class BadRequestException(string message) : Exception(message);

    private sealed class RequestTooLongException(string message) : IOException(message);

    /// <summary>
    /// <c>edgetwin status</c>: the uplink and since when, alert counts, sinks that are down, the agent's part (the outbox,
    /// through <see cref="StatusWriter"/>), and <c>problems</c>: one sentence each, empty when all is well (exit 0).
    /// </summary>
    private void WriteStatus(Utf8JsonWriter w)
    {
        var now = _time.GetUtcNow();
        var problems = new List<string>();
        var c = _alerting.Connectivity;
        w.WriteStartObject("uplink");
        w.WriteString("state", c.Monitored ? c.State.ToWireName() : "not monitored");
        w.WriteString("since", c.Since.ToString("O", CultureInfo.InvariantCulture));
        w.WriteNumber("for_s", Math.Max(0, Math.Round((now - c.Since).TotalSeconds)));
        w.WriteEndObject();
        if (c.Monitored && c.State != UplinkState.Online)
        {
            problems.Add($"uplink {c.State.ToWireName()} since {c.Since.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture)} ({Durations.Approximate(now - c.Since)})");
        }

        var active = _alerting.Manager.Active();
        var firing = active.Where(a => a.State == AlertState.Firing).ToList();
        var unacked = firing.Where(a => a.AckedAt is null).ToList();
        w.WriteStartObject("alerts");
        w.WriteNumber("firing", firing.Count);
        w.WriteNumber("critical", firing.Count(a => AlertManager.SeverityName(a.Severity) == "critical"));
        w.WriteNumber("unacknowledged", unacked.Count);
        w.WriteNumber("pending", active.Count(a => a.State == AlertState.Pending));
        w.WriteNumber("silenced_rules", _alerting.Manager.Silences().Count);

        // Whether alert state changes reach the disk: false while the state directory cannot be written (kept in memory only).
        var store = _alerting.Manager.Store;
        var outage = store.Outage;
        w.WriteBoolean("store_persisting", outage is null);
        if (outage is not null)
        {
            w.WriteString("store_not_persisting_since", outage.Since.ToString("O", CultureInfo.InvariantCulture));
            w.WriteString("store_cause", outage.Cause);
            problems.Add($"alert store in {store.StateDirectory} cannot be written ({outage.Cause}) since {outage.Since.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture)}: alert state changes are kept in memory only and are lost at a restart");
        }

        w.WriteEndObject();
        if (unacked.Count > 0)
        {
            var critical = unacked.Count(a => AlertManager.SeverityName(a.Severity) == "critical");
            problems.Add($"{unacked.Count} alert{(unacked.Count == 1 ? "" : "s")} firing unacknowledged{(critical > 0 ? $" ({critical} critical)" : "")}: edgetwin alerts list");
        }

        w.WriteStartArray("sinks_down");
        foreach (var s in _alerting.Sinks)
        {
            if (s.Outage is { } down)
            {
                w.WriteStartObject();
                w.WriteString("name", s.Name);
                w.WriteString("since", down.Since.ToString("O", CultureInfo.InvariantCulture));
                w.WriteString("reason", down.Reason);
                w.WriteEndObject();
                problems.Add($"alert sink {s.Name} down since {down.Since.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture)}: {down.Reason}");
            }
        }

        w.WriteEndArray();
        StatusWriter?.Invoke(w, problems);
        w.WriteBoolean("healthy", problems.Count == 0);
        w.WriteStartArray("problems");
        foreach (var p in problems)
        {
            w.WriteStringValue(p);
        }

        w.WriteEndArray();
    }

    private void WriteList(Utf8JsonWriter w)
    {
        var c = _alerting.Connectivity;
        w.WriteStartObject("uplink");
        w.WriteString("state", c.Monitored ? c.State.ToWireName() : "not monitored");
        w.WriteString("since", c.Since.ToString("O", CultureInfo.InvariantCulture));
        w.WriteEndObject();
        w.WriteStartArray("alerts");
        var pendingSince = _alerting.Manager.PendingSince();
        foreach (var a in _alerting.Manager.Active())
        {
            w.WriteStartObject();
            w.WriteNumber("id", a.Id);
            w.WriteString("rule", a.Rule);
            w.WriteString("key", a.Key);
            w.WriteString("state", a.State == AlertState.Pending ? "pending" : a.AckedAt is null ? "firing" : "acknowledged");
            w.WriteString("severity", AlertManager.SeverityName(a.Severity));
            if (double.IsFinite(a.Value))
            {
                w.WriteNumber("value", a.Value);
            }

            if (a.Peak is { } peak && double.IsFinite(peak))
            {
                w.WriteNumber("peak", peak);
                w.WriteString("peak_text", a.PeakText);
            }
            else
            {
                w.WriteNull("peak");
                w.WriteNull("peak_text");
            }

            w.WriteString("summary", a.Summary);
            w.WriteString("action", a.Action);
            w.WriteString("runbook_url", a.RunbookUrl);
            w.WriteString("fired_at", a.FiredAt?.ToString("O", CultureInfo.InvariantCulture));
            w.WriteString("pending_since", pendingSince.TryGetValue(a.Id, out var p) && a.State == AlertState.Pending ? p.ToString("O", CultureInfo.InvariantCulture) : null);
            w.WriteString("acked_at", a.AckedAt?.ToString("O", CultureInfo.InvariantCulture));
            w.WriteBoolean("flapping", a.Flapping);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartObject("silences");
        foreach (var (rule, until) in _alerting.Manager.Silences())
        {
            w.WriteString(rule, until.ToString("O", CultureInfo.InvariantCulture));
        }

        w.WriteEndObject();
        w.WriteStartArray("sinks");
        foreach (var s in _alerting.Sinks)
        {
            w.WriteStartObject();
            w.WriteString("name", s.Name);
            w.WriteNumber("delivered", s.Delivered);
            w.WriteNumber("failed", s.Failed);
            w.WriteNumber("dropped", s.Dropped);
            w.WriteNumber("superseded", s.Superseded);
            w.WriteNumber("queued", s.QueueDepth);

            // A dead webhook or broker shows here, not only once in the journal hours ago.
            if (s.Outage is { } down)
            {
                w.WriteString("down_since", WireTime.Instant(down.Since));
                w.WriteNumber("down_attempts", down.Attempts);
                w.WriteString("down_reason", down.Reason);
            }
            w.WriteEndObject();
        }

        w.WriteEndArray();

        // What the relay, buzzer and lamp show: from SSH nobody hears whether the buzzer stopped after an ack.
        w.WriteStartArray("outputs");
        foreach (var s in _alerting.Sinks)
        {
            if (s.Sink is not GpioSink gpio)
            {
                continue;
            }

            foreach (var o in gpio.Outputs())
            {
                w.WriteStartObject();
                w.WriteString("sink", s.Name);
                w.WriteString("name", o.Name);
                w.WriteString("pattern", o.PatternName);
                w.WriteBoolean("quieted_by_ack", o.QuietedByAck);
                w.WriteEndObject();
            }
        }

        w.WriteEndArray();
    }

    private static void WriteHistoryEntry(Utf8JsonWriter w, AlertHistoryEntry e)
    {
        w.WriteStartObject();
        w.WriteNumber("seq", e.Seq);
        w.WriteNumber("id", e.AlertId);
        w.WriteString("rule", e.Rule);
        w.WriteString("key", e.Key);
        w.WriteString("change", e.Change);
        w.WriteString("severity", AlertManager.SeverityName(e.Severity));
        w.WriteNumber("value", e.Value);
        w.WriteString("time", e.Time.ToString("O", CultureInfo.InvariantCulture));
        w.WriteString("uplink", e.Uplink);
        w.WriteEndObject();
    }

    public async ValueTask DisposeAsync()
    {
        // The host stops the alerting service and then disposes the container: both end here.
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        _listener?.Dispose();
        if (_accept is not null)
        {
            await _accept.ConfigureAwait(false);
        }

        try
        {
            File.Delete(_path);
        }
        catch (IOException)
        {
        }

        _stop.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "alert control socket {Path} cannot be created ({Reason}); listening on {Fallback} instead, where edgetwin status and edgetwin alerts look next")]
    private partial void LogFallback(string path, string reason, string fallback);

    [LoggerMessage(Level = LogLevel.Information, Message = "alert control socket listening on {Path} (mode 0660)")]
    private partial void LogListening(string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert control socket {Path} busy: refused {Refused} connection(s) over the limit of {Limit} open at once, since the last such warning (a script looping edgetwin in parallel, or stuck clients?)")]
    private partial void LogBusy(long refused, int limit, string path);

    [LoggerMessage(Level = LogLevel.Debug, Message = "alert control client failed: {Reason}")]
    private partial void LogClientFailed(string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert control: {Op} from {Peer} refused: {Error}")]
    private partial void LogRefused(string op, string peer, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert control: {Op} from {Peer} failed: {Error}")]
    private partial void LogRequestFailed(Exception exception, string op, string peer, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert control: history answer cut short after {Lines} lines, the alert store {Path} failed: {Reason} (the client sees an incomplete answer; alarms are not affected)")]
    private partial void LogHistoryCut(Exception exception, int lines, string path, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert control connection failed: {Reason}")]
    private partial void LogServeFailed(Exception exception, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "alert control: {Op} claims to be by '{Claimed}'; recorded as {Peer}, who is connected (the claim is ignored)")]
    private partial void LogClaimIgnored(string op, string claimed, ControlPeer peer);

    [LoggerMessage(Level = LogLevel.Information, Message = "rule {Rule} silenced until {Until} by {Peer}")]
    private partial void LogSilenced(string rule, string until, ControlPeer peer);

    [LoggerMessage(Level = LogLevel.Information, Message = "silence of rule {Rule} lifted by {Peer}")]
    private partial void LogSilenceLifted(string rule, ControlPeer peer);
}

/// <summary>The CLI's side of <see cref="AlertControlServer"/>: one request, one answer, with a timeout.</summary>
public static class AlertControlClient
{
    public static async Task<JsonDocument> SendAsync(string socketPath, string requestJson, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cts.Token).ConfigureAwait(false);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync(Encoding.UTF8.GetBytes(requestJson + "\n"), cts.Token).ConfigureAwait(false);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var line = await reader.ReadLineAsync(cts.Token).ConfigureAwait(false)
            ?? throw new IOException($"{socketPath}: the agent closed the connection without an answer");
        return JsonDocument.Parse(line);
    }

    /// <summary>
    /// The line <c>edgetwin alerts list</c> prints under an alert of the <c>list</c> answer whose rule has an
    /// <c>action</c> or <c>runbook_url</c>: <c>first action: … | runbook: https://…</c>; null when it has neither (or the
    /// agent is older and sends neither).
    /// </summary>
    public static string? ActionLine(JsonElement alert)
    {
        var action = alert.TryGetProperty("action", out var x) && x.ValueKind == JsonValueKind.String ? x.GetString() : null;
        var runbook = alert.TryGetProperty("runbook_url", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
        return (action, runbook) switch
        {
            (null, null) => null,
            ({ } a, null) => "first action: " + a,
            (null, { } u) => "runbook: " + u,
            ({ } a, { } u) => "first action: " + a + " | runbook: " + u,
        };
    }
}
