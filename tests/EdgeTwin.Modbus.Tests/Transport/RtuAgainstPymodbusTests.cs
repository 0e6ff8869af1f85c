using System.IO.Ports;
using System.Text.Json.Nodes;
using EdgeTwin.Modbus.Client;
using EdgeTwin.Modbus.Protocol;
using EdgeTwin.Modbus.Tests.Peers;
using EdgeTwin.Modbus.Transport;

namespace EdgeTwin.Modbus.Tests.Transport;

/// <summary>RTU over a socat pty pair (a virtual serial cable) and over TCP, against pymodbus.</summary>
public sealed class RtuAgainstPymodbusTests
{
    private const int Baud = 19200;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static JsonObject Map() => PymodbusServer.Units(
        (1, "hr", 0, [10, 20, 30, 40]),
        (1, "co", 0, [1, 1, 0]),
        (2, "ir", 100, [7, 8]),
        (3, "hr", 0, [33]));

    private static ModbusClient SerialClient(string path, TimeSpan? timeout = null) =>
        new(new ModbusRtuTransport(
            new SerialRtuChannel(new SerialLineOptions { PortName = path, BaudRate = Baud, Parity = Parity.None }),
            new ModbusRtuOptions { RequestTimeout = timeout ?? TimeSpan.FromSeconds(3) }));

    [Fact]
    public async Task Serial_reads_writes_and_exception_codes()
    {
        await using var pty = await SocatPtyPair.StartAsync();
        await using var server = await PymodbusServer.StartSerialAsync(pty.A, Baud, Map());
        await using var client = SerialClient(pty.B);

        Assert.Equal(new ushort[] { 10, 20, 30, 40 }, await client.ReadHoldingRegistersAsync(1, 0, 4, Ct));
        Assert.Equal(new ushort[] { 7, 8 }, await client.ReadInputRegistersAsync(2, 100, 2, Ct));
        bool[] coils = [true, true, false];
        Assert.Equal(coils, await client.ReadCoilsAsync(1, 0, 3, Ct));
        await client.WriteMultipleRegistersAsync(1, 1, [21, 31], Ct);
        await client.WriteSingleRegisterAsync(1, 3, 41, Ct);
        Assert.Equal(new ushort[] { 10, 21, 31, 41 }, await client.ReadHoldingRegistersAsync(1, 0, 4, Ct));

        var ex = await Assert.ThrowsAsync<ModbusDeviceException>(() => client.ReadHoldingRegistersAsync(1, 2, 5, Ct));
        Assert.Equal(ModbusExceptionCode.IllegalDataAddress, ex.ExceptionCode);
        Assert.Equal(1, ex.UnitId);
    }

    [Fact]
    public async Task Serial_missing_unit_times_out_without_disturbing_the_others()
    {
        await using var pty = await SocatPtyPair.StartAsync();
        await using var server = await PymodbusServer.StartSerialAsync(pty.A, Baud, Map());
        await using var client = SerialClient(pty.B, TimeSpan.FromMilliseconds(600));
        Assert.Equal(new ushort[] { 10 }, await client.ReadHoldingRegistersAsync(1, 0, 1, Ct));
        await Assert.ThrowsAsync<ModbusTimeoutException>(() => client.ReadHoldingRegistersAsync(7, 0, 1, Ct));
        Assert.Equal(new ushort[] { 33 }, await client.ReadHoldingRegistersAsync(3, 0, 1, Ct));
    }

