using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using EdgeTwin.IntegrationTests.Agent;

namespace EdgeTwin.IntegrationTests.Simulator;

/// <summary>One headless demo run past the first rack alerts: what a first-time user reads in its log.</summary>
public sealed class DemoFirstRunFixture : IAsyncLifetime
{
    public string Output { get; private set; } = string.Empty;

    public int Exit { get; private set; }

    public async ValueTask InitializeAsync()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        // The failure at 3 s: the measured inlets pass 27 °C some 45 s later, and the 10 s for: of the rack rule follows.
        // The broker goes away from 20 s to 40 s: the agent's uplink alert, its backlog and the replay, before the rack alerts.
        Exit = await InProcessCli.InvokeAsync(["demo", "--duration", "80", "--failure-at", "3", "--uplink-outage-at", "20", "--uplink-outage-for", "20", "--machines", "1", "--profiles-dir", SimPaths.Profiles], output, error);
        Output = output + error.ToString();
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary><c>edgetwin demo</c> as a first-time user meets it: its log, an 80×24 terminal, a TMPDIR it cannot use.</summary>
public sealed class DemoFirstRunTests(DemoFirstRunFixture run) : IClassFixture<DemoFirstRunFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void Regression_every_rack_inlet_alert_came_twice_once_per_PDU_feed()
    {
        Assert.True(run.Exit == 0, run.Output);
        // Each demo rack has an A- and a B-feed PDU that both measure its inlet; per series, both raised the same text.
        var raised = Regex.Matches(run.Output, @"event  \d\d:\d\d:\d\d alert_raised Warning rack-inlet-above-recommended: rack (\w+)")
            .Select(m => m.Groups[1].Value).ToList();
        Assert.True(raised.Count > 0, run.Output);
        Assert.Equal(raised.Distinct().Count(), raised.Count);
    }

