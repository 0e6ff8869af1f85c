using System.Globalization;
using EdgeTwin.Core.Events;
using EdgeTwin.Twin.Models.Rul;

namespace EdgeTwin.Twin.Models.Maintenance;

/// <summary>Downtime and cost of repairing one machine, from the site config.</summary>
/// <param name="DowntimeHours">Hours out of service for the repair.</param>
/// <param name="CostPerHour">Cost of an hour of downtime.</param>
/// <param name="Action">What to do.</param>
public sealed record MachineRepairFigures(double DowntimeHours, double CostPerHour, string Action);

/// <summary>Settings of maintenance predictions.</summary>
/// <param name="Threshold">Failure probability within <paramref name="Horizon"/> that raises a prediction (0.7).</param>
/// <param name="Horizon">How far ahead the probability looks.</param>
/// <param name="RulUnit">Real time per unit of the model's RUL (one C-MAPSS cycle, one hour of machine time).</param>
/// <param name="RearmBelow">A machine raises again only after its probability stayed below this (hysteresis) ...</param>
/// <param name="RearmAfter">... for this long (a repaired machine; a noisy dip of a failing one does not re-raise).</param>
public sealed record MaintenanceSettings(double Threshold, TimeSpan Horizon, TimeSpan RulUnit, double RearmBelow = 0.3, TimeSpan? RearmAfter = null)
{
    /// <summary>Currency of the cost figures (<c>models.maintenance.currency</c>), or null when the config does not say.</summary>
    public string? Currency { get; init; }


    /// <summary>Default of <see cref="RearmAfter"/>.</summary>
    public static readonly TimeSpan DefaultRearmAfter = TimeSpan.FromHours(24);
}