    [Fact]
    public async Task Regression_a_dead_units_late_answer_guard_held_the_line_for_the_next_unit()
    {
        // After unit 7's timeout the line was closed to every unit for a further request timeout (the late-answer
        // guard), so a dead unit cost its neighbours two timeouts per attempt. Only unit 7's own next request waits now:
        // a late answer of unit 7 during another unit's exchange is told apart by its address.
        await using var pty = await SocatPtyPair.StartAsync();
        await using var server = await PymodbusServer.StartSerialAsync(pty.A, Baud, Map());
        await using var client = SerialClient(pty.B, TimeSpan.FromMilliseconds(600));
        Assert.Equal(new ushort[] { 33 }, await client.ReadHoldingRegistersAsync(3, 0, 1, Ct));
        await Assert.ThrowsAsync<ModbusTimeoutException>(() => client.ReadHoldingRegistersAsync(7, 0, 1, Ct));

        var next = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(new ushort[] { 33 }, await client.ReadHoldingRegistersAsync(3, 0, 1, Ct));
        Assert.True(next.Elapsed < TimeSpan.FromMilliseconds(300), $"unit 3 waited {next.Elapsed.TotalMilliseconds:0} ms after unit 7's timeout");

        // Unit 7's own next request still waits its guard before it goes out.
        var again = System.Diagnostics.Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<ModbusTimeoutException>(() => client.ReadHoldingRegistersAsync(7, 0, 1, Ct));
        Assert.True(again.Elapsed >= TimeSpan.FromMilliseconds(1000), $"unit 7's retry took {again.Elapsed.TotalMilliseconds:0} ms (guard + timeout)");
        Assert.True(ex.RequestSent);
    }

    [Fact]
    public async Task Shares_of_one_line_send_with_their_own_timeouts_and_wait_for_the_turns_ahead_by_theirs()
    {
        // One transport opened with a 5 s timeout; unit 7 (absent) sends through a share with 2 s, unit 3 through one
        // with 500 ms. Each request times out after its own share's timeout, and unit 3, queued behind unit 7, waits for
        // the line as long as unit 7 may hold it (its 2 s, not 500 ms per turn ahead) and then answers. (500 ms, not
        // 200: pymodbus on a loaded 2-core CI machine answered unit 3 too late.)
        await using var pty = await SocatPtyPair.StartAsync();
        await using var server = await PymodbusServer.StartSerialAsync(pty.A, Baud, Map());
        await using var transport = new ModbusRtuTransport(
            new SerialRtuChannel(new SerialLineOptions { PortName = pty.B, BaudRate = Baud, Parity = Parity.None }),
            new ModbusRtuOptions { RequestTimeout = TimeSpan.FromSeconds(5) });
        await using var slow = new ModbusClient(new ModbusTransportShare(transport, new ModbusRequestSettings(TimeSpan.FromSeconds(2))));
        await using var quick = new ModbusClient(new ModbusTransportShare(transport, new ModbusRequestSettings(TimeSpan.FromMilliseconds(500))));
        Assert.Equal(new ushort[] { 33 }, await quick.ReadHoldingRegistersAsync(3, 0, 1, Ct));

        var ghost = System.Diagnostics.Stopwatch.StartNew();
        var held = Assert.ThrowsAsync<ModbusTimeoutException>(() => slow.ReadHoldingRegistersAsync(7, 0, 1, Ct));
        await Task.Delay(100, Ct);
        var queued = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(new ushort[] { 33 }, await quick.ReadHoldingRegistersAsync(3, 0, 1, Ct));
        queued.Stop();
        var timedOut = await held;
        ghost.Stop();
        Assert.Contains("unit 7: no answer to ReadHoldingRegisters at 0 within 2 s", timedOut.Message, StringComparison.Ordinal);
        Assert.True(ghost.Elapsed < TimeSpan.FromSeconds(4), $"unit 7 timed out after {ghost.Elapsed.TotalMilliseconds:0} ms (its share: 2 s, the transport: 5 s)");
        Assert.True(queued.Elapsed >= TimeSpan.FromSeconds(1.5), $"unit 3 answered after {queued.Elapsed.TotalMilliseconds:0} ms while unit 7 held the line");

        // The late-answer guard is the failed request's own too: once unit 7's 2 s guard has passed, a 500 ms share
        // of unit 7 fails after 0.5 s, and its retry waits 0.5 s of guard (not the transport's 5 s) and 0.5 s more.
        var quickGhost = new ModbusClient(new ModbusTransportShare(transport, new ModbusRequestSettings(TimeSpan.FromMilliseconds(500))));
        await Task.Delay(TimeSpan.FromSeconds(2.1), Ct);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var shortOne = await Assert.ThrowsAsync<ModbusTimeoutException>(() => quickGhost.ReadHoldingRegistersAsync(7, 0, 1, Ct));
        shortOne = await Assert.ThrowsAsync<ModbusTimeoutException>(() => quickGhost.ReadHoldingRegistersAsync(7, 0, 1, Ct));
        Assert.Contains("within 0.5 s", shortOne.Message, StringComparison.Ordinal);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(3.5), $"two attempts of a 500 ms share took {sw.Elapsed.TotalMilliseconds:0} ms (the transport's guard alone is 5 s)");

