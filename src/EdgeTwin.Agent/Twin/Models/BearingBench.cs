using System.Globalization;
using System.Text;
using System.Text.Json;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Twin.Models;
using EdgeTwin.Twin.Models.Maintenance;

namespace EdgeTwin.Agent.Twin.Models;

/// <summary>What <c>edgetwin bench bearing</c> simulates.</summary>
public enum BenchAsset
{
    /// <summary>Process machines: motors at rated speed under a process load with knocks.</summary>
    Machine,

    /// <summary>Cooling-unit fans: speed following the room's daily heat load, load by the fan law, no knocks.</summary>
    Fan,
}

/// <summary>Settings of <c>edgetwin bench bearing</c>.</summary>
/// <param name="Machines">Machines that get a bearing defect (random onset, then growth to failure).</param>
/// <param name="Healthy">Machines whose bearing never develops a defect.</param>
/// <param name="Days">Simulated days per machine.</param>
/// <param name="Seed">Seed of the machine draws (specs, onsets, noise).</param>
public sealed record BearingBenchOptions(int Machines, int Healthy, double Days, int Seed)
{
    /// <summary>Simulation step (and sample period fed to the monitor).</summary>
    public TimeSpan Step { get; init; } = TimeSpan.FromSeconds(10);

    public double Threshold { get; init; } = 0.7;

    public TimeSpan Horizon { get; init; } = TimeSpan.FromHours(48);

    /// <summary>Warning the issue asks for: a prediction at least this long before the failure.</summary>
    public TimeSpan RequiredLead { get; init; } = TimeSpan.FromHours(24);

    public BenchAsset Asset { get; init; } = BenchAsset.Machine;

    /// <summary>Fans only: every fan's duty instead of the drawn one (mean 55-80 % of rated, ± 10-20 % over the day).</summary>
    public FanDutyOverride FanDuty { get; init; } = FanDutyOverride.Drawn;
}

/// <summary>
/// What the fans of a bench run do instead of their drawn duty: a mean speed and/or a daily swing (null: drawn). The
/// draws are made either way, so a seed gives the same fans (sizes, onsets, lifetimes) with only their duty changed.
/// </summary>
public sealed record FanDutyOverride(double? MeanSpeed, double? DailySwing)
{
    public static readonly FanDutyOverride Drawn = new(null, null);

    public bool IsDrawn => MeanSpeed is null && DailySwing is null;

    public FanDuty Apply(double drawnMean, double drawnSwing) => new(MeanSpeed ?? drawnMean, DailySwing ?? drawnSwing);

    /// <summary>", fans at 40 % of rated speed, ± 0 % over the day" (drawn parts say so); empty when nothing is set.</summary>
    public string Describe() => IsDrawn ? "" : string.Create(CultureInfo.InvariantCulture,
        $", fans at {(MeanSpeed is { } m ? $"{m * 100:0} %" : "a drawn 55-80 %")} of rated speed, ± {(DailySwing is { } w ? $"{w * 100:0} %" : "a drawn 10-20 %")} over the day");
}

/// <summary>One simulated machine's outcome.</summary>
public sealed record BearingBenchMachine(string Id, bool Degrading, double? OnsetHours, double? FailureHours, IReadOnlyList<double> PredictionHours)
{
    /// <summary>Updates of an open prediction (what else reached the CMMS besides the new predictions).</summary>
    public int Updates { get; init; }

    /// <summary>Hours from the first prediction raised after the defect's onset to the failure.</summary>
    public double? LeadHours => FailureHours is { } f && PredictionHours.Where(p => OnsetHours is { } o && p >= o && p <= f).Select(p => (double?)p).FirstOrDefault() is { } first ? f - first : null;

    /// <summary>Predictions raised while the bearing was healthy (before any defect).</summary>
    public int FalsePredictions => PredictionHours.Count(p => OnsetHours is not { } o || p < o);

    /// <summary>Running days with a healthy bearing.</summary>
    public double HealthyDays(double days) => Math.Min(days * 24, OnsetHours ?? days * 24) / 24;
}

/// <summary>Figures of one bench run.</summary>
public sealed record BearingBenchResult(BearingBenchOptions Options, string Model, string ModelVersion, IReadOnlyList<BearingBenchMachine> Machines, TimeSpan Elapsed, long Inferences)
{
    public int Failures => Machines.Count(m => m.FailureHours is not null);

    public int WarnedInTime => Machines.Count(m => m.FailureHours is not null && m.LeadHours >= Options.RequiredLead.TotalHours);

