using System.Text.RegularExpressions;

namespace EdgeTwin.IntegrationTests.Simulator;

/// <summary><c>edgetwin demo</c> headless: simulator → agent (real SNMP and Modbus polling) → view, with the scripted failure.</summary>
public sealed class DemoCommandTests
{
    [Fact]
    public async Task A_headless_demo_shows_readings_and_the_scripted_cooling_failure_then_exits_0()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = await InProcessCli.InvokeAsync(["demo", "--duration", "20", "--failure-at", "6", "--racks", "4", "--machines", "1", "--profiles-dir", SimPaths.Profiles], output, error);

        var text = output.ToString();
        Assert.True(exit == 0, $"exit {exit}: {error}\n{text}");
        // Every simulated device (PDUs, UPS, cooling units, drive, meter and the packaging line's PLCs) is polled successfully.
        Assert.Matches(@"agent: (\d+)/\1 devices up, [1-9]\d* samples", text);
        // The line twin publishes the simulated packaging line's OEE, bottleneck and end-of-shift forecast.
        Assert.Matches(@"prediction Info line/line1: line line1: OEE (\d+\.\d\d|no data \([^)]*\)) .*bottleneck S\d.*, end of shift at \d\d:\d\d: \d+ \(90 % of outcomes", text);
        Assert.Matches(@"pdu-a01-a/inlet_temperature=\d+(\.\d+)? Cel", text);
        // Before the first polls came in, the site-wide line read "readings: " and nothing after it.
        Assert.DoesNotMatch(new Regex(@"\] readings: *\r?$", RegexOptions.Multiline), text);
        Assert.Contains("sim event crac1: cooling unit stopped", text, StringComparison.Ordinal);
        // The agent reads the failed unit's new state over SNMP (LIEBERT-GP lgpEnvStateSystem off = 2).
        Assert.Contains("crac1/system_state=2", text, StringComparison.Ordinal);
        // The live thermal twin (warm-started) predicts the failure and the view counts down next to the measured inlets.
        Assert.Matches(@"thermal twin: crac1 down: 27 °C (in \d+:\d\d|not within)", text);
        // The racks the failure puts at risk, by name, or "none" (it showed an empty list, "affected []").
        Assert.Matches(@"\| affected: (none|[A-Z]\d+(,[A-Z]\d+)*)$", text.Split('\n').First(l => l.Contains("thermal twin: crac1 down", StringComparison.Ordinal)).TrimEnd());
        Assert.DoesNotContain("affected []", text, StringComparison.Ordinal);
        // The agent saw crac1 run and then stop: the failure counts from the agent's first reading of crac1 (before, from
        // the simulator's start, which under qemu was 24 s earlier, then from when the agent polled, which on a loaded
        // machine was 30 s before its first polls came through).
        Assert.DoesNotContain("already down when the agent started", text, StringComparison.Ordinal);
        // The agent forwards through its outbox and MQTT uplink: the embedded broker acknowledged summaries.
        Assert.Matches(@"[1-9]\d* delivered to the broker", text);
        var samples = Regex.Match(text, @"stopped after \d+ s, (\d+) samples");
        Assert.True(samples.Success, text);
        Assert.True(long.Parse(samples.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) > 500);
    }
}