        // Disposing a share leaves the line open for the others.
        await quickGhost.DisposeAsync();
        Assert.Equal(new ushort[] { 33 }, await quick.ReadHoldingRegistersAsync(3, 0, 1, Ct));
    }

    [Fact]
    public async Task Serial_device_that_never_answers_times_out()
    {
        await using var pty = await SocatPtyPair.StartAsync();
        await using var server = await PymodbusServer.StartSerialAsync(pty.A, Baud, Map(), new JsonObject { ["silent"] = true });
        await using var client = SerialClient(pty.B, TimeSpan.FromMilliseconds(400));
        await Assert.ThrowsAsync<ModbusTimeoutException>(() => client.ReadHoldingRegistersAsync(1, 0, 1, Ct));
        await Assert.ThrowsAsync<ModbusTimeoutException>(() => client.ReadHoldingRegistersAsync(1, 0, 1, Ct));
    }

    [Fact]
    public async Task Rtu_over_tcp_gateway()
    {
        await using var server = await PymodbusServer.StartTcpAsync(Map(), rtuFraming: true);
        await using var client = new ModbusClient(new ModbusRtuTransport(
            new TcpRtuChannel("127.0.0.1", server.Port, TimeSpan.FromSeconds(5)),
            new ModbusRtuOptions { RequestTimeout = TimeSpan.FromSeconds(3) }));
        Assert.Equal(new ushort[] { 10, 20 }, await client.ReadHoldingRegistersAsync(1, 0, 2, Ct));
        Assert.Equal(new ushort[] { 7, 8 }, await client.ReadInputRegistersAsync(2, 100, 2, Ct));
        var ex = await Assert.ThrowsAsync<ModbusDeviceException>(() => client.ReadInputRegistersAsync(2, 0, 1, Ct));
        Assert.Equal(ModbusExceptionCode.IllegalDataAddress, ex.ExceptionCode);
    }

    [Fact]
    public async Task Missing_serial_port_fails_with_a_communication_error_naming_it()
    {
        await using var client = SerialClient("/dev/edgetwin-no-such-port");
        var ex = await Assert.ThrowsAsync<ModbusCommunicationException>(() => client.ReadHoldingRegistersAsync(1, 0, 1, Ct));
        Assert.Contains("/dev/edgetwin-no-such-port", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Inter_frame_silence_follows_the_serial_line_spec()
    {
        Assert.Equal(3.5 * 11 / 9600 * 1000, ModbusRtuTransport.InterFrameSilence(9600).TotalMilliseconds, 2);
        Assert.Equal(3.5 * 11 / 19200 * 1000, ModbusRtuTransport.InterFrameSilence(19200).TotalMilliseconds, 2);
        Assert.Equal(1.75, ModbusRtuTransport.InterFrameSilence(115200).TotalMilliseconds, 3);
        Assert.Equal(TimeSpan.Zero, ModbusRtuTransport.InterFrameSilence(null));
    }

    [Theory]
    // Read holding registers 0, quantity 1: the 1-register answer fits; a 10-register answer (the frame a CI run
    // handed a set-point read-back: a poll's answer that came after its request timed out) does not.
    [InlineData("0300000001", "030200D7", true)]
    [InlineData("0300000001", "031400D7000000000000000000000000000000EB0000", false)]
    [InlineData("0400640002", "040400070008", true)]
    [InlineData("0100000003", "010105", true)]
    [InlineData("0100000011", "010105", false)]
    // Single writes echo the request; multiple writes echo address and quantity.
    [InlineData("0600100190", "0600100190", true)]
    [InlineData("0600100190", "0600110190", false)]
    [InlineData("10001000020400010002", "1000100002", true)]
    [InlineData("10001000020400010002", "1000100003", false)]
    // An exception response fits any request of its function.
    [InlineData("0300000001", "8302", true)]
    public void A_late_answer_to_an_earlier_request_is_told_from_this_requests_answer(string request, string response, bool fits)
    {
        Assert.Equal(fits, ModbusRtuTransport.AnswersRequest(Convert.FromHexString(request), Convert.FromHexString(response)));
    }
}
