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
}
