using System.Collections.Concurrent;
using System.Security.Authentication;
using System.Text.Json;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;
using EdgeTwin.Uplink.Tests.Support;

namespace EdgeTwin.Alerting.Tests.Sinks;

/// <summary>
/// The alert MQTT sink's <c>tls:</c> block and its plaintext-credentials warning (security review F3): configured from
/// YAML as a site would, delivered to a real mosquitto TLS listener that requires a client certificate and a password.
/// </summary>
public sealed class MqttSinkTlsTests : IDisposable
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    private readonly string _dir = Directory.CreateTempSubdirectory("edgetwin-alerts-tls-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    internal static AlertNotification Message() => new("room=room1",
    [
        new AlertSnapshot(7, "inlet-hot", "rack-r01/inlet", AlertStatus.Firing, AlertState.Firing, EventSeverity.Critical, 31.5,
            "rack-r01/inlet = 31.5, above 30", new Dictionary<string, string> { ["room"] = "room1" }, [], T0, null, null, false, T0),
    ], T0);

    private string PasswordFile(string password)
    {
        var path = Path.Combine(_dir, "mqtt.pw");
        File.WriteAllText(path, password + "\n");
        // As the role installs secrets: a world-readable one would add its own warning to those asserted here.
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        return path;
    }

    private static string Sink(string body) => $$"""
        alerts:
          sinks:
            - { name: noc, type: mqtt, topic: "edgetwin/{site}/{gateway}/alerts", timeout: 10s, retries: 0, {{body}} }
        """;

    [Fact]
    public async Task Regression_the_alert_mqtt_sink_had_no_tls_and_sent_its_password_in_clear()
    {
        using var pki = new TestPki();
        await using var broker = await Mosquitto.StartAsync(pki, ("alerts", "s3cret"));
        var received = new ConcurrentQueue<(string Topic, byte[] Payload)>();
        using var subscriber = await broker.SubscribeAsync("edgetwin/#", received);

        var config = (MqttSinkConfig)Yaml.Valid(Sink(
            $"host: 127.0.0.1, port: {broker.TlsPort}, username: alerts, password_file: {PasswordFile("s3cret")}, "
            + $"tls: {{ ca_file: {pki.CaFile}, client_cert_file: {pki.ClientCertFile}, client_key_file: {pki.ClientKeyFile} }}")).Sinks[0];
        Assert.True(config.Tls.Enabled);
        Assert.Equal("s3cret", config.Password);

        await using var sink = new MqttSink(config, "dc1", "gw1");
        Assert.Equal($"mqtts://127.0.0.1:{broker.TlsPort}", sink.Peer);
        await using var runner = new SinkRunner(sink, config);
        await DeliversOneAlertAsync(runner, received);
    }

    /// <summary>Starts <paramref name="runner"/>, sends <see cref="Message"/> and checks it at the subscriber and in the runner's count.</summary>
    internal static async Task DeliversOneAlertAsync(SinkRunner runner, ConcurrentQueue<(string Topic, byte[] Payload)> received)
    {
        await runner.StartAsync(Ct);
        runner.Enqueue(Message(), Message().Alerts);

        await Wait.UntilAsync(() => !received.IsEmpty, "the alert at the subscriber", 30);
        Assert.True(received.TryDequeue(out var m));
        Assert.Equal("edgetwin/dc1/gw1/alerts", m.Topic);
        using var json = JsonDocument.Parse(m.Payload);
        Assert.Equal(7, json.RootElement.GetProperty("alerts")[0].GetProperty("id").GetInt64());
        await Wait.UntilAsync(() => runner.Delivered == 1, "the delivery counted", 30);
    }

    [Fact]
    public async Task A_broker_certificate_from_another_CA_fails_with_an_error_naming_ca_file()
    {
        using var pki = new TestPki();
        await using var broker = await Mosquitto.StartAsync(pki);
        var config = (MqttSinkConfig)Yaml.Valid(Sink(
            $"host: 127.0.0.1, port: {broker.TlsPort}, "
            + $"tls: {{ ca_file: {pki.OtherCaFile}, client_cert_file: {pki.ClientCertFile}, client_key_file: {pki.ClientKeyFile} }}")).Sinks[0];
        await using var sink = new MqttSink(config, "dc1", "gw1");

        var ex = await Assert.ThrowsAsync<AuthenticationException>(() => sink.DeliverAsync(Message(), Message().Alerts, Ct));
        Assert.Equal(
            $"mqtts://127.0.0.1:{broker.TlsPort}: TLS handshake failed: the broker's certificate (CN=localhost, issued by CN=EdgeTwin Test CA) does not chain to a CA in tls.ca_file '{pki.OtherCaFile}'",
            ex.Message);

        // Connecting by a name the certificate does not carry says so instead.
        var byName = config with { Host = "127.0.0.1", Tls = config.Tls with { CaFile = pki.CaFile, ServerName = "broker.example" } };
        await using var named = new MqttSink(byName, "dc1", "gw1");
        ex = await Assert.ThrowsAsync<AuthenticationException>(() => named.DeliverAsync(Message(), Message().Alerts, Ct));
        Assert.EndsWith("is not for 'broker.example' (set tls.server_name to the name it carries, or connect by that name)", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("host: 10.0.0.5, username: alerts, password_file: PW", "password_file", "username and password", "10.0.0.5:1883")]
    [InlineData("host: broker.lan, port: 1884, username: alerts, password: s3cret", "password", "username and password", "broker.lan:1884")]
    [InlineData("host: broker.lan, username: alerts", "username", "username", "broker.lan:1883")]
    public void Regression_credentials_to_a_lan_broker_without_tls_passed_check_silently(string body, string key, string what, string peer)
    {
        var (_, problems, warnings) = Read(Sink(body.Replace("PW", PasswordFile("s3cret"), StringComparison.Ordinal)));
        Assert.Empty(problems);
        var w = Assert.Single(warnings);
        Assert.Equal(("site.yaml", 3, "alerts.sinks[0]." + key), (w.File, w.Line, w.Path));
        Assert.Equal($"alert sink 'noc' sends its {what} to {peer} without TLS, readable by anyone on the network path; add tls: (port 8883) or use a broker on this machine", w.Message);
        Assert.True(w.IsWarning);
    }

    [Theory]
    [InlineData("host: 127.0.0.1, username: alerts, password: s3cret")]
    [InlineData("host: localhost, username: alerts, password: s3cret")]
    [InlineData("host: '::1', username: alerts, password: s3cret")]
    [InlineData("host: 10.0.0.5")]
    [InlineData("host: 10.0.0.5, username: alerts, password: s3cret, tls: { server_name: broker.lan }")]
    public void Credentials_over_loopback_or_tls_and_no_credentials_are_not_warned(string body)
    {
        var (_, problems, warnings) = Read(Sink(body));
        Assert.Empty(problems);
        Assert.Empty(warnings);
    }

    [Fact]
    public void The_tls_block_has_the_uplinks_keys_and_defaults()
    {
        using var pki = new TestPki();
        var pfxPassword = Path.Combine(_dir, "cert.pw");
        File.WriteAllText(pfxPassword, "pfx-secret\n");
        var config = (MqttSinkConfig)Yaml.Valid(Sink(
            $"host: broker.lan, tls: {{ ca_file: {pki.CaFile}, client_cert_file: {pki.ClientCertFile}, client_key_file: {pki.ClientKeyFile}, "
            + $"client_cert_password_file: {pfxPassword}, server_name: broker.example }}")).Sinks[0];
        Assert.Equal(8883, config.Port); // the TLS default, as for the uplink
        Assert.Equal(new Uplink.Mqtt.MqttTlsOptions
        {
            Enabled = true,
            CaFile = pki.CaFile,
            ClientCertificateFile = pki.ClientCertFile,
            ClientKeyFile = pki.ClientKeyFile,
            ClientCertificatePassword = "pfx-secret",
            ServerName = "broker.example",
        }, config.Tls);

        var plain = (MqttSinkConfig)Yaml.Valid(Sink("host: broker.lan, tls: { enabled: false }")).Sinks[0];
        Assert.False(plain.Tls.Enabled);
        Assert.Equal(1883, plain.Port);
    }

    [Fact]
    public void Unusable_tls_settings_are_config_errors_with_line_and_key()
    {
        var garbage = Path.Combine(_dir, "garbage.pem");
        File.WriteAllText(garbage, "not a certificate\n");
        var missing = Path.Combine(_dir, "missing.crt");

        Assert.Equal(
            [("alerts.sinks[0].tls.ca_file", $"'{missing}' does not exist")],
            Problems(Sink($"host: broker.lan, tls: {{ ca_file: {missing} }}")));
        Assert.Equal(
            [("alerts.sinks[0].tls.client_key_file", "client_key_file is set without client_cert_file")],
            Problems(Sink($"host: broker.lan, tls: {{ client_key_file: {garbage} }}")));
        Assert.Equal(
            [("alerts.sinks[0].tls.enabled", "tls has certificate files but enabled is false")],
            Problems(Sink($"host: broker.lan, tls: {{ enabled: false, ca_file: {garbage} }}")));
        Assert.Equal(
            [("alerts.sinks[0].tls.cafile", "unknown key 'cafile'")],
            Problems(Sink($"host: broker.lan, tls: {{ cafile: {garbage} }}")).Select(p => (p.Path, p.Message.Split(" (")[0])));
        Assert.Equal(
            [("alerts.sinks[0].password", "a password needs a username")],
            Problems(Sink("host: 127.0.0.1, password: s3cret")));

        // A file that exists but holds no certificate fails check as it would fail the sink at start, at its own key
        // (not the uplink's: the loading code is shared, its key names must not leak into the sink's message).
        var (path, message) = Assert.Single(Problems(Sink($"host: broker.lan, tls: {{ ca_file: {garbage} }}")));
        Assert.Equal("alerts.sinks[0].tls.ca_file", path);
        Assert.StartsWith(garbage + ": ", message, StringComparison.Ordinal);
        Assert.DoesNotContain("uplinks", message, StringComparison.Ordinal);
    }

    private static (AlertsConfig Config, IReadOnlyList<Core.Config.ConfigDiagnostic> Problems, IReadOnlyList<Core.Config.ConfigDiagnostic> Warnings) Read(string yaml)
    {
        var diagnostics = new Core.Config.ConfigDiagnostics();
        var root = (Core.Config.ConfigMapping)Core.Config.YamlTree.Parse(yaml, "site.yaml", diagnostics)!;
        var config = AlertsConfig.Read(new Core.Config.ConfigReader((Core.Config.ConfigMapping)root["alerts"]!, diagnostics), Path.GetTempPath());
        return (config, diagnostics.Sorted(), diagnostics.SortedWarnings());
    }

    private static IReadOnlyList<(string Path, string Message)> Problems(string yaml) =>
        [.. Read(yaml).Problems.Select(p => (p.Path, p.Message))];
}
