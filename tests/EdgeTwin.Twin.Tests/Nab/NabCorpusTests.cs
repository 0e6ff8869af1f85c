using EdgeTwin.Twin.Anomaly;
using EdgeTwin.Twin.Nab;

namespace EdgeTwin.Twin.Tests.Nab;

public sealed class NabCorpusTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("nab-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Reads_files_maps_windows_to_rows_and_writes_the_results_layout()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "data", "cat"));
        var lines = new List<string> { "timestamp,value" };
        var start = new DateTime(2014, 4, 1, 0, 0, 0, DateTimeKind.Utc);
        for (var i = 0; i < 300; i++)
        {
            lines.Add($"{start.AddMinutes(5 * i):yyyy-MM-dd HH:mm:ss},{(i == 200 ? 50 : 10 + (i % 3))}");
        }

        File.WriteAllLines(Path.Combine(_dir, "data", "cat", "f.csv"), lines);
        File.WriteAllText(Path.Combine(_dir, "windows.json"),
            $$"""{"cat/f.csv": [["{{start.AddMinutes(5 * 190):yyyy-MM-dd HH:mm:ss}}.000000", "{{start.AddMinutes(5 * 210):yyyy-MM-dd HH:mm:ss}}.000000"]]}""");

        var files = NabCorpus.Load(Path.Combine(_dir, "data"), Path.Combine(_dir, "windows.json"));
        var file = Assert.Single(files);
        Assert.Equal("cat/f.csv", file.RelativePath);
        Assert.Equal(new NabWindow(190, 210), Assert.Single(file.Windows));

        var result = NabRunner.RunCorpus(files, AnomalyDetectorOptions.Default);
        NabRunner.WriteResults(Path.Combine(_dir, "results"), result);
        var written = File.ReadAllLines(Path.Combine(_dir, "results", "edgetwin", "cat", "edgetwin_f.csv"));
        Assert.Equal("timestamp,value,anomaly_score,label", written[0]);
        Assert.Equal(301, written.Length);
        Assert.EndsWith(",0", written[190], StringComparison.Ordinal);
        Assert.EndsWith(",1", written[191], StringComparison.Ordinal);
        Assert.EndsWith(",1", written[211], StringComparison.Ordinal);
        Assert.EndsWith(",0", written[212], StringComparison.Ordinal);

        // The spike at row 200 is the only anomaly: the detector finds it and the scorer counts it as an early-ish detection.
        var standard = result.Profiles[0];
        Assert.Equal(1, standard.TruePositives);
        Assert.True(standard.NormalisedScore > 50, $"score {standard.NormalisedScore}");
    }

    [Fact]
    public void Errors_name_the_file_and_line()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "bad"));
        var path = Path.Combine(_dir, "bad", "x.csv");
        File.WriteAllLines(path, ["timestamp,value", "2014-04-01 00:00:00,1", "yesterday,2"]);
        var e = Assert.Throws<FormatException>(() => NabCorpus.ReadFile(path, "bad", "bad/x.csv", []));
        Assert.Contains("x.csv:3", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Regression_an_empty_or_malformed_labels_file_was_reported_without_its_name()
    {
        var path = Path.Combine(_dir, "windows.json");
        File.WriteAllText(path, "");
        var e = Assert.Throws<FormatException>(() => NabCorpus.ReadWindows(path));
        Assert.StartsWith(path + ": empty", e.Message, StringComparison.Ordinal);

        File.WriteAllText(path, "{\n  \"a\":\n");
        e = Assert.Throws<FormatException>(() => NabCorpus.ReadWindows(path));
        Assert.StartsWith(path + ":3: not valid JSON", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("LineNumber", e.Message, StringComparison.Ordinal);

        // A number where a timestamp string belongs threw InvalidOperationException from JsonElement.GetString().
        File.WriteAllText(path, """{"cat/f.csv": [[1, 2]]}""");
        e = Assert.Throws<FormatException>(() => NabCorpus.ReadWindows(path));
        Assert.Contains(path + ": key 'cat/f.csv': each window must be", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Regression_a_bad_value_was_reported_as_a_bad_header_and_a_bad_header_on_line_2()
    {
        var path = Path.Combine(_dir, "x.csv");
        File.WriteAllLines(path, ["timestamp,value", "2014-04-01 00:00:00,1", "2014-04-01 00:05:00,2", "2014-04-01 00:10:00,x"]);
        var e = Assert.Throws<FormatException>(() => NabCorpus.ReadFile(path, "c", "c/x.csv", []));
        Assert.Equal($"{path}:4: value 'x' is not a number", e.Message);

        File.WriteAllLines(path, ["time;value", "2014-04-01 00:00:00;1"]);
        e = Assert.Throws<FormatException>(() => NabCorpus.ReadFile(path, "c", "c/x.csv", []));
        Assert.Equal($"{path}:1: header 'time;value' is not 'timestamp,value'", e.Message);

        // NAB's own files: some have CRLF line ends, which the header check must accept.
        File.WriteAllText(path, "timestamp,value\r\n2014-04-01 00:00:00,1\r\n");
        Assert.Equal([1.0], NabCorpus.ReadFile(path, "c", "c/x.csv", []).Values);
    }

    [Fact]
    public void Regression_an_empty_or_header_only_csv_was_counted_as_a_file_silently()
    {
        var path = Path.Combine(_dir, "x.csv");
        File.WriteAllText(path, "");
        var e = Assert.Throws<FormatException>(() => NabCorpus.ReadFile(path, "c", "c/x.csv", []));
        Assert.Equal($"{path}: empty file (expected the header 'timestamp,value' and data rows)", e.Message);

        File.WriteAllText(path, "timestamp,value\n");
        e = Assert.Throws<FormatException>(() => NabCorpus.ReadFile(path, "c", "c/x.csv", []));
        Assert.Equal($"{path}: no data rows after the header", e.Message);
    }
}
