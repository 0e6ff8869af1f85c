using BenchmarkDotNet.Attributes;
using EdgeTwin.Twin.Line.Quality;

namespace EdgeTwin.Benchmarks.Twin;

/// <summary>
/// Cost per part of the line twin's station quality (what the line stage does when a good or reject counter moves:
/// score the part on the latest process values, learn its label, roll the predicted and observed reject rates over the
/// window, check the quality warning) with the shipped simulator-line model and with the SECOM base model (590 inputs).
/// Must allocate nothing.
/// dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*StationQuality*' --inProcess
/// </summary>
[MemoryDiagnoser]
public class StationQualityBenchmarks
{
    private const int Parts = 1000;
    private StationQuality _station = null!;
    private double[] _values = null!;
    private int _i;

    [Params("line-quality/sim-line-quality.json", "secom/secom-base.json")]
    public string Model { get; set; } = "line-quality/sim-line-quality.json";

    [GlobalSetup]
    public void Setup()
    {
        var model = OnlineLogisticModel.Load(ModelFile(Model));
        _station = new StationQuality(model, model.InputWidth, window: 200);
        var rnd = new Random(5);
        _values = [.. Enumerable.Range(0, 4096).Select(_ => rnd.NextDouble() * 2 - 1)];
    }

    /// <summary>One counter step of one part, with new process values before it (the usual case on a line).</summary>
    [Benchmark(OperationsPerInvoke = Parts)]
    public bool PartWithNewInputs()
    {
        var alert = false;
        var width = _station.Model.InputWidth;
        for (var k = 0; k < Parts; k++)
        {
            for (var j = 0; j < width; j++)
            {
                _station.SetInput(j, _values[(_i + j) & 4095]);
            }

            _i++;
            _station.OnParts(1, rejected: (_i & 31) == 0);
            alert |= _station.CheckAlert();
        }

        return alert;
    }

    private static string ModelFile(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var p = Path.Combine(dir.FullName, "models", relative);
            if (File.Exists(p))
            {
                return p;
            }
        }

        throw new FileNotFoundException($"models/{relative} not found above {AppContext.BaseDirectory}");
    }
}
