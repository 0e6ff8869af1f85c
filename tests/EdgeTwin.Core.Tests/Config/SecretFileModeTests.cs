using EdgeTwin.Core.Config;

namespace EdgeTwin.Core.Tests.Config;

/// <summary>
/// Secret files, private-key files and a config with inline secrets that other users can read or change are warned about
/// (security review F4), with file, line and key, and never with the secret; 0640 and 0600, as the Ansible role installs
/// them, are quiet. Real files, modes set with chmod.
/// </summary>
public sealed class SecretFileModeTests : IDisposable
{
    private static readonly SiteConfigLoadOptions Options = new() { ProfilesDir = TestFiles.ProfilesDir };

    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private const string V3Files = """
        site: { id: s1, gateway_id: g1 }
        credentials:
          v3admin:
            version: 3
            user: ops
            level: authPriv
            auth: SHA-256
            auth_password_file: secrets/auth.pw
            priv: AES
            priv_password_file: secrets/priv.pw
        devices:
          - { id: pdu1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: v3admin }
        """;

    private const string Inline = """
        site: { id: s1, gateway_id: g1 }
        credentials:
          pub: { version: 2c, community: public }
          v3admin: { version: 3, user: ops, level: authNoPriv, auth: SHA, auth_password: "correct horse" }
        devices:
          - { id: pdu1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: pub }
          - { id: pdu2, profile: apc-rpdu2, address: "udp:127.0.0.1:16101", credentials: v3admin }
        """;

    private string Write(string name, string content, UnixFileMode mode)
    {
        var path = _dir.Write(name, content);
        Modes.Chmod(path, mode);
        return path;
    }

    private string WriteV3(UnixFileMode secrets, UnixFileMode config = Modes.M0640)
    {
        Write("secrets/auth.pw", "auth-passphrase\n", secrets);
        Write("secrets/priv.pw", "priv-passphrase\n", secrets);
        return Write("site.yaml", V3Files, config);
    }

    private static (ConfigCheckReport Report, string Text) Check(string path)
    {
        var report = ConfigCheck.Run(path, Options);
        var text = new StringWriter();
        ConfigCheck.WriteText(report, text);
        return (report, text.ToString());
    }

    [Fact]
    public void Regression_world_readable_snmp_password_files_passed_check_without_a_word()
    {
        var path = WriteV3(Modes.M0644);
        var (report, text) = Check(path);

        Assert.Equal(0, report.ExitCode);
        var secrets = Path.Combine(_dir.Path, "secrets");
        Assert.Equal(
        [
            $"{path}:8:25: warning: credentials.v3admin.auth_password_file: {secrets}/auth.pw is readable by every user (mode 0644); chmod 0640 and chown root:edgetwin",
            $"{path}:10:25: warning: credentials.v3admin.priv_password_file: {secrets}/priv.pw is readable by every user (mode 0644); chmod 0640 and chown root:edgetwin",
        ], report.Warnings.Select(w => w.ToString()));
        Assert.EndsWith("; 2 warnings" + Environment.NewLine, text, StringComparison.Ordinal);
        Assert.StartsWith(report.Warnings[0].ToString() + Environment.NewLine, text, StringComparison.Ordinal);
        // The agent logs the config's warnings at start.
        Assert.Equal(report.Warnings, SiteConfigLoader.LoadOrThrow(path, Options).Warnings);
    }

    private const string CommunityFile = """
        site: { id: s1, gateway_id: g1 }
        credentials:
          pub: { version: 2c, community_file: secrets/community }
        devices:
          - { id: pdu1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: pub }
        """;

