using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Alerting.Tests.Sinks;

/// <summary>
/// The webhook's credentials and where its signed alerts may go (security review F1, F8), against a real HTTP receiver on
/// loopback: URL secrets never in a log line, an exception or check output; user info and bearer tokens sent as
/// Authorization; no redirects followed; plain-http warnings.
/// </summary>
public sealed class WebhookSecurityTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    private static AlertNotification Message()
    {
        var alert = new AlertSnapshot(
            1, "inlet-hot", "rack-r01/inlet", AlertStatus.Firing, AlertState.Firing, EventSeverity.Critical, 31.5,
            "rack-r01/inlet = 31.5, above 30", new Dictionary<string, string> { ["room"] = "room1", ["rule"] = "inlet-hot" }, [],
            T0, null, null, false, T0);
        return new AlertNotification("room=room1", [alert], T0);
    }

    private static async Task<(TinyHttpServer Server, CapturingLogger Log, SinkRunner Runner)> DeliverOnceAsync(WebhookSinkConfig config, TinyHttpServer server)
    {
        var log = new CapturingLogger();
        var runner = new SinkRunner(new WebhookSink(config, "dc1", "gw1", logger: log), config with { Retries = 0 }, log);
        await runner.StartAsync(TestContext.Current.CancellationToken);
        var message = Message();
        runner.Enqueue(message, message.Alerts);
        // The runner counts a failure before it logs it: wait for the log line.
        await Wait.UntilAsync(() => runner.Delivered == 1 || log.Entries.Any(e => e.Level == LogLevel.Error), "one delivery attempt");
        return (server, log, runner);
    }

    [Fact]
    public async Task Regression_a_403_logged_the_webhook_urls_password_and_token_at_error_level()
    {
        await using var server = new TinyHttpServer { Respond = _ => 403 };
        var url = new Uri($"http://hookuser:HOOK%20PASS%3AS3CRET@127.0.0.1:{server.Port}/fail?token=HOOKTOKEN-S3CRET&site=dc1");
        var config = new WebhookSinkConfig { Name = "noc", Url = url, Secret = "HMAC-S3CRET", Timeout = TimeSpan.FromSeconds(10) };
        var (_, log, runner) = await DeliverOnceAsync(config, server);
        await using var _ = runner;

        Assert.Equal(1, runner.Failed);
        var error = Assert.Single(log.Entries, e => e.Level == LogLevel.Error).Text;
        Assert.Contains($"SinkRejectedException: http://***@127.0.0.1:{server.Port}/fail?token=***&site=*** answered 403 X", error, StringComparison.Ordinal);
        foreach (var secret in new[] { "hookuser", "HOOK%20PASS", "HOOK PASS", "S3CRET" })
        {
            Assert.DoesNotContain(secret, log.Text, StringComparison.Ordinal);
        }

        // The record's own ToString (what a stray log of the config would print) hides them too.
        Assert.Equal(
            $"WebhookSinkConfig {{ Name = noc, QueueCapacity = 256, Timeout = 00:00:10, Retries = 3, RetryDelay = 00:00:00.5000000, Url = http://***@127.0.0.1:{server.Port}/fail?token=***&site=***, Secret = ***, BearerToken = null }}",
            config.ToString());

        // The query still goes to the receiver as written; only what is shown is redacted.
        Assert.Equal("/fail?token=HOOKTOKEN-S3CRET&site=dc1", Assert.Single(server.Hits).Path);
    }

    [Fact]
    public async Task Regression_a_rejected_webhook_certificate_was_logged_only_as_see_inner_exception()
    {
        // A real TLS receiver on loopback whose certificate is self-signed and issued for another host name.
        using var key = System.Security.Cryptography.RSA.Create(2048);
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest(
            "CN=noc.plant.example", key, System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
        var san = new System.Security.Cryptography.X509Certificates.SubjectAlternativeNameBuilder();
        san.AddDnsName("noc.plant.example");
        request.CertificateExtensions.Add(san.Build());
        using var certificate = request.CreateSelfSigned(T0.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        stop.CancelAfter(TimeSpan.FromSeconds(30));
        var serve = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync(stop.Token);
            await using var tls = new System.Net.Security.SslStream(client.GetStream());
            try
            {
                await tls.AuthenticateAsServerAsync(new System.Net.Security.SslServerAuthenticationOptions { ServerCertificate = certificate }, stop.Token);
            }
            catch (Exception ex) when (ex is System.Security.Authentication.AuthenticationException or IOException)
            {
                // The client refused the certificate: what the test wants.
            }
        }, TestContext.Current.CancellationToken);

        var url = new Uri($"https://hookuser:S3CRET@127.0.0.1:{port}/hook?token=HOOKTOKEN-S3CRET");
        var log = new CapturingLogger();
        var config = new WebhookSinkConfig { Name = "noc", Url = url, Timeout = TimeSpan.FromSeconds(10), Retries = 0 };
        await using var runner = new SinkRunner(new WebhookSink(config, "dc1", "gw1", logger: log), config, log);
        await runner.StartAsync(TestContext.Current.CancellationToken);
        var message = Message();
        runner.Enqueue(message, message.Alerts);
        await Wait.UntilAsync(() => log.Entries.Any(e => e.Level >= LogLevel.Warning), "the failed delivery logged");
        await serve.WaitAsync(TestContext.Current.CancellationToken);

        Assert.Equal(0, runner.Delivered);
        Assert.Contains(
            $"https://***@127.0.0.1:{port}/hook?token=***: TLS handshake refused: server certificate CN=noc.plant.example (SAN DNS:noc.plant.example) does not match host 127.0.0.1; untrusted root",
            log.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("see inner exception", log.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("S3CRET", log.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_the_user_and_password_in_the_webhook_url_were_silently_not_sent()
    {
        await using var server = new TinyHttpServer();
        var url = new Uri($"http://hookuser:HOOK%20PASS%3AS3CRET@127.0.0.1:{server.Port}/hook");
        var (_, _, runner) = await DeliverOnceAsync(new WebhookSinkConfig { Name = "noc", Url = url, Timeout = TimeSpan.FromSeconds(10) }, server);
        await using var _ = runner;

        Assert.Equal(1, runner.Delivered);
        var hit = Assert.Single(server.Hits);

        // base64("hookuser:HOOK PASS:S3CRET"): percent-escapes decoded, the password may hold a colon.
        Assert.Equal("Basic aG9va3VzZXI6SE9PSyBQQVNTOlMzQ1JFVA==", hit.Headers["Authorization"]);
        Assert.Equal("/hook", hit.Path);
    }

    [Fact]
    public async Task Bearer_token_file_is_read_at_load_and_sent_as_authorization_bearer()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-hook-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(dir, "hook.token"), "tok-S3CRET.abc_123\n", TestContext.Current.CancellationToken);
            await using var server = new TinyHttpServer();
            var (config, problems) = Yaml.Alerts($$"""
                alerts:
                  sinks:
                    - { name: noc, type: webhook, url: "http://127.0.0.1:{{server.Port}}/hook", bearer_token_file: hook.token }
                """, Path.Combine(dir, "site.yaml"));
            Assert.Empty(problems);
            var hook = Assert.IsType<WebhookSinkConfig>(Assert.Single(config.Sinks));
            Assert.DoesNotContain("S3CRET", hook.ToString(), StringComparison.Ordinal);
            var (_, log, runner) = await DeliverOnceAsync(hook, server);
            await using var _ = runner;

            Assert.Equal(1, runner.Delivered);
            Assert.Equal("Bearer tok-S3CRET.abc_123", Assert.Single(server.Hits).Headers["Authorization"]);
            Assert.DoesNotContain("S3CRET", log.Text, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Regression_a_webhook_url_that_is_itself_the_key_could_only_be_written_inline_in_the_config()
    {
        // A Slack/Teams-style incoming webhook carries its key in the path; every other secret had a _file variant.
        var dir = Directory.CreateTempSubdirectory("edgetwin-hook-").FullName;
        try
        {
            await using var server = new TinyHttpServer();
            var file = Path.Combine(dir, "hook.url");
            await File.WriteAllTextAsync(file, $"http://127.0.0.1:{server.Port}/services/T000/B000/KEYS3CRETXXXXXXXXXXXXXXXX\n", TestContext.Current.CancellationToken);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }

            var (config, problems) = Yaml.Alerts("""
                alerts:
                  sinks:
                    - { name: noc, type: webhook, url_file: hook.url }
                """, Path.Combine(dir, "site.yaml"));
            Assert.Empty(problems);
            var hook = Assert.IsType<WebhookSinkConfig>(Assert.Single(config.Sinks));
            Assert.DoesNotContain("KEYS3CRET", hook.ToString(), StringComparison.Ordinal);
            var (_, log, runner) = await DeliverOnceAsync(hook, server);
            await using var _ = runner;

            Assert.Equal(1, runner.Delivered);
            Assert.Equal("/services/T000/B000/KEYS3CRETXXXXXXXXXXXXXXXX", Assert.Single(server.Hits).Path);
            Assert.DoesNotContain("KEYS3CRET", log.Text, StringComparison.Ordinal);

            // Both keys: one error, at the file key.
            var (_, both) = Yaml.Alerts("""
                alerts:
                  sinks:
                    - { name: noc, type: webhook, url: "https://10.0.0.5/hook", url_file: hook.url }
                """, Path.Combine(dir, "site.yaml"));
            Assert.EndsWith("alerts.sinks[0].url_file: give either 'url' or 'url_file', not both", Assert.Single(both).ToString(), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void A_user_in_the_url_and_a_bearer_token_together_are_an_error_at_the_token_key()
    {
        var (_, problems) = Yaml.Alerts("""
            alerts:
              sinks:
                - { name: noc, type: webhook, url: "https://u:p@10.0.0.5/hook", bearer_token: abc }
                - { name: odd, type: webhook, url: "https://10.0.0.6/hook", bearer_token: "a b" }
            """);
        Assert.Equal(
            [
                "site.yaml:3:83: alerts.sinks[0].bearer_token: give either a user:password in the url (Basic auth) or a bearer token, not both: each sets the Authorization header",
                "site.yaml:4:79: alerts.sinks[1].bearer_token: the bearer token holds spaces or characters an HTTP header cannot carry (printable ASCII only)",
            ],
            problems.Select(p => p.ToString()));
    }

    [Fact]
    public async Task Regression_the_webhook_followed_a_307_and_re_posted_the_signed_alert_to_the_new_location()
    {
        await using var server = new TinyHttpServer
        {
            Respond = n => n == 1 ? 307 : 200,
            ResponseHeaders = n => n == 1 ? "Location: /landed?key=LOC-S3CRET\r\n" : "",
        };
        var url = new Uri($"http://127.0.0.1:{server.Port}/redir");
        var (_, log, runner) = await DeliverOnceAsync(new WebhookSinkConfig { Name = "noc", Url = url, Secret = "s3cret", Timeout = TimeSpan.FromSeconds(10) }, server);
        await using var _ = runner;

        // Rejected for good, not retried, and nothing went to /landed.
        Assert.Equal(1, runner.Failed);
        Assert.Equal("/redir", Assert.Single(server.Hits).Path);
        var error = Assert.Single(log.Entries, e => e.Level == LogLevel.Error).Text;
        Assert.Contains(
            $"SinkRejectedException: http://127.0.0.1:{server.Port}/redir answered 307 X to http://127.0.0.1:{server.Port}/landed?key=***; redirects are not followed: the signed alert would go elsewhere; put the final URL in url",
            error,
            StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://127.0.0.1:8080/hook", "secret: s", new string[0])]
    [InlineData("http://u:p@localhost/hook", "secret: s", new string[0])]
    [InlineData("http://hooks.localhost:9000/hook", "secret: s", new string[0])]
    [InlineData("http://[::1]:9000/hook", "bearer_token: t0k", new string[0])]
    [InlineData("https://u:p@203.0.113.7/hook", "secret: s", new string[0])]
    [InlineData("http://10.1.2.3/hook", "retries: 1", new string[0])]
    [InlineData("http://172.20.0.1/hook", "retries: 1", new string[0])]
    [InlineData("http://192.168.1.20/hook", "retries: 1", new string[0])]
    [InlineData("http://169.254.10.1/hook", "retries: 1", new string[0])]
    [InlineData("http://[fd12:3456::1]/hook", "retries: 1", new string[0])]
    [InlineData("http://[fe80::1]/hook", "retries: 1", new string[0])]
    [InlineData("http://10.0.0.20:8080/alerts", "secret: s", new[] { "signed alerts go over plain http to 10.0.0.20: the signature stops changes, not reading; use https" })]
    [InlineData("http://172.32.0.1/hook", "retries: 1", new[] { "plain http to 172.32.0.1, which is not a loopback, private (RFC 1918, ULA) or link-local address: the alerts cross the network unencrypted; use https" })]
    [InlineData("http://noc.example.com/hook", "bearer_token: t0k", new[]
    {
        "plain http to noc.example.com, which is not a loopback, private (RFC 1918, ULA) or link-local address: the alerts cross the network unencrypted; use https",
        "the bearer token goes over plain http to noc.example.com: anyone on the path can read and reuse it; use https",
    })]
    [InlineData("http://u:p@192.168.1.20/hook", "secret: s", new[]
    {
        "the url's user:password (Basic auth is only base64) goes over plain http to 192.168.1.20: anyone on the path can read and reuse it; use https",
        "signed alerts go over plain http to 192.168.1.20: the signature stops changes, not reading; use https",
    })]
    public void Regression_plain_http_and_credentials_over_it_were_accepted_silently(string url, string extra, string[] expected)
    {
        var diagnostics = new Core.Config.ConfigDiagnostics();
        var root = (Core.Config.ConfigMapping)Core.Config.YamlTree.Parse($$"""
            alerts:
              sinks:
                - { name: noc, type: webhook, url: "{{url}}", {{extra}} }
            """, "site.yaml", diagnostics)!;
        var config = AlertsConfig.Read(new Core.Config.ConfigReader((Core.Config.ConfigMapping)root["alerts"]!, diagnostics), Path.GetTempPath());
        Assert.Empty(diagnostics.Items);
        Assert.Equal(expected.Select(w => "site.yaml:3:40: warning: alerts.sinks[0].url: " + w), diagnostics.SortedWarnings().Select(w => w.ToString()));

        // The agent's start says the same (the sink logs them, the URL redacted).
        Assert.Equal(expected, Assert.IsType<WebhookSinkConfig>(Assert.Single(config.Sinks)).PlaintextWarnings());
    }

    [Fact]
    public async Task The_agents_start_warns_about_credentials_over_plain_http_with_the_url_redacted()
    {
        var log = new CapturingLogger();
        var config = new WebhookSinkConfig { Name = "noc", Url = new Uri("http://u:PW-S3CRET@192.168.1.20/hook?token=T-S3CRET") };
        await using var sink = new WebhookSink(config, "dc1", "gw1", logger: log);
        await sink.StartAsync(TestContext.Current.CancellationToken);
        var warning = Assert.Single(log.Entries);
        Assert.Equal(
            (LogLevel.Warning, "alert sink noc (http://***@192.168.1.20/hook?token=***): the url's user:password (Basic auth is only base64) goes over plain http to 192.168.1.20: anyone on the path can read and reuse it; use https"),
            warning);
    }
}
