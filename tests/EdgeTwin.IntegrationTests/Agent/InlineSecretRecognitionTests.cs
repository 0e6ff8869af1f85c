using System.Text.Json;

namespace EdgeTwin.IntegrationTests.Agent;

/// <summary>
/// Secrets written inline where the owners did not read them as secrets (security review leftovers): librdkafka
/// password and secret keys under <c>uplinks.kafka.settings</c>, and a webhook key in the URL's path. Through
/// <c>edgetwin check</c> as a site runs it: the config file's mode warning names them, <c>config_sha256</c> leaves them
/// out, and no output shows them.
/// </summary>
public sealed class InlineSecretRecognitionTests
{
    private static string Kafka(string sasl, string keystore, string oauth, string vendor) => $"""
        uplinks:
          kafka:
            bootstrap_servers: 127.0.0.1:9092
            settings:
              batch.size: "100000"
              sasl.password: {sasl}
              ssl.keystore.password: {keystore}
              sasl.oauthbearer.client.secret: {oauth}
              vendor.api.secret: {vendor}
        """;

    private static string Webhook(string last) => $$"""
        alerts:
          sinks:
            - { name: chat, type: webhook, url: "https://hooks.example/services/T000/B000/{{last}}" }
        """;

    private static string Write(string extra, bool worldReadable = false)
    {
        var path = AgentFiles.WriteConfig("  - { id: pdu-1, profile: apc-rpdu2, address: \"udp:127.0.0.1:16100\", credentials: pub }", extra);
        if (worldReadable)
        {
            if (OperatingSystem.IsWindows())
            {
                Assert.Skip("file modes are Unix only");
            }
            else
            {
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            }
        }

        return path;
    }

    /// <summary><c>check</c>'s text output (the JSON is checked to show no secret either, by the caller) and <c>summary.config_sha256</c>.</summary>
    private static async Task<(string Text, string Json, string Sha256)> CheckAsync(string path)
    {
        var (exit, text, error) = await InProcessCli.RunAsync("check", "--config", path);
        Assert.True(exit == 0, $"exit {exit}: {error}\n{text}");
        var (jsonExit, json, _) = await InProcessCli.RunAsync("check", "--config", path, "--json");
        Assert.Equal(0, jsonExit);
        using var doc = JsonDocument.Parse(json);
        return (text, json, doc.RootElement.GetProperty("summary").GetProperty("config_sha256").GetString()!);
    }

    /// <summary>Checks <paramref name="path"/> again with <paramref name="from"/> replaced by <paramref name="to"/> in its text (same file, same mode).</summary>
    private static async Task<string> ShaWithAsync(string path, string from, string to)
    {
        var text = await File.ReadAllTextAsync(path, TestContext.Current.CancellationToken);
        Assert.Contains(from, text, StringComparison.Ordinal);
        await File.WriteAllTextAsync(path, text.Replace(from, to, StringComparison.Ordinal), TestContext.Current.CancellationToken);
        try
        {
            return (await CheckAsync(path)).Sha256;
        }
        finally
        {
            await File.WriteAllTextAsync(path, text, TestContext.Current.CancellationToken);
        }
    }

    [Fact]
    public async Task Regression_kafka_settings_passwords_were_not_treated_as_inline_secrets()
    {
        var path = Write(Kafka("S3CRET-sasl-1", "S3CRET-keystore-1", "S3CRET-oauth-1", "S3CRET-vendor-1"), worldReadable: true);
        var (text, json, sha) = await CheckAsync(path);
        var warning = Assert.Single(text.Split('\n'), l => l.Contains("holds inline secrets", StringComparison.Ordinal));
        foreach (var key in (string[])["sasl.password", "ssl.keystore.password", "sasl.oauthbearer.client.secret", "vendor.api.secret"])
        {
            Assert.Contains($"uplinks.kafka.settings.{key} (line ", warning, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("batch.size", warning, StringComparison.Ordinal);
        Assert.DoesNotContain("S3CRET", text + json, StringComparison.Ordinal);

        // Rotating a secret leaves config_sha256 as it was; batch.size is no secret and changes it.
        foreach (var secret in (string[])["S3CRET-sasl-1", "S3CRET-keystore-1", "S3CRET-oauth-1", "S3CRET-vendor-1"])
        {
            Assert.Equal(sha, await ShaWithAsync(path, secret, "rotated-" + secret[..^2]));
        }

        Assert.NotEqual(sha, await ShaWithAsync(path, "\"100000\"", "\"200000\""));
    }

    [Fact]
    public async Task Regression_a_webhook_key_in_the_url_path_was_not_treated_as_an_inline_secret()
    {
        var path = Write(Webhook("Xq7kP2mN9vR4sT8wY3zA"), worldReadable: true);
        var (text, json, sha) = await CheckAsync(path);
        var warning = Assert.Single(text.Split('\n'), l => l.Contains("holds inline secrets", StringComparison.Ordinal));
        Assert.Contains("alerts.sinks[0].url (line ", warning, StringComparison.Ordinal);
        Assert.DoesNotContain("Xq7kP2mN9vR4sT8wY3zA", text + json, StringComparison.Ordinal);
        Assert.Equal(sha, await ShaWithAsync(path, "Xq7kP2mN9vR4sT8wY3zA", "Zz9yX8wV7uT6sR5qP4oN"));

        // A URL without a key in it is no secret: it is not named, and changing it changes the hash.
        var plainPath = Write(Webhook("alerts"), worldReadable: true);
        var (plainText, _, plain) = await CheckAsync(plainPath);
        Assert.DoesNotContain("alerts.sinks[0].url", plainText.Split('\n').Single(l => l.Contains("holds inline secrets", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.NotEqual(plain, await ShaWithAsync(plainPath, "/alerts\"", "/other\""));
    }
}
