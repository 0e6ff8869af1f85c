using EdgeTwin.Core.Config;
using EdgeTwin.Twin.Line;
using EdgeTwin.Twin.Line.Scenarios;
using EdgeTwin.Twin.Models;
using EdgeTwin.Twin.Models.Maintenance;
using EdgeTwin.Twin.Models.Rul;

namespace EdgeTwin.Twin.Tests.Line;

/// <summary>The maintenance hook: downtime and cost of an unplanned failure from the line model.</summary>
public sealed class FailureCostTests
{
    private const string Yaml = """
        line:
          id: line1
          tick: 1s
          margin_per_unit: 12.5
          shift: { length: 8h, starts: ["06:00"] }
          buffers:
            - { id: B1, capacity: 10 }
            - { id: B2, capacity: 10 }
          stations:
            - { id: S1, machine: m1, ideal_cycle_time: 30s, mtbf: 8h, mttr: 40m, output: B1 }
            - { id: S2, machine: m2, ideal_cycle_time: 36s, mtbf: 8h, mttr: 20m, inputs: [B1], output: B2 }
            - { id: S3, ideal_cycle_time: 30s, inputs: [B2] }
        """;

    private static LineTwinConfig Config()
    {
        var d = new ConfigDiagnostics();
        var c = LineTwinConfig.Parse(Yaml, "line.yaml", d);
        Assert.Empty(d.Items);
        return c!;
    }

    private static DateTimeOffset Local(int hour, int minute = 0)
    {
        var t = new DateTime(2026, 11, 30, hour, minute, 0, DateTimeKind.Local);
        return new DateTimeOffset(t);
    }

    [Fact]
    public void In_shift_downtime_is_the_MTTR_and_cost_the_lost_output_times_the_margin()
    {
        var config = Config();
        var model = new LineFailureCostModel(config, () => config.Spec);
        var cost = model.Estimate("m1", Local(9));
        Assert.NotNull(cost);
        Assert.Equal(40.0 / 60, cost.DowntimeHours, 6);
        Assert.Equal("line-twin:line1", cost.Source);

        // The same what-if by hand: S1 down 40 min; B1 (10 parts × 36 s at the bottleneck S2) covers 6 min of it.
        var direct = new LineScenarios(config.Spec, 2400 + 3600, 12.5) { Replications = 40 }
            .MachineDown(new LineNow(0, 0, new LineSnapshot([5, 5], [false, false, false])), "S1", 2400);
        Assert.Equal(direct.Cost.Mean, cost.Cost, 6);
        // Lost output is roughly the stop minus what the buffer covers, at the bottleneck's rate: (40 − 3) min / 36 s ≈ 62 parts.
        Assert.InRange(cost.Cost / 12.5, 45, 75);
    }

    [Fact]
    public void A_station_is_found_by_machine_or_id_and_unknown_machines_fall_back()
    {
        var config = Config();
        var model = new LineFailureCostModel(config, () => config.Spec);
        Assert.NotNull(model.Estimate("S2", Local(9)));
        Assert.Null(model.Estimate("m9", Local(9)));
        Assert.Null(model.Estimate("S3", Local(9))); // never fails, no repair time known
    }

    [Fact]
    public void Off_shift_only_the_repair_time_that_runs_into_the_next_shift_costs_output()
    {
        var config = Config();
        var model = new LineFailureCostModel(config, () => config.Spec);
        // One shift 06:00–14:00. A failure at 20:00 is repaired long before 06:00.
        var night = model.Estimate("m1", Local(20));
        Assert.NotNull(night);
        Assert.Equal(0, night.Cost);
        Assert.Equal(40.0 / 60, night.DowntimeHours, 6);
        // At 05:40 with a 40-minute repair, 20 minutes run into the shift.
        Assert.Equal(1200, model.ProductionTimeLost(Local(5, 40), 2400), 6);
        var early = model.Estimate("m1", Local(5, 40));
        var inShift = model.Estimate("m1", Local(9));
        Assert.True(early!.Cost > 0 && early.Cost < inShift!.Cost, $"{early.Cost} vs {inShift!.Cost}");
    }

