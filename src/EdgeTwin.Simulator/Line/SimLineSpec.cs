using EdgeTwin.Simulator.Physics;

namespace EdgeTwin.Simulator.Line;

/// <summary>One machine of the simulated serial line (hidden figures the twin must learn or is told).</summary>
/// <param name="Id">Station id, e.g. <c>S3</c>.</param>
/// <param name="IdealCycleSeconds">The nameplate (ideal) cycle time the site config states.</param>
/// <param name="SpeedLoss">Hidden: the mean actual cycle is ideal × (1 + speed loss).</param>
/// <param name="CycleCv">Hidden: coefficient of variation of the actual cycle time (gamma distributed).</param>
/// <param name="MtbfSeconds">Mean operating time between breakdowns (operation-dependent, exponential); 0 = never.</param>
/// <param name="MttrSeconds">Mean repair time; a breakdown lasts at least 1.1 × the micro-stop limit (so it counts as a breakdown).</param>
/// <param name="JamEverySeconds">Mean operating time between jams (micro-stops); 0 = none.</param>
/// <param name="ToolLifeParts">Parts between tool changes (a setup); 0 = no tool wear.</param>
/// <param name="SetupSeconds">Duration of a tool change.</param>
/// <param name="RejectBase">Reject probability with a fresh tool at the nominal process value.</param>
/// <param name="Machine">Id of a site machine (bearing-wear drive) that powers this station: when it fails the station is down.</param>
public sealed record SimStationSpec(
    string Id,
    double IdealCycleSeconds,
    double SpeedLoss,
    double CycleCv,
    double MtbfSeconds,
    double MttrSeconds,
    double JamEverySeconds,
    int ToolLifeParts,
    double SetupSeconds,
    double RejectBase,
    string? Machine = null)
{
    /// <summary>The shortest repair: 10 % over the micro-stop limit, so every breakdown is clearly one.</summary>
    public static double ShortestRepair(double microStopLimitSeconds) => 1.1 * microStopLimitSeconds;

    /// <summary>
    /// The station's isolated production rate (parts per second when never starved or blocked): the actual
    /// cycle stretched by the expected breakdown, jam and setup time per part. The truth the bottleneck is judged by.
    /// </summary>
    public double IsolatedRate(double microStopLimitSeconds)
    {
        var cycle = IdealCycleSeconds * (1 + SpeedLoss);
        var perPart = cycle;
        if (MtbfSeconds > 0)
        {
            perPart += cycle / MtbfSeconds * Math.Max(MttrSeconds, ShortestRepair(microStopLimitSeconds));
        }

        if (JamEverySeconds > 0)
        {
            perPart += cycle / JamEverySeconds * SimLine.MeanJamShare * microStopLimitSeconds;
        }

        if (ToolLifeParts > 0)
        {
            perPart += SetupSeconds / ToolLifeParts;
        }

        return 1 / perPart;
    }
}

/// <summary>
/// A serial line S1 → B1 → S2 → … → Sn: the first station is never starved, the last never blocked.
/// Ids of the buffers are <c>B1…B(n−1)</c>.
/// </summary>
/// <param name="Id">Line id (the twin's <c>line.id</c>).</param>
/// <param name="Stations">Stations in flow order.</param>
/// <param name="BufferCapacities">One per gap between stations.</param>
/// <param name="MicroStopLimitSeconds">Stops shorter than this are micro-stops (the twin's <c>micro_stop</c>).</param>
/// <param name="MarginPerUnit">Contribution margin of one good unit (the twin's <c>margin_per_unit</c>).</param>
public sealed record SimLineSpec(
    string Id,
    IReadOnlyList<SimStationSpec> Stations,
    IReadOnlyList<int> BufferCapacities,
    double MicroStopLimitSeconds = 20,
    double MarginPerUnit = 0.4)
{
    /// <summary>The station with the lowest isolated rate (the true bottleneck of a serial line by construction).</summary>
    public string TrueBottleneck => Stations.MinBy(s => s.IsolatedRate(MicroStopLimitSeconds))!.Id;

    /// <summary>
    /// A packaging line (filler, capper, labeller, packer, …) of <paramref name="stations"/> machines: cycle times of
    /// a few seconds, breakdowns every several minutes, jams, tool wear with drift that causes rejects at the
    /// capper (S2). One station, picked by the seed, is the clear bottleneck (its cycle 30–40 % longer than the others').
    /// <paramref name="timeFactor"/> scales every duration (0.5 = twice as fast, for tests).
    /// </summary>
    public static SimLineSpec Packaging(int stations, int seed, double timeFactor = 1, IReadOnlyList<string>? machines = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(stations, 2);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(timeFactor);
        var rng = new SimRandom(seed ^ 0x11e5);
        var bottleneck = 1 + rng.Next(0, stations - 1); // never the first: its upstream buffer shows the queue
        var list = new List<SimStationSpec>(stations);
        for (var i = 0; i < stations; i++)
        {
            var ideal = Math.Round(rng.Uniform(1.8, 2.1) * (i == bottleneck ? rng.Uniform(1.3, 1.4) : 1), 2);
            list.Add(new SimStationSpec(
                Id: $"S{i + 1}",
                IdealCycleSeconds: ideal * timeFactor,
                SpeedLoss: rng.Uniform(0.02, 0.08),
                CycleCv: rng.Uniform(0.05, 0.15),
                MtbfSeconds: rng.Uniform(600, 1200) * timeFactor,
                MttrSeconds: rng.Uniform(40, 80) * timeFactor,
                JamEverySeconds: rng.Uniform(150, 300) * timeFactor,
                ToolLifeParts: i == 1 ? 400 : 0,
                SetupSeconds: i == 1 ? 60 * timeFactor : 0,
                RejectBase: rng.Uniform(0.003, 0.01),
                Machine: machines is not null && i >= 1 && i - 1 < machines.Count ? machines[i - 1] : null));
        }

        return new SimLineSpec("line1", list, [.. Enumerable.Repeat(20, stations - 1)], MicroStopLimitSeconds: 20 * timeFactor);
    }
}
