using System.Text.Json.Nodes;
using EdgeTwin.Twin.Models;
using EdgeTwin.Twin.Models.Rul;
using Xunit;

namespace EdgeTwin.Twin.Tests.Models;

public sealed class ModelCatalogTests
{
    private static List<double[]> SampleHistory() =>
        [.. RulFixture.Load().Units[0].Rows];

    [Fact]
    public void Good_model_loads_and_predicts()
    {
        using var files = new ModelFiles();
        files.InstallRul();
        using var catalog = new ModelCatalog(files.Directory);
        catalog.Reload();

        Assert.Null(catalog.ManifestError);
        var status = Assert.Single(catalog.Status);
        Assert.Equal(ModelState.Available, status.State);
        Assert.Null(status.Error);
        using var runner = new RulModelRunner(catalog, "rul-cmapss");
        Assert.True(runner.TryPredict(SampleHistory(), out var rul));
        Assert.InRange(rul, 0f, 200f);
    }

    [Fact]
    public void Wrong_hash_marks_the_model_unavailable_naming_file_and_field()
    {
        using var files = new ModelFiles();
        files.InstallRul(e => e["sha256"] = new string('0', 64));
        using var catalog = new ModelCatalog(files.Directory);
        catalog.Reload();

        var status = Assert.Single(catalog.Status);
        Assert.Equal(ModelState.Unavailable, status.State);
        Assert.Contains("rul-cmapss.onnx", status.Error, StringComparison.Ordinal);
        Assert.Contains("sha256", status.Error, StringComparison.Ordinal);
        Assert.Null(catalog.Get("rul-cmapss"));
        using var runner = new RulModelRunner(catalog, "rul-cmapss");
        Assert.False(runner.TryPredict(SampleHistory(), out _));
    }

