using System.Text.Json.Nodes;
using EdgeTwin.Twin.Models;
using EdgeTwin.Twin.Models.Rul;
using Xunit;

namespace EdgeTwin.Twin.Tests.Models;

/// <summary>
/// The optional <c>inCondition&lt;k&gt;</c> input columns after <c>cycle</c> (the gate input of a single-condition
/// specialist): 1 exactly for rows in condition k, the other columns unchanged, bad names rejected by field.
/// </summary>
public sealed class RulConditionIndicatorTests
{
    /// <summary>The committed entry rewritten to sensors + cycle + the given extra feature names.</summary>
    private static CmapssPreprocessor Build(ModelFiles files, params string[] extra)
    {
        var manifest = ModelFiles.RepoManifest();
        var entry = ModelFiles.RulEntry(manifest);
        manifest["models"] = new JsonArray(entry.DeepClone());
        var input = ModelFiles.RulEntry(manifest)["inputs"]![0]!.AsObject();
        var names = input["features"]!.AsArray().Select(f => (string)f!).TakeWhile(f => f != "cycle").Append("cycle").Concat(extra).ToList();
        input["features"] = new JsonArray([.. names.Select(n => (JsonNode)JsonValue.Create(n)!)]);
        input["units"] = new JsonArray([.. names.Select(_ => (JsonNode)JsonValue.Create("x")!)]);
        var shape = input["shape"]!.AsArray();
        shape[2] = names.Count;
        files.WriteManifest(manifest);
        return CmapssPreprocessor.FromEntry(ModelManifest.Load(files.ManifestPath).Find("rul-cmapss")!, files.ManifestPath);
    }

    [Fact]
    public void Indicator_is_one_exactly_for_rows_of_its_condition_and_leaves_the_other_columns_alone()
    {
        using var files = new ModelFiles();
        var plain = Build(files);
        var gated = Build(files, "inCondition0");
        Assert.Equal(plain.Features + 1, gated.Features);
        Assert.Equal(plain.Sensors, gated.Sensors);
        var a = new float[plain.Features];
        var b = new float[gated.Features];
        int on = 0, off = 0;
        foreach (var unit in RulFixture.Load().Units)
        {
            foreach (var row in unit.Rows)
            {
                plain.FeaturesOf(row, a);
                gated.FeaturesOf(row, b);
                Assert.Equal(a, b[..a.Length]);
                var expected = gated.ConditionOf(row) == 0 ? 1f : 0f;
                Assert.Equal(expected, b[^1]);
                if (expected == 1f)
                {
                    on++;
                }
                else
                {
                    off++;
                }

                // FD001/FD003 run at sea level only: every one of their rows is in condition 0
                if (unit.Dataset is "FD001" or "FD003")
                {
                    Assert.Equal(1f, b[^1]);
                }
            }
        }

        Assert.True(on > 0 && off > 0, $"fixture rows in condition 0: {on}, elsewhere: {off}");
    }

    [Theory]
    [InlineData("inCondition6", "features[15]")] // only 6 conditions (0..5)
    [InlineData("sensor5", "features[15]")] // after cycle only indicators
    [InlineData("inConditionX", "features[15]")]
    public void Bad_indicator_names_are_rejected_naming_the_feature(string name, string field)
    {
        using var files = new ModelFiles();
        var e = Assert.Throws<ModelLoadException>(() => Build(files, name));
        Assert.Contains(field, e.Message, StringComparison.Ordinal);
        Assert.Contains(name, e.Message, StringComparison.Ordinal);
    }
}
