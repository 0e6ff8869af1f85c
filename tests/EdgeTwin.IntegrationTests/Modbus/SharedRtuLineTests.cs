using System.Collections.Concurrent;
using EdgeTwin.Agent.Sources.Modbus;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Scheduling;
using EdgeTwin.Core.Sources;
using EdgeTwin.Modbus.Tests.Peers;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.IntegrationTests.Modbus;

/// <summary>
/// Two units on one RS-485 line (a socat pty pair, pymodbus answering as unit 3 only): a healthy meter and a ghost
/// (unit 7, absent), polled by the agent's scheduler through the agent's Modbus sources, as on site.
/// </summary>
public sealed class SharedRtuLineTests
{
    private const int Baud = 19200;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly DeviceProfile Meter = new(
        "test-rtu-meter", "EdgeTwin", "Test meter", DeviceProtocol.Modbus, "one register",
        [new ProfileMetric("voltage", "V", MetricKind.Gauge, "meter.voltage") { Register = new ModbusRegister(ModbusTable.Holding, 0, ModbusDataType.UInt16) }],
        [])
    {
        Modbus = new ModbusProfileSettings(Addressing: 0, MaxRegistersPerRead: 125, GapTolerance: 0, ByteOrder: WordOrder.ABCD),
    };

    private static SourceContext Context(string id, string port, byte unit, TimeSpan timeout, ILoggerFactory loggers) =>
        new(new DeviceConfig(id, Meter.Id, DeviceAddress.Rtu(port)) { UnitId = unit, Serial = new SerialSettings(Baud, SerialParity.None), Timeout = timeout },
            Meter, null, loggers, TimeProvider.System);

    private sealed class Samples : ISampleSink
    {
        public ConcurrentQueue<Sample> All { get; } = new();

