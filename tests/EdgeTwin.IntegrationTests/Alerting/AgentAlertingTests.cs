using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using EdgeTwin.Agent.Alerting;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Alerting.Control;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.IntegrationTests.Simulator;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MQTTnet.Server;

namespace EdgeTwin.IntegrationTests.Alerting;

/// <summary>
/// The agent on the simulated site (real SNMP/Modbus on loopback) with a threshold rule: it fires into a webhook and a
/// mosquitto sink, the control socket lists and acknowledges it, and the alert event reaches the centre through the outbox.
/// </summary>
public sealed class AgentAlertingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Threshold_rule_on_the_simulated_site_fires_into_webhook_and_mosquitto_and_reaches_the_centre()
    {
        await using var sim = await SimPaths.StartAsync(racks: 2, units: 1, machines: 1);
        var config = AlertingAgentSetup.SiteConfig(sim);
        var pdu = sim.Site.Pdu("pdu-a01-a");
        await using var hook = new TinyHttpServer();
        await using var local = await Mosquitto.StartAsync();
        var localMessages = new ConcurrentQueue<(string Topic, byte[] Payload)>();
        using var subscriber = await local.SubscribeAsync("site-alerts/#", localMessages);

        // The centre: an embedded broker behind the MQTT uplink.
        var centre = new ConcurrentQueue<(string Topic, byte[] Payload)>();
        var factory = new MqttServerFactory();
        var port = TestPorts.FreeTcp();
        using var server = factory.CreateMqttServer(factory.CreateServerOptionsBuilder()
            .WithDefaultEndpoint().WithDefaultEndpointBoundIPAddress(IPAddress.Loopback).WithDefaultEndpointBoundIPV6Address(IPAddress.None)
            .WithDefaultEndpointPort(port).Build());
        server.InterceptingPublishAsync += e =>
        {
            centre.Enqueue((e.ApplicationMessage.Topic, System.Buffers.BuffersExtensions.ToArray(e.ApplicationMessage.Payload)));
            return Task.CompletedTask;
        };
        await server.StartAsync();

        var dir = Directory.CreateTempSubdirectory("edgetwin-alerting-e2e-");
        try
        {
            var alerts = AlertsConfig.Empty with
            {
                GroupInterval = TimeSpan.FromSeconds(1),
                Sinks =
                [
                    new WebhookSinkConfig { Name = "hook", Url = hook.Url, Secret = "k" },
                    new MqttSinkConfig { Name = "local", Host = "127.0.0.1", Port = local.Port, Topic = "site-alerts/{site}/{severity}" },
                ],
                Rules =
                [
                    new AlertRule
                    {
                        Name = "pdu-power-high",
                        Kind = RuleKind.Threshold,
                        Severity = Core.Events.EventSeverity.Critical,
                        Match = new SeriesMatch(pdu.Id, "total_power", null, []),
                        Limit = pdu.PowerKw * 0.5,
                        Clear = pdu.PowerKw * 0.4,
                        For = TimeSpan.FromSeconds(1),
                    },
                ],
            };
            var options = AlertingAgentSetup.Options(config, dir.FullName, port, alerts);
            using var agent = AgentHostBuilder.Build(config, options);
            await agent.StartAsync(Ct);
            var socket = agent.Services.GetRequiredService<AlertingHostedService>().ControlSocket;
            Assert.Equal(Path.Combine(dir.FullName, "alerts.sock"), socket);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite, File.GetUnixFileMode(socket!));

            await AlertingAgentSetup.Until(() => hook.Hits.Count > 0, "webhook call", 60);
            using (var body = JsonDocument.Parse(hook.Hits[0].Body))
            {
                var a = body.RootElement.GetProperty("alerts")[0];
                Assert.Equal("pdu-power-high", a.GetProperty("rule").GetString());
                Assert.Equal($"{pdu.Id}/total_power", a.GetProperty("key").GetString());
                Assert.Equal("firing", a.GetProperty("status").GetString());
                Assert.Equal(WebhookSink.Sign(hook.Hits[0].Body, "k"), hook.Hits[0].Headers[WebhookSink.SignatureHeader]);
            }

            await AlertingAgentSetup.Until(() => !localMessages.IsEmpty, "local MQTT message", 30);
            Assert.True(localMessages.TryPeek(out var localMessage));
            Assert.Equal($"site-alerts/{config.Site.Id}/critical", localMessage.Topic);

            // The CLI's socket: list, then acknowledge.
            using (var list = await AlertControlClient.SendAsync(socket!, """{"op":"list"}""", TimeSpan.FromSeconds(10), Ct))
            {
                var alert = list.RootElement.GetProperty("alerts")[0];
                Assert.Equal("firing", alert.GetProperty("state").GetString());
                var id = alert.GetProperty("id").GetInt64();
                using var ack = await AlertControlClient.SendAsync(socket!, $$"""{"op":"ack","id":{{id}},"by":"test"}""", TimeSpan.FromSeconds(10), Ct);
                Assert.True(ack.RootElement.GetProperty("ok").GetBoolean(), ack.RootElement.GetRawText());
            }

            using (var list = await AlertControlClient.SendAsync(socket!, """{"op":"list"}""", TimeSpan.FromSeconds(10), Ct))
            {
                Assert.Equal("acknowledged", list.RootElement.GetProperty("alerts")[0].GetProperty("state").GetString());
            }

            // The centre gets the alert_raised event through the outbox and the uplink.
            var eventTopic = $"edgetwin/{config.Site.Id}/{config.Site.GatewayId}/event";
            await AlertingAgentSetup.Until(() => centre.Any(m => m.Topic == eventTopic && System.Text.Encoding.UTF8.GetString(m.Payload).Contains("alert_raised", StringComparison.Ordinal)), "alert event at the centre", 60);

            await agent.StopAsync(Ct);
            Assert.False(File.Exists(socket), "the control socket is removed on stop");
        }
        finally
        {
            await server.StopAsync();
            dir.Delete(recursive: true);
        }
    }
}
