using System.Diagnostics;
using System.Globalization;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Alerting.Tests.State;

/// <summary>
/// A replacement gateway started from an older backup of the state directory: alerts.db's highest alert id is behind the
/// ids the original gave out after the backup, and the centre keeps its alert history by <c>alert_id</c>. The backup and
/// the restore are the real <c>cp -p</c> (mtime kept, as tar and rsync keep it).
/// </summary>
public sealed class RestoredStoreTests
{
    private const string Rules = GroupCommitTests.Rules;

    private static void CopyFiles(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from))
        {
            using var cp = Process.Start(new ProcessStartInfo("cp", ["-p", file, Path.Combine(to, Path.GetFileName(file))]) { RedirectStandardError = true })!;
            cp.WaitForExit();
            Assert.True(cp.ExitCode == 0, cp.StandardError.ReadToEnd());
        }
    }

    private static async Task<HashSet<long>> RaiseAsync(Harness h, params string[] racks)
    {
        var before = h.Events.Events.Count(e => e.Kind == EdgeEventKind.AlertRaised);
        foreach (var rack in racks)
        {
            h.Feed(h.Series(rack, "inlet"), 35);
        }

        await Wait.UntilAsync(() => h.Events.Events.Count(e => e.Kind == EdgeEventKind.AlertRaised) == before + racks.Length, $"{racks.Length} alert_raised events");
        return h.Events.Events.Where(e => e.Kind == EdgeEventKind.AlertRaised)
            .Select(e => long.Parse(e.Attributes!["alert_id"], CultureInfo.InvariantCulture)).ToHashSet();
    }

    [Fact]
    public async Task Regression_a_restored_alerts_db_gave_new_alerts_ids_the_original_had_already_used()
    {
        var root = Directory.CreateTempSubdirectory("edgetwin-alerting-restore-").FullName;
        var original = Path.Combine(root, "original");
        Directory.CreateDirectory(original);
        try
        {
            var t0 = new DateTimeOffset(2026, 12, 4, 20, 0, 0, TimeSpan.Zero);
            var first = await Harness.StartAsync(Rules, original, new FakeTimeProvider(t0));
            var given = await RaiseAsync(first, "rack-r01", "rack-r02");
            await first.StopKeepingStateAsync();
            CopyFiles(original, Path.Combine(root, "backup"));

            // The original goes on after the backup and gives out more ids, then dies.
            var again = await Harness.StartAsync(Rules, original, new FakeTimeProvider(t0.AddMinutes(5)));
            given.UnionWith(await RaiseAsync(again, "rack-r03", "rack-r04"));
            await again.StopKeepingStateAsync();

            // The replacement starts from the backup.
            var restoredDir = Path.Combine(root, "restored");
            CopyFiles(Path.Combine(root, "backup"), restoredDir);
            await using var restored = await Harness.StartAsync(Rules, restoredDir, new FakeTimeProvider(t0.AddMinutes(10)));
            var id = (await RaiseAsync(restored, "rack-r05")).Max();

            // Before, it continued from the backup's highest id: the id of the original's alert on rack-r03.
            Assert.DoesNotContain(id, given);
            Assert.True(id > given.Max(), $"new id {id} not above the original's {given.Max()}");
            Assert.NotNull(restored.Manager.Active().SingleOrDefault(a => a.Id == id));
        }
        finally
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }
}