    public int Missed => Machines.Count(m => m.FailureHours is not null && m.LeadHours is null);

    public double HealthyMachineDays => Machines.Sum(m => m.HealthyDays(Options.Days));

    public int FalsePredictions => Machines.Sum(m => m.FalsePredictions);

    public double FalsePer100MachineDays => HealthyMachineDays > 0 ? FalsePredictions * 100 / HealthyMachineDays : 0;

    public double? MedianLeadHours
    {
        get
        {
            var leads = Machines.Where(m => m.LeadHours is not null).Select(m => m.LeadHours!.Value).Order().ToList();
            return leads.Count == 0 ? null : leads[leads.Count / 2];
        }
    }

    /// <summary>Most updates any one machine's predictions had.</summary>
    public int MaxUpdates => Machines.Select(m => m.Updates).DefaultIfEmpty().Max();

    public double? MinLeadHours => Machines.Where(m => m.FailureHours is not null).Select(m => m.LeadHours ?? 0).DefaultIfEmpty().Min() is var v && Failures > 0 ? v : null;

    /// <summary>What was simulated, as the text and JSON say it.</summary>
    private string AssetName => Options.Asset == BenchAsset.Fan ? "fan" : "machine";

    public string ToText()
    {
        var sb = new StringBuilder();
        var (asset, assets) = (AssetName, AssetName + "s");
        sb.AppendLine(CultureInfo.InvariantCulture, $"model {Model} {ModelVersion}; {Options.Machines} degrading + {Options.Healthy} healthy {assets} × {Options.Days:0.#} days, seed {Options.Seed}{Options.FanDuty.Describe()}, threshold {Options.Threshold:0.00} over {Options.Horizon.TotalHours:0} h");
        sb.AppendLine(CultureInfo.InvariantCulture, $"bearing failures: {Failures}; warned ≥ {Options.RequiredLead.TotalHours:0} h ahead: {WarnedInTime} ({Pct(WarnedInTime, Failures)}); missed: {Missed}; lead median {Fmt(MedianLeadHours)} h, min {Fmt(MinLeadHours)} h");
        sb.AppendLine(CultureInfo.InvariantCulture, $"false predictions on healthy bearings: {FalsePredictions} in {HealthyMachineDays:0.0} {asset}-days = {FalsePer100MachineDays:0.00} per 100 {asset}-days");
        sb.AppendLine(CultureInfo.InvariantCulture, $"updates of open predictions: {Machines.Sum(m => m.Updates)} ({Pct(Machines.Count(m => m.Updates > 0), Machines.Count(m => m.PredictionHours.Count > 0))} of predicted {assets}), at most {MaxUpdates} for one {asset}");
        sb.Append(CultureInfo.InvariantCulture, $"{Inferences} inferences in {Elapsed.TotalSeconds:0.0} s");
        return sb.ToString();
    }

    public string ToJson() => JsonSerializer.Serialize(new
    {
        model = Model,
        model_version = ModelVersion,
        asset = AssetName,
        fan_speed = Options.FanDuty.MeanSpeed,
        fan_swing = Options.FanDuty.DailySwing,
        machines = Options.Machines,
        healthy = Options.Healthy,
        days = Options.Days,
        seed = Options.Seed,
        threshold = Options.Threshold,
        horizon_hours = Options.Horizon.TotalHours,
        failures = Failures,
        warned_in_time = WarnedInTime,
        required_lead_hours = Options.RequiredLead.TotalHours,
        missed = Missed,
        median_lead_hours = MedianLeadHours,
        min_lead_hours = MinLeadHours,
        false_predictions = FalsePredictions,
        healthy_machine_days = HealthyMachineDays,
        false_per_100_machine_days = FalsePer100MachineDays,
        updates = Machines.Sum(m => m.Updates),
        max_updates = MaxUpdates,
        inferences = Inferences,
        elapsed_seconds = Elapsed.TotalSeconds,
        per_machine = Machines.Select(m => new { id = m.Id, degrading = m.Degrading, onset_hours = m.OnsetHours, failure_hours = m.FailureHours, prediction_hours = m.PredictionHours, updates = m.Updates, lead_hours = m.LeadHours }),
    });

    private static string Pct(int a, int b) => b == 0 ? "-" : (100.0 * a / b).ToString("0.0", CultureInfo.InvariantCulture) + " %";

    private static string Fmt(double? v) => v is { } x ? x.ToString("0.0", CultureInfo.InvariantCulture) : "-";
}

