using System.Text.Json;
using EdgeTwin.IntegrationTests.Agent;

namespace EdgeTwin.IntegrationTests.Twin;

/// <summary><c>edgetwin simulate cooling-maintenance-window</c> on the demo twin (a day of the simulated room, calibrated).</summary>
public sealed class CoolingWindowCommandTests
{
    [Fact]
    public async Task The_command_names_the_best_start_and_prints_every_start_tried()
    {
        var (exit, output, error) = await InProcessCli.RunAsync("simulate", "cooling-maintenance-window", "--demo-seed", "7", "--unit", "crac1", "--minutes", "240", "--step-min", "120");

        Assert.True(exit == 0, error);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("cooling_maintenance_window in room1 (model fit ", lines[0], StringComparison.Ordinal);
        Assert.Matches("^(best start for crac1 stopped for 4 h: in |no start within 24 h keeps every rack below 32 °C with crac1 stopped for 4 h)", lines[1]);
        Assert.StartsWith(" start in  zone kW", lines[2], StringComparison.Ordinal);
        // Every 2 h over 24 h: 13 starts, the best marked once.
        Assert.Equal(13, lines.Count(l => l.TrimStart().Length > 0 && char.IsDigit(l.TrimStart()[0]) && l.Contains(" h ", StringComparison.Ordinal)));
        Assert.Single(lines, l => l.EndsWith("<- best", StringComparison.Ordinal));
        TestContext.Current.TestOutputHelper?.WriteLine(output);

        (exit, output, error) = await InProcessCli.RunAsync("simulate", "cooling-maintenance-window", "--demo-seed", "7", "--unit", "crac1", "--minutes", "240", "--step-min", "120", "--json");
        Assert.True(exit == 0, error);
        var json = JsonDocument.Parse(output).RootElement;
        Assert.Equal("cooling_maintenance_window", json.GetProperty("scenario").GetString());
        Assert.Equal(14400, json.GetProperty("outage_s").GetDouble());
        Assert.Equal(13, json.GetProperty("candidates").GetArrayLength());
        var best = json.GetProperty("best");
        Assert.Contains(json.GetProperty("candidates").EnumerateArray(), c => c.GetProperty("start_in_s").GetDouble() == best.GetProperty("start_in_s").GetDouble());
        Assert.Equal(best.GetProperty("racks_at_32c").GetArrayLength() == 0, best.GetProperty("holds").GetBoolean());
    }

    /// <summary>
    /// An 8 h stop of crac1 holds at no start on the demo site; the command then prints what would: the longest stop that
    /// holds, and the measures for the whole stop with how many starts each makes hold, the non-critical racks' shedding
    /// among them (in the JSON too).
    /// </summary>
    [Fact]
    public async Task Without_a_holding_start_the_command_prints_the_shorter_stop_and_the_measures()
    {
        string[] args = ["simulate", "cooling-maintenance-window", "--demo-seed", "7", "--unit", "crac1", "--minutes", "480", "--step-min", "120", "--non-critical", "A06,B06"];
        var (exit, output, error) = await InProcessCli.RunAsync(args);

        Assert.True(exit == 0, error);
        TestContext.Current.TestOutputHelper?.WriteLine(output);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("no start within 24 h keeps every rack below 32 °C with crac1 stopped for 8 h; ", lines[1], StringComparison.Ordinal);
        Assert.Contains("; to hold, stop for at most ", lines[1], StringComparison.Ordinal);
        Assert.Single(lines, l => l.StartsWith("shorter stop: at most ", StringComparison.Ordinal));
        Assert.Single(lines, l => l.StartsWith("heat to remove for the whole stop at that start: about ", StringComparison.Ordinal));
        Assert.Contains("measures kept through the stop, taken when the units stop (precool: before), each tried at 13 of the starts:", lines);
        var precool = Assert.Single(lines, l => l.Contains(" precool ", StringComparison.Ordinal));
        Assert.Contains("pre-cool from 1 h before the stop: set the remaining units (crac2) to 100 % fan speed", precool, StringComparison.Ordinal);
        var shed = Assert.Single(lines, l => l.Contains(" shed_load ", StringComparison.Ordinal));
        Assert.EndsWith("shut down the non-critical load on A06, B06", shed, StringComparison.Ordinal);

        (exit, output, error) = await InProcessCli.RunAsync([.. args, "--json"]);
        Assert.True(exit == 0, error);
        var remedies = JsonDocument.Parse(output).RootElement.GetProperty("remedies");
        var longest = remedies.GetProperty("longest_holding_outage_s").GetDouble();
        Assert.Equal(0, longest % 300);
        Assert.InRange(longest, 300, 8 * 3600 - 300);
        Assert.True(remedies.GetProperty("heat_to_remove_kw").GetDouble() > 0);
        var measures = remedies.GetProperty("measures").EnumerateArray().ToList();
        Assert.Contains(measures, m => m.GetProperty("action").GetString() == "shed_load");
        Assert.All(measures, m => Assert.Equal(13, m.GetProperty("starts_tried").GetInt32()));
        Assert.Equal(measures.Select(m => m.GetProperty("starts_holding").GetInt32()).OrderDescending(), measures.Select(m => m.GetProperty("starts_holding").GetInt32()));
    }

    [Theory]
    [InlineData("--minutes must be from 1 to 1440, got 2000", "--unit", "crac1", "--minutes", "2000")]
    [InlineData("--step-min must be from 5 to 1440, got 1", "--unit", "crac1", "--minutes", "60", "--step-min", "1")]
    [InlineData("--within-h must be from 0 to 48, got 72", "--unit", "crac1", "--minutes", "60", "--within-h", "72")]
    [InlineData("--precool-min must be from 0 to 360, got 400", "--unit", "crac1", "--minutes", "60", "--precool-min", "400")]
    [InlineData("simulate cooling-maintenance-window: --step-min 5 within 48 h is 577 start times, more than 289: take a longer step", "--unit", "crac1", "--minutes", "60", "--step-min", "5", "--within-h", "48")]
    [InlineData("simulate cooling_maintenance_window: unknown cooling unit(s) CRAC-9 (known: crac1", "--unit", "CRAC-9", "--minutes", "60")]
    public async Task Bad_arguments_are_refused_naming_the_option(string message, params string[] args)
    {
        var (exit, output, error) = await InProcessCli.RunAsync(["simulate", "cooling-maintenance-window", .. args, "--demo-seed", "1", "--demo-racks", "4"]);

        Assert.Equal(2, exit);
        Assert.Equal("", output);
        Assert.Contains(message, error, StringComparison.Ordinal);
    }
}