    [Fact]
    public void Regression_the_thermal_countdown_stood_at_0_00_with_the_inlets_already_past_27C()
    {
        Assert.True(run.Exit == 0, run.Output);
        Assert.Contains("thermal twin: crac1 down: 27 °C reached", run.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("27 °C in 0:00", run.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Regression_the_outbox_line_showed_a_16_digit_sequence_number_as_progress()
    {
        Assert.True(run.Exit == 0, run.Output);
        Assert.DoesNotMatch(@"#\d{10,}", run.Output);
        Assert.Matches(@"outbox: [1-9]\d* appended, \d+ waiting, [1-9]\d* delivered to the broker", run.Output);
    }

    [Fact]
    public void Regression_the_demo_never_showed_the_uplink_lost_and_its_backlog_replayed()
    {
        // The embedded broker never went away, so the demo never showed what store and forward is for.
        Assert.True(run.Exit == 0, run.Output);
        var lines = run.Output.Split('\n');
        int Index(string pattern) => Array.FindIndex(lines, l => Regex.IsMatch(l, pattern));

        var gone = Index(@"\] uplink: the broker went away \(scripted outage for 20 s\)");
        var back = Index(@"\] uplink: the broker is back on 127\.0\.0\.1:\d+ after 2\d s with [1-9]\d* entries waiting");
        var verdict = Index(@"\] uplink back after 2\d s: [1-9]\d* entries replayed in \d+ s, none lost \(\d+ appended while it was down; the broker has every outbox sequence, no gap\)");
        Assert.True(gone > 0 && back > gone && verdict > back, run.Output);

        // The backlog grows while the broker is away, as the status lines show it.
        var waiting = lines[gone..back].Select(l => Regex.Match(l, @"UPLINK DOWN \d+ s of 20: outbox (\d+) waiting")).Where(m => m.Success)
            .Select(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToList();
        Assert.True(waiting.Count >= 5 && waiting[^1] > waiting[0], string.Join(", ", waiting) + "\n" + run.Output);

        // The agent's own uplink alert: raised while the broker is away, resolved after it is back.
        var raised = Index(@"event  \d\d:\d\d:\d\d alert_raised Warning uplink-offline: uplink \(site \w+\) offline since");
        var cleared = Index(@"event  \d\d:\d\d:\d\d alert_cleared Warning uplink-offline: uplink \(site \w+\) back online");
        Assert.True(raised > gone && raised < back && cleared > back, run.Output);

        // Every sequence appended while the broker was away reached it afterwards, counted by the broker itself: the
        // replay's verdict is its contiguous run of outbox sequences reaching the last one appended before it came back.
        var m = Regex.Match(lines[verdict], @"(\d+) entries replayed in \d+ s, none lost \((\d+) appended while it was down");
        Assert.True(long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture) > 0, lines[verdict]);
        Assert.True(long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) >= long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture), lines[verdict]);
        Assert.Matches(@"stopped after \d+ s, \d+ samples, \d+ events; the broker received [1-9]\d* outbox entries, no sequence missing", run.Output);

        // Drained: after the replay the outbox is back to its few entries in flight.
        var after = lines[verdict..].Select(l => Regex.Match(l, @"outbox: \d+ appended, (\d+) waiting")).Where(w => w.Success)
            .Select(w => long.Parse(w.Groups[1].Value, CultureInfo.InvariantCulture)).ToList();
        Assert.Contains(after, w => w < waiting[^1] / 2);
    }

    [Fact]
    public async Task Regression_the_demo_crashed_with_a_stack_trace_when_TMPDIR_was_not_usable()
    {
        // A TMPDIR that is a file: no directory can be made in it, not even by root (as a read-only one can for root).
        var dir = Directory.CreateTempSubdirectory("edgetwin-demo-tmpdir-");
        try
        {
            var notADirectory = Path.Combine(dir.FullName, "not-a-directory");
            await File.WriteAllTextAsync(notADirectory, "x", Ct);
            var (code, _, err) = await AgentProcess.RunCliAsync(new Dictionary<string, string> { ["TMPDIR"] = notADirectory }, "demo", "--duration", "5", "--profiles-dir", SimPaths.Profiles);
            Assert.Equal(1, code);
            Assert.DoesNotContain("Unhandled exception", err, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
            Assert.Contains($"edgetwin demo: cannot create its working directory (outbox, alert state) in {notADirectory}", err, StringComparison.Ordinal);
            Assert.Contains("set TMPDIR to a writable directory", err, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Regression_the_live_view_was_taller_and_wider_than_an_80x24_terminal()
    {
        // The real binary on a pseudo-terminal of 80×24 (script(1), util-linux), as a user's first `dotnet run … demo`.
        var dir = Directory.CreateTempSubdirectory("edgetwin-demo-tty-");
        try
        {
            var typescript = Path.Combine(dir.FullName, "typescript");
            var dll = Path.Combine(AppContext.BaseDirectory, "edgetwin.dll");
            var psi = new ProcessStartInfo("script") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
            foreach (var a in new[] { "-q", "-e", "-c", $"stty cols 80 rows 24; exec dotnet '{dll}' demo --duration 14 --failure-at 2 --uplink-outage-at 3 --uplink-outage-for 5 --profiles-dir '{SimPaths.Profiles}'", typescript })
            {
                psi.ArgumentList.Add(a);
            }

            psi.Environment["DOTNET_NOLOGO"] = "1";
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync(Ct);
            var stderr = p.StandardError.ReadToEndAsync(Ct);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(90));
            try
            {
                await p.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                p.Kill(entireProcessTree: true);
                throw;
            }

            await stdout;
            var err = await stderr;
            Assert.True(p.ExitCode == 0, $"exit {p.ExitCode}: {err}");
            var text = (await File.ReadAllTextAsync(typescript, Ct)).Replace("\r", string.Empty, StringComparison.Ordinal);
            text = Regex.Replace(text, @"\u001b\[\?\d+[hl]|\u001b[=>]", string.Empty); // keypad modes the runtime sets, not the view's
            var frames = text.Split("\u001b[H\u001b[2J");
            Assert.True(frames.Length > 5, text);
            // The last full frame (the one before it may be cut by the final line): everything on screen at once.
            var frame = frames[^1][..frames[^1].IndexOf("edgetwin demo: stopped after", StringComparison.Ordinal)].TrimEnd('\n').Split('\n');
            Assert.True(frame.Length <= 23, $"{frame.Length} rows:\n{string.Join('\n', frame)}");
            Assert.All(frame, line => Assert.True(line.Length < 80, $"{line.Length} columns: {line}"));
            Assert.StartsWith("EdgeTwin demo — ", frame[0], StringComparison.Ordinal);
            Assert.Contains(frame, l => l.StartsWith("THERMAL TWIN", StringComparison.Ordinal));
            Assert.Contains(frame, l => l.StartsWith("uplink: broker", StringComparison.Ordinal));

            // A frame of the scripted outage fits too: its state is one more row at the bottom.
            var down = frames.Select(f => f.TrimEnd('\n').Split('\n')).FirstOrDefault(f => f.Any(l => l.StartsWith("UPLINK DOWN ", StringComparison.Ordinal)));
            Assert.True(down is not null, text);
            Assert.True(down.Length <= 23, $"{down.Length} rows:\n{string.Join('\n', down)}");
            Assert.All(down, line => Assert.True(line.Length < 80, $"{line.Length} columns: {line}"));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>
    /// The first thing a central-twin engineer does with the demo is watch its broker with <c>mosquitto_sub</c> (the real
    /// client, Debian's mosquitto-clients). Without <c>-i</c> it sends no client id, which the embedded broker refused
    /// ("Connection Refused: identifier rejected" over 3.1.1, "Client Identifier not valid" over MQTT 5), and the demo
    /// said nowhere how to watch. Now its first line gives the command, MQTT 5, whose id the broker assigns.
    /// </summary>
    [Fact]
    public async Task Regression_mosquitto_sub_was_refused_by_the_demo_broker_with_identifier_rejected()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "edgetwin.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { dll, "demo", "--duration", "40", "--failure-at", "-1", "--no-uplink-outage", "--line-stations", "0", "--profiles-dir", SimPaths.Profiles })
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["DOTNET_NOLOGO"] = "1";
        using var demo = Process.Start(psi)!;
        var stderr = demo.StandardError.ReadToEndAsync(Ct);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(60));
            var header = await demo.StandardOutput.ReadLineAsync(timeout.Token) ?? string.Empty;
            var watch = Regex.Match(header, @"\(watch it: (mosquitto_sub -h 127\.0\.0\.1 -p \d+ -V 5 -t 'edgetwin/#' -v)\)$");
            Assert.True(watch.Success, header);
            var drain = demo.StandardOutput.ReadToEndAsync(Ct);

            // The command as printed, through a shell as a user pastes it: three messages, then exit (15 s at most).
            var sub = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            sub.ArgumentList.Add("-c");
            sub.ArgumentList.Add(watch.Groups[1].Value + " -C 3 -W 15");
            using var client = Process.Start(sub)!;
            var received = client.StandardOutput.ReadToEndAsync(timeout.Token);
            var refused = client.StandardError.ReadToEndAsync(timeout.Token);
            await client.WaitForExitAsync(timeout.Token);
            var lines = (await received).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(client.ExitCode == 0, $"exit {client.ExitCode}: {await refused}");
            Assert.Equal(3, lines.Length);
            Assert.All(lines, l => Assert.Matches(@"^edgetwin/sim/gw-sim/\w+ \{", l));
            demo.Kill(entireProcessTree: true);
            await drain;
        }
        finally
        {
            if (!demo.HasExited)
            {
                demo.Kill(entireProcessTree: true);
            }

            await demo.WaitForExitAsync(Ct);
            await stderr;
        }
    }
}
