using System.Collections.Concurrent;
using System.Device.Gpio;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using EdgeTwin.Alerting.Gpio;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Alerting.Tests.Sinks;

/// <summary>Every sink against a real peer: an HTTP listener, a syslog datagram socket, mosquitto, the simulated GPIO chip.</summary>
public sealed class SinkTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    private static AlertSnapshot Alert(long id, AlertStatus status, EventSeverity severity = EventSeverity.Critical, DateTimeOffset? acked = null, string rule = "inlet-hot") => new(
        id, rule, "rack-r01/inlet", status, status == AlertStatus.Resolved ? AlertState.Resolved : AlertState.Firing, severity, 31.5,
        "rack-r01/inlet = 31.5, above 30", new Dictionary<string, string> { ["room"] = "room1", ["rule"] = rule }, [],
        T0, status == AlertStatus.Resolved ? T0.AddMinutes(1) : null, acked, false, T0);

    private static AlertNotification Message(params AlertSnapshot[] alerts) => new("room=room1", alerts, T0);

    [Fact]
    public async Task Webhook_posts_json_signed_with_hmac_and_retries_server_errors()
    {
        await using var server = new TinyHttpServer { Respond = n => n < 3 ? 503 : 200 };
        var config = new WebhookSinkConfig { Name = "noc", Url = server.Url, Secret = "s3cret", Retries = 5, RetryDelay = TimeSpan.FromMilliseconds(20), Timeout = TimeSpan.FromSeconds(10) };
        await using var runner = new SinkRunner(new WebhookSink(config, "dc1", "gw1"), config);
        await runner.StartAsync(TestContext.Current.CancellationToken);
        var message = Message(Alert(1, AlertStatus.Firing));
        runner.Enqueue(message, message.Alerts);
        await Wait.UntilAsync(() => runner.Delivered == 1, "delivery after two 503s");

        Assert.Equal(3, server.Hits.Count);
        var hit = server.Hits[^1];
        Assert.Equal("POST", hit.Method);
        Assert.Equal("/hook", hit.Path);
        Assert.StartsWith("application/json", hit.Headers["Content-Type"], StringComparison.Ordinal);
        Assert.Equal(WebhookSink.Sign(hit.Body, "s3cret"), hit.Headers[WebhookSink.SignatureHeader]);
        using var json = JsonDocument.Parse(hit.Body);
        var root = json.RootElement;
        Assert.Equal(1, root.GetProperty("v").GetInt32());
        Assert.Equal("dc1", root.GetProperty("site").GetString());
        Assert.Equal("critical", root.GetProperty("severity").GetString());
        var a = root.GetProperty("alerts")[0];
        Assert.Equal("inlet-hot", a.GetProperty("rule").GetString());
        Assert.Equal("firing", a.GetProperty("status").GetString());
        Assert.Equal(31.5, a.GetProperty("value").GetDouble());
        Assert.Equal("room1", a.GetProperty("labels").GetProperty("room").GetString());
    }

    [Fact]
    public async Task Webhook_client_error_is_not_retried_and_a_timeout_is()
    {
        await using var server = new TinyHttpServer { Respond = _ => 400 };
        var config = new WebhookSinkConfig { Name = "noc", Url = server.Url, Retries = 3, RetryDelay = TimeSpan.FromMilliseconds(10) };
        await using var runner = new SinkRunner(new WebhookSink(config, "dc1", "gw1"), config);
        await runner.StartAsync(TestContext.Current.CancellationToken);
        var message = Message(Alert(1, AlertStatus.Firing));
        runner.Enqueue(message, message.Alerts);
        await Wait.UntilAsync(() => runner.Failed == 1, "rejection");
        Assert.Single(server.Hits);

        await using var slow = new TinyHttpServer { Delay = TimeSpan.FromSeconds(5) };
        // The held message is tried again after 2 s (the doubled delay): the hits are read before that.
        var slowConfig = config with { Url = slow.Url, Timeout = TimeSpan.FromMilliseconds(200), Retries = 1, RetryDelay = TimeSpan.FromSeconds(1) };
        await using var slowRunner = new SinkRunner(new WebhookSink(slowConfig, "dc1", "gw1"), slowConfig);
        await slowRunner.StartAsync(TestContext.Current.CancellationToken);
        slowRunner.Enqueue(message, message.Alerts);
        await Wait.UntilAsync(() => slowRunner.Failed == 1, "timeouts");
        Assert.Equal(2, slow.Hits.Count);
    }

    [Fact]
    public async Task Syslog_sends_rfc5424_lines_with_structured_data_to_a_unix_datagram_socket()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-syslog-").FullName;
        var path = Path.Combine(dir, "log.sock");
        try
        {
            using var receiver = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            receiver.Bind(new UnixDomainSocketEndPoint(path));
            var config = new SyslogSinkConfig { Name = "journal", Socket = path, Facility = 16, AppName = "edgetwin" };
            await using var runner = new SinkRunner(new SyslogSink(config), config);
            await runner.StartAsync(TestContext.Current.CancellationToken);
            var message = Message(Alert(7, AlertStatus.Firing), Alert(8, AlertStatus.Resolved, EventSeverity.Warning, rule: "a\"b]c"));
            runner.Enqueue(message, message.Alerts);

            var buffer = new byte[4096];
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            var first = Encoding.UTF8.GetString(buffer, 0, await receiver.ReceiveAsync(buffer, SocketFlags.None, cts.Token));
            var second = Encoding.UTF8.GetString(buffer, 0, await receiver.ReceiveAsync(buffer, SocketFlags.None, cts.Token));

            // local0 (16) * 8 + crit (2) = 130; a clear is notice (5): 133.
            Assert.StartsWith("<130>1 2026-11-30T12:00:00.000Z ", first, StringComparison.Ordinal);
            Assert.Contains(" edgetwin " + Environment.ProcessId + " ALERT_FIRING [edgetwin@32473 id=\"7\" rule=\"inlet-hot\" key=\"rack-r01/inlet\" status=\"firing\" severity=\"critical\" value=\"31.5\" room=\"room1\" fired_at=\"2026-11-30T12:00:00.000Z\"] rack-r01/inlet = 31.5, above 30", first, StringComparison.Ordinal);
            Assert.StartsWith("<133>1 ", second, StringComparison.Ordinal);
            Assert.Contains("ALERT_RESOLVED", second, StringComparison.Ordinal);
            Assert.Contains("rule=\"a\\\"b\\]c\"", second, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public async Task Mqtt_publishes_the_message_to_a_local_mosquitto()
    {
        await using var broker = await Mosquitto.StartAsync();
        var received = new ConcurrentQueue<(string Topic, byte[] Payload)>();
        using var subscriber = await broker.SubscribeAsync("edgetwin/#", received);
        var config = new MqttSinkConfig { Name = "local", Host = "127.0.0.1", Port = broker.Port, Topic = "edgetwin/{site}/{gateway}/alerts/{severity}", Timeout = TimeSpan.FromSeconds(10) };
        await using var runner = new SinkRunner(new MqttSink(config, "dc1", "gw1"), config);
        await runner.StartAsync(TestContext.Current.CancellationToken);
        var message = Message(Alert(3, AlertStatus.Firing));
        runner.Enqueue(message, message.Alerts);
        await Wait.UntilAsync(() => !received.IsEmpty, "message at the subscriber", 30);
        Assert.True(received.TryDequeue(out var m));
        Assert.Equal("edgetwin/dc1/gw1/alerts/critical", m.Topic);
        using var json = JsonDocument.Parse(m.Payload);
        Assert.Equal(3, json.RootElement.GetProperty("alerts")[0].GetProperty("id").GetInt64());
        // The broker forwards to the subscriber before its acknowledgement reaches the sink, so the delivery is counted
        // a moment after the message arrives (read at once, it was 0 in one CI run).
        await Wait.UntilAsync(() => runner.Delivered == 1, "the delivery counted", 30);
        Assert.Equal(1, runner.Delivered);
    }

    [Fact]
    public async Task Regression_a_local_broker_down_longer_than_the_retries_lost_the_alert_for_good()
    {
        await using var broker = await Mosquitto.StartAsync();
        broker.Stop();
        var log = new ListLogger();
        var config = new MqttSinkConfig { Name = "local", Host = "127.0.0.1", Port = broker.Port, Timeout = TimeSpan.FromSeconds(2), Retries = 0, RetryDelay = TimeSpan.FromSeconds(3) };
        await using var runner = new SinkRunner(new MqttSink(config, "dc1", "gw1"), config, log);
        await runner.StartAsync(TestContext.Current.CancellationToken);
        var message = Message(Alert(3, AlertStatus.Firing));
        runner.Enqueue(message, message.Alerts);
        await Wait.UntilAsync(() => runner.Failed == 1, "failure with the broker down", 30);

        // The broker comes back (an apt upgrade, a crash and systemd's restart) 3 s after the raise: the held message
        // goes out; before, it had been given up and the subscriber never heard of the alert.
        await broker.RestartAsync();
        var received = new ConcurrentQueue<(string Topic, byte[] Payload)>();
        using var subscriber = await broker.SubscribeAsync("edgetwin/#", received);
        await Wait.UntilAsync(() => !received.IsEmpty, "the held message at the subscriber", 30);
        using var json = JsonDocument.Parse(received.First().Payload);
        Assert.Equal(3, json.RootElement.GetProperty("alerts")[0].GetProperty("id").GetInt64());
        await Wait.UntilAsync(() => runner.Delivered == 1, "the delivery counted", 30);
        Assert.Equal(1, runner.Failed);
        var down = Assert.Single(log.At(LogLevel.Error));
        Assert.StartsWith("alert sink local: peer down after 1 attempts (", down, StringComparison.Ordinal);
        Assert.StartsWith("alert sink local: peer back after ", Assert.Single(log.At(LogLevel.Warning)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_a_webhook_answering_500_for_longer_than_the_retries_lost_the_alert_and_logged_every_attempt()
    {
        // The receiver answers 500 for its first 8 requests (restarting behind a proxy), then 200.
        await using var server = new TinyHttpServer { Respond = n => n <= 8 ? 500 : 200 };
        var log = new ListLogger();
        var config = new WebhookSinkConfig { Name = "noc", Url = server.Url, Retries = 2, RetryDelay = TimeSpan.FromMilliseconds(20), Timeout = TimeSpan.FromSeconds(10) };
        await using var runner = new SinkRunner(new WebhookSink(config, "dc1", "gw1"), config, log);
        await runner.StartAsync(TestContext.Current.CancellationToken);
        // Two alerts: a later state of the same alert would supersede the held message (SinkSupersedeTests).
        var firing = Message(Alert(1, AlertStatus.Firing));
        var resolved = Message(Alert(2, AlertStatus.Resolved));
        runner.Enqueue(firing, firing.Alerts);
        runner.Enqueue(resolved, resolved.Alerts);
        await Wait.UntilAsync(() => runner.Delivered == 2, "both messages once the receiver answers 200", 30);

        // Every message arrives, in order, the firing one after 8 failed attempts.
        var statuses = server.Hits.Skip(8).Select(h =>
        {
            using var json = JsonDocument.Parse(h.Body);
            return json.RootElement.GetProperty("alerts")[0].GetProperty("status").GetString();
        });
        Assert.Equal(["firing", "resolved"], statuses);
        Assert.Equal(10, server.Hits.Count);
        Assert.Equal(1, runner.Failed);

        // Logged: the fast retries, the outage once (not per attempt), the recovery once.
        Assert.Equal(
            [
                (LogLevel.Warning, "alert sink noc: attempt 1 failed (" + server.Url + " answered 500 X); retrying in 20 ms"),
                (LogLevel.Warning, "alert sink noc: attempt 2 failed (" + server.Url + " answered 500 X); retrying in 40 ms"),
                (LogLevel.Error, "alert sink noc: peer down after 3 attempts (" + server.Url + " answered 500 X); holding 2 messages (the first for group room=room1), trying again up to every 30 s until it is back (logged once; alerts still fire on the other sinks)"),
            ],
            log.Lines.Where(l => l.Level >= LogLevel.Warning).Take(3));
        Assert.Equal(4, log.Lines.Count(l => l.Level >= LogLevel.Warning));
        Assert.StartsWith("alert sink noc: peer back after ", log.Lines.Last(l => l.Level >= LogLevel.Warning).Message, StringComparison.Ordinal);
        Assert.Equal(5, log.At(LogLevel.Debug).Count());
    }

    [Fact]
    public async Task Regression_a_stop_while_the_webhook_was_down_waited_out_the_retries_and_marked_the_message_delivered()
    {
        await using var server = new TinyHttpServer { Respond = _ => 503 };
        var config = new WebhookSinkConfig { Name = "noc", Url = server.Url, Retries = 0, RetryDelay = TimeSpan.FromSeconds(20), Timeout = TimeSpan.FromSeconds(10) };
        await using var runner = new SinkRunner(new WebhookSink(config, "dc1", "gw1"), config);
        await runner.StartAsync(TestContext.Current.CancellationToken);
        var firing = Message(Alert(1, AlertStatus.Firing));
        var delivered = 0;
        firing.Expect(1);
        firing.Delivered = _ => delivered++;
        runner.Enqueue(firing, firing.Alerts);
        await Wait.UntilAsync(() => runner.Failed == 1, "the peer declared down");

        var started = System.Diagnostics.Stopwatch.StartNew();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await runner.StopAsync(cts.Token);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(5), $"stop took {started.Elapsed}");
        Assert.Equal(0, delivered); // owed: the alert manager notifies it again after the restart
        Assert.Single(server.Hits);
    }

    [Fact]
    public async Task Gpio_outputs_follow_the_most_severe_alert_silence_on_ack_and_go_failsafe_on_shutdown()
    {
        var chip = new SimulatedGpioDriver();
        using var controller = new GpioController(chip);
        var config = new GpioSinkConfig
        {
            Name = "panel",
            Chip = "simulated",
            Outputs =
            [
                new("relay", 17, ActiveHigh: false, new Dictionary<EventSeverity, OutputPattern> { [EventSeverity.Critical] = OutputPattern.On }, FailsafeActive: true, SilenceOnAck: false),
                new("buzzer", 27, ActiveHigh: true, new Dictionary<EventSeverity, OutputPattern> { [EventSeverity.Critical] = OutputPattern.On, [EventSeverity.Warning] = OutputPattern.Off }, FailsafeActive: false, SilenceOnAck: true),
                new("led", 22, ActiveHigh: true, new Dictionary<EventSeverity, OutputPattern> { [EventSeverity.Critical] = OutputPattern.On, [EventSeverity.Warning] = OutputPattern.BlinkFast }, FailsafeActive: false, SilenceOnAck: false),
            ],
        };
        var sink = new GpioSink(config, () => controller);
        await sink.StartAsync(TestContext.Current.CancellationToken);
        Assert.Equal(PinValue.High, chip.Output(17)); // active low relay, off
        Assert.Equal(PinValue.Low, chip.Output(27));

        await sink.DeliverAsync(Message(), [Alert(1, AlertStatus.Firing, EventSeverity.Warning)], TestContext.Current.CancellationToken);
        Assert.Equal([OutputPattern.Off, OutputPattern.Off, OutputPattern.BlinkFast], sink.Patterns);
        await Wait.UntilAsync(() => chip.Toggles(22) >= 3, "LED blinking");

        await sink.DeliverAsync(Message(), [Alert(2, AlertStatus.Firing)], TestContext.Current.CancellationToken);
        Assert.Equal(PinValue.Low, chip.Output(17)); // relay energised (active low)
        Assert.Equal(PinValue.High, chip.Output(27));
        Assert.Equal(OutputPattern.On, sink.Patterns[2]);

        // Acknowledged: the buzzer stops, the relay and the lamp stay.
        await sink.DeliverAsync(Message(), [Alert(2, AlertStatus.Acknowledged, acked: T0)], TestContext.Current.CancellationToken);
        Assert.Equal(PinValue.Low, chip.Output(27));
        Assert.Equal(PinValue.Low, chip.Output(17));

        // Critical resolved: back to the warning's pattern.
        await sink.DeliverAsync(Message(), [Alert(2, AlertStatus.Resolved)], TestContext.Current.CancellationToken);
        Assert.Equal(PinValue.High, chip.Output(17));
        Assert.Equal(OutputPattern.BlinkFast, sink.Patterns[2]);

        await sink.DisposeAsync();
        Assert.Equal(PinValue.Low, chip.Output(17)); // failsafe: relay energised when the gateway stops
        Assert.Equal(PinValue.Low, chip.Output(27));
    }

    [Fact]
    public async Task A_hanging_sink_does_not_delay_another_and_its_full_queue_drops_the_oldest()
    {
        var hang = new RecordingSink("hang") { Before = ct => Task.Delay(Timeout.Infinite, ct) };
        var fast = new RecordingSink("fast");
        var hangConfig = new WebhookSinkConfig { Name = "hang", Url = new Uri("http://unused/"), QueueCapacity = 4, Timeout = TimeSpan.FromMinutes(5), Retries = 0 };
        var fastConfig = hangConfig with { Name = "fast", Timeout = TimeSpan.FromSeconds(5), QueueCapacity = 256 };
        await using var hangRunner = new SinkRunner(hang, hangConfig);
        await using var fastRunner = new SinkRunner(fast, fastConfig);
        await hangRunner.StartAsync(TestContext.Current.CancellationToken);
        await fastRunner.StartAsync(TestContext.Current.CancellationToken);
        for (var i = 0; i < 20; i++)
        {
            var m = Message(Alert(i, AlertStatus.Firing));
            hangRunner.Enqueue(m, m.Alerts);
            fastRunner.Enqueue(m, m.Alerts);
        }

        await Wait.UntilAsync(() => fast.Got.Count == 20, "all messages at the fast sink");
        // The hanging runner's first attempt may start after the fast one finished (a loaded machine): wait for it, then
        // make sure no second attempt follows while the first still hangs.
        await Wait.UntilAsync(() => hang.Attempts >= 1, "the hanging sink's first attempt");
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.Equal(1, hang.Attempts);
        Assert.True(hangRunner.Dropped >= 15, $"dropped {hangRunner.Dropped}");
        Assert.True(hangRunner.QueueDepth <= 4);
    }
}
