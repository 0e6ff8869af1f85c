using System.Globalization;
using EdgeTwin.Twin.Models.Maintenance;
using EdgeTwin.Twin.Scenarios;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Twin.Thermal;

/// <summary>
/// The thermal twin's answer to "what if this cooling unit's blower fails": the live <c>cooling_failure</c> what-if of
/// the unit on the calibrated twin as it is now (the other units as they run, the load following its daily profile),
/// attached to the unit's maintenance prediction. The planner then reads whether the blower can wait for next week's
/// window (the other units carry the room) or must be changed tonight (racks at 32 °C within minutes without it).
/// </summary>
public sealed partial class ThermalFailureConsequence : IFailureConsequenceModel
{
    /// <summary>
    /// How far ahead the what-if looks at least (the live cooling_failure's horizon), whatever the repair time; and at
    /// most: a day holds the load's daily profile, and a repair longer than that is a different plan (portable cooling).
    /// </summary>
    public static readonly TimeSpan ShortestHorizon = TimeSpan.FromHours(2), LongestHorizon = TimeSpan.FromHours(24);

    /// <summary>Start times the repair's window search tries: every hour over the next day (the load's profile is daily).</summary>
    public static readonly TimeSpan RepairWindowStep = TimeSpan.FromHours(1), RepairWindowWithin = TimeSpan.FromHours(24);

    private const int RacksNamed = 5;

    private readonly ThermalTwinStage _stage;
    private readonly ILogger _logger;

    public ThermalFailureConsequence(ThermalTwinStage stage, ILogger<ThermalFailureConsequence> logger)
    {
        ArgumentNullException.ThrowIfNull(stage);
        _stage = stage;
        _logger = logger;
    }

    public FailureConsequence? IfFailed(string asset, TimeSpan outage)
    {
        var zone = _stage.Twin.Zones.FirstOrDefault(z => z.Units.Any(u => string.Equals(u.Id, asset, StringComparison.Ordinal)));
        if (zone is null)
        {
            // A machine of a line, or a unit outside every room with racks: nothing of the thermal twin's.
            return null;
        }

        var source = "thermal-twin:" + zone.Id;
        // The room must hold through the repair: the what-if runs for the expected downtime (2 h when shorter or unknown).
        var horizon = outage < ShortestHorizon ? ShortestHorizon : outage > LongestHorizon ? LongestHorizon : outage;
        var stops = outage > TimeSpan.Zero ? Inv($"if {asset} stops for its {outage.TotalHours:0.#} h repair") : $"if {asset} stops";
        try
        {
            if (_stage.CurrentTwin(out var notReady, z => string.Equals(z.Id, zone.Id, StringComparison.Ordinal)) is not { } twin)
            {
                return new FailureConsequence(
                    Inv($"{stops}: not known yet ({notReady})"),
                    new Dictionary<string, string>(StringComparer.Ordinal) { ["if_failed_known"] = "false" },
                    source);
            }

            var z = twin.FindUnit(asset);
            var result = CoolingFailureScenario.Run(twin.Zones[z], twin.Now[z], new CoolingFailureOptions
            {
                FailedUnits = [asset],
                Horizon = horizon,
                // The plan is the operator's when the unit does stop (the live cooling_failure gives it then); here the
                // question is only how bad it would be.
                PlanMitigation = false,
            });
            // With a known repair time the planner's next question is when to do it: the start over the next day with
            // the most margin. Unknown, there is no stop to place.
            var window = outage > TimeSpan.Zero
                ? CoolingMaintenanceWindow.Run(twin.Zones[z], twin.Now[z], new CoolingWindowOptions { Units = [asset], Outage = horizon, Step = RepairWindowStep, Within = RepairWindowWithin, NonCriticalRacks = _stage.NonCriticalRacks })
                : null;
            return Describe(stops, result, source, window, twin.Now[z].TimeSeconds);
        }
        catch (Exception e)
        {
            // A what-if that cannot run (a bug included) must not cost the maintenance prediction, whose state has moved
            // already: it goes out saying the consequence is not known.
            LogWhatIfFailed(_logger, e, asset, zone.Id);
            return new FailureConsequence(
                Inv($"{stops}: not known (the thermal what-if failed: {e.Message})"),
                new Dictionary<string, string>(StringComparer.Ordinal) { ["if_failed_known"] = "false" },
                source);
        }
    }

