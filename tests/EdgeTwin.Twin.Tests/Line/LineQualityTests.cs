using System.Globalization;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Twin.Line;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Twin.Tests.Line;

/// <summary>The quality term of the live line twin: config, test-then-train on counter deltas, good-parts forecast, alert.</summary>
public sealed class LineQualityTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("edgetwin-linequality-");

    public void Dispose() => _dir.Delete(recursive: true);

    // One input x, frozen standardisation (mean 0, var 1), weight 2: balanced score = sigmoid(2x), calibrated = sigmoid(2x + logit prior).
    private string WriteModel(string name = "q.json", double learningRate = 0, double prior = 0.1, double priorAlpha = 0, string format = "edgetwin-online-logistic/2")
    {
        var json = string.Create(CultureInfo.InvariantCulture, $$$"""
            {"format":"{{{format}}}","input_width":1,"clip":5,"learning_rate":{{{learningRate}}},"l2":0,"weight_fail":1,"weight_pass":1,
             "members":[{"alpha":0,"columns":[0],"mean":[0],"var":[1],"weights":[2],"bias":0}],
             "mix":{"mode":"mean"},"decision":{"mode":"none","prior":{{{prior}}},"prior_alpha":{{{priorAlpha}}}}}
            """);
        var path = Path.Combine(_dir.FullName, name);
        File.WriteAllText(path, json);
        return path;
    }

    private static string Yaml(string quality) => $$"""
        line:
          id: q1
          tick: 1s
          micro_stop: 2m
          shift: { length: 8h, starts: ["06:00", "14:00", "22:00"] }
          buffers:
            - { id: B1, capacity: 10 }
          stations:
            - id: S1
              ideal_cycle_time: 10s
              output: B1
              signals:
                state: { device: plc1, metric: machine_state, map: { 1: running, 4: faulted } }
                good: { device: plc1, metric: good_parts }
                reject: { device: plc1, metric: reject_parts }
        {{quality}}
            - id: S2
              ideal_cycle_time: 10s
              inputs: [B1]
              signals:
                state: { device: plc2, metric: machine_state, map: { 1: running, 4: faulted } }
                good: { device: plc2, metric: good_parts }
                reject: { device: plc2, metric: reject_parts }
        """;

    private const string Quality = """
              quality:
                model: q.json
                window: 20
                inputs: [{ device: plc1, metric: process_temperature }]
        """;

    private (LineTwinConfig? Config, IReadOnlyList<ConfigDiagnostic> Problems) Parse(string quality)
    {
        var d = new ConfigDiagnostics();
        var c = LineTwinConfig.Parse(Yaml(quality), Path.Combine(_dir.FullName, "site.yaml"), d);
        return (c, d.Sorted());
    }

    [Fact]
    public void The_quality_block_resolves_the_model_beside_the_config_and_keeps_the_input_order()
    {
        var model = WriteModel();
        var (c, problems) = Parse(Quality);
        Assert.Empty(problems);
        var q = c!.Stations[0].Quality;
        Assert.NotNull(q);
        Assert.Equal(model, q.ModelPath);
        Assert.Equal(20, q.Window);
        Assert.Equal(("plc1", "process_temperature"), (q.Inputs[0].Device, q.Inputs[0].Metric));
        Assert.Null(c.Stations[1].Quality);
        Assert.Equal(1, q.LoadModel().InputWidth);
    }

    [Fact]
    public void Bad_quality_blocks_are_rejected_with_file_line_and_key()
    {
        // Missing file: names the resolved file and the key.
        var (c, problems) = Parse(Quality);
        Assert.Null(c);
        var p = Assert.Single(problems);
        Assert.Equal("line.stations[0].quality.model", p.Path);
        Assert.Equal(17, p.Line); // the model: line of the quality block
        Assert.Contains(Path.Combine(_dir.FullName, "q.json"), p.Message, StringComparison.Ordinal);
        Assert.Contains("not found", p.Message, StringComparison.Ordinal);

        // A file that is not a format-2 model: the model file's own key is named.
        WriteModel(format: "something-else");
        (c, problems) = Parse(Quality);
        p = Assert.Single(problems);
        Assert.Equal("line.stations[0].quality.model", p.Path);
        Assert.Contains("format", p.Message, StringComparison.Ordinal);
        Assert.Contains("q.json", p.Message, StringComparison.Ordinal);

        // Not JSON at all.
        File.WriteAllText(Path.Combine(_dir.FullName, "q.json"), "{ not json");
        (_, problems) = Parse(Quality);
        Assert.Contains("q.json", Assert.Single(problems).Message, StringComparison.Ordinal);

        // Inputs that do not match the model's width, a missing key, an unknown key.
        WriteModel();
        (_, problems) = Parse("""
                  quality:
                    model: q.json
                    inputs: [{ device: plc1, metric: process_temperature }, { device: plc1, metric: process_pressure }]
            """);
        p = Assert.Single(problems);
        Assert.Equal("line.stations[0].quality.inputs", p.Path);
        Assert.Contains("takes 1 inputs, 2 are listed", p.Message, StringComparison.Ordinal);
        (_, problems) = Parse("""
                  quality:
                    model: q.json
                    windw: 5
                    inputs: [{ device: plc1 }]
            """);
        Assert.Contains(problems, x => x.Path == "line.stations[0].quality.inputs[0].metric");
        Assert.Contains(problems, x => x.Path == "line.stations[0].quality.windw");
        (_, problems) = Parse("""
                  quality: { model: q.json }
            """);
        Assert.Contains(problems, x => x.Path == "line.stations[0].quality.inputs");
    }

    [Fact]
    public void Inspection_delay_is_read_in_parts_and_bounded_with_the_key_named()
    {
        WriteModel();
        var (c, problems) = Parse("""
                  quality:
                    model: q.json
                    inspection_delay_parts: 12
                    inputs: [{ device: plc1, metric: process_temperature }]
            """);
        Assert.Empty(problems);
        Assert.Equal(12, c!.Stations[0].Quality!.InspectionDelayParts);
        Assert.Equal(0, Parse(Quality).Config!.Stations[0].Quality!.InspectionDelayParts);

        (_, problems) = Parse("""
                  quality:
                    model: q.json
                    inspection_delay_parts: -1
                    inputs: [{ device: plc1, metric: process_temperature }]
            """);
        Assert.Equal("line.stations[0].quality.inspection_delay_parts", Assert.Single(problems).Path);

        // 60,000 parts × 20 inputs kept for their results is more than the bound: refused, with the largest delay allowed.
        var wide = string.Create(CultureInfo.InvariantCulture, $$$"""
            {"format":"edgetwin-online-logistic/2","input_width":20,"clip":5,"learning_rate":0,"l2":0,"weight_fail":1,"weight_pass":1,
             "members":[{"alpha":0,"columns":[0],"mean":[0],"var":[1],"weights":[2],"bias":0}],
             "mix":{"mode":"mean"},"decision":{"mode":"none","prior":0.1,"prior_alpha":0}}
            """);
        File.WriteAllText(Path.Combine(_dir.FullName, "q.json"), wide);
        var inputs = string.Join(", ", Enumerable.Range(0, 20).Select(i => $"{{ device: plc1, metric: x{i} }}"));
        (_, problems) = Parse($$"""
                  quality:
                    model: q.json
                    inspection_delay_parts: 60000
                    inputs: [{{inputs}}]
            """);
        var p = Assert.Single(problems);
        Assert.Equal("line.stations[0].quality.inspection_delay_parts", p.Path);
        Assert.Contains("at most 50000 parts", p.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_delayed_result_is_learned_with_the_inputs_of_the_part_it_belongs_to()
    {
        // Reference: the bench's protocol by hand — score part t on its inputs, learn the result of part t − 3 on part t − 3's.
        const int delay = 3;
        var path = WriteModel(learningRate: 0.5);
        var reference = EdgeTwin.Twin.Line.Quality.OnlineLogisticModel.Load(path);
        var station = new EdgeTwin.Twin.Line.Quality.StationQuality(EdgeTwin.Twin.Line.Quality.OnlineLogisticModel.Load(path), 1, window: 10, inspectionDelay: delay);
        var xs = Enumerable.Range(0, 60).Select(t => Math.Sin(t * 0.7) * 2).ToArray();
        var referenceScores = new List<double>();
        for (var t = 0; t < xs.Length; t++)
        {
            // Results: a part made hot (x > 1) fails; the counter reports it three parts later.
            var result = t >= delay && xs[t - delay] > 1;
            station.SetInput(0, xs[t]);
            station.OnParts(1, result);

            referenceScores.Add(reference.Calibrated(reference.Observe([xs[t]])));
            if (t >= delay)
            {
                reference.Learn([xs[t - delay]], result);
            }
        }

        Assert.Equal(delay, station.InspectionDelay);
        Assert.Equal(referenceScores.TakeLast(10).Average(), station.PredictedRate, 12);
        foreach (var probe in new[] { -2.0, 0.0, 1.5 })
        {
            Assert.Equal(reference.Observe([probe]), station.Model.Observe([probe]), 12);
        }

        // Learning on the wrong part's inputs (no delay) ends in another model: the delay is what makes them equal.
        var undelayed = new EdgeTwin.Twin.Line.Quality.StationQuality(EdgeTwin.Twin.Line.Quality.OnlineLogisticModel.Load(path), 1, window: 10);
        for (var t = 0; t < xs.Length; t++)
        {
            undelayed.SetInput(0, xs[t]);
            undelayed.OnParts(1, t >= delay && xs[t - delay] > 1);
        }

        Assert.NotEqual(reference.Observe([1.5]), undelayed.Model.Observe([1.5]), 6);
    }

    private sealed class Line
    {
        public required SeriesRegistry Registry { get; init; }
        public required LineTwinStage Stage { get; init; }
        public required RecordingEventSink Sink { get; init; }
        public required SeriesId[] S1 { get; init; } // state, good, reject, x
        public required SeriesId[] S2 { get; init; }
    }

    private Line Build(LineTwinConfig config)
    {
        var registry = new SeriesRegistry();
        SeriesId R(string device, string metric, MetricKind kind) => registry.GetOrAdd(new SeriesDescriptor(device, metric, "1", kind));
        var sink = new RecordingEventSink();
        return new Line
        {
            Registry = registry,
            Sink = sink,
            Stage = new LineTwinStage(config, registry, sink, NullLogger<LineTwinStage>.Instance, TimeSpan.FromSeconds(60), TimeSpan.FromHours(1)),
            S1 = [R("plc1", "machine_state", MetricKind.State), R("plc1", "good_parts", MetricKind.Counter), R("plc1", "reject_parts", MetricKind.Counter), R("plc1", "process_temperature", MetricKind.Gauge)],
            S2 = [R("plc2", "machine_state", MetricKind.State), R("plc2", "good_parts", MetricKind.Counter), R("plc2", "reject_parts", MetricKind.Counter)],
        };
    }

    private static readonly long T0 = new DateTimeOffset(new DateTime(2026, 11, 30, 7, 0, 0, DateTimeKind.Local)).ToUnixTimeMilliseconds();

    private static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    [Fact]
    public async Task Counter_deltas_are_scored_then_learned_with_their_labels()
    {
        WriteModel(prior: 0.1, priorAlpha: 0.1);
        var line = Build(Parse(Quality).Config!);
        var (st, good, rej, x) = (line.S1[0], line.S1[1], line.S1[2], line.S1[3]);
        await line.Stage.ProcessAsync(new Sample[] { new(st, T0, 1), new(x, T0, 0), new(good, T0, 100), new(rej, T0, 7) }, TestContext.Current.CancellationToken);
        var q = line.Stage.Quality(0)!;
        Assert.Equal(0, q.TotalParts); // the first readings are the counters' baselines
        Assert.True(double.IsNaN(q.PredictedRate));

        // 5 good parts at x = 0: each scored under prior 0.1 (calibrated = 0.1 exactly), then learned as a pass.
        await line.Stage.ProcessAsync(new Sample[] { new(good, T0 + 60_000, 105) }, TestContext.Current.CancellationToken);
        double prior = 0.1, sumP = 0;
        for (int k = 0; k < 5; k++)
        {
            sumP += Sigmoid(Math.Log(prior / (1 - prior)));
            prior *= 0.9; // EW fail rate, alpha 0.1, label 0
        }
        Assert.Equal(5, q.TotalParts);
        Assert.Equal(prior, q.Model.FailRate, 12);
        Assert.Equal(sumP / 5, q.PredictedRate, 12);
        Assert.Equal(0, q.ObservedRate);

        // x rises to 1; 3 good then 2 rejects: scored at x = 1, learned pass ×3 then fail ×2.
        await line.Stage.ProcessAsync(new Sample[] { new(x, T0 + 100_000, 1), new(good, T0 + 120_000, 108), new(rej, T0 + 120_000, 9) }, TestContext.Current.CancellationToken);
        for (int k = 0; k < 5; k++)
        {
            sumP += Sigmoid(2 + Math.Log(prior / (1 - prior)));
            prior = 0.9 * prior + (k >= 3 ? 0.1 : 0);
        }
        Assert.Equal(10, q.TotalParts);
        Assert.Equal(2, q.TotalRejects);
        Assert.Equal(prior, q.Model.FailRate, 12);
        Assert.Equal(sumP / 10, q.PredictedRate, 12);
        Assert.Equal(0.2, q.ObservedRate, 12);
        Assert.Equal(0.2, q.LongRunRate, 12);
    }

    [Fact]
    public async Task Learning_from_rejects_raises_the_score_of_similar_parts()
    {
        WriteModel(learningRate: 0.05, prior: 0.1);
        var line = Build(Parse(Quality).Config!);
        var (st, good, rej, x) = (line.S1[0], line.S1[1], line.S1[2], line.S1[3]);
        await line.Stage.ProcessAsync(new Sample[] { new(st, T0, 1), new(x, T0, 0.5), new(good, T0, 0), new(rej, T0, 0) }, TestContext.Current.CancellationToken);
        var model = line.Stage.Quality(0)!.Model;
        double before = model.Predict([0.5]);
        for (int k = 1; k <= 10; k++) await line.Stage.ProcessAsync(new Sample[] { new(rej, T0 + (k * 60_000), 5 * k) }, TestContext.Current.CancellationToken);
        Assert.True(model.Predict([0.5]) > before + 0.05, $"score at x = 0.5: {before} before, {model.Predict([0.5])} after 50 rejects");
    }

    // Runs n minutes of both stations: S1 makes `good`+`rejects` per minute at process value x, S2 8 good + 2 rejects.
    private static async Task Minutes(Line line, int from, int n, double x, int good, int rejects, long[] counters)
    {
        for (int m = from; m < from + n; m++)
        {
            long t = T0 + (m * 60_000L);
            counters[0] += good;
            counters[1] += rejects;
            counters[2] += 4;
            counters[3] += m % 5 == 0 ? 1 : 0;
            await line.Stage.ProcessAsync(new Sample[]
            {
                new(line.S1[0], t, 1), new(line.S1[3], t, x), new(line.S1[1], t, counters[0]), new(line.S1[2], t, counters[1]),
                new(line.S2[0], t, 1), new(line.S2[1], t, counters[2]), new(line.S2[2], t, counters[3]),
            }, TestContext.Current.CancellationToken);
        }
    }

    // Ten minutes of both stations at x = 1 (S1 4 good parts a minute, S2 4 good and a reject every 5 minutes): the last twin state.
    private async Task<(EdgeEvent State, long[] Counters)> TenMinutesAtX1()
    {
        WriteModel(prior: 0.1);
        var line = Build(Parse(Quality).Config!);
        var counters = new long[4];
        await Minutes(line, 0, 10, x: 1, good: 4, rejects: 0, counters);
        return (line.Sink.Events.Last(e => e.Source == "line/q1"), counters);
    }

    /// <summary>Each forecast family says where it ends as <c>horizon_end</c>, a UTC instant (the line: its shift's end).</summary>
    [Fact]
    public async Task Regression_forecasts_gave_their_horizon_under_three_names_in_three_units()
    {
        var (e, _) = await TenMinutesAtX1();
        var a = e.Attributes!;
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", a["horizon_end"]);
        var end = DateTimeOffset.Parse(a["horizon_end"], CultureInfo.InvariantCulture);
        Assert.Equal(DateTimeOffset.Parse(a["shift.end"], CultureInfo.InvariantCulture), end); // the same instant, in UTC
        Assert.True(end > e.Time);
    }

    [Fact]
    public async Task The_good_parts_forecast_uses_the_reject_rate_expected_ahead()
    {
        var (e, counters) = await TenMinutesAtX1();
        var a = e.Attributes!;
        double D(string k) => double.Parse(a[k], CultureInfo.InvariantCulture);

        // S1 has a model: its window rate is the predicted one (sigmoid(2 + logit 0.1) for every part), though no part was
        // rejected; for the parts to come that rate fades toward the long-run 0.1 over the window (20 parts: 36 scored,
        // fewer than two windows to tell how long a rate persists), so over the rest of the shift it is nearly 0.1.
        double predicted = Sigmoid(2 + Math.Log(0.1 / 0.9));
        Assert.Equal(predicted, D("quality.predicted_reject_rate.S1"), 12);
        Assert.Equal(0, D("quality.observed_reject_rate.S1"));
        Assert.False(a.ContainsKey("quality.predicted_reject_rate.S2"));
        double partsAhead = D("forecast.end_of_shift") - D("good"), persistence = 20;
        double ahead = 0.1 + ((predicted - 0.1) * persistence * (1 - Math.Exp(-partsAhead / persistence)) / partsAhead);
        Assert.Equal(ahead, D("quality.reject_rate_ahead.S1"), 9);
        // S2 has none: its observed share of rejects this shift (the first reading is the baseline; no earlier shift).
        double s2 = (double)(counters[3] - 1) / (counters[2] - 4 + counters[3] - 1);
        Assert.Equal(s2, D("quality.reject_rate_ahead.S2"), 12);
        double share = (1 - ahead) * (1 - s2);
        Assert.Equal(share, D("forecast.good_share"), 9);
        double soFar = D("good");
        Assert.Equal(soFar + ((D("forecast.end_of_shift") - soFar) * share), D("forecast.good_end_of_shift"), 6);
        Assert.Equal(soFar + ((D("forecast.p5") - soFar) * share), D("forecast.good_p5"), 6);
        Assert.Equal(soFar + ((D("forecast.p95") - soFar) * share), D("forecast.good_p95"), 6);
        Assert.True(D("forecast.good_end_of_shift") < D("forecast.end_of_shift") * (1 - s2));
        // The summary says why fewer good parts than made: the rate each station's rejects are expected at.
        Assert.EndsWith(string.Create(CultureInfo.InvariantCulture, $", {D("forecast.good_end_of_shift"):0} good (rejects expected at S1 {ahead * 100:0.#} %, S2 {s2 * 100:0.#} %)"), e.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// A station without a quality model early in a shift: its share so far (1 reject in the first 13 parts, 7.7 %) is
    /// weighed with 500 parts of the earlier shift at that shift's share (83 in 1,759, 4.7 %), not taken for every part
    /// to the end of the shift. Regression: the demo read "rejects expected at S3 10 %" a minute into its books (1 reject
    /// in 10 parts) and forecast 10 % fewer good parts for the whole shift. In the first shift (no history) the share stands.
    /// </summary>
    [Fact]
    public async Task Regression_a_stations_first_parts_of_a_shift_set_its_reject_rate_for_the_whole_shift()
    {
        WriteModel(prior: 0.1);
        var line = Build(Parse(Quality).Config!);
        var counters = new long[4];
        await Minutes(line, 0, 10, x: 0, good: 4, rejects: 0, counters);
        var first = line.Sink.Events.Last(e => e.Source == "line/q1").Attributes!;
        double F(string k) => double.Parse(first[k], CultureInfo.InvariantCulture);
        Assert.Equal(F("rejects.S2") / (F("good.S2") + F("rejects.S2")), F("quality.reject_rate_ahead.S2"), 12);

        // To 13:59, then three minutes of the 14:00 shift.
        await Minutes(line, 10, 413, x: 0, good: 4, rejects: 0, counters);
        var a = line.Sink.Events.Last(e => e.Source == "line/q1").Attributes!;
        double D(string k) => double.Parse(a[k], CultureInfo.InvariantCulture);
        Assert.StartsWith("2026-11-30T14:00:00", a["shift.start"], StringComparison.Ordinal);
        double made = D("good.S2") + D("rejects.S2"), rejects = D("rejects.S2");
        double before = counters[2] + counters[3] - 5 - made, rejectedBefore = counters[3] - 1 - rejects; // less the baselines
        Assert.Equal((13, 1, 1759, 83), ((int)made, (int)rejects, (int)before, (int)rejectedBefore));
        double expected = (rejects + (500 * rejectedBefore / before)) / (made + 500);
        Assert.Equal(expected, D("quality.reject_rate_ahead.S2"), 12);
        Assert.InRange(D("quality.reject_rate_ahead.S2"), 0.047, 0.049);
    }

    /// <summary>
    /// The rate of a station without a model by hand: its shift share alone without history or a stated rate; a stated
    /// <c>reject_rate</c> of 0.5 % weighs 100 parts (1 reject in 10: 1.5 / 110 = 1.4 %, not 10 %); earlier shifts weigh
    /// up to 500 parts at their share.
    /// </summary>
    [Fact]
    public void A_stations_reject_rate_weighs_its_shift_with_earlier_shifts_and_its_stated_rate()
    {
        var learner = new EdgeTwin.Twin.Line.Learning.StationLearner(new EdgeTwin.Twin.Line.StationSpec("S1", 10, 0, 0, [], null), 120);
        Assert.Equal(0, learner.RejectRate(0, 0));
        Assert.Equal(0.005, learner.RejectRate(0, 0, configured: 0.005), 12);
        learner.OnInspected(9, rejected: false);
        learner.OnInspected(1, rejected: true);
        Assert.Equal(0.1, learner.RejectRate(10, 1), 12);
        Assert.Equal(1.5 / 110, learner.RejectRate(10, 1, configured: 0.005), 12);

        // A later shift: 990 more parts, 10 rejects, of which the shift so far has 20 parts and 2 rejects.
        learner.OnInspected(981, rejected: false);
        learner.OnInspected(9, rejected: true);
        Assert.Equal((learner.Inspected, learner.Rejected), (1000, 10));
        Assert.Equal((2 + (500 * 8.0 / 980)) / 520, learner.RejectRate(20, 2), 12);
        Assert.Equal((2 + (500 * 8.0 / 980) + 0.5) / 620, learner.RejectRate(20, 2, configured: 0.005), 12);
    }

    /// <summary>
    /// The rate ahead by hand (window 10, long-run rate 0.1 held): before two windows the present rate fades over the
    /// window (10 parts); a rate that keeps its deviation persists (ρ at lag 10 is 1, capped at 0.999); a rate that flips
    /// every window has ρ &lt; 0 (floored at 0.001: 10 / ln 1000 = 1.45 parts) and is the long-run one over a shift.
    /// </summary>
    [Fact]
    public void The_rate_ahead_fades_from_the_window_to_the_long_run_over_how_long_the_rate_persists()
    {
        var path = WriteModel(prior: 0.1);
        var q = new EdgeTwin.Twin.Line.Quality.StationQuality(EdgeTwin.Twin.Line.Quality.OnlineLogisticModel.Load(path), 1, window: 10);
        double high = Sigmoid(2 + Math.Log(0.1 / 0.9)), low = Sigmoid(-2 + Math.Log(0.1 / 0.9));
        static double Faded(double now, double parts, double l) => 0.1 + ((now - 0.1) * l * (1 - Math.Exp(-parts / l)) / parts);

        Assert.True(double.IsNaN(q.RateAhead(100)));
        q.SetInput(0, 1);
        q.OnParts(5, rejected: false);
        Assert.Equal(10, q.PersistenceParts);
        Assert.Equal(Faded(high, 100, 10), q.RateAhead(100), 12);
        Assert.Equal(high, q.RateAhead(0), 12);

        q.OnParts(95, rejected: false);
        Assert.Equal(-10 / Math.Log(0.999), q.PersistenceParts, 6);
        Assert.Equal(Faded(high, 1000, -10 / Math.Log(0.999)), q.RateAhead(1000), 12);

        var flipping = new EdgeTwin.Twin.Line.Quality.StationQuality(EdgeTwin.Twin.Line.Quality.OnlineLogisticModel.Load(path), 1, window: 10);
        for (int k = 0; k < 20; k++)
        {
            flipping.SetInput(0, k % 2 == 0 ? 1 : -1);
            flipping.OnParts(10, rejected: false);
        }
        Assert.Equal(10 / Math.Log(1000), flipping.PersistenceParts, 6);
        Assert.Equal(low, flipping.PredictedRate, 12);
        Assert.Equal(Faded(low, 5000, 10 / Math.Log(1000)), flipping.RateAhead(5000), 12);
        Assert.Equal(0.1, flipping.RateAhead(5000), 3);
    }

    // Regression: the summary showed the line's OEE next to the output station's A, P and Q, which do not multiply out to it.
    [Fact]
    public async Task The_line_summary_shows_the_line_factors_that_multiply_out_to_its_OEE()
    {
        var (e, _) = await TenMinutesAtX1();
        double D(string k) => double.Parse(e.Attributes![k], CultureInfo.InvariantCulture);

        Assert.Equal(D("oee.line"), D("availability.line") * D("performance.line") * D("quality.line"), 12);
        Assert.NotEqual(D("quality.line"), D("quality.S1")); // the line is seen at its output station (S2, with rejects), not at S1
        string Two(double v) => v.ToString("0.00", CultureInfo.InvariantCulture);
        Assert.Contains($"OEE {Two(D("oee.line"))} = A {Two(D("availability.line"))} × P {Two(D("performance.line"))} × Q {Two(D("quality.line"))}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_drift_that_raises_rejects_publishes_one_quality_prediction_per_episode()
    {
        WriteModel(prior: 0.02);
        var line = Build(Parse(Quality).Config!);
        var counters = new long[4];
        IEnumerable<EdgeEvent> QualityEvents() => line.Sink.Events.Where(e => e.Source == "line/q1/quality/S1" && e.Severity == EventSeverity.Warning);

        // Healthy: x = 0 (predicted 2 %), one reject in 50 parts.
        for (int m = 0; m < 40; m++) await Minutes(line, m, 1, x: 0, good: m % 10 == 9 ? 4 : 5, rejects: m % 10 == 9 ? 1 : 0, counters);
        Assert.Empty(QualityEvents());
        Assert.NotEmpty(line.Sink.Events);

        // Drift: x = 2, 2 rejects in 5 parts; the warning comes once, not per sample or per minute.
        await Minutes(line, 40, 30, x: 2, good: 3, rejects: 2, counters);
        var e = Assert.Single(QualityEvents());
        Assert.Equal(EdgeEventKind.Prediction, e.Kind);
        Assert.Equal(EventSeverity.Warning, e.Severity);
        Assert.Contains("parts likely to fail inspection", e.Message, StringComparison.Ordinal);
        double predicted = double.Parse(e.Attributes!["predicted_reject_rate"], CultureInfo.InvariantCulture);
        double longRun = double.Parse(e.Attributes["long_run_reject_rate"], CultureInfo.InvariantCulture);
        Assert.True(predicted > 2 * longRun && predicted > 0.05, $"{predicted} vs {longRun}");

        // Back to healthy (re-armed), then a second drift: a second warning.
        await Minutes(line, 70, 30, x: 0, good: 5, rejects: 0, counters);
        Assert.Single(QualityEvents());
        await Minutes(line, 100, 30, x: 2, good: 3, rejects: 2, counters);
        Assert.Equal(2, QualityEvents().Count());
    }

    [Fact]
    public async Task A_healthy_station_raises_no_quality_prediction()
    {
        WriteModel(prior: 0.02);
        var line = Build(Parse(Quality).Config!);
        var counters = new long[4];
        for (int m = 0; m < 120; m++) await Minutes(line, m, 1, x: 0.1 * Math.Sin(m), good: m % 10 == 9 ? 4 : 5, rejects: m % 10 == 9 ? 1 : 0, counters);
        Assert.DoesNotContain(line.Sink.Events, e => e.Source.Contains("/quality/", StringComparison.Ordinal));
        var a = line.Sink.Events.Last().Attributes!;
        Assert.InRange(double.Parse(a["quality.predicted_reject_rate.S1"], CultureInfo.InvariantCulture), 0.01, 0.04);
    }

    private static SeriesId Series(Line line, string device, string metric, MetricKind kind) =>
        line.Registry.GetOrAdd(new SeriesDescriptor(device, metric, "1", kind));

    // Both stations' models take the same process value (a coolant temperature): each must get it.
    [Fact]
    public async Task Regression_a_process_value_in_two_stations_quality_models_reached_only_the_last_one()
    {
        WriteModel(prior: 0.1);
        var yaml = Yaml(Quality) + "\n" + """
                  quality:
                    model: q.json
                    window: 20
                    inputs: [{ device: plc1, metric: process_temperature }]
            """;
        var d = new ConfigDiagnostics();
        var config = LineTwinConfig.Parse(yaml, Path.Combine(_dir.FullName, "site.yaml"), d);
        Assert.Empty(d.Sorted());
        Assert.NotNull(config!.Stations[1].Quality);
        var line = Build(config);
        var counters = new long[4];
        await Minutes(line, 0, 10, x: 2, good: 4, rejects: 0, counters);

        // Every part scored at x = 2: sigmoid(2·2 + logit 0.1) at both stations (S1 got nothing, i.e. the mean 0: 0.1).
        double expected = Sigmoid(4 + Math.Log(0.1 / 0.9));
        Assert.Equal(expected, line.Stage.Quality(0)!.PredictedRate, 9);
        Assert.Equal(expected, line.Stage.Quality(1)!.PredictedRate, 9);
        Assert.False(line.Sink.Events.Last(e => e.Source == "line/q1").Attributes!.ContainsKey("quality.missing_inputs.S1"));
    }

    [Fact]
    public async Task Regression_a_quality_input_whose_sensor_went_silent_or_out_of_range_scored_every_later_part_with_its_last_reading()
    {
        WriteModel(prior: 0.1);
        var line = Build(Parse(Quality).Config!);
        var (st, good, rej, x) = (line.S1[0], line.S1[1], line.S1[2], line.S1[3]);
        var ct = TestContext.Current.CancellationToken;
        double hot = Sigmoid(4 + Math.Log(0.1 / 0.9)), unknown = 0.1; // x = 2; x missing (the model's mean, 0)

        // The temperature read 2 once, then its sensor went silent; the machine made 4 good parts a minute for an hour.
        await line.Stage.ProcessAsync(new Sample[] { new(st, T0, 1), new(x, T0, 2), new(good, T0, 0), new(rej, T0, 0), new(line.S2[0], T0, 1) }, ct);
        for (int m = 1; m <= 60; m++)
        {
            long t = T0 + (m * 60_000L);
            await line.Stage.ProcessAsync(new Sample[] { new(st, t, 1), new(good, t, 4 * m), new(rej, t, 0), new(line.S2[0], t, 1) }, ct);
        }
        var q = line.Stage.Quality(0)!;
        Assert.Equal(unknown, q.PredictedRate, 9); // the last 20 parts, made 55 min after the last reading
        var a = line.Sink.Events.Last(e => e.Source == "line/q1").Attributes!;
        Assert.Equal("plc1/process_temperature", a["quality.missing_inputs.S1"]);

        // Read again: scored with it; then read out of range: missing at once, not the last good value.
        long t1 = T0 + (61 * 60_000L);
        await line.Stage.ProcessAsync(new Sample[] { new(x, t1, 2), new(good, t1, 260) }, ct);
        Assert.Equal(hot, q.PredictedRate, 9);
        long t2 = t1 + 60_000;
        await line.Stage.ProcessAsync(new Sample[] { new(x, t2, 900, SampleQuality.OutOfRange), new(good, t2, 280) }, ct);
        Assert.Equal(unknown, q.PredictedRate, 9);
        Assert.True(q.InputMissing(0, t2));
    }

    [Fact]
    public async Task Regression_a_reject_counter_on_another_plc_not_reporting_gave_quality_1_and_taught_the_model_that_every_part_passes()
    {
        WriteModel(prior: 0.1, learningRate: 0.05);
        // The rejects come from a vision system with its own PLC.
        var yaml = Yaml(Quality)
            .Replace("reject: { device: plc1, metric: reject_parts }", "reject: { device: vision1, metric: reject_s1 }", StringComparison.Ordinal)
            .Replace("reject: { device: plc2, metric: reject_parts }", "reject: { device: vision1, metric: reject_s2 }", StringComparison.Ordinal);
        var d = new ConfigDiagnostics();
        var line = Build(LineTwinConfig.Parse(yaml, Path.Combine(_dir.FullName, "site.yaml"), d)!);
        var r1 = Series(line, "vision1", "reject_s1", MetricKind.Counter);
        var r2 = Series(line, "vision1", "reject_s2", MetricKind.Counter);
        var ct = TestContext.Current.CancellationToken;
        var counters = new long[4];

        // Ten minutes with the vision PLC unreachable: the machines' PLCs count good parts.
        await Minutes(line, 0, 10, x: 0, good: 4, rejects: 1, counters);
        var e = line.Sink.Events.Last(e => e.Source == "line/q1");
        var a = e.Attributes!;
        Assert.False(a.ContainsKey("quality.S1"), $"quality.S1 = {a.GetValueOrDefault("quality.S1")} without a reject count");
        Assert.False(a.ContainsKey("quality.S2"));
        Assert.False(a.ContainsKey("quality.line"));
        Assert.False(a.ContainsKey("performance.line"));
        Assert.True(a.ContainsKey("oee.line")); // PRI · good / PBT needs no reject count
        Assert.Equal("S1,S2", a["quality.no_data"]);
        Assert.Contains("no reject counts from S1,S2 (quality no data)", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, line.Stage.Quality(0)!.TotalParts); // no pass-only learning

        // The vision PLC reports (its first reading a baseline): the books and the model go on with both counters; the
        // rejects made while it was unreachable are lost (76 good, 9 rejects).
        for (int m = 10; m < 20; m++)
        {
            long t = T0 + (m * 60_000L);
            counters[0] += 4;
            await line.Stage.ProcessAsync(new Sample[]
            {
                new(line.S1[0], t, 1), new(line.S1[3], t, 0), new(line.S1[1], t, counters[0]), new(r1, t, m - 10),
                new(line.S2[0], t, 1), new(line.S2[1], t, counters[2] += 4), new(r2, t, 0),
            }, ct);
        }
        a = line.Sink.Events.Last(e => e.Source == "line/q1").Attributes!;
        Assert.False(a.ContainsKey("quality.no_data"));
        Assert.Equal(76.0 / 85, double.Parse(a["quality.S1"], CultureInfo.InvariantCulture), 9);
        Assert.True(a.ContainsKey("quality.line"));
        Assert.Equal(45, line.Stage.Quality(0)!.TotalParts);
    }

    [Fact]
    public async Task Regression_the_twin_state_and_the_shift_report_gave_reject_rates_but_no_reject_counts()
    {
        WriteModel(prior: 0.1);
        var line = Build(Parse(Quality).Config!);
        var counters = new long[4];
        // 13:50–14:10: S1 4 good and 1 reject a minute, S2 4 good and a reject every 5 minutes; the 13:50 readings are baselines.
        await Minutes(line, 410, 20, x: 0, good: 4, rejects: 1, counters);

        var report = Assert.Single(line.Sink.Events, e => e.Source == "line/q1/shift");
        var a = report.Attributes!;
        Assert.Equal("36", a["good.S1"]);
        Assert.Equal("9", a["rejects.S1"]);
        Assert.Equal("36", a["good.S2"]);
        Assert.Equal("1", a["rejects.S2"]);
        Assert.Equal("1", a["rejects"]); // the line's, at its output station S2
        Assert.Contains("36 good, 1 rejected", report.Message, StringComparison.Ordinal);

        var state = line.Sink.Events.Last(e => e.Source == "line/q1").Attributes!;
        Assert.Equal(state["good"], state["good.S2"]);
        Assert.True(state.ContainsKey("rejects.S1"));
    }

    [Fact]
    public async Task Regression_the_parts_likely_to_fail_inspection_warning_never_said_when_it_was_over()
    {
        WriteModel(prior: 0.02);
        var line = Build(Parse(Quality).Config!);
        var counters = new long[4];
        List<EdgeEvent> Episode() => [.. line.Sink.Events.Where(e => e.Source == "line/q1/quality/S1")];

        // Healthy, then a worn tool (x = 2, 2 rejects in 5 parts): the warning, active.
        for (int m = 0; m < 40; m++) await Minutes(line, m, 1, x: 0, good: m % 10 == 9 ? 4 : 5, rejects: m % 10 == 9 ? 1 : 0, counters);
        await Minutes(line, 40, 30, x: 2, good: 3, rejects: 2, counters);
        var warning = Assert.Single(Episode());
        Assert.Equal(("active", EventSeverity.Warning), (warning.Attributes!["state"], warning.Severity));

        // The tool changed (x = 0): the predicted rate falls back, and the same source says the episode is over.
        await Minutes(line, 70, 30, x: 0, good: 5, rejects: 0, counters);
        var events = Episode();
        Assert.Equal(2, events.Count);
        var end = events[1];
        Assert.Equal(("resolved", EventSeverity.Info, EdgeEventKind.Prediction), (end.Attributes!["state"], end.Severity, end.Kind));
        Assert.Contains("resolved", end.Message, StringComparison.Ordinal);
        double predicted = double.Parse(end.Attributes["predicted_reject_rate"], CultureInfo.InvariantCulture);
        double longRun = double.Parse(end.Attributes["long_run_reject_rate"], CultureInfo.InvariantCulture);
        Assert.True(predicted < 1.5 * longRun || predicted < 0.05, $"{predicted} vs {longRun}");
        Assert.True(end.Time > warning.Time);
    }

    [Fact]
    public async Task A_wide_model_names_its_first_five_missing_inputs_and_counts_the_rest()
    {
        File.WriteAllText(Path.Combine(_dir.FullName, "q.json"), """
            {"format":"edgetwin-online-logistic/2","input_width":8,"clip":5,"learning_rate":0,"l2":0,"weight_fail":1,"weight_pass":1,
             "members":[{"alpha":0,"columns":[0],"mean":[0],"var":[1],"weights":[2],"bias":0}],
             "mix":{"mode":"mean"},"decision":{"mode":"none","prior":0.1,"prior_alpha":0}}
            """);
        var inputs = string.Join(", ", Enumerable.Range(0, 8).Select(i => $"{{ device: plc1, metric: x{i} }}"));
        var line = Build(Parse($$"""
                  quality:
                    model: q.json
                    inputs: [{{inputs}}]
            """).Config!);
        var counters = new long[4];
        await Minutes(line, 0, 3, x: 0, good: 4, rejects: 0, counters); // x0..x7 never read
        var a = line.Sink.Events.Last(e => e.Source == "line/q1").Attributes!;
        Assert.Equal("plc1/x0,plc1/x1,plc1/x2,plc1/x3,plc1/x4 (+3 more)", a["quality.missing_inputs.S1"]);
    }
}
