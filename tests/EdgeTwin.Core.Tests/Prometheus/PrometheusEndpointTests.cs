using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using EdgeTwin.Core.Prometheus;
using EdgeTwin.Core.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Core.Tests.Prometheus;

/// <summary>The HTTP endpoint on a real loopback socket (port 0), scraped by HttpClient and by hand-written requests.</summary>
public sealed class PrometheusEndpointTests : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly Meter _meter = new("EdgeTwin.Test." + Guid.NewGuid().ToString("N"));
    private PrometheusCollector _collector = null!;
    private PrometheusEndpoint _endpoint = null!;

    public ValueTask InitializeAsync()
    {
        _collector = new PrometheusCollector(new PrometheusCollectorOptions { MeterFilter = m => ReferenceEquals(m, _meter) });
        _endpoint = new PrometheusEndpoint(new IPEndPoint(IPAddress.Loopback, 0), _collector.ScrapeAsync, NullLogger.Instance)
        {
            IoTimeout = TimeSpan.FromSeconds(2),
            MaxRequestBytes = 4096,
        };
        _endpoint.Start();
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        await _endpoint.DisposeAsync();
        _collector.Dispose();
        _meter.Dispose();
    }

    private Uri Url(string path) => new($"http://{_endpoint.LocalEndpoint}{path}");

    private async Task<string> RawAsync(byte[] request, bool halfClose = false)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(_endpoint.LocalEndpoint, Ct);
        var stream = client.GetStream();
        try
        {
            await stream.WriteAsync(request, Ct);
        }
        catch (IOException)
        {
            // The server may answer and close before taking the whole of a huge request.
        }

        if (halfClose)
        {
            client.Client.Shutdown(SocketShutdown.Send);
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        var answer = new MemoryStream();
        try
        {
            await stream.CopyToAsync(answer, timeout.Token);
        }
        catch (IOException)
        {
            // Reset after the answer (unread request bytes): what arrived counts.
        }

        return Encoding.UTF8.GetString(answer.ToArray());
    }

    [Fact]
    public async Task A_scrape_returns_the_text_format_and_counters_move_between_scrapes()
    {
        var polls = _meter.CreateCounter<long>("edgetwin.test.polls", "{poll}", "Polls");
        polls.Add(3, new KeyValuePair<string, object?>("device", "pdu-1"));
        using var http = new HttpClient();

        using var first = await http.GetAsync(Url("/metrics"), Ct);
        var firstText = await first.Content.ReadAsStringAsync(Ct);
        polls.Add(2, new KeyValuePair<string, object?>("device", "pdu-1"));
        var secondText = await http.GetStringAsync(Url("/metrics?x=1"), Ct);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", first.Content.Headers.ContentType?.ToString());
        Assert.Equal(3, PrometheusTextParser.Value(PrometheusTextParser.Parse(firstText), "edgetwin_test_polls_total", ("device", "pdu-1")));
        Assert.Equal(5, PrometheusTextParser.Value(PrometheusTextParser.Parse(secondText), "edgetwin_test_polls_total", ("device", "pdu-1")));
    }

    [Fact]
    public async Task Other_paths_are_404_and_other_methods_405()
    {
        using var http = new HttpClient();

        using var notFound = await http.GetAsync(Url("/"), Ct);
        using var post = await http.PostAsync(Url("/metrics"), new StringContent("x"), Ct);
        using var head = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, Url("/metrics")), Ct);

        Assert.Equal(HttpStatusCode.NotFound, notFound.StatusCode);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, post.StatusCode);
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
    }

    [Fact]
    public async Task Malformed_and_huge_requests_get_an_error_and_the_next_scrape_still_works()
    {
        var errors = _meter.CreateCounter<long>("edgetwin.test.errors", "{error}", "Errors");
        errors.Add(1);

        var garbage = await RawAsync("\x16\x03\x01\x02\x00 not http at all\r\n\r\n"u8.ToArray());
        var huge = await RawAsync(Encoding.ASCII.GetBytes("GET /metrics HTTP/1.1\r\nX-Junk: " + new string('a', 200_000) + "\r\n\r\n"));
        var cut = await RawAsync("GET /metr"u8.ToArray(), halfClose: true);
        var ok = await RawAsync("GET /metrics HTTP/1.0\r\n\r\n"u8.ToArray());

        Assert.StartsWith("HTTP/1.1 400 Bad Request\r\n", garbage, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 431 Request Header Fields Too Large\r\n", huge, StringComparison.Ordinal);
        Assert.Equal("", cut);
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", ok, StringComparison.Ordinal);
        Assert.Equal(1, PrometheusTextParser.Value(PrometheusTextParser.Parse(ok[(ok.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..]), "edgetwin_test_errors_total"));
    }

    [Fact]
    public async Task A_client_that_sends_nothing_is_cut_at_the_timeout_and_does_not_block_scrapes()
    {
        using var silent = new TcpClient();
        await silent.ConnectAsync(_endpoint.LocalEndpoint, Ct);
        using var http = new HttpClient();

        var text = await http.GetStringAsync(Url("/metrics"), Ct);
        var buffer = new byte[16];
        var read = await silent.GetStream().ReadAsync(buffer, Ct);

        PrometheusTextParser.Parse(text);
        Assert.Equal(0, read);
    }

    [Fact]
    public void A_port_in_use_fails_at_construction_with_a_socket_error()
    {
        var ex = Assert.Throws<SocketException>(() => new PrometheusEndpoint(_endpoint.LocalEndpoint, _collector.ScrapeAsync, NullLogger.Instance));
        Assert.Equal(SocketError.AddressAlreadyInUse, ex.SocketErrorCode);
    }
}
