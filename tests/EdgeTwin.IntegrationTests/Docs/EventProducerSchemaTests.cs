using System.Text.Json.Nodes;
using EdgeTwin.Core.Events;
using EdgeTwin.Outbox;
using EdgeTwin.Outbox.Summaries;
using EdgeTwin.Twin.Models.Maintenance;
using EdgeTwin.Uplink.Payloads;
using Json.Schema;

namespace EdgeTwin.IntegrationTests.Docs;

/// <summary>
/// Events the wire audit's simulated run could not bring about in minutes (a maintenance prediction closes an interval
/// every 30 min), made by their real producer and encoded as the uplinks send them, against the JSON Schema a
/// consumer validates with (src/EdgeTwin.Uplink/schema/uplink-message.v1.schema.json). The families it did bring about
/// are in tests/EdgeTwin.Uplink.Tests/Payloads/wire-corpus.v1.jsonl.
/// </summary>
public sealed class EventProducerSchemaTests
{
    private static readonly Lazy<JsonSchema> Schema = new(() =>
        JsonSchema.FromFile(Path.Combine(ReadmeSnippets.RepoRoot(), "src", "EdgeTwin.Uplink", "schema", "uplink-message.v1.schema.json")));

    private static void AssertFitsTheSchema(EdgeEvent e, string what)
    {
        var record = UplinkBodies.Event(new EdgeTwin.Outbox.Summaries.UplinkIdentity("gw1", "site1"), e);
        var envelope = JsonEnvelope.Encode(new EdgeTwin.Uplink.Payloads.UplinkIdentity("site1", "gw1"), new OutboxEntry(1, record), historical: false);
        var result = Schema.Value.Evaluate(JsonNode.Parse(envelope), new EvaluationOptions { OutputFormat = OutputFormat.List });
        var errors = result.Details.Where(d => d.Errors is { Count: > 0 }).SelectMany(d => d.Errors!.Select(x => $"{d.InstanceLocation}: {x.Value}"));
        Assert.True(result.IsValid, $"{what}: {string.Join('\n', errors)}\n{System.Text.Encoding.UTF8.GetString(envelope)}");
    }

    [Fact]
    public void A_maintenance_prediction_raised_updated_and_withdrawn_fits_the_schema()
    {
        var now = DateTimeOffset.FromUnixTimeMilliseconds(1_796_482_615_000);
        var raised = new MaintenancePrediction("m1", 0.72, 31.5, now.AddHours(31.5), "replace drive-end bearing", 6, 7200, "bearing-rul", "1.0.0")
        {
            PredictionId = "m1/20261205T150000Z",
            Horizon = TimeSpan.FromHours(48),
            InputsUntil = now.AddMinutes(-30),
            Currency = "EUR",
        };
        AssertFitsTheSchema(raised.ToEvent(now), "raised");
        AssertFitsTheSchema((raised with { State = "updated", FailureProbability = 0.93 }).ToEvent(now.AddHours(1)), "updated");
        AssertFitsTheSchema((raised with { State = "resolved", WithdrawnBecause = "repaired", RepairReportedBy = "ops", CostSource = "line-twin:line1" }).ToEvent(now.AddHours(2)), "withdrawn");
    }

