using System.Globalization;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Twin.Models;
using EdgeTwin.Twin.Models.Maintenance;

namespace EdgeTwin.Twin.Tests.Models;

/// <summary>
/// The machine-health monitor with the committed <c>bearing-rul</c> model on a simulated machine, 30 s samples in
/// accelerated time: what a maintenance planner reads from it (probability, RUL and its unit, the data behind it) when
/// the horizon, the transmitter or the history is not what the model was made for.
/// </summary>
public sealed class MachineHealthMonitorTests
{
    private static readonly DateTimeOffset Start = new(2026, 3, 2, 0, 0, 0, TimeSpan.Zero);

    /// <summary>
    /// A vibration transmitter frozen at a healthy reading (its register stuck) while the bearing wore out: every
    /// half-hour interval counted, the model read 106-166 h (more than its 120 h cap) and 0 % up to the failure. Now an
    /// interval in which a signal read one value throughout is left out and said, so no RUL is made from it.
    /// </summary>
    [Fact]
    public void Regression_a_frozen_vibration_transmitter_kept_a_confident_healthy_rul_until_the_bearing_failed()
    {
        using var run = new Run(TimeSpan.FromHours(48));
        double? stuck = null;
        long inferencesWhenFrozen = -1;
        double rulWhenFrozen = double.NaN;
        var failed = run.Feed(14 * 24, (m, h) =>
        {
            if (m.TrueRemainingHours >= 80)
            {
                return null;
            }

            stuck ??= m.VibrationSensor.Reading;
            if (inferencesWhenFrozen < 0 && h > run.FrozenSinceHours + 1)
            {
                // The interval the freeze began in held real readings too; from the next one on nothing may count.
                inferencesWhenFrozen = run.Monitor.Inferences;
                rulWhenFrozen = run.Monitor.LastRul(0);
            }

            return stuck;
        });

        Assert.NotNull(failed);
        Assert.True(inferencesWhenFrozen > 0, "the transmitter never froze");
        Assert.Equal(inferencesWhenFrozen, run.Monitor.Inferences);
        Assert.Equal(rulWhenFrozen, run.Monitor.LastRul(0));
        Assert.Equal(BearingFeature.VibrationRms, run.Monitor.Frozen(0, out var value));
        Assert.Equal(stuck!.Value, value);
        Assert.True(run.Monitor.FrozenIntervals > 100, $"{run.Monitor.FrozenIntervals} intervals left out");
        Assert.DoesNotContain(run.Predictions, p => p.State == "resolved");
    }

    /// <summary>
    /// The model's RUL is capped at 120 h (a healthy bearing reads 120): with <c>horizon: 168h</c> (a week, to plan next
    /// week's work) P(failure within it) was 100 % for every healthy machine, and each raised a prediction. Its RUL also
    /// went past the cap (120.9 h), which is extrapolation. Now such a horizon raises nothing and says the longest the
    /// model can answer, and the RUL stays within the cap.
    /// </summary>
    [Fact]
    public void Regression_a_week_long_horizon_made_every_healthy_machine_fail_within_it()
    {
        using var run = new Run(TimeSpan.FromDays(7), healthy: true);
        var maxRul = 0.0;
        run.Feed(48, (m, h) =>
        {
            if (!double.IsNaN(run.Monitor.LastRul(0)))
            {
                maxRul = Math.Max(maxRul, run.Monitor.LastRul(0));
            }

            return null;
        });

        Assert.True(run.Monitor.Inferences > 80, $"{run.Monitor.Inferences} inferences");
        Assert.Empty(run.Predictions);
        Assert.NotNull(run.Monitor.HorizonBeyondModel);
        Assert.InRange(run.Monitor.HorizonBeyondModel!.Value, 116, 117); // 120 h cap + 0.14 bias - 3 × 1.35 h
        Assert.InRange(maxRul, 110, 120);

        using var fits = new Run(TimeSpan.FromHours(116), healthy: true);
        fits.Feed(48, (_, _) => null);
        Assert.Null(fits.Monitor.HorizonBeyondModel);
        Assert.Empty(fits.Predictions);
        Assert.InRange(fits.Monitor.LastProbability(0), 0, 0.01);
    }

