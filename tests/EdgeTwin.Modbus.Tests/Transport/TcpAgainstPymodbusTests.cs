using System.Text.Json.Nodes;
using EdgeTwin.Modbus.Client;
using EdgeTwin.Modbus.Protocol;
using EdgeTwin.Modbus.Tests.Peers;
using EdgeTwin.Modbus.Transport;

namespace EdgeTwin.Modbus.Tests.Transport;

public sealed class TcpAgainstPymodbusTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static JsonObject Map() => PymodbusServer.Units(
        (1, "hr", 0, [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]),
        (1, "ir", 10, [11, 12, 13]),
        (1, "co", 0, [1, 0, 1, 1, 0, 0, 1, 1, 1, 0]),
        (1, "di", 5, [0, 1, 1]),
        (2, "hr", 0, [42]));

    private static ModbusClient Client(int port, TimeSpan? timeout = null, int inFlight = 1) =>
        new(new ModbusTcpTransport(new ModbusTcpOptions
        {
            Host = "127.0.0.1",
            Port = port,
            RequestTimeout = timeout ?? TimeSpan.FromSeconds(5),
            MaxInFlight = inFlight,
            ReconnectBackoffMin = TimeSpan.FromMilliseconds(50),
        }));

    [Fact]
    public async Task Units_behind_one_gateway_send_through_shares_with_their_own_timeouts()
    {
        // One connection (a gateway with units 1 and 2) opened with a 5 s timeout; the server answers after 0.5 s. A share
        // with 200 ms times out after 0.2 s and says so; a share with 2 s gets its answer on the same connection.
        await using var server = await PymodbusServer.StartTcpAsync(Map(), new JsonObject { ["delay"] = 0.5 });
        await using var transport = new ModbusTcpTransport(new ModbusTcpOptions { Host = "127.0.0.1", Port = server.Port, RequestTimeout = TimeSpan.FromSeconds(5) });
        await using var quick = new ModbusClient(new ModbusTransportShare(transport, new ModbusRequestSettings(TimeSpan.FromMilliseconds(200))));
        await using var patient = new ModbusClient(new ModbusTransportShare(transport, new ModbusRequestSettings(TimeSpan.FromSeconds(2))));

        var sw = System.Diagnostics.Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<ModbusTimeoutException>(() => quick.ReadHoldingRegistersAsync(2, 0, 1, Ct));
        Assert.Contains("unit 2: no answer to ReadHoldingRegisters at 0 within 0.2 s", ex.Message, StringComparison.Ordinal);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1), $"the 200 ms share timed out after {sw.Elapsed.TotalMilliseconds:0} ms");
        Assert.Equal(new ushort[] { 100 }, await patient.ReadHoldingRegistersAsync(1, 0, 1, Ct));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ModbusTransportShare(transport, new ModbusRequestSettings(TimeSpan.Zero)));
    }

    [Fact]
    public async Task Reads_every_table_and_writes_with_every_function()
    {
        await using var server = await PymodbusServer.StartTcpAsync(Map());
        await using var client = Client(server.Port);

        Assert.Equal(new ushort[] { 100, 200, 300 }, await client.ReadHoldingRegistersAsync(1, 0, 3, Ct));
        Assert.Equal(new ushort[] { 12, 13 }, await client.ReadInputRegistersAsync(1, 11, 2, Ct));
        bool[] coils = [true, false, true, true, false, false, true, true, true, false];
        Assert.Equal(coils, await client.ReadCoilsAsync(1, 0, 10, Ct));
        bool[] inputs = [false, true, true];
        Assert.Equal(inputs, await client.ReadDiscreteInputsAsync(1, 5, 3, Ct));
        Assert.Equal(new ushort[] { 42 }, await client.ReadHoldingRegistersAsync(2, 0, 1, Ct));

        await client.WriteSingleRegisterAsync(1, 2, 333, Ct);
        await client.WriteMultipleRegistersAsync(1, 4, [555, 666], Ct);
        await client.WriteSingleCoilAsync(1, 1, true, Ct);
        await client.WriteMultipleCoilsAsync(1, 4, [true, true], Ct);
        var readBack = await client.ReadWriteMultipleRegistersAsync(1, 0, 7, 6, [777], Ct);
        Assert.Equal(new ushort[] { 100, 200, 333, 400, 555, 666, 777 }, readBack);
        bool[] written = [true, true, true, true, true, true];
        Assert.Equal(written, (await client.ReadCoilsAsync(1, 0, 6, Ct))[..6]);
    }

    [Fact]
    public async Task Reads_device_identification()
    {
        await using var server = await PymodbusServer.StartTcpAsync(Map());
        await using var client = Client(server.Port);
        var id = await client.ReadDeviceIdentificationAsync(1, ReadDeviceIdCode.Basic, Ct);
        Assert.Equal("EdgeTwin Test", id[0]);
        Assert.Equal("PYMB-1", id[1]);
        Assert.Equal("3.0", id[2]);
    }

    [Fact]
    public async Task Exception_responses_carry_the_code()
    {
        await using var server = await PymodbusServer.StartTcpAsync(Map());
        await using var client = Client(server.Port);
        var ex = await Assert.ThrowsAsync<ModbusDeviceException>(() => client.ReadHoldingRegistersAsync(1, 8, 5, Ct));
        Assert.Equal(ModbusExceptionCode.IllegalDataAddress, ex.ExceptionCode);
        Assert.Equal(ModbusFunctionCode.ReadHoldingRegisters, ex.FunctionCode);
        Assert.Contains("ILLEGAL DATA ADDRESS", ex.Message, StringComparison.Ordinal);
        // The connection is still good afterwards.
        Assert.Equal(new ushort[] { 900, 1000 }, await client.ReadHoldingRegistersAsync(1, 8, 2, Ct));
    }

    [Fact]
    public async Task Missing_unit_times_out_and_the_next_request_is_answered()
    {
        await using var server = await PymodbusServer.StartTcpAsync(Map());
        await using var client = Client(server.Port, TimeSpan.FromMilliseconds(500));
        Assert.Equal(new ushort[] { 100 }, await client.ReadHoldingRegistersAsync(1, 0, 1, Ct));
        var ex = await Assert.ThrowsAsync<ModbusTimeoutException>(() => client.ReadHoldingRegistersAsync(9, 0, 1, Ct));
        Assert.Contains("unit 9", ex.Message, StringComparison.Ordinal);
        Assert.Equal(new ushort[] { 200 }, await client.ReadHoldingRegistersAsync(1, 1, 1, Ct));
    }

    [Fact]
    public async Task Device_that_never_answers_times_out_every_time()
    {
        await using var server = await PymodbusServer.StartTcpAsync(Map(), new JsonObject { ["silent"] = true });
        await using var client = Client(server.Port, TimeSpan.FromMilliseconds(300));
        for (int i = 0; i < 4; i++)
        {
            await Assert.ThrowsAsync<ModbusTimeoutException>(() => client.ReadHoldingRegistersAsync(1, 0, 1, Ct));
        }
    }

    [Fact]
    public async Task Device_that_drops_the_connection_fails_the_call_then_reconnects()
    {
        // Every second request is dropped. A write caught by it fails (it may have been carried out); a read is sent again
        // once on a new connection (regression: gateways that close after each answer failed the poll's next read).
        await using var server = await PymodbusServer.StartTcpAsync(Map(), new JsonObject { ["drop_every"] = 2 });
        await using var client = Client(server.Port);
        Assert.Equal(new ushort[] { 100 }, await client.ReadHoldingRegistersAsync(1, 0, 1, Ct));
        var ex = await Assert.ThrowsAsync<ModbusCommunicationException>(() => client.WriteSingleRegisterAsync(1, 1, 5, Ct));
        Assert.IsNotType<ModbusTimeoutException>(ex);
        Assert.Contains("connection lost", ex.Message, StringComparison.Ordinal);
        Assert.Equal(new ushort[] { 300 }, await client.ReadHoldingRegistersAsync(1, 2, 1, Ct));
        Assert.Equal(new ushort[] { 100 }, await client.ReadHoldingRegistersAsync(1, 0, 1, Ct));
    }

    [Fact]
    public async Task Late_answer_to_a_timed_out_request_is_discarded_not_taken_for_the_next()
    {
        // The first answer comes after 1.5 s; the client gives up after 0.5 s.
        await using var server = await PymodbusServer.StartTcpAsync(Map(), new JsonObject { ["delay_first"] = 1.5 });
        await using var client = Client(server.Port, TimeSpan.FromMilliseconds(500));
        long stale = 0;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == ModbusMetrics.MeterName && instrument.Name == "modbus.client.responses.discarded")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            bool mine = false, isStale = false;
            foreach (var tag in tags)
            {
                mine |= tag.Key == "endpoint" && (string?)tag.Value == client.Endpoint;
                isStale |= tag.Key == "reason" && (string?)tag.Value == "stale";
            }

            if (mine && isStale)
            {
                Interlocked.Add(ref stale, value);
            }
        });
        listener.Start();
        await Assert.ThrowsAsync<ModbusTimeoutException>(() => client.ReadHoldingRegistersAsync(1, 0, 1, Ct));
        Assert.Equal(new ushort[] { 200 }, await client.ReadHoldingRegistersAsync(1, 1, 1, Ct));
        await Task.Delay(1500, Ct); // the late answer (value 100) arrives now and must be dropped
        Assert.Equal(new ushort[] { 300 }, await client.ReadHoldingRegistersAsync(1, 2, 1, Ct));
        Assert.Equal(new ushort[] { 400 }, await client.ReadHoldingRegistersAsync(1, 3, 1, Ct));
        // On a loaded machine the late answer may come later still; it must be counted as stale when it does.
        for (int i = 0; i < 100 && Interlocked.Read(ref stale) == 0; i++)
        {
            await Task.Delay(100, Ct);
        }

        Assert.Equal(1, Interlocked.Read(ref stale));
    }

    [Fact]
    public async Task Several_requests_in_flight_are_matched_by_transaction_id()
    {
        await using var server = await PymodbusServer.StartTcpAsync(Map());
        await using var client = Client(server.Port, inFlight: 4);
        var reads = Enumerable.Range(0, 40).Select(i => client.ReadHoldingRegistersAsync(1, (ushort)(i % 10), 1, Ct)).ToArray();
        var results = await Task.WhenAll(reads);
        for (int i = 0; i < results.Length; i++)
        {
            Assert.Equal((ushort)(((i % 10) + 1) * 100), results[i][0]);
        }
    }

    [Fact]
    public async Task Refused_connection_fails_fast_and_backs_off()
    {
        int port = ExternalTools.FreeTcpPort();
        await using var client = new ModbusClient(new ModbusTcpTransport(new ModbusTcpOptions
        {
            Host = "127.0.0.1",
            Port = port,
            ReconnectBackoffMin = TimeSpan.FromSeconds(30),
        }));
        var first = await Assert.ThrowsAsync<ModbusCommunicationException>(() => client.ReadHoldingRegistersAsync(1, 0, 1, Ct));
        Assert.Contains("connect failed", first.Message, StringComparison.Ordinal);
        var second = await Assert.ThrowsAsync<ModbusCommunicationException>(() => client.ReadHoldingRegistersAsync(1, 0, 1, Ct));
        Assert.Contains("next reconnect attempt", second.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Caller_cancellation_is_honoured()
    {
        await using var server = await PymodbusServer.StartTcpAsync(Map(), new JsonObject { ["silent"] = true });
        await using var client = Client(server.Port, TimeSpan.FromSeconds(60));
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(200);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.ReadHoldingRegistersAsync(1, 0, 1, cts.Token));
    }
}
