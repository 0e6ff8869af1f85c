using System.Text;
using EdgeTwin.Core.Config;

namespace EdgeTwin.Core.Tests.Config;

/// <summary>
/// Mutation fuzzing of the config reader on the shipped examples and device profiles (a file damaged by a failed copy,
/// a bad edit, a disk): the YAML tree and the whole site config load report problems and never let an exception out,
/// never hang (alias bombs, deep nesting) and never allocate past a bound. EDGETWIN_FUZZ_ITERATIONS sets the long campaign.
/// </summary>
public sealed class ConfigFuzzTests(ITestOutputHelper output)
{
    private static byte[][] Seeds() =>
    [
        .. TestFiles.Examples().Concat(TestFiles.ShippedProfiles().Take(6)).Select(File.ReadAllBytes),
        "a: &x [1, 2]\nb: *x\nc: {<<: {d: 1}, e: [*x, *x]}\n"u8.ToArray(),
    ];

    [Fact]
    public void Yaml_tree_parsing_never_throws()
    {
        var report = MutationFuzzer.Run("yaml tree", Seeds(), MutationFuzzer.Iterations(5_000), 51, bytes =>
        {
            var diagnostics = new ConfigDiagnostics();
            return YamlTree.Parse(Encoding.UTF8.GetString(bytes), "site.yaml", diagnostics) is not null && diagnostics.Items.Count == 0;
        }, _ => false, maxAllocatedBytes: 64 * 1024 * 1024, hangLimit: TimeSpan.FromSeconds(30));
        output.WriteLine(report.ToString());
    }

    [Fact]
    public void Site_config_loading_never_throws()
    {
        var options = new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir };
        var file = Path.Combine(TestFiles.ExamplesDir, "fuzzed.yaml");
        var report = MutationFuzzer.Run("site config", Seeds(), MutationFuzzer.Iterations(2_000), 52, bytes =>
        {
            var result = SiteConfigLoader.Parse(Encoding.UTF8.GetString(bytes), file, options);
            Assert.True(result.Config is not null || result.Problems.Count > 0, "neither a config nor a problem");
            return result.Problems.Count == 0;
        }, _ => false, maxAllocatedBytes: 256 * 1024 * 1024, hangLimit: TimeSpan.FromSeconds(30));
        output.WriteLine(report.ToString());
    }

    [Theory]
    [InlineData(new byte[] { 0x21, 0x3A, 0x20 })] // "!: ", found by the fuzzer: a tag and nothing else
    [InlineData(new byte[] { 0x7E, 0x0A })] // "~"
    public void Regression_a_config_of_one_null_document_loaded_as_neither_a_config_nor_a_problem(byte[] text)
    {
        var result = SiteConfigLoader.Parse(Encoding.UTF8.GetString(text), "/etc/edgetwin/site.yaml", new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir });

        Assert.Null(result.Config);
        var problem = Assert.Single(result.Problems);
        Assert.StartsWith("/etc/edgetwin/site.yaml:1:1: ", problem.ToString(), StringComparison.Ordinal);
        Assert.Contains("expected a mapping of settings, got ", problem.ToString(), StringComparison.Ordinal);
    }
}
