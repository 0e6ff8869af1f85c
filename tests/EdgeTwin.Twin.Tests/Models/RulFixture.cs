using System.Text.Json;

namespace EdgeTwin.Twin.Tests.Models;

/// <summary>rul-fixture.json written by models/rul/train_rul.py: raw rows, the script's window and output.</summary>
internal sealed record RulFixture(string Sha256, IReadOnlyList<RulFixtureUnit> Units)
{
    public static RulFixture Load()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(ModelFiles.FixturePath));
        var root = doc.RootElement;
        var units = root.GetProperty("units").EnumerateArray().Select(u => new RulFixtureUnit(
            u.GetProperty("dataset").GetString()!,
            u.GetProperty("unit").GetInt32(),
            [.. u.GetProperty("rows").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetDouble()).ToArray())],
            [.. u.GetProperty("window").EnumerateArray().Select(r => r.EnumerateArray().Select(v => (float)v.GetDouble()).ToArray())],
            u.GetProperty("predicted_rul").GetDouble(),
            u.TryGetProperty("prefix_rul", out var prefix) ? [.. prefix.EnumerateArray().Select(v => v.GetDouble())] : [])).ToList();
        return new RulFixture(root.GetProperty("sha256").GetString()!, units);
    }
}

/// <summary>PrefixRul (written since 1.4.0): the script's output after each prefix of Rows (1..n rows), empty if absent.</summary>
internal sealed record RulFixtureUnit(string Dataset, int Unit, IReadOnlyList<double[]> Rows, IReadOnlyList<float[]> Window, double PredictedRul,
    IReadOnlyList<double> PrefixRul);
