using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Sources;
using EdgeTwin.IntegrationTests.Agent;
using EdgeTwin.Uplink.Mqtt;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MQTTnet.Server;

namespace EdgeTwin.IntegrationTests.StoreAndForward;

/// <summary>The agent's pipeline through summaries, the LiteDB outbox and the MQTT uplink to a real broker.</summary>
public sealed class StoreAndForwardTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string OnePdu = """
          - { id: pdu-1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: pub, interval: 200ms, timeout: 100ms }
        """;

    [Fact]
    public async Task Summaries_reach_the_broker_as_json_envelopes_with_units_and_in_sequence()
    {
        await using var broker = await Broker.StartAsync();
        var dir = Directory.CreateTempSubdirectory("edgetwin-saf-");
        try
        {
            var config = AgentFiles.Load(AgentFiles.WriteConfig(OnePdu));
            using (var host = BuildAgent(config, dir.FullName, broker.Port))
            {
                await host.StartAsync(Ct);
                await WaitUntilAsync(() => broker.Messages.Any(m => m.Topic.EndsWith("/summary", StringComparison.Ordinal)), "a summary at the broker");
                await host.StopAsync(Ct);
            }

            var summaries = broker.Messages.Where(m => m.Topic == "edgetwin/dc1/gw-test/summary").Select(m => JsonDocument.Parse(m.Payload).RootElement).ToList();
            Assert.NotEmpty(summaries);
            var first = summaries[0];
            Assert.Equal(1, first.GetProperty("v").GetInt32());
            Assert.Equal("pdu-1", first.GetProperty("device").GetString());
            var body = first.GetProperty("body");
            Assert.StartsWith("pdu-1/", body.GetProperty("series").GetString(), StringComparison.Ordinal);
            Assert.True(body.GetProperty("count").GetInt32() >= 1);
            Assert.False(string.IsNullOrEmpty(body.GetProperty("unit").GetString()));

            // Sequence numbers let the centre de-duplicate: strictly increasing over what one session delivered.
            var seqs = broker.Messages.Where(m => m.Topic.StartsWith("edgetwin/dc1/gw-test/", StringComparison.Ordinal) && m.Payload.Length > 0 && m.Payload[0] == (byte)'{')
                .Select(m => JsonDocument.Parse(m.Payload).RootElement).Where(e => e.TryGetProperty("seq", out _)).Select(e => e.GetProperty("seq").GetInt64()).ToList();
            Assert.Equal(seqs.Distinct().Count(), seqs.Count);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Regression_a_clean_stop_left_its_last_summaries_in_the_outbox_until_the_next_start()
    {
        // The feeder and the uplinks were cancelled together: the stop's final flush (the open windows, flagged partial)
        // was appended and then never sent. Now the uplink delivers it before the outbox closes.
        await using var broker = await Broker.StartAsync();
        var dir = Directory.CreateTempSubdirectory("edgetwin-saf-");
        try
        {
            var config = AgentFiles.Load(AgentFiles.WriteConfig(OnePdu));
            using (var host = BuildAgent(config, dir.FullName, broker.Port, TimeSpan.FromMinutes(10)))
            {
                await host.StartAsync(Ct);
                await WaitUntilAsync(() => broker.Messages.Any(m => m.Topic.EndsWith("/status", StringComparison.Ordinal) || m.Topic.EndsWith("/summary", StringComparison.Ordinal)), "the uplink's session");
                await Task.Delay(TimeSpan.FromSeconds(1), Ct);
                await host.StopAsync(Ct);
            }

            await using (var reopened = await Outbox.LiteDbOutbox.OpenAsync(new Outbox.LiteDbOutboxOptions { Path = Path.Combine(dir.FullName, "outbox.db") }, cancellationToken: Ct))
            {
                Assert.Equal(0, reopened.GetStats().Depth);
            }

            // The 10-minute window never closed while running: what reached the broker is the stop's partial flush.
            var partial = broker.Messages.Where(m => m.Topic.EndsWith("/summary", StringComparison.Ordinal))
                .Select(m => JsonDocument.Parse(m.Payload).RootElement.GetProperty("body")).ToList();
            Assert.NotEmpty(partial);
            Assert.All(partial, b => Assert.True(b.GetProperty("partial").GetBoolean()));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task What_was_buffered_while_the_broker_was_unreachable_is_delivered_after_a_restart_flagged_historical()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-saf-");
        try
        {
            var config = AgentFiles.Load(AgentFiles.WriteConfig(OnePdu));

            // First run: the uplink points at a port nobody listens on; everything stays in the outbox file.
            var deadPort = TestPorts.FreeTcp();
            long buffered;
            using (var host = BuildAgent(config, dir.FullName, deadPort))
            {
                await host.StartAsync(Ct);
                var saf = host.Services.GetRequiredService<StoreAndForwardService>();
                await WaitUntilAsync(() => saf.Outbox.GetStats().Depth >= 3, "summaries buffered in the outbox");
                await host.StopAsync(Ct);
            }

            // Reopen the file alone to count what the stop left in it.
            await using (var reopened = await Outbox.LiteDbOutbox.OpenAsync(new Outbox.LiteDbOutboxOptions { Path = Path.Combine(dir.FullName, "outbox.db") }, cancellationToken: Ct))
            {
                buffered = reopened.GetStats().Depth;
            }

            Assert.True(buffered >= 3, $"expected the buffered summaries on disk after a clean stop, found {buffered}");

            // Second run with a broker: the backlog arrives, flagged historical.
            await using var broker = await Broker.StartAsync();
            using (var host = BuildAgent(config, dir.FullName, broker.Port))
            {
                await host.StartAsync(Ct);
                await WaitUntilAsync(() => broker.Envelopes().Count(e => e.GetProperty("historical").GetBoolean()) >= buffered, $"{buffered} historical messages");
                await host.StopAsync(Ct);
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task An_uplink_removed_from_the_config_no_longer_holds_entries_back()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-saf-");
        try
        {
            var config = AgentFiles.Load(AgentFiles.WriteConfig(OnePdu));
            using (var host = BuildAgent(config, dir.FullName, TestPorts.FreeTcp()))
            {
                await host.StartAsync(Ct);
                Assert.Contains("mqtt", host.Services.GetRequiredService<StoreAndForwardService>().Outbox.GetStats().UplinkPositions.Keys);
                await host.StopAsync(Ct);
            }

            using (var host = BuildAgent(config, dir.FullName, brokerPort: null))
            {
                await host.StartAsync(Ct);
                Assert.DoesNotContain("mqtt", host.Services.GetRequiredService<StoreAndForwardService>().Outbox.GetStats().UplinkPositions.Keys);
                await host.StopAsync(Ct);
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Regression_sparkplug_DBIRTH_was_resent_for_every_new_series_of_a_pdu()
    {
        // Was: the PDU's DBIRTH came again for each series as its first window closed (41 to 49 per PDU of a 4-rack sim).
        // The agent now hands the uplink its series registry: one DBIRTH declares them all, every DDATA metric in it.
        await using var broker = await Broker.StartAsync();
        var dir = Directory.CreateTempSubdirectory("edgetwin-saf-");
        try
        {
            var config = AgentFiles.Load(AgentFiles.WriteConfig(OnePdu));
            const string Births = "spBv1.0/dc1/DBIRTH/gw-test/pdu-1";
            const string Data = "spBv1.0/dc1/DDATA/gw-test/pdu-1";
            using (var host = BuildAgent(config, dir.FullName, broker.Port, encoding: MqttPayloadEncoding.SparkplugB))
            {
                await host.StartAsync(Ct);
                // Three 1 s windows of every series.
                await WaitUntilAsync(() => broker.Messages.Count(m => m.Topic == Data) >= 3 * broker.Messages.Where(m => m.Topic == Data).Select(m => Uplink.Sparkplug.Proto.Payload.Parser.ParseFrom(m.Payload).Metrics[1].Name).Distinct().Count() + 3, "three windows of DDATA");
                await host.StopAsync(Ct);
            }

            var birth = Uplink.Sparkplug.Proto.Payload.Parser.ParseFrom(Assert.Single(broker.Messages, m => m.Topic == Births).Payload);
            var declared = birth.Metrics.ToDictionary(m => m.Name, m => m.Datatype);
            var sent = broker.Messages.Where(m => m.Topic == Data).SelectMany(m => Uplink.Sparkplug.Proto.Payload.Parser.ParseFrom(m.Payload).Metrics).ToList();
            Assert.All(sent, m => Assert.Equal(declared[m.Name], m.Datatype));
            Assert.Contains(declared.Keys, n => n.StartsWith("inlet_temperature", StringComparison.Ordinal));
            Assert.True(declared.Count >= 1 + 2 * 12, $"{declared.Count} metrics declared: several series in the one DBIRTH");
            Assert.DoesNotContain(broker.Messages, m => m.Topic.StartsWith("spBv1.0/dc1/DBIRTH/", StringComparison.Ordinal) && m.Topic != Births);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static IHost BuildAgent(SiteConfig config, string dir, int? brokerPort, TimeSpan? summaryWindow = null, MqttPayloadEncoding encoding = MqttPayloadEncoding.Json)
    {
        var mqtt = new MqttUplinkOptions
        {
            Encoding = encoding,
            Host = "127.0.0.1",
            Port = brokerPort ?? 1,
            ClientId = "edgetwin-test",
            Site = config.Site.Id,
            Gateway = config.Site.GatewayId,
            StateDirectory = dir,
            Delivery = new Uplink.Delivery.DeliveryOptions { ConnectTimeout = TimeSpan.FromSeconds(2), ReconnectInitialDelay = TimeSpan.FromMilliseconds(200), ReconnectMaxDelay = TimeSpan.FromSeconds(1) },
        };
        var factory = new ProfileFakeFactory();
        var options = new AgentHostOptions
        {
            DiscoverSourceFactories = false,
            UseSystemd = false,
            StatusLogInterval = null,
            MinimumLogLevel = LogLevel.Warning,
            ShutdownTimeout = TimeSpan.FromSeconds(15),
            ConfigureServices = s => s
                .AddSourceFactory(factory)
                .AddStoreAndForward(new StoreAndForwardOptions
                {
                    SummaryWindow = summaryWindow ?? TimeSpan.FromSeconds(1),
                    FlushInterval = TimeSpan.FromMilliseconds(200),
                    OutboxPath = Path.Combine(dir, "outbox.db"),
                    Uplinks = brokerPort is null ? UplinksConfig.None : new UplinksConfig(mqtt, null),
                }),
        };
        return AgentHostBuilder.Build(config, options);
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what, int seconds = 60)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("timed out waiting for " + what);
            }

            await Task.Delay(50, Ct);
        }
    }


    private sealed class Broker : IAsyncDisposable
    {
        private readonly MqttServer _server;

        private Broker(MqttServer server, int port)
        {
            _server = server;
            Port = port;
            _server.InterceptingPublishAsync += e =>
            {
                Messages.Enqueue((e.ApplicationMessage.Topic, e.ApplicationMessage.Payload.ToArray()));
                return Task.CompletedTask;
            };
        }

        public int Port { get; }

        public ConcurrentQueue<(string Topic, byte[] Payload)> Messages { get; } = new();

        public List<JsonElement> Envelopes() =>
            [.. Messages.Where(m => m.Payload.Length > 0 && m.Payload[0] == (byte)'{')
                .Select(m => JsonDocument.Parse(m.Payload).RootElement)
                .Where(e => e.TryGetProperty("historical", out _))];

        public static async Task<Broker> StartAsync()
        {
            var factory = new MqttServerFactory();
            var port = TestPorts.FreeTcp();
            var options = factory.CreateServerOptionsBuilder()
                .WithDefaultEndpoint()
                .WithDefaultEndpointBoundIPAddress(IPAddress.Loopback)
                .WithDefaultEndpointBoundIPV6Address(IPAddress.None)
                .WithDefaultEndpointPort(port)
                .Build();
            var server = factory.CreateMqttServer(options);
            await server.StartAsync().WaitAsync(TimeSpan.FromSeconds(10), Ct);
            return new Broker(server, port);
        }

        public async ValueTask DisposeAsync()
        {
            await _server.StopAsync();
            _server.Dispose();
        }
    }
}
