using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.State;
using EdgeTwin.Core.Config;
using EdgeTwin.Uplink.Mqtt;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Alerting.Sinks;

/// <summary>
/// POSTs the JSON message (<see cref="AlertJson"/>) to a LAN URL. Every request carries <c>X-EdgeTwin-Timestamp</c> (unix
/// seconds). With a secret, <c>X-EdgeTwin-Signature: sha256=HEX</c> is the HMAC-SHA256 of the exact body (kept for
/// existing receivers) and <c>X-EdgeTwin-Signature-256: t=TS,v1=HEX</c> the HMAC-SHA256 of <c>TS.body</c>, which a
/// receiver checks together with the age of <c>TS</c> to refuse replays. A <c>user:password@</c> in the URL is sent as
/// Basic auth, a bearer token as <c>Authorization: Bearer</c>. 2xx is delivered; 408, 429 and 5xx are retried by the
/// runner; 3xx (redirects are not followed) and other 4xx are rejected for good. Messages name the URL only redacted.
/// </summary>
public sealed partial class WebhookSink : IAlertSink
{
    public const string SignatureHeader = "X-EdgeTwin-Signature";

    public const string Signature256Header = "X-EdgeTwin-Signature-256";

    public const string TimestampHeader = "X-EdgeTwin-Timestamp";

    /// <summary>Appended to the url of a <c>format: alertmanager</c> sink (Alertmanager's API v2).</summary>
    public const string AlertmanagerApiPath = "/api/v2/alerts";

    // At most this much of a refusal's body is shown (Alertmanager's 400 text, a chat server's error).
    private const int MaxErrorText = 300;

    private readonly WebhookSinkConfig _config;
    private readonly string _site;
    private readonly string _gateway;
    private readonly HttpClient _http;
    private readonly byte[]? _key;
    private readonly Uri _target;
    private readonly string _shown;
    private readonly AuthenticationHeaderValue? _authorization;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    // Why the last handshake's certificate was refused; HttpClient only says "see inner exception".
    private volatile string? _certificateRejection;

