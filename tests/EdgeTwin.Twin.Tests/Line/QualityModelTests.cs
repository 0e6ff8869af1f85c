using EdgeTwin.Twin.Line.Quality;

namespace EdgeTwin.Twin.Tests.Line;

public sealed class QualityModelTests
{
    private static OnlineLogisticModel Model(double lr = 0.1) => new(new OnlineLogisticFile
    {
        Format = OnlineLogisticModel.FormatName,
        InputWidth = 3,
        Columns = [0, 2],
        Medians = [0, 5],
        Means = [0, 5],
        Stds = [1, 2],
        Clip = 5,
        Weights = [1, 0],
        Bias = 0,
        LearningRate = lr,
        L2 = 0,
        WeightFail = 1,
        WeightPass = 1,
    });

    [Fact]
    public void Predicts_from_the_standardised_columns_with_medians_for_missing_values()
    {
        var m = Model();
        Assert.Equal(0.5, m.Predict([0, 99, 5]), 12);
        Assert.Equal(1 / (1 + Math.Exp(-2)), m.Predict([2, 99, double.NaN]), 12);
        Assert.Equal(1 / (1 + Math.Exp(-5)), m.Predict([40, 0, 0]), 12); // clipped at 5
    }

    [Fact]
    public void Learning_moves_the_prediction_towards_the_label()
    {
        var m = Model();
        double[] x = [0, 0, 9]; // second feature = +2
        double before = m.Predict(x);
        for (int i = 0; i < 20; i++) m.Learn(x, failed: true);
        Assert.True(m.Predict(x) > before + 0.2);
    }

    [Fact]
    public void Streaming_never_looks_ahead()
    {
        var rnd = new Random(5);
        var runs = Enumerable.Range(0, 200).Select(_ => new[] { rnd.NextDouble() * 4 - 2, 0, 5 + 4 * rnd.NextDouble() - 2 }).ToList();
        var labels = runs.Select(r => r[0] + 0.5 * rnd.NextDouble() > 1).ToList();
        var changed = labels.Select((l, i) => i >= 120 ? !l : l).ToList();
        foreach (int delay in new[] { 0, 10 })
        {
            var a = QualityStream.Run(Model(), runs, labels, delay);
            var b = QualityStream.Run(Model(), runs, changed, delay);
            // Labels of runs >= 120 may only influence predictions of runs > 120 + delay.
            for (int t = 0; t <= 120 + delay; t++) Assert.Equal(a[t], b[t]);
            Assert.NotEqual(a[199], b[199]);
        }
    }

    [Fact]
    public void Metrics_by_hand()
    {
        double[] p = [0.9, 0.8, 0.7, 0.6, 0.2, 0.1];
        bool[] y = [true, false, true, false, false, false];
        // Positive ranks 6 and 4 among 6 → AUC = (10 − 3) / (2 × 4) = 0.875.
        Assert.Equal(0.875, QualityStream.RocAuc(p, y), 12);
        // Precision at recall 0.5 is 1, at recall 1 it is 2/3 → AP = 0.5 + 0.5 × 2/3.
        Assert.Equal(0.5 + 0.5 * 2 / 3.0, QualityStream.AveragePrecision(p, y), 12);
        // At 0.5: TPR 1, TNR 2/4 → 0.75.
        Assert.Equal(0.75, QualityStream.BalancedAccuracy(p, y, 0.5), 12);
        // Ties get mid-ranks.
        Assert.Equal(0.5, QualityStream.RocAuc([0.5, 0.5], [true, false]), 12);
        var s = QualityStream.Score(p, y, bootstrap: 200);
        Assert.True(s.RocAucLow <= s.RocAuc && s.RocAuc <= s.RocAucHigh);
    }

    [Fact]
    public void Shipped_base_model_loads()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "models", "secom", "secom-base.json");
            if (!File.Exists(path)) continue;
            var m = OnlineLogisticModel.Load(path);
            Assert.Equal(590, m.InputWidth);
            double p = m.Predict(Enumerable.Repeat(double.NaN, 590).ToArray());
            Assert.InRange(p, 0, 1);
            return;
        }
        Assert.Fail("models/secom/secom-base.json not found above " + AppContext.BaseDirectory);
    }
}
