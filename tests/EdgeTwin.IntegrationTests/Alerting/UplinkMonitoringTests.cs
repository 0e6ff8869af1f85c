using Confluent.Kafka;
using EdgeTwin.Agent.Alerting;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.Alerting.Connectivity;
using EdgeTwin.Alerting.Control;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Core.Config;
using EdgeTwin.IntegrationTests.Simulator;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Kafka;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace EdgeTwin.IntegrationTests.Alerting;

/// <summary>Which uplink the connectivity monitor watches, for each way a site sends its data (or does not).</summary>
public sealed class UplinkMonitoringTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly ConnectivityConfig FastChecks = new()
    {
        Interval = TimeSpan.FromMilliseconds(200),
        Timeout = TimeSpan.FromMilliseconds(500),
        OfflineAfter = 2,
    };

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Regression_a_kafka_only_uplink_was_never_monitored_and_its_loss_raised_no_alert()
    {
        await using var sim = await SimPaths.StartAsync(racks: 1, units: 1, machines: 0);
        var config = AlertingAgentSetup.SiteConfig(sim);
        var cluster = new MockKafka();
        var dir = Directory.CreateTempSubdirectory("edgetwin-kafka-monitor-");
        try
        {
            var alerts = AlertsConfig.Empty with
            {
                Connectivity = FastChecks,
                Rules = [new AlertRule { Name = "uplink-lost", Kind = RuleKind.Uplink, Severity = Core.Events.EventSeverity.Warning }],
            };
            using var agent = AgentHostBuilder.Build(config, AlertingAgentSetup.Options(dir.FullName, alerts, new UplinksConfig(null, new KafkaUplinkOptions
            {
                BootstrapServers = cluster.BootstrapServers,
                Site = config.Site.Id,
                Gateway = config.Site.GatewayId,
                Delivery = new DeliveryOptions { ReconnectInitialDelay = TimeSpan.FromMilliseconds(200), ReconnectMaxDelay = TimeSpan.FromSeconds(1) },
            })));
            await agent.StartAsync(Ct);
            var hosted = agent.Services.GetRequiredService<AlertingHostedService>();
            var service = hosted.Service!;

            // Online once the probe reaches the bootstrap server and the uplink has delivered.
            await AlertingAgentSetup.Until(() => service.Connectivity.Monitored && service.Connectivity.State == UplinkState.Online, "online with the Kafka cluster up", 30);

            var bootstrap = cluster.BootstrapServers.Split(',')[0];
            cluster.Dispose();
            await AlertingAgentSetup.Until(() => service.Connectivity.State == UplinkState.Offline, "offline after the Kafka cluster is gone", 30);
            Assert.Contains(bootstrap, service.Connectivity.History()[^1].Reason, StringComparison.Ordinal);
            await AlertingAgentSetup.Until(() => service.Manager.Active().Any(a => a.Rule == "uplink-lost"), "the uplink alert", 30);

            using var list = await AlertControlClient.SendAsync(hosted.ControlSocket!, """{"op":"list"}""", TimeSpan.FromSeconds(10), Ct);
            Assert.Equal("offline", list.RootElement.GetProperty("uplink").GetProperty("state").GetString());
            await agent.StopAsync(Ct);
        }
        finally
        {
            cluster.Dispose();
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Regression_alerts_list_said_online_on_a_site_without_uplink_or_probe()
    {
        await using var sim = await SimPaths.StartAsync(racks: 1, units: 1, machines: 0);
        var config = AlertingAgentSetup.SiteConfig(sim);
        var dir = Directory.CreateTempSubdirectory("edgetwin-no-uplink-monitor-");
        try
        {
            using var agent = AgentHostBuilder.Build(config, AlertingAgentSetup.Options(dir.FullName, AlertsConfig.Empty with { Connectivity = FastChecks }, UplinksConfig.None));
            await agent.StartAsync(Ct);
            var hosted = agent.Services.GetRequiredService<AlertingHostedService>();
            await Task.Delay(FastChecks.Interval * 3, Ct);

            Assert.False(hosted.Service!.Connectivity.Monitored);
            using var list = await AlertControlClient.SendAsync(hosted.ControlSocket!, """{"op":"list"}""", TimeSpan.FromSeconds(10), Ct);
            Assert.Equal("not monitored", list.RootElement.GetProperty("uplink").GetProperty("state").GetString());
            await agent.StopAsync(Ct);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Regression_a_kafka_cluster_with_its_first_bootstrap_broker_down_was_called_offline()
    {
        // The first bootstrap broker is away (a rolling restart); librdkafka bootstraps through the second.
        await using var sim = await SimPaths.StartAsync(racks: 1, units: 1, machines: 0);
        var config = AlertingAgentSetup.SiteConfig(sim);
        using var cluster = new MockKafka();
        var dir = Directory.CreateTempSubdirectory("edgetwin-kafka-monitor-");
        try
        {
            var bootstrap = $"127.0.0.1:{ClosedPort()},PLAINTEXT://{cluster.BootstrapServers.Split(',')[0]}";
            var alerts = AlertsConfig.Empty with
            {
                Connectivity = FastChecks,
                Rules = [new AlertRule { Name = "uplink-lost", Kind = RuleKind.Uplink, Severity = Core.Events.EventSeverity.Warning }],
            };
            using var agent = AgentHostBuilder.Build(config, AlertingAgentSetup.Options(dir.FullName, alerts, new UplinksConfig(null, new KafkaUplinkOptions
            {
                BootstrapServers = bootstrap,
                Site = config.Site.Id,
                Gateway = config.Site.GatewayId,
                Delivery = new DeliveryOptions { ReconnectInitialDelay = TimeSpan.FromMilliseconds(200), ReconnectMaxDelay = TimeSpan.FromSeconds(1) },
            })));
            await agent.StartAsync(Ct);
            var service = agent.Services.GetRequiredService<AlertingHostedService>().Service!;

            await AlertingAgentSetup.Until(() => service.Connectivity.Monitored && service.Connectivity.State == UplinkState.Online, "online through the second bootstrap broker", 30);
            await Task.Delay(FastChecks.Interval * (FastChecks.OfflineAfter + 3), Ct);
            Assert.Equal(UplinkState.Online, service.Connectivity.State);
            Assert.DoesNotContain(service.Manager.Active(), a => a.Rule == "uplink-lost");
            await agent.StopAsync(Ct);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData("10.0.0.5:9092", "10.0.0.5:9092")]
    [InlineData(" kafka-a:9093 , kafka-b:9094", "kafka-a:9093 kafka-b:9094")]
    [InlineData("[fd00::1]:9092,kafka-b", "fd00::1:9092 kafka-b:9092")]
    [InlineData("kafka-a", "kafka-a:9092")]
    [InlineData("SSL://k1:9093,sasl_ssl://[fd00::2]:9094", "k1:9093 fd00::2:9094")]
    public void The_probe_targets_of_a_kafka_uplink_are_its_bootstrap_brokers(string bootstrap, string expected)
    {
        var brokers = KafkaBrokerList.Parse(bootstrap, out var problem);
        Assert.Null(problem);
        Assert.Equal(expected, string.Join(' ', brokers.Select(b => $"{b.Host}:{b.Port}")));
    }

    [Theory]
    [InlineData("kafka-a:99999", "'kafka-a:99999' is not a broker address")]
    [InlineData("kafka://k1:9092", "'kafka://k1:9092' is not a broker address")]
    [InlineData("fd00::1:9092", "'fd00::1:9092': an IPv6 address goes in brackets, e.g. [fd00::1]:9092")]
    [InlineData("[fd00::1:9092", "'[fd00::1:9092' is not a broker address")]
    [InlineData(" , ", "no broker address")]
    public void A_bootstrap_list_that_is_not_brokers_is_named(string bootstrap, string expected)
    {
        Assert.Empty(KafkaBrokerList.Parse(bootstrap, out var problem));
        Assert.StartsWith(expected, problem, StringComparison.Ordinal);
    }

    private static int ClosedPort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>librdkafka's built-in mock cluster, owned by an admin client; disposing it closes its brokers' ports.</summary>
    private sealed class MockKafka : IDisposable
    {
        private readonly IAdminClient _admin;
        private bool _disposed;

        public MockKafka()
        {
            var config = new AdminClientConfig();
            config.Set("test.mock.num.brokers", "1");
            _admin = new AdminClientBuilder(config).Build();
            BootstrapServers = string.Join(",", _admin.GetMetadata(TimeSpan.FromSeconds(30)).Brokers.Select(b => $"{b.Host}:{b.Port}"));
        }

        public string BootstrapServers { get; }

        public void Dispose()
        {
            if (!_disposed)
            {
                _disposed = true;
                _admin.Dispose();
            }
        }
    }
}
