using System.Buffers;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using EdgeTwin.Alerting.Connectivity;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.State;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Alerting.Control;

/// <summary>
/// The running agent's alert control: a Unix stream socket (file mode 0660, so only the service user and its group may
/// talk to it; no TCP port), one JSON request per line, one JSON answer per line:
/// <c>{"op":"list"}</c>, <c>{"op":"history","limit":50}</c>, <c>{"op":"ack","id":12,"by":"alice"}</c> (or
/// <c>"ids":[11,15]</c>, <c>"rule":"inlet-hot"</c>, <c>"all":true</c> with an optional <c>"severity":"critical"</c>),
/// <c>{"op":"silence","rule":"inlet-hot","seconds":7200,"by":"alice"}</c>. Answers carry <c>"ok":true</c> or <c>"ok":false,"error":…</c>.
/// </summary>
public sealed partial class AlertControlServer : IAsyncDisposable
{
    private const int MaxRequestBytes = 64 * 1024;

    private readonly AlertingService _alerting;
    private readonly string _path;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private int _disposed;
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

    public string Path => _path;

    public void Start()
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
        listener.Bind(new UnixDomainSocketEndPoint(_path));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(_path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
        }
        listener.Listen(16);
        _listener = listener;
        _accept = Task.Run(() => AcceptAsync(_stop.Token), CancellationToken.None);
        LogListening(_path);
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

