using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Tests.Delivery;
using EdgeTwin.Uplink.Tests.Support;
using Microsoft.Extensions.Logging;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Mqtt;

/// <summary>
/// An old gateway revived next to its replacement: both connect with the same client id (<c>edgetwin-{gateway}</c>), and
/// the broker closes the older connection each time the other logs in. Real mosquitto (2.0.11 closes the old connection
/// without a DISCONNECT 0x8E, even for MQTT 5, so only the pattern of short sessions shows it).
/// </summary>
public sealed class TwoGatewaysOneIdentityTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>One gateway: its uplink and an outbox that gets a record every 100 ms, as polling would.</summary>
    private sealed class Gateway(MqttUplinkOptions options) : IAsyncDisposable
    {
        private readonly CancellationTokenSource _cts = new();
        private Task? _run;
        private Task? _feed;

        public TestOutbox Outbox { get; } = new();

        public RecordingLogger Log { get; } = new();

        public MqttUplink Uplink { get; private set; } = null!;

        public Gateway Start()
        {
            Uplink = new MqttUplink(options, Outbox, Log);
            _run = Uplink.RunAsync(_cts.Token);
            _feed = FeedAsync(_cts.Token);
            return this;
        }

        private async Task FeedAsync(CancellationToken ct)
        {
            for (var i = 0; !ct.IsCancellationRequested; i++)
            {
                await Outbox.AppendAsync([Record("dev0", i)], ct);
                try
                {
                    await Task.Delay(100, ct);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }

        public IEnumerable<string> TakeoverErrors => Log.Lines.Where(l => l.Level == LogLevel.Error && l.Message.Contains("edgetwin-gw1", StringComparison.Ordinal)).Select(l => l.Message);

        public async ValueTask DisposeAsync()
        {
            await _cts.CancelAsync();
            await (_run ?? Task.CompletedTask);
            try
            {
                await (_feed ?? Task.CompletedTask);
            }
            catch (OperationCanceledException)
            {
                // the feed's append was cancelled with it
            }

            await Outbox.DisposeAsync();
            _cts.Dispose();
        }
    }

    private static MqttUplinkOptions SameIdentity(int port, MqttProtocol protocol) => Options(port, protocol) with { ClientId = null }; // edgetwin-gw1, as the agent sets it

    [Theory]
    [InlineData(MqttProtocol.V500)]
    [InlineData(MqttProtocol.V311)]
    public async Task Regression_two_gateways_with_one_identity_fought_over_the_mqtt_session_without_a_word(MqttProtocol protocol)
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var old = new Gateway(SameIdentity(broker.Port, protocol)).Start();
        await using var replacement = new Gateway(SameIdentity(broker.Port, protocol)).Start();

        // Before, each side logged only "lost its session …: The MQTT client is not connected" and reconnected in ~1 s, for ever.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(40);
        while (!(old.TakeoverErrors.Any() && replacement.TakeoverErrors.Any()) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200, Ct);
        }

        foreach (var gateway in new[] { old, replacement })
        {
            var error = Assert.Single(gateway.TakeoverErrors.Take(1));
            Assert.Contains("client id 'edgetwin-gw1'", error, StringComparison.Ordinal);
            Assert.Contains("a second gateway runs with gateway_id 'gw1'", error, StringComparison.Ordinal);
            Assert.True(gateway.Uplink.Takeovers.Count >= 1);
            Assert.NotNull(gateway.Uplink.Takeovers.LastAt);
        }
    }

    [Fact]
    public async Task A_broker_restart_is_not_taken_for_a_second_gateway()
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var gateway = new Gateway(SameIdentity(broker.Port, MqttProtocol.V500)).Start();
        for (var i = 0; i < 4; i++)
        {
            await WaitForPositionAsync(() => gateway.Outbox.GetAcknowledged("mqtt"), gateway.Outbox.GetAcknowledged("mqtt") + 3, TimeSpan.FromSeconds(20));
            await broker.StopAsync();
            await Task.Delay(500, Ct);
            await broker.StartAsync();
        }

        await WaitForPositionAsync(() => gateway.Outbox.GetAcknowledged("mqtt"), gateway.Outbox.GetAcknowledged("mqtt") + 3, TimeSpan.FromSeconds(20));
        Assert.Empty(gateway.TakeoverErrors);
        Assert.Equal(UplinkTakeovers.None, gateway.Uplink.Takeovers);
    }
}
