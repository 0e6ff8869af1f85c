using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Text;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Tests.Delivery;
using EdgeTwin.Uplink.Tests.Support;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Mqtt;

/// <summary>
/// <c>hosts:</c>, an HA pair of brokers: the uplink walks the list in order on connect, stays on the broker that works,
/// and on losing it sends everything not acknowledged again to the next one (at-least-once; the centre deduplicates on
/// gateway and sequence). Real mosquitto brokers on random loopback ports; a subscriber on each plays the centre.
/// </summary>
public sealed class BrokerFailoverTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(90);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static MqttUplinkOptions PairOptions(params Mosquitto[] brokers) => Options(brokers[0].Port) with
    {
        Host = "",
        Port = 0,
        Hosts = [.. brokers.Select(b => $"127.0.0.1:{b.Port}")],
    };

    /// <summary>Sparkplug B over the pair, with primary host <c>scada</c> given up on a broker after <paramref name="hostWait"/>.</summary>
    private static MqttUplinkOptions SparkplugPairOptions(string stateDirectory, TimeSpan hostWait, params Mosquitto[] brokers) => PairOptions(brokers) with
    {
        Encoding = MqttPayloadEncoding.SparkplugB,
        StateDirectory = stateDirectory,
        SparkplugPrimaryHostId = "scada",
        PrimaryHostWait = hostWait,
    };

    private static IEnumerable<long> Sequences(params TestSubscriber[] centre) => centre.SelectMany(s => Data(s.Messages)).Select(e => e.Seq).Distinct();

    [Fact]
    public async Task A_down_at_start_the_uplink_delivers_to_B_without_a_backoff_between_them()
    {
        await using var a = await Mosquitto.StartAsync();
        await a.StopAsync(); // its port refuses connections
        await using var b = await Mosquitto.StartAsync();
        await using var subB = await TestSubscriber.StartAsync(b.Port, "edgetwin/#");
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 50).Select(i => Record($"dev{i % 3}", i))], Ct);
        var log = new RecordingLogger();
        // A backoff of 20 s: were it applied between A and B, nothing would arrive within the 10 s asserted below.
        var options = PairOptions(a, b) with
        {
            Delivery = Options(0).Delivery with { ReconnectInitialDelay = TimeSpan.FromSeconds(20), ReconnectMaxDelay = TimeSpan.FromSeconds(20) },
        };
        var uplink = new MqttUplink(options, outbox, log);
        using var cts = new CancellationTokenSource();
        var clock = Stopwatch.StartNew();
        var run = uplink.RunAsync(cts.Token);

        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 50, Long);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}: the backoff ran between the servers");
        await subB.WaitUntilAsync(m => Data(m).Select(e => e.Seq).Distinct().Count() == 50, Long, "50 sequences on B");
        Assert.Equal($"127.0.0.1:{b.Port}", uplink.Server);
        Assert.Contains(log.Lines, l => l.Message.StartsWith($"Uplink mqtt: server mqtt://127.0.0.1:{a.Port} failed: ", StringComparison.Ordinal)
            && l.Message.EndsWith($"trying mqtt://127.0.0.1:{b.Port} now", StringComparison.Ordinal));
        Assert.Contains(log.Lines, l => l.Message.StartsWith($"Uplink mqtt connected to mqtt://127.0.0.1:{b.Port}", StringComparison.Ordinal));

        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task A_killed_mid_stream_every_entry_arrives_through_B_and_the_uplink_stays_on_B_when_A_is_back()
    {
        await using var a = await Mosquitto.StartAsync();
        await using var b = await Mosquitto.StartAsync();
        await using var subA = await TestSubscriber.StartAsync(a.Port, "edgetwin/#");
        await using var subB = await TestSubscriber.StartAsync(b.Port, "edgetwin/#");
        await using var outbox = new TestOutbox();
        var log = new RecordingLogger();
        using var meters = new OwnMeters();
        using var metrics = new UplinkMetrics(meters);
        const int total = 3000;
        // 2,000 held before the start, replayed at 1,000/s: the uplink is mid-stream, a window in flight, when A dies;
        // the last 1,000 come live after.
        for (var i = 0; i < 2000; i += 100)
        {
            await outbox.AppendAsync([.. Enumerable.Range(i, 100).Select(j => Record($"dev{j % 4}", j))], Ct);
        }

        var options = PairOptions(a, b);
        var uplink = new MqttUplink(options with { Delivery = options.Delivery with { BacklogRatePerSecond = 1000 } }, outbox, log, metrics);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);

        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 300, Long);
        Assert.Equal($"127.0.0.1:{a.Port}", uplink.Server);
        var killedAt = outbox.GetAcknowledged("mqtt");
        Assert.True(killedAt < 2000, $"A's acknowledgements reached {killedAt} before the kill: nothing was in flight");
        await a.KillAsync();
        var failover = Stopwatch.StartNew(); // from A's death to B's first acknowledgement
        var measured = Task.Run(async () =>
        {
            while (!(uplink.Server == $"127.0.0.1:{b.Port}" && outbox.GetAcknowledged("mqtt") > killedAt))
            {
                await Task.Delay(5, Ct);
            }

            failover.Stop();
        }, Ct);
        for (var i = 2000; i < total; i += 20)
        {
            await outbox.AppendAsync([.. Enumerable.Range(i, 20).Select(j => Record($"dev{j % 4}", j))], Ct);
            await Task.Delay(2, Ct);
        }

        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), total, Long);
        await measured;
        TestContext.Current.TestOutputHelper?.WriteLine($"failover from A's SIGKILL (acknowledged through {killedAt}) to acknowledgements by B: {failover.ElapsedMilliseconds} ms");
        Assert.True(failover.Elapsed < TimeSpan.FromSeconds(10), $"failover took {failover.Elapsed}");
        // B's session starts after the last entry A acknowledged in order: "replaying its backlog after sequence P".
        var switched = Assert.Single(log.Lines, l => l.Message.StartsWith($"Uplink mqtt connected to mqtt://127.0.0.1:{b.Port}; replaying its backlog after sequence ", StringComparison.Ordinal)).Message;
        var ackedByA = long.Parse(switched.Split("after sequence ")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(ackedByA, killedAt, 1999); // A died with part of the replay not acknowledged
        // Everything A had not acknowledged went to B, none lost across the switch (at-least-once: some may be on both).
        await subB.WaitUntilAsync(m => Data(m).Select(e => e.Seq).Where(q => q > ackedByA).Distinct().Count() == total - ackedByA, Long, $"every sequence after {ackedByA} on B");
        Assert.Equal(Enumerable.Range((int)ackedByA + 1, total - (int)ackedByA).Select(i => (long)i), Data(subB.Messages).Select(e => e.Seq).Where(q => q > ackedByA).Distinct().Order());
        // What A acknowledged reached its subscriber, except what a SIGKILLed mosquitto acknowledged in its last moments
        // and never forwarded (its queues are in memory; the uplink cannot see that loss, the broker confirmed them).
        await Task.Delay(TimeSpan.FromSeconds(1), Ct);
        var missing = Enumerable.Range(1, (int)ackedByA).Select(i => (long)i).Except(Sequences(subA, subB)).ToList();
        Assert.True(missing.All(q => q > ackedByA - 256), $"lost before A's last in-flight window (acknowledged through {ackedByA}): {string.Join(",", missing)}");
        TestContext.Current.TestOutputHelper?.WriteLine($"A acknowledged through {ackedByA}; acknowledged by A but not forwarded before its SIGKILL: {missing.Count}");
        Assert.Equal($"127.0.0.1:{b.Port}", uplink.Server);
        Assert.Equal([$"mqtt://127.0.0.1:{b.Port}"], ServersGauge(meters));
        Assert.Contains(log.Lines, l => l.Message == $"Uplink mqtt is now on server mqtt://127.0.0.1:{b.Port} (was on mqtt://127.0.0.1:{a.Port}); it stays there while it works");

        // A is back: the uplink stays on B (no flapping back to the first of the list).
        await a.StartAsync();
        await using var subA2 = await TestSubscriber.StartAsync(a.Port, "edgetwin/#");
        await Task.Delay(TimeSpan.FromSeconds(2), Ct); // more than the reconnect delays of the test options
        await outbox.AppendAsync([.. Enumerable.Range(total, 100).Select(j => Record("dev0", j))], Ct);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), total + 100, Long);
        await subB.WaitUntilAsync(m => Data(m).Count(e => e.Seq > total) >= 100, Long, "the 100 after A's return on B");
        Assert.DoesNotContain(Data(subA2.Messages), e => e.Seq > total);
        Assert.Equal($"127.0.0.1:{b.Port}", uplink.Server);
        Assert.Equal(1, uplink.FailedSessions);

        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task All_down_the_uplink_backs_off_per_round_and_recovers_on_whichever_comes_back()
    {
        await using var a = await Mosquitto.StartAsync();
        await using var b = await Mosquitto.StartAsync();
        await a.StopAsync();
        await b.StopAsync();
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 30).Select(i => Record("dev0", i))], Ct);
        var log = new RecordingLogger();
        var options = PairOptions(a, b) with
        {
            Delivery = Options(0).Delivery with { ReconnectInitialDelay = TimeSpan.FromMilliseconds(500), ReconnectMaxDelay = TimeSpan.FromSeconds(1) },
        };
        var uplink = new MqttUplink(options, outbox, log);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);

        await WaitForAsync(() => RoundFailures(log) >= 3, "three failed rounds");
        var rounds = RoundFailures(log);
        var switches = log.Lines.Count(l => l.Message.Contains($"server mqtt://127.0.0.1:{a.Port} failed", StringComparison.Ordinal));
        // Each round tries A then B once, the backoff between rounds only: A's failures follow the rounds one to one.
        Assert.InRange(switches, rounds - 1, rounds + 1);
        Assert.Contains(log.Lines, l => l.Message.Contains($"none of the 2 servers took the connection: mqtt://127.0.0.1:{a.Port}: ", StringComparison.Ordinal)
            && l.Message.Contains($"; mqtt://127.0.0.1:{b.Port}: ", StringComparison.Ordinal));
        Assert.Null(uplink.Server);
        Assert.Equal(0, outbox.GetAcknowledged("mqtt"));

        await b.StartAsync(); // the second one comes back first
        await using var subB = await TestSubscriber.StartAsync(b.Port, "edgetwin/#");
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 30, Long);
        Assert.Equal($"127.0.0.1:{b.Port}", uplink.Server);

        await cts.CancelAsync();
        await run;

        static int RoundFailures(RecordingLogger log) =>
            log.Lines.Count(l => l.Message.Contains("none of the 2 servers took the connection", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_that_refuses_the_login_or_never_answers_the_uplink_moves_on_to_the_next_server()
    {
        // A refuses anonymous clients (CONNACK not authorised); "silent" accepts TCP and never answers CONNECT.
        await using var a = await Mosquitto.StartAsync(new MosquittoSettings { Account = ("centre", "secret") });
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        var silentPort = ((System.Net.IPEndPoint)silent.LocalEndpoint).Port;
        await using var b = await Mosquitto.StartAsync();
        await using var subB = await TestSubscriber.StartAsync(b.Port, "edgetwin/#");
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 10).Select(i => Record("dev0", i))], Ct);
        var log = new RecordingLogger();
        var options = Options(0) with
        {
            Host = "",
            Hosts = [$"127.0.0.1:{a.Port}", $"127.0.0.1:{silentPort}", $"127.0.0.1:{b.Port}"],
            Delivery = Options(0).Delivery with { ConnectTimeout = TimeSpan.FromSeconds(1), ReconnectInitialDelay = TimeSpan.FromSeconds(20), ReconnectMaxDelay = TimeSpan.FromSeconds(20) },
        };
        var uplink = new MqttUplink(options, outbox, log);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);

        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 10, TimeSpan.FromSeconds(15)); // within one round: no 20 s backoff
        Assert.Equal($"127.0.0.1:{b.Port}", uplink.Server);
        Assert.Contains(log.Lines, l => l.Message.StartsWith($"Uplink mqtt: server mqtt://127.0.0.1:{a.Port} failed: mqtt://127.0.0.1:{a.Port} refused the connection: NotAuthorized", StringComparison.Ordinal));
        Assert.Contains(log.Lines, l => l.Message.StartsWith($"Uplink mqtt: server mqtt://127.0.0.1:{silentPort} failed: ", StringComparison.Ordinal)
            && l.Message.EndsWith($"trying mqtt://127.0.0.1:{b.Port} now", StringComparison.Ordinal));

        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Each_server_is_held_to_its_own_certificate_name()
    {
        // A's certificate is for another name (refused at A); B's for 127.0.0.1 alone, the name B is reached by. Had the
        // first server's name (localhost) been asked of every server, B's certificate would not match it either.
        using var pki = new TestPki(serverExpired: false, "broker-x.example.net", "127.0.0.1");
        await using var a = await Mosquitto.StartAsync(new MosquittoSettings { Tls = pki, ServerCertificate = pki.ServerFor("broker-x.example.net") });
        await using var b = await Mosquitto.StartAsync(new MosquittoSettings { Tls = pki, ServerCertificate = pki.ServerFor("127.0.0.1") });
        await using var subB = await TestSubscriber.StartAsync(b.Port, "edgetwin/#");
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 10).Select(i => Record("dev0", i))], Ct);
        var log = new RecordingLogger();
        var options = Options(0) with
        {
            Host = "",
            Hosts = [$"localhost:{a.TlsPort}", $"127.0.0.1:{b.TlsPort}"],
            Tls = new MqttTlsOptions { Enabled = true, CaFile = pki.CaFile, ClientCertificateFile = pki.ClientCertFile, ClientKeyFile = pki.ClientKeyFile },
        };
        var uplink = new MqttUplink(options, outbox, log);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);

        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 10, Long);
        await subB.WaitUntilAsync(m => Data(m).Count == 10, Long, "10 messages over TLS on B");
        Assert.Equal($"127.0.0.1:{b.TlsPort}", uplink.Server);
        Assert.Contains(log.Lines, l => l.Message.Contains($"mqtts://localhost:{a.TlsPort}", StringComparison.Ordinal)
            && l.Message.Contains("does not match host localhost", StringComparison.Ordinal));

        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task The_status_names_the_server_the_uplink_is_on()
    {
        await using var a = await Mosquitto.StartAsync();
        await a.StopAsync();
        await using var b = await Mosquitto.StartAsync();
        await using var subB = await TestSubscriber.StartAsync(b.Port, "edgetwin/+/+/status");
        await using var outbox = new TestOutbox();
        var uplink = new MqttUplink(PairOptions(a, b), outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);

        await subB.WaitUntilAsync(m => m.Any(x => Encoding.UTF8.GetString(x.Payload).Contains("\"backlog\":0", StringComparison.Ordinal)), Long, "the progress status");
        var statuses = subB.Messages.Select(x => System.Text.Json.JsonDocument.Parse(x.Payload).RootElement).ToList();
        Assert.All(statuses.Where(s => s.GetProperty("state").GetString() == "online"), s => Assert.Equal($"127.0.0.1:{b.Port}", s.GetProperty("server").GetString()));

        await cts.CancelAsync();
        await run;
    }

    private const string StateTopic = "spBv1.0/STATE/scada";

    private static byte[] State(bool online, long timestamp) => Encoding.UTF8.GetBytes($$"""{"online":{{(online ? "true" : "false")}},"timestamp":{{timestamp}}}""");

    private static int Births(TestSubscriber sub) => sub.Messages.Count(m => m.Topic == "spBv1.0/site1/NBIRTH/gw1");

    private static int DataMessages(TestSubscriber sub) => sub.Messages.Count(m => m.Topic.StartsWith("spBv1.0/site1/DDATA/", StringComparison.Ordinal));

    [Theory]
    [InlineData(true, "its STATE says offline")]
    [InlineData(false, "no STATE within {0}")]
    public async Task Sparkplug_primary_host_not_online_on_A_and_online_on_B_the_edge_node_walks_to_B_and_on_to_A_when_it_goes_offline_on_B(bool offlineStateOnA, string why)
    {
        using var stateDirectory = new TempDirectory("edgetwin-spb-state-");
        await using var a = await Mosquitto.StartAsync();
        await using var b = await Mosquitto.StartAsync();
        await using var subA = await TestSubscriber.StartAsync(a.Port, "spBv1.0/#");
        await using var subB = await TestSubscriber.StartAsync(b.Port, "spBv1.0/#");
        if (offlineStateOnA)
        {
            await subA.PublishAsync(StateTopic, State(online: false, 1_000), retain: true); // the host's will on A
        }

        await subB.PublishAsync(StateTopic, State(online: true, 2_000), retain: true);
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 5).Select(i => Record("dev0", i))], Ct);
        var log = new RecordingLogger();
        var options = SparkplugPairOptions(stateDirectory.Path, TimeSpan.FromSeconds(2), a, b);
        var uplink = new MqttUplink(options, outbox, log);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);

        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 5, Long);
        await subB.WaitUntilAsync(_ => DataMessages(subB) == 5, Long, "5 DDATA on B");
        Assert.Equal(0, Births(subA)); // never born where the host is not
        Assert.Equal(1, Births(subB));
        Assert.Equal($"127.0.0.1:{b.Port}", uplink.Server);
        why = string.Format(System.Globalization.CultureInfo.InvariantCulture, why, EdgeTwin.Core.Config.Durations.Approximate(options.PrimaryHostWait));
        Assert.Contains(log.Lines, l => l.Message == $"Uplink mqtt: Sparkplug primary host scada is not online on mqtt://127.0.0.1:{a.Port} ({why}); leaving it for mqtt://127.0.0.1:{b.Port}");

        // The host leaves B and is online on A: the edge node follows it (NDEATH on B, births and the new entries on A).
        await subA.PublishAsync(StateTopic, State(online: true, 3_000), retain: true);
        await subB.PublishAsync(StateTopic, State(online: false, 2_000), retain: true);
        await subA.WaitUntilAsync(_ => Births(subA) == 1, Long, "the NBIRTH on A");
        await outbox.AppendAsync([.. Enumerable.Range(5, 5).Select(i => Record("dev0", i))], Ct);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 10, Long);
        await subA.WaitUntilAsync(_ => DataMessages(subA) >= 5, Long, "the next 5 DDATA on A");
        Assert.Equal(1, Births(subA));
        Assert.Contains(subB.Messages, m => m.Topic == "spBv1.0/site1/NDEATH/gw1");
        Assert.Equal($"127.0.0.1:{a.Port}", uplink.Server);

        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Regression_an_offline_state_on_A_older_than_the_online_seen_on_B_was_taken_as_stale_and_the_node_was_born_on_A()
    {
        // One STATE for all servers: A's retained offline (the host's will there, timestamp 1000) is older than the online
        // the node saw on B (2000), was ignored as stale, and the node published NBIRTH and data on A, where the host is not.
        using var stateDirectory = new TempDirectory("edgetwin-spb-state-");
        await using var a = await Mosquitto.StartAsync();
        await using var b = await Mosquitto.StartAsync();
        await using var subA = await TestSubscriber.StartAsync(a.Port, "spBv1.0/#");
        await using var subB = await TestSubscriber.StartAsync(b.Port, "spBv1.0/#");
        await subA.PublishAsync(StateTopic, State(online: false, 1_000), retain: true);
        await subB.PublishAsync(StateTopic, State(online: true, 2_000), retain: true);
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 3).Select(i => Record("dev0", i))], Ct);
        var log = new RecordingLogger();
        var options = SparkplugPairOptions(stateDirectory.Path, TimeSpan.FromSeconds(1), b, a);
        var uplink = new MqttUplink(options, outbox, log);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 3, Long);
        Assert.Equal(1, Births(subB));

        await b.KillAsync();
        await outbox.AppendAsync([Record("dev0", 3)], Ct);
        await WaitForAsync(
            () => Births(subA) > 0 || log.Lines.Any(l => l.Message.StartsWith($"Uplink mqtt: Sparkplug primary host scada is not online on mqtt://127.0.0.1:{a.Port} (its STATE says offline)", StringComparison.Ordinal)),
            "A left for want of the host (or a birth on A)");
        await Task.Delay(TimeSpan.FromSeconds(1), Ct);
        Assert.Equal(0, Births(subA));
        Assert.Equal(0, DataMessages(subA));
        Assert.Equal(3, outbox.GetAcknowledged("mqtt")); // the fourth waits in the outbox for the host

        await cts.CancelAsync();
        await run;
    }

    private static List<string> ServersGauge(OwnMeters meters)
    {
        var servers = new List<string>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (meters.Has(instrument.Meter) && instrument.Name == "edgetwin.uplink.server")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "server" && value == 1)
                {
                    servers.Add((string)tag.Value!);
                }
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();
        return servers;
    }

    internal static async Task WaitForAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Long;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"Timed out waiting for {what}");
            await Task.Delay(50, Ct);
        }
    }
}
