using System.Text.Json;
using EdgeTwin.Agent.Line;
using EdgeTwin.Core.Config;
using EdgeTwin.IntegrationTests.Simulator;
using EdgeTwin.Twin.Line;
using EdgeTwin.Twin.Line.Scenarios;

namespace EdgeTwin.IntegrationTests.Line;

/// <summary><c>edgetwin simulate machine-down|maintenance-window --json</c> on the example line: the JSON the MQTT request server also sends.</summary>
public sealed class LineScenarioCommandTests
{
    private static readonly string Line1 = Path.Combine(SimPaths.Root, "src", "EdgeTwin.Twin", "Line", "examples", "line1.yaml");

    [Fact]
    public async Task Machine_down_json_is_the_scenario_result_on_the_configured_line()
    {
        var (exit, output, error) = await InProcessCli.RunAsync("simulate", "machine-down", "--config", Line1, "--station", "S3", "--minutes", "40", "--elapsed", "60", "--replications", "20", "--json");
        Assert.True(exit == 0, $"exit {exit}: {error}");
        var c = Config();
        var buffers = c.Spec.Buffers.Select(b => new LineCli.BufferStart(b.Id, b.Capacity / 2, b.Capacity, false)).ToArray();
        var expected = LineScenarioJson.MachineDown("line1", 60, "S3", 40, 0,
            new LineScenarios(c.Spec, c.ShiftLength.TotalSeconds, c.MarginPerUnit) { Replications = 20, PlannedStops = c.PlannedWindows(TimeSpan.FromHours(6)) }.MachineDown(new LineNow(3600, 0, LineSnapshot.Assumed(c.Spec)), "S3", 2400), c.MarginPerUnit, buffers, 40);
        Assert.Equal(expected, output.Trim());
        var lost = JsonDocument.Parse(output).RootElement.GetProperty("lost_output");
        Assert.True(lost.GetProperty("low").GetDouble() <= lost.GetProperty("mean").GetDouble() && lost.GetProperty("mean").GetDouble() <= lost.GetProperty("high").GetDouble(), output);
        // low/high say their level: the engine's, not a figure the reader has to know.
        double level = new LineScenarios(c.Spec, c.ShiftLength.TotalSeconds, c.MarginPerUnit).Confidence;
        Assert.Equal(level, lost.GetProperty("level").GetDouble());
        Assert.Equal(level, JsonDocument.Parse(output).RootElement.GetProperty("cost").GetProperty("level").GetDouble());

        (exit, output, error) = await InProcessCli.RunAsync("simulate", "machine-down", "--config", Line1, "--station", "S3", "--minutes", "40", "--replications", "5");
        Assert.True(exit == 0, $"exit {exit}: {error}");
        Assert.Contains("parts (90 % CI ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_machine_down_with_elapsed_started_from_empty_buffers_unlike_the_live_twin()
    {
        // Two hours into the shift S1 stops for 10 min. The CLI started from the configured (empty) buffers while the live
        // twin assumes them half full, and said nothing: 14 lost parts instead of about 2 on the audit's line.
        var (exit, output, error) = await InProcessCli.RunAsync("simulate", "machine-down", "--config", Line1, "--station", "S1", "--minutes", "10", "--elapsed", "120", "--replications", "20", "--json");
        Assert.True(exit == 0, $"exit {exit}: {error}");
        var root = JsonDocument.Parse(output).RootElement;
        var c = Config();
        foreach (var b in c.Spec.Buffers)
        {
            var level = root.GetProperty("buffer_levels").GetProperty(b.Id);
            Assert.Equal((b.Capacity / 2, "assumed"), (level.GetProperty("level").GetInt32(), level.GetProperty("source").GetString()));
        }
        // The live twin's basis (half-full buffers, LineSnapshot.Assumed) gives the same answer for the same question.
        var live = new LineScenarios(c.Spec, c.ShiftLength.TotalSeconds, c.MarginPerUnit) { Replications = 20, PlannedStops = c.PlannedWindows(TimeSpan.FromHours(6)) }
            .MachineDown(new LineNow(7200, 0, LineSnapshot.Assumed(c.Spec)), "S1", 600);
        Assert.Equal(live.LostOutput.Mean, root.GetProperty("lost_output").GetProperty("mean").GetDouble(), 9);

        // A given level is used and said so; the text names every level and what was assumed.
        (exit, output, error) = await InProcessCli.RunAsync("simulate", "machine-down", "--config", Line1, "--station", "S1", "--minutes", "10", "--elapsed", "120", "--replications", "5", "--buffer", "B1=0");
        Assert.True(exit == 0, $"exit {exit}: {error}");
        Assert.Contains($"buffers at the start: B1 0/{c.Spec.Buffers[0].Capacity} given, B2 {c.Spec.Buffers[1].Capacity / 2}/{c.Spec.Buffers[1].Capacity}", output, StringComparison.Ordinal);
        Assert.Contains("(not given: assumed half full, as the live twin does", output, StringComparison.Ordinal);

        (exit, _, error) = await InProcessCli.RunAsync("simulate", "machine-down", "--config", Line1, "--station", "S1", "--minutes", "10", "--buffer", "B9=3");
        Assert.Equal(2, exit);
        Assert.Contains("--buffer B9=3: expected BUFFER=LEVEL with a buffer of line line1", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_stops_beyond_the_end_of_the_shift_were_silently_truncated_or_ignored()
    {
        // line1's shift is 480 min: a stop 600 min from now cost "0 parts" with exit 0, one of 60 min at 470 min was
        // headed "down 60 min" and costed 10.
        var (exit, _, error) = await InProcessCli.RunAsync("simulate", "machine-down", "--config", Line1, "--station", "S4", "--minutes", "30", "--start-in", "600", "--replications", "5");
        Assert.Equal(2, exit);
        Assert.Contains("--start-in 600 min is past the end of the shift (480 min left after --elapsed 0)", error, StringComparison.Ordinal);

        (exit, var output, error) = await InProcessCli.RunAsync("simulate", "machine-down", "--config", Line1, "--station", "S4", "--minutes", "60", "--elapsed", "470", "--replications", "5");
        Assert.True(exit == 0, $"exit {exit}: {error}");
        Assert.Contains("only 10 of the 60 min fall in this shift; the rest (into the next shift) is not costed", output, StringComparison.Ordinal);
        (exit, output, error) = await InProcessCli.RunAsync("simulate", "machine-down", "--config", Line1, "--station", "S4", "--minutes", "60", "--elapsed", "470", "--replications", "5", "--json");
        Assert.True(exit == 0, $"exit {exit}: {error}");
        Assert.Equal(10, JsonDocument.Parse(output).RootElement.GetProperty("costed_minutes").GetDouble());
    }

    [Fact]
    public async Task Maintenance_window_json_lists_every_candidate_and_a_station_not_in_the_line_is_an_error()
    {
        var (exit, output, error) = await InProcessCli.RunAsync("simulate", "maintenance-window", "--config", Line1, "--station", "S2", "--minutes", "90", "--step", "120", "--replications", "5", "--json");
        Assert.True(exit == 0, $"exit {exit}: {error}");
        var root = JsonDocument.Parse(output).RootElement;
        Assert.Equal("maintenance_window", root.GetProperty("scenario").GetString());
        Assert.Equal(4, root.GetProperty("candidates").GetArrayLength()); // 0, 120, 240, 360 min: a 90 min window fits in 8 h
        var best = root.GetProperty("best_start_minute").GetDouble();
        Assert.Contains(root.GetProperty("candidates").EnumerateArray(), x => x.GetProperty("start_minute").GetDouble() == best);
        Assert.All(root.GetProperty("candidates").EnumerateArray(), x => Assert.Equal(0.9, x.GetProperty("level").GetDouble()));
        Assert.Equal(0.9, root.GetProperty("best_lost_output").GetProperty("level").GetDouble());

        (exit, _, error) = await InProcessCli.RunAsync("simulate", "maintenance-window", "--config", Line1, "--station", "S9", "--minutes", "90");
        Assert.Equal(2, exit);
        Assert.Contains("station 'S9' is not in line line1 (S1, S2, S3, S4)", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_shifts_planned_stops_lower_the_expected_output_and_a_bad_shift_is_an_error()
    {
        // line1's calendar has a 15-minute break at 10:00: in the 06:00 shift, not in the 14:00 one.
        var (exit, output, error) = await InProcessCli.RunAsync("line", "status", "--config", Line1, "--replications", "20", "--json");
        Assert.True(exit == 0, $"exit {exit}: {error}");
        var morning = JsonDocument.Parse(output).RootElement;
        var stop = Assert.Single(morning.GetProperty("planned_stops").EnumerateArray());
        Assert.Equal((240 * 60.0, 255 * 60.0, "break"), (stop.GetProperty("start_s").GetDouble(), stop.GetProperty("end_s").GetDouble(), stop.GetProperty("reason").GetString()));

        (exit, output, error) = await InProcessCli.RunAsync("line", "status", "--config", Line1, "--replications", "20", "--json", "--shift", "14:00");
        Assert.True(exit == 0, $"exit {exit}: {error}");
        var afternoon = JsonDocument.Parse(output).RootElement;
        Assert.Equal(0, afternoon.GetProperty("planned_stops").GetArrayLength());
        double lost = afternoon.GetProperty("shift_output").GetProperty("mean").GetDouble() - morning.GetProperty("shift_output").GetProperty("mean").GetDouble();
        Assert.InRange(lost, 15, 30); // 15 min of a line making about 90 parts an hour (same seeds, common random numbers)

        (exit, _, error) = await InProcessCli.RunAsync("line", "status", "--config", Line1, "--shift", "25:00");
        Assert.Equal(2, exit);
        Assert.Contains("--shift: expected a time of day like 06:00, got '25:00'", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Line_oee_from_a_state_log_books_the_shifts_planned_stop_as_planned_and_names_a_bad_line()
    {
        // S1 stands idle through line1's 10:00 break (240–255 min into the 06:00 shift) and runs otherwise; the log
        // counts seconds from the shift's start.
        await WithStateLogAsync("edgetwin-oee-", """
            time_s,station,state
            0,S1,running
            0,S2,running
            0,S3,running
            0,S4,running
            14400,S1,idle
            15300,S1,running
            21600,S1,running
            """, async log =>
        {
            double AvailabilityS1(string json) => JsonDocument.Parse(json).RootElement.GetProperty("machines")[0].GetProperty("availability").GetDouble();
            var (exit, output, error) = await InProcessCli.RunAsync("line", "oee", "--config", Line1, "--states", log, "--json");
            Assert.True(exit == 0, $"exit {exit}: {error}");
            Assert.Equal(1.0, AvailabilityS1(output), 9); // the idle 15 minutes are the break

            (exit, output, error) = await InProcessCli.RunAsync("line", "oee", "--config", Line1, "--states", log, "--json", "--shift", "14:00");
            Assert.True(exit == 0, $"exit {exit}: {error}");
            Assert.Equal(20700.0 / 21600, AvailabilityS1(output), 9); // no break in the 14:00 shift: waiting

            await File.AppendAllTextAsync(log, "\n22000,S9,running\n", Ct);
            (exit, _, error) = await InProcessCli.RunAsync("line", "oee", "--config", Line1, "--states", log);
            Assert.Equal(2, exit);
            Assert.Contains("states.csv:9: station 'S9' is not in the line", error, StringComparison.Ordinal);
        });
    }

    [Fact]
    public async Task Line_bottleneck_from_a_state_log_names_the_station_with_the_longest_active_periods_and_a_bad_log_is_exit_2()
    {
        // In the 14:00 shift (no break) S3 runs all along while the others pause 100 s once: S3's one active period is
        // the whole 21,600 s, the others' two average (7,200 + 14,300) / 2 = 10,750 s.
        await WithStateLogAsync("edgetwin-bottleneck-", """
            time_s,station,state
            0,S1,running
            0,S2,running
            0,S3,running
            0,S4,running
            7200,S1,starved
            7200,S2,starved
            7200,S4,blocked
            7300,S1,running
            7300,S2,running
            7300,S4,running
            21600,S3,running
            """, async log =>
        {
            var (exit, output, error) = await InProcessCli.RunAsync("line", "bottleneck", "--config", Line1, "--states", log, "--shift", "14:00", "--json");
            Assert.True(exit == 0, $"exit {exit}: {error}");
            using (var json = JsonDocument.Parse(output))
            {
                Assert.Equal("S3", json.RootElement.GetProperty("bottleneck").GetString());
                var mean = json.RootElement.GetProperty("stations").EnumerateArray().ToDictionary(s => s.GetProperty("station").GetString()!, s => s.GetProperty("mean_active_seconds").GetDouble());
                Assert.Equal(21600, mean["S3"], 6);
                Assert.Equal(10750, mean["S1"], 6);
            }

            (exit, output, error) = await InProcessCli.RunAsync("line", "bottleneck", "--config", Line1, "--states", log, "--shift", "14:00");
            Assert.True(exit == 0, $"exit {exit}: {error}");
            Assert.StartsWith($"line line1, {log}: bottleneck S3", output, StringComparison.Ordinal);

            await File.AppendAllTextAsync(log, "\n22000,S9,running\n", Ct);
            (exit, output, error) = await InProcessCli.RunAsync("line", "bottleneck", "--config", Line1, "--states", log);
            Assert.Equal(2, exit);
            Assert.Equal("", output);
            Assert.StartsWith("line bottleneck: ", error, StringComparison.Ordinal);
            Assert.Contains("states.csv:13: station 'S9' is not in the line", error, StringComparison.Ordinal);
        });
    }

    /// <summary>
    /// Audit (shift supervisor's typos): `--replications 0` ran 2 and printed "2 paired replications"; `--shift 07:00` on a
    /// 06/14/22 calendar was taken as a shift start and moved the 10:00 break to 180 min; `--minutes -5` and `--minutes 600`
    /// got one sentence listing every rule without saying which value broke which.
    /// </summary>
    [Fact]
    public async Task Regression_nonsense_what_if_arguments_were_run_anyway_or_not_named_in_the_error()
    {
        var (exit, output, error) = await InProcessCli.RunAsync("simulate", "machine-down", "--config", Line1, "--station", "S3", "--minutes", "40", "--replications", "0");
        Assert.Equal((2, ""), (exit, output));
        Assert.Contains("--replications 0: at least 2 are needed", error, StringComparison.Ordinal);
        (exit, _, error) = await InProcessCli.RunAsync("line", "status", "--config", Line1, "--replications", "-3");
        Assert.Equal(2, exit);
        Assert.Contains("--replications -3: at least 2 are needed", error, StringComparison.Ordinal);

        (exit, output, error) = await InProcessCli.RunAsync("simulate", "machine-down", "--config", Line1, "--station", "S3", "--minutes", "40", "--replications", "5", "--shift", "07:00");
        Assert.Equal((2, ""), (exit, output));
        Assert.Contains("--shift 07:00 is not a shift start of line line1 (06:00, 14:00, 22:00)", error, StringComparison.Ordinal);

        (exit, _, error) = await InProcessCli.RunAsync("simulate", "machine-down", "--config", Line1, "--station", "S3", "--minutes", "-5");
        Assert.Equal(2, exit);
        Assert.Contains("simulate machine-down: --minutes -5: must be > 0", error, StringComparison.Ordinal);
        (exit, _, error) = await InProcessCli.RunAsync("simulate", "machine-down", "--config", Line1, "--station", "S3", "--minutes", "40", "--elapsed", "500");
        Assert.Equal(2, exit);
        Assert.Contains("simulate machine-down: --elapsed 500: must be at least 0 and less than the shift's 480 min", error, StringComparison.Ordinal);

        (exit, _, error) = await InProcessCli.RunAsync("simulate", "maintenance-window", "--config", Line1, "--station", "S3", "--minutes", "600");
        Assert.Equal(2, exit);
        Assert.Contains("simulate maintenance-window: --minutes 600: does not fit in the 480 min left of the shift", error, StringComparison.Ordinal);
        (exit, _, error) = await InProcessCli.RunAsync("simulate", "maintenance-window", "--config", Line1, "--station", "S9", "--minutes", "60");
        Assert.Equal(2, exit);
        Assert.Contains("simulate maintenance-window: station 'S9' is not in line line1 (S1, S2, S3, S4)", error, StringComparison.Ordinal);
        (exit, _, error) = await InProcessCli.RunAsync("simulate", "maintenance-window", "--config", Line1, "--station", "S3", "--minutes", "60", "--step", "0");
        Assert.Equal(2, exit);
        Assert.Contains("simulate maintenance-window: --step 0: must be > 0", error, StringComparison.Ordinal);
    }

    /// <summary>
    /// Audit: a part counter in a state log that is not a whole count ("12.5", "-3", a typo) was skipped without a word,
    /// so the machine's parts silently went missing from its OEE.
    /// </summary>
    [Fact]
    public async Task Regression_a_state_log_counter_that_was_not_a_count_was_skipped_silently()
    {
        await WithStateLogAsync("edgetwin-oee-counter-", """
            time_s,station,state,good_count,reject_count
            0,S4,running,100,0
            3600,S4,running,2l0,0
            """, async log =>
        {
            var (exit, output, error) = await InProcessCli.RunAsync("line", "oee", "--config", Line1, "--states", log);
            Assert.Equal((2, ""), (exit, output));
            Assert.Contains("states.csv:3: good_count '2l0' is not a counter reading (a whole number ≥ 0)", error, StringComparison.Ordinal);
        });
    }

    /// <summary>
    /// Audit: S4 marked unknown for 10 minutes in a state log had that time taken out of its planned busy time (right), but
    /// `line oee` showed availability 100 % and nothing else: the unknown time was in neither the text nor the JSON.
    /// </summary>
    [Fact]
    public async Task Regression_unknown_time_in_a_state_log_was_shown_nowhere_by_line_oee()
    {
        await WithStateLogAsync("edgetwin-oee-unknown-", """
            time_s,station,state
            0,S1,running
            0,S2,running
            0,S3,running
            0,S4,running
            3600,S4,unknown
            4200,S4,running
            7200,S1,running
            7200,S2,running
            7200,S3,running
            7200,S4,running
            """, async log =>
        {
            var (exit, output, error) = await InProcessCli.RunAsync("line", "oee", "--config", Line1, "--states", log, "--shift", "14:00", "--json");
            Assert.True(exit == 0, $"exit {exit}: {error}");
            var s4 = JsonDocument.Parse(output).RootElement.GetProperty("machines")[3];
            Assert.Equal((600.0, 6600.0), (s4.GetProperty("unknown_time").GetDouble(), s4.GetProperty("planned_busy_time").GetDouble()));

            (exit, output, error) = await InProcessCli.RunAsync("line", "oee", "--config", Line1, "--states", log, "--shift", "14:00");
            Assert.True(exit == 0, $"exit {exit}: {error}");
            Assert.Contains("no readings (unknown, outside the books): S4 10 min", output, StringComparison.Ordinal);
        });
    }

    /// <summary>
    /// Plant manager: `line oee` showed quality 100 % for S4, whose profile has no reject counter — as if it made no bad
    /// parts. Its rejects are not measured: quality n/a with the reason, the OEE marked as A × P; in JSON quality null with
    /// `quality_no_data` and `oee_basis`. S1, whose log gives its rejects, keeps its quality; the line's is S4's.
    /// </summary>
    [Fact]
    public async Task Regression_line_oee_showed_quality_100_percent_for_a_station_without_a_reject_counter()
    {
        await WithStateLogAsync("edgetwin-oee-noreject-", """
            time_s,station,state,good_count,reject_count
            0,S1,running,0,0
            0,S2,running
            0,S3,running
            0,S4,running,0,
            3600,S1,running,110,10
            3600,S2,running
            3600,S3,running
            3600,S4,running,100,
            """, async log =>
        {
            var (exit, output, error) = await InProcessCli.RunAsync("line", "oee", "--config", Line1, "--states", log, "--json");
            Assert.True(exit == 0, $"exit {exit}: {error}");
            var machines = JsonDocument.Parse(output).RootElement.GetProperty("machines");
            var s4 = machines[3];
            Assert.Equal(JsonValueKind.Null, s4.GetProperty("quality_rate").ValueKind);
            Assert.Equal("no reject counter", s4.GetProperty("quality_no_data").GetString());
            Assert.Equal("A*P", s4.GetProperty("oee_basis").GetString());
            Assert.Equal(100 * 30.0 / 3600, s4.GetProperty("oee").GetDouble(), 9); // A 1 × P (100 parts × 30 s / 3600 s)
            Assert.Equal(110.0 / 120, machines[0].GetProperty("quality_rate").GetDouble(), 9);
            Assert.Equal("A*P*Q", machines[0].GetProperty("oee_basis").GetString());
            var line = machines[4];
            Assert.Equal(("LINE", JsonValueKind.Null, "A*P"), (line.GetProperty("id").GetString(), line.GetProperty("quality_rate").ValueKind, line.GetProperty("oee_basis").GetString()));

            (exit, output, error) = await InProcessCli.RunAsync("line", "oee", "--config", Line1, "--states", log);
            Assert.True(exit == 0, $"exit {exit}: {error}");
            var row = output.Split('\n').Single(l => l.StartsWith("S4 ", StringComparison.Ordinal));
            // A 100 %, P 83.3 %, quality n/a (it read 100.0 %), OEE 83.3 % marked as A × P, rejects n/a (it read 0).
            Assert.Matches(@"^S4\s+100\.0 %\s+83\.3 %\s+n/a\s+83\.3 %\*\s+100†\s+n/a ", row);
            Assert.Contains("quality n/a (no reject counter): S4, LINE", output, StringComparison.Ordinal);
            Assert.Contains("OEE = A × P", output, StringComparison.Ordinal);
        });
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Runs <paramref name="test"/> on a state log holding <paramref name="csv"/>, in a temporary folder it deletes after.</summary>
    private static async Task WithStateLogAsync(string prefix, string csv, Func<string, Task> test)
    {
        var dir = Directory.CreateTempSubdirectory(prefix);
        try
        {
            var log = Path.Combine(dir.FullName, "states.csv");
            await File.WriteAllTextAsync(log, csv, Ct);
            await test(log);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static LineTwinConfig Config()
    {
        var d = new ConfigDiagnostics();
        var c = LineTwinConfig.Parse(File.ReadAllText(Line1), Line1, d)!;
        Assert.True(d.IsEmpty);
        return c;
    }
}
