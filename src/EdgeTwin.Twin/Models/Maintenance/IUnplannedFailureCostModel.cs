namespace EdgeTwin.Twin.Models.Maintenance;

/// <summary>What an unplanned failure of one machine would cost, as a model of the site (the line twin) sees it.</summary>
/// <param name="DowntimeHours">Expected hours out of service (learned repair times, not a fixed figure).</param>
/// <param name="Cost">Cost of the failure: lost output times the margin per unit, plus repair cost where configured.</param>
/// <param name="Source">Which model produced the figures (e.g. <c>line-twin:line1</c>), carried into the event.</param>
public sealed record UnplannedFailureCost(double DowntimeHours, double Cost, string Source);

/// <summary>
/// Supplies downtime and cost of an unplanned failure from a live model instead of the fixed per-machine figures of
/// <c>models.maintenance</c>. Implemented by the line twin; the maintenance predictor falls back to the fixed figures
/// when no implementation is registered or it returns null (machine not on a modelled line, model not calibrated yet).
/// Must be thread-safe and cheap: it is called once per raised prediction.
/// </summary>
public interface IUnplannedFailureCostModel
{
    /// <summary>Cost of <paramref name="machine"/> failing at <paramref name="failureTime"/>, or null when unknown.</summary>
    UnplannedFailureCost? Estimate(string machine, DateTimeOffset failureTime);
}
