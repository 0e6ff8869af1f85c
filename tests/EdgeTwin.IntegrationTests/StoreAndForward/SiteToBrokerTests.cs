using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text.Json;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.IntegrationTests.Simulator;
using EdgeTwin.Uplink.Mqtt;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MQTTnet.Server;

namespace EdgeTwin.IntegrationTests.StoreAndForward;

/// <summary>
/// End to end: the simulated site served over real SNMP and Modbus on loopback → the agent's real sources → summaries →
/// LiteDB outbox → MQTT uplink → an embedded broker. What arrives must carry the simulator's values in the profiles' units.
/// </summary>
public sealed class SiteToBrokerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Simulated_site_readings_arrive_at_the_broker_with_the_right_values_and_units()
    {
        // The site does not advance by itself here, so every poll reads the same values and a window's mean is exact.
        await using var sim = await SimPaths.StartAsync(racks: 2, units: 1, machines: 1);
        var config = sim.BuildConfig(TimeSpan.FromMilliseconds(500), SimPaths.Profiles, TimeSpan.FromMilliseconds(400)) with { Profiles = SimPaths.LoadProfiles() };
        var pdu = sim.Site.Pdu("pdu-a01-a");
        var expectedKw = pdu.PowerKw;

        var messages = new ConcurrentQueue<(string Topic, byte[] Payload)>();
        var factory = new MqttServerFactory();
        var port = TestPorts.FreeTcp();
        using var server = factory.CreateMqttServer(factory.CreateServerOptionsBuilder()
            .WithDefaultEndpoint().WithDefaultEndpointBoundIPAddress(IPAddress.Loopback).WithDefaultEndpointBoundIPV6Address(IPAddress.None)
            .WithDefaultEndpointPort(port).Build());
        server.InterceptingPublishAsync += e =>
        {
            messages.Enqueue((e.ApplicationMessage.Topic, e.ApplicationMessage.Payload.ToArray()));
            return Task.CompletedTask;
        };
        await server.StartAsync();

        var dir = Directory.CreateTempSubdirectory("edgetwin-e2e-");
        try
        {
            var options = new AgentHostOptions
            {
                UseSystemd = false,
                StatusLogInterval = null,
                MinimumLogLevel = LogLevel.Warning,
                ConfigureServices = s => s.AddStoreAndForward(new StoreAndForwardOptions
                {
                    SummaryWindow = TimeSpan.FromSeconds(2),
                    FlushInterval = TimeSpan.FromMilliseconds(200),
                    OutboxPath = Path.Combine(dir.FullName, "outbox.db"),
                    Uplinks = new UplinksConfig(
                        new MqttUplinkOptions { Host = "127.0.0.1", Port = port, Site = config.Site.Id, Gateway = config.Site.GatewayId, StateDirectory = dir.FullName },
                        null),
                }),
            };
            using var agent = AgentHostBuilder.Build(config, options);
            await agent.StartAsync(Ct);

            var series = $"{pdu.Id}/total_power";
            JsonElement? summary = null;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
            while (summary is null && DateTime.UtcNow < deadline)
            {
                summary = Summaries(messages, config.Site.Id, config.Site.GatewayId).FirstOrDefault(b => b.GetProperty("series").GetString() == series && b.GetProperty("count").GetInt32() >= 2) is { ValueKind: JsonValueKind.Object } found ? found : null;
                await Task.Delay(100, Ct);
            }

            Assert.True(summary is not null, $"no summary of {series} among {messages.Count} messages: {string.Join(", ", messages.Select(m => m.Topic).Distinct())}");
            var body = summary.Value;
            Assert.Equal("kW", body.GetProperty("unit").GetString());
            Assert.Equal("pdu.power", body.GetProperty("role").GetString());

            // The PDU reports hundredths of a kW (PowerNet-MIB rPDU2PhaseStatusPower): the value survives that rounding only.
            Assert.Equal(expectedKw, body.GetProperty("mean").GetDouble(), 0.0051);
            Assert.Equal(0, body.GetProperty("stddev").GetDouble(), 1e-9);

            // Modbus too: the drive's and the meter's series arrive, each with its unit.
            var bodies = Summaries(messages, config.Site.Id, config.Site.GatewayId);
            var modbusDevices = sim.Devices.Where(d => d.Profile.Protocol == Core.Profiles.DeviceProtocol.Modbus).Select(d => d.Binding.DeviceId).ToList();
            Assert.NotEmpty(modbusDevices);
            deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (!modbusDevices.All(id => bodies.Any(b => b.GetProperty("device").GetString() == id)) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100, Ct);
                bodies = Summaries(messages, config.Site.Id, config.Site.GatewayId);
            }

            foreach (var id in modbusDevices)
            {
                var ofDevice = bodies.Where(b => b.GetProperty("device").GetString() == id).ToList();
                Assert.True(ofDevice.Count > 0, $"no summary from Modbus device {id}");
                Assert.All(ofDevice, b => Assert.False(string.IsNullOrEmpty(b.GetProperty("unit").GetString())));
            }

            await agent.StopAsync(Ct);
        }
        finally
        {
            await server.StopAsync();
            dir.Delete(recursive: true);
        }
    }

    private static List<JsonElement> Summaries(ConcurrentQueue<(string Topic, byte[] Payload)> messages, string site, string gateway) =>
        [.. messages.Where(m => m.Topic == $"edgetwin/{site}/{gateway}/summary")
            .Select(m => JsonDocument.Parse(m.Payload).RootElement.GetProperty("body"))];

}