/// <summary>A maintenance prediction: what the agent tells the operator about one machine.</summary>
public sealed record MaintenancePrediction(
    string Machine,
    double FailureProbability,
    double PredictedRul,
    DateTimeOffset EstimatedFailureTime,
    string RecommendedAction,
    double ExpectedDowntimeHours,
    double Cost,
    string Model,
    string ModelVersion)
{
    /// <summary><c>raised</c> (a new developing fault), <c>updated</c> (the same fault, now critical or with another failure time) or <c>resolved</c> (withdrawn: the machine was repaired).</summary>
    public string State { get; init; } = "raised";

    /// <summary>One id per developing fault (machine and time raised), the same in its updates and its withdrawal: the CMMS files one work order.</summary>
    public string PredictionId { get; init; } = Machine;

    /// <summary>The horizon <see cref="FailureProbability"/> is over.</summary>
    public TimeSpan Horizon { get; init; }

    /// <summary>End of the newest data the model read (the last completed averaging interval).</summary>
    public DateTimeOffset InputsUntil { get; init; }

    /// <summary>Currency of <see cref="Cost"/>, or null when the config does not say.</summary>
    public string? Currency { get; init; }

    /// <summary>
    /// The running time the model's window held (its completed intervals; null when not known, as in a withdrawal): below
    /// <see cref="ModelWindow"/> the model read a padded window, and says so (wire attributes <c>history_hours</c>,
    /// <c>window_hours</c>). Before, a prediction from the first half hour after a start or a repair looked as sure as one
    /// from a full day.
    /// </summary>
    public TimeSpan? History { get; init; }

    /// <summary>The running time the model reads (its window of intervals), or null when not known.</summary>
    public TimeSpan? ModelWindow { get; init; }

    /// <summary>Why a <c>resolved</c> prediction was withdrawn when not because the machine was repaired (wire attribute <c>withdrawn_because</c>).</summary>
    public string? WithdrawnBecause { get; init; }

    /// <summary>
    /// Who reported the repair that withdrew this <c>resolved</c> prediction (<c>edgetwin maintenance done</c>: the caller's
    /// user), or null when the model saw it (wire attribute <c>repair_reported_by</c>).
    /// </summary>
    public string? RepairReportedBy { get; init; }

    /// <summary>Where downtime and cost came from: <c>config</c> (fixed figures) or the cost model's source (e.g. <c>line-twin:line1</c>).</summary>
    public string CostSource { get; init; } = "config";

    /// <summary>What the failure would do to the rest of the site (a cooling unit's racks), or null when no model knows.</summary>
    public FailureConsequence? Consequence { get; init; }

    /// <summary>The <see cref="EdgeEventKind.Prediction"/> event for the alerting rules and the outbox.</summary>
    public EdgeEvent ToEvent(DateTimeOffset now)
    {
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["machine"] = Machine,
            ["failure_probability"] = FailureProbability.ToString("F3", CultureInfo.InvariantCulture),
            ["predicted_rul"] = PredictedRul.ToString("F1", CultureInfo.InvariantCulture),
            // predicted_rul was a bare number: hours of running time for the machine-health model, cycles for C-MAPSS.
            ["rul_unit"] = "h",
            ["estimated_failure_time"] = WireTime.Instant(EstimatedFailureTime),
            ["recommended_action"] = RecommendedAction,
            ["expected_downtime_hours"] = ExpectedDowntimeHours.ToString("F1", CultureInfo.InvariantCulture),
            ["cost"] = Cost.ToString("F0", CultureInfo.InvariantCulture),
            // The names the central team's rules use (issue 11): same figures as expected_downtime_hours and cost.
            ["estimated_downtime"] = ExpectedDowntimeHours.ToString("F1", CultureInfo.InvariantCulture),
            ["cost_of_unplanned_failure"] = Cost.ToString("F0", CultureInfo.InvariantCulture),
            ["cost_source"] = CostSource,
            ["model"] = Model,
            ["model_version"] = ModelVersion,
            ["state"] = State,
            ["prediction_id"] = PredictionId,
            ["horizon_hours"] = Horizon.TotalHours.ToString("0.##", CultureInfo.InvariantCulture),
            // One name across the forecast families (cooling failure, line state): where the forecast stops saying anything.
            ["horizon_end"] = WireTime.Instant(now + Horizon),
            ["inputs_until"] = WireTime.Instant(InputsUntil),
        };
        if (Currency is not null)
        {
            attributes["currency"] = Currency;
        }

        if (WithdrawnBecause is not null)
        {
            attributes["withdrawn_because"] = WithdrawnBecause;
        }

        if (History is { } history && ModelWindow is { } window)
        {
            attributes["history_hours"] = history.TotalHours.ToString("0.##", CultureInfo.InvariantCulture);
            attributes["window_hours"] = window.TotalHours.ToString("0.##", CultureInfo.InvariantCulture);
        }

        if (RepairReportedBy is not null)
        {
            attributes["repair_reported_by"] = RepairReportedBy;
        }

        if (Consequence is { } consequence)
        {
            attributes["consequence_source"] = consequence.Source;
            attributes["if_failed"] = consequence.Summary;
            foreach (var (key, value) in consequence.Attributes)
            {
                attributes.TryAdd(key, value);
            }
        }

        var cost = string.Create(CultureInfo.InvariantCulture, $"{Cost:F0}{(Currency is null ? "" : " " + Currency)}");
        var message = State == Resolved && WithdrawnBecause is not null
            ? string.Create(CultureInfo.InvariantCulture, $"{Machine}: maintenance prediction {PredictionId} withdrawn: {WithdrawnBecause}")
            : State == Resolved && RepairReportedBy is not null
            ? string.Create(CultureInfo.InvariantCulture, $"{Machine}: maintenance prediction {PredictionId} withdrawn: repaired (reported by {RepairReportedBy})")
            : State == Resolved
            ? string.Create(CultureInfo.InvariantCulture, $"{Machine}: maintenance prediction {PredictionId} withdrawn, failure probability down to {FailureProbability:P0} within {Horizon.TotalHours:0.#} h (repaired)")
            : string.Create(CultureInfo.InvariantCulture, $"{Machine}: {(State == Updated ? "updated, " : "")}failure probability {FailureProbability:P0} within {Horizon.TotalHours:0.#} h; estimated failure {EstimatedFailureTime:yyyy-MM-dd HH:mm}Z (in {PredictedRul:0} running hours){Warming}; {RecommendedAction}; unplanned failure {ExpectedDowntimeHours:0.#} h down, cost {cost}{(Consequence is { } c ? "; " + c.Summary : "")}");
        var severity = State == Resolved ? EventSeverity.Info : FailureProbability >= Critical ? EventSeverity.Critical : EventSeverity.Warning;
        return new EdgeEvent(EdgeEventKind.Prediction, Machine, now, severity, message, attributes);
    }

    // A prediction from less than the model's window (after a start without history or a repair) says so.
    private string Warming => History is { } h && ModelWindow is { } w && h < w
        ? string.Create(CultureInfo.InvariantCulture, $", from {h.TotalHours:0.#} h of data of the {w.TotalHours:0.#} h the model reads (warming up)")
        : "";

    internal const string Raised = "raised";
    internal const string Updated = "updated";
    internal const string Resolved = "resolved";

    /// <summary>Probability from which a prediction is critical (and a raised one is updated once).</summary>
    internal const double Critical = 0.9;
}

