using EdgeTwin.Core.Events;
using EdgeTwin.Twin.Models;
using EdgeTwin.Twin.Models.Maintenance;
using EdgeTwin.Twin.Models.Rul;
using Xunit;

namespace EdgeTwin.Twin.Tests.Models;

public sealed class MaintenancePredictorTests
{
    private static readonly ModelEntry Model = new("machine-health", "1.2.0", "rul", "m.onnx", new string('0', 64), [], []);
    private static readonly RulUncertainty Uncertainty = new(0, [double.PositiveInfinity], [10]);
    private static readonly DateTimeOffset Now = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    private static MaintenancePredictor Predictor() => new(
        new MaintenanceSettings(0.7, TimeSpan.FromHours(48), TimeSpan.FromHours(1)),
        new Dictionary<string, MachineRepairFigures> { ["m1"] = new(6, 1200, "replace the drive-end bearing") });

    [Fact]
    public void Raises_once_above_the_threshold_with_every_field()
    {
        var predictor = Predictor();
        Assert.Null(predictor.Evaluate("m1", 80, Uncertainty, Model, Now)); // P(RUL ≤ 48h) ≈ 0.0007
        var prediction = predictor.Evaluate("m1", 40, Uncertainty, Model, Now); // Φ(0.8) ≈ 0.79
        Assert.NotNull(prediction);
        Assert.Equal(0.788, prediction.FailureProbability, 3);
        Assert.Equal(Now.AddHours(40), prediction.EstimatedFailureTime);
        Assert.Equal(7200, prediction.Cost);

        var e = prediction.ToEvent(Now);
        Assert.Equal(EdgeEventKind.Prediction, e.Kind);
        Assert.Equal("m1", e.Source);
        Assert.Equal("0.788", e.Attributes!["failure_probability"]);
        Assert.Equal(Now.AddHours(40).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture), e.Attributes["estimated_failure_time"]);
        Assert.Equal("replace the drive-end bearing", e.Attributes["recommended_action"]);
        Assert.Equal("6.0", e.Attributes["expected_downtime_hours"]);
        Assert.Equal("7200", e.Attributes["cost"]);
        Assert.Equal("machine-health", e.Attributes["model"]);
        Assert.Equal("1.2.0", e.Attributes["model_version"]);