    [Fact]
    public void Truncated_model_with_matching_hash_is_rejected_by_the_runtime()
    {
        using var files = new ModelFiles();
        var full = File.ReadAllBytes(Path.Combine(ModelFiles.RepoModels, "rul-cmapss.onnx"));
        var truncated = full[..(full.Length / 2)];
        files.InstallRul(e => e["sha256"] = ModelFiles.Sha256(truncated), truncated);
        using var catalog = new ModelCatalog(files.Directory);
        catalog.Reload();

        var status = Assert.Single(catalog.Status);
        Assert.Equal(ModelState.Unavailable, status.State);
        Assert.Contains("rul-cmapss.onnx", status.Error, StringComparison.Ordinal);
        Assert.Contains("not a loadable ONNX model", status.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Truncated_model_with_the_manifest_hash_fails_the_hash_check()
    {
        using var files = new ModelFiles();
        var full = File.ReadAllBytes(Path.Combine(ModelFiles.RepoModels, "rul-cmapss.onnx"));
        files.InstallRul(fileBytes: full[..1000]);
        using var catalog = new ModelCatalog(files.Directory);
        catalog.Reload();

        var status = Assert.Single(catalog.Status);
        Assert.Equal(ModelState.Unavailable, status.State);
        Assert.Contains("does not match the manifest", status.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_file_is_reported_with_its_path()
    {
        using var files = new ModelFiles();
        files.InstallRul();
        File.Delete(Path.Combine(files.Directory, "rul-cmapss.onnx"));
        using var catalog = new ModelCatalog(files.Directory);
        catalog.Reload();

        var status = Assert.Single(catalog.Status);
        Assert.Equal(ModelState.Unavailable, status.State);
        Assert.Contains("missing", status.Error, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(files.Directory, "rul-cmapss.onnx"), status.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Input_shape_that_differs_from_the_session_is_rejected()
    {
        using var files = new ModelFiles();
        // The committed model's window length (cycles) comes from its manifest; one feature too few must be caught.
        var window = (int)ModelFiles.RulEntry(ModelFiles.RepoManifest())["inputs"]![0]!["shape"]![1]!;
        files.InstallRul(e => e["inputs"]![0]!["shape"] = new JsonArray(-1, window, 14));
        using var catalog = new ModelCatalog(files.Directory);
        catalog.Reload();

        var status = Assert.Single(catalog.Status);
        Assert.Equal(ModelState.Unavailable, status.State);
        Assert.Contains("inputs.window.shape", status.Error, StringComparison.Ordinal);
        Assert.Contains($"[-1,{window},15]", status.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Manifest_errors_name_the_field()
    {
        using var files = new ModelFiles();
        var m = files.InstallRul(e => e.Remove("sha256"));
        var ex = Assert.Throws<ModelLoadException>(() => ModelManifest.Load(files.ManifestPath));
        Assert.Equal("models[0].sha256", ex.Field);
        Assert.Contains(files.ManifestPath, ex.Message, StringComparison.Ordinal);

        File.WriteAllText(files.ManifestPath, "{ \"schemaVersion\": 1,\n  \"models\": [ {\"name\": }");
        using var catalog = new ModelCatalog(files.Directory);
        catalog.Reload();
        Assert.NotNull(catalog.ManifestError);
        Assert.Contains("line 2", catalog.ManifestError, StringComparison.Ordinal);
        Assert.Empty(catalog.Status);
    }

    [Fact]
    public void Reload_with_a_broken_new_version_keeps_the_previous_one_serving()
    {
        using var files = new ModelFiles();
        files.InstallRul();
        using var catalog = new ModelCatalog(files.Directory);
        catalog.Reload();
        var first = catalog.Get("rul-cmapss");
        Assert.NotNull(first);

        files.InstallRul(e => e["version"] = "9.9.9", fileBytes: [1, 2, 3], fileName: "rul-v9.onnx");
        catalog.Reload();

        var status = Assert.Single(catalog.Status);
        Assert.Equal(ModelState.ServingPrevious, status.State);
        Assert.Contains("rul-v9.onnx", status.Error, StringComparison.Ordinal);
        Assert.Same(first, catalog.Get("rul-cmapss"));
        using var runner = new RulModelRunner(catalog, "rul-cmapss");
        Assert.True(runner.TryPredict(SampleHistory(), out _));
    }

    [Fact]
    public void A_lease_keeps_a_retired_session_alive_until_released()
    {
        using var files = new ModelFiles();
        files.InstallRul();
        using var catalog = new ModelCatalog(files.Directory);
        catalog.Reload();
        var first = catalog.Get("rul-cmapss")!;
        Assert.True(first.TryAcquire());

        files.InstallRul(e => e["version"] = "2.0.0", fileName: "rul-v2.onnx");
        catalog.Reload();
        Assert.NotSame(first, catalog.Get("rul-cmapss"));
        Assert.Equal("2.0.0", catalog.Status[0].Version);

        // Still usable by the runner that leased it before the swap.
        Assert.NotEmpty(first.Session.InputMetadata);
        first.Release();
        Assert.False(first.TryAcquire());
    }

    [Fact]
    public void The_optional_inSample_field_is_read_and_a_malformed_one_is_named_by_its_json_path()
    {
        // The committed manifest lists rul-cmapss 1.6.0's held-out files (its tree member was refit on them).
        var committed = ModelManifest.Load(Path.Combine(ModelFiles.RepoModels, ModelManifest.FileName)).Find("rul-cmapss")!;
        Assert.NotNull(committed.InSample);
        Assert.Equal(4, committed.InSample.Files.Count);
        Assert.Contains(committed.InSample.Files, f => f.Name == "rul/heldout/test_FD001.txt");
        Assert.Contains("1.5.1", committed.InSample.Note, StringComparison.Ordinal);

        using var files = new ModelFiles();
        files.InstallRul(e => e.Remove("inSample"));
        Assert.Null(ModelManifest.Load(files.ManifestPath).Models[0].InSample); // an older manifest without the field

        files.InstallRul(e => e["inSample"] = JsonNode.Parse("""{"files": [{"name": "t.txt", "sha256": "abc"}]}"""));
        var ex = Assert.Throws<ModelLoadException>(() => ModelManifest.Load(files.ManifestPath));
        Assert.Equal("models[0].inSample.files[0].sha256", ex.Field);

        files.InstallRul(e => e["inSample"] = new JsonArray());
        ex = Assert.Throws<ModelLoadException>(() => ModelManifest.Load(files.ManifestPath));
        Assert.Equal("models[0].inSample", ex.Field);

        // The catalog loads a model whose entry has the field, and serves it.
        files.InstallRul(e => e["inSample"] = JsonNode.Parse($$"""{"note": "n", "files": [{"name": "t.txt", "sha256": "{{new string('a', 64)}}"}]}"""));
        using var catalog = new ModelCatalog(files.Directory);
        catalog.Reload();
        Assert.Equal(ModelState.Available, Assert.Single(catalog.Status).State);
    }
}
