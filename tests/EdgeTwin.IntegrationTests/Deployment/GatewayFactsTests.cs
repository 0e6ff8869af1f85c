using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using EdgeTwin.Agent.Cli;
using EdgeTwin.Agent.Fleet;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.Agent.Twin.Models;
using EdgeTwin.Core.Sources;
using EdgeTwin.IntegrationTests.Agent;
using EdgeTwin.Twin.Models;
using EdgeTwin.Uplink.Mqtt;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MQTTnet.Server;

namespace EdgeTwin.IntegrationTests.Deployment;

/// <summary>
/// Fleet facts (issue 10): the agent's MQTT birth names its version, architecture, the SHA-256 of its config file and the
/// models that serve (the models catalog's status), again after a hot reload. The whole agent runs against an in-process broker.
/// </summary>
public sealed partial class GatewayFactsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string OnePdu = """
          - { id: pdu-1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: pub, interval: 200ms, timeout: 100ms }
        """;

    /// <summary>The committed models copied into a temp directory; <paramref name="edit"/> may change the manifest.</summary>
    private static DirectoryInfo CopyModels(Action<JsonObject>? edit = null)
    {
        var models = AgentFiles.TempDir("edgetwin-facts-models-");
        var source = Path.Combine(Tool.RepoRoot(), "models");
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "manifest.json")))!.AsObject();
        foreach (var m in manifest["models"]!.AsArray())
        {
            File.Copy(Path.Combine(source, (string)m!["file"]!), Path.Combine(models.FullName, (string)m["file"]!));
        }

        edit?.Invoke(manifest);
        WriteManifest(models.FullName, manifest);
        return models;
    }

    private static void WriteManifest(string directory, JsonObject manifest)
    {
        var tmp = Path.Combine(directory, "manifest.json.tmp");
        File.WriteAllText(tmp, manifest.ToJsonString());
        File.Move(tmp, Path.Combine(directory, "manifest.json"), overwrite: true);
    }

    private static JsonObject Entry(JsonObject manifest, string name) =>
        manifest["models"]!.AsArray().Single(m => (string?)m!["name"] == name)!.AsObject();

    private static string Describe(JsonElement model) =>
        $"{model.GetProperty("name").GetString()}={model.GetProperty("version").GetString()}:{model.GetProperty("state").GetString()}";

    [Fact]
    public async Task Birth_reports_version_architecture_config_hash_and_model_versions()
    {
        var models = CopyModels();
        var path = AgentFiles.WriteConfig(OnePdu, $"models: {{ directory: {models.FullName} }}");
        var config = AgentFiles.Load(path);
        // The documented way to reproduce the announced hash (src/EdgeTwin.Agent/Fleet/README.md); the config's inline
        // community is redacted in it, so it is not the file's SHA-256.
        var (exit, output, error) = await InProcessCli.RunAsync("check", "--config", path, "--json");
        Assert.True(exit == 0, $"exit {exit}: {error}\n{output}");
        var expectedHash = JsonDocument.Parse(output).RootElement.GetProperty("summary").GetProperty("config_sha256").GetString();
        Assert.NotEqual(Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(path, Ct))), expectedHash);

        await using var broker = await Broker.StartAsync();
        using (var host = BuildAgent(config, Path.GetDirectoryName(path)!, broker.Port))
        {
            await host.StartAsync(Ct);
            await broker.WaitForAsync(births => births.Any(b => b.GetProperty("facts").GetProperty("models").GetArrayLength() == 3), "a birth listing the models");
            await host.StopAsync(Ct);
        }

        // Regression (central-twin audit): the first birth came before the catalog's first load and listed no models.
        var facts = broker.Births().First().GetProperty("facts");
        var props = await File.ReadAllTextAsync(Path.Combine(Tool.RepoRoot(), "Directory.Build.props"), Ct);
        Assert.StartsWith(VersionElement().Match(props).Groups[1].Value, facts.GetProperty("version").GetString(), StringComparison.Ordinal);
        Assert.Equal(RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant(), facts.GetProperty("arch").GetString());
        Assert.Equal(expectedHash, facts.GetProperty("config_sha256").GetString());
        Assert.Equal(["bearing-rul=1.1.0:available", "rul-cmapss=1.6.0:available", "mv-machine=1.1.0:available"], facts.GetProperty("models").EnumerateArray().Select(Describe));
    }

    [Fact]
    public void Regression_config_sha256_was_a_hash_over_the_inline_secrets_so_a_weak_community_could_be_guessed_offline()
    {
        // One text (WriteConfig's outbox path differs per directory), varied per case.
        var template = File.ReadAllText(AgentFiles.WriteConfig(OnePdu, "uplinks: { mqtt: { host: 127.0.0.1, username: gw, password: hunter2-broker } }"));

        string Facts(string community, string password = "hunter2-broker", string device = "pdu-1")
        {
            var path = Path.Combine(AgentFiles.TempDir("edgetwin-facts-hash-").FullName, "edgetwin.yaml");
            File.WriteAllText(path, template
                .Replace("community: public", "community: " + community, StringComparison.Ordinal)
                .Replace("password: hunter2-broker", "password: " + password, StringComparison.Ordinal)
                .Replace("pdu-1", device, StringComparison.Ordinal));
            // Loaded as run loads it (every section owner reads its section, so its inline secrets are known).
            var result = AgentConfigFile.LoadSite(path);
            Assert.True(result.IsValid, string.Join("\n", result.Problems));
            using var source = new GatewayFactsSource(result.Config!, catalog: null);
            return source.Current().ConfigSha256;
        }

        var weak = Facts("public");
        Assert.Equal(weak, Facts("\"a-long-and-random-community\"", password: "'another broker password'"));
        Assert.NotEqual(weak, Facts("public", device: "pdu-2"));
    }

    [Fact]
    public async Task Regression_the_status_named_a_model_that_did_not_serve_and_was_not_sent_again_after_a_hot_reload()
    {
        // rul-cmapss's hash is wrong from the start: declared in the manifest, but not serving.
        var models = CopyModels(m => Entry(m, "rul-cmapss")["sha256"] = new string('0', 64));
        var path = AgentFiles.WriteConfig(OnePdu, $"models: {{ directory: {models.FullName} }}");
        var config = AgentFiles.Load(path);

        await using var broker = await Broker.StartAsync();
        using var host = BuildAgent(config, Path.GetDirectoryName(path)!, broker.Port);
        await host.StartAsync(Ct);
        try
        {
            await broker.WaitForAsync(births => births.Any(b => b.GetProperty("facts").GetProperty("models").GetArrayLength() == 3), "a birth listing the models");
            var first = broker.Births().Last().GetProperty("facts").GetProperty("models").EnumerateArray().ToList();
            Assert.Equal(["bearing-rul=1.1.0:available", "rul-cmapss=1.6.0:unavailable", "mv-machine=1.1.0:available"], first.Select(Describe));
            Assert.Contains("rul-cmapss.onnx: sha256", first[1].GetProperty("error").GetString(), StringComparison.Ordinal);
            Assert.False(first[0].TryGetProperty("error", out _));

            // Hot reload: mv-machine 1.2.0 verifies and serves; the status is published again without a reconnect.
            var manifest = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(models.FullName, "manifest.json"), Ct))!.AsObject();
            Entry(manifest, "mv-machine")["version"] = "1.2.0";
            WriteManifest(models.FullName, manifest);
            await broker.WaitForAsync(
                births => births.Any(b => b.GetProperty("facts").GetProperty("models").EnumerateArray().Any(m => Describe(m) == "mv-machine=1.2.0:available")),
                "a birth with mv-machine 1.2.0");
            Assert.Equal(1, broker.Connections);
        }
        finally
        {
            await host.StopAsync(Ct);
        }
    }

    [Fact]
    public async Task A_manifest_that_cannot_be_used_is_reported_not_hidden()
    {
        var dir = AgentFiles.TempDir("edgetwin-facts-");
        using var catalog = new ModelCatalog(dir.FullName);
        catalog.Reload();
        Assert.Empty(GatewayFactsSource.Models(catalog));

        await File.WriteAllTextAsync(Path.Combine(dir.FullName, "manifest.json"), "{ \"models\": [", Ct);
        catalog.Reload();
        var broken = Assert.Single(GatewayFactsSource.Models(catalog));
        Assert.Equal("manifest", broken.Name);
        Assert.Equal("unusable", broken.State);
        Assert.Contains("not valid JSON", broken.Error, StringComparison.Ordinal);
    }

    /// <summary>An in-process broker that keeps the online births of the status topic and counts connections.</summary>
    private sealed class Broker : IAsyncDisposable
    {
        private readonly MqttServer _server;
        private readonly ConcurrentQueue<byte[]> _births = new();
        private int _connections;

        private Broker(MqttServer server, int port)
        {
            _server = server;
            Port = port;
        }

        public int Port { get; }

        public int Connections => Volatile.Read(ref _connections);

        public static async Task<Broker> StartAsync()
        {
            var port = TestPorts.FreeTcp();
            var factory = new MqttServerFactory();
            var server = factory.CreateMqttServer(factory.CreateServerOptionsBuilder().WithDefaultEndpoint()
                .WithDefaultEndpointBoundIPAddress(IPAddress.Loopback).WithDefaultEndpointBoundIPV6Address(IPAddress.None)
                .WithDefaultEndpointPort(port).Build());
            var broker = new Broker(server, port);
            server.ClientConnectedAsync += _ =>
            {
                Interlocked.Increment(ref broker._connections);
                return Task.CompletedTask;
            };
            server.InterceptingPublishAsync += e =>
            {
                var payload = e.ApplicationMessage.Payload.ToArray();
                if (e.ApplicationMessage.Topic == "edgetwin/dc1/gw-test/status" && IsOnline(payload))
                {
                    broker._births.Enqueue(payload);
                }

                return Task.CompletedTask;
            };
            await server.StartAsync().WaitAsync(TimeSpan.FromSeconds(10), Ct);
            return broker;
        }

        public List<JsonElement> Births() => [.. _births.Select(b => JsonDocument.Parse(b).RootElement)];

        public async Task WaitForAsync(Func<List<JsonElement>, bool> condition, string what)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (!condition(Births()))
            {
                Assert.True(DateTime.UtcNow < deadline, $"no {what} at the broker within 60 s");
                await Task.Delay(50, Ct);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _server.StopAsync();
            _server.Dispose();
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
                .AddModels()
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
