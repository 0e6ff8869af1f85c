using System.Diagnostics;
using System.IO.Ports;
using System.Text.Json;
using EdgeTwin.Modbus.Data;
using EdgeTwin.Modbus.Protocol;
using EdgeTwin.Modbus.Server;
using EdgeTwin.Modbus.Transport;
using EdgeTwin.IntegrationTests.Agent;

namespace EdgeTwin.IntegrationTests.Modbus;

/// <summary>Runs the real <c>edgetwin modbus</c> executable against our Modbus server on a random port.</summary>
public sealed class ModbusCliTests : IAsyncLifetime
{
    private static readonly ModbusPoint Voltage = new(ModbusTable.HoldingRegisters, 99, ModbusDataType.Float32) { Order = ModbusWordOrder.CDAB };
    private static readonly string[] SocatPaths = ["/usr/bin/socat", "/bin/socat"];
    private static readonly string[] SerialLines = ["0 = 11", "1 = 22"];
    private ModbusTcpServer? _server;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private int Port => _server!.LocalEndPoint.Port;

    public async ValueTask InitializeAsync()
    {
        var map = new ModbusRegisterMap()
            .AddRange(ModbusTable.HoldingRegisters, 0, 10)
            .AddRange(ModbusTable.HoldingRegisters, 90, 20)
            .AddRange(ModbusTable.Coils, 0, 8)
            .AddRange(ModbusTable.HoldingRegisters, 1000, 300);
        map.SetRegisters(ModbusTable.HoldingRegisters, 1000, Enumerable.Range(0, 300).Select(i => (ushort)i).ToArray());
        map.SetRegisters(ModbusTable.HoldingRegisters, 0, [100, 200, 65535]);
        map.SetValue(Voltage, 230.5);
        map.SetString(new ModbusPoint(ModbusTable.HoldingRegisters, 4, ModbusDataType.Ascii) { StringRegisters = 3 }, "PM-1");
        map.SetBit(ModbusTable.Coils, 1, true);
        map.SetRegister(ModbusTable.HoldingRegisters, 109, 4242);
        var units = new ModbusServerUnits();
        units.Add(1, map);
        _server = new ModbusTcpServer(units);
        await _server.StartAsync(Ct);
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }


