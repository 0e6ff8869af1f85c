using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text.Json;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Sources;
using EdgeTwin.IntegrationTests.Agent;
using EdgeTwin.Uplink.Mqtt;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MQTTnet.Server;

namespace EdgeTwin.IntegrationTests.StoreAndForward;

/// <summary>
/// The whole agent (sources, summaries, LiteDB outbox, MQTT uplink to a broker on loopback) on a wall clock that NTP
/// steps while it runs: the centre receives a <c>clock_stepped</c> event whose range holds what was stamped before.
/// The wall clock here is the system's plus an offset the test steps; timers and the monotonic clock are the system's.
/// </summary>
public sealed class ClockStepAgentTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Regression_the_centre_filed_everything_a_gateway_stamped_before_ntp_stepped_its_clock_at_the_wrong_time()
    {
        // A gateway without RTC booted 5 h behind with its uplink down; its twin stages coped with NTP's step, but nothing
        // told the centre, which filed the summaries and events of those hours 5 h early for good.
        var server = new MqttServerFactory();
        var port = TestPorts.FreeTcp();
        using var broker = server.CreateMqttServer(server.CreateServerOptionsBuilder().WithDefaultEndpoint()
            .WithDefaultEndpointBoundIPAddress(IPAddress.Loopback).WithDefaultEndpointBoundIPV6Address(IPAddress.None).WithDefaultEndpointPort(port).Build());
        var received = new ConcurrentQueue<JsonElement>();
        broker.InterceptingPublishAsync += e =>
        {
            var payload = e.ApplicationMessage.Payload.ToArray();
            if (payload.Length > 0 && payload[0] == (byte)'{' && JsonDocument.Parse(payload).RootElement is { } root && root.TryGetProperty("seq", out _))
            {
                received.Enqueue(root.Clone());
            }

            return Task.CompletedTask;
        };
        await broker.StartAsync().WaitAsync(TimeSpan.FromSeconds(10), Ct);
        var dir = Directory.CreateTempSubdirectory("edgetwin-clockstep-agent-");
        var clock = new OffsetClock(TimeSpan.FromHours(-5));
        try
        {
            var config = AgentFiles.Load(AgentFiles.WriteConfig("""
                  - { id: pdu-1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: pub, interval: 200ms, timeout: 100ms }
                """));
            List<long> beforeStep;
            using (var host = Build(config, dir.FullName, port, clock))
            {
                await host.StartAsync(Ct);
                await Until(() => received.Any(m => m.GetProperty("kind").GetString() == "summary"), "summaries stamped by the wrong clock");
                beforeStep = received.Select(m => m.GetProperty("seq").GetInt64()).ToList();

                clock.Step(TimeSpan.FromHours(5)); // NTP's first sync
                await Until(() => received.Any(IsClockStepped), "the clock_stepped event at the broker");
                await Until(() => received.Any(m => !IsClockStepped(m) && Time(m) > clock.GetUtcNow().AddMinutes(-1)), "entries stamped by the new clock");
                await host.StopAsync(Ct);
            }

            var stepped = received.Single(IsClockStepped);
            var body = stepped.GetProperty("body");
            var a = body.GetProperty("attributes");
            Assert.Equal("warning", body.GetProperty("severity").GetString());
            Assert.Equal("clock", body.GetProperty("source").GetString());
            Assert.Equal(config.Site.GatewayId, stepped.GetProperty("device").GetString());
            var stepMs = long.Parse(a.GetProperty("step_ms").GetString()!, CultureInfo.InvariantCulture);
            Assert.InRange(stepMs, 18_000_000 - 200, 18_000_000 + 200);
            var wallBefore = DateTimeOffset.Parse(a.GetProperty("wall_before").GetString()!, CultureInfo.InvariantCulture);
            var wallAfter = DateTimeOffset.Parse(a.GetProperty("wall_after").GetString()!, CultureInfo.InvariantCulture);
            Assert.Equal(stepMs, (long)(wallAfter - wallBefore).TotalMilliseconds);
            var first = long.Parse(a.GetProperty("first_seq").GetString()!, CultureInfo.InvariantCulture);
            var last = long.Parse(a.GetProperty("last_seq").GetString()!, CultureInfo.InvariantCulture);

            // The range starts at the run's first entry and holds everything delivered before the step; the event and
            // everything stamped by the new clock after it come after the range.
            Assert.Equal(received.Min(m => m.GetProperty("seq").GetInt64()), first);
            Assert.All(beforeStep, s => Assert.InRange(s, first, last));
            Assert.True(stepped.GetProperty("seq").GetInt64() > last);
            var inRange = received.Where(m => m.GetProperty("seq").GetInt64() is var s && s >= first && s <= last).ToList();
            Assert.NotEmpty(inRange);
            // Old stamps lie before wall_before; new ones (appended between the step and the check that saw it) after
            // wall_after less a check interval and the pipeline's flush: the centre tells them apart by time for such a step.
            Assert.All(inRange, m => Assert.True(Time(m) <= wallBefore || Time(m) >= wallAfter - TimeSpan.FromSeconds(10), $"seq {m.GetProperty("seq")} at {Time(m):o}"));
            Assert.Contains(inRange, m => Time(m) <= wallBefore);
            Assert.All(received.Where(m => m.GetProperty("seq").GetInt64() > stepped.GetProperty("seq").GetInt64() && m.GetProperty("kind").GetString() != "summary"),
                m => Assert.True(Time(m) >= wallAfter - TimeSpan.FromSeconds(10)));
        }
        finally
        {
            await broker.StopAsync();
            dir.Delete(recursive: true);
        }
    }

    private static bool IsClockStepped(JsonElement m) =>
        m.GetProperty("kind").GetString() == "event" && m.GetProperty("body").GetProperty("event").GetString() == "clock_stepped";

    private static DateTimeOffset Time(JsonElement m) => DateTimeOffset.FromUnixTimeMilliseconds(m.GetProperty("body").GetProperty("time_ms").GetInt64());

    private static IHost Build(SiteConfig config, string dir, int port, TimeProvider clock)
    {
        var mqtt = new MqttUplinkOptions
        {
            Host = "127.0.0.1",
            Port = port,
            ClientId = "edgetwin-clockstep",
            Site = config.Site.Id,
            Gateway = config.Site.GatewayId,
            StateDirectory = dir,
            Delivery = new Uplink.Delivery.DeliveryOptions { ConnectTimeout = TimeSpan.FromSeconds(2), ReconnectInitialDelay = TimeSpan.FromMilliseconds(200), ReconnectMaxDelay = TimeSpan.FromSeconds(1) },
        };
        return AgentHostBuilder.Build(config, new AgentHostOptions
        {
            DiscoverSourceFactories = false,
            UseSystemd = false,
            StatusLogInterval = null,
            MinimumLogLevel = LogLevel.Warning,
            ShutdownTimeout = TimeSpan.FromSeconds(15),
            TimeProvider = clock,
            ConfigureServices = s => s
                .AddSourceFactory(new ProfileFakeFactory())
                .AddStoreAndForward(new StoreAndForwardOptions
                {
                    SummaryWindow = TimeSpan.FromSeconds(1),
                    FlushInterval = TimeSpan.FromMilliseconds(200),
                    OutboxPath = Path.Combine(dir, "outbox.db"),
                    Uplinks = new UplinksConfig(mqtt, null),
                }),
        });
    }

    private static async Task Until(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("timed out waiting for " + what);
            }

            await Task.Delay(50, Ct);
        }
    }

    /// <summary>The system clock, its wall time offset by what the test steps (CLOCK_REALTIME vs CLOCK_MONOTONIC).</summary>
    private sealed class OffsetClock(TimeSpan offset) : TimeProvider
    {
        private long _offsetTicks = offset.Ticks;

        public void Step(TimeSpan by) => Interlocked.Add(ref _offsetTicks, by.Ticks);

        public override DateTimeOffset GetUtcNow() => TimeProvider.System.GetUtcNow() + TimeSpan.FromTicks(Interlocked.Read(ref _offsetTicks));
    }
}
