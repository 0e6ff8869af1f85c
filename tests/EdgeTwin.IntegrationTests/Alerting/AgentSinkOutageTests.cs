using System.Collections.Concurrent;
using System.Text.Json;
using EdgeTwin.Agent.Alerting;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Alerting.Control;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.IntegrationTests.Simulator;
using Microsoft.Extensions.DependencyInjection;
using EdgeTwin.Agent.StoreAndForward;

namespace EdgeTwin.IntegrationTests.Alerting;

/// <summary>
/// The agent on the simulated site while its LAN webhook answers 503 and its local mosquitto is stopped at the moment an
/// alert fires: both hear of it once they are back (before, each gave the message up after its retries).
/// </summary>
public sealed class AgentSinkOutageTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Regression_a_webhook_and_a_local_broker_down_during_a_raise_never_got_the_alert()
    {
        await using var sim = await SimPaths.StartAsync(racks: 2, units: 1, machines: 1);
        var config = AlertingAgentSetup.SiteConfig(sim);
        var pdu = sim.Site.Pdu("pdu-a01-a");
        var hookUp = false;
        await using var hook = new TinyHttpServer { Respond = _ => Volatile.Read(ref hookUp) ? 200 : 503 };
        // The site's alert consumer holds a persistent session: the held message the agent sends the moment the broker is
        // back is queued for it even if it resubscribes later (else a busy machine could deliver it to nobody).
        await using var local = await Mosquitto.StartAsync(keepSessions: true);
        var localMessages = new ConcurrentQueue<(string Topic, byte[] Payload)>();
        (await local.SubscribeAsync("site-alerts/#", localMessages, sessionId: "site-panel")).Dispose();
        await local.StopKeepingSessionsAsync();

        var dir = Directory.CreateTempSubdirectory("edgetwin-alerting-outage-");
        try
        {
            var alerts = AlertsConfig.Empty with
            {
                GroupInterval = TimeSpan.FromSeconds(1),
                Sinks =
                [
                    new WebhookSinkConfig { Name = "hook", Url = hook.Url, Retries = 1, RetryDelay = TimeSpan.FromMilliseconds(200), Timeout = TimeSpan.FromSeconds(2) },
                    new MqttSinkConfig { Name = "local", Host = "127.0.0.1", Port = local.Port, Topic = "site-alerts/{site}/{severity}", Retries = 1, RetryDelay = TimeSpan.FromMilliseconds(200), Timeout = TimeSpan.FromSeconds(2) },
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
            var options = AlertingAgentSetup.Options(dir.FullName, alerts, UplinksConfig.None);
            using var agent = AgentHostBuilder.Build(config, options);
            await agent.StartAsync(Ct);

            // Retried past the runner's retries (2 attempts): before, the message was given up here, for good.
            await AlertingAgentSetup.Until(() => hook.Hits.Count >= 4, "the webhook tried past its retries", 60);

            // The control socket (edgetwin alerts list) tells both sinks are down.
            var socket = agent.Services.GetRequiredService<AlertingHostedService>().ControlSocket!;
            using (var list = await AlertControlClient.SendAsync(socket, """{"op":"list"}""", TimeSpan.FromSeconds(10), Ct))
            {
                var sinks = list.RootElement.GetProperty("sinks").EnumerateArray().ToDictionary(s => s.GetProperty("name").GetString()!);
                Assert.Contains("answered 503", sinks["hook"].GetProperty("down_reason").GetString(), StringComparison.Ordinal);
                Assert.True(sinks["local"].TryGetProperty("down_since", out _), sinks["local"].GetRawText());
            }

            Volatile.Write(ref hookUp, true);
            await local.RestartAsync();
            using var subscriber = await local.SubscribeAsync("site-alerts/#", localMessages, sessionId: "site-panel");

            await AlertingAgentSetup.Until(() => hook.Hits.Count > 0 && IsFiring(hook.Hits[^1].Body), "the held firing message at the webhook", 60);
            await AlertingAgentSetup.Until(() => localMessages.Any(m => IsFiring(m.Payload)), "the held firing message at the local broker", 60);

            using (var body = JsonDocument.Parse(hook.Hits[^1].Body))
            {
                Assert.Equal("pdu-power-high", body.RootElement.GetProperty("alerts")[0].GetProperty("rule").GetString());
            }

            await agent.StopAsync(Ct);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static bool IsFiring(byte[] body)
    {
        using var json = JsonDocument.Parse(body);
        return json.RootElement.GetProperty("alerts").EnumerateArray().Any(a => a.GetProperty("status").GetString() == "firing");
    }
}