    public WebhookSink(WebhookSinkConfig config, string site, string gateway, TimeProvider? time = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _site = site;
        _gateway = gateway;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _key = config.Secret is { Length: > 0 } s ? Encoding.UTF8.GetBytes(s) : null;

        // The handler never sees the user info (it would silently drop it): it becomes the Authorization header instead.
        _target = new Uri(config.Url.GetComponents(UriComponents.HttpRequestUrl, UriFormat.UriEscaped));
        if (config.Format == WebhookFormat.Alertmanager)
        {
            // url is Alertmanager's base; a path in it is a reverse proxy's prefix (https://noc/alertmanager).
            _target = new UriBuilder(_target) { Path = _target.AbsolutePath.TrimEnd('/') + AlertmanagerApiPath }.Uri;
        }

        _shown = config.Format == WebhookFormat.Alertmanager
            ? Redact.Url(new UriBuilder(config.Url) { Path = config.Url.AbsolutePath.TrimEnd('/') + AlertmanagerApiPath }.Uri)
            : Redact.Url(config.Url);
        _authorization = Authorization(config);
        _http = new HttpClient(new SocketsHttpHandler
        {
            ConnectTimeout = config.Timeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),

            // A redirect would re-POST the signed alert (and the Authorization header) wherever the receiver points.
            AllowAutoRedirect = false,

            // The default validation (system trust store, host name), only noting why a certificate is refused.
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = ValidateServerCertificate },
        })
        {
            // The runner's per-attempt token is the timeout; this only stops HttpClient's own 100 s default from interfering.
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    public string Name => _config.Name;

    public bool FollowsState => false;

    /// <summary>Alertmanager resolves an alert it is not told again within its resolve_timeout: every firing alert is re-sent.</summary>
    public TimeSpan ResendInterval => _config.Format == WebhookFormat.Alertmanager ? _config.ResendInterval : TimeSpan.Zero;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var warning in _config.PlaintextWarnings())
        {
            LogPlaintext(_config.Name, _shown, warning);
        }

        return Task.CompletedTask;
    }

    /// <summary>The <c>X-EdgeTwin-Signature</c> value for <paramref name="body"/> under <paramref name="secret"/>.</summary>
    public static string Sign(byte[] body, string secret) =>
        "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body));

    /// <summary>The <c>X-EdgeTwin-Signature-256</c> value: <c>t=TS,v1=</c> HMAC-SHA256 of <c>TS.body</c> in lower-case hex.</summary>
    public static string Sign256(long timestamp, byte[] body, string secret) =>
        Sign256(timestamp, body, Encoding.UTF8.GetBytes(secret));

    private static string Sign256(long timestamp, byte[] body, byte[] key)
    {
        var ts = timestamp.ToString(CultureInfo.InvariantCulture);
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key);
        hmac.AppendData(Encoding.ASCII.GetBytes(ts + "."));
        hmac.AppendData(body);
        return "t=" + ts + ",v1=" + Convert.ToHexStringLower(hmac.GetHashAndReset());
    }

    public async Task DeliverAsync(AlertNotification notification, IReadOnlyList<AlertSnapshot> alerts, CancellationToken cancellationToken)
    {
        var format = _config.Format;
        var body = format switch
        {
            WebhookFormat.Alertmanager => AlertmanagerJson.Encode(_site, _gateway, alerts),
            WebhookFormat.Slack => SlackJson.Encode(_site, _gateway, alerts, _config.Username, _config.Channel),
            _ => AlertJson.Encode(_site, _gateway, notification, alerts),
        };
        using var request = new HttpRequestMessage(HttpMethod.Post, _target);
        request.Content = new ByteArrayContent(body);
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Authorization = _authorization;
        if (format == WebhookFormat.EdgeTwin)
        {
            // EdgeTwin's own receivers check these; Alertmanager and chat servers would only carry them along.
            var timestamp = _time.GetUtcNow().ToUnixTimeSeconds();
            request.Headers.Add(TimestampHeader, timestamp.ToString(CultureInfo.InvariantCulture));
            if (_key is not null)
            {
                request.Headers.Add(SignatureHeader, "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(_key, body)));
                request.Headers.Add(Signature256Header, Sign256(timestamp, body, _key));
            }
        }

        HttpResponseMessage sent;
        _certificateRejection = null; // a reason from an earlier handshake must not explain this one's failure
        try
        {
            sent = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException ex) when (ex.HttpRequestError == HttpRequestError.SecureConnectionError)
        {
            var why = _certificateRejection ?? ex.InnerException?.Message ?? ex.Message;
            throw new HttpRequestException(HttpRequestError.SecureConnectionError, $"{_shown}: TLS handshake refused: {why}", ex);
        }

        using var response = sent;
        var code = (int)response.StatusCode;
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        if (code is >= 300 and < 400)
        {
            var location = response.Headers.Location is { } l ? Redact.Url(l.IsAbsoluteUri ? l : new Uri(_target, l)) : "no Location";
            throw new SinkRejectedException(
                $"{_shown} answered {code} {response.ReasonPhrase} to {location}; redirects are not followed: the signed alert would go elsewhere; put the final URL in url");
        }

        // Alertmanager says what it refused in the body ("start time must be before end time"), a chat server why the
        // hook failed ("invalid_payload", "channel_not_found"): without it the log said only 400 Bad Request.
        var said = format == WebhookFormat.EdgeTwin ? "" : await ErrorTextAsync(response, cancellationToken).ConfigureAwait(false);
        if (code is >= 400 and < 500 && response.StatusCode is not HttpStatusCode.RequestTimeout and not HttpStatusCode.TooManyRequests)
        {
            throw new SinkRejectedException($"{_shown} answered {code} {response.ReasonPhrase}{said}");
        }

        throw new HttpRequestException($"{_shown} answered {code} {response.ReasonPhrase}{said}", null, response.StatusCode);
    }

    /// <summary><c>: TEXT</c> from the start of the response body, on one line; empty when there is none or it cannot be read in time.</summary>
    private static async Task<string> ErrorTextAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                var buffer = new byte[MaxErrorText * 4];
                var read = 0;
                int n;
                while (read < buffer.Length && (n = await stream.ReadAsync(buffer.AsMemory(read), cancellationToken).ConfigureAwait(false)) > 0)
                {
                    read += n;
                }

                var text = new string([.. Encoding.UTF8.GetString(buffer, 0, read).Select(c => char.IsControl(c) ? ' ' : c)]).Trim();
                if (text.Length == 0)
                {
                    return "";
                }

                return ": " + (text.Length > MaxErrorText ? text[..MaxErrorText] + "…" : text);
            }
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException)
        {
            return "";
        }
    }

    public ValueTask DisposeAsync()
    {
        _http.Dispose();
        return ValueTask.CompletedTask;
    }

    private bool ValidateServerCertificate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (errors == SslPolicyErrors.None)
        {
            _certificateRejection = null;
            return true;
        }

        var reasons = new List<string>(3);
        if ((errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
        {
            reasons.Add("not presented");
        }

        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            reasons.Add($"does not match host {_target.IdnHost}");
        }

        if ((errors & SslPolicyErrors.RemoteCertificateChainErrors) != 0)
        {
            reasons.Add(EdgeTwin.Uplink.TlsFiles.ChainReason(chain?.ChainStatus ?? []));
        }

        using var leaf = certificate is null ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        _certificateRejection = $"server certificate {MqttClientOptionsFactory.Describe(leaf)} {string.Join("; ", reasons)} (trusted: the system trust store)";
        return false;
    }

    /// <summary>Basic from the URL's (percent-decoded) <c>user:password</c>, else Bearer, else none.</summary>
    private static AuthenticationHeaderValue? Authorization(WebhookSinkConfig config)
    {
        var userInfo = config.Url.UserInfo;
        if (userInfo.Length > 0)
        {
            var colon = userInfo.IndexOf(':', StringComparison.Ordinal);
            var user = Uri.UnescapeDataString(colon < 0 ? userInfo : userInfo[..colon]);
            var password = colon < 0 ? "" : Uri.UnescapeDataString(userInfo[(colon + 1)..]);
            return new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password)));
        }

        return config.BearerToken is { Length: > 0 } token ? new AuthenticationHeaderValue("Bearer", token) : null;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert sink {Sink} ({Url}): {Warning}")]
    private partial void LogPlaintext(string sink, string url, string warning);
}
