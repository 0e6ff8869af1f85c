using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using EdgeTwin.Agent.Cli;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.IntegrationTests.Agent;

namespace EdgeTwin.IntegrationTests.StoreAndForward;

/// <summary>
/// The uplink's secret and private-key files through <c>edgetwin check</c> and the agent's config reading (security review
/// F4): <c>tls.client_cert_password_file</c> exists next to the inline <c>client_cert_password</c>, and key files other
/// users can read are warned about. Real certificates, made by the test, so the uplink's own checks accept them.
/// </summary>
public sealed class UplinkSecretFileTests
{
    private static void Chmod(string path, UnixFileMode mode)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, mode);
        }
    }

    private const UnixFileMode M0640 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead;

    /// <summary>A self-signed client certificate as PKCS#12 (gw.p12, password <paramref name="password"/>) and as PEM (gw.pem + gw.key).</summary>
    private static void WriteCertificates(string dir, string password)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=gw-test", key, HashAlgorithmName.SHA256);
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        File.WriteAllBytes(Path.Combine(dir, "gw.p12"), cert.Export(X509ContentType.Pkcs12, password));
        File.WriteAllText(Path.Combine(dir, "gw.pem"), cert.ExportCertificatePem());
        File.WriteAllText(Path.Combine(dir, "gw.key"), key.ExportPkcs8PrivateKeyPem());
    }

    private static string Config(string tls)
    {
        var path = AgentFiles.WriteConfig(
            "  - { id: pdu-1, profile: apc-rpdu2, address: \"udp:127.0.0.1:16100\", credentials: pub }",
            $"uplinks: {{ mqtt: {{ host: 127.0.0.1, tls: {{ {tls} }} }} }}");
        Chmod(path, M0640);
        WriteCertificates(Path.GetDirectoryName(path)!, "p12-password");
        return path;
    }

    [Fact]
    public async Task Regression_the_pkcs12_password_could_only_be_written_inline_in_the_config()
    {
        var path = Config("enabled: true, client_cert_file: gw.p12, client_cert_password_file: gw.pw");
        var pw = Path.Combine(Path.GetDirectoryName(path)!, "gw.pw");
        await File.WriteAllTextAsync(pw, "p12-password\n", TestContext.Current.CancellationToken);
        Chmod(pw, M0640);

        var (exit, output, error) = await InProcessCli.RunAsync("check", "--config", path);
        Assert.True(exit == 0, $"exit {exit}: {error}\n{output}");
        Assert.DoesNotContain("warning", output, StringComparison.Ordinal);

        var uplinks = UplinksConfig.From(AgentConfigFile.LoadSite(path).Config!, Path.GetDirectoryName(path)!);
        Assert.Equal("p12-password", uplinks.Mqtt!.Tls.ClientCertificatePassword);
    }

    [Fact]
    public async Task Client_cert_password_inline_and_in_a_file_is_an_error_at_the_file_key()
    {
        var path = Config("enabled: true, client_cert_file: gw.p12, client_cert_password: p12-password, client_cert_password_file: gw.pw");
        await File.WriteAllTextAsync(Path.Combine(Path.GetDirectoryName(path)!, "gw.pw"), "p12-password\n", TestContext.Current.CancellationToken);

        var (exit, output, _) = await InProcessCli.RunAsync("check", "--config", path);
        Assert.Equal(1, exit);
        Assert.Contains(": uplinks.mqtt.tls.client_cert_password_file: give either 'client_cert_password' or 'client_cert_password_file', not both", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_a_world_readable_client_key_passed_check_without_a_word()
    {
        var path = Config("enabled: true, client_cert_file: gw.pem, client_key_file: gw.key");
        var key = Path.Combine(Path.GetDirectoryName(path)!, "gw.key");
        Chmod(key, M0640 | UnixFileMode.OtherRead);

        var (exit, output, error) = await InProcessCli.RunAsync("check", "--config", path);
        Assert.True(exit == 0, $"exit {exit}: {error}\n{output}");
        Assert.Contains($": warning: uplinks.mqtt.tls.client_key_file: {key} is readable by every user (mode 0644); chmod 0640 and chown root:edgetwin", output, StringComparison.Ordinal);

        Chmod(key, M0640);
        (exit, output, _) = await InProcessCli.RunAsync("check", "--config", path);
        Assert.Equal(0, exit);
        Assert.DoesNotContain("warning", output, StringComparison.Ordinal);
    }

    private static string AlertSinkConfig(string tls)
    {
        var path = AgentFiles.WriteConfig(
            "  - { id: pdu-1, profile: apc-rpdu2, address: \"udp:127.0.0.1:16100\", credentials: pub }",
            $"alerts: {{ sinks: [ {{ name: noc, type: mqtt, host: 127.0.0.1, tls: {{ {tls} }} }} ] }}");
        Chmod(path, M0640);
        WriteCertificates(Path.GetDirectoryName(path)!, "p12-password");
        return path;
    }

    [Fact]
    public async Task Regression_the_alert_mqtt_sinks_tls_keys_were_not_checked_as_the_uplinks()
    {
        // The Alerting README: the sink's tls: "has the keys and meaning of uplinks.mqtt.tls". Before, a world-readable
        // client key passed without a word and a password inline and in a file was silently resolved.
        var path = AlertSinkConfig("client_cert_file: gw.pem, client_key_file: gw.key");
        var key = Path.Combine(Path.GetDirectoryName(path)!, "gw.key");
        Chmod(key, M0640 | UnixFileMode.OtherRead);
        var (exit, output, error) = await InProcessCli.RunAsync("check", "--config", path);
        Assert.True(exit == 0, $"exit {exit}: {error}\n{output}");
        Assert.Contains($": warning: alerts.sinks[0].tls.client_key_file: {key} is readable by every user (mode 0644); chmod 0640 and chown root:edgetwin", output, StringComparison.Ordinal);

        path = AlertSinkConfig("client_cert_file: gw.p12, client_cert_password: p12-password, client_cert_password_file: gw.pw");
        var pw = Path.Combine(Path.GetDirectoryName(path)!, "gw.pw");
        await File.WriteAllTextAsync(pw, "p12-password\n", TestContext.Current.CancellationToken);
        Chmod(pw, M0640);
        (exit, output, _) = await InProcessCli.RunAsync("check", "--config", path);
        Assert.Equal(1, exit);
        Assert.Contains(": alerts.sinks[0].tls.client_cert_password_file: give either 'client_cert_password' or 'client_cert_password_file', not both", output, StringComparison.Ordinal);
    }
}
