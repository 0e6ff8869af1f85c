using System.Collections.Concurrent;
using System.Device.Gpio;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using EdgeTwin.Agent.Alerting;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Alerting;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.IntegrationTests.Simulator;
using EdgeTwin.Simulator.Faults;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace EdgeTwin.IntegrationTests.Alerting;

/// <summary>
/// The uplink is cut (the centre's mosquitto stopped) and then a cooling unit of the simulated site fails: the racks it
/// serves heat up, and the local sinks — a LAN webhook, a local mosquitto and the relay on the simulated GPIO chip —
/// alert while the centre cannot see the gateway; the connectivity monitor says offline. The cooling comes back, the
/// alert clears, still offline. Then the centre's broker returns and the outage's alert history (raised, cleared)
/// arrives there through the outbox, in order, flagged historical and marked as happened during the outage.
/// </summary>
public sealed class OfflineAlertingTests
{
    private const int RelayPin = 17;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Cooling_failure_during_an_uplink_cut_alerts_locally_and_the_history_reaches_the_centre_afterwards()
    {
        await using var sim = await SimPaths.StartAsync(racks: 2, units: 1, machines: 1);
        var config = AlertingAgentSetup.SiteConfig(sim);
        var unit = sim.Site.CoolingUnits[0];
        var hottest = sim.Site.Racks.Max(r => r.InletSensor.Reading);
        var limit = Math.Round(hottest + 3, 1);

        // The central twin's session outlives the broker's restart, as a real consumer's does. Regression: with a fresh
        // subscription after the restart, a busy CI machine let the agent replay the outage before it was in, and the
        // test waited 90 s for events that had been delivered to nobody.
        await using var centre = await Mosquitto.StartAsync(keepSessions: true);
        await using var local = await Mosquitto.StartAsync();
        await using var hook = new TinyHttpServer();
        var localMessages = new ConcurrentQueue<(string Topic, byte[] Payload)>();
        using var localSubscriber = await local.SubscribeAsync("site-alerts/#", localMessages);
        var atCentre = new ConcurrentQueue<(string Topic, byte[] Payload)>();
        var centreSubscriber = await centre.SubscribeAsync("edgetwin/#", atCentre, sessionId: "central-twin");

        // Sample → delivery per sink, as the agent measures it (edgetwin.alerts.sink.latency).
        var latencies = new ConcurrentQueue<(string Sink, double Ms)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == AlertingMetrics.MeterName && instrument.Name == "edgetwin.alerts.sink.latency")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((_, ms, tags, _) =>
        {
            foreach (var t in tags)
            {
                if (t.Key == "sink")
                {
                    latencies.Enqueue(((string)t.Value!, ms));
                }
            }
        });
        listener.Start();

        var chip = new EdgeTwin.Alerting.Gpio.SimulatedGpioDriver();
        var relayOn = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        chip.OutputChanged += (pin, value) =>
        {
            if (pin == RelayPin && value == PinValue.High)
            {
                relayOn.TrySetResult(Stopwatch.GetTimestamp());
            }
        };

        var dir = Directory.CreateTempSubdirectory("edgetwin-alerting-offline-");
        try
        {
            var alerts = AlertsConfig.Empty with
            {
                GroupInterval = TimeSpan.FromSeconds(1),
                GroupBy = ["rule"],
                Connectivity = new ConnectivityConfig { Interval = TimeSpan.FromMilliseconds(300), Timeout = TimeSpan.FromMilliseconds(300), OfflineAfter = 2 },
                Sinks =
                [
                    new WebhookSinkConfig { Name = "hook", Url = hook.Url, Secret = "k" },
                    new MqttSinkConfig { Name = "local", Host = "127.0.0.1", Port = local.Port, Topic = "site-alerts/{site}/{severity}" },
                    new GpioSinkConfig
                    {
                        Name = "panel",
                        Chip = "simulated",
                        Outputs = [new GpioOutputConfig("relay", RelayPin, true, new Dictionary<EventSeverity, OutputPattern> { [EventSeverity.Critical] = OutputPattern.On }, FailsafeActive: false, SilenceOnAck: false)],
                    },
                ],
                Rules =
                [
                    new AlertRule
                    {
                        Name = "inlet-hot",
                        Kind = RuleKind.Threshold,
                        Severity = EventSeverity.Critical,
                        Match = new SeriesMatch(null, null, "rack.inlet_temperature", []),
                        Limit = limit,
                        Clear = limit - 1,
                        Combine = Combine.Any,
                        Per = Scope.Site,
                    },
                ],
            };
            var options = AlertingAgentSetup.Options(config, dir.FullName, centre.Port, alerts, _ => new GpioController(chip));
            using var agent = AgentHostBuilder.Build(config, options);
            await agent.StartAsync(Ct);
            var service = agent.Services.GetRequiredService<AlertingHostedService>().Service!;

            // Online first: summaries reach the centre.
            await AlertingAgentSetup.Until(() => atCentre.Any(m => m.Topic.EndsWith("/summary", StringComparison.Ordinal) || Encoding.UTF8.GetString(m.Payload).Contains("\"summary\"", StringComparison.Ordinal)), "summaries at the centre", 60);

            // The uplink is cut.
            centreSubscriber.Dispose();
            await centre.StopKeepingSessionsAsync();
            await AlertingAgentSetup.Until(() => service.Connectivity.State == EdgeTwin.Alerting.Connectivity.UplinkState.Offline, "connectivity offline", 30);
            var offlineSince = service.Connectivity.Since;

            // The cooling unit stops; simulated time runs until a rack is past the limit, then the agent polls it.
            sim.Site.Apply(FaultCommand.Parse($"cooling-stop:{unit.Id}"));
            await StepUntil(sim, () => sim.Site.Racks.Max(r => r.InletSensor.Reading) > limit + 0.5, "a rack above the limit");
            var hot = Stopwatch.GetTimestamp();

            await AlertingAgentSetup.Until(() => hook.Hits.Count > 0, "webhook alert while offline", 30);
            await AlertingAgentSetup.Until(() => !localMessages.IsEmpty, "local MQTT alert while offline", 30);
            var relayAt = await relayOn.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);
            Assert.Equal(PinValue.High, chip.Output(RelayPin));
            using (var body = JsonDocument.Parse(hook.Hits[0].Body))
            {
                var a = body.RootElement.GetProperty("alerts")[0];
                Assert.Equal("inlet-hot", a.GetProperty("rule").GetString());
                Assert.Equal("firing", a.GetProperty("status").GetString());
            }