    /// <summary>
    /// <c>predicted_rul</c> went out as a bare number, and a prediction made from a few hours of data (the agent started on
    /// a worn machine, or after a repair: the window is padded with its oldest interval) looked as sure as one from the
    /// day the model reads. Now each prediction carries <c>rul_unit</c>, <c>history_hours</c> and <c>window_hours</c>,
    /// and its message says when it is warming up.
    /// </summary>
    [Fact]
    public void Regression_a_prediction_did_not_say_its_rul_unit_or_how_little_history_it_rested_on()
    {
        using var late = new Run(TimeSpan.FromHours(48), skip: m => m.TrueRemainingHours > 40);
        late.Feed(14 * 24, (_, _) => null);
        var raised = Assert.Single(late.Predictions, p => p.State == "raised");
        var a = raised.ToEvent(raised.InputsUntil).Attributes!;
        Assert.Equal("h", a["rul_unit"]);
        Assert.Equal("24", a["window_hours"]);
        Assert.InRange(double.Parse(a["history_hours"], CultureInfo.InvariantCulture), 0.5, 23.5);
        Assert.Contains("h of data of the 24 h the model reads (warming up)", raised.ToEvent(raised.InputsUntil).Message, StringComparison.Ordinal);
        Assert.Contains("running hours)", raised.ToEvent(raised.InputsUntil).Message, StringComparison.Ordinal);

        using var full = new Run(TimeSpan.FromHours(48));
        full.Feed(14 * 24, (_, _) => null);
        var fromDay = Assert.Single(full.Predictions, p => p.State == "raised").ToEvent(Start);
        Assert.Equal("24", fromDay.Attributes!["history_hours"]);
        Assert.DoesNotContain("warming up", fromDay.Message, StringComparison.Ordinal);
    }

    /// <summary>One degrading (or healthy) simulated machine, its samples into a monitor with the committed model.</summary>
    private sealed class Run : IDisposable
    {
        private readonly SimMachine _machine;
        private readonly Func<SimMachine, bool>? _skip;

        public Run(TimeSpan horizon, bool healthy = false, Func<SimMachine, bool>? skip = null)
        {
            var catalog = new ModelCatalog(ModelFiles.RepoModels);
            catalog.Reload();
            var predictor = new MaintenancePredictor(new MaintenanceSettings(0.7, horizon, TimeSpan.FromHours(1)), new Dictionary<string, MachineRepairFigures>());
            Monitor = new MachineHealthMonitor(["d1"], new MachineHealthRunner(catalog, "bearing-rul"), predictor);
            _machine = new SimMachine(new MachineSpec("d1", "line1", HoursToFailure: 110, LoadFactor: 0.7) { MeanHoursToDefect = healthy ? double.PositiveInfinity : 48, KnocksPerDay = 2, DailyLoadSwing = 0.1 }, 11);
            _skip = skip;
        }

        public MachineHealthMonitor Monitor { get; }

        public List<MaintenancePrediction> Predictions { get; } = [];

        public double FrozenSinceHours { get; private set; } = double.PositiveInfinity;

        /// <summary>Runs up to <paramref name="hours"/>; <paramref name="vibration"/> replaces the vibration reading when it returns a value. Returns the failure time in hours, or null.</summary>
        public double? Feed(int hours, Func<SimMachine, double, double?> vibration)
        {
            for (var s = 1; s <= hours * 120; s++)
            {
                var h = s / 120.0;
                if (_machine.Step(TimeSpan.FromSeconds(30)) == BearingStep.Failed)
                {
                    return h;
                }

                if (_skip?.Invoke(_machine) == true)
                {
                    continue;
                }

                var t = (Start + TimeSpan.FromSeconds(30 * s)).ToUnixTimeMilliseconds();
                var v = vibration(_machine, h);
                if (v is not null && double.IsPositiveInfinity(FrozenSinceHours))
                {
                    FrozenSinceHours = h;
                }

                Add(Monitor.Observe(0, BearingFeature.VibrationRms, v ?? _machine.VibrationSensor.Reading, t));
                Add(Monitor.Observe(0, BearingFeature.Kurtosis, _machine.KurtosisSensor.Reading, t));
                Add(Monitor.Observe(0, BearingFeature.BearingTemperature, _machine.BearingSensor.Reading, t));
            }

            return null;
        }

        private void Add(MaintenancePrediction? p)
        {
            if (p is not null)
            {
                Predictions.Add(p);
            }
        }

        public void Dispose() => Monitor.Dispose();
    }
}
