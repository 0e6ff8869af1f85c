namespace EdgeTwin.IntegrationTests.Bench;

/// <summary><c>edgetwin bench nab</c> on a data directory whose files the labels file does not name.</summary>
public sealed class BenchNabTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("edgetwin-bench-nab-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string WriteFile(string category, string name, int rows)
    {
        var dir = Directory.CreateDirectory(Path.Combine(_dir.FullName, "data", category));
        var start = new DateTime(2014, 4, 1, 0, 0, 0, DateTimeKind.Utc);
        var lines = new List<string> { "timestamp,value" };
        for (var i = 0; i < rows; i++)
        {
            lines.Add($"{start.AddMinutes(5 * i):yyyy-MM-dd HH:mm:ss},{(i == rows * 2 / 3 ? 60 : 10 + (i % 4))}");
        }

        File.WriteAllLines(Path.Combine(dir.FullName, name), lines);
        return $"{start.AddMinutes(5 * ((rows * 2 / 3) - 10)):yyyy-MM-dd HH:mm:ss}.000000\", \"{start.AddMinutes(5 * ((rows * 2 / 3) + 10)):yyyy-MM-dd HH:mm:ss}.000000";
    }

    [Fact]
    public async Task Files_missing_from_the_labels_are_named_and_a_corpus_with_none_labelled_is_refused()
    {
        var window = WriteFile("realA", "a.csv", 600);
        WriteFile("realA", "b.csv", 600);
        var labels = Path.Combine(_dir.FullName, "windows.json");
        var data = Path.Combine(_dir.FullName, "data");

        // Keys of another layout: nothing matches, so the score would be undefined.
        File.WriteAllText(labels, $$"""{"a.csv": [["{{window}}"]], "b.csv": []}""");
        var (exit, _, error) = await InProcessCli.RunAsync("bench", "nab", "--data", data, "--labels", labels);
        Assert.Equal(2, exit);
        Assert.Contains("none of the 2 files", error, StringComparison.Ordinal);
        Assert.Contains("realA/a.csv", error, StringComparison.Ordinal);

        // One file named: scored, the other one named in a warning.
        File.WriteAllText(labels, $$"""{"realA/a.csv": [["{{window}}"]]}""");
        (exit, var output, error) = await InProcessCli.RunAsync("bench", "nab", "--data", data, "--labels", labels);
        Assert.True(exit == 0, error);
        Assert.Contains("1 file(s) have no entry", error, StringComparison.Ordinal);
        Assert.Contains("realA/b.csv", error, StringComparison.Ordinal);
        Assert.Contains("standard", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_labels_given_a_directory_or_data_given_a_file_said_does_not_exist()
    {
        var window = WriteFile("realA", "a.csv", 600);
        var labels = Path.Combine(_dir.FullName, "windows.json");
        var data = Path.Combine(_dir.FullName, "data");
        File.WriteAllText(labels, $$"""{"realA/a.csv": [["{{window}}"]]}""");

        var (exit, _, error) = await InProcessCli.RunAsync("bench", "nab", "--data", data, "--labels", data);
        Assert.Equal(2, exit);
        Assert.Contains($"--labels {data} is a directory, expected a file", error, StringComparison.Ordinal);

        var file = Path.Combine(data, "realA", "a.csv");
        (exit, _, error) = await InProcessCli.RunAsync("bench", "nab", "--data", file, "--labels", labels);
        Assert.Equal(2, exit);
        Assert.Contains($"--data {file} is a file, expected a directory", error, StringComparison.Ordinal);

        (exit, _, error) = await InProcessCli.RunAsync("bench", "nab", "--data", Path.Combine(_dir.FullName, "nope"), "--labels", labels);
        Assert.Equal(2, exit);
        Assert.Contains("nope does not exist", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_an_empty_csv_and_an_invalid_labels_file_exited_with_unnamed_or_no_errors()
    {
        var window = WriteFile("realA", "a.csv", 600);
        var labels = Path.Combine(_dir.FullName, "windows.json");
        var data = Path.Combine(_dir.FullName, "data");
        File.WriteAllText(labels, $$"""{"realA/a.csv": [["{{window}}"]], "realA/b.csv": []}""");
        var empty = Path.Combine(data, "realA", "b.csv");
        File.WriteAllText(empty, "timestamp,value\n");

        // Bad data is exit 1 (the README's rule), and the file is named.
        var (exit, output, error) = await InProcessCli.RunAsync("bench", "nab", "--data", data, "--labels", labels);
        Assert.Equal(1, exit);
        Assert.Contains($"{empty}: no data rows after the header", error, StringComparison.Ordinal);
        Assert.Equal("", output);

        File.Delete(empty);
        File.WriteAllText(labels, "");
        (exit, _, error) = await InProcessCli.RunAsync("bench", "nab", "--data", data, "--labels", labels);
        Assert.Equal(1, exit);
        Assert.Contains($"{labels}: empty", error, StringComparison.Ordinal);
    }
}