    [Fact]
    public void Only_the_repair_time_in_planned_production_costs_output()
    {
        // The 06:00–14:00 shift with a line-wide break at 10:00 and S1's own changeover at 12:00.
        var d = new ConfigDiagnostics();
        var config = LineTwinConfig.Parse(Yaml.Replace("  buffers:", """
              planned_stops:
                - { start: "10:00", duration: 15m, reason: break }
                - { start: "12:00", duration: 30m, station: S1, reason: changeover }
              buffers:
            """, StringComparison.Ordinal), "line.yaml", d)!;
        Assert.Empty(d.Items);
        var model = new LineFailureCostModel(config, () => config.Spec);

        Assert.Equal(2400, model.ProductionTimeLost(Local(9), 2400, station: 0), 6);
        Assert.Equal(1500, model.ProductionTimeLost(Local(9, 50), 2400, station: 0), 6);  // 40 min less the 15-min break
        Assert.Equal(600, model.ProductionTimeLost(Local(11, 50), 2400, station: 0), 6);  // S1's changeover takes 30 of them
        Assert.Equal(2400, model.ProductionTimeLost(Local(11, 50), 2400, station: 1), 6); // not S2's
        Assert.Equal(1800, model.ProductionTimeLost(Local(13, 30), 2400, station: 1), 6); // the shift ends at 14:00
        Assert.True(model.Estimate("m1", Local(9, 50))!.Cost < model.Estimate("m1", Local(9))!.Cost);
    }

    [Fact]
    public void Learned_repair_times_drive_the_estimate()
    {
        var config = Config();
        var learned = config.Spec with { Stations = [config.Spec.Stations[0] with { MttrSeconds = 7200 }, .. config.Spec.Stations.Skip(1)] };
        var spec = config.Spec;
        var model = new LineFailureCostModel(config, () => spec);
        var before = model.Estimate("m1", Local(9))!;
        spec = learned;
        var after = model.Estimate("m1", Local(9))!;
        Assert.Equal(2, after.DowntimeHours, 6);
        Assert.True(after.Cost > 2.5 * before.Cost, $"{after.Cost} vs {before.Cost}");
    }

    [Fact]
    public void The_maintenance_predictor_takes_its_figures_from_the_line()
    {
        var config = Config();
        var predictor = new MaintenancePredictor(
            new MaintenanceSettings(0.7, TimeSpan.FromHours(48), TimeSpan.FromHours(1)),
            new Dictionary<string, MachineRepairFigures> { ["m1"] = new(6, 1200, "replace the drive-end bearing"), ["m7"] = new(2, 100, "grease") },
            new LineFailureCostModel(config, () => config.Spec));
        var model = new ModelEntry("machine-health", "1.2.0", "rul", "m.onnx", new string('0', 64), [], []);
        var uncertainty = new RulUncertainty(0, [double.PositiveInfinity], [10]);
        var now = Local(0);
        var p = predictor.Evaluate("m1", 33, uncertainty, model, now); // fails at 09:00, in the shift
        Assert.NotNull(p);
        Assert.Equal(40.0 / 60, p.ExpectedDowntimeHours, 6);
        Assert.Equal(new LineFailureCostModel(config, () => config.Spec).Estimate("m1", now.AddHours(33))!.Cost, p.Cost, 6);
        var off = predictor.Evaluate("m7", 33, uncertainty, model, now); // not on the line: fixed figures
        Assert.Equal(200, off!.Cost);
    }

