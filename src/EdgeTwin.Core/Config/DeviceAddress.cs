using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;

namespace EdgeTwin.Core.Config;

/// <summary>How a device is reached; the first part of an address string.</summary>
public enum AddressScheme
{
    /// <summary><c>udp:HOST[:PORT]</c> — SNMP over UDP/IPv4 or a host name (default port 161).</summary>
    Udp,
    /// <summary><c>udp6:[ADDR][:PORT]</c> — SNMP over UDP/IPv6 (default port 161).</summary>
    Udp6,
    /// <summary><c>tcp:HOST[:PORT]</c> — Modbus TCP (default port 502).</summary>
    Tcp,
    /// <summary><c>rtu:/dev/ttyUSB0</c> — Modbus RTU on a serial line.</summary>
    Rtu,
    /// <summary><c>rtutcp:HOST:PORT</c> — Modbus RTU frames through a TCP serial gateway.</summary>
    RtuTcp,
    /// <summary><c>w1:28-0316a2795cff</c> — a 1-Wire device by its id.</summary>
    OneWire,
    /// <summary><c>i2c:BUS:ADDRESS</c> — an I2C device, e.g. <c>i2c:1:0x76</c>.</summary>
    I2c,
    /// <summary><c>gpio:PIN</c> — a GPIO line (BCM numbering).</summary>
    Gpio,
    /// <summary><c>cpu</c> or <c>cpu:/sys/class/thermal/thermal_zone0/temp</c> — the gateway's own CPU.</summary>
    Cpu,
    /// <summary><c>host</c> — the gateway itself: clock, file systems, memory, load (the <c>host</c> sensor driver).</summary>
    Host,
}

/// <summary>
/// A parsed device address. Which properties are set depends on <see cref="Scheme"/>:
/// network schemes set <see cref="Host"/> and <see cref="Port"/>; <c>rtu</c> and <c>cpu</c> set <see cref="Path"/>;
/// <c>w1</c> sets <see cref="Path"/> to the 1-Wire id; <c>i2c</c> sets <see cref="Bus"/> and <see cref="I2cAddress"/>;
/// <c>gpio</c> sets <see cref="Pin"/>.
/// </summary>
public sealed partial record DeviceAddress
{
    /// <summary>Default SNMP agent port.</summary>
    public const int SnmpPort = 161;

    /// <summary>Default Modbus TCP port.</summary>
    public const int ModbusPort = 502;

    /// <summary>The default <c>cpu</c> temperature file.</summary>
    public const string DefaultCpuThermalPath = "/sys/class/thermal/thermal_zone0/temp";

    private DeviceAddress(AddressScheme scheme)
    {
        Scheme = scheme;
    }

    /// <summary>The scheme.</summary>
    public AddressScheme Scheme { get; }

    /// <summary>Host name or IP literal (without brackets) for udp/udp6/tcp/rtutcp.</summary>
    public string? Host { get; private init; }

    /// <summary>Port for udp/udp6/tcp/rtutcp (defaults applied).</summary>
    public int? Port { get; private init; }

    /// <summary>Serial device for rtu, 1-Wire id for w1, thermal file for cpu.</summary>
    public string? Path { get; private init; }

    /// <summary>I2C bus number.</summary>
    public int? Bus { get; private init; }

    /// <summary>7-bit I2C address.</summary>
    public int? I2cAddress { get; private init; }

    /// <summary>GPIO pin (BCM numbering).</summary>
    public int? Pin { get; private init; }

    /// <summary>True for schemes reached over an IP network.</summary>
    public bool IsNetwork => Scheme is AddressScheme.Udp or AddressScheme.Udp6 or AddressScheme.Tcp or AddressScheme.RtuTcp;

