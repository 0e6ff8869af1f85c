using EdgeTwin.Twin.Models;
using EdgeTwin.Twin.Models.Rul;
using Microsoft.Extensions.Logging.Testing;
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

    [Fact]
    public async Task Regression_a_model_file_overwritten_in_place_was_not_noticed()
    {
        using var files = new ModelFiles();
        files.InstallRul();
        var logs = new FakeLogCollector();
        using var catalog = new ModelCatalog(files.Directory, new FakeLogger<ModelCatalog>(logs));
        catalog.Reload();
        using var watcher = new ModelDirectoryWatcher(catalog, TimeSpan.FromMilliseconds(200), new FakeLogger<ModelDirectoryWatcher>(logs));
        using var runner = new RulModelRunner(catalog, "rul-cmapss");
        var history = RulFixture.Load().Units[0].Rows;
        Assert.True(runner.TryPredict(history, out var before));
        var serving = catalog.Get("rul-cmapss");
        var path = Path.Combine(files.Directory, "rul-cmapss.onnx");
        var original = await File.ReadAllBytesAsync(path, TestContext.Current.CancellationToken);

        // Overwritten in place with other bytes, the manifest untouched: rejected, the loaded session keeps serving.
        var generation = catalog.Generation;
        await File.WriteAllBytesAsync(path, original[..5000], TestContext.Current.CancellationToken);
        await WaitFor(() => catalog.Generation > generation && catalog.Status is [{ State: ModelState.ServingPrevious }], "the changed file to be rejected");
        Assert.Contains("sha256", catalog.Status[0].Error, StringComparison.Ordinal);
        Assert.Same(serving, catalog.Get("rul-cmapss"));
        Assert.True(runner.TryPredict(history, out var still));
        Assert.Equal(before, still);
        Assert.Contains(logs.GetSnapshot(), r => r.Message.Contains($"Model file {path} of rul-cmapss", StringComparison.Ordinal)
            && r.Message.Contains("no longer verifies; the loaded version keeps serving", StringComparison.Ordinal));

        // The right bytes back: verified again and reloaded.
        generation = catalog.Generation;
        await File.WriteAllBytesAsync(path, original, TestContext.Current.CancellationToken);
        await WaitFor(() => catalog.Generation > generation && catalog.Status is [{ State: ModelState.Available }], "the restored file to be reloaded");
        Assert.NotSame(serving, catalog.Get("rul-cmapss"));
        Assert.Contains(logs.GetSnapshot(), r => r.Message.Contains("still matches the manifest; reloaded", StringComparison.Ordinal));
        Assert.True(runner.TryPredict(history, out var again));
        Assert.Equal(before, again);
    }
}
