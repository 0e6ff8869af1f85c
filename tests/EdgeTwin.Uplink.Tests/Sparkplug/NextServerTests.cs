using Google.Protobuf;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Sparkplug.Proto;
using EdgeTwin.Uplink.Tests.Delivery;
using EdgeTwin.Uplink.Tests.Support;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Sparkplug;

/// <summary>
/// Sparkplug 3.0 <c>Node Control/Next Server</c>: a host application sends NCMD with it true to move the edge node to
/// the next MQTT server of its list. Real mosquitto brokers on random loopback ports; a subscriber on each plays the host.
/// </summary>
public sealed class NextServerTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(90);
    private const string Command = "spBv1.0/site1/NCMD/gw1";
    private const string NextServer = "Node Control/Next Server";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static byte[] NextServerCommand()
    {
        var command = new Payload { Timestamp = 1_795_000_000_000 };
        command.Metrics.Add(new Payload.Types.Metric { Name = NextServer, Timestamp = 1_795_000_000_000, Datatype = 11, BooleanValue = true });
        return command.ToByteArray();
    }

    private static List<Payload> Of(TestSubscriber sub, string type) =>
        [.. sub.Messages.Where(m => m.Topic == $"spBv1.0/site1/{type}/gw1").Select(m => Payload.Parser.ParseFrom(m.Payload))];

    /// <summary>The outbox sequences (<c>edgetwin/seq</c>) of the DDATA a subscriber saw.</summary>
    private static IEnumerable<long> Sequences(TestSubscriber sub) => sub.Messages
        .Where(m => m.Topic.StartsWith("spBv1.0/site1/DDATA/gw1/", StringComparison.Ordinal))
        .SelectMany(m => Payload.Parser.ParseFrom(m.Payload).Metrics)
        .Where(m => m.Name == "edgetwin/seq")
        .Select(m => (long)m.LongValue);

    /// <summary>
    /// The node took no notice of NCMD Next Server (it read only Rebirth) and stayed on A though the host wanted it on B.
    /// Now: with two servers NBIRTH announces the metric (Boolean, false); the command mid-replay ends the session on A
    /// (NDEATH with A's bdSeq), the node is born on B, and every entry arrives, what A did not acknowledge through B.
    /// </summary>
    [Fact]
    public async Task Regression_an_ncmd_next_server_was_ignored_and_the_node_stayed_on_its_broker()
    {
        using var stateDirectory = new TempDirectory("edgetwin-spb-state-");
        await using var a = await Mosquitto.StartAsync();
        await using var b = await Mosquitto.StartAsync();
        await using var subA = await TestSubscriber.StartAsync(a.Port, "spBv1.0/#");
        await using var subB = await TestSubscriber.StartAsync(b.Port, "spBv1.0/#");
        await using var outbox = new TestOutbox();
        const int total = 600;
        for (var i = 0; i < total; i += 100)
        {
            await outbox.AppendAsync([.. Enumerable.Range(i, 100).Select(j => Record($"dev{j % 3}", j))], Ct);
        }

        var log = new RecordingLogger();
        var options = Options(0) with
        {
            Host = "",
            Port = 0,
            Hosts = [$"127.0.0.1:{a.Port}", $"127.0.0.1:{b.Port}"],
            Encoding = MqttPayloadEncoding.SparkplugB,
            StateDirectory = stateDirectory.Path,
            // The long reconnect delays show that the switch is no failure: it does not wait out a backoff.
            Delivery = Options(0).Delivery with { BacklogRatePerSecond = 200, ReconnectInitialDelay = TimeSpan.FromSeconds(30), ReconnectMaxDelay = TimeSpan.FromSeconds(30) },
        };
        var uplink = new MqttUplink(options, outbox, log);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);

        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 100, Long);
        Assert.Equal($"127.0.0.1:{a.Port}", uplink.Server);
        var birthA = Assert.Single(Of(subA, "NBIRTH"));
        var announced = Assert.Single(birthA.Metrics, m => m.Name == NextServer);
        Assert.Equal(11u, announced.Datatype); // Boolean
        Assert.False(announced.BooleanValue);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        await subA.PublishAsync(Command, NextServerCommand());
        await subB.WaitUntilAsync(m => m.Any(x => x.Topic == "spBv1.0/site1/NBIRTH/gw1"), Long, "the NBIRTH on B");
        var switched = clock.Elapsed;
        var movedAt = outbox.GetAcknowledged("mqtt");
        Assert.True(movedAt < total, $"A acknowledged all {total} before the command: nothing was left to move");
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), total, Long);
        Assert.Equal($"127.0.0.1:{b.Port}", uplink.Server);
        Assert.Equal(0, uplink.FailedSessions); // a move asked for, not a failure

        // NDEATH on A with the bdSeq of A's NBIRTH (ours, then the will: MQTT 5 DISCONNECT 0x04).
        var bdSeqA = birthA.Metrics.Single(m => m.Name == "bdSeq").LongValue;
        await subA.WaitUntilAsync(_ => Of(subA, "NDEATH").Count > 0, Long, "the NDEATH on A");
        Assert.All(Of(subA, "NDEATH"), d => Assert.Equal(bdSeqA, d.Metrics.Single(m => m.Name == "bdSeq").LongValue));
        Assert.Contains(Of(subB, "NBIRTH").Single().Metrics, m => m.Name == NextServer);
        Assert.Contains(log.Lines, l => l.Message == $"Uplink mqtt: a Sparkplug host asked for the next server (NCMD Node Control/Next Server); sending NDEATH to mqtt://127.0.0.1:{a.Port} and moving to mqtt://127.0.0.1:{b.Port}; the entries it has not acknowledged go there");
        Assert.Contains(log.Lines, l => l.Message == $"Uplink mqtt is now on server mqtt://127.0.0.1:{b.Port} (was on mqtt://127.0.0.1:{a.Port}); it stays there while it works");

        // Nothing lost across the switch: every sequence on A or B (at-least-once), B has all that A did not acknowledge.
        var ackedByA = Sequences(subA).DefaultIfEmpty(0).Max();
        await subB.WaitUntilAsync(_ => Sequences(subB).Distinct().Count(q => q > ackedByA) >= total - ackedByA, Long, $"every sequence after {ackedByA} on B");
        Assert.Equal(Enumerable.Range(1, total).Select(i => (long)i), Sequences(subA).Concat(Sequences(subB)).Distinct().Order());
        TestContext.Current.TestOutputHelper?.WriteLine($"NCMD on A to NBIRTH on B: {switched.TotalMilliseconds:0} ms; moved at position {movedAt}; A delivered through {ackedByA}; on both: {Sequences(subA).Intersect(Sequences(subB)).Count()}");

        await cts.CancelAsync();
        await run;
    }

    /// <summary>
    /// One server: there is no next one. NBIRTH does not announce the metric; a host sending it anyway gets a warning
    /// and the node stays (no NDEATH, no new birth), delivering on.
    /// </summary>
    [Fact]
    public async Task With_one_server_the_next_server_command_is_logged_and_the_node_stays()
    {
        using var stateDirectory = new TempDirectory("edgetwin-spb-state-");
        await using var broker = await Mosquitto.StartAsync();
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "spBv1.0/#");
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([Record("dev0", 0)], Ct);
        var log = new RecordingLogger();
        var options = Options(broker.Port) with { Encoding = MqttPayloadEncoding.SparkplugB, StateDirectory = stateDirectory.Path };
        var uplink = new MqttUplink(options, outbox, log);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 1, Long);
        Assert.DoesNotContain(Assert.Single(Of(sub, "NBIRTH")).Metrics, m => m.Name == NextServer);

        await sub.PublishAsync(Command, NextServerCommand());
        var expected = $"Uplink mqtt: a Sparkplug host asked for the next server (NCMD Node Control/Next Server), but mqtt://127.0.0.1:{broker.Port} is the only one (uplinks.mqtt.hosts lists no other); staying on it";
        await Mqtt.BrokerFailoverTests.WaitForAsync(() => log.Lines.Any(l => l.Message == expected), "the warning");
        await outbox.AppendAsync([Record("dev0", 1)], Ct);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 2, Long);
        await sub.WaitUntilAsync(_ => Sequences(sub).Contains(2), Long, "the second DDATA");

        Assert.Single(Of(sub, "NBIRTH"));
        Assert.Empty(Of(sub, "NDEATH"));
        Assert.Equal(0, uplink.FailedSessions);

        await cts.CancelAsync();
        await run;
    }
}
