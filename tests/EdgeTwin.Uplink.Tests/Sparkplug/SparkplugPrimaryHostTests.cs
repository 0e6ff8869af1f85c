using System.Diagnostics.Metrics;
using System.Text;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Sparkplug.Proto;
using EdgeTwin.Uplink.Tests.Delivery;
using EdgeTwin.Uplink.Tests.Support;
using Microsoft.Extensions.Logging;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Sparkplug;

/// <summary>
/// An edge node configured with a primary host application (Sparkplug 3.0, "Edge Node Session Establishment"): it publishes
/// its births and data only while the host's STATE (<c>spBv1.0/STATE/{host}</c>, JSON <c>online</c>/<c>timestamp</c>) says
/// online, ends its session (NDEATH, DISCONNECT) when the host goes offline and births anew (next bdSeq) once it is back.
/// The outbox keeps every entry meanwhile. Real mosquitto; the test subscriber plays the host.
/// </summary>
public sealed class SparkplugPrimaryHostTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);
    private const string Host = "scada";
    private const string StateTopic = "spBv1.0/STATE/" + Host;

    private static byte[] State(bool online, long timestamp) => Encoding.UTF8.GetBytes($$"""{"online":{{(online ? "true" : "false")}},"timestamp":{{timestamp}}}""");

    /// <summary>What the edge node published (the host's own STATE left out).</summary>
    private static List<Received> Ours(TestSubscriber sub) => [.. sub.Messages.Where(m => !m.Topic.StartsWith("spBv1.0/STATE/", StringComparison.Ordinal))];

    private static ulong BdSeq(Received m) => Payload.Parser.ParseFrom(m.Payload).Metrics.Single(x => x.Name == "bdSeq").LongValue;

    private static ulong EntrySeq(Received m) => Payload.Parser.ParseFrom(m.Payload).Metrics.Single(x => x.Name == "edgetwin/seq").LongValue;

    /// <summary>Runs <paramref name="body"/> against a fresh broker, subscriber (the host) and outbox, then stops the uplink.</summary>
    private static async Task WithEdgeNodeAsync(RecordingLogger log, Func<TestSubscriber, TestOutbox, Func<MqttUplink>, Task> body, MqttProtocol protocol = MqttProtocol.V500, UplinkMetrics? metrics = null)
    {
        using var stateDirectory = new TempDirectory("edgetwin-spb-state-");
        var state = stateDirectory.Path;
        await using var broker = await Mosquitto.StartAsync();
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "spBv1.0/#");
        await using var outbox = new TestOutbox();
        var options = Options(broker.Port, protocol) with { Encoding = MqttPayloadEncoding.SparkplugB, StateDirectory = state, SparkplugPrimaryHostId = Host };
        MqttUplink? uplink = null;
        Task? run = null;
        using var cts = new CancellationTokenSource();
        try
        {
            await body(sub, outbox, () =>
            {
                uplink = new MqttUplink(options, outbox, log, metrics);
                run = uplink.RunAsync(cts.Token);
                return uplink;
            });
        }
        finally
        {
            await cts.CancelAsync();
            if (run is not null)
            {
                await run;
            }
        }
    }

    [Fact]
    public async Task Host_offline_at_start_no_nbirth_until_a_live_state_online_then_nbirth_and_the_backlog()
    {
        var log = new RecordingLogger();
        await WithEdgeNodeAsync(log, async (sub, outbox, start) =>
        {
            await sub.PublishAsync(StateTopic, State(online: false, 1_000), retain: true); // the host's will, retained
            await outbox.AppendAsync([.. Enumerable.Range(0, 3).Select(i => Record("dev0", i))], TestContext.Current.CancellationToken);
            var uplink = start();

            await WaitForAsync(() => log.Lines.Any(l => l.Message.Contains("waiting for primary host application 'scada'", StringComparison.Ordinal)), "the wait to be logged");
            await Task.Delay(TimeSpan.FromSeconds(1.5), TestContext.Current.CancellationToken);
            Assert.Empty(Ours(sub)); // no NBIRTH, no data: the host is offline
            Assert.Equal(0, outbox.GetAcknowledged("mqtt"));
            Assert.Equal(Host, uplink.PrimaryHost!.HostId);
            Assert.NotNull(uplink.PrimaryHost.WaitingSince);

            await sub.PublishAsync(StateTopic, State(online: true, 2_000), retain: true);
            await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 3, Long);
            var ours = Ours(sub);
            Assert.Equal(["spBv1.0/site1/NBIRTH/gw1", "spBv1.0/site1/DBIRTH/gw1/dev0", "spBv1.0/site1/DDATA/gw1/dev0", "spBv1.0/site1/DDATA/gw1/dev0", "spBv1.0/site1/DDATA/gw1/dev0"], ours.Select(m => m.Topic));
            Assert.Equal([1ul, 2, 3], ours.Where(m => m.Topic.Contains("/DDATA/", StringComparison.Ordinal)).Select(EntrySeq));
            Assert.Null(uplink.PrimaryHost.WaitingSince);
            Assert.Contains(log.Lines, l => l.Message.Contains("primary host application 'scada' is online (STATE timestamp 2000)", StringComparison.Ordinal));
        });
    }

    [Fact]
    public async Task A_retained_state_online_at_subscribe_counts()
    {
        await WithEdgeNodeAsync(new RecordingLogger(), async (sub, outbox, start) =>
        {
            await sub.PublishAsync(StateTopic, State(online: true, 1_000), retain: true);
            await outbox.AppendAsync([Record("dev0", 0)], TestContext.Current.CancellationToken);
            start();
            await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 1, Long);
            Assert.Equal("spBv1.0/site1/NBIRTH/gw1", Ours(sub)[0].Topic);
        });
    }

    [Theory]
    [InlineData(MqttProtocol.V500)]
    [InlineData(MqttProtocol.V311)]
    public async Task Host_goes_offline_ndeath_and_nothing_published_then_back_a_new_nbirth_with_the_next_bdseq_and_the_entries_in_order(MqttProtocol protocol)
    {
        using var meters = new OwnMeters();
        long hostOffline = 0, failures = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (meters.Has(instrument.Meter) && instrument.Name is "edgetwin.uplink.host_offline" or "edgetwin.uplink.failures")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            if (instrument.Name == "edgetwin.uplink.host_offline")
            {
                Interlocked.Add(ref hostOffline, value);
            }
            else
            {
                Interlocked.Add(ref failures, value);
            }
        });
        listener.Start();
        using var metrics = new UplinkMetrics(meters); // this test's own meter: the other tests' uplinks count elsewhere
        await WithEdgeNodeAsync(new RecordingLogger(), async (sub, outbox, start) =>
        {
            await sub.PublishAsync(StateTopic, State(online: true, 1_000), retain: true);
            await outbox.AppendAsync([Record("dev0", 0), Record("dev0", 1)], TestContext.Current.CancellationToken);
            var uplink = start();
            await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 2, Long);
            var firstBirth = Ours(sub).First(m => m.Topic == "spBv1.0/site1/NBIRTH/gw1");

            // The host goes away: its will is the retained offline STATE with the timestamp of its birth.
            await sub.PublishAsync(StateTopic, State(online: false, 1_000), retain: true);
            await sub.WaitUntilAsync(m => m.Any(x => x.Topic == "spBv1.0/site1/NDEATH/gw1"), Long, "NDEATH");
            Assert.Equal(BdSeq(firstBirth), BdSeq(Ours(sub).First(m => m.Topic == "spBv1.0/site1/NDEATH/gw1")));
            await WaitForAsync(() => uplink.PrimaryHost!.WaitingSince is not null, "the new connection to wait for the host");

            await outbox.AppendAsync([Record("dev0", 2), Record("dev0", 3), Record("dev0", 4)], TestContext.Current.CancellationToken);
            await Task.Delay(TimeSpan.FromSeconds(1.5), TestContext.Current.CancellationToken);
            var whileOffline = Ours(sub).SkipWhile(m => m.Topic != "spBv1.0/site1/NDEATH/gw1").ToList();
            Assert.All(whileOffline, m => Assert.Equal("spBv1.0/site1/NDEATH/gw1", m.Topic)); // ours and (MQTT 5) the will: no data, no birth
            Assert.Equal(2, outbox.GetAcknowledged("mqtt"));
            Assert.Equal(5, outbox.LastSequence); // kept, not refused

            await sub.PublishAsync(StateTopic, State(online: true, 3_000), retain: true);
            await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 5, Long);
            var after = Ours(sub).SkipWhile(m => m.Topic != "spBv1.0/site1/NDEATH/gw1").SkipWhile(m => m.Topic == "spBv1.0/site1/NDEATH/gw1").ToList();
            Assert.Equal("spBv1.0/site1/NBIRTH/gw1", after[0].Topic);
            Assert.Equal((BdSeq(firstBirth) + 1) & 0xFF, BdSeq(after[0])); // a new connection, the next bdSeq
            Assert.Equal(0ul, Payload.Parser.ParseFrom(after[0].Payload).Seq);
            Assert.Equal("spBv1.0/site1/DBIRTH/gw1/dev0", after[1].Topic);
            Assert.Equal([3ul, 4, 5], after.Where(m => m.Topic.Contains("/DDATA/", StringComparison.Ordinal)).Select(EntrySeq));
            Assert.Equal(1, Interlocked.Read(ref hostOffline));
            Assert.Equal(0, Interlocked.Read(ref failures)); // not a failure
        }, protocol, metrics);
    }

    [Fact]
    public async Task A_stale_state_older_than_the_last_one_is_ignored()
    {
        var log = new RecordingLogger();
        await WithEdgeNodeAsync(log, async (sub, outbox, start) =>
        {
            await sub.PublishAsync(StateTopic, State(online: true, 5_000), retain: true);
            await outbox.AppendAsync([Record("dev0", 0)], TestContext.Current.CancellationToken);
            start();
            await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 1, Long);

            await sub.PublishAsync(StateTopic, State(online: false, 4_999)); // replayed from an older host session
            await WaitForAsync(() => log.Lines.Any(l => l.Message.Contains("timestamp 4999 is older than the last one accepted (5000); ignored", StringComparison.Ordinal)), "the stale STATE to be logged");
            await outbox.AppendAsync([Record("dev0", 1)], TestContext.Current.CancellationToken);
            await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 2, Long);
            Assert.DoesNotContain(Ours(sub), m => m.Topic == "spBv1.0/site1/NDEATH/gw1");
            Assert.Single(Ours(sub), m => m.Topic == "spBv1.0/site1/NBIRTH/gw1");
        });
    }

    [Fact]
    public async Task A_malformed_state_is_logged_with_its_topic_and_ignored()
    {
        var log = new RecordingLogger();
        await WithEdgeNodeAsync(log, async (sub, outbox, start) =>
        {
            await outbox.AppendAsync([Record("dev0", 0)], TestContext.Current.CancellationToken);
            start();
            await WaitForAsync(() => log.Lines.Any(l => l.Message.Contains("waiting for primary host application", StringComparison.Ordinal)), "the wait");

            await sub.PublishAsync(StateTopic, Encoding.UTF8.GetBytes("ONLINE")); // Sparkplug 2.x text, not JSON
            await sub.PublishAsync(StateTopic, Encoding.UTF8.GetBytes("""{"online":true}"""));
            await sub.PublishAsync(StateTopic, Encoding.UTF8.GetBytes("""{"online":"true","timestamp":1}"""));
            await sub.PublishAsync(StateTopic, Encoding.UTF8.GetBytes("""{"timestamp":1}"""));
            await WaitForAsync(() => log.Lines.Count(l => l.Level == LogLevel.Warning && l.Message.Contains($"a STATE on '{StateTopic}' is not a Sparkplug 3.0 STATE payload", StringComparison.Ordinal)) == 4, "4 warnings");
            Assert.Contains(log.Lines, l => l.Message.Contains("(not JSON", StringComparison.Ordinal));
            Assert.Contains(log.Lines, l => l.Message.Contains("(no 'timestamp'", StringComparison.Ordinal));
            Assert.Contains(log.Lines, l => l.Message.Contains("(no boolean 'online'", StringComparison.Ordinal));
            Assert.Empty(Ours(sub));

            // Still running: a good STATE gets the births out.
            await sub.PublishAsync(StateTopic, State(online: true, 1));
            await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 1, Long);
            Assert.Equal("spBv1.0/site1/NBIRTH/gw1", Ours(sub)[0].Topic);
        });
    }

    private static async Task WaitForAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Long;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"Timed out waiting for {what}");
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }
}