    [Fact]
    public void A_cooling_units_prediction_with_what_its_failure_would_do_fits_the_schema()
    {
        var now = DateTimeOffset.FromUnixTimeMilliseconds(1_796_482_615_000);
        var whatIf = new EdgeTwin.Twin.Scenarios.CoolingFailureResult(
            "cooling_failure", "room1", ["crac1"], 45, 14400, 378, ["A03", "A01"], new Dictionary<string, int> { ["A03"] = 20 },
            [new("A03", 24.1, 60, 144, 378, 41.5, "expected"), new("A01", 23.0, 120, 300, null, 35.0, "expected"), new("A02", 21.0, null, null, null, 26.0)],
            [], 0.3);
        var consequence = EdgeTwin.Agent.Twin.Thermal.ThermalFailureConsequence.Describe("if crac1 stops for its 4 h repair", whatIf, "thermal-twin:room1");
        Assert.Equal("if crac1 stops for its 4 h repair: A03 reaches 32 °C in 2.4 min (peak 41.5 °C within 240 min), thermal shutdown in 6.3 min, 2 rack(s) affected (A03, A01)", consequence.Summary);
        Assert.Equal("A03,A01", consequence.Attributes["if_failed_affected_racks"]);
        Assert.Equal("2.4", consequence.Attributes["if_failed_time_to_32c_min"]);
        var raised = new MaintenancePrediction("crac1", 0.72, 31.5, now.AddHours(31.5), "replace crac1 blower bearings", 4, 3600, "bearing-rul", "1.1.0")
        {
            PredictionId = "crac1/20261205T150000Z",
            Horizon = TimeSpan.FromHours(48),
            InputsUntil = now.AddMinutes(-30),
            Consequence = consequence,
        };
        AssertFitsTheSchema(raised.ToEvent(now), "raised with a consequence");
        var unknown = new FailureConsequence("if crac1 stops: not known yet (the thermal twin of zone 'room1' is not calibrated yet)", new Dictionary<string, string> { ["if_failed_known"] = "false" }, "thermal-twin:room1");
        AssertFitsTheSchema((raised with { State = "updated", Consequence = unknown }).ToEvent(now.AddHours(1)), "updated, consequence not known");

        // With the repair's window: the best start over the next day, with its wall-clock time.
        EdgeTwin.Twin.Scenarios.CoolingWindowCandidate Start(double h, double peak, double? to32) =>
            new(h * 3600, peak, "A03", to32, null, to32 is null ? [] : ["A03"], 4, 60);
        var best = Start(13, 27.1, null);
        var window = new EdgeTwin.Twin.Scenarios.CoolingWindowResult("cooling_maintenance_window", "room1", ["crac1"], 14400, 3600, best, Start(3, 40.1, 1332), [Start(3, 40.1, 1332), best], 0.3);
        var withWindow = EdgeTwin.Agent.Twin.Thermal.ThermalFailureConsequence.Describe("if crac1 stops for its 4 h repair", whatIf, "thermal-twin:room1", window, now.ToUnixTimeSeconds());
        Assert.EndsWith("; for the repair: best start for crac1 stopped for 4 h: in 13 h (03:56 UTC), no rack reaches 32 °C (peak A03 27.1 °C, zone load 60 kW); the only one of 2 starts that holds; the worst: start in 3 h (17:56 UTC), A03 at 32 °C 22.2 min in", withWindow.Summary, StringComparison.Ordinal);
        Assert.Equal("2026-12-06T03:56:55.000Z", withWindow.Attributes["repair_window_best_start"]);
        Assert.Equal("1/2", withWindow.Attributes["repair_window_starts_holding"]);
        AssertFitsTheSchema((raised with { Consequence = withWindow }).ToEvent(now), "raised with the repair's window");

        // No start holds: what would (a shorter stop, a measure for the whole repair).
        var late = Start(13, 33.0, 9000);
        var none = new EdgeTwin.Twin.Scenarios.CoolingWindowResult("cooling_maintenance_window", "room1", ["crac1"], 14400, 3600, late, Start(3, 40.1, 1332), [Start(3, 40.1, 1332), late], 0.3)
        {
            Remedies = new EdgeTwin.Twin.Scenarios.CoolingWindowRemedies(8700, 13 * 3600, [new(1, "cap_load", ["A03"], "cap the IT load of A03 to 50 %", 1, 2, Start(13, 29.5, null))]) { HeatToRemoveKw = 6.3 },
        };
        var withRemedies = EdgeTwin.Agent.Twin.Thermal.ThermalFailureConsequence.Describe("if crac1 stops for its 4 h repair", whatIf, "thermal-twin:room1", none, now.ToUnixTimeSeconds());
        Assert.EndsWith("; to hold, stop for at most 2 h 25 min, starting in 13 h (03:56 UTC); or, for the whole 4 h, cap the IT load of A03 to 50 %: 1 of 2 starts hold, the best in 13 h (03:56 UTC) with peak A03 29.5 °C", withRemedies.Summary, StringComparison.Ordinal);
        Assert.Equal("2.42", withRemedies.Attributes["repair_window_longest_holding_stop_h"]);
        Assert.Equal("cap_load", withRemedies.Attributes["repair_window_measure"]);
        Assert.Equal("6.3", withRemedies.Attributes["repair_window_heat_to_remove_kw"]);
        AssertFitsTheSchema((raised with { Consequence = withRemedies }).ToEvent(now), "raised with the repair's remedies");
    }

    [Fact]
    public void A_multivariate_group_anomaly_fits_the_schema_beside_the_per_series_rule()
    {
        // MultivariateAnomalyStage's members (a group names several series and no one device, metric or value): the
        // per-series anomaly's requirements must not be applied to it.
        var e = new EdgeEvent(EdgeEventKind.Anomaly, "group:crac1-health", DateTimeOffset.FromUnixTimeMilliseconds(1_796_482_615_000), EventSeverity.Warning, "multivariate anomaly",
            new Dictionary<string, string>
            {
                ["score"] = "0.912", ["series"] = "crac1/supply_temperature,crac1/return_temperature", ["group"] = "crac1-health", ["error"] = "3.2", ["error_threshold"] = "1.5",
                ["features"] = "supply,return", ["values"] = "17.5,31.2", ["threshold"] = "0.8", ["model"] = "crac-ae", ["model_version"] = "1.0.0", ["version"] = "1.0.0",
            });
        AssertFitsTheSchema(e, "multivariate anomaly");
    }
}
