using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using EdgeTwin.Alerting.Control;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Config;
using EdgeTwin.IntegrationTests.Agent;
using EdgeTwin.IntegrationTests.Simulator;

namespace EdgeTwin.IntegrationTests.Alerting;

/// <summary>
/// The real agent (<c>edgetwin run</c>) on the simulated site with two alert rules, SIGKILLed 20 times at random moments
/// while alerts fire and clear: <c>uplink-lost</c> follows a probe target the test opens and closes around the kills,
/// <c>pdu-hot</c> fires for good and is acknowledged with <c>edgetwin alerts ack</c> part-way. Afterwards:
/// every firing message a sink ever received is in the durable history (no firing alert lost), the acknowledged alert
/// was never notified as firing again, and the history is complete and consistent (raised/cleared alternate per alert,
/// the final state matches it and the world).
/// </summary>
public sealed class AlertingSigkillTests
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task No_alert_lost_and_no_acknowledged_alert_renotified_across_20_SIGKILLs()
    {
        await using var sim = await SimPaths.StartAsync(racks: 2, units: 1, machines: 1);
        await using var hook = new TinyHttpServer();
        var dir = Directory.CreateTempSubdirectory("edgetwin-alerting-sigkill-");
        var probePort = TestPorts.FreeTcp();
        TcpListener? probe = null;
        try
        {
            var configPath = WriteConfig(sim, dir.FullName, probePort, hook.Url);
            var socket = Path.Combine(dir.FullName, "alerts.sock");
            var random = new Random(20261130);
            var log = new List<string>();
            long ackedId = 0;
            var ackedAfterHits = -1;
            for (var cycle = 0; cycle < 20; cycle++)
            {
                await using var agent = AgentProcess.Start("run", "--config", configPath);
                Assert.Equal("READY=1", await agent.ReceiveNotifyAsync(StartTimeout, Ct));

                // The probe target flips at a random moment of this life, so raises and clears land around the kills.
                var aliveMs = random.Next(400, 2500);
                var flipAt = random.Next(0, aliveMs);
                await Task.Delay(flipAt, Ct);
                probe = Flip(probe, probePort);

                if (ackedId == 0 && cycle >= 4 && await FiringIdAsync(socket, "pdu-hot") is { } id)
                {
                    // The real CLI; exit 0 means the acknowledge is durable.
                    var (code, stdout, stderr) = await AgentProcess.RunCliAsync("alerts", "ack", id.ToString(CultureInfo.InvariantCulture), "--config", configPath);
                    Assert.True(code == 0, $"alerts ack exited {code}: {stdout}{stderr}");
                    ackedId = id;
                    ackedAfterHits = hook.Hits.Count;
                    log.Add($"cycle {cycle}: acknowledged pdu-hot #{id}");
                }

                await Task.Delay(Math.Max(0, aliveMs - flipAt), Ct);
                AgentProcess.SigKill(agent.Id);
                var exit = await agent.WaitForExitAsync(StartTimeout, Ct);
                Assert.True(exit is 137 or -1 or 9, $"cycle {cycle}: exit {exit}; stdout:\n{agent.Stdout}");
                log.Add($"cycle {cycle}: probe {(probe is null ? "down" : "up")}, killed after {aliveMs} ms, {hook.Hits.Count} webhook calls");
            }

            Assert.True(ackedId != 0, "pdu-hot never fired, so nothing was acknowledged:\n" + string.Join('\n', log));

            // Once more undisturbed with the probe target down: uplink-lost must be firing at the end.
            if (probe is not null)
            {
                probe = Flip(probe, probePort);
            }

            await using (var last = AgentProcess.Start("run", "--config", configPath))
            {
                Assert.Equal("READY=1", await last.ReceiveNotifyAsync(StartTimeout, Ct));
                await UntilAsync(async () => await FiringIdAsync(socket, "uplink-lost") is not null, "uplink-lost firing after the last start", 30);
                using (var list = await AlertControlClient.SendAsync(socket, """{"op":"list"}""", TimeSpan.FromSeconds(10), Ct))
                {
                    var pdu = list.RootElement.GetProperty("alerts").EnumerateArray().Single(a => a.GetProperty("rule").GetString() == "pdu-hot");
                    Assert.Equal(ackedId, pdu.GetProperty("id").GetInt64());
                    Assert.Equal("acknowledged", pdu.GetProperty("state").GetString());
                }

                await Task.Delay(1000, Ct); // let the last messages and marks settle
                await last.TerminateAsync(Ct);
                Assert.Equal(0, await last.WaitForExitAsync(StartTimeout, Ct));
            }

            // What the agent kept, read from its files as the next start would.
            List<AlertHistoryEntry> history;
            List<StoredAlert> stored;
            using (var store = new AlertStore(Path.Combine(dir.FullName, "alerts.db")))
            {
                history = [.. store.History(100_000)];
                stored = [.. store.LoadAlerts()];
            }

            var messages = hook.Hits.Select((h, i) => (Index: i, Alerts: Parse(h.Body))).ToList();
            var firing = messages.SelectMany(m => m.Alerts.Where(a => a.Status == "firing").Select(a => (m.Index, a))).ToList();
            Assert.True(firing.Count >= 10, $"too few firing messages to judge: {firing.Count}\n{string.Join('\n', log)}");

            // 1. No firing alert lost: every firing message the sink received is a raise in the durable history.
            var raises = history.Where(e => e.Change == "raised").Select(e => (e.AlertId, Ms: e.Time.ToUnixTimeMilliseconds())).ToHashSet();
            foreach (var (_, a) in firing)
            {
                Assert.True(raises.Contains((a.Id, a.FiredAtMs)), $"alert #{a.Id} {a.Rule} was notified firing at {a.FiredAtMs} but is not in the history\n{string.Join('\n', log)}");
            }

            // 2. The acknowledged alert was never notified as firing again after the acknowledge.
            var renotified = firing.Where(f => f.Index >= ackedAfterHits && f.a.Id == ackedId).ToList();
            Assert.True(renotified.Count == 0, $"acknowledged alert #{ackedId} notified again {renotified.Count} times\n{string.Join('\n', log)}");
            Assert.Single(history, e => e.AlertId == ackedId && e.Change.StartsWith("acknowledged", StringComparison.Ordinal));

            // 3. The history is complete and consistent: per alert raised/cleared alternate (starting with raised),
            //    in time order, and the stored state is the last change.
            Assert.Equal(history.Select(e => e.Seq).Distinct().Count(), history.Count);
            foreach (var perAlert in history.Where(e => e.Change is "raised" or "cleared").GroupBy(e => e.AlertId))
            {
                var changes = perAlert.OrderBy(e => e.Seq).ToList();
                for (var i = 0; i < changes.Count; i++)
                {
                    Assert.True(changes[i].Change == (i % 2 == 0 ? "raised" : "cleared"), $"alert #{perAlert.Key}: {string.Join(", ", changes.Select(c => c.Change))}");
                    Assert.True(i == 0 || changes[i].Time >= changes[i - 1].Time, $"alert #{perAlert.Key}: times out of order");
                }

                // A start deletes the alerts that had cleared before it (the history keeps them): absent = resolved.
                var state = stored.SingleOrDefault(s => s.Id == perAlert.Key)?.State ?? AlertState.Resolved;
                Assert.Equal(changes[^1].Change == "raised" ? AlertState.Firing : AlertState.Resolved, state);
            }

            var uplinkChanges = history.Count(e => e.Rule == "uplink-lost" && e.Change is "raised" or "cleared");
            Assert.True(uplinkChanges >= 6, $"uplink-lost changed only {uplinkChanges} times\n{string.Join('\n', log)}");
            // An alert that resolved before a restart comes back as a new alert (new id) when it fires again: the newest counts.
            Assert.Equal(AlertState.Firing, stored.Where(s => s.Rule == "uplink-lost").MaxBy(s => s.Id)!.State);
            var acked = stored.Single(s => s.Id == ackedId);
            Assert.Equal(AlertState.Firing, acked.State);
            Assert.NotNull(acked.AckedAt);
            TestContext.Current.SendDiagnosticMessage($"{history.Count} history lines, {hook.Hits.Count} webhook calls, {firing.Count} firing notifications; {string.Join("; ", log)}");
        }
        finally
        {
            probe?.Stop();
            probe?.Dispose();
            dir.Delete(recursive: true);
        }
    }

    private static string WriteConfig(EdgeTwin.Simulator.Serving.SimulatedSiteHost sim, string dir, int probePort, Uri hook)
    {
        var pdu = sim.Site.Pdu("pdu-a01-a");
        var config = sim.BuildConfig(TimeSpan.FromMilliseconds(500), SimPaths.Profiles, TimeSpan.FromMilliseconds(400)) with
        {
            Outbox = new OutboxSettings(Path.Combine(dir, "outbox.db"), 64, TimeSpan.FromDays(7)),
        };
        var above = (pdu.PowerKw * 0.3).ToString("0.###", CultureInfo.InvariantCulture);
        var clear = (pdu.PowerKw * 0.2).ToString("0.###", CultureInfo.InvariantCulture);
        var path = Path.Combine(dir, "edgetwin.yaml");
        File.WriteAllText(path, SiteConfigWriter.ToYaml(config) + $$"""

            alerts:
              state_directory: {{dir}}
              group_by: [rule]
              group_interval: 0s
              flap_max_changes: 10000
              tick: 100ms
              connectivity: { probe_host: 127.0.0.1, probe_port: {{probePort}}, interval: 200ms, timeout: 300ms, offline_after: 1 }
              sinks:
                - { name: hook, type: webhook, url: "{{hook}}", timeout: 2s, retries: 5, retry_delay: 100ms }
              rules:
                - { name: pdu-hot, type: threshold, match: { device: {{pdu.Id}}, metric: total_power }, above: {{above}}, clear_below: {{clear}}, severity: critical }
                - { name: uplink-lost, type: uplink, severity: warning }

            """);
        return path;
    }

    /// <summary>Opens the probe target when it is closed and closes it when it is open.</summary>
    private static TcpListener? Flip(TcpListener? probe, int port)
    {
        if (probe is not null)
        {
            probe.Stop();
            probe.Dispose();
            return null;
        }

        var listener = new TcpListener(IPAddress.Loopback, port);
        listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Start();
        return listener;
    }

    private static async Task<long?> FiringIdAsync(string socket, string rule)
    {
        try
        {
            using var list = await AlertControlClient.SendAsync(socket, """{"op":"list"}""", TimeSpan.FromSeconds(10), Ct);
            foreach (var a in list.RootElement.GetProperty("alerts").EnumerateArray())
            {
                if (a.GetProperty("rule").GetString() == rule && a.GetProperty("state").GetString() == "firing")
                {
                    return a.GetProperty("id").GetInt64();
                }
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or TimeoutException or OperationCanceledException)
        {
        }

        return null;
    }

    private sealed record Notified(long Id, string Rule, string Status, long FiredAtMs);

    private static List<Notified> Parse(byte[] body)
    {
        using var doc = JsonDocument.Parse(body);
        return [.. doc.RootElement.GetProperty("alerts").EnumerateArray().Select(a => new Notified(
            a.GetProperty("id").GetInt64(),
            a.GetProperty("rule").GetString()!,
            a.GetProperty("status").GetString()!,
            a.TryGetProperty("fired_at", out var f) && f.ValueKind == JsonValueKind.String ? DateTimeOffset.Parse(f.GetString()!, CultureInfo.InvariantCulture).ToUnixTimeMilliseconds() : 0))];
    }


    private static async Task UntilAsync(Func<Task<bool>> condition, string what, double seconds)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out after {seconds} s waiting for {what}");
            await Task.Delay(100, Ct);
        }
    }
}
