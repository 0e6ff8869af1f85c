using System.Text.Json;
using EdgeTwin.Agent.Line;
using EdgeTwin.Core.Config;
using EdgeTwin.Twin.Line;
using EdgeTwin.Twin.Line.Scenarios;

namespace EdgeTwin.IntegrationTests.Line;

/// <summary>
/// <c>edgetwin simulate buffer-change|cycle-time-change</c> on two-station lines whose answer is known: a reliable line
/// makes what its slower station makes, and a bigger buffer between two failing machines gains what the exact
/// two-machine line (Buzacott; Gershwin ch. 3) says.
/// </summary>
public sealed class LineChangeCommandTests : IDisposable
{
    // S2 (20 s) paces the line: 3,600 s make 180 parts at 20 s and 120 at 30 s; S1 (10 s) has room to slow to 20 s.
    private const string ReliablePair = """
        line:
          id: pair
          margin_per_unit: 2
          shift: { length: 1h, starts: ["06:00"] }
          buffers: [{ id: B1, capacity: 10 }]
          stations:
            - { id: S1, ideal_cycle_time: 10s, output: B1 }
            - { id: S2, ideal_cycle_time: 20s, inputs: [B1] }
        """;

    // One-tick cycles with MTBF 50 s and MTTR 10 s: p = 0.02, r = 0.1 per tick, Gershwin's deterministic two-machine line.
    private const string FailingPair = """
        line:
          id: failing
          margin_per_unit: 1
          shift: { length: 6h, starts: ["06:00"] }
          buffers: [{ id: B1, capacity: 2 }]
          stations:
            - { id: S1, ideal_cycle_time: 1s, mtbf: 50s, mttr: 10s, output: B1 }
            - { id: S2, ideal_cycle_time: 1s, mtbf: 50s, mttr: 10s, inputs: [B1] }
        """;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("edgetwin-line-change-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public async Task Slowing_the_slower_station_lowers_output_in_proportion_and_the_faster_one_up_to_its_pace_changes_nothing()
    {
        var config = Write("pair.yaml", ReliablePair);
        var (exit, output, error) = await InProcessCli.RunAsync("simulate", "cycle-time-change", "--config", config, "--station", "S2", "--cycle-s", "30", "--replications", "5", "--json");
        Assert.True(exit == 0, $"exit {exit}: {error}");
        var root = JsonDocument.Parse(output).RootElement;
        double baseline = root.GetProperty("baseline_output").GetDouble(), scenario = root.GetProperty("scenario_output").GetDouble();
        Assert.InRange(baseline, 178, 181);
        Assert.InRange(scenario / baseline, 2.0 / 3 - 0.01, 2.0 / 3 + 0.01); // output ∝ 1 / the pacing cycle
        Assert.Equal(root.GetProperty("lost_output").GetProperty("mean").GetDouble() * 2, root.GetProperty("cost").GetProperty("mean").GetDouble(), 9);

        // The JSON is the MQTT request's (LineScenarioJson) for the same line and start, plus the levels it started from.
        var c = Parse(config);
        var buffers = new[] { new LineCli.BufferStart("B1", 5, 10, false) };
        var expected = LineScenarioJson.CycleTimeChange("pair", 0, "S2", 30,
            new LineScenarios(c.Spec, 3600, 2) { Replications = 5 }.CycleTimeChange(new LineNow(0, 0, LineSnapshot.Assumed(c.Spec)), "S2", 30), 2, buffers);
        Assert.Equal(expected, output.Trim());

        // S1 at 20 s still keeps up with S2: the line makes the same.
        (exit, output, error) = await InProcessCli.RunAsync("simulate", "cycle-time-change", "--config", config, "--station", "S1", "--cycle-s", "20", "--replications", "5", "--json");
        Assert.True(exit == 0, $"exit {exit}: {error}");
        Assert.Equal(0, JsonDocument.Parse(output).RootElement.GetProperty("lost_output").GetProperty("mean").GetDouble());

        // The text gives both outputs with their intervals, the signed change and what it is worth.
        (exit, output, error) = await InProcessCli.RunAsync("simulate", "cycle-time-change", "--config", config, "--station", "S2", "--cycle-s", "30", "--replications", "5");
        Assert.True(exit == 0, $"exit {exit}: {error}");
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^S2 cycle 20 s -> 30 s in line pair: rest of shift \d+(\.\d)? parts \(90 % CI [\d.]+–[\d.]+\) -> \d+(\.\d)? parts \(90 % CI [\d.]+–[\d.]+\)$", lines[0]);
        Assert.Matches(@"^change in output -\d+(\.\d)? parts \(90 % CI -[\d.]+ to -[\d.]+\), worth -[\d.]+ \(90 % CI -[\d.]+ to -[\d.]+\) at 2 per part; 5 paired replications$", lines[1]);
        Assert.StartsWith("buffers at the start: B1 5/10", lines[2], StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bigger_buffer_between_failing_machines_gains_what_the_exact_two_machine_line_says()
    {
        var config = Write("failing.yaml", FailingPair);
        var (exit, output, error) = await InProcessCli.RunAsync("simulate", "buffer-change", "--config", config, "--buffer", "B1", "--capacity", "40", "--replications", "40", "--seed", "7", "--json");
        Assert.True(exit == 0, $"exit {exit}: {error}");
        var root = JsonDocument.Parse(output).RootElement;
        Assert.Equal(("buffer_change", "B1", 40), (root.GetProperty("scenario").GetString(), root.GetProperty("buffer").GetString(), root.GetProperty("capacity").GetInt32()));
        var lost = root.GetProperty("lost_output");
        double gain = -lost.GetProperty("mean").GetDouble();
        double exact = (TwoMachineLine.Solve(0.02, 0.1, 0.02, 0.1, 40).Throughput - TwoMachineLine.Solve(0.02, 0.1, 0.02, 0.1, 2).Throughput) * 6 * 3600;
        Assert.True(lost.GetProperty("high").GetDouble() < 0, $"the paired gain's interval must exclude 0: {output}");
        Assert.InRange(gain, exact * 0.85, exact * 1.15);
        Assert.Equal(0.9, lost.GetProperty("level").GetDouble());

        // A level given for the changed buffer is the level it starts from; the text says what changed and what it gains.
        (exit, output, error) = await InProcessCli.RunAsync("simulate", "buffer-change", "--config", config, "--buffer", "B1", "--capacity", "40", "--buffer", "B1=2", "--replications", "10");
        Assert.True(exit == 0, $"exit {exit}: {error}");
        Assert.StartsWith("B1 capacity 2 -> 40 in line failing: rest of shift ", output, StringComparison.Ordinal);
        Assert.Matches(@"change in output \+\d+(\.\d)? parts \(90 % CI \+[\d.]+ to \+[\d.]+\), worth \+[\d.]+ ", output);
        Assert.Contains("buffers at the start: B1 2/2 given", output, StringComparison.Ordinal);

        // Shrinking a buffer below what it holds starts it full, and the text says so.
        config = Write("pair.yaml", ReliablePair);
        (exit, output, error) = await InProcessCli.RunAsync("simulate", "buffer-change", "--config", config, "--buffer", "B1", "--capacity", "3", "--buffer", "B1=8", "--replications", "2");
        Assert.True(exit == 0, $"exit {exit}: {error}");
        Assert.Contains("B1 holds 8 parts at the start, more than 3: the scenario starts it full", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--buffer B9 --capacity 5", "simulate buffer-change: buffer 'B9' is not in line failing (B1)")]
    [InlineData("--buffer B1 --capacity 0", "simulate buffer-change: --capacity must be 1..1000000 parts (got 0)")]
    [InlineData("--buffer B1 --capacity -3", "simulate buffer-change: --capacity must be 1..1000000 parts (got -3)")]
    [InlineData("--buffer B1=1 --capacity 5", "simulate buffer-change: name the buffer to change once, e.g. --buffer B1 (line failing has B1)")]
    [InlineData("--buffer B1 --buffer B1 --capacity 5", "simulate buffer-change: name the buffer to change once")]
    [InlineData("--buffer B1 --capacity 5 --buffer B1=9", "--buffer B1=9: expected BUFFER=LEVEL with a buffer of line failing (B1 0..2)")]
    [InlineData("--buffer B1 --capacity 5 --elapsed 360", "--elapsed >= 0 and inside the 360 min shift")]
    public async Task Buffer_change_refuses_what_it_cannot_simulate(string args, string message)
    {
        var config = Write("failing.yaml", FailingPair);
        var (exit, output, error) = await InProcessCli.RunAsync(["simulate", "buffer-change", "--config", config, .. args.Split(' ')]);
        Assert.Equal(2, exit);
        Assert.Contains(message, error, StringComparison.Ordinal);
        Assert.Empty(output);
    }

    [Theory]
    [InlineData("--station S9 --cycle-s 30", "simulate cycle-time-change: station 'S9' is not in line pair (S1, S2)")]
    [InlineData("--station S2 --cycle-s 0", "simulate cycle-time-change: --cycle-s must be > 0 and at most 86400 (got 0)")]
    [InlineData("--station S2 --cycle-s -5", "simulate cycle-time-change: --cycle-s must be > 0 and at most 86400 (got -5)")]
    [InlineData("--station S2 --cycle-s 30 --elapsed -1", "--elapsed >= 0 and inside the 60 min shift")]
    public async Task Cycle_time_change_refuses_what_it_cannot_simulate(string args, string message)
    {
        var config = Write("pair.yaml", ReliablePair);
        var (exit, output, error) = await InProcessCli.RunAsync(["simulate", "cycle-time-change", "--config", config, .. args.Split(' ')]);
        Assert.Equal(2, exit);
        Assert.Contains(message, error, StringComparison.Ordinal);
        Assert.Empty(output);
    }

    [Fact]
    public async Task A_bad_line_section_is_reported_with_file_and_key_and_exit_2()
    {
        var config = Write("bad.yaml", ReliablePair.Replace("capacity: 10", "capacity: lots", StringComparison.Ordinal));
        var (exit, _, error) = await InProcessCli.RunAsync("simulate", "buffer-change", "--config", config, "--buffer", "B1", "--capacity", "5");
        Assert.Equal(2, exit);
        Assert.Contains("bad.yaml:5:", error, StringComparison.Ordinal);
        Assert.Contains("line.buffers[0].capacity", error, StringComparison.Ordinal);
    }

    private string Write(string name, string yaml)
    {
        var path = Path.Combine(_dir.FullName, name);
        File.WriteAllText(path, yaml);
        return path;
    }

    private static LineTwinConfig Parse(string path)
    {
        var d = new ConfigDiagnostics();
        var c = LineTwinConfig.Parse(File.ReadAllText(path), path, d)!;
        Assert.True(d.IsEmpty, string.Join("\n", d.Items));
        return c;
    }
}
