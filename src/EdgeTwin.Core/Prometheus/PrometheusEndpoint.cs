using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Core.Prometheus;

/// <summary>
/// A minimal HTTP/1.1 server for Prometheus: <c>GET /metrics</c> (or <c>HEAD</c>) answers 200 with the text format
/// 0.0.4, any other path 404, another method 405, a malformed request 400, a request head over
/// <see cref="MaxRequestBytes"/> 431. One request per connection (<c>Connection: close</c>). Each connection has its own
/// read and write deadline, at most <see cref="MaxConnections"/> are served at once (more are closed at once), and
/// whatever a client does (slow, huge, garbage, gone) ends only its own connection.
/// </summary>
public sealed partial class PrometheusEndpoint : IAsyncDisposable
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private static readonly byte[] HeadEnd = "\r\n\r\n"u8.ToArray();

    private readonly Func<CancellationToken, ValueTask<string>> _render;
    private readonly ILogger _logger;
    private readonly TcpListener _listener;
    private readonly SemaphoreSlim _slots;
    private readonly CancellationTokenSource _stop = new();
    private Task? _acceptLoop;

    /// <summary>Binds <paramref name="endpoint"/> at once; a port in use throws <see cref="SocketException"/> here.</summary>
    public PrometheusEndpoint(IPEndPoint endpoint, Func<CancellationToken, ValueTask<string>> render, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        _render = render ?? throw new ArgumentNullException(nameof(render));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        _listener = new TcpListener(endpoint);
        if (endpoint.AddressFamily == AddressFamily.InterNetworkV6 && endpoint.Address.Equals(IPAddress.IPv6Any))
        {
            // [::] serves IPv4 too, as Prometheus' own exporters do.
            _listener.Server.DualMode = true;
        }

        _listener.Start(backlog: 16);
        LocalEndpoint = (IPEndPoint)_listener.LocalEndpoint;
        _slots = new SemaphoreSlim(MaxConnections, MaxConnections);
    }

    /// <summary>The bound address (with the port the OS chose for port 0).</summary>
    public IPEndPoint LocalEndpoint { get; }

    /// <summary>Largest request head read; Prometheus sends about 300 bytes.</summary>
    public int MaxRequestBytes { get; init; } = 8 * 1024;

    /// <summary>Time a client has to send its request head, and again to take the answer.</summary>
    public TimeSpan IoTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Connections served at once; more are closed without an answer.</summary>
    public int MaxConnections { get; init; } = 4;

    /// <summary>Requests answered, by status code (for tests and the log).</summary>
    public long Answered => Interlocked.Read(ref _answered);

    private long _answered;

    /// <summary>Starts accepting connections until <see cref="DisposeAsync"/>.</summary>
    public void Start() => _acceptLoop ??= Task.Run(() => AcceptLoopAsync(_stop.Token));

    private async Task AcceptLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException ex)
            {
                // Out of file descriptors or a reset before accept: not the agent's end; breathe and go on.
                Log.AcceptFailed(_logger, ex.SocketErrorCode.ToString(), ex.Message);
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                continue;
            }

            if (!_slots.Wait(0, CancellationToken.None))
            {
                var refused = socket.RemoteEndPoint?.ToString() ?? "?";
                Log.TooManyConnections(_logger, MaxConnections, refused);

                socket.Dispose();
                continue;
            }

            _ = ServeAsync(socket, ct);
        }
    }

    private async Task ServeAsync(Socket socket, CancellationToken ct)
    {
        var peer = socket.RemoteEndPoint?.ToString() ?? "?";
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(IoTimeout);
            await using var stream = new NetworkStream(socket, ownsSocket: true);
            var (status, body, head) = await HandleAsync(stream, timeout.Token).ConfigureAwait(false);
            if (status == 0)
            {
                return;
            }

            timeout.CancelAfter(IoTimeout);
            await WriteAsync(stream, status, body, head, timeout.Token).ConfigureAwait(false);
            Interlocked.Increment(ref _answered);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            Log.ClientTimedOut(_logger, peer, IoTimeout);
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            Log.ClientFailed(_logger, peer, ex.Message);
        }
        catch (Exception ex)
        {
            // Never let one scrape take the agent down; a fault here is ours, so it is worth its trace.
            Log.ScrapeFailed(_logger, peer, ex);
        }
        finally
        {
            socket.Dispose();
            _slots.Release();
        }
    }

    /// <summary>Reads the request head and decides the answer; status 0: the client went away before a whole head.</summary>
    private async Task<(int Status, string Body, bool HeadOnly)> HandleAsync(Stream stream, CancellationToken ct)
    {
        var buffer = new byte[MaxRequestBytes];
        var filled = 0;
        var end = -1;
        while (end < 0)
        {
            if (filled == buffer.Length)
            {
                return (431, "request head too large\n", false);
            }

            var n = await stream.ReadAsync(buffer.AsMemory(filled), ct).ConfigureAwait(false);
            if (n == 0)
            {
                return (0, "", false);
            }

            var from = Math.Max(0, filled - 3);
            filled += n;
            var at = buffer.AsSpan(from, filled - from).IndexOf(HeadEnd);
            end = at < 0 ? -1 : from + at;
        }

        var lineEnd = buffer.AsSpan(0, end).IndexOf("\r\n"u8);
        var line = Encoding.ASCII.GetString(buffer, 0, lineEnd < 0 ? end : lineEnd);
        var parts = line.Split(' ');
        if (parts.Length != 3 || parts[0].Length == 0 || !parts[1].StartsWith('/') || parts[2] is not ("HTTP/1.1" or "HTTP/1.0"))
        {
            return (400, "bad request\n", false);
        }

        var head = parts[0] == "HEAD";
        if (parts[0] != "GET" && !head)
        {
            return (405, "only GET and HEAD\n", head);
        }

        var query = parts[1].IndexOf('?', StringComparison.Ordinal);
        var path = query < 0 ? parts[1] : parts[1][..query];
        if (path != "/metrics")
        {
            return (404, "not found; the metrics are at /metrics\n", head);
        }

        return (200, await _render(ct).ConfigureAwait(false), head);
    }

    private static async Task WriteAsync(Stream stream, int status, string body, bool headOnly, CancellationToken ct)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var reason = status switch
        {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            431 => "Request Header Fields Too Large",
            _ => "Error",
        };
        var head = new StringBuilder()
            .Append("HTTP/1.1 ").Append(status).Append(' ').Append(reason).Append("\r\n")
            .Append("Content-Type: ").Append(status == 200 ? ContentType : "text/plain; charset=utf-8").Append("\r\n")
            .Append("Content-Length: ").Append(bytes.Length).Append("\r\n")
            .Append(status == 405 ? "Allow: GET, HEAD\r\n" : "")
            .Append("Connection: close\r\n\r\n")
            .ToString();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head), ct).ConfigureAwait(false);
        if (!headOnly)
        {
            await stream.WriteAsync(bytes, ct).ConfigureAwait(false);
        }

        await stream.FlushAsync(ct).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        if (_acceptLoop is { } loop)
        {
            await loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        // Connections in flight end on the cancelled token; wait for their slots so none outlives the endpoint.
        for (var i = 0; i < MaxConnections; i++)
        {
            await _slots.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }

        _stop.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2100, Level = LogLevel.Debug, Message = "Prometheus endpoint: client {Peer} failed: {Reason}")]
        public static partial void ClientFailed(ILogger logger, string peer, string reason);

        [LoggerMessage(EventId = 2101, Level = LogLevel.Debug, Message = "Prometheus endpoint: client {Peer} sent no whole request or took no answer within {Timeout}")]
        public static partial void ClientTimedOut(ILogger logger, string peer, TimeSpan timeout);

        [LoggerMessage(EventId = 2102, Level = LogLevel.Warning, Message = "Prometheus endpoint: accepting a connection failed ({Code}: {Reason}); trying again in 1s")]
        public static partial void AcceptFailed(ILogger logger, string code, string reason);

        [LoggerMessage(EventId = 2103, Level = LogLevel.Debug, Message = "Prometheus endpoint: {Max} connections already open; closed the one from {Peer}")]
        public static partial void TooManyConnections(ILogger logger, int max, string peer);

        [LoggerMessage(EventId = 2104, Level = LogLevel.Error, Message = "Prometheus endpoint: a scrape from {Peer} failed; the agent goes on")]
        public static partial void ScrapeFailed(ILogger logger, string peer, Exception exception);
    }
}
