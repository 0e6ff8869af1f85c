using System.Security.Cryptography;

namespace EdgeTwin.IntegrationTests.Deployment;

/// <summary>
/// Secrets hygiene of the Ansible role (security review F9): the readiness check scrubs what it repeats of the agent's
/// output, its <c>exec</c> notify socket accepts READY=1 from the service user only, the models tag copies only
/// files the manifest names and checks (sha256 required), and the example vault is refused outside the example
/// inventory. Each runs the role's real files (files/edgetwin-ready, tasks/*.yml) on this machine, in seconds.
/// </summary>
public sealed class AnsibleSecretsTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string AnsibleDir => Path.Combine(Tool.RepoRoot(), "ansible");

    private static string ReadyScript => Path.Combine(AnsibleDir, "roles", "edgetwin", "files", "edgetwin-ready");

    [Fact]
    public async Task Regression_edgetwin_ready_repeated_secrets_from_the_agents_output_when_it_was_not_ready()
    {
        var python = Tool.DebianPython();
        // What an agent that fails at start may print: a config diagnostic (keys only, the part the engineer needs), a
        // webhook URL with a token in its query, a broker URL with user info, a JSON log field and a key=value pair.
        const string agentOutput = """
            /etc/edgetwin/edgetwin.yaml:14:7: credentials.v3.auth_password: the passphrase is shorter than 8 characters (RFC 3414 requires at least 8)
            alerts: webhook POST https://hooks.example.net/services/T1?token=tok-9d2e&channel=ops failed
            uplink: cannot connect to mqtts://gw1:mqtt-pw-51aa@broker.example.net:8883/
            {"level":"error","password":"json-pw-77c0","msg":"refusing to start"}
            snmp: community=comm-3b1f secret: hmac-4e0d
            """;
        var result = await RunFailingAgentAsync(python, agentOutput);
        Assert.Contains("NOT READY", result.StdErr, StringComparison.Ordinal);
        Assert.Contains("refusing to start", result.StdErr, StringComparison.Ordinal);
        // The diagnostic as the agent printed it: file, line, column, key and the problem.
        Assert.Contains("/etc/edgetwin/edgetwin.yaml:14:7: credentials.v3.auth_password: the passphrase is shorter than 8 characters", result.StdErr, StringComparison.Ordinal);
        // URLs keep scheme, host and path; the rest is masked.
        Assert.Contains("https://hooks.example.net/services/T1?token=***&channel=***", result.StdErr, StringComparison.Ordinal);
        Assert.Contains("mqtts://***@broker.example.net:8883/", result.StdErr, StringComparison.Ordinal);
        foreach (var secret in new[] { "tok-9d2e", "mqtt-pw-51aa", "json-pw-77c0", "comm-3b1f", "hmac-4e0d" })
        {
            Assert.DoesNotContain(secret, result.All, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Regression_edgetwin_ready_repeated_a_webhook_key_written_in_the_url_path()
    {
        var python = Tool.DebianPython();
        // The agent masks such a key itself (Redact.IsTokenSegment); the scrub is the net for output it did not redact.
        const string agentOutput = """
            alerts: webhook POST https://hooks.example.net/services/T000/B000/Xq7kP2mN9vR4sT8wY3zA failed
            alerts: webhook POST https://discord.example/api/webhooks/123456789012345678/aB3_dE6-gH9iJ2kL5mN8oP1qR4sT7uV0?wait=true failed
            alerts: webhook POST https://noc.example.com/incoming-webhook/alerts failed
            """;
        var result = await RunFailingAgentAsync(python, agentOutput);
        // Host, names and numeric ids stay readable; the keys do not.
        Assert.Contains("https://hooks.example.net/services/T000/B000/*** failed", result.StdErr, StringComparison.Ordinal);
        Assert.Contains("https://discord.example/api/webhooks/123456789012345678/***?wait=*** failed", result.StdErr, StringComparison.Ordinal);
        Assert.Contains("https://noc.example.com/incoming-webhook/alerts failed", result.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("Xq7kP2mN9vR4sT8wY3zA", result.All, StringComparison.Ordinal);
        Assert.DoesNotContain("aB3_dE6-gH9iJ2kL5mN8oP1qR4sT7uV0", result.All, StringComparison.Ordinal);
    }

    /// <summary>An agent that prints <paramref name="agentOutput"/> and exits 1 before READY=1, run under edgetwin-ready exec.</summary>
    private async Task<Tool.Result> RunFailingAgentAsync(string python, string agentOutput)
    {
        var script = Path.Combine(Path.GetTempPath(), $"edgetwin-ready-agent-{Guid.NewGuid():N}.sh");
        await File.WriteAllTextAsync(script, $"cat <<'EOF'\n{agentOutput}\nEOF\nexit 1\n", Ct);
        try
        {
            var result = await Tool.RunAsync(python, [ReadyScript, "exec", "--timeout", "60", "--settle", "0", "--", "/bin/sh", script], Timeout, Ct);
            output.WriteLine(result.All);
            Assert.Equal(1, result.ExitCode);
            return result;
        }
        finally
        {
            File.Delete(script);
        }
    }

    /// <summary>
    /// A Python one-liner that exits 0 on SIGTERM (the clean stop edgetwin-ready expects), optionally sending READY=1
    /// on $NOTIFY_SOCKET first, as the agent does.
    /// </summary>
    private static string Sleeper(bool notify) =>
        "import os, signal, socket, sys, time\n"
        + "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
        + (notify ? "socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])\n" : "")
        + "time.sleep(120)\n";

    /// <summary>Root only (it switches users); the service user is <c>nobody</c>, the stranger <c>daemon</c>.</summary>
    private static string RequireRootAndUsers()
    {
        if (Environment.UserName != "root")
        {
            Console.WriteLine("SKIP: needs root (edgetwin-ready --user switches users)");
            Assert.Skip("needs root (edgetwin-ready --user switches users)");
        }

        var passwd = File.ReadAllText("/etc/passwd");
        if (!passwd.Contains("\nnobody:", StringComparison.Ordinal) || !passwd.Contains("\ndaemon:", StringComparison.Ordinal))
        {
            Assert.Skip("the users nobody and daemon are needed");
        }

        Tool.Require("setpriv", "util-linux");
        return Tool.DebianPython();
    }

    [Fact]
    public async Task Regression_any_local_user_could_send_READY_1_on_the_exec_readiness_socket()
    {
        var python = RequireRootAndUsers();
        using var dir = new TempDir();
        // edgetwin-ready makes its socket directory in TMPDIR; this one is searchable so the service user can reach it.
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(dir.Path, (UnixFileMode)0b111_101_101);
        }

        var env = new Dictionary<string, string> { ["TMPDIR"] = dir.Path };
        var group = File.ReadAllText("/etc/group").Contains("\nnogroup:", StringComparison.Ordinal) ? "nogroup" : "nobody";

        // The agent never says READY=1; another local user (daemon) tries to say it for it.
        var ready = Tool.RunAsync(python, [ReadyScript, "exec", "--timeout", "15", "--settle", "0", "--user", "nobody", "--group", group, "--", python, "-c", Sleeper(notify: false)], Timeout, Ct, environment: env);
        string? socketPath = null;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (socketPath is null && DateTime.UtcNow < deadline && !ready.IsCompleted)
        {
            socketPath = Directory.GetDirectories(dir.Path, "edgetwin-ready-*").Select(d => Path.Combine(d, "notify")).FirstOrDefault(File.Exists);
            await Task.Delay(100, Ct);
        }

        Assert.NotNull(socketPath);
        var stat = await Tool.RunAsync("stat", ["-c", "%a %U", Path.GetDirectoryName(socketPath)!, socketPath], Timeout, Ct);
        output.WriteLine(stat.All);
        Assert.Equal($"700 nobody{Environment.NewLine}600 nobody{Environment.NewLine}", stat.StdOut);
        var stranger = await Tool.RunAsync(
            "setpriv",
            ["--reuid=daemon", "--regid=daemon", "--clear-groups", "--", python, "-c",
             "import socket, sys\nsocket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1', sys.argv[1])", socketPath],
            Timeout,
            Ct);
        output.WriteLine(stranger.All);
        Assert.NotEqual(0, stranger.ExitCode);
        Assert.Contains("PermissionError", stranger.StdErr, StringComparison.Ordinal);
        var result = await ready;
        output.WriteLine(result.All);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("no READY=1 within", result.StdErr, StringComparison.Ordinal);

        // The service user itself still gets through: the agent's READY=1 makes the release ready.
        var own = await Tool.RunAsync(python, [ReadyScript, "exec", "--timeout", "30", "--settle", "1", "--user", "nobody", "--group", group, "--", python, "-c", Sleeper(notify: true)], Timeout, Ct, environment: env);
        output.WriteLine(own.All);
        Assert.True(own.ExitCode == 0, own.Explained);
        Assert.Contains("edgetwin-ready: ready (READY=1 after", own.StdOut, StringComparison.Ordinal);
        Assert.Empty(Directory.GetDirectories(dir.Path, "edgetwin-ready-*"));
    }

    /// <summary>Runs the role's models tasks on this machine (local connection) into <paramref name="dest"/>.</summary>
    private async Task<Tool.Result> DeployModelsAsync(string playbook, TempDir dir, string src, string dest)
    {
        // The installed release verifies the staged set before it is published (AnsibleModelsTests runs the real one);
        // the random bytes here are no ONNX model, so a stand-in that records its call and accepts them takes its place.
        var current = Directory.CreateDirectory(Path.Combine(dir.Path, "current")).FullName;
        var verifier = Path.Combine(current, "edgetwin");
        await File.WriteAllTextAsync(verifier, $"#!/bin/sh\necho \"$*\" >> '{current}/calls'\n", Ct);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(verifier, (UnixFileMode)0b111_101_101);
        }

        var extra = $$"""{"edgetwin_models_src": "{{src}}", "edgetwin_models_dir": "{{dest}}", "edgetwin_current": "{{current}}", "edgetwin_group": "root"}""";
        var result = await Tool.RunRoleTasksAsync(playbook, dir.Path, "models.yml", extra, Timeout, Ct);
        output.WriteLine(result.All);
        return result;
    }

    [Fact]
    public async Task Regression_a_models_entry_without_sha256_passed_and_files_the_manifest_does_not_name_were_copied()
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        using var dir = new TempDir();
        var src = Directory.CreateDirectory(Path.Combine(dir.Path, "src")).FullName;
        var dest = Path.Combine(dir.Path, "deployed");
        var model = Path.Combine(src, "rack-ae.onnx");
        await File.WriteAllBytesAsync(model, RandomNumberGenerator.GetBytes(2048), Ct);
        await File.WriteAllBytesAsync(Path.Combine(src, "unchecked.onnx"), RandomNumberGenerator.GetBytes(2048), Ct);
        await File.WriteAllTextAsync(Path.Combine(src, "notes.txt"), "not a model\n", Ct);
        await File.WriteAllTextAsync(Path.Combine(src, "train.py"), "# training script\n", Ct);
        var sha = Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(model, Ct)));

        // An entry without sha256: refused, naming the entry, before anything is copied.
        await File.WriteAllTextAsync(Path.Combine(src, "manifest.json"), $$"""
            { "models": [ { "name": "rack-ae", "file": "rack-ae.onnx", "sha256": "{{sha}}" },
                          { "name": "line-unchecked", "file": "unchecked.onnx" } ] }
            """, Ct);
        var missing = await DeployModelsAsync(playbook, dir, src, dest);
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("manifest.json: the entry line-unchecked needs", missing.All, StringComparison.Ordinal);
        Assert.False(Directory.Exists(dest) && Directory.EnumerateFileSystemEntries(dest).Any(), "files were copied although the manifest was refused");

        // A manifest naming one file: that file and the manifest are deployed, nothing else in the source directory.
        await File.WriteAllTextAsync(Path.Combine(src, "manifest.json"), $$"""
            { "models": [ { "name": "rack-ae", "file": "rack-ae.onnx", "sha256": "{{sha}}" } ] }
            """, Ct);
        var deployed = await DeployModelsAsync(playbook, dir, src, dest);
        Assert.True(deployed.ExitCode == 0, deployed.Explained);
        Assert.Equal(["manifest.json", "rack-ae.onnx"], Directory.GetFiles(dest).Select(f => Path.GetFileName(f)!).Order(StringComparer.Ordinal));
        Assert.Equal(["manifest.json", "rack-ae.onnx"], Directory.GetFiles(dest + ".staging").Select(f => Path.GetFileName(f)!).Order(StringComparer.Ordinal));
        Assert.Equal($"models verify --dir {dest}.staging", (await File.ReadAllTextAsync(Path.Combine(dir.Path, "current", "calls"), Ct)).Trim());
    }

    [Fact]
    public async Task Regression_the_example_vault_could_be_deployed_to_a_real_gateway()
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        using var dir = new TempDir();
        // The password outside the repository, as the README says (there is no password file in the repository).
        var password = Path.Combine(dir.Path, "vault-password");
        await File.WriteAllTextAsync(password, "example-vault-password-change-me\n", Ct);
        var real = Path.Combine(dir.Path, "real.yml");
        await File.WriteAllTextAsync(real, "edgetwin_gateways:\n  hosts:\n    gw-real-01: { ansible_host: 10.20.30.40 }\n", Ct);
        var play = Path.Combine(dir.Path, "guard.yml");
        await File.WriteAllTextAsync(play, """
            - hosts: edgetwin_gateways
              gather_facts: false
              tasks:
                - ansible.builtin.import_role:
                    name: edgetwin
                    tasks_from: vault_guard.yml
            """, Ct);
        var env = new Dictionary<string, string>
        {
            ["ANSIBLE_ROLES_PATH"] = Path.Combine(AnsibleDir, "roles"),
            ["ANSIBLE_VAULT_PASSWORD_FILE"] = password,
            ["ANSIBLE_NOCOLOR"] = "1",
        };
        Assert.False(File.Exists(Path.Combine(AnsibleDir, "inventory", "example", "vault-password.example")), "a vault password file is committed next to its vault");

        // The example inventory's group_vars (with its vault) apply to every host of the run: the example host passes,
        // a host at a real address is refused with what to do.
        var mixed = await Tool.RunAsync(playbook, ["-i", Path.Combine(AnsibleDir, "inventory", "example", "hosts.yml"), "-i", real, play], Timeout, Ct, dir.Path, env);
        output.WriteLine(mixed.All);
        Assert.NotEqual(0, mixed.ExitCode);
        Assert.Matches(@"ok: \[gw-dc1-01\]", mixed.StdOut);
        Assert.Matches(@"fatal: \[gw-real-01\]: FAILED!.*would get the example vault", mixed.StdOut);
        Assert.Contains("--ask-vault-pass", mixed.StdOut, StringComparison.Ordinal);

        // A real inventory with a vault of its own (no example marker) is not affected.
        var own = await Tool.RunAsync(playbook, ["-i", real, "-e", "vault_edgetwin_mqtt_password=x", play], Timeout, Ct, dir.Path, env);
        output.WriteLine(own.All);
        Assert.Equal(0, own.ExitCode);
    }
}