    /// <summary>
    /// Plant manager: the cost of an unplanned failure was wrong across a daylight-saving change. The shift calendar is
    /// wall-clock time in the site's zone (Europe/Berlin) and the repair real time, but the calendar was walked by the
    /// wall clock: the night shift 22:00–06:00 counted 8 h the night the clocks go forward (it is 7 h) and the night they
    /// go back (9 h), and a repair's end moved by the hour skipped or repeated.
    /// </summary>
    [Fact]
    public void Regression_the_cost_of_a_failure_across_a_daylight_saving_change_walked_the_calendar_by_the_wall_clock()
    {
        var d = new ConfigDiagnostics();
        var config = LineTwinConfig.Parse("""
            line:
              id: line1
              margin_per_unit: 12.5
              shift: { length: 8h, starts: ["22:00"], time_zone: Europe/Berlin }
              planned_stops: [{ start: "04:00", duration: 30m, reason: break }]
              buffers: [{ id: B1, capacity: 10 }]
              stations:
                - { id: S1, machine: m1, ideal_cycle_time: 30s, mtbf: 8h, mttr: 40m, output: B1 }
                - { id: S2, ideal_cycle_time: 30s, inputs: [B1] }
            """, "line.yaml", d)!;
        Assert.Empty(d.Items);
        var model = new LineFailureCostModel(config, () => config.Spec);
        static DateTimeOffset Utc(int month, int day, int hour) => new(2026, month, day, hour, 0, 0, TimeSpan.Zero);

        // Spring forward, 2026-03-29 02:00 CET → 03:00 CEST. A repair from 22:00 CET (21:00 UTC) lasting 10 h takes the
        // whole night shift: 7 h of production less the 30-min break (it counted 8 h less the break).
        Assert.Equal(6.5 * 3600, model.ProductionTimeLost(Utc(3, 28, 21), 10 * 3600), 6);
        // From 01:00 CET (00:00 UTC) for 6 h: the shift ends at 06:00 CEST = 04:00 UTC, 4 h later, less the break (it said 5 h less the break).
        Assert.Equal(3.5 * 3600, model.ProductionTimeLost(Utc(3, 29, 0), 6 * 3600), 6);

        // Fall back, 2026-10-25 03:00 CEST → 02:00 CET. The same night shift runs 9 h (it counted 8 h).
        Assert.Equal(8.5 * 3600, model.ProductionTimeLost(Utc(10, 24, 20), 10 * 3600), 6);
        // From 01:00 CEST (23:00 UTC) for 8 h: the shift ends at 06:00 CET = 05:00 UTC, 6 h later, less the break (it said 5 h).
        Assert.Equal(5.5 * 3600, model.ProductionTimeLost(Utc(10, 24, 23), 8 * 3600), 6);

        // An ordinary night is 8 h, by either clock.
        Assert.Equal(7.5 * 3600, model.ProductionTimeLost(Utc(11, 28, 21), 10 * 3600), 6);
    }
    /// <summary>
    /// Plant manager: a failure in a break next to the hour the clocks skip or repeat. A stop's end was its wall-clock end:
    /// the night the clocks go back a 30-min break at 01:45 ran to the second 02:15 (90 min, so a 30-min repair at the first
    /// 02:15 cost nothing), the night they go forward one at 02:30 (03:30 CEST) ended at 03:00 CEST and vanished (a repair
    /// in it cost 30 min of production). A stop lasts its duration, like in the live twin's books.
    /// </summary>
    [Fact]
    public void Regression_the_cost_of_a_failure_next_to_a_daylight_saving_change_took_a_break_as_90_min_or_none()
    {
        LineFailureCostModel Model(string stop)
        {
            var d = new ConfigDiagnostics();
            var config = LineTwinConfig.Parse($$"""
                line:
                  id: line1
                  margin_per_unit: 12.5
                  shift: { length: 8h, starts: ["22:00"], time_zone: Europe/Berlin }
                  planned_stops: [{ start: "{{stop}}", duration: 30m, reason: break }]
                  buffers: [{ id: B1, capacity: 10 }]
                  stations:
                    - { id: S1, machine: m1, ideal_cycle_time: 30s, mtbf: 8h, mttr: 40m, output: B1 }
                    - { id: S2, ideal_cycle_time: 30s, inputs: [B1] }
                """, "line.yaml", d)!;
            Assert.Empty(d.Items);
            return new LineFailureCostModel(config, () => config.Spec);
        }

        // 2026-10-25: break 01:45–02:15 CEST (23:45–00:15 UTC); a repair 02:15–02:45 CEST is production time.
        Assert.Equal(1800, Model("01:45").ProductionTimeLost(new DateTimeOffset(2026, 10, 25, 0, 15, 0, TimeSpan.Zero), 1800), 6);
        // 2026-03-29: break 03:30–04:00 CEST (01:30–02:00 UTC); a repair in it costs nothing.
        Assert.Equal(0, Model("02:30").ProductionTimeLost(new DateTimeOffset(2026, 3, 29, 1, 30, 0, TimeSpan.Zero), 1800), 6);
        // An ordinary night: the break is 30 min either way.
        Assert.Equal(0, Model("01:45").ProductionTimeLost(new DateTimeOffset(2026, 11, 29, 0, 45, 0, TimeSpan.Zero), 1800), 6);
    }
}

