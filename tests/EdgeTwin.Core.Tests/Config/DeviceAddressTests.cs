using EdgeTwin.Core.Config;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace EdgeTwin.Core.Tests.Config;

public sealed class DeviceAddressTests
{
    [Theory]
    [InlineData("udp:10.0.0.5", AddressScheme.Udp, "10.0.0.5", 161, "udp:10.0.0.5:161")]
    [InlineData("udp:pdu-a01.dc1.example:16100", AddressScheme.Udp, "pdu-a01.dc1.example", 16100, "udp:pdu-a01.dc1.example:16100")]
    [InlineData("udp6:[2001:db8::1]:1161", AddressScheme.Udp6, "2001:db8::1", 1161, "udp6:[2001:db8::1]:1161")]
    [InlineData("udp6:[fe80::1%lo]:1161", AddressScheme.Udp6, "fe80::1%lo", 1161, "udp6:[fe80::1%lo]:1161")]
    [InlineData("udp6:[::1]", AddressScheme.Udp6, "::1", 161, "udp6:[::1]:161")]
    [InlineData("udp:[::1]:1161", AddressScheme.Udp, "::1", 1161, "udp:[::1]:1161")] // printed udp:::1:1161, which does not parse
    [InlineData("tcp:192.168.1.20", AddressScheme.Tcp, "192.168.1.20", 502, "tcp:192.168.1.20:502")]
    [InlineData("tcp:[::1]:1502", AddressScheme.Tcp, "::1", 1502, "tcp:[::1]:1502")]
    [InlineData("rtutcp:gw.local:4001", AddressScheme.RtuTcp, "gw.local", 4001, "rtutcp:gw.local:4001")]
    public void Network_addresses(string text, AddressScheme scheme, string host, int port, string canonical)
    {
        var a = DeviceAddress.Parse(text);
        Assert.Equal((scheme, host, port), (a.Scheme, a.Host, a.Port!.Value));
        Assert.Equal(canonical, a.ToString());
        Assert.True(a.IsNetwork);
    }

    [Fact]
    public void Local_addresses()
    {
        Assert.Equal("/dev/ttyUSB0", DeviceAddress.Parse("rtu:/dev/ttyUSB0").Path);
        Assert.Equal("28-0316a2795cff", DeviceAddress.Parse("w1:28-0316A2795CFF").Path);
        var i2c = DeviceAddress.Parse("i2c:1:0x76");
        Assert.Equal((1, 0x76, "i2c:1:0x76"), (i2c.Bus!.Value, i2c.I2cAddress!.Value, i2c.ToString()));
        Assert.Equal(0x44, DeviceAddress.Parse("i2c:0:68").I2cAddress);
        Assert.Equal(17, DeviceAddress.Parse("gpio:17").Pin);
        Assert.Equal(DeviceAddress.DefaultCpuThermalPath, DeviceAddress.Parse("cpu").Path);
        Assert.Equal("cpu:/sys/class/thermal/thermal_zone2/temp", DeviceAddress.Parse("cpu:/sys/class/thermal/thermal_zone2/temp").ToString());
        Assert.Null(DeviceAddress.Parse("gpio:17").TryGetIPEndPoint());
        Assert.Equal("127.0.0.1:16100", DeviceAddress.Parse("udp:127.0.0.1:16100").TryGetIPEndPoint()!.ToString());
    }