    /// <summary>Builds a <c>udp:</c> (or <c>udp6:</c> for IPv6 literals) address.</summary>
    public static DeviceAddress Udp(string host, int port = SnmpPort) =>
        Network(IPAddress.TryParse(host, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? AddressScheme.Udp6 : AddressScheme.Udp, host, port);

    /// <summary>Builds a <c>tcp:</c> address.</summary>
    public static DeviceAddress Tcp(string host, int port = ModbusPort) => Network(AddressScheme.Tcp, host, port);

    /// <summary>Builds an <c>rtutcp:</c> address.</summary>
    public static DeviceAddress RtuTcp(string host, int port) => Network(AddressScheme.RtuTcp, host, port);

    /// <summary>Builds an <c>rtu:</c> address.</summary>
    public static DeviceAddress Rtu(string serialDevice)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(serialDevice);
        return new DeviceAddress(AddressScheme.Rtu) { Path = serialDevice };
    }

    /// <summary>Builds a <c>w1:</c> address.</summary>
    public static DeviceAddress OneWire(string id) =>
        TryParse("w1:" + id, out var a, out var error) ? a : throw new ArgumentException(error, nameof(id));

    /// <summary>Builds an <c>i2c:</c> address.</summary>
    public static DeviceAddress I2c(int bus, int address) =>
        TryParse(string.Create(CultureInfo.InvariantCulture, $"i2c:{bus}:0x{address:x2}"), out var a, out var error) ? a : throw new ArgumentException(error, nameof(address));

    /// <summary>Builds a <c>gpio:</c> address.</summary>
    public static DeviceAddress Gpio(int pin) =>
        TryParse(string.Create(CultureInfo.InvariantCulture, $"gpio:{pin}"), out var a, out var error) ? a : throw new ArgumentException(error, nameof(pin));

    /// <summary>Builds a <c>cpu</c> address.</summary>
    public static DeviceAddress Cpu(string? thermalPath = null) => new(AddressScheme.Cpu) { Path = thermalPath ?? DefaultCpuThermalPath };

    /// <summary>The <c>host</c> address: the gateway this agent runs on.</summary>
    public static DeviceAddress Gateway { get; } = new(AddressScheme.Host);

    /// <summary>Parses an address string.</summary>
    /// <exception cref="FormatException">The string is not a valid address; the message says why.</exception>
    public static DeviceAddress Parse(string text) =>
        TryParse(text, out var address, out var error) ? address : throw new FormatException(error);

    /// <summary>Parses an address string; on failure <paramref name="error"/> says why.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out DeviceAddress? address, [NotNullWhen(false)] out string? error)
    {
        address = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "address is empty";
            return false;
        }

