using System.Text.Json;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Payloads;
using EdgeTwin.Uplink.Tests.Support;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Mqtt;

/// <summary>
/// What the centre is told about the replay and the tail of the stream (the retained status), and how fast the uplink
/// comes back once its broker does; against a real mosquitto.
/// </summary>
public sealed class ReplayProgressTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private sealed record Status(string State, long? Acked, long? ReplayThrough, long? Backlog, bool HasFacts);

    private static Status Parse(Received m)
    {
        var r = JsonDocument.Parse(m.Payload).RootElement;
        long? Get(string name) => r.TryGetProperty(name, out var v) ? v.GetInt64() : null;
        return new Status(r.GetProperty("state").GetString()!, Get("acked_through_seq"), Get("replay_through_seq"), Get("backlog"), r.TryGetProperty("facts", out _));
    }

    [Fact]
    public async Task Regression_a_rebirth_after_a_model_reload_dropped_the_progress_from_the_retained_status()
    {
        // A hot reload republishes the retained birth; it carried the facts but not acked_through_seq/replay_through_seq/
        // backlog, so a consumer subscribing after it could not close its books until the next periodic status (never,
        // with ProgressInterval 0).
        await using var broker = await Mosquitto.StartAsync();
        await using var status = await TestSubscriber.StartAsync(broker.Port, "edgetwin/site1/gw1/status");
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([Record("dev0", 0), Record("dev0", 1)], Ct);
        var models = new[] { new ModelFact("bearing-rul", "1.0") };
        long revision = 1;
        var options = Options(broker.Port) with
        {
            Facts = () => new GatewayFacts("9.8.7", "arm64", "feedbeef", Volatile.Read(ref models)),
            FactsRevision = () => Interlocked.Read(ref revision),
            Delivery = new DeliveryOptions { BacklogRatePerSecond = 0, ProgressInterval = TimeSpan.Zero, ReconnectInitialDelay = TimeSpan.FromMilliseconds(100), ReconnectMaxDelay = TimeSpan.FromSeconds(1) },
        };
        var uplink = new MqttUplink(options, outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        try
        {
            await status.WaitUntilAsync(m => m.Any(x => Parse(x).Backlog == 0 && Parse(x).Acked >= 2), Long, "the replay's closing status");
            Volatile.Write(ref models, [new ModelFact("bearing-rul", "2.0")]);
            Interlocked.Increment(ref revision);
            await outbox.AppendAsync([Record("dev0", 2)], Ct);
            await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 3, Long);
            await status.WaitUntilAsync(m => m.Any(x => System.Text.Encoding.UTF8.GetString(x.Payload).Contains("\"2.0\"", StringComparison.Ordinal)), Long, "the rebirth");

            await using var late = await TestSubscriber.StartAsync(broker.Port, "edgetwin/site1/gw1/status");
            await late.WaitUntilAsync(m => m.Count > 0, Long, "the retained status");
            var retained = JsonDocument.Parse(late.Messages[0].Payload).RootElement;
            Assert.Equal("2.0", retained.GetProperty("facts").GetProperty("models")[0].GetProperty("version").GetString());
            Assert.True(retained.TryGetProperty("acked_through_seq", out var acked) && acked.GetInt64() >= 2, retained.ToString());
            Assert.Equal(0, retained.GetProperty("backlog").GetInt64());
        }
        finally
        {
            await cts.CancelAsync();
            await run;
        }
    }

    [Fact]
    public async Task Regression_nothing_on_the_wire_marked_the_end_of_a_replay_or_the_gateways_last_sequence()
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var status = await TestSubscriber.StartAsync(broker.Port, "edgetwin/site1/gw1/status");
        await using var data = await TestSubscriber.StartAsync(broker.Port, "edgetwin/site1/gw1/summary");
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 400).Select(i => Record($"dev{i % 4}", i))], Ct); // the backlog: seq 1..400

        var options = Options(broker.Port) with
        {
            Facts = () => new GatewayFacts("9.8.7", "arm64", "feedbeef", []),
            Delivery = new DeliveryOptions { BacklogRatePerSecond = 2000, ProgressInterval = TimeSpan.FromMilliseconds(300), ReconnectInitialDelay = TimeSpan.FromMilliseconds(100), ReconnectMaxDelay = TimeSpan.FromSeconds(1) },
        };
        var uplink = new MqttUplink(options, outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);

        // Right after connecting: where the replay goes (the head), and how much it holds.
        await status.WaitUntilAsync(m => m.Any(x => Parse(x).ReplayThrough is not null), Long, "a status with replay_through_seq");
        var first = status.Messages.Select(Parse).First(s => s.ReplayThrough is not null);
        Assert.Equal("online", first.State);
        Assert.Equal(400, first.ReplayThrough);
        Assert.True(first.Backlog > 0, $"backlog at connect {first.Backlog}");
        Assert.True(first.HasFacts); // the progress replaces the retained birth: the facts stay in it

        // The end of the replay: backlog 0 once everything up to the head is acknowledged.
        await status.WaitUntilAsync(m => m.Any(x => Parse(x).Backlog == 0), Long, "a status with backlog 0");
        var done = status.Messages.Select(Parse).First(s => s.Backlog == 0);
        Assert.Equal(400, done.ReplayThrough);
        Assert.True(done.Acked >= 400, $"acked_through_seq {done.Acked}");
        await data.WaitUntilAsync(m => Data(m).Select(e => e.Seq).Distinct().Count() == 400, Long, "the 400 replayed summaries");
        Assert.All(Data(data.Messages), e => Assert.True(e.Historical));

        // Live data after the replay: the periodic status carries the acknowledged sequence, so a lost tail shows.
        await outbox.AppendAsync([.. Enumerable.Range(400, 10).Select(i => Record("dev0", i))], Ct); // seq 401..410
        await status.WaitUntilAsync(m => m.Any(x => Parse(x).Acked >= 410), Long, "a periodic status with acked_through_seq 410");

        // A late subscriber gets the retained status with the progress.
        await using var late = await TestSubscriber.StartAsync(broker.Port, "edgetwin/site1/gw1/status");
        await late.WaitUntilAsync(m => m.Count > 0, Long, "the retained status");
        var retained = Parse(late.Messages[^1]);
        Assert.Equal("online", retained.State);
        Assert.NotNull(retained.Acked);

        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Regression_uplink_waited_70s_after_the_broker_returned()
    {
        await using var broker = await Mosquitto.StartAsync();
        await broker.StopAsync(); // the broker is down when the uplink starts
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([Record("dev0", 0)], Ct);
        var options = Options(broker.Port) with
        {
            // A long backoff, as after a long outage (the audit saw "retrying in 1m 3s").
            Delivery = new DeliveryOptions { ReconnectInitialDelay = TimeSpan.FromSeconds(60), ReconnectMaxDelay = TimeSpan.FromSeconds(60), ConnectTimeout = TimeSpan.FromSeconds(5) },
        };
        var uplink = new MqttUplink(options, outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        await Task.Delay(1500, Ct); // the first attempt was refused; the uplink now waits about a minute

        await broker.StartAsync();
        uplink.WakeReconnect(); // what the agent's connectivity probe does when the broker answers again
        await WaitForPositionAsync(() => uplink.Position, 1, TimeSpan.FromSeconds(15));

        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public void The_default_reconnect_backoff_is_capped_at_15_seconds()
    {
        Assert.Equal(TimeSpan.FromSeconds(15), new DeliveryOptions().ReconnectMaxDelay);
    }
}