    [Fact]
    public void Host_is_the_gateway_itself_and_takes_no_path()
    {
        var host = DeviceAddress.Parse("host");
        Assert.Equal((AddressScheme.Host, "host"), (host.Scheme, host.ToString()));
        Assert.False(DeviceAddress.TryParse("host:/var/log", out _, out var error));
        Assert.Contains("paths", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", "address is empty")]
    [InlineData("snmp:10.0.0.1", "unknown address scheme 'snmp' (expected udp, udp6, tcp, rtu, rtutcp, w1, i2c, gpio, cpu or host)")]
    [InlineData("udp:", "udp: missing host")]
    [InlineData("udp:10.0.0.1:0", "udp: '0' is not a port (1-65535)")]
    [InlineData("udp:::1", "udp: an IPv6 address goes in brackets, e.g. udp:[::1]:161")]
    [InlineData("udp6:::1", "udp6: the IPv6 address goes in brackets, e.g. udp6:[2001:db8::1]:161")]
    [InlineData("udp6:[10.0.0.1]:161", "udp6: '10.0.0.1' is not an IPv6 address")]
    [InlineData("tcp:bad_host:502", "tcp: 'bad_host' is not a host name or IP address")]
    [InlineData("rtutcp:gw.local", "rtutcp: missing port (rtutcp:HOST:PORT)")]
    [InlineData("rtu:", "rtu: needs a serial device, e.g. rtu:/dev/ttyUSB0")]
    [InlineData("w1:28-xyz", "'28-xyz' is not a 1-Wire id (family-serial in hex, e.g. w1:28-0316a2795cff)")]
    [InlineData("i2c:1:0x80", "'0x80' is not a 7-bit I2C address (0x03-0x77); it looks like the 8-bit form some datasheets print (address << 1): the 7-bit address is 0x40, as i2cdetect shows it")]
    [InlineData("i2c:1:0x100", "'0x100' is not a 7-bit I2C address (0x03-0x77)")]
    [InlineData("i2c:0x76", "'0x76' is not BUS:ADDRESS (i2c:1:0x76)")]
    [InlineData("gpio:GPIO17", "'GPIO17' is not a GPIO pin number (gpio:17)")]
    [InlineData("udp:192.168.1.300", "udp: '192.168.1.300' is not an IPv4 address (four numbers 0-255, e.g. 192.168.1.30)")] // was taken as a host name
    [InlineData("udp:127.0.0.1.5", "udp: '127.0.0.1.5' is not an IPv4 address (four numbers 0-255, e.g. 192.168.1.30)")]
    [InlineData("tcp:10.1:502", "tcp: '10.1' is not an IPv4 address (four numbers 0-255, e.g. 192.168.1.30)")]
    public void Malformed_addresses_say_why(string text, string error)
    {
        Assert.False(DeviceAddress.TryParse(text, out _, out var message));
        Assert.Equal(error, message);
        Assert.Equal(error, Assert.Throws<FormatException>(() => DeviceAddress.Parse(text)).Message);
    }

    /// <summary>
    /// A link-local device address without its interface passed the config and failed every poll for as long as the agent
    /// ran (sendto: EINVAL); a misspelt interface name parsed to the same unusable address without a word.
    /// </summary>
    [Theory]
    [InlineData("udp6:[fe80::1]:161", "udp6: 'fe80::1' is a link-local address, which needs the interface it is reached on: [fe80::1%eth0] (the name as `ip link` shows it)")]
    [InlineData("tcp:[fe80::10]:502", "tcp: 'fe80::10' is a link-local address, which needs the interface it is reached on: [fe80::10%eth0] (the name as `ip link` shows it)")]
    [InlineData("udp6:[fe80::1%nosuch0]:161", "udp6: 'fe80::1%nosuch0': this machine has no network interface 'nosuch0' (`ip link` lists them)")]
    public void Regression_a_link_local_address_without_its_interface_was_accepted_and_never_reached(string text, string error)
    {
        Assert.False(DeviceAddress.TryParse(text, out _, out var message));
        Assert.Equal(error, message);
        Assert.True(DeviceAddress.TryParse("udp6:[fe80::1%lo]:161", out var withZone, out _));
        Assert.Equal(1, System.Net.IPAddress.Parse(withZone.Host!).ScopeId);
    }

    [Property]
    public bool Ipv4_addresses_round_trip(byte a, byte b, byte c, byte d, ushort port)
    {
        var p = port == 0 ? 1 : port;
        var address = DeviceAddress.Udp($"{a}.{b}.{c}.{d}", p);
        var reparsed = DeviceAddress.Parse(address.ToString());
        return reparsed == address && reparsed.Port == p;
    }

    [Property]
    public Property Every_scheme_round_trips_through_its_canonical_text()
    {
        var gen = Gen.OneOf(
            Gen.Choose(1, 65535).Select(p => DeviceAddress.Tcp("10.1.2.3", p)),
            Gen.Choose(1, 65535).Select(p => DeviceAddress.RtuTcp("gw-1.site.example", p)),
            Gen.Choose(0, 1023).Select(DeviceAddress.Gpio),
            Gen.Choose(0x03, 0x77).Select(x => DeviceAddress.I2c(x % 8, x)),
            Gen.Choose(0, int.MaxValue).Select(x => DeviceAddress.OneWire($"28-{x:x12}")),
            Gen.Choose(1, 65535).Select(p => DeviceAddress.Udp("2001:db8::1:2", p)));
        return Prop.ForAll(gen.ToArbitrary(), address => DeviceAddress.Parse(address.ToString()) == address);
    }
}

public sealed class DurationsTests
{
    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("10s", 10_000)]
    [InlineData("1.5s", 1_500)]
    [InlineData("5m", 300_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("7d", 604_800_000)]
    [InlineData(" 2s ", 2_000)]
    public void Parses(string text, long ms) => Assert.Equal(TimeSpan.FromMilliseconds(ms), Durations.Parse(text));

    [Theory]
    [InlineData("10")]
    [InlineData("s")]
    [InlineData("-1s")]
    [InlineData("1w")]
    [InlineData("10 s")]
    [InlineData("1e3s")]
    [InlineData("")]
    public void Rejects(string text) => Assert.False(Durations.TryParse(text, out _));

    [Theory]
    [InlineData(604_800_000, "7d")]
    [InlineData(5_400_000, "90m")]
    [InlineData(90_000, "90s")]
    [InlineData(1_500, "1500ms")]
    [InlineData(0, "0s")]
    public void Formats_with_the_largest_exact_unit(long ms, string text) => Assert.Equal(text, Durations.Format(TimeSpan.FromMilliseconds(ms)));

    [Property]
    public bool Format_then_parse_is_identity(uint ms) =>
        Durations.Parse(Durations.Format(TimeSpan.FromMilliseconds(ms))) == TimeSpan.FromMilliseconds(ms);

    [Theory]
    [InlineData(1_161_300, "19m 21s")]
    [InlineData(7_500_000, "2h 5m")]
    [InlineData(273_600_000, "3d 4h")]
    [InlineData(1_002, "1.0s")]
    [InlineData(850, "850ms")]
    public void Approximates_a_measured_time_in_two_units_at_most(long ms, string text) => Assert.Equal(text, Durations.Approximate(TimeSpan.FromMilliseconds(ms)));
}