/// <summary>
/// Simulated machines in accelerated time through the agent's machine-health code (<see cref="MachineHealthMonitor"/>:
/// the same interval means, ONNX model and <see cref="MaintenancePredictor"/> as the maintenance stage). Also writes the
/// training data of the machine-health model (<see cref="ExportTraining"/>), through the same feature code.
/// </summary>
public static class BearingBench
{
    /// <summary>Simulation start (fixed so runs are reproducible).</summary>
    public static readonly DateTimeOffset Start = new(2026, 1, 5, 0, 0, 0, TimeSpan.Zero);

    /// <summary>The machines of a run: degrading ones first, then healthy ones; everything drawn from the seed.</summary>
    public static IReadOnlyList<(MachineSpec Spec, int Seed, bool Degrading)> Draw(int degrading, int healthy, double days, int seed, BenchAsset asset = BenchAsset.Machine, FanDutyOverride? fanDuty = null)
    {
        var rng = new SimRandom(seed);
        var list = new List<(MachineSpec, int, bool)>(degrading + healthy);
        for (var i = 0; i < degrading + healthy; i++)
        {
            var isDegrading = i < degrading;
            // Onsets spread over the run so most defects grow to failure inside it.
            var meanHoursToDefect = isDegrading ? Math.Max(12, days * 24 / 3) : double.PositiveInfinity;
            var spec = asset == BenchAsset.Fan ? DrawFan(rng, i, isDegrading, meanHoursToDefect, fanDuty ?? FanDutyOverride.Drawn) : DrawMachine(rng, i, isDegrading, meanHoursToDefect);
            list.Add((spec, rng.NextSeed(), isDegrading));
        }

        return list;
    }

    private static MachineSpec DrawMachine(SimRandom rng, int i, bool isDegrading, double meanHoursToDefect) => new(
        Id: $"{(isDegrading ? "d" : "h")}{i + 1}",
        Line: "bench",
        RatedKw: new[] { 7.5, 11, 15, 22, 30 }[rng.Next(0, 5)],
        LoadFactor: rng.Uniform(0.5, 0.85),
        HoursToFailure: rng.Uniform(96, 200))
    {
        MeanHoursToDefect = meanHoursToDefect,
        GrowthSpread = 0.25,
        KnocksPerDay = rng.Uniform(0.5, 3),
        DailyLoadSwing = rng.Uniform(0.03, 0.15),
    };

    // Blowers of CRAH/CRAC units and air handlers: smaller motors than the line's, 1,450 rpm class, speed set by the
    // room's heat load (mean 55-80 % of rated, ± 10-20 % over the day), no process knocks.
    private static MachineSpec DrawFan(SimRandom rng, int i, bool isDegrading, double meanHoursToDefect, FanDutyOverride duty) => new(
        Id: $"{(isDegrading ? "fd" : "fh")}{i + 1}",
        Line: "bench",
        RatedKw: new[] { 2.2, 3, 4, 5.5, 7.5 }[rng.Next(0, 5)],
        RatedSpeedRpm: 1450,
        HoursToFailure: rng.Uniform(96, 200))
    {
        MeanHoursToDefect = meanHoursToDefect,
        GrowthSpread = 0.25,
        Fan = duty.Apply(rng.Uniform(0.55, 0.8), rng.Uniform(0.1, 0.2)),
    };

