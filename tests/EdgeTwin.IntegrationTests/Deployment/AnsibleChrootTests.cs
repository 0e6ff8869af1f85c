using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace EdgeTwin.IntegrationTests.Deployment;

/// <summary>
/// The Ansible role applied for real, through the chroot connection, to a Debian root made by debootstrap (cached) of
/// each release the role supports — Debian 12 (bookworm) and Debian 13 (trixie: Python 3.13 under the controller's
/// ansible-core, systemd 257, no ICU, libssl3t64) — one test per release running the same sequence,
/// with the linux-x64 release built by release.sh: converges, then changes nothing on a second run; <c>--check --diff</c>
/// shows a pending config change without making it; a config the new release rejects stops the play at the check and
/// leaves the previous release current; a release that never becomes ready is rolled back; models deploy alone on
/// their tag. A chroot has no systemd: the readiness check runs in its <c>exec</c> mode (the agent under a notify
/// socket of the check's own, READY=1 awaited), not the <c>unit</c> mode a gateway uses; restarts and udev reloads
/// are off (edgetwin_manage_service=false). Everything runs inside <c>unshare -m</c>, so /proc in the root is
/// unmounted with the namespace whatever happens.
/// </summary>
public sealed partial class AnsibleChrootTests(ITestOutputHelper output)
{
    // One play takes 1–2 min on an idle 2-core machine; under heavy load (load average 50 here) up to 10.
    private static readonly TimeSpan PlayTimeout = TimeSpan.FromMinutes(20);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public Task Role_converges_in_a_debian_chroot_then_is_idempotent_refuses_bad_configs_rolls_back_and_deploys_models_alone() =>
        RoleSequenceAsync("bookworm");

    [Fact]
    public Task Role_converges_in_a_debian_13_trixie_chroot_then_is_idempotent_refuses_bad_configs_rolls_back_and_deploys_models_alone() =>
        RoleSequenceAsync("trixie");