        public ValueTask WriteAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken)
        {
            foreach (var s in samples.Span)
            {
                All.Enqueue(s);
            }

            return ValueTask.CompletedTask;
        }
    }

    private sealed class Events : IEventSink
    {
        public ConcurrentQueue<EdgeEvent> All { get; } = new();

        public ValueTask PublishAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken)
        {
            All.Enqueue(edgeEvent);
            return ValueTask.CompletedTask;
        }
    }

    [Fact]
    public async Task Regression_a_dead_unit_on_a_shared_line_failed_the_healthy_units_polls()
    {
        // The meter's poll starts while the ghost's request is on the line (phases 0 and 300 ms, timeout 400 ms). The
        // meter's deadline used to run from the start of its poll, through the queue behind the ghost and the late-answer
        // guard after it, so every ghost attempt failed the meter's next poll ("no answer within 0.4s") and left a stale
        // reading. Now the meter's timeout covers only its own exchange, and the ghost's guard delays only the ghost.
        await using var pty = await SocatPtyPair.StartAsync();
        await using var server = await PymodbusServer.StartSerialAsync(pty.A, Baud, PymodbusServer.Units((3, "hr", 0, [230])));
        var logs = new ConcurrentQueue<(LogLevel Level, string Message)>();
        using var loggers = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(new ListLoggerProvider(logs)));
        var interval = TimeSpan.FromMilliseconds(600);
        var timeout = TimeSpan.FromMilliseconds(400);
        var factory = new ModbusSourceFactory();
        await using var ghost = factory.Create(Context("meter-rtu-ghost", pty.B, 7, timeout, loggers)).Polled!;
        await using var meter = factory.Create(Context("meter-rtu", pty.B, 3, timeout, loggers)).Polled!;
        var registry = new SeriesRegistry();
        var samples = new Samples();
        var events = new Events();
        var options = new PollSchedulerOptions { JitterFraction = 0, RandomSeed = 1, MaxBackoff = interval * 2 };
        await using (var scheduler = new PollScheduler(
            [new PolledDevice(ghost, interval, timeout), new PolledDevice(meter, interval, timeout)],
            registry, samples, events, options, TimeProvider.System, new ListLogger<PollScheduler>(logs)))
        {
            await scheduler.StartAsync(Ct);
            await Task.Delay(TimeSpan.FromSeconds(5), Ct);
            await scheduler.StopAsync(Ct);

            var status = scheduler.Status().ToDictionary(s => s.DeviceId);
            var failures = string.Join("\n", logs.Where(l => l.Message.Contains("meter-rtu:", StringComparison.Ordinal)).Select(l => l.Message));
            Assert.True(status["meter-rtu"].Failures == 0, $"the healthy meter failed {status["meter-rtu"].Failures} of {status["meter-rtu"].Polls} polls:\n{failures}");
            Assert.True(status["meter-rtu-ghost"].Failures >= 4, $"the ghost was tried {status["meter-rtu-ghost"].Failures} times");
            Assert.Equal(DeviceState.Down, status["meter-rtu-ghost"].State);
            Assert.Contains("unit 7", status["meter-rtu-ghost"].LastError, StringComparison.Ordinal);
            Assert.True(status["meter-rtu"].Polls >= 7, $"{status["meter-rtu"].Polls} polls of the meter");
        }

        var meterSamples = samples.All.Where(s => registry[s.Series].DeviceId == "meter-rtu").ToList();
        Assert.NotEmpty(meterSamples);
        Assert.All(meterSamples, s => Assert.Equal((SampleQuality.Good, 230.0), (s.Quality, s.Value)));
        Assert.DoesNotContain(logs, l => l.Level >= LogLevel.Warning && l.Message.Contains("meter-rtu:", StringComparison.Ordinal));
        Assert.DoesNotContain(events.All, e => e.Source == "meter-rtu");
    }

    [Fact]
    public async Task Regression_a_silent_unit_on_a_serial_line_was_pointed_at_the_serial_settings_without_saying_which()
    {
        // "check unit_id, the serial settings and the wiring" left the engineer to look up what the line runs at; a
        // meter at 8N1 on a line left at the default 8E1 is silent (it drops every frame at its parity check).
        await using var pty = await SocatPtyPair.StartAsync();
        await using var server = await PymodbusServer.StartSerialAsync(pty.A, Baud, PymodbusServer.Units((3, "hr", 0, [230])));
        await using var ghost = new ModbusSourceFactory().Create(Context("meter-rtu-ghost", pty.B, 7, TimeSpan.FromMilliseconds(300), NullLoggerFactory.Instance)).Polled!;
        ghost.RegisterSeries(new SeriesRegistry());
        var error = await Assert.ThrowsAsync<DeviceException>(async () => await ghost.PollAsync(new Samples(), 1, Ct));
        Assert.EndsWith(
            $"unit 7: no answer to ReadHoldingRegisters at 0 within 0.3 s (unit 7 never answered on the line: check unit_id, that the line's 19200 8N1 on {pty.B} matches the device's baud rate, parity and stop bits, and the wiring)",
            error.Message,
            StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_one_adapter_named_by_two_paths_was_opened_twice_and_the_units_answers_interleaved()
    {
        // The meter written as the port's usual name, the drive added later by its stable link (as
        // /dev/serial/by-id/usb-FTDI_…-port0 beside /dev/ttyUSB0): two transports opened one port, each read the other's
        // answers, and polls failed (without root the second open failed as "in use"). One line, one transport now.
        await using var pty = await SocatPtyPair.StartAsync();
        var link = Path.Combine(Path.GetDirectoryName(pty.B)!, "by-id-port0");
        File.CreateSymbolicLink(link, pty.B);
        await using var server = await PymodbusServer.StartSerialAsync(pty.A, Baud, PymodbusServer.Units((3, "hr", 0, [230]), (4, "hr", 0, [400])));
        var factory = new ModbusSourceFactory();
        await using var meter = factory.Create(Context("meter-rtu", pty.B, 3, TimeSpan.FromSeconds(1), NullLoggerFactory.Instance)).Polled!;
        await using var drive = factory.Create(Context("drive-rtu", link, 4, TimeSpan.FromSeconds(1), NullLoggerFactory.Instance)).Polled!;
        var registry = new SeriesRegistry();
        meter.RegisterSeries(registry);
        drive.RegisterSeries(registry);
        var sink = new Samples();
        for (int round = 1; round <= 5; round++)
        {
            await Task.WhenAll(meter.PollAsync(sink, round, Ct).AsTask(), drive.PollAsync(sink, round, Ct).AsTask());
        }

        Assert.Equal(Enumerable.Repeat(230.0, 5), sink.All.Where(s => registry[s.Series].DeviceId == "meter-rtu").Select(s => s.Value));
        Assert.Equal(Enumerable.Repeat(400.0, 5), sink.All.Where(s => registry[s.Series].DeviceId == "drive-rtu").Select(s => s.Value));
    }

    [Fact]
    public async Task Regression_shared_rs485_line_used_the_first_devices_timeout_for_every_unit()
    {
        // The meter (unit 3, timeout 2 s) opens the line, the ghost (unit 7, absent, timeout 200 ms) joins it. The line's
        // transport was built with the first device's options, so the ghost's requests waited 2 s for an answer, and its
        // next request a further 2 s of late-answer guard ("no answer to ReadHoldingRegisters at 0 within 2 s"). Each
        // device now sends through its own share of the line, with its own timeout and guard.
        await using var pty = await SocatPtyPair.StartAsync();
        await using var server = await PymodbusServer.StartSerialAsync(pty.A, Baud, PymodbusServer.Units((3, "hr", 0, [230])));
        var factory = new ModbusSourceFactory();
        await using var meter = factory.Create(Context("meter-rtu", pty.B, 3, TimeSpan.FromSeconds(2), NullLoggerFactory.Instance)).Polled!;
        await using var ghost = factory.Create(Context("meter-rtu-ghost", pty.B, 7, TimeSpan.FromMilliseconds(200), NullLoggerFactory.Instance)).Polled!;
        var registry = new SeriesRegistry();
        meter.RegisterSeries(registry);
        ghost.RegisterSeries(registry);
        var sink = new Samples();
        await meter.PollAsync(sink, 1, Ct);

        // As `edgetwin poll` and a set-point write poll it: no scheduler deadline, the transport's timeout alone.
        var first = System.Diagnostics.Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<DeviceException>(async () => await ghost.PollAsync(sink, 2, Ct));
        first.Stop();
        Assert.Contains("unit 7: no answer to ReadHoldingRegisters at 0 within 0.2 s", error.Message, StringComparison.Ordinal);
        Assert.True(first.Elapsed < TimeSpan.FromSeconds(1), $"the ghost's failure took {first.Elapsed.TotalMilliseconds:0} ms: {error.Message}");

        // Its next attempt waits its own late-answer guard (0.2 s), not the meter's 2 s, then its own timeout.
        var again = System.Diagnostics.Stopwatch.StartNew();
        error = await Assert.ThrowsAsync<DeviceException>(async () => await ghost.PollAsync(sink, 3, Ct));
        again.Stop();
        Assert.Contains("within 0.2 s", error.Message, StringComparison.Ordinal);
        Assert.True(again.Elapsed < TimeSpan.FromSeconds(1), $"the ghost's second failure took {again.Elapsed.TotalMilliseconds:0} ms: {error.Message}");

        // The meter still has its own 2 s and answers.
        await meter.PollAsync(sink, 4, Ct);
        Assert.Equal(2, sink.All.Count(s => registry[s.Series].DeviceId == "meter-rtu" && s.IsGood));
    }

    [Fact]
    public async Task Regression_shared_rs485_line_cut_a_slow_units_answers_at_the_first_devices_shorter_timeout()
    {
        // The other way round, under the agent's scheduler: the ghost (timeout 200 ms) opens the line, the meter answers
        // after 400 ms and has a 1 s timeout. The line's 200 ms used to fail every one of the meter's polls ("unit 3: no
        // answer to ReadHoldingRegisters at 0 within 0.2 s") although its own timeout was never reached.
        await using var pty = await SocatPtyPair.StartAsync();
        await using var server = await PymodbusServer.StartSerialAsync(
            pty.A, Baud, PymodbusServer.Units((3, "hr", 0, [230])), new System.Text.Json.Nodes.JsonObject { ["delay"] = 0.4 });
        var logs = new ConcurrentQueue<(LogLevel Level, string Message)>();
        using var loggers = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(new ListLoggerProvider(logs)));
        var factory = new ModbusSourceFactory();
        var ghostTimeout = TimeSpan.FromMilliseconds(200);
        var meterTimeout = TimeSpan.FromSeconds(1);
        await using var ghost = factory.Create(Context("meter-rtu-ghost", pty.B, 7, ghostTimeout, loggers)).Polled!;
        await using var meter = factory.Create(Context("meter-rtu", pty.B, 3, meterTimeout, loggers)).Polled!;
        var registry = new SeriesRegistry();
        var samples = new Samples();
        var events = new Events();
        var options = new PollSchedulerOptions { JitterFraction = 0, RandomSeed = 1, MaxBackoff = TimeSpan.FromSeconds(1) };
        await using (var scheduler = new PollScheduler(
            [new PolledDevice(ghost, TimeSpan.FromMilliseconds(500), ghostTimeout), new PolledDevice(meter, TimeSpan.FromMilliseconds(1500), meterTimeout)],
            registry, samples, events, options, TimeProvider.System, new ListLogger<PollScheduler>(logs)))
        {
            await scheduler.StartAsync(Ct);
            await Task.Delay(TimeSpan.FromSeconds(5), Ct);
            await scheduler.StopAsync(Ct);

            var status = scheduler.Status().ToDictionary(s => s.DeviceId);
            var failures = string.Join("\n", logs.Where(l => l.Message.Contains("meter-rtu:", StringComparison.Ordinal)).Select(l => l.Message));
            Assert.True(status["meter-rtu"].Failures == 0, $"the slow meter failed {status["meter-rtu"].Failures} of {status["meter-rtu"].Polls} polls:\n{failures}");
            Assert.True(status["meter-rtu"].Polls >= 3, $"{status["meter-rtu"].Polls} polls of the meter");
            Assert.True(status["meter-rtu-ghost"].Failures >= 2, $"the ghost was tried {status["meter-rtu-ghost"].Failures} times");
            Assert.Contains("unit 7", status["meter-rtu-ghost"].LastError, StringComparison.Ordinal);
        }

        var meterSamples = samples.All.Where(s => registry[s.Series].DeviceId == "meter-rtu").ToList();
        Assert.NotEmpty(meterSamples);
        Assert.All(meterSamples, s => Assert.Equal((SampleQuality.Good, 230.0), (s.Quality, s.Value)));
    }

    [Fact]
    public async Task Regression_a_poll_cut_while_waiting_for_the_line_blamed_its_own_unit_not_the_one_holding_it()
    {
        // The ghost's request holds the line for its 1 s timeout; the meter's caller gives up after 300 ms in the queue.
        // The failure used to say only "still waiting for the bus (another request was on the line)"; it now says it was
        // never sent and who was on the line.
        await using var pty = await SocatPtyPair.StartAsync();
        await using var server = await PymodbusServer.StartSerialAsync(pty.A, Baud, PymodbusServer.Units((3, "hr", 0, [230])));
        var factory = new ModbusSourceFactory();
        await using var ghost = factory.Create(Context("meter-rtu-ghost", pty.B, 7, TimeSpan.FromSeconds(1), NullLoggerFactory.Instance)).Polled!;
        await using var meter = factory.Create(Context("meter-rtu", pty.B, 3, TimeSpan.FromSeconds(1), NullLoggerFactory.Instance)).Polled!;
        var registry = new SeriesRegistry();
        ghost.RegisterSeries(registry);
        meter.RegisterSeries(registry);
        var sink = new Samples();

        // The line works: the meter answers on its own.
        await meter.PollAsync(sink, 1, Ct);
        var ghostPoll = ghost.PollAsync(sink, 2, Ct).AsTask();
        await Task.Delay(100, Ct);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(TimeSpan.FromMilliseconds(300));
        var stuck = await Assert.ThrowsAsync<DeviceException>(async () => await meter.PollAsync(sink, 3, deadline.Token));

        Assert.Matches(
            @"^device 'meter-rtu': serial://\S+@19200 unit 3: ReadHoldingRegisters at 0 not sent: still waiting for the bus after 0\.\d s, behind unit 7 \(not answering for 0\.\d s\)$",
            stuck.Message);
        var ghostError = await Assert.ThrowsAsync<DeviceException>(() => ghostPoll);
        Assert.Contains("unit 7: no answer to ReadHoldingRegisters at 0 within 1 s", ghostError.Message, StringComparison.Ordinal);

        // The line is free again: the meter answers at once.
        await meter.PollAsync(sink, 4, Ct);
        Assert.Equal(2, sink.All.Count(s => registry[s.Series].DeviceId == "meter-rtu" && s.IsGood));
    }
}
