using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using EdgeTwin.Core.Config;
using EdgeTwin.IntegrationTests.Agent;
using EdgeTwin.IntegrationTests.Simulator;
using MQTTnet.Server;

namespace EdgeTwin.IntegrationTests.StoreAndForward;

/// <summary>
/// The real agent process (<c>edgetwin run</c>) killed with SIGKILL at random moments, 20 times: while it ingests and
/// forwards, while the uplink is down (the backlog grows) and while it replays the backlog. Every sequence number the
/// outbox ever gave out must in the end be either delivered to the broker or still held by the outbox — a hole means
/// an accepted entry was lost — and a sequence delivered twice must carry the same body (a QoS 1 redelivery, never a
/// number reused for other data). The file must open cleanly after every kill.
/// </summary>
public sealed class AgentSigkillTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Nothing_accepted_is_lost_across_20_SIGKILLs_of_the_agent_during_ingest_outage_and_replay()
    {
        await using var sim = await SimPaths.StartAsync(racks: 3, units: 1, machines: 1);
        var dir = Directory.CreateTempSubdirectory("edgetwin-sigkill-");
        var delivered = new ConcurrentDictionary<long, string>();
        var conflicts = new ConcurrentQueue<string>();
        var port = TestPorts.FreeTcp();
        var broker = await StartBrokerAsync(port, delivered, conflicts);
        try
        {
            var configPath = WriteConfig(sim, dir.FullName, port);
            var random = new Random(20261130);
            var log = new List<string>();
            long first = 0; // the new outbox file's first sequence (Unix ms × 1000 + 1 at creation), from the first agent's log
            for (var cycle = 0; cycle < 20; cycle++)
            {
                // 0–7: ingest while forwarding; 8–13: uplink down, the backlog grows; 14–19: replay of that backlog.
                if (cycle == 8)
                {
                    await broker.StopAsync();
                    broker.Dispose();
                }
                else if (cycle == 14)
                {
                    broker = await StartBrokerAsync(port, delivered, conflicts);
                }

                await using var agent = AgentProcess.Start("run", "--config", configPath);
                Assert.Equal("READY=1", await agent.ReceiveNotifyAsync(StartTimeout, Ct));
                // Every 5th agent lives 5 s, so that some kill lands after a checkpoint with open windows even when a
                // loaded machine delays the first polls (a CI run at load 40 had all 20 kills before one).
                var aliveMs = cycle % 5 == 4 ? 5000 : random.Next(300, 2500);
                await Task.Delay(aliveMs, Ct);
                AgentProcess.SigKill(agent.Id);
                var code = await agent.WaitForExitAsync(StartTimeout, Ct);
                log.Add($"cycle {cycle}: killed after {aliveMs} ms (exit {code}), {delivered.Count} delivered");
                Assert.True(code is 137 or -1 or 9, $"cycle {cycle}: exit {code}; stdout:\n{agent.Stdout}");
                if (cycle == 0)
                {
                    var created = System.Text.RegularExpressions.Regex.Match(agent.Stdout, @"sequences start at (\d+)");
                    Assert.True(created.Success, $"the first agent did not log its new outbox file's first sequence; stdout:\n{agent.Stdout}");
                    first = long.Parse(created.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
                }

                Assert.DoesNotContain("moved aside", agent.Stdout, StringComparison.OrdinalIgnoreCase);
                Assert.DoesNotContain("corrupt", agent.Stdout, StringComparison.OrdinalIgnoreCase);
            }

            // Once more, undisturbed, until the backlog is delivered; then a clean stop.
            await using (var last = AgentProcess.Start("run", "--config", configPath))
            {
                Assert.Equal("READY=1", await last.ReceiveNotifyAsync(StartTimeout, Ct));
                await Task.Delay(TimeSpan.FromSeconds(5), Ct);
                await last.TerminateAsync(Ct);
                Assert.Equal(0, await last.WaitForExitAsync(StartTimeout, Ct));
                Assert.DoesNotContain("corrupt", last.Stdout, StringComparison.OrdinalIgnoreCase);
            }

            var held = await ExportAsync(configPath);
            var all = new SortedSet<long>(delivered.Keys.Concat(held.Keys));
            Assert.True(all.Count > 50, $"too little data to judge: {all.Count} sequences\n{string.Join('\n', log)}");
            Assert.True(all.Min >= first, $"sequence {all.Min} is below the new file's first sequence {first}");
            var missing = Enumerable.Range(0, (int)(all.Max - first + 1)).Select(i => first + i).Where(s => !all.Contains(s)).ToList();
            Assert.True(missing.Count == 0, $"{missing.Count} sequences neither delivered nor held (lost): {string.Join(", ", missing.Take(30))}\n{string.Join('\n', log)}");
            Assert.True(conflicts.IsEmpty, $"a sequence delivered with two different bodies: {string.Join("; ", conflicts.Take(5))}");
            foreach (var (seq, body) in held)
            {
                if (delivered.TryGetValue(seq, out var sent))
                {
                    Assert.Equal(sent, body); // delivered but its ack not recorded before a kill: the same entry, kept for redelivery
                }
            }

            // Every start after a kill says so, and what it recovered is never counted twice: a series polled every
            // 500 ms has at most 3 samples in a 1 s window (one late sample lands in the open window), whatever
            // number of partial summaries (before a kill, recovered, after the restart) carry them.
            var bodies = delivered.Concat(held).DistinctBy(p => p.Key).Select(p => JsonDocument.Parse(p.Value).RootElement).ToList();
            var gaps = bodies.Where(b => b.GetProperty("type").GetString() == "event" && b.GetProperty("event").GetString() == "data_gap"
                && b.GetProperty("attributes").GetProperty("reason").GetString() == "unclean_stop").ToList();
            Assert.Equal(20, gaps.Count);
            var recovered = gaps.Sum(g => int.Parse(g.GetProperty("attributes").GetProperty("windows_recovered").GetString()!, CultureInfo.InvariantCulture));
            Assert.True(recovered > 0, "no kill landed after a checkpoint with open windows: the recovery was not exercised");
            var perWindow = bodies.Where(b => b.GetProperty("type").GetString() == "summary")
                .GroupBy(b => (b.GetProperty("series").GetString(), b.GetProperty("start_ms").GetInt64()))
                .Select(g => (g.Key, Samples: g.Sum(b => b.GetProperty("count").GetInt64() + b.GetProperty("bad").GetInt64())))
                .ToList();
            var overfull = perWindow.Where(w => w.Samples > 3).ToList();
            Assert.True(overfull.Count == 0, $"{overfull.Count} windows hold more samples than were polled (counted twice): {string.Join("; ", overfull.Take(5))}");

            TestContext.Current.SendDiagnosticMessage($"{all.Count} sequences: {delivered.Count} delivered, {held.Count} still held; {gaps.Count} unclean stops reported, {recovered} windows recovered, at most {perWindow.Max(w => w.Samples)} samples in a window; {string.Join("; ", log)}");
        }
        finally
        {
            await broker.StopAsync();
            broker.Dispose();
            dir.Delete(recursive: true);
        }
    }

    /// <summary>
    /// The served site's config with the outbox in <paramref name="dir"/>, 1 s summaries (entries flow quickly) and MQTT
    /// to the test broker; the backlog is replayed slowly so that kills land in the middle of the replay.
    /// </summary>
    private static string WriteConfig(EdgeTwin.Simulator.Serving.SimulatedSiteHost sim, string dir, int port)
    {
        var config = sim.BuildConfig(TimeSpan.FromMilliseconds(500), SimPaths.Profiles, TimeSpan.FromMilliseconds(400)) with
        {
            // Open windows checkpointed every second, so that most kills land after a checkpoint with windows in it.
            Outbox = new OutboxSettings(Path.Combine(dir, "outbox.db"), 512, TimeSpan.FromDays(7)) { SummaryWindow = TimeSpan.FromSeconds(1), CheckpointInterval = TimeSpan.FromSeconds(1) },
        };
        var path = Path.Combine(dir, "edgetwin.yaml");
        File.WriteAllText(path, SiteConfigWriter.ToYaml(config) + $$"""

            uplinks:
              mqtt: { host: 127.0.0.1, port: {{port}}, protocol: "5", client_id: gw-sigkill, window: 64, backlog_rate: 40 }

            """);
        return path;
    }

    private static async Task<MqttServer> StartBrokerAsync(int port, ConcurrentDictionary<long, string> delivered, ConcurrentQueue<string> conflicts)
    {
        var factory = new MqttServerFactory();
        var server = factory.CreateMqttServer(factory.CreateServerOptionsBuilder()
            .WithDefaultEndpoint().WithDefaultEndpointBoundIPAddress(IPAddress.Loopback).WithDefaultEndpointBoundIPV6Address(IPAddress.None)
            .WithDefaultEndpointPort(port).WithPersistentSessions().Build());
        server.InterceptingPublishAsync += e =>
        {
            if (e.ApplicationMessage.Payload.Length > 0)
            {
                using var doc = JsonDocument.Parse(e.ApplicationMessage.Payload);
                if (doc.RootElement.TryGetProperty("seq", out var seq) && doc.RootElement.TryGetProperty("body", out var body))
                {
                    var text = body.GetRawText();
                    var existing = delivered.GetOrAdd(seq.GetInt64(), text);
                    if (existing != text)
                    {
                        conflicts.Enqueue($"seq {seq.GetInt64()}: {existing} vs {text}");
                    }
                }
            }

            return Task.CompletedTask;
        };
        await server.StartAsync();
        return server;
    }

    /// <summary><c>edgetwin outbox export</c>: what the outbox still holds, by sequence.</summary>
    private static async Task<Dictionary<long, string>> ExportAsync(string configPath)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "edgetwin.dll"), "outbox", "export", "--config", configPath })
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync(Ct);
        var stderr = p.StandardError.ReadToEndAsync(Ct);
        await p.WaitForExitAsync(Ct);
        Assert.True(p.ExitCode == 0, $"outbox export exited {p.ExitCode}: {await stderr}");
        var held = new Dictionary<long, string>();
        foreach (var line in (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using var doc = JsonDocument.Parse(line);
            held[doc.RootElement.GetProperty("seq").GetInt64()] = doc.RootElement.GetProperty("body").GetRawText();
        }

        return held;
    }
}