/// <summary>A machine's open prediction: its id, what was last published, and since when its probability has been below the re-arm level.</summary>
public sealed record RaisedPrediction(string Id, DateTimeOffset? LowSince, DateTimeOffset EstimatedFailureTime, double FailureProbability);

/// <summary>
/// Turns RUL predictions into maintenance predictions: P(failure within the horizon) from the RUL and the model's
/// Gaussian residual (<see cref="RulUncertainty"/>); a machine whose probability crosses the threshold raises one
/// prediction per developing fault, updates it when the fault gets worse, withdraws it after its probability stayed
/// below <see cref="MaintenanceSettings.RearmBelow"/> for <see cref="MaintenanceSettings.RearmAfter"/> (a repair),
/// and only then can raise again.
/// Not thread-safe: one instance per stage.
/// </summary>
public sealed class MaintenancePredictor
{
    private readonly MaintenanceSettings _settings;
    private readonly IReadOnlyDictionary<string, MachineRepairFigures> _figures;
    private readonly IUnplannedFailureCostModel? _costModel;
    private readonly IFailureConsequenceModel? _consequenceModel;
    // Machines with an open prediction → what was last published and when their probability went (and stayed) below RearmBelow.
    private readonly Dictionary<string, RaisedPrediction> _raised = new(StringComparer.Ordinal);

    /// <param name="consequenceModel">What a failure would do to the site (the thermal twin for cooling units), asked for each raised or updated prediction.</param>
    public MaintenancePredictor(MaintenanceSettings settings, IReadOnlyDictionary<string, MachineRepairFigures> figures, IUnplannedFailureCostModel? costModel = null, IFailureConsequenceModel? consequenceModel = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(figures);
        if (!(settings.Threshold is > 0 and < 1) || settings.Horizon <= TimeSpan.Zero || settings.RulUnit <= TimeSpan.Zero)
        {
            throw new ArgumentException("threshold in (0,1), positive horizon and RUL unit are required", nameof(settings));
        }

        _settings = settings;
        _figures = figures;
        _costModel = costModel;
        _consequenceModel = consequenceModel;
    }

    /// <summary>The horizon in the model's RUL units (hours for the machine-health model).</summary>
    public double HorizonUnits => _settings.Horizon / _settings.RulUnit;

    /// <summary>
    /// The longest horizon (in RUL units) a model whose RUL is capped at <paramref name="cap"/> can answer: a healthy machine
    /// reads the cap, so over a horizon near or past it the probability is that of the cap, not of a fault — at 168 h with
    /// the 120 h bearing model every healthy machine read 100 %. Three sigmas of the cap's band below the cap (bias-corrected)
    /// keep a healthy reading's probability under 0.2 %.
    /// </summary>
    public static double LongestHorizon(double cap, RulUncertainty uncertainty)
    {
        ArgumentNullException.ThrowIfNull(uncertainty);
        return cap - uncertainty.Bias - (3 * uncertainty.SigmaAt(cap));
    }

    /// <summary>Failure probability within the horizon for a predicted RUL.</summary>
    public double FailureProbability(double predictedRul, RulUncertainty uncertainty)
    {
        ArgumentNullException.ThrowIfNull(uncertainty);
        return uncertainty.FailureProbability(predictedRul, _settings.Horizon / _settings.RulUnit);
    }

    /// <summary>The open prediction of <paramref name="machine"/> (raised and not withdrawn yet), or null.</summary>
    public RaisedPrediction? OpenPrediction(string machine) => _raised.GetValueOrDefault(machine);

    /// <summary>
    /// The machine was repaired (reported by the operator): its open prediction is closed at once, not after its
    /// probability stayed low for <see cref="MaintenanceSettings.RearmAfter"/>, and the next fault is a new prediction.
    /// Returns the prediction that was open, or null.
    /// </summary>
    public RaisedPrediction? Repaired(string machine) => _raised.Remove(machine, out var open) ? open : null;

    /// <summary>Takes back, after a restart, the open prediction of <paramref name="machine"/> (so it is not raised again).</summary>
    public void RestoreRaised(string machine, RaisedPrediction raised) => _raised[machine] = raised;

