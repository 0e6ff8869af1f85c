using EdgeTwin.Twin.Line;

namespace EdgeTwin.Twin.Tests.Line;

public sealed class BottleneckTests
{
    private readonly ITestOutputHelper _out;

    public BottleneckTests(ITestOutputHelper output) => _out = output;

    [Fact]
    public void Active_periods_by_hand()
    {
        var d = new ActivePeriodBottleneck(["A", "B"]);
        // A: active 0–10, 20–30 (mean 10). B: active 0–25 (mean 25) → B is the bottleneck.
        d.OnState(0, 0, true); d.OnState(1, 0, true);
        d.OnState(0, 10, false); d.OnState(0, 20, true);
        d.OnState(1, 25, false); d.OnState(0, 30, false);
        var r = d.Analyse(30);
        Assert.Equal("B", r.Bottleneck);
        Assert.Equal(10, r.Stations[0].MeanActiveSeconds, 9);
        Assert.Equal(25, r.Stations[1].MeanActiveSeconds, 9);
        Assert.True(r.Stations[1].SoleShare + r.Stations[1].ShiftingShare > r.Stations[0].SoleShare);
    }

    [Fact]
    public void The_slow_station_of_a_simulated_line_is_the_bottleneck()
    {
        var line = LineSpec.Serial([("S1", 30, 4 * 3600, 300), ("S2", 30, 4 * 3600, 300), ("S3", 40, 4 * 3600, 300), ("S4", 30, 4 * 3600, 300)], [10, 10, 10], cycleTimeCv: 0.1);
        var sim = new LineSimulator(line);
        var d = new ActivePeriodBottleneck(line.Stations.Select(s => s.Id).ToArray());
        sim.Reset(3);
        sim.Advance(8 * 3600, d.ObserverFor(1.0));
        var r = d.Analyse(8 * 3600);
        foreach (var s in r.Stations) _out.WriteLine($"{s.Station}: mean active {s.MeanActiveSeconds:F0} s, sole {s.SoleShare:P1}, shifting {s.ShiftingShare:P1}");
        Assert.Equal("S3", r.Bottleneck);
        Assert.Equal("S3", r.Stations.MaxBy(s => s.SoleShare)!.Station);
    }

    /// <summary>
    /// Randomised lines (4–10 stations, cycle times 20–40 s with 10 % noise, MTBF 1–6 h, MTTR 2–15 min,
    /// buffers 3–20) where one station's isolated capacity e/c is at least 10 % below every other's: the
    /// detected bottleneck must be that station in ≥ 90 % of lines.
    /// </summary>
    [Fact]
    public void Detected_bottleneck_matches_the_true_one_in_at_least_90_percent_of_random_lines()
    {
        var rnd = new Random(20261130);
        int lines = 60, hits = 0;
        for (int k = 0; k < lines; k++)
        {
            int n = rnd.Next(4, 11);
            var st = new (string, double, double, double)[n];
            for (int i = 0; i < n; i++)
                st[i] = ($"S{i + 1}", 20 + 20 * rnd.NextDouble(), 3600 * (1 + 5 * rnd.NextDouble()), 60 * (2 + 13 * rnd.NextDouble()));
            int truth = rnd.Next(n);
            // Capacity of a station alone: parts per second = e / c with e = MTBF / (MTBF + MTTR).
            double Cap(int i) => st[i].Item3 / (st[i].Item3 + st[i].Item4) / st[i].Item2;
            double othersMin = Enumerable.Range(0, n).Where(i => i != truth).Min(Cap);
            // Slow the true bottleneck so that its capacity is 10–30 % below the next slowest.
            double target = othersMin * (0.7 + 0.2 * rnd.NextDouble());
            st[truth].Item2 = st[truth].Item3 / (st[truth].Item3 + st[truth].Item4) / target;
            var buffers = Enumerable.Range(0, n - 1).Select(_ => rnd.Next(3, 21)).ToArray();
            var line = LineSpec.Serial(st, buffers, cycleTimeCv: 0.1);
            var sim = new LineSimulator(line);
            var d = new ActivePeriodBottleneck(line.Stations.Select(s => s.Id).ToArray());
            sim.Reset((ulong)k + 1);
            sim.Advance(8 * 3600, d.ObserverFor(1.0));
            var r = d.Analyse(8 * 3600);
            bool hit = r.Bottleneck == st[truth].Item1;
            if (hit) hits++;
            else _out.WriteLine($"line {k}: {n} stations, true {st[truth].Item1}, detected {r.Bottleneck}");
        }
        double rate = hits / (double)lines;
        _out.WriteLine($"bottleneck detected correctly in {hits}/{lines} = {rate:P1} of random lines");
        Assert.True(rate >= 0.9, $"only {rate:P1}");
    }
}