            _ = Task.Run(() => ServeAsync(client, stop), CancellationToken.None);
        }
    }

    private async Task ServeAsync(Socket client, CancellationToken stop)
    {
        using (client)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            try
            {
                await using var stream = new NetworkStream(client, ownsSocket: false);
                var request = await ReadLineAsync(stream, timeout.Token).ConfigureAwait(false);
                if (request is null)
                {
                    return;
                }

                var answer = Handle(request);

                // An acknowledge or silence is answered once it is durable: a SIGKILL right after cannot undo it.
                await _alerting.Manager.FlushAsync(timeout.Token).ConfigureAwait(false);
                await stream.WriteAsync(answer, timeout.Token).ConfigureAwait(false);
                await stream.WriteAsync("\n"u8.ToArray(), timeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException)
            {
                LogClientFailed(ex.Message);
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

        throw new IOException($"request longer than {MaxRequestBytes} bytes");
    }

    /// <summary>Answers one request (public for tests and for hosts that expose it differently).</summary>
    public byte[] Handle(ReadOnlySpan<byte> request)
    {
        var output = new ArrayBufferWriter<byte>(1024);
        using var w = new Utf8JsonWriter(output);
        w.WriteStartObject();
        try
        {
            using var doc = JsonDocument.Parse(request.ToArray());
            var root = doc.RootElement;
            var op = root.TryGetProperty("op", out var o) ? o.GetString() : null;
            switch (op)
            {
                case "list":
                    w.WriteBoolean("ok", true);
                    WriteList(w);
                    break;
                case "history":
                    var limit = root.TryGetProperty("limit", out var l) && l.TryGetInt32(out var li) ? Math.Clamp(li, 1, 10_000) : 100;
                    IReadOnlyList<AlertHistoryEntry> history;
                    try
                    {
                        history = _alerting.Manager.History(limit);
                    }
                    catch (Exception ex) when (ex is LiteDB.LiteException or IOException or ObjectDisposedException)
                    {
                        // LiteDB failed underneath (the store reopens it in the background): say so instead of dropping the client.
                        Error(w, $"alert history unavailable for now ({_alerting.Manager.Store.Path}: {ex.Message}); alarms are not affected, try again shortly");
                        break;
                    }

                    w.WriteBoolean("ok", true);
                    WriteHistory(w, history);
                    break;
                case "ack":
                    Ack(w, root);
                    break;
                case "silence":
                    var rule = root.TryGetProperty("rule", out var r) ? r.GetString() : null;
                    if (rule is null || !root.TryGetProperty("seconds", out var s) || !s.TryGetDouble(out var seconds) || seconds < 0)
                    {
                        Error(w, "silence needs 'rule' and non-negative 'seconds'");
                        break;
                    }

                    var until = _time.GetUtcNow().AddSeconds(seconds);
                    var silencedBy = root.TryGetProperty("by", out var sb) ? sb.GetString() ?? "cli" : "cli";
                    Result(w, _alerting.Manager.Silence(rule, until, silencedBy), $"rule '{rule}'");
                    w.WriteString("until", until.ToString("O", CultureInfo.InvariantCulture));
                    break;
                default:
                    Error(w, $"unknown op '{op}' (list, history, ack, silence)");
                    break;
            }
        }
        catch (JsonException ex)
        {
            Error(w, "request is not JSON: " + ex.Message);
        }

        w.WriteEndObject();
        w.Flush();
        return output.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Acknowledges the alerts named by <c>id</c>, <c>ids</c>, <c>rule</c> or <c>all</c> (the last two optionally only
    /// of one <c>severity</c>): during a storm the buzzer stops only once every critical alert is acknowledged, so one
    /// request takes them all. Each alert is tried on its own; the answer lists what was acknowledged and what failed, and
    /// is <c>ok</c> only if nothing failed.
    /// </summary>
    private void Ack(Utf8JsonWriter w, JsonElement root)
    {
        var by = root.TryGetProperty("by", out var b) ? b.GetString() ?? "cli" : "cli";
        var ids = new List<long>();
        if (root.TryGetProperty("id", out var idElement))
        {
            if (!idElement.TryGetInt64(out var one))
            {
                Error(w, "ack needs numeric ids");
                return;
            }

            ids.Add(one);
        }

        if (root.TryGetProperty("ids", out var idsElement))
        {
            if (idsElement.ValueKind != JsonValueKind.Array || idsElement.EnumerateArray().Any(e => !e.TryGetInt64(out _)))
            {
                Error(w, "ack's 'ids' must be an array of numbers");
                return;
            }

            ids.AddRange(idsElement.EnumerateArray().Select(e => e.GetInt64()));
        }

        var rule = root.TryGetProperty("rule", out var r) ? r.GetString() : null;
        var all = root.TryGetProperty("all", out var a) && a.ValueKind == JsonValueKind.True;
        var severity = root.TryGetProperty("severity", out var sv) ? sv.GetString() : null;
        if ((ids.Count > 0 ? 1 : 0) + (rule is not null ? 1 : 0) + (all ? 1 : 0) != 1)
        {
            Error(w, "ack needs alert ids, a 'rule' or 'all' (one of them)");
            return;
        }

        if (severity is not null && severity is not ("critical" or "warning" or "info"))
        {
            Error(w, $"unknown severity '{severity}' (critical, warning, info)");
            return;
        }

        if (rule is not null && !_alerting.Manager.Config.Rules.Any(x => x.Name == rule))
        {
            Error(w, $"rule '{rule}' not found");
            return;
        }

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
        if (failed.Count == 0)
        {
            w.WriteBoolean("ok", true);
        }
        else
        {
            Error(w, string.Join("; ", failed.Select(f => f.Error)));
        }
    }

    private static string Describe(ControlResult result, string what) => result switch
    {
        ControlResult.NotFound => what + " not found",
        ControlResult.NotFiring => what + " is not firing",
        ControlResult.AlreadyAcknowledged => what + " is already acknowledged",
        _ => what + ": " + result,
    };

    private static void Result(Utf8JsonWriter w, ControlResult result, string what)
    {
        if (result == ControlResult.Done)
        {
            w.WriteBoolean("ok", true);
        }
        else
        {
            Error(w, Describe(result, what));
        }
    }

    private static void Error(Utf8JsonWriter w, string message)
    {
        w.WriteBoolean("ok", false);
        w.WriteString("error", message);
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
            w.WriteNumber("queued", s.QueueDepth);
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

    private static void WriteHistory(Utf8JsonWriter w, IReadOnlyList<AlertHistoryEntry> history)
    {
        w.WriteStartArray("history");
        foreach (var e in history)
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

        w.WriteEndArray();
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

    [LoggerMessage(Level = LogLevel.Information, Message = "alert control socket listening on {Path} (mode 0660)")]
    private partial void LogListening(string path);

    [LoggerMessage(Level = LogLevel.Debug, Message = "alert control client failed: {Reason}")]
    private partial void LogClientFailed(string reason);
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
}
