using EdgeTwin.Twin.Models;
using EdgeTwin.Twin.Models.Rul;
using Xunit;

namespace EdgeTwin.Twin.Tests.Models;

public sealed class ModelHotReloadTests
{
    private static async Task WaitFor(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"timed out waiting for {what}");
            }

            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }

    [Fact]
    public async Task Manifest_rename_reloads_the_new_version_and_a_bad_one_leaves_the_old_serving()
    {
        using var files = new ModelFiles();
        files.InstallRul();
        using var catalog = new ModelCatalog(files.Directory);
        catalog.Reload();
        using var watcher = new ModelDirectoryWatcher(catalog, TimeSpan.FromMilliseconds(200));
        Assert.True(watcher.IsWatching);
        using var runner = new RulModelRunner(catalog, "rul-cmapss");
        var history = RulFixture.Load().Units[0].Rows;
        Assert.True(runner.TryPredict(history, out var before));

        // Deploy ships a new file first, then the manifest by rename.
        files.InstallRul(e => e["version"] = "1.1.0", fileName: "rul-v11.onnx");
        await WaitFor(() => catalog.Status is [{ Version: "1.1.0", State: ModelState.Available }], "version 1.1.0 to serve");
        Assert.True(runner.TryPredict(history, out var after));
        Assert.Equal(before, after);
        Assert.Equal("1.1.0", runner.Entry!.Version);

        // A broken deploy: the old verified session keeps serving.
        var generation = catalog.Generation;
        files.InstallRul(e => { e["version"] = "1.2.0"; e["sha256"] = new string('a', 64); }, fileName: "rul-v12.onnx");
        await WaitFor(() => catalog.Generation > generation && catalog.Status is [{ State: ModelState.ServingPrevious }], "the failed reload");
        Assert.Equal("1.1.0", catalog.Status[0].Version);
        Assert.Contains("sha256", catalog.Status[0].Error, StringComparison.Ordinal);
        Assert.True(runner.TryPredict(history, out var still));
        Assert.Equal(before, still);
    }
}