    /// <summary>The whole sequence against a root of Debian <paramref name="suite"/>.</summary>
    private async Task RoleSequenceAsync(string suite)
    {
        Tool.Require("ansible-playbook", "ansible");
        Tool.Require("unshare", "util-linux");

        var rootTar = await DeployCache.DebianRootAsync("amd64", output.WriteLine, Ct, suite);
        var release = await DeployCache.ReleaseAsync("linux-x64", output.WriteLine, Ct);
        var version = DeployCache.StampedVersion();
        const string nextVersion = "99.0.0-notready";

        using var work = new TempDir();
        var root = Path.Combine(work.Path, "root");
        await DeployCache.ExtractAsync(rootTar, root, Ct);
        var src = Directory.CreateDirectory(Path.Combine(work.Path, "release-src")).FullName;
        File.Copy(release, Path.Combine(src, Path.GetFileName(release)));
        await MakeNotReadyReleaseAsync(release, version, nextVersion, src);
        await File.WriteAllLinesAsync(Path.Combine(src, "SHA256SUMS"), Directory.GetFiles(src, "*.tar.gz").Order().Select(f => $"{Tool.Sha256(f)}  {Path.GetFileName(f)}"), Ct);

        var inventory = await Tool.ChrootInventoryAsync(work.Path, root, Ct);
        var vars = Path.Combine(work.Path, "vars.json");
        await File.WriteAllTextAsync(vars, JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["ansible_become"] = false, // already root in the chroot; minbase has no sudo
            ["edgetwin_version"] = version,
            ["edgetwin_release_src"] = src,
            ["edgetwin_manage_service"] = false,
            ["edgetwin_readiness"] = "exec",
            ["edgetwin_ready_timeout"] = 180,
            ["edgetwin_ready_settle"] = 3,
            ["edgetwin_site_id"] = "dc-test",
            ["edgetwin_buses"] = new List<string> { "serial" },
            ["edgetwin_credentials"] = new Dictionary<string, object> { ["pub"] = new Dictionary<string, string> { ["version"] = "2c", ["community"] = Community } },
            ["edgetwin_devices"] = new[] { Device("ups1", "ietf-ups-mib") },
        }), Ct);

        var config = Path.Combine(root, "etc", "edgetwin", "edgetwin.yaml");
        var currentLink = Path.Combine(root, "opt", "edgetwin", "current");
        var wants = Path.Combine(root, "etc", "systemd", "system", "multi-user.target.wants", "edgetwin.service");
        string Current() => Path.GetFileName(new FileInfo(currentLink).LinkTarget ?? "");
        var releases = Path.Combine(root, "opt", "edgetwin", "releases");
        var etc = Path.Combine(root, "etc", "edgetwin");

        // -1. `--check --diff` on a host that has nothing yet (the README's preview): nothing to unpack from, so the
        //     tasks that need the release's files are skipped; the play passes and changes nothing.
        var freshDry = await PlayAsync(root, inventory, vars, ["--check", "--diff"]);
        Assert.True(freshDry.Result.ExitCode == 0, freshDry.Result.Explained);
        Assert.Contains("would be unpacked into /opt/edgetwin/releases/" + version, freshDry.Result.All, StringComparison.Ordinal);
        Assert.DoesNotContain("first install: nothing to roll back to", freshDry.Result.All, StringComparison.Ordinal);
        Assert.False(Path.Exists(Path.Combine(releases, version)), "a check run unpacked the release");
        Assert.False(File.Exists(config), "a check run wrote the config");

        // 0. First install of a release that never becomes ready: nothing to roll back to, so the role takes it out of
        //    service (no `current`, unit disabled) instead of leaving it enabled in a restart loop.
        var firstInstall = await PlayAsync(root, inventory, vars, ["-e", $"edgetwin_version={nextVersion}"]);
        Assert.NotEqual(0, firstInstall.Result.ExitCode);
        Assert.Contains("Wait until the new release is ready", FailedTask(firstInstall.Result.All), StringComparison.Ordinal);
        Assert.Matches(@"TASK \[edgetwin : Remove current \(first install[^\n]*\n(ok|changed): \[gw1\]", firstInstall.Result.All);
        Assert.Matches(@"TASK \[edgetwin : Stop and disable the service \(first install[^\n]*\n(ok|changed): \[gw1\]", firstInstall.Result.All);
        Assert.Contains("first install: nothing to roll back to", firstInstall.Result.All, StringComparison.Ordinal);
        Assert.True(new FileInfo(currentLink).LinkTarget is null && !Path.Exists(currentLink), "a first install that never became ready left `current` behind");
        Assert.True(new FileInfo(wants).LinkTarget is null, "a first install that never became ready left the unit enabled");
        Assert.True(File.Exists(Path.Combine(root, "opt", "edgetwin", "releases", nextVersion, "edgetwin")), "the failed release's directory is kept for diagnosis");

        // 1. Converge: the good release installs over the failed first install.
        var first = await PlayAsync(root, inventory, vars, []);
        Assert.True(first.Result.ExitCode == 0, first.Result.Explained);
        Assert.True(first.Changed > 0);
        Assert.Equal(version, Current());
        // The readiness check ran (the agent sent READY=1 under edgetwin-ready exec) and passed.
        Assert.Matches(@"TASK \[edgetwin : Wait until the new release is ready[^\n]*\n(ok|changed): \[gw1\]", first.Result.All);
        Assert.Contains("gateway_id: gw1", await File.ReadAllTextAsync(config, Ct), StringComparison.Ordinal);
        Assert.Matches(@"(?m)^dialout:x:\d+:edgetwin$", await File.ReadAllTextAsync(Path.Combine(root, "etc", "group"), Ct));
        Assert.Contains("ttyUSB", await File.ReadAllTextAsync(Path.Combine(root, "etc", "udev", "rules.d", "60-edgetwin.rules"), Ct), StringComparison.Ordinal);
        Assert.True(new FileInfo(wants).LinkTarget is not null, "unit not enabled");
        await CheckInstalledOnTheReleaseAsync(root, suite);
        var configBytes = await File.ReadAllBytesAsync(config, Ct);
        // The models directory exists from the first converge on (the agent watches it only if it exists at start).
        RootAssert.Dir(Path.Combine(etc, "models"), "0750", "root", "edgetwin");
        // The config names the release's own profiles directory; its contents as the good release left them.
        var goodProfilesDir = ProfilesDir(root, configBytes);
        Assert.StartsWith($"/etc/edgetwin/profiles/{version}-", goodProfilesDir, StringComparison.Ordinal);
        var goodProfiles = Tool.Snapshot(Path.Combine(root, goodProfilesDir.TrimStart('/')));
        Assert.Contains("ietf-ups-mib.yaml", goodProfiles.Keys);
        // The first install's config (another profiles directory) was kept as a backup: root, group edgetwin, 0640.
        var backups = Directory.GetFiles(etc, "edgetwin.yaml.*~");
        Assert.NotEmpty(backups);
        foreach (var backup in backups)
        {
            RootAssert.File(backup, "0640", "root", "edgetwin");
        }

        // 2. Nothing to do the second time.
        var second = await PlayAsync(root, inventory, vars, []);
        Assert.True(second.Result.ExitCode == 0, second.Result.Explained);
        Assert.Equal(0, second.Changed);

        // 3. --check --diff reports the pending config change and makes none; the config's diff is not printed, as it
        //    would print the secrets in it (the SNMP community here) to the console and CI logs.
        var dry = await PlayAsync(root, inventory, vars, ["--check", "--diff", "-e", "edgetwin_gateway_id=gw1-renamed"]);
        Assert.True(dry.Result.ExitCode == 0, dry.Result.Explained);
        Assert.Matches(@"TASK \[edgetwin : Write the site config[^\n]*\nchanged: \[gw1\]", dry.Result.All);
        Assert.DoesNotContain(Community, dry.Result.All, StringComparison.Ordinal);
        Assert.DoesNotContain("gateway_id: gw1-renamed", dry.Result.All, StringComparison.Ordinal);
        Assert.Equal(configBytes, await File.ReadAllBytesAsync(config, Ct));

        // 3b. --check --diff of an upgrade to a release not unpacked yet: previewed, not failed, nothing changed.
        Directory.Delete(Path.Combine(releases, nextVersion), recursive: true);
        var upgradeDry = await PlayAsync(root, inventory, vars, ["--check", "--diff", "-e", $"edgetwin_version={nextVersion}"]);
        Assert.True(upgradeDry.Result.ExitCode == 0, upgradeDry.Result.Explained);
        Assert.Contains($"would be unpacked into /opt/edgetwin/releases/{nextVersion}", upgradeDry.Result.All, StringComparison.Ordinal);
        Assert.DoesNotContain(Community, upgradeDry.Result.All, StringComparison.Ordinal);
        Assert.False(Path.Exists(Path.Combine(releases, nextVersion)), "a check run unpacked the release");
        Assert.Equal(version, Current());
        Assert.Equal(configBytes, await File.ReadAllBytesAsync(config, Ct));

        // 4. A config the new release rejects: the play stops at the check, nothing switches, and the running service
        //    is not restarted. edgetwin_manage_service=true here: a restart (systemctl in a chroot) would be attempted
        //    and show as a task that ran; it must be skipped.
        var badDevices = JsonSerializer.Serialize(new { edgetwin_version = nextVersion, edgetwin_manage_service = true, edgetwin_devices = new[] { Device("ups1", "no-such-profile") } });
        var bad = await PlayAsync(root, inventory, vars, ["-e", badDevices]);
        Assert.NotEqual(0, bad.Result.ExitCode);
        Assert.Contains("Write the site config (checked with edgetwin check)", FailedTask(bad.Result.All), StringComparison.Ordinal);
        // The template task is no_log (the config holds secrets); `edgetwin check`'s diagnostic reaches the console
        // through the rescue's message.
        Assert.Contains("the output has been hidden", bad.Result.All, StringComparison.Ordinal);
        Assert.Matches(@"\bno-such-profile\b", FailMessage(bad.Result.All));
        Assert.Matches(@"TASK \[edgetwin : Restart the previous release[^\n]*\nskipping: \[gw1\]", bad.Result.All);
        Assert.Contains("nothing had been switched", bad.Result.All, StringComparison.Ordinal);
        Assert.Equal(version, Current());
        Assert.Equal(configBytes, await File.ReadAllBytesAsync(config, Ct));
        Assert.Equal(goodProfiles, Tool.Snapshot(Path.Combine(root, goodProfilesDir.TrimStart('/'))));

        // 4b. A version without a tarball: fails before anything is touched; no restart either.
        var missing = await PlayAsync(root, inventory, vars, ["-e", """{"edgetwin_version": "0.0.0-missing", "edgetwin_manage_service": true}"""]);
        Assert.NotEqual(0, missing.Result.ExitCode);
        Assert.Matches(@"TASK \[edgetwin : Restart the previous release[^\n]*\nskipping: \[gw1\]", missing.Result.All);
        Assert.Contains("nothing had been switched", missing.Result.All, StringComparison.Ordinal);
        Assert.Equal(version, Current());
        Assert.Equal(configBytes, await File.ReadAllBytesAsync(config, Ct));

        // 5. A release that passes the check but never becomes ready: switched, probed, rolled back — with the unit it
        //    came with (a new memory limit here): the previous release goes back under the unit it was proven with.
        var unit = Path.Combine(root, "etc", "systemd", "system", "edgetwin.service");
        var unitBytes = await File.ReadAllBytesAsync(unit, Ct);
        var notReady = await PlayAsync(root, inventory, vars, ["-e", $"edgetwin_version={nextVersion}", "-e", "edgetwin_memory_max=300M"]);
        Assert.NotEqual(0, notReady.Result.ExitCode);
        Assert.Contains("Wait until the new release is ready", FailedTask(notReady.Result.All), StringComparison.Ordinal);
        Assert.Contains("refusing to start", notReady.Result.All, StringComparison.Ordinal);
        // What the agent printed reaches the message scrubbed (edgetwin-ready, then the rescue's edgetwin_scrub).
        Assert.Contains("mqtts://***@broker.example.net:8883/", notReady.Result.All, StringComparison.Ordinal);
        Assert.DoesNotContain(Community, notReady.Result.All, StringComparison.Ordinal);
        Assert.Contains("TASK [edgetwin : Roll back current to the previous release]", notReady.Result.All, StringComparison.Ordinal);
        Assert.Contains("rolled back: current is back at", notReady.Result.All, StringComparison.Ordinal);
        Assert.Contains("the previous unit restored", notReady.Result.All, StringComparison.Ordinal);
        Assert.Equal(unitBytes, await File.ReadAllBytesAsync(unit, Ct));
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(unit)!, "edgetwin.service.*~")); // the new unit's backup of the old one
        Assert.Equal(version, Current());
        Assert.Equal(configBytes, await File.ReadAllBytesAsync(config, Ct));
        // The rolled-back release runs with its own profiles, not the new release's (which differ: see
        // MakeNotReadyReleaseAsync): the restored config names them, and they are as the good release left them.
        Assert.Equal(goodProfilesDir, ProfilesDir(root, await File.ReadAllBytesAsync(config, Ct)));
        Assert.Equal(goodProfiles, Tool.Snapshot(Path.Combine(root, goodProfilesDir.TrimStart('/'))));

        // 5b. An incomplete release directory (an unpack interrupted after the binary was written, as the old
        //     `creates: edgetwin` check would accept) and a leftover temporary unpack directory: unpacked again, in full.
        //     Older config backups beyond the three kept are pruned at the end of the run.
        var currentDir = Path.Combine(releases, version);
        File.Delete(Path.Combine(currentDir, "libonnxruntime.so"));
        File.Delete(Path.Combine(currentDir, ".edgetwin-unpacked"));
        Directory.CreateDirectory(currentDir + ".unpacking");
        await File.WriteAllTextAsync(Path.Combine(currentDir + ".unpacking", "partial"), "x", Ct);
        for (var i = 1; i <= 4; i++)
        {
            var old = Path.Combine(etc, $"edgetwin.yaml.{i}.2020-01-0{i}@00:00:00~");
            await File.WriteAllTextAsync(old, $"# old config {i}\n", Ct);
            File.SetLastWriteTimeUtc(old, new DateTime(2020, 1, i, 0, 0, 0, DateTimeKind.Utc));
        }

        // The backups step 4 (a config `edgetwin check` rejected: the template backs up before it validates) and step 5
        // (the not-ready release's config, whose backup is the config the rollback restored) left repeat the current
        // config; the converge's backup of the first install's config is the only real earlier one.
        var currentSum = Tool.Sha256(config);
        Assert.True(Directory.GetFiles(etc, "edgetwin.yaml.*~").Count(b => Tool.Sha256(b) == currentSum) >= 2, "steps 4 and 5 left no backups repeating the current config");
        var firstInstallBackup = Assert.Single(backups);
        var repair = await PlayAsync(root, inventory, vars, []);
        Assert.True(repair.Result.ExitCode == 0, repair.Result.Explained);
        Assert.True(File.Exists(Path.Combine(currentDir, "libonnxruntime.so")), "the incomplete release was not unpacked again");
        Assert.True(File.Exists(Path.Combine(currentDir, ".edgetwin-unpacked")));
        Assert.False(Path.Exists(currentDir + ".unpacking"), "the temporary unpack directory was left behind");
        Assert.Equal(version, Current());
        // Regression: kept by age alone, the three newest were copies of the current config and the one different
        // earlier config was pruned. Now: the newest three distinct configs other than the current one.
        var kept = Directory.GetFiles(etc, "edgetwin.yaml.*~");
        Assert.Equal(3, kept.Length);
        Assert.Contains(firstInstallBackup, kept);
        Assert.DoesNotContain(kept, b => Tool.Sha256(b) == currentSum);
        Assert.Equal(3, kept.Select(Tool.Sha256).Distinct().Count());

        // 5c. A restart that fails (systemd runs the restart handler, flushed inside the block): a stand-in systemctl
        //     in the root (there is no systemd as PID 1 in a chroot) fails `restart` while `current` points at the new
        //     release, as systemctl does for a Type=notify unit whose process exits before READY=1. Rolled back, and
        //     (regression) the message names the failed restart and its cause; it read "(?: )".
        var systemctl = Path.Combine(root, "usr", "bin", "systemctl");
        File.Move(systemctl, systemctl + ".real");
        try
        {
            await File.WriteAllTextAsync(systemctl, $$"""
                #!/bin/sh
                echo "$*" >> /var/log/systemctl-standin.log
                for a in "$@"; do
                  case "$a" in
                    show) printf 'Id=edgetwin.service\nLoadState=loaded\nActiveState=active\nSubState=running\nMainPID=1\nUnitFileState=enabled\n'; exit 0 ;;
                    is-enabled) echo enabled; exit 0 ;;
                    is-active) echo active; exit 0 ;;
                    list-unit-files) echo "edgetwin.service enabled"; exit 0 ;;
                    restart|start)
                      if [ "$(readlink /opt/edgetwin/current)" = /opt/edgetwin/releases/{{nextVersion}} ]; then
                        echo "Job for edgetwin.service failed because the control process exited with error code." >&2
                        exit 1
                      fi
                      exit 0 ;;
                  esac
                done
                exit 0
                """.Replace("\r", "", StringComparison.Ordinal) + "\n", Ct);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(systemctl, (UnixFileMode)0b111_101_101);
            }

            var restartFails = await PlayAsync(root, inventory, vars, ["-e", $"edgetwin_version={nextVersion}", "-e", "edgetwin_manage_service=true"]);
            Assert.NotEqual(0, restartFails.Result.ExitCode);
            Assert.Contains("RUNNING HANDLER [edgetwin : Restart edgetwin]", restartFails.Result.All, StringComparison.Ordinal);
            var message = FailMessage(restartFails.Result.All);
            Assert.DoesNotContain("(?: )", message, StringComparison.Ordinal);
            Assert.Contains("Restart edgetwin (handler): Unable to restart service edgetwin.service: Job for edgetwin.service failed", message, StringComparison.Ordinal);
            Assert.Contains("journalctl -u edgetwin.service", message, StringComparison.Ordinal);
            Assert.Contains("rolled back: current is back at", message, StringComparison.Ordinal);
            Assert.Contains("the previous release restarted", message, StringComparison.Ordinal);
            Assert.Equal(version, Current());
            Assert.Equal(configBytes, await File.ReadAllBytesAsync(config, Ct));
            var calls = await File.ReadAllLinesAsync(Path.Combine(root, "var", "log", "systemctl-standin.log"), Ct);
            Assert.Equal(2, calls.Count(c => c.StartsWith("restart ", StringComparison.Ordinal))); // the new release's, then the previous one's
        }
        finally
        {
            File.Move(systemctl + ".real", systemctl, overwrite: true);
        }

        // 6. Models alone: no release, config or unit task runs; the set is staged and verified by the installed
        //    release (`edgetwin models verify --dir`, which loads each ONNX model: the repository's real models here);
        //    manifest.json lands last.
        var models = Directory.CreateDirectory(Path.Combine(work.Path, "models")).FullName;
        var repoModels = Path.Combine(Tool.RepoRoot(), "models");
        var modelFiles = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(repoModels, "manifest.json"), Ct))!["models"]!
            .AsArray().Select(m => (string)m!["file"]!).ToList();
        foreach (var file in modelFiles.Append("manifest.json"))
        {
            File.Copy(Path.Combine(repoModels, file), Path.Combine(models, file));
        }

        var modelFile = Path.Combine(models, modelFiles[0]);
        await File.WriteAllTextAsync(Path.Combine(models, "train.py"), "# training script: not deployed\n", Ct);
        await File.WriteAllBytesAsync(Path.Combine(models, "old-model.onnx"), RandomNumberGenerator.GetBytes(1024), Ct);
        var modelsRun = await PlayAsync(root, inventory, vars, ["--tags", "models", "-e", $"edgetwin_models_src={models}"]);
        Assert.True(modelsRun.Result.ExitCode == 0, modelsRun.Result.Explained);
        // staging directory, staged files, staged manifest, model files, manifest (the models directory exists since
        // the converge; there was no live manifest to keep as the previous set)
        Assert.Equal(5, modelsRun.Changed);
        Assert.Matches(@"TASK \[edgetwin : Verify the staged models with the installed release[^\n]*\nok: \[gw1\]", modelsRun.Result.All);
        Assert.DoesNotContain("Switch current", modelsRun.Result.All, StringComparison.Ordinal);
        Assert.DoesNotContain("Write the site config", modelsRun.Result.All, StringComparison.Ordinal);
        var deployed = Path.Combine(root, "etc", "edgetwin", "models");
        Assert.Equal(await File.ReadAllBytesAsync(modelFile, Ct), await File.ReadAllBytesAsync(Path.Combine(deployed, Path.GetFileName(modelFile)), Ct));
        Assert.True(File.Exists(Path.Combine(deployed, "manifest.json")));
        Assert.False(File.Exists(Path.Combine(deployed, "train.py")));
        Assert.False(File.Exists(Path.Combine(deployed, "old-model.onnx")), "a file the manifest does not name was deployed");
        var order = Regex.Matches(modelsRun.Result.All, @"TASK \[edgetwin : (Copy the model files|Publish manifest\.json)").Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(["Copy the model files", "Publish manifest.json"], order);

        // A model whose bytes do not match the manifest never reaches the gateway.
        await File.WriteAllBytesAsync(modelFile, RandomNumberGenerator.GetBytes(4096), Ct);
        var tampered = await PlayAsync(root, inventory, vars, ["--tags", "models", "-e", $"edgetwin_models_src={models}"]);
        Assert.NotEqual(0, tampered.Result.ExitCode);
        Assert.Contains("does not match the sha256 in manifest.json", tampered.Result.All, StringComparison.Ordinal);
        Assert.NotEqual(await File.ReadAllBytesAsync(modelFile, Ct), await File.ReadAllBytesAsync(Path.Combine(deployed, Path.GetFileName(modelFile)), Ct));
    }

    /// <summary>
    /// What the converge left, checked by the root's own tools (those of the Debian release under test, not the
    /// controller's): the root is <paramref name="suite"/>, which the role's meta lists; its systemd-analyze (252 on
    /// bookworm, 257 on trixie) verifies the installed unit silently and rates its exposure within 2.5; on trixie its
    /// udevadm (verify exists since systemd 254; the bookworm root has no udev) accepts the rules, and there is no ICU
    /// in the root, so the readiness check just passed shows the agent (InvariantGlobalization) needs none.
    /// </summary>
    private async Task CheckInstalledOnTheReleaseAsync(string root, string suite)
    {
        var osRelease = await File.ReadAllTextAsync(Path.Combine(root, "etc", "os-release"), Ct);
        Assert.Contains($"VERSION_CODENAME={suite}\n", osRelease, StringComparison.Ordinal);
        var meta = await File.ReadAllTextAsync(Path.Combine(Tool.RepoRoot(), "ansible", "roles", "edgetwin", "meta", "main.yml"), Ct);
        Assert.Matches($@"(?m)^\s+versions: \[[^\]\n]*\b{suite}\b", meta);

        async Task<Tool.Result> InRootAsync(params string[] command)
        {
            var result = await Tool.RunAsync("chroot", [root, .. command], TimeSpan.FromMinutes(2), Ct);
            output.WriteLine($"---- chroot {string.Join(' ', command)} (exit {result.ExitCode})\n{result.All}");
            return result;
        }

        var versions = await InRootAsync("/bin/sh", "-c", "python3 --version && systemd-analyze --version | head -n 1");
        Assert.True(versions.ExitCode == 0, versions.Explained);
        const string unit = "/etc/systemd/system/edgetwin.service";
        var verify = await InRootAsync("systemd-analyze", "verify", "--man=no", unit);
        Assert.True(verify.ExitCode == 0 && verify.All.Trim().Length == 0, $"systemd-analyze verify of the installed unit on {suite}:\n{verify.All}");
        var security = await InRootAsync("systemd-analyze", "security", "--offline=true", "--threshold=25", "--no-pager", unit);
        Assert.True(security.ExitCode == 0, $"systemd-analyze security of the installed unit on {suite}:\n{security.All}");
        if (suite == "bookworm")
        {
            return;
        }

        var udev = await InRootAsync("udevadm", "verify", "--resolve-names=never", "/etc/udev/rules.d/60-edgetwin.rules");
        Assert.True(udev.ExitCode == 0, $"udevadm verify of the installed rules on {suite}:\n{udev.All}");
        var icu = Directory.GetFiles(Path.Combine(root, "usr", "lib"), "libicuuc.so*", SearchOption.AllDirectories);
        Assert.True(icu.Length == 0, $"the {suite} root has ICU ({string.Join(", ", icu)}): it cannot show the agent runs without it");
    }

    // A community nobody else prints: the --diff steps check it never reaches the output.
    internal const string Community = "s3cret-community-7f1c";

    /// <summary>profiles_dir of a rendered config.</summary>
    private static string ProfilesDir(string root, byte[] config)
    {
        var match = Regex.Match(System.Text.Encoding.UTF8.GetString(config), @"(?m)^profiles_dir: (\S+)$");
        Assert.True(match.Success, "no profiles_dir in the config");
        return match.Groups[1].Value;
    }

    /// <summary>An SNMP device of the test site (credentials <c>pub</c>, nobody answering on its port).</summary>
    internal static Dictionary<string, string> Device(string id, string profile) => new()
    {
        ["id"] = id,
        ["profile"] = profile,
        ["address"] = "udp:127.0.0.1:16161",
        ["credentials"] = "pub",
        ["interval"] = "10s",
    };

    /// <summary>
    /// A release <paramref name="nextVersion"/> that passes <c>edgetwin check</c> (the real binary does it) but exits
    /// at once on <c>run</c>: what a release that crashes at start looks like to the role.
    /// </summary>
    private async Task MakeNotReadyReleaseAsync(string goodTarball, string version, string nextVersion, string dir)
    {
        using var stage = new TempDir();
        await DeployCache.ExtractAsync(goodTarball, stage.Path, Ct);
        var from = Path.Combine(stage.Path, $"edgetwin-{version}-linux-x64");
        var to = Path.Combine(stage.Path, $"edgetwin-{nextVersion}-linux-x64");
        Directory.Move(from, to);
        File.Move(Path.Combine(to, "edgetwin"), Path.Combine(to, "edgetwin.real"));
        // Its profiles differ from the good release's: one changed, one added (what a rollback must not keep).
        await File.AppendAllTextAsync(Path.Combine(to, "device-profiles", "ietf-ups-mib.yaml"), "# changed in the next release\n", Ct);
        await File.WriteAllTextAsync(Path.Combine(to, "device-profiles", "NEXT-ONLY.md"), "only in the next release\n", Ct);
        var wrapper = Path.Combine(to, "edgetwin");
        await File.WriteAllTextAsync(wrapper, $$"""
            #!/bin/sh
            # Test release: passes `check`, never becomes ready.
            d="$(dirname "$(readlink -f "$0")")"
            if [ "$1" = check ]; then exec "$d/edgetwin.real" "$@"; fi
            echo "uplink: cannot connect to mqtts://gw1:{{Community}}@broker.example.net:8883/" >&2
            echo "edgetwin (not-ready test release): refusing to start" >&2
            exit 1
            """.Replace("\r", "", StringComparison.Ordinal) + "\n", Ct);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(wrapper, (UnixFileMode)0b111_101_101);
        }
        var tar = await Tool.RunAsync("tar", ["-C", stage.Path, "-czf", Path.Combine(dir, $"edgetwin-{nextVersion}-linux-x64.tar.gz"), $"edgetwin-{nextVersion}-linux-x64"], TimeSpan.FromMinutes(5), Ct);
        Assert.True(tar.ExitCode == 0, tar.Explained);
    }

    private sealed record Play(Tool.Result Result, int Changed);

    private async Task<Play> PlayAsync(string root, string inventory, string vars, IReadOnlyList<string> extra)
    {
        var (result, changed) = await Tool.PlayInChrootAsync(root, inventory, vars, extra, output.WriteLine, PlayTimeout, Ct);
        return new Play(result, changed);
    }

    /// <summary>The task a play failed in: the last TASK header before the first fatal line.</summary>
    private static string FailedTask(string text)
    {
        var fatal = text.IndexOf("fatal: [gw1]", StringComparison.Ordinal);
        Assert.True(fatal >= 0, $"the play did not fail:\n{text}");
        var task = text.LastIndexOf("TASK [", fatal, StringComparison.Ordinal);
        return text[task..text.IndexOf('\n', task)];
    }

    /// <summary>The message of "Fail the host after rolling back" (its fatal line).</summary>
    private static string FailMessage(string text)
    {
        var task = text.IndexOf("TASK [edgetwin : Fail the host after rolling back]", StringComparison.Ordinal);
        Assert.True(task >= 0, $"no rollback failure message:\n{text}");
        var fatal = text.IndexOf("fatal: [gw1]", task, StringComparison.Ordinal);
        return text[fatal..text.IndexOf('\n', fatal)];
    }

}
