using System.Collections.Concurrent;
using EdgeTwin.Agent.Cli;
using EdgeTwin.Agent.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Agent;

/// <summary>
/// Secret files and a config with inline secrets that every user can read (security review F4): <c>edgetwin check</c>
/// prints one warning per file with file, line and key, and the agent logs the same lines at start; the run goes on.
/// </summary>
public sealed class SecretFileWarningsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const UnixFileMode M0644 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    [Fact]
    public async Task Regression_check_and_the_agent_start_said_nothing_about_world_readable_secrets()
    {
        var dir = AgentFiles.TempDir("edgetwin-secret-modes-").FullName;
        var secret = Path.Combine(dir, "secrets", "snmp.pw");
        Directory.CreateDirectory(Path.GetDirectoryName(secret)!);
        await File.WriteAllTextAsync(secret, "ops-passphrase\n", Ct);
        var path = Path.Combine(dir, "site.yaml");
        await File.WriteAllTextAsync(path, $"""
            site: {"{"} id: dc1, gateway_id: gw-test {"}"}
            profiles_dir: {AgentFiles.ProfilesDir}
            devices:
              - {"{"} id: pdu-1, profile: apc-rpdu2, address: "udp:127.0.0.1:9", credentials: ops, interval: 10s, timeout: 200ms {"}"}
              - {"{"} id: pdu-2, profile: apc-rpdu2, address: "udp:127.0.0.1:9", credentials: pub, interval: 10s, timeout: 200ms {"}"}
            credentials:
              ops:
                version: 3
                user: ops
                auth: SHA
                auth_password_file: secrets/snmp.pw
                priv: AES
                priv_password_file: secrets/snmp.pw
              pub: {"{"} version: 2c, community: public {"}"}
            outbox: {"{"} path: {Path.Combine(dir, "outbox.db")} {"}"}
            """, Ct);
        if (OperatingSystem.IsWindows())
        {
            return; // no file modes to check
        }

        File.SetUnixFileMode(secret, M0644);
        File.SetUnixFileMode(path, M0644);

        var (exit, output, error) = await InProcessCli.RunAsync("check", "--config", path);
        Assert.True(exit == 0, $"exit {exit}: {error}\n{output}");
        string[] warnings =
        [
            // One file behind two keys: one warning, at the first.
            $"{path}:11:25: warning: credentials.ops.auth_password_file: {secret} is readable by every user (mode 0644); chmod 0640 and chown root:edgetwin",
            $"{path}:14:34: warning: credentials.pub.community: this file is readable by every user (mode 0644) and holds inline secrets: credentials.pub.community (line 14); chmod 0640 and chown root:edgetwin",
        ];
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(warnings, lines[..^1]);
        Assert.EndsWith("; 2 warnings", lines[^1], StringComparison.Ordinal);
        Assert.DoesNotContain("public", output, StringComparison.Ordinal); // the keys, never the values
        Assert.DoesNotContain("ops-passphrase", output, StringComparison.Ordinal);

        var loaded = AgentConfigFile.LoadSite(path);
        Assert.True(loaded.IsValid, string.Join("\n", loaded.Problems));
        var logs = await AgentStartLogs.CaptureAsync(loaded.Config!);

        Assert.Equal(
            warnings.Select(w => "Config: " + w),
            logs.Where(l => l.Level == LogLevel.Warning && l.Message.StartsWith("Config: ", StringComparison.Ordinal)).Select(l => l.Message));
    }
}