    public static BearingBenchResult Run(ModelCatalog catalog, string modelName, BearingBenchOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        var started = DateTimeOffset.UtcNow;
        var draws = Draw(options.Machines, options.Healthy, options.Days, options.Seed, options.Asset, options.FanDuty);
        var predictor = new MaintenancePredictor(
            new MaintenanceSettings(options.Threshold, options.Horizon, TimeSpan.FromHours(1)),
            new Dictionary<string, MachineRepairFigures>(StringComparer.Ordinal));
        var runner = new MachineHealthRunner(catalog, modelName);
        if (!runner.Refresh())
        {
            var reason = runner.UnavailableReason();
            runner.Dispose();
            throw new InvalidOperationException($"model '{modelName}' is not available in {catalog.Directory}: {reason}");
        }

        var entry = runner.Entry!;
        using var monitor = new MachineHealthMonitor([.. draws.Select(d => d.Spec.Id)], runner, predictor);
        var results = new List<BearingBenchMachine>(draws.Count);
        var stepMs = (long)options.Step.TotalMilliseconds;
        var steps = (long)(options.Days * 86_400_000 / stepMs);
        for (var i = 0; i < draws.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (spec, seed, degrading) = draws[i];
            var machine = new SimMachine(spec, seed);
            double? onset = null, failure = null;
            var predictions = new List<double>();
            var updates = 0;
            var t = Start.ToUnixTimeMilliseconds();
            for (var s = 1; s <= steps; s++)
            {
                var r = machine.Step(options.Step);
                t += stepMs;
                var hours = s * options.Step.TotalHours;
                if (r == BearingStep.DefectStarted)
                {
                    onset = hours;
                }
                else if (r == BearingStep.Failed)
                {
                    failure = hours;
                    onset ??= hours;
                    break;
                }

                // Sensor order as the agent sees one poll: vibration first (it says whether the machine runs).
                updates += Observe(monitor, i, BearingFeature.VibrationRms, machine.VibrationSensor.Reading, t, hours, predictions);
                updates += Observe(monitor, i, BearingFeature.Kurtosis, machine.KurtosisSensor.Reading, t, hours, predictions);
                updates += Observe(monitor, i, BearingFeature.BearingTemperature, machine.BearingSensor.Reading, t, hours, predictions);
            }

            results.Add(new BearingBenchMachine(spec.Id, degrading, onset, failure, predictions) { Updates = updates });
        }

        return new BearingBenchResult(options, entry.Name, entry.Version, results, DateTimeOffset.UtcNow - started, monitor.Inferences);
    }

    /// <returns>1 when the sample updated an open prediction (not a new warning), else 0.</returns>
    private static int Observe(MachineHealthMonitor monitor, int machine, BearingFeature feature, double value, long t, double hours, List<double> predictions)
    {
        switch (monitor.Observe(machine, feature, value, t)?.State)
        {
            case "raised":
                predictions.Add(hours);
                return 0;
            case "updated":
                return 1;
            default:
                return 0;
        }
    }

    /// <summary>
    /// Training data for <c>models/maintenance/train_bearing.py</c>: every degrading machine runs until its bearing
    /// fails (at most <paramref name="maxDays"/>), healthy ones for <paramref name="maxDays"/>; one CSV row per closed
    /// interval with the interval means (the same <see cref="BearingFeatureWindow"/> as the agent) and the true hours
    /// to failure (empty for a machine that does not fail).
    /// </summary>
    public static void ExportTraining(TextWriter writer, int degrading, int healthy, double maxDays, int seed, TimeSpan interval, TimeSpan step, BenchAsset asset = BenchAsset.Machine, FanDutyOverride? fanDuty = null)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteLine("machine,degrading,hours,vibration_rms,vibration_kurtosis,bearing_temperature,onset_hours,hours_to_failure");
        var draws = Draw(degrading, healthy, maxDays, seed, asset, fanDuty);
        var stepMs = (long)step.TotalMilliseconds;
        var steps = (long)(maxDays * 86_400_000 / stepMs);
        Span<float> row = stackalloc float[BearingFeatureWindow.Features];
        var rows = new List<(double Hours, float V, float K, float T)>();
        foreach (var (spec, machineSeed, isDegrading) in draws)
        {
            var machine = new SimMachine(spec, machineSeed);
            var window = new BearingFeatureWindow(interval, 1);
            double? onset = null, failure = null;
            rows.Clear();
            var t = Start.ToUnixTimeMilliseconds();
            for (var s = 1; s <= steps; s++)
            {
                var r = machine.Step(step);
                t += stepMs;
                var hours = s * step.TotalHours;
                if (r == BearingStep.DefectStarted)
                {
                    onset = hours;
                }
                else if (r == BearingStep.Failed)
                {
                    failure = hours;
                    break;
                }

                var closed = window.Add(BearingFeature.VibrationRms, machine.VibrationSensor.Reading, t);
                closed |= window.Add(BearingFeature.Kurtosis, machine.KurtosisSensor.Reading, t);
                closed |= window.Add(BearingFeature.BearingTemperature, machine.BearingSensor.Reading, t);
                if (closed && window.Fill(1, row))
                {
                    rows.Add(((window.LastIntervalEndMs - Start.ToUnixTimeMilliseconds()) / 3_600_000.0, row[0], row[1], row[2]));
                }
            }

            foreach (var (h, v, k, temp) in rows)
            {
                writer.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{spec.Id},{(isDegrading ? 1 : 0)},{h:0.###},{v:R},{k:R},{temp:R},{(onset is { } o ? o.ToString("0.###", CultureInfo.InvariantCulture) : "")},{(failure is { } f ? (f - h).ToString("0.###", CultureInfo.InvariantCulture) : "")}"));
            }
        }
    }
}
