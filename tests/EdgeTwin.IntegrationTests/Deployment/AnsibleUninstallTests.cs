using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using EdgeTwin.Core.Events;
using EdgeTwin.Outbox;
using EdgeTwin.Outbox.Summaries;

namespace EdgeTwin.IntegrationTests.Deployment;

/// <summary>
/// <c>edgetwin_state: absent</c> applied for real, through the chroot connection, to the Debian 12 root of
/// <see cref="AnsibleChrootTests"/> (cached debootstrap, the linux-x64 release from release.sh): a host that never had
/// the agent is left alone; after an install everything the role put there goes and the data stays; a purge of an
/// outbox that still holds entries is refused; a purge with the override leaves the root as it was before the install;
/// every second run changes nothing; a later install works. No systemd in a chroot: edgetwin_manage_service=false
/// (no stop, no daemon-reload, no udev reload), the unit is disabled offline by systemctl.
/// </summary>
public sealed partial class AnsibleUninstallTests(ITestOutputHelper output)
{
    private static readonly TimeSpan PlayTimeout = TimeSpan.FromMinutes(20);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Absent_removes_everything_the_role_installed_keeps_the_data_refuses_to_purge_a_backlog_and_is_idempotent()
    {
        Tool.Require("ansible-playbook", "ansible");
        Tool.Require("unshare", "util-linux");

        var rootTar = await DeployCache.DebianRootAsync("amd64", output.WriteLine, Ct);
        var release = await DeployCache.ReleaseAsync("linux-x64", output.WriteLine, Ct);
        var version = DeployCache.StampedVersion();

        using var work = new TempDir();
        var root = Path.Combine(work.Path, "root");
        await DeployCache.ExtractAsync(rootTar, root, Ct);
        var src = Directory.CreateDirectory(Path.Combine(work.Path, "release-src")).FullName;
        var tarball = Path.Combine(src, Path.GetFileName(release));
        File.Copy(release, tarball);
        await File.WriteAllTextAsync(Path.Combine(src, "SHA256SUMS"), $"{Tool.Sha256(tarball)}  {Path.GetFileName(tarball)}\n", Ct);

        var inventory = await Tool.ChrootInventoryAsync(work.Path, root, Ct);
        var vars = Path.Combine(work.Path, "vars.json");
        await File.WriteAllTextAsync(vars, JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["ansible_become"] = false,
            ["edgetwin_version"] = version,
            ["edgetwin_release_src"] = src,
            ["edgetwin_manage_service"] = false,
            ["edgetwin_readiness"] = "exec",
            ["edgetwin_ready_timeout"] = 180,
            ["edgetwin_ready_settle"] = 3,
            ["edgetwin_site_id"] = "dc-test",
            ["edgetwin_buses"] = new List<string> { "serial" },
            ["edgetwin_credentials"] = new Dictionary<string, object> { ["pub"] = new Dictionary<string, string> { ["version"] = "2c", ["community"] = "public" } },
            ["edgetwin_devices"] = new[] { new Dictionary<string, string> { ["id"] = "ups1", ["profile"] = "ietf-ups-mib", ["address"] = "udp:127.0.0.1:16161", ["credentials"] = "pub", ["interval"] = "10s" } },
        }), Ct);
        string[] Absent(params string[] more) => ["-e", "edgetwin_state=absent", .. more];
        string[] Purge(params string[] more) => Absent(["-e", "edgetwin_purge_data=true", .. more]);

        string In(string path) => Path.Combine(root, path.TrimStart('/'));
        var unit = In("/etc/systemd/system/edgetwin.service");
        var wants = In("/etc/systemd/system/multi-user.target.wants/edgetwin.service");
        var dropIn = In("/etc/systemd/system/edgetwin.service.d/override.conf");
        var unitBackup = In("/etc/systemd/system/edgetwin.service.4242.2026-12-01@10:00:00~");
        var rules = In("/etc/udev/rules.d/60-edgetwin.rules");
        var state = In("/var/lib/edgetwin");
        var outbox = In("/var/lib/edgetwin/outbox.db");
        // Everything the install puts on the host, besides the user, the group and the state directory.
        string[] installed = [unit, wants, dropIn, unitBackup, rules, In("/opt/edgetwin"), In("/etc/edgetwin")];

        // 0. A host that never had the agent: nothing to do, also with a purge; the root is untouched.
        var before = await TreeAsync(root);
        var never = await PlayAsync(root, inventory, vars, Purge());
        Assert.True(never.Result.ExitCode == 0, never.Result.Explained);
        Assert.Equal(0, never.Changed);
        Assert.Equal(before, await TreeAsync(root));
        var passwdBefore = await File.ReadAllTextAsync(In("/etc/passwd"), Ct);
        var groupBefore = await File.ReadAllTextAsync(In("/etc/group"), Ct);

        // 1. Install; then what `systemctl edit` and an earlier unit change leave: a drop-in and a unit backup.
        var install = await PlayAsync(root, inventory, vars, []);
        Assert.True(install.Result.ExitCode == 0, install.Result.Explained);
        Assert.Matches(@"TASK \[edgetwin : Wait until the new release is ready[^\n]*\n(ok|changed): \[gw1\]", install.Result.All);
        Directory.CreateDirectory(Path.GetDirectoryName(dropIn)!);
        await File.WriteAllTextAsync(dropIn, "[Service]\nEnvironment=EDGETWIN_SITE_NOTE=1\n", Ct);
        await File.WriteAllTextAsync(unitBackup, await File.ReadAllTextAsync(unit, Ct), Ct);
        Assert.All(installed, p => Assert.True(Path.Exists(p) || new FileInfo(p).LinkTarget is not null, $"{p} not installed"));

        // A backlog the centre never received: events appended to the agent's outbox (the readiness run created it)
        // as the agent would, the files then given back to the service user.
        long backlog;
        await using (var box = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = outbox, Identity = new UplinkIdentity("gw1", "dc-test") }, cancellationToken: Ct))
        {
            var t0 = DateTimeOffset.UtcNow.AddMinutes(-30).ToUnixTimeMilliseconds();
            await box.AppendAsync(Enumerable.Range(0, 37)
                .Select(n => UplinkBodies.Event(new UplinkIdentity("gw1", "dc-test"), new EdgeEvent(EdgeEventKind.AlertRaised, "ups1", DateTimeOffset.FromUnixTimeMilliseconds(t0 + (n * 1000L)), EventSeverity.Warning, $"backlog {n}")))
                .ToArray(), Ct);
            backlog = box.GetStats().Depth;
        }

        Assert.True(backlog >= 37, $"outbox depth {backlog} after 37 appends");
        var owner = Regex.Match(await File.ReadAllTextAsync(In("/etc/passwd"), Ct), @"(?m)^edgetwin:x:(\d+):(\d+):");
        Assert.True(owner.Success, "no edgetwin user after the install");
        var chown = await Tool.RunAsync("chown", ["-R", $"{owner.Groups[1].Value}:{owner.Groups[2].Value}", state], TimeSpan.FromMinutes(1), Ct);
        Assert.True(chown.ExitCode == 0, chown.Explained);
        var data = Tool.Snapshot(state);
        var holds = $"/var/lib/edgetwin/outbox.db holds {backlog} entries not yet acknowledged by every uplink";

        // 2. --check: says what it would remove and the backlog, removes nothing.
        var dry = await PlayAsync(root, inventory, vars, Absent("--check"));
        Assert.True(dry.Result.ExitCode == 0, dry.Result.Explained);
        Assert.True(dry.Changed > 0, "a check run of the uninstall reported nothing to remove");
        Assert.Contains(holds, dry.Result.All, StringComparison.Ordinal);
        Assert.All(installed, p => Assert.True(Path.Exists(p) || new FileInfo(p).LinkTarget is not null, $"a check run removed {p}"));

        // 3. A purge with entries still in the outbox: refused before anything is removed, naming the backlog.
        var refused = await PlayAsync(root, inventory, vars, Purge());
        Assert.NotEqual(0, refused.Result.ExitCode);
        Assert.Contains("Refuse to purge an outbox that still holds entries", FailedTask(refused.Result.All), StringComparison.Ordinal);
        Assert.Contains("Not purged: " + holds, refused.Result.All, StringComparison.Ordinal);
        Assert.Contains("outbox export --path /var/lib/edgetwin/outbox.db", refused.Result.All, StringComparison.Ordinal);
        Assert.All(installed, p => Assert.True(Path.Exists(p) || new FileInfo(p).LinkTarget is not null, $"a refused purge removed {p}"));
        Assert.Equal(data, Tool.Snapshot(state));

        // 4. Uninstall: every installed path gone, the unit disabled, the data and its user kept, and said so.
        var absent = await PlayAsync(root, inventory, vars, Absent());
        Assert.True(absent.Result.ExitCode == 0, absent.Result.Explained);
        Assert.All(installed, p => Assert.False(Path.Exists(p) || new FileInfo(p).LinkTarget is not null, $"{p} is left after the uninstall"));
        Assert.False(Directory.Exists(Path.GetDirectoryName(dropIn)), "the drop-in directory is left");
        Assert.Empty(Directory.GetFiles(In("/etc/systemd/system"), "edgetwin*", SearchOption.AllDirectories));
        Assert.Equal(data, Tool.Snapshot(state));
        Assert.Contains("the data is kept: /var/lib/edgetwin", absent.Result.All, StringComparison.Ordinal);
        Assert.Contains(holds, absent.Result.All, StringComparison.Ordinal);
        Assert.Matches(@"(?m)^edgetwin:x:", await File.ReadAllTextAsync(In("/etc/passwd"), Ct));

        // 5. Again: nothing left to do.
        var again = await PlayAsync(root, inventory, vars, Absent());
        Assert.True(again.Result.ExitCode == 0, again.Result.Explained);
        Assert.Equal(0, again.Changed);

        // 6. A purge now, with no release left to read the outbox with: refused too (it may hold entries).
        var unreadable = await PlayAsync(root, inventory, vars, Purge());
        Assert.NotEqual(0, unreadable.Result.ExitCode);
        Assert.Contains("could not be read", unreadable.Result.All, StringComparison.Ordinal);
        Assert.Equal(data, Tool.Snapshot(state));

        // 7. Purge with the override: the data, the user and the group go; the root is as it was before the install.
        var purge = await PlayAsync(root, inventory, vars, Purge("-e", "edgetwin_purge_unsent=true"));
        Assert.True(purge.Result.ExitCode == 0, purge.Result.Explained);
        Assert.False(Directory.Exists(state), "the state directory is left after the purge");
        Assert.Equal(passwdBefore, await File.ReadAllTextAsync(In("/etc/passwd"), Ct));
        Assert.Equal(groupBefore, await File.ReadAllTextAsync(In("/etc/group"), Ct));
        var after = await TreeAsync(root);
        Assert.True(before.SetEquals(after),
            "the root differs from before the install:\n+ " + string.Join("\n+ ", after.Except(before)) + "\n- " + string.Join("\n- ", before.Except(after)));

        var purgeAgain = await PlayAsync(root, inventory, vars, Purge("-e", "edgetwin_purge_unsent=true"));
        Assert.True(purgeAgain.Result.ExitCode == 0, purgeAgain.Result.Explained);
        Assert.Equal(0, purgeAgain.Changed);

        // 8. A later install works from scratch.
        var reinstall = await PlayAsync(root, inventory, vars, []);
        Assert.True(reinstall.Result.ExitCode == 0, reinstall.Result.Explained);
        Assert.Matches(@"TASK \[edgetwin : Wait until the new release is ready[^\n]*\n(ok|changed): \[gw1\]", reinstall.Result.All);
        Assert.Equal(Path.Combine("/opt/edgetwin/releases", version), new FileInfo(In("/opt/edgetwin/current")).LinkTarget);
        Assert.True(new FileInfo(wants).LinkTarget is not null, "the reinstalled unit is not enabled");
    }

    /// <summary>
    /// Every path in the root, except what the chroot plays themselves churn (mount points, temp and cache, logs) and
    /// the shadow tools' backups of /etc/passwd and friends.
    /// </summary>
    private static async Task<HashSet<string>> TreeAsync(string root)
    {
        string[] skip = ["proc", "dev", "sys", "run", "tmp", "var/tmp", "var/cache", "var/log", "root/.ansible"];
        var args = new List<string> { root };
        foreach (var s in skip)
        {
            args.AddRange(["-path", Path.Combine(root, s), "-prune", "-o"]);
        }

        args.Add("-print");
        var find = await Tool.RunAsync("find", args, TimeSpan.FromMinutes(5), Ct);
        Assert.True(find.ExitCode == 0, find.Explained);
        return find.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(p => p[root.Length..])
            .Where(p => !ShadowBackup().IsMatch(p))
            .ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>The task a play failed in: the last TASK header before the first fatal line.</summary>
    private static string FailedTask(string text)
    {
        var fatal = text.IndexOf("fatal: [gw1]", StringComparison.Ordinal);
        Assert.True(fatal >= 0, $"the play did not fail:\n{text}");
        var task = text.LastIndexOf("TASK [", fatal, StringComparison.Ordinal);
        return text[task..text.IndexOf('\n', task)];
    }

    private sealed record Play(Tool.Result Result, int Changed);

    // As AnsibleChrootTests.PlayAsync: site.yml through the chroot connection inside a private mount namespace, with
    // /proc and /dev mounted for the agent.
    private async Task<Play> PlayAsync(string root, string inventory, string vars, IReadOnlyList<string> extra)
    {
        var (result, changed) = await Tool.PlayInChrootAsync(root, inventory, vars, extra, output.WriteLine, PlayTimeout, Ct);
        return new Play(result, changed);
    }

    [GeneratedRegex(@"^/etc/(passwd|group|shadow|gshadow)-$")]
    private static partial Regex ShadowBackup();
}
