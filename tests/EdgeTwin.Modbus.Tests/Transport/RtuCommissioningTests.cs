using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO.Ports;
using EdgeTwin.Modbus.Client;
using EdgeTwin.Modbus.Protocol;
using EdgeTwin.Modbus.Tests.Peers;
using EdgeTwin.Modbus.Transport;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Modbus.Tests.Transport;

/// <summary>What a controls engineer commissioning an RS-485 line runs into, against pymodbus over a socat pty pair.</summary>
public sealed class RtuCommissioningTests
{
    private const int Baud = 19200;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Reads unit 3's register 0 every 100 ms until it answers (the transport reconnecting meanwhile).</summary>
    private static async Task<ushort[]> FirstAnswerWithin10sAsync(ModbusClient client, string failure)
    {
        for (var until = Stopwatch.StartNew(); ; await Task.Delay(100, Ct))
        {
            Assert.True(until.Elapsed < TimeSpan.FromSeconds(10), failure);
            try
            {
                return await client.ReadHoldingRegistersAsync(3, 0, 1, Ct);
            }
            catch (ModbusCommunicationException)
            {
            }
        }
    }

    [Fact]
    public async Task Regression_an_unplugged_usb_adapter_was_reported_as_access_to_the_port_denied()
    {
        // .NET turns every failed open of a serial port into "Access to the port '…' is denied.": with the adapter
        // unplugged the engineer went looking at the dialout group. The port's absence is said now, and the line is
        // reopened without a restart once the adapter is back at the same path.
        var dir = Path.Combine(Path.GetTempPath(), $"edgetwin-pty-{Guid.NewGuid():N}");
        var pty = await SocatPtyPair.StartAsync(dir);
        var server = await PymodbusServer.StartSerialAsync(pty.A, Baud, PymodbusServer.Units((3, "hr", 0, [230])));
        var logs = new ConcurrentQueue<(LogLevel Level, string Message, Exception? Exception)>();
        try
        {
            await using var client = new ModbusClient(new ModbusRtuTransport(
                new SerialRtuChannel(new SerialLineOptions { PortName = pty.B, BaudRate = Baud, Parity = Parity.None }),
                new ModbusRtuOptions { RequestTimeout = TimeSpan.FromSeconds(1), ReconnectBackoffMax = TimeSpan.FromMilliseconds(400) },
                new ListLogger(logs)));
            Assert.Equal(new ushort[] { 230 }, await client.ReadHoldingRegistersAsync(3, 0, 1, Ct));

            await server.DisposeAsync();
            await pty.DisposeAsync();
            ModbusCommunicationException? unplugged = null;
            for (var until = Stopwatch.StartNew(); unplugged is null || !unplugged.Message.Contains("open failed", StringComparison.Ordinal); await Task.Delay(100, Ct))
            {
                Assert.True(until.Elapsed < TimeSpan.FromSeconds(10), $"no open failure after the unplug: {unplugged?.Message}");
                unplugged = await Assert.ThrowsAnyAsync<ModbusCommunicationException>(() => client.ReadHoldingRegistersAsync(3, 0, 1, Ct));
            }

            Assert.Contains($"port {pty.B} does not exist", unplugged.Message, StringComparison.Ordinal);
            Assert.Contains("unplugged", unplugged.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("denied", unplugged.Message, StringComparison.OrdinalIgnoreCase);
            Assert.Contains(logs, l => l.Level == LogLevel.Warning && l.Message.Contains($"port {pty.B} does not exist", StringComparison.Ordinal));

            pty = await SocatPtyPair.StartAsync(dir);
            server = await PymodbusServer.StartSerialAsync(pty.A, Baud, PymodbusServer.Units((3, "hr", 0, [231])));
            var back = await FirstAnswerWithin10sAsync(client, "the line was not reopened within 10 s of the adapter's return");
            Assert.Equal(new ushort[] { 231 }, back);
            Assert.Equal(2, logs.Count(l => l.Level == LogLevel.Information && l.Message.StartsWith("Modbus connected to", StringComparison.Ordinal)));
        }
        finally
        {
            await server.DisposeAsync();
            await pty.DisposeAsync();
        }
    }

    [Fact]
    public async Task Regression_a_command_run_as_root_opened_the_agents_serial_port_and_garbled_its_frames()
    {
        // The kernel keeps others off an open tty (TIOCEXCL), but not root: `sudo edgetwin poll` on a gateway opened the
        // running agent's RS-485 port, and two masters garbled each other's frames. Whoever drives the line now holds an
        // flock on it; a second opener is refused, naming why, and gets the line once the first lets go.
        Assert.SkipWhen(!File.Exists("/usr/bin/flock"), "util-linux flock not installed");
        await using var pty = await SocatPtyPair.StartAsync();
        await using var server = await PymodbusServer.StartSerialAsync(pty.A, Baud, PymodbusServer.Units((3, "hr", 0, [230])));
        ModbusClient Client() => new(new ModbusRtuTransport(
            new SerialRtuChannel(new SerialLineOptions { PortName = pty.B, BaudRate = Baud, Parity = Parity.None }),
            new ModbusRtuOptions { RequestTimeout = TimeSpan.FromSeconds(1), ReconnectBackoffMax = TimeSpan.FromMilliseconds(300) }));
        async Task<int> FlockExit()
        {
            using var p = Process.Start(new ProcessStartInfo("/usr/bin/flock", ["-n", "-E", "75", pty.B, "true"]) { UseShellExecute = false })!;
            await p.WaitForExitAsync(Ct);
            return p.ExitCode;
        }

        var agent = Client();
        Assert.Equal(new ushort[] { 230 }, await agent.ReadHoldingRegistersAsync(3, 0, 1, Ct));
        Assert.Equal(75, await FlockExit()); // another process cannot take the line's lock

        await using var command = Client();
        var refused = await Assert.ThrowsAnyAsync<ModbusCommunicationException>(() => command.ReadHoldingRegistersAsync(3, 0, 1, Ct));
        if (Environment.UserName == "root")
        {
            // Past TIOCEXCL: only the lock stops it.
            Assert.Contains($"port {pty.B} is locked by another process", refused.Message, StringComparison.Ordinal);
            Assert.Contains("RS-485", refused.Message, StringComparison.Ordinal);
        }
        else
        {
            Assert.Contains("in use", refused.Message, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("does the adapter support", refused.Message, StringComparison.Ordinal);

        await agent.DisposeAsync();
        Assert.Equal(0, await FlockExit());
        var got = await FirstAnswerWithin10sAsync(command, "the line was not taken over within 10 s of its release");
        Assert.Equal(new ushort[] { 230 }, got);
    }

    [Fact]
    public async Task Regression_a_broadcast_write_failed_as_an_empty_response_and_the_next_request_followed_without_a_turnaround()
    {
        // Setting every drive's ramp at once (unit 0): the write, carried out by both units, failed with "empty response
        // from unit 0", and the next request went out after only the 3.5-character silence, while the units were still
        // busy with the broadcast (Serial Line V1.02, 2.4.1: turnaround delay). Now the write succeeds and the line stays
        // quiet for the turnaround (100 ms by default) before the next request.
        await using var pty = await SocatPtyPair.StartAsync();
        await using var server = await PymodbusServer.StartSerialAsync(pty.A, Baud, PymodbusServer.Units((2, "hr", 0, [0, 0]), (3, "hr", 0, [0, 0])), broadcast: true);
        await using var transport = new ModbusRtuTransport(
            new SerialRtuChannel(new SerialLineOptions { PortName = pty.B, BaudRate = Baud, Parity = Parity.None }),
            new ModbusRtuOptions { RequestTimeout = TimeSpan.FromSeconds(1) });
        await using var client = new ModbusClient(transport, ownsTransport: false);
        Assert.Equal(new ushort[] { 0, 0 }, await client.ReadHoldingRegistersAsync(2, 0, 2, Ct));

        var sw = Stopwatch.StartNew();
        await client.WriteSingleRegisterAsync(0, 1, 600, Ct);
        var next = client.ReadHoldingRegistersAsync(3, 0, 2, Ct);
        Assert.Equal(new ushort[] { 0, 600 }, await next);
        Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(100), $"the next request followed the broadcast after {sw.Elapsed.TotalMilliseconds:0} ms");
        Assert.Equal(new ushort[] { 0, 600 }, await client.ReadHoldingRegistersAsync(2, 0, 2, Ct));
        await client.WriteMultipleRegistersAsync(0, 0, [7, 8], Ct);
        Assert.Equal(new ushort[] { 7, 8 }, await client.ReadHoldingRegistersAsync(2, 0, 2, Ct));

        // A read sent to unit 0 says what is wrong rather than "empty response".
        var read = await Assert.ThrowsAsync<ModbusProtocolException>(() => client.ReadHoldingRegistersAsync(0, 0, 1, Ct));
        Assert.Contains("unit 0 is the broadcast address: no device answers ReadHoldingRegisters at 0", read.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_a_unit_at_another_baud_rate_failed_with_bare_noise_errors_naming_no_line_settings_nor_counted_per_unit()
    {
        // A drive left at another baud rate (or parity) on the line: every read of it failed with "bytes that start no
        // response frame" or "CRC mismatch" and the raw bytes, the endpoint's baud alone, nothing saying to compare the
        // line settings; and the frame errors were counted per line only, so which drop was bad did not show. Now the
        // error names the line's settings while the unit has never sent a valid frame, and modbus.client.frame_errors
        // counts by unit.
        await using var pty = await SocatPtyPair.StartAsync();
        await using var peer = await HostilePeer.StartRtuAsync(pty.A, Baud, "wrong_baud");
        var endpoint = $"serial://{pty.B}@{Baud}";
        using var errors = new FrameErrorCounter(endpoint);
        await using var client = new ModbusClient(new ModbusRtuTransport(
            new SerialRtuChannel(new SerialLineOptions { PortName = pty.B, BaudRate = Baud, Parity = Parity.None }),
            new ModbusRtuOptions { RequestTimeout = TimeSpan.FromMilliseconds(500) }));

        Assert.Equal(new ushort[] { 1000, 1001 }, await client.ReadHoldingRegistersAsync(2, 0, 2, Ct));
        for (int i = 0; i < 2; i++)
        {
            var ex = await Assert.ThrowsAsync<ModbusProtocolException>(() => client.ReadHoldingRegistersAsync(1, 0, 2, Ct));
            Assert.Contains($"{endpoint} unit 1: ReadHoldingRegisters at 0: no valid answer:", ex.Message, StringComparison.Ordinal);
            Assert.Contains(
                $"; unit 1 has sent no valid frame on this line yet: check that the line's 19200 8N1 on {pty.B} match the device's baud rate, parity and stop bits, and the A/B wiring",
                ex.Message,
                StringComparison.Ordinal);
        }

        Assert.Equal(new ushort[] { 1005 }, await client.ReadHoldingRegistersAsync(2, 5, 1, Ct));
        Assert.Equal(2, errors.For(1));
        Assert.Equal(0, errors.For(2));
    }

    [Fact]
    public async Task Regression_a_long_read_at_a_low_baud_rate_failed_as_answer_cut_short_without_saying_the_wire_needs_longer()
    {
        // 125 registers at 9600 baud are 255 bytes, 292 ms on the wire; with a 200 ms timeout every such read failed
        // with "answer cut short: 130 bytes arrived within 0.2 s", which reads as a faulty unit. It says now that the
        // unit was still sending and how long its answer needs.
        await using var pty = await SocatPtyPair.StartAsync();
        await using var peer = await HostilePeer.StartRtuAsync(pty.A, 9600, "wire:9600");
        await using var client = new ModbusClient(new ModbusRtuTransport(
            new SerialRtuChannel(new SerialLineOptions { PortName = pty.B, BaudRate = 9600, Parity = Parity.None }),
            new ModbusRtuOptions { RequestTimeout = TimeSpan.FromMilliseconds(200) }));
        var ex = await Assert.ThrowsAsync<ModbusProtocolException>(() => client.ReadHoldingRegistersAsync(1, 0, 125, Ct));
        Assert.Contains("no valid answer: answer cut short:", ex.Message, StringComparison.Ordinal);
        Assert.Contains("within 0.2 s; the unit was still sending: its answer of 255 bytes takes 292 ms on the wire at 9600 baud, so the timeout must be well above that: raise the device's timeout or read fewer registers at a time (frame: ", ex.Message, StringComparison.Ordinal);

        // Given the time, the same read is answered.
        await using var patient = new ModbusClient(new ModbusRtuTransport(
            new SerialRtuChannel(new SerialLineOptions { PortName = pty.B, BaudRate = 9600, Parity = Parity.None }),
            new ModbusRtuOptions { RequestTimeout = TimeSpan.FromSeconds(2) }));
        await client.DisposeAsync();
        await Task.Delay(400, Ct);
        Assert.Equal(1124, (await patient.ReadHoldingRegistersAsync(1, 0, 125, Ct))[124]);
    }

    /// <summary>Counts <c>modbus.client.frame_errors</c> by unit for one endpoint while it lives.</summary>
    private sealed class FrameErrorCounter : IDisposable
    {
        private readonly System.Diagnostics.Metrics.MeterListener _listener = new();
        private readonly ConcurrentDictionary<int, long> _byUnit = new();

        public FrameErrorCounter(string endpoint)
        {
            _listener.InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == ModbusMetrics.MeterName && instrument.Name == "modbus.client.frame_errors")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                bool ours = false;
                int unit = -1;
                foreach (var tag in tags)
                {
                    ours |= tag.Key == "endpoint" && (string?)tag.Value == endpoint;
                    unit = tag.Key == "unit" ? (int)tag.Value! : unit;
                }

                if (ours)
                {
                    _byUnit.AddOrUpdate(unit, value, (_, v) => v + value);
                }
            });
            _listener.Start();
        }

        public long For(int unit) => _byUnit.TryGetValue(unit, out var n) ? n : 0;

        public void Dispose() => _listener.Dispose();
    }

    [Fact]
    public async Task Regression_a_poll_inside_the_reconnect_wait_failed_with_not_open_saying_nothing_of_why()
    {
        // With the adapter unplugged, the polls inside the reconnect wait failed with "not open; next attempt in 3.5 s",
        // and that was what the agent's "device is down after 3 failed polls" Warning quoted. The last failure's reason
        // goes with it now.
        var port = Path.Combine(Path.GetTempPath(), $"edgetwin-gone-{Guid.NewGuid():N}", "ttyUSB0");
        await using var client = new ModbusClient(new ModbusRtuTransport(
            new SerialRtuChannel(new SerialLineOptions { PortName = port }),
            new ModbusRtuOptions { ReconnectBackoffMin = TimeSpan.FromSeconds(30) }));
        var first = await Assert.ThrowsAsync<ModbusCommunicationException>(() => client.ReadHoldingRegistersAsync(1, 0, 1, Ct));
        Assert.Contains("open failed: port", first.Message, StringComparison.Ordinal);
        var second = await Assert.ThrowsAsync<ModbusCommunicationException>(() => client.ReadHoldingRegistersAsync(2, 0, 1, Ct));
        Assert.StartsWith($"serial://{port}@9600: not open (last open failed: port {port} does not exist (No such file or directory): USB-RS485 adapter unplugged", second.Message, StringComparison.Ordinal);
        Assert.Matches(@"; next attempt in \d+(\.\d)? s$", second.Message);
    }

    [Fact]
    public async Task A_port_that_is_not_a_serial_port_is_named_as_such()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-notatty-");
        try
        {
            var file = Path.Combine(dir.FullName, "ttyUSB0");
            await File.WriteAllTextAsync(file, "", Ct);
            await using var client = new ModbusClient(new ModbusRtuTransport(new SerialRtuChannel(new SerialLineOptions { PortName = file })));
            var ex = await Assert.ThrowsAsync<ModbusCommunicationException>(() => client.ReadHoldingRegistersAsync(1, 0, 1, Ct));
            Assert.Contains($"{file} is not a serial port", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
