using System.Globalization;
using System.Text;
using System.Text.Json;
using EdgeTwin.IntegrationTests.Simulator;

namespace EdgeTwin.IntegrationTests.Twin;

/// <summary>
/// <c>edgetwin simulate capacity|feed-failure|load-change|add-rack --site FILE --history CSV</c> on a recorded trend with a
/// known answer.
/// </summary>
public sealed class SimulateCapacityCommandTests
{
    private const int Hours = 28 * 24;

    /// <summary>The three feeds that are full at the same zone load in the capacity history (a tie: any may be named).</summary>
    private static readonly string[] FirstFullFeeds = ["pdu-a01-b (5.59 kW usable) when pdu-a01-a fails", "pdu-a01-a (5.59 kW usable) when pdu-a01-b fails", "pdu-a03-a (5.59 kW usable)"];

    private static readonly string Site = Path.Combine(SimPaths.Profiles, "examples", "small-dc-room.yaml");

    [Fact]
    public async Task Days_to_power_and_cooling_exhaustion_of_a_recorded_trend_match_the_known_answer()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-capacity-");
        try
        {
            var history = await WriteHistoryAsync(dir);
            var (exit, output, error) = await InProcessCli.RunAsync("simulate", "capacity", "--site", Site, "--history", history, "--json");
            Assert.True(exit == 0, $"exit {exit}: {error}\n{output}");
            using var json = JsonDocument.Parse(output);
            var zone = json.RootElement[0];
            Assert.Equal("room1", zone.GetProperty("zone").GetString());

            // Power limit: the zone load at which, the racks growing in their shares 0.3/0.4/0.2/0.1, the first feed is
            // full: A01's 30 % on one 32 A 230 V feed after the other fails, or A03 + A04's 30 % on pdu-a03-a, both at
            // 0.8 × 32 × 230 × 0.95 / 0.3 = 18.645 kW (A02's 40 % on 16 A 3-phase: 20.98 kW; ups1: 32 kW).
            // Before: the sum of the racks' feeds, 19.58 kW, past which A01 already lost its redundancy.
            var power = zone.GetProperty("power");
            var limit = 0.8 * 32 * 230 * 0.95 / 1000 / 0.3;
            Assert.Equal(limit, power.GetProperty("limit_kw").GetDouble(), 2);
            Assert.Contains(power.GetProperty("limited_by").GetString(), FirstFullFeeds);
            var level = 8 + (0.2 * (Hours - 1) / 24.0);
            var expectedPower = (limit - level - 1) / 0.2;
            Assert.Equal(expectedPower, power.GetProperty("days_to_exhaustion").GetDouble(), 0);
            var cooling = zone.GetProperty("cooling");
            Assert.Equal(30, cooling.GetProperty("limit_kw").GetDouble(), 3); // two 30 kW units, N+1
            Assert.Equal((30 - level - 1) / 0.2, cooling.GetProperty("days_to_exhaustion").GetDouble(), 0);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Capacity_what_ifs_exit_0_when_ok_1_when_not_ok_and_2_with_the_scenarios_message()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-capacity-");
        try
        {
            var history = await WriteHistoryAsync(dir);
            Task<(int Exit, string Output, string Error)> Simulate(params string[] args) => InProcessCli.RunAsync(["simulate", .. args, "--site", Site, "--history", history]);

            // A01 keeps its B feed; A03 and A04 hang on pdu-a03-a alone.
            var (exit, output, error) = await Simulate("feed-failure", "--element", "pdu-a01-a", "--json");
            Assert.True(exit == 0, $"exit {exit}: {error}\n{output}");
            using (var json = JsonDocument.Parse(output))
            {
                Assert.Equal("feed_failure", json.RootElement.GetProperty("scenario").GetString());
                Assert.Equal("ok", json.RootElement.GetProperty("verdict").GetString());
            }

            (exit, output, error) = await Simulate("feed-failure", "--element", "pdu-a03-a");
            Assert.True(exit == 1, $"exit {exit}: {error}\n{output}");
            Assert.StartsWith("feed_failure: not_ok", output, StringComparison.Ordinal);
            Assert.Contains("racks without power: A03, A04", output, StringComparison.Ordinal);

            (exit, output, error) = await Simulate("feed-failure", "--element", "nope");
            Assert.Equal(2, exit);
            Assert.Equal("", output);
            Assert.Contains("feed_failure: no PDU or UPS 'nope' in the power chain", error, StringComparison.Ordinal);

            (exit, _, error) = await Simulate("load-change", "--rack", "A99", "--delta-kw", "1");
            Assert.Equal(2, exit);
            Assert.Contains("load_change: no rack 'A99' in the site", error, StringComparison.Ordinal);

            (exit, _, error) = await Simulate("add-rack", "--kw", "0");
            Assert.Equal(2, exit);
            Assert.Equal("simulate add-rack: --kw must be > 0", error.Trim());
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>Four weeks, hourly: 8 kW over the four racks growing 0.2 kW/day, a daily cycle of ±1 kW, no noise.</summary>
    private static async Task<string> WriteHistoryAsync(DirectoryInfo dir)
    {
        var csv = new StringBuilder("timestamp,series,value\n");
        var start = new DateTimeOffset(2026, 1, 5, 0, 0, 0, TimeSpan.Zero);
        string[] racks = ["A01", "A02", "A03", "A04"];
        double[] share = [0.3, 0.4, 0.2, 0.1];
        for (var h = 0; h < Hours; h++)
        {
            var days = h / 24.0;
            var total = 8 + (0.2 * days) + Math.Sin(2 * Math.PI * days);
            for (var i = 0; i < racks.Length; i++)
            {
                csv.Append(CultureInfo.InvariantCulture, $"{start.AddHours(h):O},rack/{racks[i]}/power,{total * share[i]:R}\n");
            }
        }

        var history = Path.Combine(dir.FullName, "history.csv");
        await File.WriteAllTextAsync(history, csv.ToString(), TestContext.Current.CancellationToken);
        return history;
    }
}