        text = text.Trim();
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        var scheme = colon < 0 ? text : text[..colon];
        var rest = colon < 0 ? string.Empty : text[(colon + 1)..];
        switch (scheme.ToLowerInvariant())
        {
            case "udp":
                return TryParseHostPort(AddressScheme.Udp, rest, SnmpPort, out address, out error);
            case "udp6":
                return TryParseHostPort(AddressScheme.Udp6, rest, SnmpPort, out address, out error);
            case "tcp":
                return TryParseHostPort(AddressScheme.Tcp, rest, ModbusPort, out address, out error);
            case "rtutcp":
                return TryParseHostPort(AddressScheme.RtuTcp, rest, null, out address, out error);
            case "rtu":
                if (rest.Length == 0)
                {
                    error = "rtu: needs a serial device, e.g. rtu:/dev/ttyUSB0";
                    return false;
                }

                address = new DeviceAddress(AddressScheme.Rtu) { Path = rest };
                error = null;
                return true;
            case "w1":
                if (!OneWireId().IsMatch(rest))
                {
                    error = $"'{rest}' is not a 1-Wire id (family-serial in hex, e.g. w1:28-0316a2795cff)";
                    return false;
                }

                address = new DeviceAddress(AddressScheme.OneWire) { Path = rest.ToLowerInvariant() };
                error = null;
                return true;
            case "i2c":
                return TryParseI2c(rest, out address, out error);
            case "gpio":
                if (!int.TryParse(rest, NumberStyles.None, CultureInfo.InvariantCulture, out var pin) || pin > 1023)
                {
                    error = $"'{rest}' is not a GPIO pin number (gpio:17)";
                    return false;
                }

                address = new DeviceAddress(AddressScheme.Gpio) { Pin = pin };
                error = null;
                return true;
            case "cpu":
                address = Cpu(rest.Length == 0 ? null : rest);
                error = null;
                return true;
            case "host":
                if (rest.Length > 0)
                {
                    // The watched file systems are the outbox's and the profile's `paths` parameter, not part of the address.
                    error = $"host takes nothing after it (got 'host:{rest}'); extra file systems go in the profile's sensor parameters: {{ paths: ... }}";
                    return false;
                }

                address = Gateway;
                error = null;
                return true;
            default:
                error = $"unknown address scheme '{scheme}' (expected udp, udp6, tcp, rtu, rtutcp, w1, i2c, gpio, cpu or host)";
                return false;
        }
    }

    /// <summary>The canonical address string, which <see cref="Parse"/> reads back to an equal address.</summary>
    public override string ToString() => Scheme switch
    {
        AddressScheme.Udp => FormattableString.Invariant($"udp:{HostText}:{Port}"),
        AddressScheme.Udp6 => FormattableString.Invariant($"udp6:[{Host}]:{Port}"),
        AddressScheme.Tcp => FormattableString.Invariant($"tcp:{HostText}:{Port}"),
        AddressScheme.RtuTcp => FormattableString.Invariant($"rtutcp:{HostText}:{Port}"),
        AddressScheme.Rtu => "rtu:" + Path,
        AddressScheme.OneWire => "w1:" + Path,
        AddressScheme.I2c => FormattableString.Invariant($"i2c:{Bus}:0x{I2cAddress:x2}"),
        AddressScheme.Gpio => FormattableString.Invariant($"gpio:{Pin}"),
        AddressScheme.Cpu => Path == DefaultCpuThermalPath ? "cpu" : "cpu:" + Path,
        AddressScheme.Host => "host",
        _ => Scheme.ToString(),
    };

    /// <summary>An <see cref="IPEndPoint"/> when <see cref="Host"/> is an IP literal, else null (resolve the name first).</summary>
    public IPEndPoint? TryGetIPEndPoint() =>
        IsNetwork && Host is not null && IPAddress.TryParse(Host, out var ip) ? new IPEndPoint(ip, Port!.Value) : null;

    private string? HostText => Host is not null && Host.Contains(':', StringComparison.Ordinal) ? "[" + Host + "]" : Host;

    private static DeviceAddress Network(AddressScheme scheme, string host, int port)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(host);
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        return new DeviceAddress(scheme) { Host = host.Trim('[', ']'), Port = port };
    }

    private static bool TryParseHostPort(AddressScheme scheme, string rest, int? defaultPort, [NotNullWhen(true)] out DeviceAddress? address, [NotNullWhen(false)] out string? error)
    {
        address = null;
        var name = scheme switch
        {
            AddressScheme.Udp6 => "udp6",
            AddressScheme.RtuTcp => "rtutcp",
            _ => scheme.ToString().ToLowerInvariant(),
        };
        if (scheme == AddressScheme.Udp6 && !rest.StartsWith('['))
        {
            error = "udp6: the IPv6 address goes in brackets, e.g. udp6:[2001:db8::1]:161";
            return false;
        }

        switch (HostPort.Split(rest, out var host, out var portText, out var bracketed))
        {
            case HostPort.Problem.UnclosedBracket:
                error = $"{name}: missing ']' after the IPv6 address";
                return false;
            case HostPort.Problem.JunkAfterBracket:
                error = $"{name}: expected ':PORT' after ']'";
                return false;
            case HostPort.Problem.UnbracketedIPv6:
                error = $"{name}: an IPv6 address goes in brackets, e.g. {name}:[::1]:{defaultPort ?? 502}";
                return false;
        }

        IPAddress? ip6 = null;
        if (bracketed && (!IPAddress.TryParse(host, out ip6) || ip6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6))
        {
            error = $"{name}: '{host}' is not an IPv6 address";
            return false;
        }

        // A link-local address is ambiguous without its interface: every send to it fails (EINVAL) for as long as the agent
        // runs. An interface name the machine does not have parses to the same unusable address, silently.
        if (ip6 is { IsIPv6LinkLocal: true, ScopeId: 0 })
        {
            var percent = host.IndexOf('%', StringComparison.Ordinal);
            error = percent < 0
                ? $"{name}: '{host}' is a link-local address, which needs the interface it is reached on: [{host}%eth0] (the name as `ip link` shows it)"
                : $"{name}: '{host}': this machine has no network interface '{host[(percent + 1)..]}' (`ip link` lists them)";
            return false;
        }

        // All digits and dots is an IPv4 address or nothing (the host-name pattern took 192.168.1.300 and 127.0.0.1.5).
        if (host.Length > 0 && host.AsSpan().IndexOfAnyExcept(DigitsAndDots) < 0 && !IsDottedQuad(host))
        {
            error = $"{name}: '{host}' is not an IPv4 address (four numbers 0-255, e.g. 192.168.1.30)";
            return false;
        }

        if (host.Length == 0 || !HostName().IsMatch(host) && !IPAddress.TryParse(host, out _))
        {
            error = host.Length == 0 ? $"{name}: missing host" : $"{name}: '{host}' is not a host name or IP address";
            return false;
        }

        int port;
        if (portText is null)
        {
            if (defaultPort is null)
            {
                error = $"{name}: missing port ({name}:HOST:PORT)";
                return false;
            }

            port = defaultPort.Value;
        }
        else if (!HostPort.TryParsePort(portText, out port))
        {
            error = $"{name}: '{portText}' is not a port (1-65535)";
            return false;
        }

        address = new DeviceAddress(scheme) { Host = host, Port = port };
        error = null;
        return true;
    }

    private static readonly System.Buffers.SearchValues<char> DigitsAndDots = System.Buffers.SearchValues.Create("0123456789.");

    private static bool IsDottedQuad(string host)
    {
        var parts = host.Split('.');
        return parts.Length == 4 && parts.All(p => p.Length is > 0 and <= 3 && int.Parse(p, CultureInfo.InvariantCulture) <= 255);
    }

    private static bool TryParseI2c(string rest, [NotNullWhen(true)] out DeviceAddress? address, [NotNullWhen(false)] out string? error)
    {
        address = null;
        var parts = rest.Split(':');
        if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var bus))
        {
            error = $"'{rest}' is not BUS:ADDRESS (i2c:1:0x76)";
            return false;
        }

        var a = parts[1];
        var ok = a.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? int.TryParse(a.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value)
            : int.TryParse(a, NumberStyles.None, CultureInfo.InvariantCulture, out value);
        if (!ok || value is < 0x03 or > 0x77)
        {
            // Some datasheets print the 8-bit form (address << 1, the R/W bit appended): BME280 0xEC is 0x76.
            error = ok && value is > 0x77 and <= 0xFF
                ? string.Create(CultureInfo.InvariantCulture, $"'{a}' is not a 7-bit I2C address (0x03-0x77); it looks like the 8-bit form some datasheets print (address << 1): the 7-bit address is 0x{value >> 1:x2}, as i2cdetect shows it")
                : $"'{a}' is not a 7-bit I2C address (0x03-0x77)";
            return false;
        }

        address = new DeviceAddress(AddressScheme.I2c) { Bus = bus, I2cAddress = value };
        error = null;
        return true;
    }

    [GeneratedRegex("^[0-9a-fA-F]{2}-[0-9a-fA-F]{12}$")]
    private static partial Regex OneWireId();

    [GeneratedRegex(@"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")]
    private static partial Regex HostName();
}
