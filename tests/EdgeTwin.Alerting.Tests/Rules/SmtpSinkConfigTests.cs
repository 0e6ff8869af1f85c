using EdgeTwin.Alerting.Rules;
using EdgeTwin.Core.Config;

namespace EdgeTwin.Alerting.Tests.Rules;

/// <summary>The smtp sink's keys as <c>edgetwin check</c> and the start read them: defaults, and each mistake at its file, line and key.</summary>
public sealed class SmtpSinkConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetwin-smtp-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>The sink read from a one-sink <c>alerts:</c> section, and the errors and warnings, one per line.</summary>
    private (SmtpSinkConfig? Sink, string Problems) Read(string sink)
    {
        var diagnostics = new ConfigDiagnostics();
        var yaml = $$"""
            alerts:
              sinks:
                - {{sink}}
            """;
        var root = (ConfigMapping)YamlTree.Parse(yaml, "site.yaml", diagnostics)!;
        var config = AlertsConfig.Read(new ConfigReader((ConfigMapping)root["alerts"]!, diagnostics), _dir);
        return (config.Sinks.OfType<SmtpSinkConfig>().SingleOrDefault(), string.Join("\n", diagnostics.Sorted().Concat(diagnostics.Warnings)));
    }

    private void Secret(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    [Fact]
    public void A_relay_with_starttls_and_a_password_file_is_read_with_its_defaults()
    {
        Secret("smtp.pw", "s3cret\n");
        var (sink, problems) = Read("""{ name: mail, type: smtp, host: relay.plant.lan, username: gw1, password_file: smtp.pw, from: edgetwin@plant.example, to: [oncall@plant.example, "Facilities <fac@plant.example>"] }""");
        Assert.Equal("", problems);
        Assert.Equal(SmtpTls.StartTls, sink!.Tls);
        Assert.Equal(587, sink.Port);
        Assert.Equal("s3cret", sink.Password);
        Assert.Equal(["oncall@plant.example", "Facilities <fac@plant.example>"], sink.To);
        Assert.Equal(SmtpSinkConfig.DefaultSubject, sink.Subject);
        Assert.Equal(100, sink.MaxAlertsPerMail);
        Assert.DoesNotContain("s3cret", sink.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("implicit", 465)]
    [InlineData("none", 25)]
    public void The_port_follows_the_tls_mode(string tls, int port)
    {
        var (sink, problems) = Read($$"""{ name: mail, type: smtp, host: 127.0.0.1, tls: {{tls}}, from: a@plant.example, to: [b@plant.example] }""");
        Assert.Equal("", problems);
        Assert.Equal(port, sink!.Port);
    }

    [Fact]
    public void Credentials_over_plain_smtp_to_another_host_are_refused_unless_explicitly_allowed()
    {
        Secret("smtp.pw", "s3cret");
        var (_, problems) = Read("""{ name: mail, type: smtp, host: 10.0.0.25, tls: none, username: gw1, password_file: smtp.pw, from: a@plant.example, to: [b@plant.example] }""");
        Assert.Equal("site.yaml:3:91: alerts.sinks[0].password_file: alert sink 'mail' would send its username and password to 10.0.0.25 without TLS (AUTH is only base64, readable by anyone on the network path): use tls: starttls or implicit, or set allow_plaintext_auth: true if the relay offers no TLS", problems);

        var (allowed, allowedProblems) = Read("""{ name: mail, type: smtp, host: 10.0.0.25, tls: none, allow_plaintext_auth: true, username: gw1, password_file: smtp.pw, from: a@plant.example, to: [b@plant.example] }""");
        Assert.Equal("", allowedProblems);
        Assert.True(allowed!.AllowPlaintextAuth);

        // A relay on this machine: nothing crosses the network.
        var (_, local) = Read("""{ name: mail, type: smtp, host: 127.0.0.1, tls: none, username: gw1, password_file: smtp.pw, from: a@plant.example, to: [b@plant.example] }""");
        Assert.Equal("", local);
    }

    [Theory]
    [InlineData("""{ name: mail, type: smtp, host: relay.lan, tls: starttls, to: [b@plant.example] }""", "{", "alerts.sinks[0].from: missing required key 'from'")]
    [InlineData("""{ name: mail, type: smtp, host: relay.lan, from: a@plant.example, to: [oncall] }""", "oncall]", "alerts.sinks[0].to[0]: 'oncall' is not a mail address (local@domain, or \"Name <local@domain>\")")]
    [InlineData("""{ name: mail, type: smtp, host: relay.lan, from: a@plant.example, to: [] }""", "[]", "alerts.sinks[0].to: give at least one recipient")]
    [InlineData("""{ name: mail, type: smtp, host: relay.lan, tls: ssl, from: a@plant.example, to: [b@plant.example] }""", "ssl", "alerts.sinks[0].tls: expected one of starttls, implicit, none, got 'ssl'")]
    [InlineData("""{ name: mail, type: smtp, host: relay.lan, from: a@plant.example, to: [b@plant.example], subject: "{sevrity} {rule}" }""", "\"{sevrity}", "alerts.sinks[0].subject: unknown placeholder {sevrity}: subject can use {severity}, {status}, {site}, {gateway}, {rule}, {key}, {place}, {count}, {more}")]
    [InlineData("""{ name: mail, type: smtp, host: relay.lan, password: x, from: a@plant.example, to: [b@plant.example] }""", "x,", "alerts.sinks[0].password: a password needs a username")]
    [InlineData("""{ name: mail, type: smtp, host: relay.lan, tls: none, ca_file: ca.crt, from: a@plant.example, to: [b@plant.example] }""", "ca.crt", "alerts.sinks[0].ca_file: ca_file applies only with TLS (tls: starttls or implicit); this sink has tls: none")]
    [InlineData("""{ name: mail, type: smtp, host: "smtp://relay.lan", from: a@plant.example, to: [b@plant.example] }""", "\"smtp://", "alerts.sinks[0].host: 'smtp://relay.lan' is not a host name or address (no scheme, port or path: port: is its own key)")]
    public void A_mistake_names_the_file_the_line_and_the_key(string sink, string at, string expected)
    {
        // Line 3 is "    - " and the sink; the column is where the offending value (or the sink's mapping) starts.
        var column = ("    - " + sink).IndexOf(at, StringComparison.Ordinal) + 1;
        var (_, problems) = Read(sink);
        Assert.Contains($"site.yaml:3:{column}: {expected}", problems.Split('\n'));
    }

    [Fact]
    public void A_ca_file_without_a_certificate_fails_at_its_key()
    {
        File.WriteAllText(Path.Combine(_dir, "ca.crt"), "not a certificate\n");
        var (_, problems) = Read("""{ name: mail, type: smtp, host: relay.lan, ca_file: ca.crt, from: a@plant.example, to: [b@plant.example] }""");
        Assert.StartsWith("site.yaml:3:59: alerts.sinks[0].ca_file: ", problems, StringComparison.Ordinal);
        Assert.Contains("no PEM certificate", problems, StringComparison.Ordinal);
    }
}
