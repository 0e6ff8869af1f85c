using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace EdgeTwin.Alerting.Tests.Support;

internal sealed record HttpHit(string Method, string Path, IReadOnlyDictionary<string, string> Headers, byte[] Body);

/// <summary>
/// A minimal HTTP/1.1 server on a loopback TcpListener (random port) that records each request and answers with the
/// status <see cref="Respond"/> picks. One request per connection (it answers <c>Connection: close</c>).
/// </summary>
internal sealed class TinyHttpServer : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<HttpHit> _hits = new();
    private readonly Task _accept;

    /// <param name="address">Where to listen: IPv4 loopback by default, <see cref="IPAddress.IPv6Loopback"/> for an IPv6-only LAN.</param>
    public TinyHttpServer(IPAddress? address = null)
    {
        _listener = new TcpListener(address ?? IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accept = AcceptAsync();
    }

    public int Port { get; }

    public Uri Url => new($"http://{(IPEndPoint)_listener.LocalEndpoint}/hook");

    /// <summary>Status code per request number (1-based).</summary>
    public Func<int, int> Respond { get; set; } = _ => 200;

    /// <summary>Extra response header lines per request number (1-based), each ending in CRLF (a redirect's Location).</summary>
    public Func<int, string> ResponseHeaders { get; set; } = _ => "";

    /// <summary>Response body per request number (1-based), as text (Alertmanager's error for a 400); empty by default.</summary>
    public Func<int, string> ResponseBody { get; set; } = _ => "";

    /// <summary>Delay before answering (a slow peer).</summary>
    public TimeSpan Delay { get; set; }

    public IReadOnlyList<HttpHit> Hits => [.. _hits];

    private int _count;

    private async Task AcceptAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                _ = Task.Run(() => ServeAsync(client));
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            try
            {
                var stream = client.GetStream();
                var head = new StringBuilder();
                var buffer = new byte[1];
                while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
                {
                    if (await stream.ReadAsync(buffer, _stop.Token) == 0)
                    {
                        return;
                    }

                    head.Append((char)buffer[0]);
                }

                var lines = head.ToString().Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
                var requestLine = lines[0].Split(' ');
                var headers = lines.Skip(1).Select(l => l.Split(':', 2)).ToDictionary(p => p[0].Trim(), p => p[1].Trim(), StringComparer.OrdinalIgnoreCase);
                var length = headers.TryGetValue("Content-Length", out var cl) ? int.Parse(cl, System.Globalization.CultureInfo.InvariantCulture) : 0;
                var body = new byte[length];
                var read = 0;
                while (read < length)
                {
                    var n = await stream.ReadAsync(body.AsMemory(read), _stop.Token);
                    if (n == 0)
                    {
                        return;
                    }

                    read += n;
                }

                _hits.Enqueue(new HttpHit(requestLine[0], requestLine[1], headers, body));
                var number = Interlocked.Increment(ref _count);
                var status = Respond(number);
                if (Delay > TimeSpan.Zero)
                {
                    await Task.Delay(Delay, _stop.Token);
                }

                var content = Encoding.UTF8.GetBytes(ResponseBody(number));
                var response = Encoding.ASCII.GetBytes($"HTTP/1.1 {status} X\r\n{ResponseHeaders(number)}Content-Length: {content.Length}\r\nConnection: close\r\n\r\n");
                await stream.WriteAsync(response, _stop.Token);
                await stream.WriteAsync(content, _stop.Token);
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or SocketException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accept;
        _stop.Dispose();
    }
}
