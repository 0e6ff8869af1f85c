using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.State;

namespace EdgeTwin.Alerting.Sinks;

/// <summary>
/// POSTs the JSON message (<see cref="AlertJson"/>) to a LAN URL. With a secret, <c>X-EdgeTwin-Signature: sha256=HEX</c>
/// is the HMAC-SHA256 of the exact body, so the receiver can check it came from this gateway. 2xx is delivered; 408, 429
/// and 5xx are retried by the runner; other 4xx are rejected for good.
/// </summary>
public sealed class WebhookSink : IAlertSink
{
    public const string SignatureHeader = "X-EdgeTwin-Signature";

    private readonly WebhookSinkConfig _config;
    private readonly string _site;
    private readonly string _gateway;
    private readonly HttpClient _http;
    private readonly byte[]? _key;

    public WebhookSink(WebhookSinkConfig config, string site, string gateway)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _site = site;
        _gateway = gateway;
        _key = config.Secret is { Length: > 0 } s ? System.Text.Encoding.UTF8.GetBytes(s) : null;
        _http = new HttpClient(new SocketsHttpHandler
        {
            ConnectTimeout = config.Timeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        })
        {
            // The runner's per-attempt token is the timeout; this only stops HttpClient's own 100 s default from interfering.
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    public string Name => _config.Name;

    public bool FollowsState => false;

    /// <summary>The signature header value for <paramref name="body"/> under <paramref name="secret"/>.</summary>
    public static string Sign(byte[] body, string secret) =>
        "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(System.Text.Encoding.UTF8.GetBytes(secret), body));

    public async Task DeliverAsync(AlertNotification notification, IReadOnlyList<AlertSnapshot> alerts, CancellationToken cancellationToken)
    {
        var body = AlertJson.Encode(_site, _gateway, notification, alerts);
        using var request = new HttpRequestMessage(HttpMethod.Post, _config.Url);
        request.Content = new ByteArrayContent(body);
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        if (_key is not null)
        {
            request.Headers.Add(SignatureHeader, "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(_key, body)));
        }

        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        var code = (int)response.StatusCode;
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        if (code is >= 400 and < 500 && response.StatusCode is not HttpStatusCode.RequestTimeout and not HttpStatusCode.TooManyRequests)
        {
            throw new SinkRejectedException($"{_config.Url} answered {code} {response.ReasonPhrase}");
        }

        throw new HttpRequestException($"{_config.Url} answered {code} {response.ReasonPhrase}", null, response.StatusCode);
    }

    public ValueTask DisposeAsync()
    {
        _http.Dispose();
        return ValueTask.CompletedTask;
    }
}
