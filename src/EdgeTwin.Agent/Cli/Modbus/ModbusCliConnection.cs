using System.CommandLine;
using System.IO.Ports;
using EdgeTwin.Modbus.Client;
using EdgeTwin.Modbus.Data;
using EdgeTwin.Modbus.Protocol;
using EdgeTwin.Modbus.Transport;

namespace EdgeTwin.Agent.Cli.Modbus;

/// <summary>Exit codes of <c>edgetwin modbus</c> subcommands, for scripts.</summary>
internal static class ModbusExitCodes
{
    public const int Ok = 0;
    public const int Usage = 1;
    public const int Communication = 2;
    public const int DeviceException = 3;
    public const int Protocol = 4;
    public const int NoMatch = 5;
}

/// <summary>The connection and register options shared by <c>modbus read</c> and <c>modbus probe</c>.</summary>
internal sealed class ModbusCliConnection
{
    public Option<string?> Host { get; } = new("--host") { Description = "Modbus TCP device or gateway (host name or IP)" };

    public Option<int> Port { get; } = new("--port") { Description = "TCP port", DefaultValueFactory = _ => 502 };

    public Option<bool> RtuOverTcp { get; } = new("--rtu-over-tcp") { Description = "Send RTU frames over TCP (transparent serial gateways)" };

    public Option<string?> Serial { get; } = new("--serial") { Description = "Serial port for Modbus RTU, e.g. /dev/ttyUSB0" };

    public Option<int> Baud { get; } = new("--baud") { Description = "Serial baud rate", DefaultValueFactory = _ => 9600 };

    public Option<string> Parity { get; } = new("--parity") { Description = "Serial parity: N, E or O", DefaultValueFactory = _ => "E" };

    public Option<int> StopBits { get; } = new("--stop-bits") { Description = "Serial stop bits: 1 or 2", DefaultValueFactory = _ => 1 };

    public Option<int> Unit { get; } = new("--unit") { Description = "Unit (slave) id", DefaultValueFactory = _ => 1 };

    public Option<int> TimeoutMs { get; } = new("--timeout") { Description = "Per-request timeout in milliseconds", DefaultValueFactory = _ => 2000 };

    public Option<bool> Holding { get; } = new("--holding") { Description = "Read holding registers (FC 3; the default)" };

    public Option<bool> Input { get; } = new("--input") { Description = "Read input registers (FC 4)" };

    public Option<bool> Coils { get; } = new("--coils") { Description = "Read coils (FC 1)" };

    public Option<bool> Discrete { get; } = new("--discrete") { Description = "Read discrete inputs (FC 2)" };

