using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text.Json;
using EdgeTwin.Core.Config;
using EdgeTwin.IntegrationTests.Agent;
using EdgeTwin.IntegrationTests.Alerting;
using EdgeTwin.IntegrationTests.Simulator;
using MQTTnet.Server;

namespace EdgeTwin.IntegrationTests.StoreAndForward;

/// <summary>
/// The real agent (<c>edgetwin run</c>) under libfaketime: its wall clock starts 5 h behind, as on a gateway without RTC
/// booted from fake-hwclock's saved time, and is stepped to the true time while it runs (the timestamp file changes);
/// the monotonic clock is the real one (<c>DONT_FAKE_MONOTONIC=1</c>). The broker receives <c>clock_stepped</c>.
/// <c>FAKETIME_FORCE_MONOTONIC_FIX=0</c> is needed for .NET: with Debian's default (on), every timed wait on a
/// CLOCK_MONOTONIC condition variable returned at once (Thread.Sleep(500) took 0 ms), so no timer of the agent would work.
/// </summary>
public sealed class ClockStepFaketimeTests
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_real_agent_whose_clock_ntp_steps_forward_tells_the_broker_what_it_stamped_before()
    {
        var library = FindLibfaketime();
        Assert.SkipWhen(library is null, "libfaketime (Debian package 'faketime') is not installed");
        await using var sim = await SimPaths.StartAsync(racks: 1, units: 1, machines: 1);
        var received = new ConcurrentQueue<JsonElement>();
        var port = TestPorts.FreeTcp();
        var factory = new MqttServerFactory();
        using var broker = factory.CreateMqttServer(factory.CreateServerOptionsBuilder()
            .WithDefaultEndpoint().WithDefaultEndpointBoundIPAddress(IPAddress.Loopback).WithDefaultEndpointBoundIPV6Address(IPAddress.None)
            .WithDefaultEndpointPort(port).Build());
        broker.InterceptingPublishAsync += e =>
        {
            var payload = e.ApplicationMessage.Payload.ToArray();
            if (payload.Length > 0 && payload[0] == (byte)'{' && JsonDocument.Parse(payload).RootElement is { } root && root.TryGetProperty("seq", out _))
            {
                received.Enqueue(root.Clone());
            }

            return Task.CompletedTask;
        };
        await broker.StartAsync();
        var work = Directory.CreateTempSubdirectory("edgetwin-faketime-");
        try
        {
            var stamp = Path.Combine(work.FullName, "faketime");
            await File.WriteAllTextAsync(stamp, "-5h\n", Ct);
            var config = sim.BuildConfig(TimeSpan.FromMilliseconds(500), SimPaths.Profiles, TimeSpan.FromMilliseconds(400)) with
            {
                Outbox = new OutboxSettings(Path.Combine(work.FullName, "outbox.db"), 512, TimeSpan.FromDays(7)) { SummaryWindow = TimeSpan.FromSeconds(1) },
            };
            var configPath = Path.Combine(work.FullName, "edgetwin.yaml");
            await File.WriteAllTextAsync(configPath, SiteConfigWriter.ToYaml(config) + $$"""

                uplinks:
                  mqtt: { host: 127.0.0.1, port: {{port}}, client_id: gw-faketime }

                """, Ct);
            var environment = new Dictionary<string, string>
            {
                ["LD_PRELOAD"] = library!,
                ["FAKETIME_TIMESTAMP_FILE"] = stamp,
                ["FAKETIME_CACHE_DURATION"] = "1",
                ["DONT_FAKE_MONOTONIC"] = "1",
                ["FAKETIME_FORCE_MONOTONIC_FIX"] = "0",
            };

            await using var agent = AgentProcess.Start(environment, "run", "--config", configPath);
            Assert.Equal("READY=1", await agent.ReceiveNotifyAsync(StartTimeout, Ct));
            await AlertingAgentSetup.Until(() => received.Count(m => Kind(m) == "summary") >= 10, "summaries at the broker", 60);
            var real = DateTimeOffset.UtcNow;
            var early = received.Where(m => Kind(m) == "summary").Select(Time).ToList();
            Assert.All(early, t => Assert.InRange(t, real.AddHours(-5).AddMinutes(-2), real.AddHours(-5).AddMinutes(1))); // the wrong clock
            var beforeStep = received.Select(Seq).ToList();

            // NTP's first sync: the clock becomes the true one.
            var next = stamp + ".new";
            await File.WriteAllTextAsync(next, "+0\n", Ct);
            File.Move(next, stamp, overwrite: true);
            await AlertingAgentSetup.Until(() => received.Any(IsClockStepped), "the clock_stepped event at the broker", 60);
            await AlertingAgentSetup.Until(() => received.Count(m => Kind(m) == "summary" && Time(m) > DateTimeOffset.UtcNow.AddMinutes(-1)) >= 5, "summaries stamped by the true clock", 60);
            await agent.TerminateAsync(Ct);
            Assert.Equal(0, await agent.WaitForExitAsync(StartTimeout, Ct));

            var stepped = received.Single(IsClockStepped);
            var a = stepped.GetProperty("body").GetProperty("attributes");
            var stepMs = long.Parse(a.GetProperty("step_ms").GetString()!, CultureInfo.InvariantCulture);
            Assert.InRange(stepMs, 18_000_000 - 2_000, 18_000_000 + 2_000);
            var first = long.Parse(a.GetProperty("first_seq").GetString()!, CultureInfo.InvariantCulture);
            var last = long.Parse(a.GetProperty("last_seq").GetString()!, CultureInfo.InvariantCulture);
            Assert.Equal(received.Min(Seq), first);
            Assert.All(beforeStep, s => Assert.InRange(s, first, last));
            Assert.True(Seq(stepped) > last);
            var wallAfter = DateTimeOffset.Parse(a.GetProperty("wall_after").GetString()!, CultureInfo.InvariantCulture);
            Assert.InRange(wallAfter, real, DateTimeOffset.UtcNow); // the true clock
            Assert.Contains("the wall clock stepped forward by 5h 0m", agent.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            await broker.StopAsync();
            work.Delete(recursive: true);
        }
    }

    /// <summary>Debian's multiarch place (<c>/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1</c>), or the plain one.</summary>
    private static string? FindLibfaketime() =>
        (Directory.Exists("/usr/lib") ? Directory.EnumerateDirectories("/usr/lib", "*-linux-gnu*") : [])
            .Append("/usr/lib")
            .Select(d => Path.Combine(d, "faketime", "libfaketime.so.1"))
            .FirstOrDefault(File.Exists);

    private static string? Kind(JsonElement m) => m.GetProperty("kind").GetString();

    private static long Seq(JsonElement m) => m.GetProperty("seq").GetInt64();

    private static DateTimeOffset Time(JsonElement m) => DateTimeOffset.FromUnixTimeMilliseconds(m.GetProperty("body").GetProperty("time_ms").GetInt64());

    private static bool IsClockStepped(JsonElement m) =>
        Kind(m) == "event" && m.GetProperty("body").GetProperty("event").GetString() == "clock_stepped";
}
