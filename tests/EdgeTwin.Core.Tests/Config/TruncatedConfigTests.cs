using System.Text;
using System.Text.RegularExpressions;
using EdgeTwin.Core.Config;

namespace EdgeTwin.Core.Tests.Config;

/// <summary>
/// A config cut short (a failed copy, a full disk while saving): whatever is left, <c>check</c> (and <c>run</c>, which
/// loads the same way) reports FILE:LINE:COL problems; the YAML reader never lets an exception out.
/// </summary>
public sealed partial class TruncatedConfigTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [GeneratedRegex(@"^(?<file>.+):(?<line>\d+):(?<col>\d+): ")]
    private static partial Regex Diagnostic();

    [Fact]
    public void Regression_a_truncated_config_crashed_check_with_a_stack_trace()
    {
        // Cut off inside a flow mapping and a flow sequence: YamlDotNet's scanner threw InvalidOperationException
        // ("Operation is not valid due to the current state of the object"), which went past the YAML reader.
        var path = _dir.Write("bad2.yaml", "site: {id: x\ndevices: [\n");

        var report = ConfigCheck.Run(path, new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir });

        Assert.False(report.Ok);
        Assert.Equal(1, report.ExitCode);
        var problem = Assert.Single(report.Problems);
        Assert.Equal($"{path}:3:1: (document): YAML syntax error: the file ends inside the flow mapping '{{' opened at line 1, column 7 (a '}}' is missing; was the file cut short?)", problem.ToString());
    }

    [Theory]
    [InlineData("devices: [\n")]
    [InlineData("devices: [\n  {id: a},\n  b\n")]
    [InlineData("site: {id: x\n")]
    [InlineData("a: {b: [1, {c: d\n")]
    [InlineData("a: [\n  - b\n")]
    [InlineData("a: {\n")]
    [InlineData("{")]
    [InlineData("[")]
    public void A_file_that_ends_inside_a_flow_collection_is_one_syntax_error_with_a_position(string yaml)
    {
        var diagnostics = new ConfigDiagnostics();

        Assert.Null(YamlTree.Parse(yaml, "f.yaml", diagnostics));

        var problem = Assert.Single(diagnostics.Items);
        Assert.Matches(@"^f\.yaml:[1-9]\d*:[1-9]\d*: \(document\): YAML syntax error: ", problem.ToString());
    }

    public static TheoryData<string> ExampleFiles() => [.. TestFiles.Examples().Select(f => Path.GetFileName(f))];

    /// <summary>
    /// Every 7th byte offset of each shipped example (and the last 40 bytes one by one): the check ends with a report,
    /// exit 0 or 1, and every problem it prints starts with the file, a line and a column.
    /// </summary>
    [Theory]
    [MemberData(nameof(ExampleFiles))]
    public void Check_of_an_example_cut_at_any_byte_reports_file_line_col_and_never_throws(string file)
    {
        var dir = Modes.InstalledExamples(_dir);
        var bytes = File.ReadAllBytes(Path.Combine(dir, file));
        var cut = Path.Combine(dir, "cut-" + file);
        var options = new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir };
        var offsets = Enumerable.Range(0, bytes.Length / 7 + 1).Select(i => i * 7).Concat(Enumerable.Range(Math.Max(0, bytes.Length - 40), 40)).Distinct().ToList();
        var invalid = 0;
        foreach (var length in offsets)
        {
            File.WriteAllBytes(cut, bytes.AsSpan(0, length).ToArray());
            Modes.Chmod(cut, Modes.M0640);
            ConfigCheckReport report;
            try
            {
                report = ConfigCheck.Run(cut, options);
            }
            catch (Exception ex)
            {
                Assert.Fail($"check of {file} cut at byte {length} threw {ex.GetType().Name}: {ex.Message}\n--- text:\n{Encoding.UTF8.GetString(bytes, 0, length)}");
                return;
            }

            var output = new StringWriter();
            ConfigCheck.WriteText(report, output);
            Assert.True(report.ExitCode is 0 or 1, $"cut at {length}: exit {report.ExitCode}");
            if (report.Ok)
            {
                continue;
            }

            invalid++;
            Assert.NotEmpty(report.Problems);
            foreach (var problem in report.Problems)
            {
                var m = Diagnostic().Match(problem.ToString());
                Assert.True(m.Success && m.Groups["file"].Value == cut && int.Parse(m.Groups["line"].Value, System.Globalization.CultureInfo.InvariantCulture) >= 1,
                    $"cut at {length}: not FILE:LINE:COL in {cut}: {problem}");
                Assert.Contains(problem.ToString(), output.ToString(), StringComparison.Ordinal);
            }
        }

        Assert.True(invalid > offsets.Count / 2, $"only {invalid} of {offsets.Count} cuts were found invalid");
    }
}
