using System.Text.Json;

namespace EdgeTwin.IntegrationTests.Line;

/// <summary>
/// <c>edgetwin line oee|status</c> and <c>simulate</c> with <c>--date</c>: the shift of that day in the line's time zone
/// (Europe/Berlin), 9 h the night the clocks go back (2026-10-25) and 7 h the night they go forward (2026-03-29).
/// </summary>
public sealed class LineClockChangeCliTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string Line = """
        line:
          id: night
          shift: { length: 8h, starts: ["06:00", "14:00", "22:00"], time_zone: Europe/Berlin }
          planned_stops: [{ start: "04:00", duration: 15m, reason: break }]
          buffers: [{ id: B1, capacity: 10 }]
          stations:
            - { id: S1, ideal_cycle_time: 30s, mtbf: 8h, mttr: 10m, output: B1 }
            - { id: S2, ideal_cycle_time: 30s, inputs: [B1] }
        """;

    /// <summary>
    /// Plant manager: the state log of the 22:00 shift the night the clocks go back is 9 h long (time_s from 22:00 CEST);
    /// the 04:00 CET break is 7 h into it. Without a date the CLI could only book the break where it is on an ordinary
    /// night, 6 h in: S1 idle in the real break was waiting (availability 0.972) and its running an hour earlier
    /// planned time. With <c>--date</c> the shift of that day is booked as the live twin books it.
    /// </summary>
    [Fact]
    public async Task Regression_line_oee_of_the_night_the_clocks_go_back_booked_its_break_an_hour_early()
    {
        await WithFilesAsync("""
            time_s,station,state
            0,S1,running
            0,S2,running
            25200,S1,idle
            26100,S1,running
            32400,S1,running
            32400,S2,running
            """, async (config, log) =>
        {
            static double AvailabilityS1(string json) => JsonDocument.Parse(json).RootElement.GetProperty("machines")[0].GetProperty("availability").GetDouble();
            var (exit, output, error) = await InProcessCli.RunAsync("line", "oee", "--config", config, "--states", log, "--shift", "22:00", "--date", "2026-10-24", "--json");
            Assert.True(exit == 0, $"exit {exit}: {error}");
            Assert.Equal(1.0, AvailabilityS1(output), 9); // the idle 15 minutes are the break

            (exit, output, error) = await InProcessCli.RunAsync("line", "oee", "--config", config, "--states", log, "--shift", "22:00", "--json");
            Assert.True(exit == 0, $"exit {exit}: {error}");
            Assert.Equal(31500.0 / 32400, AvailabilityS1(output), 9); // a date-less shift: the break 6 h in
        });
    }

    [Fact]
    public async Task Line_status_and_simulate_with_a_date_take_the_real_length_and_planned_stops_of_that_shift()
    {
        await WithFilesAsync("", async (config, _) =>
        {
            static (double Hours, double BreakStart) Shift(string json)
            {
                var root = JsonDocument.Parse(json).RootElement;
                return (root.GetProperty("shift_hours").GetDouble(), root.GetProperty("planned_stops")[0].GetProperty("start_s").GetDouble());
            }

            var (exit, output, error) = await InProcessCli.RunAsync("line", "status", "--config", config, "--shift", "22:00", "--date", "2026-10-24", "--replications", "2", "--json");
            Assert.True(exit == 0, $"exit {exit}: {error}");
            Assert.Equal((9.0, 7 * 3600.0), Shift(output));
            (exit, output, error) = await InProcessCli.RunAsync("line", "status", "--config", config, "--shift", "22:00", "--date", "2026-03-28", "--replications", "2", "--json");
            Assert.True(exit == 0, $"exit {exit}: {error}");
            Assert.Equal((7.0, 5 * 3600.0), Shift(output)); // 04:00 CEST is 5 h after 22:00 CET
            (exit, output, error) = await InProcessCli.RunAsync("line", "status", "--config", config, "--shift", "22:00", "--replications", "2", "--json");
            Assert.True(exit == 0, $"exit {exit}: {error}");
            Assert.Equal((8.0, 6 * 3600.0), Shift(output));

            // --elapsed is bounded by that shift: 500 min is inside the 9-h night, not the 7-h one.
            (exit, _, error) = await InProcessCli.RunAsync("simulate", "machine-down", "--config", config, "--station", "S1", "--minutes", "10", "--elapsed", "500", "--shift", "22:00", "--date", "2026-10-24", "--replications", "2");
            Assert.True(exit == 0, $"exit {exit}: {error}");
            (exit, _, error) = await InProcessCli.RunAsync("simulate", "machine-down", "--config", config, "--station", "S1", "--minutes", "10", "--elapsed", "500", "--shift", "22:00", "--date", "2026-03-28", "--replications", "2");
            Assert.Equal(2, exit);
            Assert.Contains("420 min", error, StringComparison.Ordinal);

            (exit, _, error) = await InProcessCli.RunAsync("line", "status", "--config", config, "--date", "25.10.2026");
            Assert.Equal(2, exit);
            Assert.Contains("--date: expected a day like 2026-10-24, got '25.10.2026'", error, StringComparison.Ordinal);
        });
    }

    private static async Task WithFilesAsync(string csv, Func<string, string, Task> test)
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-dst-");
        try
        {
            var config = Path.Combine(dir.FullName, "line.yaml");
            var log = Path.Combine(dir.FullName, "states.csv");
            await File.WriteAllTextAsync(config, Line, Ct);
            await File.WriteAllTextAsync(log, csv, Ct);
            await test(config, log);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
