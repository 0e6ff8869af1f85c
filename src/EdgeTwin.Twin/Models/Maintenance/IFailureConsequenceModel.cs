namespace EdgeTwin.Twin.Models.Maintenance;

/// <summary>
/// What the failure of one asset would do to the rest of the site, as a model of the site sees it now (the thermal twin
/// for a cooling unit: which racks overheat and how soon). A blower about to fail in a room whose other units carry the
/// load is a work order for next week; one whose room reaches thermal shutdown in 20 minutes without it is not.
/// </summary>
/// <param name="Summary">One sentence for the prediction's message, e.g. <c>if crac1 stops: A03 reaches 32 °C in 14.0 min (…), 2 rack(s) affected (A03, A04)</c>.</param>
/// <param name="Attributes">Wire attributes added to the prediction (their names are the model's, prefixed <c>if_failed_</c>).</param>
/// <param name="Source">Which model answered (e.g. <c>thermal-twin:room1</c>), carried as <c>consequence_source</c>.</param>
public sealed record FailureConsequence(string Summary, IReadOnlyDictionary<string, string> Attributes, string Source);

/// <summary>
/// Supplies <see cref="FailureConsequence"/> for maintenance predictions. Implemented by the thermal twin for cooling
/// units; returns null for an asset it does not model. Called on the maintenance stage's thread once per raised or
/// updated prediction (rare), so it may run a what-if of a few milliseconds, but must be thread-safe and must not throw.
/// </summary>
public interface IFailureConsequenceModel
{
    /// <summary>
    /// The consequence of <paramref name="asset"/> stopping now and staying down for <paramref name="outage"/> (the
    /// prediction's expected downtime: what matters is whether the site holds through the repair; zero when not known,
    /// and the model chooses), or null when this model does not know the asset.
    /// </summary>
    FailureConsequence? IfFailed(string asset, TimeSpan outage);
}
