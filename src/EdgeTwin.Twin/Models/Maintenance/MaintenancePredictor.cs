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
    /// <summary>Where downtime and cost came from: <c>config</c> (fixed figures) or the cost model's source (e.g. <c>line-twin:line1</c>).</summary>
    public string CostSource { get; init; } = "config";

    /// <summary>The <see cref="EdgeEventKind.Prediction"/> event for the alerting rules and the outbox.</summary>
    public EdgeEvent ToEvent(DateTimeOffset now) => new(
        EdgeEventKind.Prediction,
        Machine,
        now,
        FailureProbability >= 0.9 ? EventSeverity.Critical : EventSeverity.Warning,
        string.Create(CultureInfo.InvariantCulture, $"{Machine}: failure probability {FailureProbability:P0} within the horizon; estimated failure {EstimatedFailureTime:yyyy-MM-dd HH:mm}Z; {RecommendedAction}"),
        new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["machine"] = Machine,
            ["failure_probability"] = FailureProbability.ToString("F3", CultureInfo.InvariantCulture),
            ["predicted_rul"] = PredictedRul.ToString("F1", CultureInfo.InvariantCulture),
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
        });
}

/// <summary>
/// Turns RUL predictions into maintenance predictions: P(failure within the horizon) from the RUL and the model's
/// Gaussian residual (<see cref="RulUncertainty"/>); a machine whose probability crosses the threshold raises one
/// prediction, and raises again only after it fell below <see cref="MaintenanceSettings.RearmBelow"/> (a repair).
/// Not thread-safe: one instance per stage.
/// </summary>
public sealed class MaintenancePredictor
{
    private readonly MaintenanceSettings _settings;
    private readonly IReadOnlyDictionary<string, MachineRepairFigures> _figures;
    private readonly IUnplannedFailureCostModel? _costModel;
    // Raised machines → when their probability went (and stayed) below RearmBelow, or null while above.
    private readonly Dictionary<string, DateTimeOffset?> _raised = new(StringComparer.Ordinal);

    public MaintenancePredictor(MaintenanceSettings settings, IReadOnlyDictionary<string, MachineRepairFigures> figures, IUnplannedFailureCostModel? costModel = null)
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
    }

    /// <summary>Failure probability within the horizon for a predicted RUL.</summary>
    public double FailureProbability(double predictedRul, RulUncertainty uncertainty)
    {
        ArgumentNullException.ThrowIfNull(uncertainty);
        return uncertainty.FailureProbability(predictedRul, _settings.Horizon / _settings.RulUnit);
    }

    /// <summary>Whether a prediction was raised for <paramref name="machine"/> and not re-armed yet, and since when its probability has been low.</summary>
    public bool IsRaised(string machine, out DateTimeOffset? lowSince) => _raised.TryGetValue(machine, out lowSince);

    /// <summary>Takes back, after a restart, that a prediction was raised for <paramref name="machine"/> (so it is not raised again).</summary>
    public void RestoreRaised(string machine, DateTimeOffset? lowSince) => _raised[machine] = lowSince;

    /// <summary>The prediction to raise for this machine now, or null (below threshold, or already raised).</summary>
    public MaintenancePrediction? Evaluate(string machine, double predictedRul, RulUncertainty uncertainty, ModelEntry model, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(model);
        var p = FailureProbability(predictedRul, uncertainty);
        if (_raised.TryGetValue(machine, out var lowSince))
        {
            if (p >= _settings.RearmBelow)
            {
                _raised[machine] = null;
                return null;
            }

            if (lowSince is null)
            {
                _raised[machine] = now;
            }

            if (now - (lowSince ?? now) >= (_settings.RearmAfter ?? MaintenanceSettings.DefaultRearmAfter))
            {
                _raised.Remove(machine);
            }

            return null;
        }

        if (p < _settings.Threshold)
        {
            return null;
        }

        _raised[machine] = null;

        var figures = _figures.GetValueOrDefault(machine) ?? new MachineRepairFigures(0, 0, "inspect the machine and plan a repair before the estimated failure");
        var eta = now + (_settings.RulUnit * Math.Max(0, predictedRul - uncertainty.Bias));
        var modelled = _costModel?.Estimate(machine, eta);
        return modelled is null
            ? new MaintenancePrediction(machine, p, predictedRul, eta, figures.Action, figures.DowntimeHours, figures.DowntimeHours * figures.CostPerHour, model.Name, model.Version)
            : new MaintenancePrediction(machine, p, predictedRul, eta, figures.Action, modelled.DowntimeHours, modelled.Cost, model.Name, model.Version) { CostSource = modelled.Source };
    }
}
