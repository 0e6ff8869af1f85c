using EdgeTwin.Agent.Alerting;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Core.Config;
using EdgeTwin.IntegrationTests.Simulator;
using EdgeTwin.Simulator.Serving;
using EdgeTwin.Uplink.Mqtt;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Alerting;

/// <summary>
/// What the in-process alerting tests share: the simulated site's config (fast polls, its profiles) and an agent with
/// store-and-forward to a centre's MQTT broker plus the alerting stage, its state beside the outbox.
/// </summary>
internal static class AlertingAgentSetup
{
    /// <summary>The site's config polled every 500 ms (400 ms timeout) with the simulator's device profiles.</summary>
    public static SiteConfig SiteConfig(SimulatedSiteHost sim) =>
        sim.BuildConfig(TimeSpan.FromMilliseconds(500), SimPaths.Profiles, TimeSpan.FromMilliseconds(400)) with { Profiles = SimPaths.LoadProfiles() };

    /// <summary>
    /// Host options: 2 s summaries flushed every 200 ms to an outbox in <paramref name="stateDirectory"/>, uplinked to the
    /// broker on <paramref name="centrePort"/>, and alerting with <paramref name="alerts"/> (its GPIO chips from
    /// <paramref name="openGpio"/> when given).
    /// </summary>
    public static AgentHostOptions Options(SiteConfig config, string stateDirectory, int centrePort, AlertsConfig alerts, Func<string, System.Device.Gpio.GpioController>? openGpio = null) =>
        Options(stateDirectory, alerts, new UplinksConfig(
            new MqttUplinkOptions { Host = "127.0.0.1", Port = centrePort, Site = config.Site.Id, Gateway = config.Site.GatewayId, StateDirectory = stateDirectory },
            null), openGpio);

    /// <summary>As above with the given uplinks (none, Kafka, …).</summary>
    public static AgentHostOptions Options(string stateDirectory, AlertsConfig alerts, UplinksConfig uplinks, Func<string, System.Device.Gpio.GpioController>? openGpio = null) => new()
    {
        UseSystemd = false,
        StatusLogInterval = null,
        MinimumLogLevel = LogLevel.Warning,
        ConfigureServices = s => s
            .AddStoreAndForward(new StoreAndForwardOptions
            {
                SummaryWindow = TimeSpan.FromSeconds(2),
                FlushInterval = TimeSpan.FromMilliseconds(200),
                OutboxPath = Path.Combine(stateDirectory, "outbox.db"),
                Uplinks = uplinks,
            })
            .AddAlerting(new AlertingAgentOptions { StateDirectory = stateDirectory, Config = alerts, OpenGpio = openGpio }),
    };

    /// <summary>Polls <paramref name="condition"/> every 50 ms; fails naming <paramref name="what"/> after <paramref name="seconds"/>.</summary>
    public static async Task Until(Func<bool> condition, string what, double seconds)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out after {seconds} s waiting for {what}");
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }
}
