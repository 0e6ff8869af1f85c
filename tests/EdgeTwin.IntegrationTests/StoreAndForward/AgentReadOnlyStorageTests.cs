using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Config;
using EdgeTwin.IntegrationTests.Agent;
using EdgeTwin.IntegrationTests.Alerting;
using EdgeTwin.IntegrationTests.Deployment;
using EdgeTwin.IntegrationTests.Simulator;
using EdgeTwin.Simulator.Serving;
using EdgeTwin.Tests.Shared;
using MQTTnet.Server;

namespace EdgeTwin.IntegrationTests.StoreAndForward;

/// <summary>
/// The real agent (<c>edgetwin run</c>) with its state directory on an ext4 that the kernel remounts read-only under it,
/// as a failing SD card's first I/O error does: the outbox goes on in memory and the broker keeps getting data, the
/// centre learns it from a <c>storage_failed</c> event, the shipped rule raises the local alarm, <c>status</c> says so,
/// and the stop is quick and says what is lost.
/// </summary>
public sealed class AgentReadOnlyStorageTests
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_agent_keeps_delivering_and_raises_the_alarm_when_its_storage_turns_read_only()
    {
        await using var disk = await Ext4Loop.CreateAsync();
        await using var sim = await SimPaths.StartAsync(racks: 2, units: 1, machines: 1);
        var received = new ConcurrentQueue<(DateTime At, string Kind, string? Event, string? State)>();
        var port = TestPorts.FreeTcp();
        var broker = await StartBrokerAsync(port, received);
        var work = Directory.CreateTempSubdirectory("edgetwin-ro-agent-");
        try
        {
            var configPath = WriteConfig(sim, disk, work.FullName, port, "gw-readonly");

            await using var agent = AgentProcess.Start("run", "--config", configPath);
            Assert.Equal("READY=1", await agent.ReceiveNotifyAsync(StartTimeout, Ct));
            await AlertingAgentSetup.Until(() => received.Count(m => m.Kind == "summary") >= 20, "summaries at the broker", 60);

            await disk.FailAsync();
            await AlertingAgentSetup.Until(() => received.Any(m => m.Event == "storage_failed"), "the storage_failed event at the broker", 60);
            var failedAt = received.First(m => m.Event == "storage_failed").At;

            // Delivery goes on from memory: summaries of windows closed after the switch keep arriving.
            await AlertingAgentSetup.Until(() => received.Count(m => m.Kind == "summary" && m.At > failedAt.AddSeconds(3)) >= 10, "summaries after the switch to memory", 30);

            // The local alarm (the storage feed looks every 15 s) and status, over the socket bound at start.
            var socket = Path.Combine(disk.Dir, "alerts.sock");
            await AlertingAgentSetup.Until(() => AlertFiring(socket, "gateway-storage-failed"), "the gateway-storage-failed alert", 60);
            var (exit, output, _) = await InProcessCli.RunAsync("status", "--socket", socket, "--json");
            Assert.Equal(1, exit);
            using (var status = JsonDocument.Parse(output))
            {
                Assert.Equal(JsonValueKind.String, status.RootElement.GetProperty("outbox").GetProperty("memory_only_since").ValueKind);
            }

            var stopping = DateTime.UtcNow;
            await agent.TerminateAsync(Ct);
            Assert.Equal(0, await agent.WaitForExitAsync(StartTimeout, Ct));
            Assert.True(DateTime.UtcNow - stopping < TimeSpan.FromSeconds(30), $"the stop took {DateTime.UtcNow - stopping}");
            Assert.Contains("Outbox closed while in memory only", agent.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("Outbox closed cleanly", agent.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            await broker.StopAsync();
            broker.Dispose();
            work.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Regression_a_restart_after_the_storage_turned_read_only_left_the_site_unwatched()
    {
        // A watchdog restart, an OOM kill or an upgrade after the card failed: the start was refused (exit 2, which systemd
        // does not restart) and the site was watched by nothing until someone replaced the card.
        await using var disk = await Ext4Loop.CreateAsync();
        await using var sim = await SimPaths.StartAsync(racks: 2, units: 1, machines: 1);
        var received = new ConcurrentQueue<(DateTime At, string Kind, string? Event, string? State)>();
        var port = TestPorts.FreeTcp();
        var broker = await StartBrokerAsync(port, received);
        var work = Directory.CreateTempSubdirectory("edgetwin-ro-restart-");
        try
        {
            var configPath = WriteConfig(sim, disk, work.FullName, port, "gw-ro-restart");
            await using (var first = AgentProcess.Start("run", "--config", configPath))
            {
                Assert.Equal("READY=1", await first.ReceiveNotifyAsync(StartTimeout, Ct));
                await AlertingAgentSetup.Until(() => received.Count(m => m.Kind == "summary") >= 10, "summaries at the broker", 60);
                await first.TerminateAsync(Ct);
                Assert.Equal(0, await first.WaitForExitAsync(StartTimeout, Ct));
            }

            await disk.FailAsync();
            var before = received.Count(m => m.Event == "storage_failed");
            var restartedAt = DateTime.UtcNow;

            // systemd's RuntimeDirectory= (the role's unit: /run/edgetwin), where the control socket goes when the state
            // directory holds none.
            var runtime = Directory.CreateDirectory(Path.Combine(work.FullName, "run")).FullName;
            var environment = new Dictionary<string, string> { ["RUNTIME_DIRECTORY"] = runtime };
            await using var agent = AgentProcess.Start(environment, "run", "--config", configPath);
            Assert.Equal("READY=1", await agent.ReceiveNotifyAsync(StartTimeout, Ct));
            await AlertingAgentSetup.Until(() => received.Count(m => m.Event == "storage_failed") > before, "the storage_failed event at the broker", 60);
            await AlertingAgentSetup.Until(() => received.Count(m => m.Kind == "summary" && m.At > restartedAt.AddSeconds(3)) >= 10, "summaries after the restart", 60);

            var socket = Path.Combine(runtime, "alerts.sock");
            await AlertingAgentSetup.Until(() => AlertFiring(socket, "gateway-storage-failed"), "the gateway-storage-failed alert", 60);
            Assert.Contains($"listening on {socket} instead", agent.Stdout, StringComparison.Ordinal);

            // The CLI finds the agent from the config alone: the state directory's socket is stale, the runtime one answers.
            await using (var cli = AgentProcess.Start(environment, "status", "--config", configPath, "--json"))
            {
                Assert.Equal(1, await cli.WaitForExitAsync(StartTimeout, Ct));
                using var status = JsonDocument.Parse(cli.Stdout);
                Assert.Equal(JsonValueKind.String, status.RootElement.GetProperty("outbox").GetProperty("memory_only_since").ValueKind);
                Assert.Equal("false", status.RootElement.GetProperty("alerts").GetProperty("store_persisting").ToString().ToLowerInvariant());
            }

            await agent.TerminateAsync(Ct);
            Assert.Equal(0, await agent.WaitForExitAsync(StartTimeout, Ct));
            Assert.Contains("Outbox closed while in memory only", agent.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            await broker.StopAsync();
            broker.Dispose();
            work.Delete(recursive: true);
        }
    }

    /// <summary>
    /// Regression: an agent whose outbox went on in memory stayed there until it stopped although the storage was made
    /// writable again (an admin's remount read-write): the alarm kept firing, <c>status</c> kept saying IN MEMORY ONLY, and
    /// a power cut lost everything since. Now the outbox writes itself back, the centre gets <c>storage_failed</c>
    /// <c>resolved</c>, the shipped alarm clears and the status is clean. A read-only bind mount remounted read-write
    /// (the kernel's own ext4 error state cannot be undone without fsck).
    /// </summary>
    [Fact]
    public async Task Regression_the_agent_stayed_in_memory_with_its_alarm_firing_after_the_storage_was_remounted_read_write()
    {
        await using var sim = await SimPaths.StartAsync(racks: 2, units: 1, machines: 1);
        var received = new ConcurrentQueue<(DateTime At, string Kind, string? Event, string? State)>();
        var port = TestPorts.FreeTcp();
        var broker = await StartBrokerAsync(port, received);
        var work = Directory.CreateTempSubdirectory("edgetwin-ro-writeback-");
        try
        {
            using var mount = ReadOnlyBindMount.Create(Path.Combine(work.FullName, "state"));
            mount.MakeWritable();
            var configPath = WriteConfig(sim, mount.Dir, work.FullName, port, "gw-ro-writeback");
            await using (var first = AgentProcess.Start("run", "--config", configPath))
            {
                Assert.Equal("READY=1", await first.ReceiveNotifyAsync(StartTimeout, Ct));
                await AlertingAgentSetup.Until(() => received.Count(m => m.Kind == "summary") >= 5, "summaries at the broker", 60);
                await first.TerminateAsync(Ct);
                Assert.Equal(0, await first.WaitForExitAsync(StartTimeout, Ct));
            }

            mount.MakeReadOnly();
            var runtime = Directory.CreateDirectory(Path.Combine(work.FullName, "run")).FullName;
            var environment = new Dictionary<string, string> { ["RUNTIME_DIRECTORY"] = runtime };
            await using var agent = AgentProcess.Start(environment, "run", "--config", configPath);
            Assert.Equal("READY=1", await agent.ReceiveNotifyAsync(StartTimeout, Ct));
            await AlertingAgentSetup.Until(() => received.Any(m => m.Event == "storage_failed" && m.State == "memory_only"), "the storage_failed event at the broker", 60);
            var socket = Path.Combine(runtime, "alerts.sock");
            await AlertingAgentSetup.Until(() => AlertFiring(socket, "gateway-storage-failed"), "the gateway-storage-failed alert", 60);

            mount.MakeWritable();
            var writableAt = DateTime.UtcNow;
            await AlertingAgentSetup.Until(() => received.Any(m => m.Event == "storage_failed" && m.State == "resolved"), "the storage_failed resolved event at the broker", 120);
            await AlertingAgentSetup.Until(() => !AlertFiring(socket, "gateway-storage-failed"), "the gateway-storage-failed alert cleared", 60);
            await AlertingAgentSetup.Until(() => received.Count(m => m.Kind == "summary" && m.At > writableAt.AddSeconds(1)) >= 5, "summaries after the write-back", 60);
            await using (var cli = AgentProcess.Start(environment, "status", "--config", configPath, "--json"))
            {
                await cli.WaitForExitAsync(StartTimeout, Ct);
                using var status = JsonDocument.Parse(cli.Stdout);
                Assert.Equal(JsonValueKind.Null, status.RootElement.GetProperty("outbox").GetProperty("memory_only_since").ValueKind);
            }

            Assert.Contains("its file system is writable again", agent.Stdout, StringComparison.Ordinal);
            await agent.TerminateAsync(Ct);
            Assert.Equal(0, await agent.WaitForExitAsync(StartTimeout, Ct));
            Assert.DoesNotContain("Outbox closed while in memory only", agent.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            await broker.StopAsync();
            broker.Dispose();
            work.Delete(recursive: true);
        }
    }

    private static string WriteConfig(SimulatedSiteHost sim, Ext4Loop disk, string work, int port, string clientId) =>
        WriteConfig(sim, disk.Dir, work, port, clientId);

    private static string WriteConfig(SimulatedSiteHost sim, string stateDir, string work, int port, string clientId)
    {
        var config = sim.BuildConfig(TimeSpan.FromMilliseconds(500), SimPaths.Profiles, TimeSpan.FromMilliseconds(400)) with
        {
            Outbox = new OutboxSettings(Path.Combine(stateDir, "outbox.db"), 512, TimeSpan.FromDays(7)) { SummaryWindow = TimeSpan.FromSeconds(1) },
        };
        var shipped = File.ReadAllLines(Path.Combine(Tool.RepoRoot(), "device-profiles", "examples", "alert-rules", "datacenter.yaml"))
            .SkipWhile(l => !l.Contains("- name: gateway-storage-failed", StringComparison.Ordinal))
            .TakeWhile((l, i) => i == 0 || !l.TrimStart().StartsWith("- name:", StringComparison.Ordinal));
        var configPath = Path.Combine(work, "edgetwin.yaml");
        File.WriteAllText(configPath, SiteConfigWriter.ToYaml(config) + $$"""

            uplinks:
              mqtt: { host: 127.0.0.1, port: {{port}}, client_id: {{clientId}} }
            alerts:
              group_interval: 0s
              rules:
            {{string.Join("\n", shipped)}}

            """);
        return configPath;
    }

    private static bool AlertFiring(string socket, string rule)
    {
        var (exit, output, _) = InProcessCli.RunAsync("alerts", "list", "--socket", socket, "--json").GetAwaiter().GetResult();
        if (exit is not (0 or 1))
        {
            return false;
        }

        using var doc = JsonDocument.Parse(output);
        return doc.RootElement.GetProperty("alerts").EnumerateArray()
            .Any(a => a.GetProperty("rule").GetString() == rule && a.GetProperty("state").GetString() == "firing");
    }

    private static async Task<MqttServer> StartBrokerAsync(int port, ConcurrentQueue<(DateTime At, string Kind, string? Event, string? State)> received)
    {
        var factory = new MqttServerFactory();
        var server = factory.CreateMqttServer(factory.CreateServerOptionsBuilder()
            .WithDefaultEndpoint().WithDefaultEndpointBoundIPAddress(IPAddress.Loopback).WithDefaultEndpointBoundIPV6Address(IPAddress.None)
            .WithDefaultEndpointPort(port).Build());
        server.InterceptingPublishAsync += e =>
        {
            if (e.ApplicationMessage.Payload.Length > 0)
            {
                using var doc = JsonDocument.Parse(e.ApplicationMessage.Payload);
                if (doc.RootElement.TryGetProperty("kind", out var kind) && doc.RootElement.TryGetProperty("body", out var body))
                {
                    var name = body.TryGetProperty("event", out var ev) ? ev.GetString() : null;
                    var state = body.TryGetProperty("attributes", out var attributes) && attributes.ValueKind == JsonValueKind.Object && attributes.TryGetProperty("state", out var st) ? st.GetString() : null;
                    received.Enqueue((DateTime.UtcNow, kind.GetString() ?? "", name, state));
                }
            }

            return Task.CompletedTask;
        };
        await server.StartAsync();
        return server;
    }
}