    [Fact]
    public void Regression_an_snmp_community_could_only_be_written_inline_in_the_config()
    {
        // The mode warnings push secrets into files, but a community had no _file form: it had to stay in the config.
        Write("secrets/community", "n0t-public\n", Modes.M0640);
        var path = Write("site.yaml", CommunityFile, Modes.M0644);

        var (report, text) = Check(path);

        Assert.True(report.Ok, text);
        Assert.Empty(report.Warnings); // a config without inline secrets may be readable by all
        var pub = report.Config!.Credentials["pub"];
        Assert.Equal(("n0t-public", "secrets/community"), (pub.Community, pub.CommunityFile));
        Assert.DoesNotContain("n0t-public", pub.ToString(), StringComparison.Ordinal);

        // Written back as the file reference, and read again to the same credentials.
        var again = _dir.Write("again.yaml", SiteConfigWriter.ToYaml(report.Config));
        Assert.Contains("community_file: \"secrets/community\"", File.ReadAllText(again), StringComparison.Ordinal);
        Assert.Equal(pub, SiteConfigLoader.LoadOrThrow(again, Options).Credentials["pub"]);
    }

    [Theory]
    [InlineData("community: public, community_file: secrets/community", "credentials.pub.community_file: give either 'community' or 'community_file', not both")]
    [InlineData("community_file: secrets/empty", "credentials.pub.community_file: the community file is empty")]
    [InlineData("community_file: secrets/none", "credentials.pub.community_file: cannot read")]
    [InlineData("foo: 1", "credentials.pub.community: missing required key 'community' or 'community_file'")]
    public void A_community_file_is_checked_like_the_passphrase_files(string keys, string expected)
    {
        Write("secrets/community", "n0t-public\n", Modes.M0640);
        Write("secrets/empty", "\n", Modes.M0640);
        var path = Write("site.yaml", CommunityFile.Replace("community_file: secrets/community", keys, StringComparison.Ordinal), Modes.M0640);

        var (report, text) = Check(path);

        Assert.False(report.Ok, text);
        Assert.Contains(report.Problems, p => p.ToString().Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void A_world_readable_community_file_is_warned_like_a_passphrase_file()
    {
        Write("secrets/community", "n0t-public\n", Modes.M0644);
        var path = Write("site.yaml", CommunityFile, Modes.M0640);

        var (report, _) = Check(path);

        var secrets = Path.Combine(_dir.Path, "secrets");
        Assert.Equal(
            [$"{path}:3:39: warning: credentials.pub.community_file: {secrets}/community is readable by every user (mode 0644); chmod 0640 and chown root:edgetwin"],
            report.Warnings.Select(w => w.ToString()));
    }

    [Theory]
    [InlineData(Modes.M0640)]
    [InlineData(Modes.M0600)]
    [InlineData(Modes.M0400)]
    public void Files_installed_as_the_ansible_role_does_give_no_warning(UnixFileMode mode)
    {
        var files = Check(WriteV3(mode, config: mode));
        var inline = Check(Write("inline.yaml", Inline, mode));

        Assert.True(files.Report.Ok, files.Text);
        Assert.Empty(files.Report.Warnings);
        Assert.True(inline.Report.Ok, inline.Text);
        Assert.Empty(inline.Report.Warnings);
    }

    [Theory]
    [InlineData(Modes.M0660, "writable by its group (mode 0660)")]
    [InlineData(Modes.M0666, "readable and writable by every user (mode 0666)")]
    [InlineData(Modes.M0644 | UnixFileMode.GroupWrite, "readable by every user and writable by its group (mode 0664)")]
    [InlineData(Modes.M0640 | UnixFileMode.OtherWrite, "writable by every user (mode 0642)")]
    public void Group_or_world_writable_secret_files_are_warned_about(UnixFileMode mode, string what)
    {
        var (report, _) = Check(WriteV3(mode));

        Assert.True(report.Ok);
        Assert.Equal(
            [$"{Path.Combine(_dir.Path, "secrets", "auth.pw")} is {what}; chmod 0640 and chown root:edgetwin", $"{Path.Combine(_dir.Path, "secrets", "priv.pw")} is {what}; chmod 0640 and chown root:edgetwin"],
            report.Warnings.Select(w => w.Message));
    }

    [Fact]
    public void One_file_used_by_several_keys_is_warned_about_once()
    {
        Write("secrets/both.pw", "one-passphrase\n", Modes.M0644);
        var path = Write("site.yaml", V3Files.Replace("secrets/auth.pw", "secrets/both.pw", StringComparison.Ordinal).Replace("secrets/priv.pw", "secrets/both.pw", StringComparison.Ordinal), Modes.M0640);

        var warning = Assert.Single(Check(path).Report.Warnings);
        Assert.Equal("credentials.v3admin.auth_password_file", warning.Path);
    }

    [Fact]
    public void Regression_a_world_readable_config_with_an_inline_community_was_accepted_silently()
    {
        var path = Write("site.yaml", Inline, Modes.M0644);
        var (report, text) = Check(path);

        Assert.True(report.Ok);
        Assert.Equal(
            [$"{path}:3:34: warning: credentials.pub.community: this file is readable by every user (mode 0644) and holds inline secrets: credentials.pub.community (line 3), credentials.v3admin.auth_password (line 4); chmod 0640 and chown root:edgetwin"],
            report.Warnings.Select(w => w.ToString()));
        Assert.DoesNotContain("public", report.Warnings[0].Message, StringComparison.Ordinal);
        Assert.DoesNotContain("correct horse", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_world_readable_config_without_inline_secrets_is_not_warned_about()
    {
        var (report, _) = Check(WriteV3(Modes.M0640, config: Modes.M0644));

        Assert.True(report.Ok);
        Assert.Empty(report.Warnings);
    }

    [Fact]
    public void Section_owners_secret_and_private_key_files_are_checked_too()
    {
        Write("mqtt.pw", "broker-password\n", Modes.M0644);
        Write("gw.key", "-----BEGIN PRIVATE KEY-----\n", Modes.M0666);
        Write("ok.key", "-----BEGIN PRIVATE KEY-----\n", Modes.M0600);
        var d = new ConfigDiagnostics();
        var root = (ConfigMapping)YamlTree.Parse("password_file: mqtt.pw\nclient_key_file: gw.key\nssl_key_file: ok.key\n", "site.yaml", d)!;
        var r = new ConfigReader(root, d);

        Assert.Equal("broker-password", r.Secret("password", _dir.Path, emptyFileIsError: true));
        Assert.Equal(Path.Combine(_dir.Path, "gw.key"), r.PrivateKeyFile("client_key_file", _dir.Path));
        Assert.Equal(Path.Combine(_dir.Path, "ok.key"), r.PrivateKeyFile("ssl_key_file", _dir.Path));
        Assert.Null(r.PrivateKeyFile("absent_key_file", _dir.Path));

        Assert.True(d.IsEmpty);
        Assert.Equal(
        [
            $"site.yaml:1:16: warning: password_file: {_dir.Path}/mqtt.pw is readable by every user (mode 0644); chmod 0640 and chown root:edgetwin",
            $"site.yaml:2:18: warning: client_key_file: {_dir.Path}/gw.key is readable and writable by every user (mode 0666); chmod 0640 and chown root:edgetwin",
        ], d.SortedWarnings().Select(w => w.ToString()));
    }

    [Fact]
    public void A_new_secret_given_both_inline_and_in_a_file_is_an_error_at_the_file_key()
    {
        Write("cert.pw", "p12-password\n", Modes.M0640);
        var d = new ConfigDiagnostics();
        var root = (ConfigMapping)YamlTree.Parse("client_cert_password: inline\nclient_cert_password_file: cert.pw\n", "site.yaml", d)!;
        var r = new ConfigReader(root, d);

        Assert.Null(r.Secret("client_cert_password", _dir.Path, emptyFileIsError: true, bothIsError: true));
        Assert.Equal(["site.yaml:2:28: client_cert_password_file: give either 'client_cert_password' or 'client_cert_password_file', not both"], d.Sorted().Select(p => p.ToString()));
    }
}
