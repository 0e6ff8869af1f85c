namespace EdgeTwin.IntegrationTests.Deployment;

/// <summary>
/// The role's prune tasks (tasks/prune.yml) run on this machine (local connection) against a config directory of their
/// own, in seconds: config backups are kept by distinct content, not by age alone.
/// </summary>
public sealed class AnsiblePruneTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Regression_backups_left_by_rejected_configs_made_the_prune_delete_the_only_different_earlier_config()
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        using var dir = new TempDir();
        var etc = Directory.CreateDirectory(Path.Combine(dir.Path, "etc")).FullName;
        await File.WriteAllTextAsync(Path.Combine(etc, "edgetwin.yaml"), "site: { id: current }\n", Ct);

        // What the audit found on a gateway: the one earlier config that differs (the upgrade's, before a rollback),
        // then one backup per config `edgetwin check` rejected (the template backs up before it validates, so each
        // repeats the current config), plus an older distinct one and the rollback's copy of the current config.
        string Backup(string name, string content, DateTime when)
        {
            var path = Path.Combine(etc, $"edgetwin.yaml.{name}~");
            File.WriteAllText(path, content);
            File.SetLastWriteTimeUtc(path, when);
            return path;
        }

        var day = new DateTime(2026, 12, 2, 0, 0, 0, DateTimeKind.Utc);
        var ancient = Backup("50.2026-11-29@10:00:00", "site: { id: ancient }\n", day.AddDays(-3));
        var oldest = Backup("100.2026-11-30@10:00:00", "site: { id: oldest }\n", day.AddDays(-2));
        var older = Backup("200.2026-12-01@10:00:00", "site: { id: older }\n", day.AddDays(-1));
        var upgrade = Backup("300.2026-12-02@15:27:26", "site: { id: the-upgrade }\n", day.AddHours(15));
        var repeats = new[]
        {
            Backup("400.2026-12-02@15:28:05", "site: { id: current }\n", day.AddHours(16)),
            Backup("500.2026-12-02@15:28:34", "site: { id: current }\n", day.AddHours(17)),
            Backup("600.2026-12-02@15:31:57", "site: { id: current }\n", day.AddHours(18)),
        };
        // Two backups of one earlier config: only the newer is kept.
        var upgradeAgain = Backup("350.2026-12-02@15:27:40", "site: { id: the-upgrade }\n", day.AddHours(15.5));

        var releases = Directory.CreateDirectory(Path.Combine(dir.Path, "releases")).FullName;
        var profiles = Directory.CreateDirectory(Path.Combine(dir.Path, "profiles")).FullName;
        var extra = $$"""
            {"edgetwin_config_dir": "{{etc}}", "edgetwin_releases_dir": "{{releases}}", "edgetwin_release_dir": "{{releases}}/1.0.0",
             "edgetwin_profiles_store": "{{profiles}}", "edgetwin_profiles_dir": "{{profiles}}/1.0.0-x", "edgetwin_config_backups": 3}
            """;
        var result = await Tool.RunRoleTasksAsync(playbook, dir.Path, "prune.yml", extra, Timeout, Ct);
        output.WriteLine(result.All);
        Assert.True(result.ExitCode == 0, result.Explained);

        // Kept: the newest three distinct configs other than the current one; the different earlier config survives
        // (the old prune kept the three repeats of the current config and removed it).
        var kept = Directory.GetFiles(etc, "edgetwin.yaml.*~").Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(new[] { oldest, older, upgradeAgain }.Order(StringComparer.Ordinal), kept);
        Assert.False(File.Exists(ancient), "the oldest distinct config beyond the three kept was not pruned");
        Assert.False(File.Exists(upgrade), "an older copy of a kept config was kept beside it");
        Assert.All(repeats, r => Assert.False(File.Exists(r), $"{Path.GetFileName(r)} repeats the current config and was kept"));
        Assert.Equal("site: { id: current }\n", await File.ReadAllTextAsync(Path.Combine(etc, "edgetwin.yaml"), Ct));
    }
}