            Assert.Equal($"site-alerts/{config.Site.Id}/critical", localMessages.First().Topic);
            Assert.Equal(EdgeTwin.Alerting.Connectivity.UplinkState.Offline, service.Connectivity.State);

            // Cooling comes back; the racks cool down and the alert clears, still offline.
            sim.Site.Apply(FaultCommand.Parse($"cooling-restore:{unit.Id}"));
            await StepUntil(sim, () => sim.Site.Racks.Max(r => r.InletSensor.Reading) < limit - 1.5, "racks back below the clear level");
            await AlertingAgentSetup.Until(() => service.Manager.Active().Count == 0, "the alert cleared", 30);
            var history = service.Manager.History(100).Where(e => e.Rule == "inlet-hot").ToList();
            Assert.Equal(["raised", "cleared"], history.Select(e => e.Change));
            Assert.All(history, e => Assert.Equal("offline", e.Uplink));

            // The broker returns: the outage's history reaches the centre through the outbox, in order, historical.
            await centre.RestartAsync();
            using var centreAgain = await centre.SubscribeAsync("edgetwin/#", atCentre, sessionId: "central-twin");
            await AlertingAgentSetup.Until(() => AlertEvents(atCentre).Count >= 2, "raised and cleared at the centre", 90);
            var events = AlertEvents(atCentre);
            var raised = events.First(e => e.Kind == "alert_raised");
            var cleared = events.First(e => e.Kind == "alert_cleared");
            Assert.True(raised.Seq < cleared.Seq, $"raised #{raised.Seq} after cleared #{cleared.Seq}");
            Assert.True(raised.Time < cleared.Time);
            Assert.True(raised.Historical && cleared.Historical, "outage events must be flagged historical");
            Assert.Contains("\"during_outage\":\"true\"", raised.Json, StringComparison.Ordinal);
            Assert.Contains("\"uplink\":\"offline\"", cleared.Json, StringComparison.Ordinal);
            Assert.True(raised.Time >= offlineSince.AddSeconds(-1), "the raise happened during the outage");

            var perSink = latencies.GroupBy(l => l.Sink).ToDictionary(g => g.Key, g => g.Max(x => x.Ms));
            Assert.Contains("hook", perSink.Keys);
            Assert.Contains("local", perSink.Keys);
            Assert.Contains("panel", perSink.Keys);
            TestContext.Current.SendDiagnosticMessage(
                "sample→delivery (max ms): " + string.Join(", ", perSink.Select(p => $"{p.Key} {p.Value.ToString("0.0", CultureInfo.InvariantCulture)}"))
                + $"; simulated value past the limit → relay on {Stopwatch.GetElapsedTime(hot, relayAt).TotalMilliseconds:0} ms (includes the 500 ms poll)");

            await agent.StopAsync(Ct);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private sealed record CentreEvent(long Seq, string Kind, DateTimeOffset Time, bool Historical, string Json);

    /// <summary>Alert events the centre received (an envelope per outbox entry), de-duplicated by sequence.</summary>
    private static List<CentreEvent> AlertEvents(ConcurrentQueue<(string Topic, byte[] Payload)> messages)
    {
        var found = new Dictionary<long, CentreEvent>();
        foreach (var (_, payload) in messages)
        {
            var json = Encoding.UTF8.GetString(payload);
            if (!json.Contains("alert_raised", StringComparison.Ordinal) && !json.Contains("alert_cleared", StringComparison.Ordinal))
            {
                continue;
            }

            using var doc = JsonDocument.Parse(payload);
            var root = doc.RootElement;
            var seq = root.GetProperty("seq").GetInt64();
            var kind = json.Contains("alert_raised", StringComparison.Ordinal) ? "alert_raised" : "alert_cleared";
            var historical = root.TryGetProperty("historical", out var h) && h.ValueKind == JsonValueKind.True;
            found[seq] = new CentreEvent(seq, kind, root.GetProperty("time").GetDateTimeOffset(), historical, json);
        }

        return [.. found.Values.OrderBy(e => e.Seq)];
    }

    /// <summary>Runs the simulated site forward (1 s steps, 20 s of site time per real 100 ms) until the condition holds.</summary>
    private static async Task StepUntil(EdgeTwin.Simulator.Serving.SimulatedSiteHost sim, Func<bool> condition, string what)
    {
        for (var i = 0; i < 600; i++)
        {
            sim.Site.Step(TimeSpan.FromSeconds(20));

            sim.Refresh();
            if (condition())
            {
                return;
            }

            await Task.Delay(100, Ct);
        }

        Assert.Fail($"the simulated site never reached: {what}");
    }
}