    public Option<bool> Json { get; } = new("--json") { Description = "Machine-readable JSON output" };

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { Host, Port, RtuOverTcp, Serial, Baud, Parity, StopBits, Unit, TimeoutMs, Holding, Input, Coils, Discrete, Json })
        {
            command.Options.Add(option);
        }
    }

    /// <summary>Reads the table flags; null with a reason when more than one is given.</summary>
    public ModbusTable? Table(ParseResult result, out string? error)
    {
        error = null;
        var chosen = new List<ModbusTable>();
        if (result.GetValue(Holding))
        {
            chosen.Add(ModbusTable.HoldingRegisters);
        }

        if (result.GetValue(Input))
        {
            chosen.Add(ModbusTable.InputRegisters);
        }

        if (result.GetValue(Coils))
        {
            chosen.Add(ModbusTable.Coils);
        }

        if (result.GetValue(Discrete))
        {
            chosen.Add(ModbusTable.DiscreteInputs);
        }

        if (chosen.Count > 1)
        {
            error = "choose one of --holding, --input, --coils, --discrete";
            return null;
        }

        return chosen.Count == 0 ? ModbusTable.HoldingRegisters : chosen[0];
    }

    /// <summary>
    /// A <c>HOST:PORT</c> or <c>[IPv6]:PORT</c> given as <c>--host</c>, split; null for a host alone (a name, an IPv4
    /// address, an IPv6 address bare or in brackets). Before, <c>--host [fd00::6]:1502</c> was taken as an address (.NET
    /// parses a bracketed address with a port and drops the port) and the read went to port 502, another device's perhaps.
    /// </summary>
    internal static (string Host, string Port)? PortInHost(string host)
    {
        var close = host.StartsWith('[') ? host.IndexOf(']', StringComparison.Ordinal) : -1;
        var colon = close >= 0 ? (host.Length > close + 1 && host[close + 1] == ':' ? close + 1 : -1)
            : host.IndexOf(':', StringComparison.Ordinal) == host.LastIndexOf(':') ? host.IndexOf(':', StringComparison.Ordinal) : -1;
        return colon > 0 ? (host[..colon], host[(colon + 1)..]) : null;
    }

    /// <summary>Builds the client; null with a one-line reason when the options do not name one device.</summary>
    public ModbusClient? Connect(ParseResult result, out byte unit, out string? error)
    {
        error = null;
        unit = 0;
        string? host = result.GetValue(Host);
        string? serial = result.GetValue(Serial);
        int unitValue = result.GetValue(Unit);
        var timeout = TimeSpan.FromMilliseconds(Math.Max(1, result.GetValue(TimeoutMs)));
        if ((host is null) == (serial is null))
        {
            error = "give exactly one of --host HOST or --serial PATH";
            return null;
        }

        if (unitValue is < 0 or > 255)
        {
            error = $"--unit must be 0..255, got {unitValue}";
            return null;
        }

        unit = (byte)unitValue;
        if (host is not null)
        {
            int port = result.GetValue(Port);
            if (port is < 1 or > 65535)
            {
                error = $"--port must be 1..65535, got {port}";
                return null;
            }

            if (PortInHost(host) is { } given)
            {
                error = $"--host '{host}' carries a port: give the host alone and the port in --port (--host {given.Host} --port {given.Port})";
                return null;
            }

            IModbusTransport transport = result.GetValue(RtuOverTcp)
                ? new ModbusRtuTransport(new TcpRtuChannel(host, port, timeout), new ModbusRtuOptions { RequestTimeout = timeout })
                : new ModbusTcpTransport(new ModbusTcpOptions { Host = host, Port = port, RequestTimeout = timeout, ConnectTimeout = timeout });
            return new ModbusClient(transport);
        }

        if (!SerialLineOptions.TryParseParity(result.GetValue(Parity), out var parity))
        {
            error = $"--parity must be N, E or O, got {result.GetValue(Parity)}";
            return null;
        }

        var stopBits = result.GetValue(StopBits) switch
        {
            1 => System.IO.Ports.StopBits.One,
            2 => System.IO.Ports.StopBits.Two,
            _ => (StopBits?)null,
        };
        if (stopBits is null)
        {
            error = "--stop-bits must be 1 or 2";
            return null;
        }

        var line = new SerialLineOptions { PortName = serial!, BaudRate = result.GetValue(Baud), Parity = parity, StopBits = stopBits.Value };
        var channel = new SerialRtuChannel(line);
        // A unit that never answers is most often at other line settings than the ones given (or defaulted: E parity).
        NoAnswerHint = $" (sent at {channel.Settings}{(result.GetResult(Parity) is null or { Implicit: true } ? ", --parity defaults to E" : "")}: check --unit, --baud, --parity and --stop-bits against the device, and the wiring)";
        return new ModbusClient(new ModbusRtuTransport(channel, new ModbusRtuOptions { RequestTimeout = timeout }));
    }

    /// <summary>For a serial line: what to check when a unit sends no answer, with the line settings used; empty otherwise.</summary>
    public string NoAnswerHint { get; private set; } = "";

    /// <summary>One line naming what failed, and the exit code for it.</summary>
    public (int Code, string Message) Describe(Exception ex) => ex switch
    {
        ModbusTimeoutException { RequestSent: true } t => (ModbusExitCodes.Communication, $"timeout: {t.Message}{NoAnswerHint}"),
        _ => DescribeAny(ex),
    };

    /// <summary>One line naming what failed, and the exit code for it.</summary>
    public static (int Code, string Message) DescribeAny(Exception ex) => ex switch
    {
        ModbusDeviceException d => (ModbusExitCodes.DeviceException,
            $"device exception {(byte)d.ExceptionCode} {ModbusExceptionNames.Name(d.ExceptionCode)} (unit {d.UnitId}, {d.FunctionCode})"),
        ModbusTimeoutException t => (ModbusExitCodes.Communication, $"timeout: {t.Message}"),
        ModbusCommunicationException c => (ModbusExitCodes.Communication, $"communication failed: {c.Message}"),
        ModbusProtocolException p => (ModbusExitCodes.Protocol, $"protocol error: {p.Message}"),
        _ => (ModbusExitCodes.Communication, ex.Message),
    };

    public static bool TryParseAddress(string text, out int address) =>
        int.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out address)
        || (text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            && int.TryParse(text.AsSpan(2), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out address));

    public static string Format(double value) =>
        value.ToString("R", System.Globalization.CultureInfo.InvariantCulture);

    public static ModbusDataType[] ProbeTypes { get; } =
    [
        ModbusDataType.Int16, ModbusDataType.UInt16, ModbusDataType.Int32, ModbusDataType.UInt32,
        ModbusDataType.Float32, ModbusDataType.Int64, ModbusDataType.UInt64, ModbusDataType.Float64,
    ];
}