        // Still failing: no repeat until the machine is repaired (probability below the re-arm level for a day);
        // a dip shorter than that (a noisy window of a failing machine) does not re-raise.
        // (Past 0.9 it is critical: one update, not a new prediction.)
        Assert.Equal("updated", predictor.Evaluate("m1", 30, Uncertainty, Model, Now)?.State);
        Assert.Null(predictor.Evaluate("m1", 200, Uncertainty, Model, Now.AddHours(1)));
        Assert.Null(predictor.Evaluate("m1", 200, Uncertainty, Model, Now.AddHours(20)));
        Assert.Equal("updated", predictor.Evaluate("m1", 30, Uncertainty, Model, Now.AddHours(21))?.State); // a later failure time, not a new fault
        Assert.Null(predictor.Evaluate("m1", 200, Uncertainty, Model, Now.AddHours(22)));
        Assert.Equal("resolved", predictor.Evaluate("m1", 200, Uncertainty, Model, Now.AddHours(46))?.State);
        Assert.Equal("raised", predictor.Evaluate("m1", 30, Uncertainty, Model, Now.AddHours(47))?.State);
    }

    [Fact]
    public void Regression_a_prediction_did_not_state_its_horizon_currency_inputs_time_or_identity()
    {
        var predictor = new MaintenancePredictor(
            new MaintenanceSettings(0.7, TimeSpan.FromHours(48), TimeSpan.FromHours(1)) { Currency = "EUR" },
            new Dictionary<string, MachineRepairFigures> { ["m1"] = new(6, 1200, "replace the drive-end bearing") });
        var e = predictor.Evaluate("m1", 40, Uncertainty, Model, Now)!.ToEvent(Now.AddMinutes(3));

        // "78 % within the horizon" told the planner nothing without the horizon; a cost without its currency and
        // figures without the time of the data they came from could not be filed; nothing tied later messages to this one.
        Assert.Equal("48", e.Attributes!["horizon_hours"]);
        Assert.Equal("EUR", e.Attributes["currency"]);
        Assert.Equal("raised", e.Attributes["state"]);
        Assert.Equal("m1/20261130T120000Z", e.Attributes["prediction_id"]);
        Assert.Equal(WireTime.Instant(Now), e.Attributes["inputs_until"]);
        Assert.Contains("within 48 h", e.Message, StringComparison.Ordinal);
        Assert.Contains("7200 EUR", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Regression_a_worsening_fault_was_never_updated_after_its_first_prediction()
    {
        var predictor = Predictor();
        var first = predictor.Evaluate("m1", 40, Uncertainty, Model, Now)!;

        // Same estimate every interval: nothing new for the CMMS.
        for (var h = 1; h <= 4; h++)
        {
            Assert.Null(predictor.Evaluate("m1", 40 - h, Uncertainty, Model, Now.AddHours(h)));
        }

        // The failure moved 15 h earlier (more than a quarter of the time that was left, and more than 4 h): one update, same fault.
        var worse = predictor.Evaluate("m1", 20, Uncertainty, Model, Now.AddHours(5));
        Assert.NotNull(worse);
        Assert.Equal("updated", worse.State);
        Assert.Equal(first.PredictionId, worse.PredictionId);
        Assert.Equal(Now.AddHours(25), worse.EstimatedFailureTime);
        Assert.Null(predictor.Evaluate("m1", 19, Uncertainty, Model, Now.AddHours(6)));

        // A weekend stop (RUL is running time): the failure moves 48 h later; the published time would be in the past.
        var later = predictor.Evaluate("m1", 19, Uncertainty, Model, Now.AddHours(54));
        Assert.Equal(("updated", first.PredictionId, Now.AddHours(73)), (later?.State, later?.PredictionId, later?.EstimatedFailureTime));
    }

    [Fact]
    public void Regression_a_repaired_machine_left_its_prediction_open()
    {
        var predictor = Predictor();
        var first = predictor.Evaluate("m1", 40, Uncertainty, Model, Now)!;
        Assert.Null(predictor.Evaluate("m1", 200, Uncertainty, Model, Now.AddHours(10))); // new bearing: low from here
        Assert.Null(predictor.Evaluate("m1", 200, Uncertainty, Model, Now.AddHours(33)));

        // Low for the re-arm time: the prediction is withdrawn (state resolved clears the local alert at once).
        var closed = predictor.Evaluate("m1", 200, Uncertainty, Model, Now.AddHours(34));
        Assert.NotNull(closed);
        Assert.Equal("resolved", closed.State);
        Assert.Equal(first.PredictionId, closed.PredictionId);
        var e = closed.ToEvent(Now.AddHours(34));
        Assert.Equal(EventSeverity.Info, e.Severity);
        Assert.Equal("resolved", e.Attributes!["state"]);
        Assert.Null(predictor.Evaluate("m1", 200, Uncertainty, Model, Now.AddHours(35)));

        // The new bearing's own fault, later, is a new prediction.
        var next = predictor.Evaluate("m1", 30, Uncertainty, Model, Now.AddDays(20));
        Assert.Equal("raised", next!.State);
        Assert.NotEqual(first.PredictionId, next.PredictionId);
    }

    [Fact]
    public void A_reported_repair_closes_the_open_prediction_at_once_and_the_next_fault_is_a_new_one()
    {
        var predictor = Predictor();
        Assert.Null(predictor.Repaired("m1")); // nothing open: nothing to close
        var first = predictor.Evaluate("m1", 40, Uncertainty, Model, Now)!;
        var open = predictor.Repaired("m1");
        Assert.Equal(first.PredictionId, open?.Id);
        Assert.Null(predictor.OpenPrediction("m1"));
        // No 24 h wait: a fault an hour later is a new prediction, not the old one's update.
        var next = predictor.Evaluate("m1", 30, Uncertainty, Model, Now.AddHours(1));
        Assert.Equal("raised", next?.State);
        Assert.NotEqual(first.PredictionId, next!.PredictionId);

        var e = (first with { State = "resolved", RepairReportedBy = "alice" }).ToEvent(Now);
        Assert.Equal("alice", e.Attributes!["repair_reported_by"]);
        Assert.Contains("withdrawn: repaired (reported by alice)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Machines_without_figures_get_a_generic_action_and_zero_cost()
    {
        var prediction = Predictor().Evaluate("m9", 10, Uncertainty, Model, Now);
        Assert.NotNull(prediction);
        Assert.Equal(0, prediction.Cost);
        Assert.Contains("inspect", prediction.RecommendedAction, StringComparison.Ordinal);
    }

    [Fact]
    public void A_registered_cost_model_replaces_the_fixed_figures_and_null_falls_back_to_them()
    {
        var costModel = new RecordingCostModel();
        var predictor = new MaintenancePredictor(
            new MaintenanceSettings(0.7, TimeSpan.FromHours(48), TimeSpan.FromHours(1)),
            new Dictionary<string, MachineRepairFigures> { ["m1"] = new(6, 1200, "replace the drive-end bearing"), ["m2"] = new(2, 100, "grease") },
            costModel);

        var modelled = predictor.Evaluate("m1", 40, Uncertainty, Model, Now);
        Assert.NotNull(modelled);
        Assert.Equal(1.5, modelled.ExpectedDowntimeHours);
        Assert.Equal(4321, modelled.Cost);
        Assert.Equal("replace the drive-end bearing", modelled.RecommendedAction);
        Assert.Equal(("m1", Now.AddHours(40)), costModel.Asked[0]);

        var fallback = predictor.Evaluate("m2", 40, Uncertainty, Model, Now);
        Assert.NotNull(fallback);
        Assert.Equal(2, fallback.ExpectedDowntimeHours);
        Assert.Equal(200, fallback.Cost);
    }

    [Fact]
    public void A_raised_or_updated_prediction_says_what_the_failure_would_do_and_a_withdrawal_does_not_ask()
    {
        var consequences = new RecordingConsequenceModel();
        var predictor = new MaintenancePredictor(
            new MaintenanceSettings(0.7, TimeSpan.FromHours(48), TimeSpan.FromHours(1)),
            new Dictionary<string, MachineRepairFigures> { ["crac1"] = new(4, 900, "replace crac1 blower bearings"), ["m1"] = new(6, 1200, "replace the drive-end bearing") },
            consequenceModel: consequences);

        var raised = predictor.Evaluate("crac1", 40, Uncertainty, Model, Now)!.ToEvent(Now);
        Assert.Equal("thermal-twin:room1", raised.Attributes!["consequence_source"]);
        Assert.Equal("if crac1 stops: A03 reaches 32 °C in 14.0 min", raised.Attributes["if_failed"]);
        Assert.Equal("14", raised.Attributes["if_failed_time_to_32c_min"]);
        Assert.EndsWith("cost 3600; if crac1 stops: A03 reaches 32 °C in 14.0 min", raised.Message, StringComparison.Ordinal);
        // The model's attributes never replace the prediction's own.
        Assert.Equal("crac1", raised.Attributes["machine"]);

        Assert.Equal("updated", predictor.Evaluate("crac1", 30, Uncertainty, Model, Now.AddHours(1))!.ToEvent(Now).Attributes!["state"]);
        // Asked for the time the unit would be down: the repair the room must hold through (crac1's 4 h).
        Assert.Equal([("crac1", TimeSpan.FromHours(4)), ("crac1", TimeSpan.FromHours(4))], consequences.Asked);

        // A machine the model does not know: no consequence fields at all.
        var machine = predictor.Evaluate("m1", 40, Uncertainty, Model, Now)!.ToEvent(Now);
        Assert.False(machine.Attributes!.ContainsKey("if_failed"));
        Assert.False(machine.Attributes.ContainsKey("consequence_source"));
        Assert.EndsWith("cost 7200", machine.Message, StringComparison.Ordinal);

        // Withdrawn after a repair: what a failure would do is no longer the question.
        consequences.Asked.Clear();
        var resolved = predictor.Evaluate("crac1", 200, Uncertainty, Model, Now.AddHours(2));
        Assert.Null(resolved);
        resolved = predictor.Evaluate("crac1", 200, Uncertainty, Model, Now.AddHours(27));
        Assert.Equal("resolved", resolved!.State);
        Assert.False(resolved.ToEvent(Now).Attributes!.ContainsKey("if_failed"));
        Assert.Empty(consequences.Asked);
    }

    [Fact]
    public void A_consequence_model_that_throws_costs_neither_the_prediction_nor_its_update()
    {
        var predictor = new MaintenancePredictor(
            new MaintenanceSettings(0.7, TimeSpan.FromHours(48), TimeSpan.FromHours(1)),
            new Dictionary<string, MachineRepairFigures> { ["crac1"] = new(4, 900, "replace crac1 blower bearings") },
            consequenceModel: new ThrowingConsequenceModel());

        var raised = predictor.Evaluate("crac1", 40, Uncertainty, Model, Now)!.ToEvent(Now);
        Assert.Equal("raised", raised.Attributes!["state"]);
        Assert.Equal("false", raised.Attributes["if_failed_known"]);
        Assert.Equal("if crac1 stops: not known (KeyNotFoundException: zone 3)", raised.Attributes["if_failed"]);
        Assert.NotNull(predictor.OpenPrediction("crac1"));
        Assert.Equal("updated", predictor.Evaluate("crac1", 20, Uncertainty, Model, Now.AddHours(1))!.State);
    }

    private sealed class ThrowingConsequenceModel : IFailureConsequenceModel
    {
        public FailureConsequence? IfFailed(string asset, TimeSpan outage) => throw new KeyNotFoundException("zone 3");
    }

    private sealed class RecordingConsequenceModel : IFailureConsequenceModel
    {
        public List<(string Asset, TimeSpan Outage)> Asked { get; } = [];

        public FailureConsequence? IfFailed(string asset, TimeSpan outage)
        {
            Asked.Add((asset, outage));
            return asset == "crac1"
                ? new FailureConsequence("if crac1 stops: A03 reaches 32 °C in 14.0 min", new Dictionary<string, string> { ["if_failed_time_to_32c_min"] = "14", ["machine"] = "not-this" }, "thermal-twin:room1")
                : null;
        }
    }

    private sealed class RecordingCostModel : IUnplannedFailureCostModel
    {
        public List<(string Machine, DateTimeOffset At)> Asked { get; } = [];

        public UnplannedFailureCost? Estimate(string machine, DateTimeOffset failureTime)
        {
            Asked.Add((machine, failureTime));
            return machine == "m1" ? new UnplannedFailureCost(1.5, 4321, "line-twin:test") : null;
        }
    }

    /// <summary>
    /// The central team expires forecasts at the end of what they cover; maintenance said <c>horizon_hours</c>, the cooling
    /// failure <c>horizon_s</c>, the line state a local <c>shift.end</c>: three names, three units. Each forecast family now
    /// also says <c>horizon_end</c>, a UTC instant.
    /// </summary>
    [Fact]
    public void Regression_forecasts_gave_their_horizon_under_three_names_in_three_units()
    {
        var e = Predictor().Evaluate("m1", 40, Uncertainty, Model, Now)!.ToEvent(Now.AddMinutes(3));
        Assert.Equal("2026-12-02T12:03:00.000Z", e.Attributes!["horizon_end"]); // event time + 48 h
    }
}
