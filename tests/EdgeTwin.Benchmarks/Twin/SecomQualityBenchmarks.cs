using BenchmarkDotNet.Attributes;
using EdgeTwin.Twin.Line.Quality;

namespace EdgeTwin.Benchmarks.Twin;

/// <summary>
/// Cost per run of the online quality model (score + drift update, and one label) with the shipped SECOM model
/// a five-member hedge/EER variant, and a format-3 member with 200 boosted stumps (the select_v3 candidate's shape:
/// 10 columns, stumps on the first 5); all must allocate nothing.
/// dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*SecomQuality*' --inProcess
/// </summary>
[MemoryDiagnoser]
public class SecomQualityBenchmarks
{
    private OnlineLogisticModel _shipped = null!;
    private OnlineLogisticModel _ensemble = null!;
    private OnlineLogisticModel _stumps = null!;
    private double[][] _runs = null!;
    private int _i;

    [GlobalSetup]
    public void Setup()
    {
        string? path = null;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null && path is null; dir = dir.Parent)
        {
            var p = Path.Combine(dir.FullName, "models", "secom", "secom-base.json");
            if (File.Exists(p)) path = p;
        }
        _shipped = OnlineLogisticModel.Load(path ?? throw new FileNotFoundException("models/secom/secom-base.json not found above " + AppContext.BaseDirectory));
        var rnd = new Random(3);
        var members = Enumerable.Range(0, 5).Select(m => new OnlineLogisticMember
        {
            Alpha = 0.01 * (m + 1),
            Columns = Enumerable.Range(0, 10).Select(j => (m * 37 + j * 53) % 590).ToArray(),
            Mean = new double[10],
            Var = Enumerable.Repeat(1.0, 10).ToArray(),
            Weights = Enumerable.Range(0, 10).Select(_ => rnd.NextDouble() - 0.5).ToArray(),
        }).ToArray();
        _ensemble = new OnlineLogisticModel(new OnlineLogisticFile
        {
            Format = OnlineLogisticModel.FormatName,
            InputWidth = 590,
            LearningRate = 0.01,
            L2 = 0.01,
            Members = members,
            Mix = new MemberMixFile { Mode = "hedge", Eta = 0.5, Discount = 0.99 },
            Decision = new BalancedDecisionFile { Mode = "eer", WindowPass = 200, WindowFail = 20, MinFails = 5, Prior = 0.07 },
        });
        _stumps = new OnlineLogisticModel(new OnlineLogisticFile
        {
            Format = OnlineLogisticModel.FormatName,
            InputWidth = 590,
            Members =
            [
                new OnlineLogisticMember
                {
                    Alpha = 0.1,
                    Columns = Enumerable.Range(0, 10).Select(j => j * 53 % 590).ToArray(),
                    Mean = new double[10],
                    Var = Enumerable.Repeat(1.0, 10).ToArray(),
                    Weights = Enumerable.Range(0, 10).Select(_ => rnd.NextDouble() - 0.5).ToArray(),
                    Stumps = new StumpsFile
                    {
                        Weight = 0.25,
                        Feature = Enumerable.Range(0, 200).Select(i => i % 5).ToArray(),
                        Threshold = Enumerable.Range(0, 200).Select(_ => rnd.NextDouble() * 4 - 2).ToArray(),
                        Left = Enumerable.Range(0, 200).Select(_ => (rnd.NextDouble() - 0.5) * 0.1).ToArray(),
                        Right = Enumerable.Range(0, 200).Select(_ => (rnd.NextDouble() - 0.5) * 0.1).ToArray(),
                    },
                },
            ],
            Decision = new BalancedDecisionFile { Mode = "none", Prior = 0.07 },
        });
        _runs = Enumerable.Range(0, 64).Select(_ => Enumerable.Range(0, 590).Select(_ => rnd.NextDouble() < 0.05 ? double.NaN : rnd.NextDouble()).ToArray()).ToArray();
    }

    [Benchmark(Baseline = true)]
    public double ShippedObserveAndLearn()
    {
        var x = _runs[_i++ & 63];
        double p = _shipped.Observe(x);
        _shipped.Learn(x, (_i & 15) == 0);
        return p;
    }

    /// <summary>Five members, hedge mix, label steps and the equal-error threshold (sorts its 220-entry windows per label).</summary>
    [Benchmark]
    public double EnsembleObserveAndLearn()
    {
        var x = _runs[_i++ & 63];
        double p = _ensemble.Observe(x);
        _ensemble.Learn(x, (_i & 15) == 0);
        return p;
    }

    /// <summary>One member with 200 boosted stumps on the first 5 of its 10 columns (format 3).</summary>
    [Benchmark]
    public double StumpsObserveAndLearn()
    {
        var x = _runs[_i++ & 63];
        double p = _stumps.Observe(x);
        _stumps.Learn(x, (_i & 15) == 0);
        return p;
    }
}
