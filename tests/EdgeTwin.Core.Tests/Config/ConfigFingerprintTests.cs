using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using EdgeTwin.Core.Config;

namespace EdgeTwin.Core.Tests.Config;

/// <summary>
/// <see cref="SiteConfig.ConfigSha256"/>, the <c>config_sha256</c> a gateway announces (security review F7): a hash of the
/// config with its inline secrets redacted, so it tells which config runs without being a hash over a guessable secret.
/// </summary>
public sealed class ConfigFingerprintTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Config(string community, string device = "pdu1", string password = "broker-secret") => $$"""
        site: { id: s1, gateway_id: g1 }
        credentials:
          pub: { version: 2c, community: {{community}} }
        devices:
          - { id: {{device}}, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: pub }
        uplinks:
          mqtt:
            host: broker.example.net
            password: {{password}}
        """;

    /// <summary>Reads <c>uplinks.mqtt.password</c> as the uplink owner does (through <see cref="ConfigReader.Secret"/>).</summary>
    private sealed class UplinksPasswordReader : IConfigSectionValidator
    {
        public string Section => "uplinks";

        public void Validate(ConfigReader section)
        {
            var mqtt = section.Section("mqtt")!;
            mqtt.String("host");
            mqtt.Secret("password", Path.GetDirectoryName(section.Mapping.Mark.File)!, emptyFileIsError: true);
            mqtt.ReportUnknownKeys();
            section.ReportUnknownKeys();
        }
    }

    private static readonly SiteConfigLoadOptions Options = new() { ProfilesDir = TestFiles.ProfilesDir, SectionValidators = [new UplinksPasswordReader()] };

    private SiteConfig Load(string name, string text)
    {
        var path = _dir.Write(name, text);
        Modes.Chmod(path, Modes.M0640);
        return SiteConfigLoader.LoadOrThrow(path, Options);
    }

    private static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    [Fact]
    public void Regression_config_sha256_was_an_unsalted_hash_over_the_inline_community()
    {
        var weak = Load("a.yaml", Config("public"));
        var strong = Load("b.yaml", Config("\"Xq7-long-community\"", password: "'another broker secret'"));

        // Before: SHA-256 of the file, so knowing the template, 'public' was found offline in one guess.
        Assert.NotEqual(Sha256(File.ReadAllBytes(weak.SourcePath!)), weak.ConfigSha256);
        Assert.Equal(weak.ConfigSha256, strong.ConfigSha256);
        Assert.Matches("^[0-9a-f]{64}$", weak.ConfigSha256);
    }

    [Fact]
    public void Configs_that_differ_in_anything_but_a_secret_hash_differently()
    {
        var one = Load("a.yaml", Config("public"));
        var other = Load("b.yaml", Config("public", device: "pdu2"));

        Assert.NotEqual(one.ConfigSha256, other.ConfigSha256);
    }

    [Fact]
    public void The_hash_is_of_the_text_with_each_inline_secret_as_written_replaced_by_the_marker()
    {
        var config = Load("a.yaml", Config("\"public\"", password: "broker-secret"));
        var redacted = Config(ConfigSecrets.Marker, password: ConfigSecrets.Marker);

        Assert.Equal(Sha256(Encoding.UTF8.GetBytes(redacted)), config.ConfigSha256);
    }

    [Fact]
    public void Without_inline_secrets_the_hash_is_sha256sum_of_the_file()
    {
        _dir.Write("secrets/mqtt.pw", "broker-secret\n");
        const string text = """
            site: { id: s1, gateway_id: g1 }
            credentials:
              ops: { version: 3, user: ops, level: noAuthNoPriv }
            devices:
              - { id: pdu1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: ops }
            uplinks:
              mqtt:
                host: broker.example.net
                password_file: secrets/mqtt.pw
            """;
        var path = _dir.Write("plain.yaml", text);
        Modes.Chmod(path, Modes.M0640);
        var config = SiteConfigLoader.LoadOrThrow(path, Options);

        Assert.Equal(Sha256(File.ReadAllBytes(path)), config.ConfigSha256);
    }

    [Fact]
    public void Check_json_prints_the_hash_the_gateway_announces()
    {
        var config = Load("a.yaml", Config("public"));
        using var json = new MemoryStream();
        ConfigCheck.WriteJson(ConfigCheck.Run(config.SourcePath!, Options), json);

        using var doc = JsonDocument.Parse(json.ToArray());
        Assert.Equal(config.ConfigSha256, doc.RootElement.GetProperty("summary").GetProperty("config_sha256").GetString());
    }

    [Fact]
    public void A_config_built_in_code_has_no_hash()
    {
        var config = SiteConfigLoader.Parse(Config("public"), "site.yaml", Options).Config!;

        Assert.Equal("", config.ConfigSha256);
    }
}