    [Fact]
    public async Task Read_prints_one_line_per_value()
    {
        var (code, output, err) = await AgentProcess.RunCliAsync("modbus", "read", "--host", "127.0.0.1", "--port", $"{Port}", "--holding", "0", "--count", "3");
        Assert.True(code == 0, err);
        Assert.Equal(["0 = 100", "1 = 200", "2 = 65535"], output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

        (code, output, err) = await AgentProcess.RunCliAsync("modbus", "read", "--host", "127.0.0.1", "--port", $"{Port}", "2", "--type", "int16");
        Assert.True(code == 0, err);
        Assert.Equal("2 = -1", output.Trim());
    }

    [Fact]
    public async Task Read_decodes_types_orders_strings_and_bits()
    {
        var (code, output, err) = await AgentProcess.RunCliAsync("modbus", "read", "--host", "127.0.0.1", "--port", $"{Port}", "--holding", "100", "--one-based", "--type", "float32", "--order", "CDAB");
        Assert.True(code == 0, err);
        Assert.Equal("100 = 230.5", output.Trim());

        (code, output, err) = await AgentProcess.RunCliAsync("modbus", "read", "--host", "127.0.0.1", "--port", $"{Port}", "4", "--type", "string", "--count", "3");
        Assert.True(code == 0, err);
        Assert.Equal("4 = PM-1", output.Trim());

        (code, output, err) = await AgentProcess.RunCliAsync("modbus", "read", "--host", "127.0.0.1", "--port", $"{Port}", "--coils", "0", "--count", "3");
        Assert.True(code == 0, err);
        Assert.Equal(["0 = 0", "1 = 1", "2 = 0"], output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    [Fact]
    public async Task Read_json_for_scripts()
    {
        var (code, output, err) = await AgentProcess.RunCliAsync("modbus", "read", "--host", "127.0.0.1", "--port", $"{Port}", "0", "--count", "2", "--json");
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(output);
        var values = doc.RootElement.GetProperty("values");
        Assert.Equal(2, values.GetArrayLength());
        Assert.Equal(200, values[1].GetProperty("value").GetDouble());
        Assert.Equal(1, doc.RootElement.GetProperty("unit").GetInt32());
    }

    [Fact]
    public async Task Failures_exit_non_zero_with_one_line_naming_the_reason()
    {
        var (code, _, err) = await AgentProcess.RunCliAsync("modbus", "read", "--host", "127.0.0.1", "--port", $"{Port}", "50");
        Assert.Equal(3, code);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Contains("ILLEGAL DATA ADDRESS", err, StringComparison.Ordinal);

        (code, _, err) = await AgentProcess.RunCliAsync("modbus", "read", "--host", "127.0.0.1", "--port", $"{Port}", "--unit", "9", "--timeout", "300", "0");
        Assert.Equal(2, code);
        Assert.Contains("timeout", err, StringComparison.Ordinal);

        int closed = TestPorts.FreeTcp();
        (code, _, err) = await AgentProcess.RunCliAsync("modbus", "read", "--host", "127.0.0.1", "--port", $"{closed}", "0");
        Assert.Equal(2, code);
        Assert.Contains("connect failed", err, StringComparison.Ordinal);

        (code, _, err) = await AgentProcess.RunCliAsync("modbus", "read", "--host", "127.0.0.1", "--serial", "/dev/ttyS0", "0");
        Assert.Equal(1, code);
        Assert.Contains("exactly one of --host", err, StringComparison.Ordinal);

        (code, _, err) = await AgentProcess.RunCliAsync("modbus", "read", "--host", "127.0.0.1", "0", "--order", "ABDC");
        Assert.Equal(1, code);
        Assert.Contains("--order", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Probe_finds_type_order_and_one_based_addressing()
    {
        var (code, output, err) = await AgentProcess.RunCliAsync("modbus", "probe", "--host", "127.0.0.1", "--port", $"{Port}", "100", "--expect", "200..250");
        Assert.True(code == 0, err);
        Assert.Contains("float32  CDAB 1-based (wire address 99) = 230.5", output, StringComparison.Ordinal);
        // Neighbouring decodings may also land in range (float32 ABCD at 100 reads 230.0): the probe lists every one.
        Assert.Contains("float32  ABCD 0-based (wire address 100) = 230\n", output, StringComparison.Ordinal);

        (code, output, err) = await AgentProcess.RunCliAsync("modbus", "probe", "--host", "127.0.0.1", "--port", $"{Port}", "100", "--expect", "200..250", "--json");
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(output);
        Assert.Contains(doc.RootElement.GetProperty("matches").EnumerateArray(),
            m => m.GetProperty("type").GetString() == "float32" && m.GetProperty("order").GetString() == "CDAB" && m.GetProperty("addressing").GetString() == "1-based");

        (code, _, err) = await AgentProcess.RunCliAsync("modbus", "probe", "--host", "127.0.0.1", "--port", $"{Port}", "100", "--expect", "1e30..2e30");
        Assert.Equal(5, code);
        Assert.Contains("registers read", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_modbus_read_scale_printed_123456_7_as_123456_70000000001()
    {
        // A profile with scale 0.1 divides by 10 (ProfileMetric.Convert); the CLI multiplied, so the tool used to
        // design a profile showed another number than the profile would produce.
        var map = new ModbusRegisterMap().AddRange(ModbusTable.HoldingRegisters, 0, 20);
        map.SetValue(new ModbusPoint(ModbusTable.HoldingRegisters, 10, ModbusDataType.Int32) { Order = ModbusWordOrder.CDAB }, 1234567);
        var units = new ModbusServerUnits();
        units.Add(3, map);
        await using var server = new ModbusTcpServer(units);
        await server.StartAsync(Ct);
        var port = $"{server.LocalEndPoint.Port}";

        var (code, output, err) = await AgentProcess.RunCliAsync("modbus", "read", "10", "--host", "127.0.0.1", "--port", port, "--unit", "3", "--type", "int32", "--order", "CDAB", "--scale", "0.1");
        Assert.True(code == 0, err);
        Assert.Equal("10 = 123456.7", output.Trim());

        (code, output, err) = await AgentProcess.RunCliAsync("modbus", "probe", "10", "--host", "127.0.0.1", "--port", port, "--unit", "3", "--expect", "100000..200000", "--scales", "1,0.1");
        Assert.True(code == 0, err);
        Assert.Contains("int32    CDAB 0-based (wire address 10) scale 0.1 = 123456.7\n", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Probe_on_a_map_edge_reads_register_by_register()
    {
        // Registers 90..109 exist; the window around 109 runs past the end, so the probe falls back to single reads.
        var (code, output, err) = await AgentProcess.RunCliAsync("modbus", "probe", "--host", "127.0.0.1", "--port", $"{Port}", "109", "--expect", "4242..4242");
        Assert.True(code == 0, err);
        Assert.Contains("uint16   ABCD 0-based (wire address 109) = 4242", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_modbus_read_of_more_than_125_registers_was_refused_instead_of_split()
    {
        // Dumping a drive's parameter group of 300 registers took three commands ("one read allows 1..125"); the read
        // is split now, each part a whole number of values (float32: 62 values, 124 registers, per read).
        var (code, output, err) = await AgentProcess.RunCliAsync("modbus", "read", "--host", "127.0.0.1", "--port", $"{Port}", "--holding", "1000", "--count", "300");
        Assert.True(code == 0, err);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(Enumerable.Range(0, 300).Select(i => $"{1000 + i} = {i}"), lines);

        (code, output, err) = await AgentProcess.RunCliAsync("modbus", "read", "--host", "127.0.0.1", "--port", $"{Port}", "--holding", "1000", "--count", "150", "--type", "uint32");
        Assert.True(code == 0, err);
        lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(150, lines.Length);
        Assert.Equal($"{1000 + 124} = {(124L << 16) | 125}", lines[62]);

        // A part the device refuses names which part and where.
        (code, _, err) = await AgentProcess.RunCliAsync("modbus", "read", "--host", "127.0.0.1", "--port", $"{Port}", "--holding", "1100", "--count", "250");
        Assert.Equal(3, code);
        Assert.Contains("read 2 of 2 (125 at wire address 1225): device exception 2 ILLEGAL DATA ADDRESS", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_modbus_read_over_rtu_timed_out_without_saying_which_line_settings_it_used()
    {
        // A meter at 9600 8N1 read without --parity (the default is E) drops every frame at its parity check: the CLI
        // said only "timeout: … no answer …". It says now at what it sent and what to check.
        await using var pty = await EdgeTwin.Modbus.Tests.Peers.SocatPtyPair.StartAsync();
        var map = new ModbusRegisterMap().AddRange(ModbusTable.InputRegisters, 0, 4);
        var units = new ModbusServerUnits();
        units.Add(3, map);
        await using var server = new ModbusRtuServer(units, new SerialRtuChannel(new SerialLineOptions { PortName = pty.A, BaudRate = 19200, Parity = Parity.Even }));
        await server.StartAsync(Ct);
        var (code, _, err) = await AgentProcess.RunCliAsync("modbus", "read", "--serial", pty.B, "--baud", "19200", "--unit", "9", "--timeout", "300", "--input", "0");
        Assert.Equal(2, code);
        Assert.EndsWith(
            $"unit 9: no answer to ReadInputRegisters at 0 within 0.3 s (sent at 19200 8E1, --parity defaults to E: check --unit, --baud, --parity and --stop-bits against the device, and the wiring)",
            err.Trim(),
            StringComparison.Ordinal);

        (code, _, err) = await AgentProcess.RunCliAsync("modbus", "read", "--serial", pty.B, "--baud", "19200", "--parity", "N", "--unit", "9", "--timeout", "300", "--input", "0");
        Assert.Equal(2, code);
        Assert.EndsWith("(sent at 19200 8N1: check --unit, --baud, --parity and --stop-bits against the device, and the wiring)", err.Trim(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Read_over_serial_rtu()
    {
        var socat = SocatPaths.FirstOrDefault(File.Exists);
        if (socat is null)
        {
            Assert.Skip("socat not installed (Debian socat)");
        }

        var dir = Directory.CreateTempSubdirectory("edgetwin-pty-");
        var a = Path.Combine(dir.FullName, "A");
        var b = Path.Combine(dir.FullName, "B");
        using var pair = Process.Start(new ProcessStartInfo(socat!, ["-d", "-d", $"pty,raw,echo=0,link={a}", $"pty,raw,echo=0,link={b}"])
        {
            RedirectStandardError = true,
            UseShellExecute = false,
        })!;
        try
        {
            for (int i = 0; i < 200 && !(File.Exists(a) && File.Exists(b)); i++)
            {
                await Task.Delay(50, Ct);
            }

            var map = new ModbusRegisterMap().AddRange(ModbusTable.InputRegisters, 0, 4);
            map.SetRegisters(ModbusTable.InputRegisters, 0, [11, 22]);
            var units = new ModbusServerUnits();
            units.Add(3, map);
            await using var server = new ModbusRtuServer(units, new SerialRtuChannel(new SerialLineOptions { PortName = a, BaudRate = 19200, Parity = Parity.Even }));
            await server.StartAsync(Ct);
            var (code, output, err) = await AgentProcess.RunCliAsync("modbus", "read", "--serial", b, "--baud", "19200", "--parity", "E", "--unit", "3", "--input", "0", "--count", "2");
            Assert.True(code == 0, err);
            Assert.Equal(SerialLines, output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        }
        finally
        {
            pair.Kill(entireProcessTree: true);
            await pair.WaitForExitAsync(CancellationToken.None);
            dir.Delete(recursive: true);
        }
    }
}
