using EdgeTwin.Tests.Shared;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeTwin.Twin.Line.Quality;

namespace EdgeTwin.Twin.Tests.Line;

public sealed class QualityModelTests
{
    private static OnlineLogisticFile File1(double lr = 0.1, double alpha = 0, string mode = "none", double bias = 0) => new()
    {
        Format = OnlineLogisticModel.FormatName,
        InputWidth = 3,
        Clip = 5,
        LearningRate = lr,
        L2 = 0,
        WeightFail = 1,
        WeightPass = 1,
        Members =
        [
            new OnlineLogisticMember { Alpha = alpha, Columns = [0, 2], Mean = [0, 5], Var = [1, 4], Weights = [1, 0], Bias = bias },
        ],
        Decision = new BalancedDecisionFile { Mode = mode, WindowPass = 50, WindowFail = 10, MinFails = 3, Prior = 0.5, PriorAlpha = 0.05 },
    };

    private static OnlineLogisticModel Model(double lr = 0.1) => new(File1(lr));

    private static string? FindUp(params string[] parts)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine([dir.FullName, .. parts]);
            if (File.Exists(path)) return path;
        }
        return null;
    }

    [Fact]
    public void Predicts_from_the_standardised_columns_with_the_mean_for_missing_values()
    {
        var m = Model();
        Assert.Equal(0.5, m.Predict([0, 99, 5]), 12);
        Assert.Equal(1 / (1 + Math.Exp(-2)), m.Predict([2, 99, double.NaN]), 12);
        Assert.Equal(1 / (1 + Math.Exp(-5)), m.Predict([40, 0, 0]), 12); // clipped at 5
        Assert.Equal(0.5, m.Predict([double.NaN, 0, 0]), 12); // missing -> mean -> z = 0
    }

    [Fact]
    public void Stumps_add_their_leaves_on_the_clipped_z_scores_to_the_member_logit()
    {
        var f = File1(lr: 0);
        // Member columns [0, 2] (z0 = x0, z1 = (x2 - 5) / 2); stumps on z1 <= 0.5 and z0 <= -1, weight 0.5.
        f.Members[0].Stumps = new StumpsFile { Weight = 0.5, Init = 0.25, Feature = [1, 0], Threshold = [0.5, -1], Left = [-1, 2], Right = [1, -2] };
        var m = new OnlineLogisticModel(f);
        // x = [0, _, 5]: z = (0, 0) -> linear 0; stumps 0.25 - 1 (z1 <= 0.5) - 2 (z0 > -1) = -2.75 -> logit -1.375.
        Assert.Equal(1 / (1 + Math.Exp(1.375)), m.Predict([0, 0, 5]), 12);
        // x = [-40, _, 9]: z = (-5 clipped, 2) -> linear -5; stumps 0.25 + 1 + 2 = 3.25 -> logit -5 + 1.625.
        Assert.Equal(1 / (1 + Math.Exp(5 - 1.625)), m.Predict([-40, 0, 9]), 12);
        // A threshold is inclusive (z <= threshold takes the left leaf): z1 = 0.5 exactly.
        Assert.Equal(1 / (1 + Math.Exp(-0.5 * (0.25 - 1 - 2))), m.Predict([0, 0, 6]), 12);
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
    public void Drift_statistics_follow_a_level_shift_without_labels()
    {
        var frozen = new OnlineLogisticModel(File1(lr: 0, alpha: 0));
        var adaptive = new OnlineLogisticModel(File1(lr: 0, alpha: 0.1));
        double[] shifted = [3, 0, 5]; // column 0 moved by +3 standard deviations
        double first = adaptive.Observe(shifted);
        Assert.Equal(1 / (1 + Math.Exp(-3)), first, 12); // scored before the run updates the statistics
        for (int i = 0; i < 200; i++)
        {
            frozen.Observe(shifted);
            adaptive.Observe(shifted);
        }
        Assert.Equal(1 / (1 + Math.Exp(-3)), frozen.Predict(shifted), 12);
        Assert.InRange(adaptive.Predict(shifted), 0.5, 0.51); // the shift became the new normal
        Assert.True(adaptive.Predict([4, 0, 5]) > 0.99); // a jump from the new level still stands out
    }

    [Fact]
    public void Balanced_decision_moves_the_threshold_to_separate_recent_passes_and_fails()
    {
        // Base model biased towards "fail" (bias +3): every run scores >= 0.5 before labels arrive.
        var m = new OnlineLogisticModel(File1(lr: 0, mode: "eer", bias: 3));
        double[] pass = [-1, 0, 5], fail = [1, 0, 5]; // logits 2 and 4
        Assert.True(m.Predict(pass) > 0.5 && m.Predict(fail) > 0.5);
        for (int i = 0; i < 40; i++) m.Learn(i % 10 == 0 ? fail : pass, failed: i % 10 == 0);
        Assert.InRange(m.DecisionOffset, 2, 4); // between the classes' logits
        Assert.True(m.Predict(pass) < 0.5);
        Assert.True(m.Predict(fail) > 0.5);
        // Fail rate tracked from the labels (1 in 10 here), and the calibrated probability follows it.
        Assert.InRange(m.FailRate, 0.08, 0.3);
        double s = m.Predict(fail);
        Assert.True(m.Calibrated(s) < s);
        Assert.Equal(m.FailRate, m.Calibrated(0.5), 12); // an undecided score carries only the prior
    }

    [Fact]
    public void Hedge_moves_weight_to_the_member_that_predicts_the_labels()
    {
        var f = File1(lr: 0);
        f.Members =
        [
            new OnlineLogisticMember { Columns = [0], Mean = [0], Var = [1], Weights = [2], Bias = 0 },  // right sign
            new OnlineLogisticMember { Columns = [0], Mean = [0], Var = [1], Weights = [-2], Bias = 0 }, // wrong sign
        ];
        f.Mix = new MemberMixFile { Mode = "hedge", Eta = 1, Discount = 0.99 };
        var m = new OnlineLogisticModel(f);
        double[] fail = [1, 0, 0], pass = [-1, 0, 0];
        Assert.Equal(0.5, m.Predict(fail), 12); // equal weights cancel out
        for (int i = 0; i < 10; i++) m.Learn(i % 2 == 0 ? fail : pass, failed: i % 2 == 0);
        Assert.True(m.MemberWeights[0] > 0.99);
        Assert.True(m.Predict(fail) > 0.8);
    }

    [Fact]
    public void Threshold_waits_for_enough_labels_and_is_the_equal_error_point()
    {
        var t = new BalancedThreshold(windowPass: 4, windowFail: 2, minFails: 2);
        t.Add(-1, failed: false);
        t.Add(1, failed: true);
        Assert.Equal(0, t.Offset);
        t.Add(-2, failed: false);
        t.Add(3, failed: true);
        Assert.Equal(0, t.Offset); // midpoint of -1 and 1
        t.Add(5, failed: false);
        t.Add(6, failed: false); // passes -1 -2 5 6 vs fails 1 3: at 2, FNR 1/2 = FPR 2/4
        Assert.Equal(2, t.Offset);
        t.Add(7, failed: true); // window of 2 fails drops the oldest (1): fails 3 7
        Assert.Equal(4, t.Offset); // FNR 1/2 = FPR 2/4 at the midpoint of 3 and 5
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
            var a = QualityStream.Run(new OnlineLogisticModel(File1(alpha: 0.05, mode: "eer")), runs, labels, delay);
            var b = QualityStream.Run(new OnlineLogisticModel(File1(alpha: 0.05, mode: "eer")), runs, changed, delay);
            // Labels of runs >= 120 may only influence predictions of runs > 120 + delay.
            for (int t = 0; t <= 120 + delay; t++) Assert.Equal(a[t], b[t]);
            Assert.NotEqual(a[199], b[199]);
        }
    }

    [Fact]
    public void Matches_the_python_reference()
    {
        var path = FindUp("models", "secom", "parity_fixture.json") ?? throw new InvalidOperationException("models/secom/parity_fixture.json not found");
        var root = JsonNode.Parse(System.IO.File.ReadAllText(path))!;
        var file = root["model"].Deserialize<OnlineLogisticFile>()!;
        var m = new OnlineLogisticModel(file);
        int delay = root["delay"]!.GetValue<int>();
        var runs = root["runs"]!.AsArray().Select(r => r!.AsArray().Select(v => v is null ? double.NaN : v.GetValue<double>()).ToArray()).ToList();
        var failed = root["failed"]!.AsArray().Select(v => v!.GetValue<bool>()).ToList();
        var scores = root["scores"]!.AsArray().Select(v => v!.GetValue<double>()).ToArray();
        var calibrated = root["calibrated"]!.AsArray().Select(v => v!.GetValue<double>()).ToArray();
        var offsets = root["offsets"]!.AsArray().Select(v => v!.GetValue<double>()).ToArray();
        var rates = root["fail_rates"]!.AsArray().Select(v => v!.GetValue<double>()).ToArray();
        var weights = root["member_weights"]!.AsArray().Select(r => r!.AsArray().Select(v => v!.GetValue<double>()).ToArray()).ToArray();
        Assert.Equal("hedge", file.Mix!.Mode);
        Assert.All(file.Members, mem => Assert.True(mem.Stumps is { Feature.Length: > 0 })); // the fixture exercises the stumps
        Assert.True(offsets.Distinct().Count() > 5); // the fixture exercises the decision threshold
        for (int t = 0; t < runs.Count; t++)
        {
            double s = m.Observe(runs[t]);
            Assert.Equal(scores[t], s, 1e-12);
            Assert.Equal(calibrated[t], m.Calibrated(s), 1e-12);
            if (t - delay >= 0) m.Learn(runs[t - delay], failed[t - delay]);
            Assert.Equal(offsets[t], m.DecisionOffset, 1e-9);
            Assert.Equal(rates[t], m.FailRate, 1e-12);
            for (int i = 0; i < weights[t].Length; i++) Assert.Equal(weights[t][i], m.MemberWeights[i], 1e-9);
        }
        Assert.True(weights[^1].Max() > 0.4); // the hedge moved away from equal weights
    }

    [Fact]
    public void Observe_and_learn_do_not_allocate()
    {
        var f = File1(alpha: 0.05, mode: "eer");
        f.Members[0].Stumps = new StumpsFile { Weight = 0.5, Feature = [0, 1, 1], Threshold = [0, 0.5, -0.5], Left = [-1, 1, 0.5], Right = [1, -1, -0.5] };
        var m = new OnlineLogisticModel(f);
        double[] a = [1, 0, 5], b = [-1, 0, 6];
        for (int i = 0; i < 50; i++) { m.Observe(a); m.Learn(b, i % 5 == 0); }

        // A per-call allocation shows in every round; the runtime's own one-off allocations on this thread while it
        // re-compiles the hot loop (tiered JIT; 3,352 B once on a loaded CI machine) in one round only. So: some round of
        // 1,000 calls allocates nothing.
        double sink = 0;
        Allocations.AssertSomeRoundAllocatesNothing(
            () =>
            {
                for (int i = 0; i < 1000; i++) { sink += m.Observe(a); m.Learn(i % 2 == 0 ? a : b, i % 7 == 0); }
            },
            "1,000 observe and learn calls");
        Assert.False(double.IsNaN(sink));
    }

    [Fact]
    public void Loader_errors_name_the_file_and_the_key()
    {
        var dir = Directory.CreateTempSubdirectory("secom-model-");
        try
        {
            string Write(string name, Action<JsonObject> edit)
            {
                var node = JsonSerializer.SerializeToNode(File1())!.AsObject();
                edit(node);
                var p = Path.Combine(dir.FullName, name);
                System.IO.File.WriteAllText(p, node.ToJsonString());
                return p;
            }
            void Expect(string p, string key)
            {
                var ex = Assert.Throws<InvalidDataException>(() => OnlineLogisticModel.Load(p));
                Assert.Contains(p, ex.Message, StringComparison.Ordinal);
                Assert.Contains(key, ex.Message, StringComparison.Ordinal);
            }
            Expect(Write("v1.json", n => n["format"] = "edgetwin-online-logistic/1"), "format");
            Expect(Write("v4.json", n => n["format"] = "edgetwin-online-logistic/4"), "format");
            JsonObject Stumps() => new()
            {
                ["weight"] = 0.5, ["init"] = 0.0, ["feature"] = new JsonArray(0, 1), ["threshold"] = new JsonArray(0.0, 1.0),
                ["left"] = new JsonArray(-1.0, -1.0), ["right"] = new JsonArray(1.0, 1.0),
            };
            Expect(Write("sfeat.json", n => { var st = Stumps(); st["feature"] = new JsonArray(0, 2); n["members"]![0]!["stumps"] = st; }), "members[0].stumps.feature[1]");
            Expect(Write("slen.json", n => { var st = Stumps(); st["left"] = new JsonArray(1.0); n["members"]![0]!["stumps"] = st; }), "members[0].stumps.left");
            Expect(Write("sw.json", n => { var st = Stumps(); st["weight"] = -1.0; n["members"]![0]!["stumps"] = st; }), "members[0].stumps.weight");
            Expect(Write("sv2.json", n => { n["format"] = OnlineLogisticModel.FormatV2; n["members"]![0]!["stumps"] = Stumps(); }), "members[0].stumps");
            Assert.NotNull(OnlineLogisticModel.Load(Write("v2.json", n => n["format"] = OnlineLogisticModel.FormatV2)));
            Assert.NotNull(OnlineLogisticModel.Load(Write("stumps.json", n => n["members"]![0]!["stumps"] = Stumps())));
            Expect(Write("var.json", n => n["members"]![0]!["var"] = new JsonArray(1.0)), "members[0].var");
            Expect(Write("col.json", n => n["members"]![0]!["columns"] = new JsonArray(0, 7)), "members[0].columns[1]");
            Expect(Write("alpha.json", n => n["members"]![0]!["alpha"] = 1.5), "members[0].alpha");
            Expect(Write("mode.json", n => n["decision"]!["mode"] = "magic"), "decision.mode");
            Expect(Write("mix.json", n => n["mix"] = new JsonObject { ["mode"] = "vote" }), "mix.mode");
            Expect(Write("nodec.json", n => n.Remove("decision")), "decision");
            Expect(Write("type.json", n => n["members"]![0]!["bias"] = "high"), "bias");
            Assert.NotNull(OnlineLogisticModel.Load(Write("ok.json", _ => { })));
        }
        finally
        {
            dir.Delete(recursive: true);
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
    public void Shipped_base_models_load()
    {
        foreach (var name in new[] { "secom-base.json", "secom-base-dev60.json" })
        {
            var path = FindUp("models", "secom", name) ?? throw new InvalidOperationException($"models/secom/{name} not found above {AppContext.BaseDirectory}");
            var m = OnlineLogisticModel.Load(path);
            Assert.Equal(590, m.InputWidth);
            double p = m.Observe(Enumerable.Repeat(double.NaN, 590).ToArray());
            Assert.InRange(p, 0, 1);
        }
    }
}