    /// <summary>The consequence as the prediction carries it (internal for the tests).</summary>
    /// <param name="stops">How the sentence starts (<c>if crac1 stops for its 4 h repair</c>).</param>
    /// <param name="window">When over the next day the repair leaves the most margin; null: no repair time known.</param>
    /// <param name="nowSeconds">The twin's present time, Unix seconds in the agent (anything earlier than 2001: no wall clock to name).</param>
    internal static FailureConsequence Describe(string stops, CoolingFailureResult result, string source, CoolingWindowResult? window = null, double nowSeconds = double.NaN)
    {
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["if_failed_known"] = "true",
            ["if_failed_horizon_min"] = Inv($"{result.HorizonSeconds / 60:0}"),
            ["if_failed_affected_racks"] = string.Join(',', result.AffectedRacks),
            ["if_failed_model_basis"] = result.ModelBasis,
        };
        if (result.Racks.Where(r => r.TimeTo32Seconds is not null).MinBy(r => r.TimeTo32Seconds) is { } first32)
        {
            attributes["if_failed_first_rack_32c"] = first32.Rack;
            attributes["if_failed_time_to_32c_min"] = Inv($"{first32.TimeTo32Seconds!.Value / 60:0.#}");
        }

        if (result.TimeToThermalShutdownSeconds is { } shutdown)
        {
            attributes["if_failed_time_to_thermal_shutdown_min"] = Inv($"{shutdown / 60:0.#}");
        }

        var affected = result.Racks.Where(r => result.AffectedRacks.Contains(r.Rack)).OrderBy(r => r.TimeTo32Seconds ?? double.MaxValue).Select(r => r.Rack).ToList();
        var summary = stops + ": "
            + (result.ModelBasis == "defaults" ? Inv($"GUESS from typical figures ({result.Zone} not fitted to its telemetry yet), ") : string.Empty)
            + ThermalTwinStage.Crossing(result)
            + (result.TimeToThermalShutdownSeconds is { } s ? Inv($", thermal shutdown in {s / 60:0.#} min") : string.Empty)
            + (affected.Count == 0 ? string.Empty
                : Inv($", {affected.Count} rack(s) affected ({string.Join(", ", affected.Take(RacksNamed))}{(affected.Count > RacksNamed ? Inv($", {affected.Count - RacksNamed} more") : string.Empty)})"));
        if (window is not null)
        {
            var best = window.Best;
            // The live twin's frames carry Unix seconds; a twin on another clock (tests, recorded history) names no time.
            var onWallClock = nowSeconds > 1e9;
            DateTimeOffset At(double startIn) => DateTimeOffset.FromUnixTimeSeconds((long)Math.Round(nowSeconds + startIn));
            attributes["repair_window_best_start_in_h"] = Inv($"{best.StartInSeconds / 3600:0.#}");
            if (onWallClock)
            {
                attributes["repair_window_best_start"] = EdgeTwin.Core.Events.WireTime.Instant(At(best.StartInSeconds));
            }

            attributes["repair_window_holds"] = best.Holds ? "true" : "false";
            attributes["repair_window_best_peak_inlet_c"] = Inv($"{best.PeakInletC:0.0}");
            attributes["repair_window_starts_holding"] = Inv($"{window.Candidates.Count(c => c.Holds)}/{window.Candidates.Count}");
            if (window.Remedies is { } remedies)
            {
                // No start holds: what would, for the planner's choice between a shorter job and measures for the whole one.
                if (remedies.LongestHoldingOutageSeconds is { } longest)
                {
                    attributes["repair_window_longest_holding_stop_h"] = Inv($"{longest / 3600:0.##}");
                }

                if (remedies.Measures.FirstOrDefault(m => m.StartsHolding > 0) is { } measure)
                {
                    attributes["repair_window_measure"] = measure.Action;
                }

                if (remedies.HeatToRemoveKw is { } kw)
                {
                    attributes["repair_window_heat_to_remove_kw"] = Inv($"{kw:0.#}");
                }
            }

            summary += "; for the repair: " + CoolingMaintenanceWindow.Describe(window, onWallClock ? s => Inv($" ({At(s):HH:mm} UTC)") : null);
        }

        return new FailureConsequence(summary, attributes, source);
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    [LoggerMessage(EventId = 1400, Level = LogLevel.Warning, Message = "Maintenance: the thermal what-if of {Unit} stopping ({Zone}) failed; its prediction goes out without it")]
    private static partial void LogWhatIfFailed(ILogger logger, Exception exception, string unit, string zone);
}
