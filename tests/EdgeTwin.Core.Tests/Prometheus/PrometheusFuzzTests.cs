using System.Net;
using System.Net.Sockets;
using System.Text;
using EdgeTwin.Core.Prometheus;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Core.Tests.Prometheus;

/// <summary>
/// Mutation fuzzing of the /metrics endpoint's request parsing over real loopback connections (what anyone who can
/// reach the port sends): every whole request head gets one of the documented answers (200, 400, 404, 405, 431), a
/// connection closed before a whole head gets none, and nothing reaches the catch-all that logs a fault of ours with
/// its trace. EDGETWIN_FUZZ_ITERATIONS sets the long campaign.
/// </summary>
public sealed class PrometheusFuzzTests(ITestOutputHelper output)
{
    private static readonly string[] SeedRequests =
    [
        "GET /metrics HTTP/1.1\r\nHost: gw:9464\r\nUser-Agent: Prometheus/2.53.0\r\nAccept: application/openmetrics-text;version=1.0.0\r\n\r\n",
        "HEAD /metrics?x=1 HTTP/1.0\r\n\r\n", "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "GET / HTTP/1.1\r\n\r\n",
    ];

    private static readonly string[] Statuses = ["HTTP/1.1 200 ", "HTTP/1.1 400 ", "HTTP/1.1 404 ", "HTTP/1.1 405 ", "HTTP/1.1 431 "];

    [Fact]
    public async Task Request_heads_get_a_documented_answer_and_never_a_fault()
    {
        var log = new ListLogger();
        await using var endpoint = new PrometheusEndpoint(new IPEndPoint(IPAddress.Loopback, 0), _ => ValueTask.FromResult("up 1\n"), log)
        {
            IoTimeout = TimeSpan.FromSeconds(5),
            MaxRequestBytes = 1024,
        };
        endpoint.Start();
        byte[][] seeds = [.. SeedRequests.Select(Encoding.ASCII.GetBytes)];
        var report = MutationFuzzer.Run("prometheus requests", seeds, MutationFuzzer.Iterations(10_000), 71, request =>
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 10_000, SendTimeout = 10_000 };
            socket.Connect(endpoint.LocalEndpoint);
            socket.Send(request);
            socket.Shutdown(SocketShutdown.Send);
            var answer = new MemoryStream();
            var buffer = new byte[4096];
            int n;
            while ((n = socket.Receive(buffer)) > 0)
            {
                answer.Write(buffer, 0, n);
            }

            var text = Encoding.ASCII.GetString(answer.ToArray());
            var wholeHead = request.AsSpan().IndexOf("\r\n\r\n"u8) is >= 0 and var end && end + 4 <= 1024;
            if (wholeHead || request.Length >= 1024)
            {
                Assert.True(Statuses.Any(s => text.StartsWith(s, StringComparison.Ordinal)), $"answer '{text[..Math.Min(60, text.Length)]}'");
            }
            else
            {
                Assert.Equal("", text);
            }

            return text.StartsWith(Statuses[0], StringComparison.Ordinal);
        }, _ => false, maxAllocatedBytes: 1024 * 1024, hangLimit: TimeSpan.FromSeconds(30));
        output.WriteLine(report.ToString());
        Assert.DoesNotContain(log.Lines, l => l.Level >= LogLevel.Error);
    }
}
