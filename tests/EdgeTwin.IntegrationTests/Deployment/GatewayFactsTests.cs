using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using EdgeTwin.Agent.Fleet;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.Core.Sources;
using EdgeTwin.IntegrationTests.Agent;
using EdgeTwin.Uplink.Mqtt;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MQTTnet.Server;

namespace EdgeTwin.IntegrationTests.Deployment;

/// <summary>
/// Fleet facts (issue 10): the agent's MQTT birth names its version, architecture, the SHA-256 of its config file and the
/// model versions from the models manifest. The whole agent runs against an in-process broker.
/// </summary>
public sealed partial class GatewayFactsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string OnePdu = """
          - { id: pdu-1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: pub, interval: 200ms, timeout: 100ms }
        """;

    [Fact]
    public async Task Birth_reports_version_architecture_config_hash_and_model_versions()
    {
        var models = Directory.CreateTempSubdirectory("edgetwin-facts-models-");
        try
        {
            await File.WriteAllTextAsync(Path.Combine(models.FullName, "manifest.json"), """
                { "models": [ { "name": "rul-fan", "version": "2026.11.30", "file": "rul-fan.onnx", "sha256": "00" },
                              { "name": "rack-ae", "version": "3", "file": "rack-ae.onnx" } ] }
                """, Ct);
            var path = AgentFiles.WriteConfig(OnePdu, $"models: {{ directory: {models.FullName} }}");
            var config = AgentFiles.Load(path);
            var expectedHash = Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(path, Ct)));

            var messages = new ConcurrentQueue<(string Topic, byte[] Payload)>();
            var port = TestPorts.FreeTcp();
            var factory = new MqttServerFactory();
            using var server = factory.CreateMqttServer(factory.CreateServerOptionsBuilder().WithDefaultEndpoint()
                .WithDefaultEndpointBoundIPAddress(IPAddress.Loopback).WithDefaultEndpointBoundIPV6Address(IPAddress.None)
                .WithDefaultEndpointPort(port).Build());
            server.InterceptingPublishAsync += e =>
            {
                messages.Enqueue((e.ApplicationMessage.Topic, e.ApplicationMessage.Payload.ToArray()));
                return Task.CompletedTask;
            };
            await server.StartAsync().WaitAsync(TimeSpan.FromSeconds(10), Ct);
            try
            {
                using var host = BuildAgent(config, Path.GetDirectoryName(path)!, port);
                await host.StartAsync(Ct);
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
                while (!messages.Any(m => m.Topic == "edgetwin/dc1/gw-test/status" && m.Payload.Length > 0 && IsOnline(m.Payload)))
                {
                    Assert.True(DateTime.UtcNow < deadline, "no online birth at the broker within 60 s");
                    await Task.Delay(50, Ct);
                }

                await host.StopAsync(Ct);
            }
            finally
            {
                await server.StopAsync();
            }

            var birth = JsonDocument.Parse(messages.First(m => m.Topic == "edgetwin/dc1/gw-test/status" && IsOnline(m.Payload)).Payload).RootElement;
            var facts = birth.GetProperty("facts");
            var props = await File.ReadAllTextAsync(Path.Combine(Tool.RepoRoot(), "Directory.Build.props"), Ct);
            Assert.StartsWith(VersionElement().Match(props).Groups[1].Value, facts.GetProperty("version").GetString(), StringComparison.Ordinal);
            Assert.Equal(RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant(), facts.GetProperty("arch").GetString());
            Assert.Equal(expectedHash, facts.GetProperty("config_sha256").GetString());
            Assert.Equal(
                ["rul-fan=2026.11.30", "rack-ae=3"],
                facts.GetProperty("models").EnumerateArray().Select(m => $"{m.GetProperty("name").GetString()}={m.GetProperty("version").GetString()}"));
        }
        finally
        {
            models.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Models_are_reread_at_each_birth_and_a_broken_manifest_is_reported_not_hidden()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-facts-");
        try
        {
            var manifest = Path.Combine(dir.FullName, "manifest.json");
            Assert.Empty(GatewayFactsSource.ReadModels(manifest));
            await File.WriteAllTextAsync(manifest, """[ { "name": "a", "version": 7 } ]""", Ct);
            Assert.Equal([new Uplink.Payloads.ModelFact("a", "7")], GatewayFactsSource.ReadModels(manifest));
            await File.WriteAllTextAsync(manifest, "{ \"models\": [", Ct);
            var broken = Assert.Single(GatewayFactsSource.ReadModels(manifest));
            Assert.Equal("manifest", broken.Name);
            Assert.StartsWith("unreadable:", broken.Version, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static bool IsOnline(byte[] payload) =>
        payload.Length > 0 && JsonDocument.Parse(payload).RootElement.GetProperty("state").GetString() == "online";

    private static IHost BuildAgent(Core.Config.SiteConfig config, string dir, int port)
    {
        var mqtt = new MqttUplinkOptions
        {
            Host = "127.0.0.1",
            Port = port,
            ClientId = "edgetwin-facts-test",
            Site = config.Site.Id,
            Gateway = config.Site.GatewayId,
            StateDirectory = dir,
        };
        var options = new AgentHostOptions
        {
            DiscoverSourceFactories = false,
            UseSystemd = false,
            StatusLogInterval = null,
            MinimumLogLevel = LogLevel.Warning,
            ShutdownTimeout = TimeSpan.FromSeconds(15),
            ConfigureServices = s => s
                .AddSourceFactory(new ProfileFakeFactory())
                .AddStoreAndForward(new StoreAndForwardOptions
                {
                    SummaryWindow = TimeSpan.FromSeconds(1),
                    FlushInterval = TimeSpan.FromMilliseconds(200),
                    OutboxPath = Path.Combine(dir, "outbox.db"),
                    Uplinks = new UplinksConfig(mqtt, null),
                }),
        };
        return AgentHostBuilder.Build(config, options);
    }


    [GeneratedRegex("<Version>([^<]+)</Version>")]
    private static partial Regex VersionElement();
}