    /// <summary>
    /// What to publish for this machine now, or null: a new prediction past the threshold (<c>raised</c>); for an open
    /// one, an <c>updated</c> prediction when it became critical (0.9) or its estimated failure moved more than a quarter
    /// of the time left (at least 4 h: less is no change to a maintenance plan) from the one last published, a <c>resolved</c> one when its
    /// probability stayed below the re-arm level for the re-arm time (a repair); nothing for the same estimate again.
    /// <paramref name="now"/> is the end of the data the model read.
    /// </summary>
    /// <param name="history">Running time the model's window held (<see cref="MaintenancePrediction.History"/>), or null.</param>
    /// <param name="window">Running time the model reads, or null.</param>
    public MaintenancePrediction? Evaluate(string machine, double predictedRul, RulUncertainty uncertainty, ModelEntry model, DateTimeOffset now, TimeSpan? history = null, TimeSpan? window = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var p = FailureProbability(predictedRul, uncertainty);
        var eta = now + (_settings.RulUnit * Math.Max(0, predictedRul - uncertainty.Bias));
        if (_raised.TryGetValue(machine, out var open))
        {
            if (p >= _settings.RearmBelow)
            {
                open = open with { LowSince = null };
                _raised[machine] = open;
                // Later counts too: RUL is running time, so a weekend stop moves the failure later, and the published
                // time would otherwise be in the past while the machine still runs.
                var moved = (open.EstimatedFailureTime - eta).Duration() > TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerHour * 4, (open.EstimatedFailureTime - now).Ticks / 4));
                if (!moved && !(p >= MaintenancePrediction.Critical && open.FailureProbability < MaintenancePrediction.Critical))
                {
                    return null;
                }

                _raised[machine] = open with { EstimatedFailureTime = eta, FailureProbability = Math.Max(p, open.FailureProbability) };
                var updated = Prediction(machine, p, predictedRul, eta, model, now, history, window) with { State = MaintenancePrediction.Updated, PredictionId = open.Id };
                return updated with { Consequence = ConsequenceOf(updated) };
            }

            var lowSince = open.LowSince ?? now;
            _raised[machine] = open with { LowSince = lowSince };
            if (now - lowSince < (_settings.RearmAfter ?? MaintenanceSettings.DefaultRearmAfter))
            {
                return null;
            }

            // Low for the re-arm time: the machine was repaired. Withdrawn, so the CMMS closes the work order and the
            // local alert clears; the next fault of this machine is a new prediction.
            _raised.Remove(machine);
            return Prediction(machine, p, predictedRul, eta, model, now, history, window) with { State = MaintenancePrediction.Resolved, PredictionId = open.Id };
        }

        if (p < _settings.Threshold)
        {
            return null;
        }

        var raised = Prediction(machine, p, predictedRul, eta, model, now, history, window) with
        {
            PredictionId = string.Create(CultureInfo.InvariantCulture, $"{machine}/{now.UtcDateTime:yyyyMMdd'T'HHmmss'Z'}"),
        };
        raised = raised with { Consequence = ConsequenceOf(raised) };
        _raised[machine] = new RaisedPrediction(raised.PredictionId, null, eta, p);
        return raised;
    }

    // Asked for the prediction's expected downtime (the repair the site must hold through). The open prediction's state
    // has moved already, so a consequence model that throws must not cost its message.
    private FailureConsequence? ConsequenceOf(MaintenancePrediction prediction)
    {
        var machine = prediction.Machine;
        try
        {
            return _consequenceModel?.IfFailed(machine, TimeSpan.FromHours(Math.Max(0, prediction.ExpectedDowntimeHours)));
        }
        catch (Exception e)
        {
            return new FailureConsequence(
                string.Create(CultureInfo.InvariantCulture, $"if {machine} stops: not known ({e.GetType().Name}: {e.Message})"),
                new Dictionary<string, string>(StringComparer.Ordinal) { ["if_failed_known"] = "false" },
                _consequenceModel!.GetType().Name);
        }
    }

    private MaintenancePrediction Prediction(string machine, double p, double predictedRul, DateTimeOffset eta, ModelEntry model, DateTimeOffset now, TimeSpan? history, TimeSpan? window)
    {
        var figures = _figures.GetValueOrDefault(machine) ?? new MachineRepairFigures(0, 0, "inspect the machine and plan a repair before the estimated failure");
        var modelled = _costModel?.Estimate(machine, eta);
        var prediction = modelled is null
            ? new MaintenancePrediction(machine, p, predictedRul, eta, figures.Action, figures.DowntimeHours, figures.DowntimeHours * figures.CostPerHour, model.Name, model.Version)
            : new MaintenancePrediction(machine, p, predictedRul, eta, figures.Action, modelled.DowntimeHours, modelled.Cost, model.Name, model.Version) { CostSource = modelled.Source };
        return prediction with { Horizon = _settings.Horizon, InputsUntil = now, Currency = _settings.Currency, History = history, ModelWindow = window };
    }
}
