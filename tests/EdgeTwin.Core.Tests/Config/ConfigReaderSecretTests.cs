using EdgeTwin.Core.Config;

namespace EdgeTwin.Core.Tests.Config;

/// <summary>The shared <c>KEY</c> / <c>KEY_file</c> secret reader and path resolution of the uplinks and alerts sections.</summary>
public sealed class ConfigReaderSecretTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("edgetwin-secret-");

    public void Dispose() => _dir.Delete(recursive: true);

    private static (ConfigReader Reader, ConfigDiagnostics Diagnostics) Read(string yaml)
    {
        var d = new ConfigDiagnostics();
        var root = (ConfigMapping)YamlTree.Parse(yaml, "site.yaml", d)!;
        Assert.True(d.IsEmpty);
        return (new ConfigReader(root, d), d);
    }

    [Fact]
    public void Inline_secret_is_returned_as_written()
    {
        var (r, d) = Read("password: hunter22\n");
        Assert.Equal("hunter22", r.Secret("password", _dir.FullName, emptyFileIsError: true));
        Assert.True(d.IsEmpty);
    }

    [Fact]
    public void File_secret_is_read_relative_to_the_config_directory_and_trimmed_and_wins_over_inline()
    {
        File.WriteAllText(Path.Combine(_dir.FullName, "pw.txt"), "  s3cret\n");
        var (r, d) = Read("password: inline\npassword_file: pw.txt\n");
        Assert.Equal("s3cret", r.Secret("password", _dir.FullName, emptyFileIsError: true));
        Assert.True(d.IsEmpty);
    }

    [Fact]
    public void Missing_file_is_reported_at_its_key_with_the_resolved_path()
    {
        var (r, d) = Read("a: 1\npassword_file: nope.txt\n");
        Assert.Null(r.Secret("password", _dir.FullName, emptyFileIsError: false));
        var problem = Assert.Single(d.Sorted());
        Assert.Equal(("site.yaml", 2), (problem.File, problem.Line));
        Assert.StartsWith($"cannot read secret file '{Path.Combine(_dir.FullName, "nope.txt")}'", problem.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(true, 1)]
    [InlineData(false, 0)]
    public void Empty_file_is_an_error_only_when_asked(bool emptyFileIsError, int problems)
    {
        File.WriteAllText(Path.Combine(_dir.FullName, "empty.txt"), "\n");
        var (r, d) = Read("secret_file: empty.txt\n");
        Assert.Equal("", r.Secret("secret", _dir.FullName, emptyFileIsError));
        Assert.Equal(problems, d.Sorted().Count);
        if (problems == 1)
        {
            Assert.Contains("is empty", d.Sorted()[0].Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Relative_paths_resolve_against_the_base_directory_and_absolute_ones_stay()
    {
        Assert.Null(ConfigReader.ResolvePath(null, "/etc/edgetwin"));
        Assert.Equal("/etc/edgetwin/ca.pem", ConfigReader.ResolvePath("ca.pem", "/etc/edgetwin"));
        Assert.Equal("/srv/ca.pem", ConfigReader.ResolvePath("/srv/ca.pem", "/etc/edgetwin"));
    }
}
