using System.Text.Json;
using EdgeTwin.Agent.Cli;
using EdgeTwin.Agent.Sources.Modbus;
using EdgeTwin.Core.Sources;
using EdgeTwin.IntegrationTests.Agent;
using EdgeTwin.Modbus.Tests.Peers;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.IntegrationTests.Modbus;

/// <summary>
/// <c>edgetwin poll</c> on a Modbus meter the engineer is writing a profile for (the profile-commissioning audit): a
/// pymodbus meter holding floats in both word orders, a scaled int16, a uint32 counter and a hole in its map.
/// </summary>
public sealed class ModbusPollCommandTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // The meter: voltage 230.5 (float32 ABCD) at 0, current 12.25 stored word-swapped (CDAB) at 2, frequency 50.02
    // (int16 × 0.01) at 10, energy 12345.6 kW.h (uint32 × 0.1) at 20; registers 4-9 and 12-19 do not exist.
    private static readonly System.Text.Json.Nodes.JsonObject Meter = PymodbusServer.Units(
        (1, "ir", 0, [0x4366, 0x8000, 0x0000, 0x4144]), (1, "ir", 10, [5002]), (1, "ir", 20, [0x0001, 0xE240]));

    // The new profile as first written: the current read in the profile's default ABCD, a THD register the manual
    // lists but this firmware lacks, the import energy's 5-digit reference copied as its address.
    private const string Profile = """
        profile: acme-em100
        vendor: Acme
        model: EM100
        protocol: modbus
        source: "Acme EM100 manual"
        modbus: { addressing: 0, max_registers_per_read: 60, gap_tolerance: 10, byte_order: ABCD }
        metrics:
          - { name: voltage_l1, table: input, address: 0, type: float32, unit: V, kind: gauge, role: meter.voltage }
          - { name: current_l1, table: input, address: 2, type: float32, unit: A, kind: gauge, role: meter.current }
          - { name: frequency, table: input, address: 10, type: int16, scale: 0.01, unit: Hz, kind: gauge, role: meter.frequency }
          - { name: thd_voltage_l1, table: input, address: 14, type: int16, scale: 0.1, unit: "%", kind: gauge, role: lab.thd }
          - { name: import_energy, table: input, address: 20, type: uint32, scale: 0.1, unit: kW.h, kind: counter, role: meter.energy_import }
          - { name: export_energy, table: input, address: 30021, type: uint32, scale: 0.1, unit: kW.h, kind: counter, role: meter.energy_export }
        """;

    private static async Task<(int Code, string Out, string Err)> PollAsync(int port, bool json, string profile = Profile)
    {
        var dir = AgentFiles.TempDir("edgetwin-modbus-poll-");
        var profiles = Directory.CreateDirectory(Path.Combine(dir.FullName, "profiles"));
        await File.WriteAllTextAsync(Path.Combine(profiles.FullName, "acme-em100.yaml"), profile, Ct);
        var config = Path.Combine(dir.FullName, "edgetwin.yaml");
        await File.WriteAllTextAsync(config, $$"""
            site: { id: lab, gateway_id: gw-lab }
            profiles_dir: {{profiles.FullName}}
            devices:
              - { id: em1, profile: acme-em100, address: "tcp:127.0.0.1:{{port}}", unit_id: 1, timeout: 2s }
            outbox: { path: {{Path.Combine(dir.FullName, "outbox.db")}} }
            """, Ct);
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await PollCommand.PollAsync(AgentFiles.Load(config), "em1", new SourceFactories([new ModbusSourceFactory()]),
            NullLoggerFactory.Instance, TimeProvider.System, json, output, error, Ct);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task Regression_a_float_in_the_wrong_word_order_printed_as_0_with_no_registers_to_show_why()
    {
        // 12.25 A stored CDAB and read ABCD is 2.3e-41 A, which poll printed as a plausible "0 A"; nothing showed what the
        // meter had sent. Now the value keeps its exponent, every metric shows its registers as the device sent them, and a
        // float of absurd size says which word order reads a number of everyday size.
        await using var server = await PymodbusServer.StartTcpAsync(Meter);

        var (code, output, _) = await PollAsync(server.Port, json: false);

        Assert.Equal(0, code);
        var lines = output.TrimEnd('\n').Split('\n');
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^current_l1 +2\.3413E-41 A +meter\.current +\(input 2: 0x0000 0x4144; order CDAB reads 12\.25; order DCBA reads 772\)$"));
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^voltage_l1 +230\.5 V +meter\.voltage +\(input 0: 0x4366 0x8000\)$"));
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^frequency +50\.02 Hz +meter\.frequency +\(input 10: 0x138A\)$"));
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^import_energy +12345\.6 kW\.h +meter\.energy_import +\(input 20: 0x0001 0xE240\)$"));
    }

    [Fact]
    public async Task Regression_a_wrong_word_order_reading_of_everyday_size_but_out_of_range_got_no_order_hint()
    {
        // A UMG 96RM's Voltage L2-N (229.8 V, 0x4365 0xCCCD, high word first) read by a profile set to CDAB is
        // -107617064 V: flagged out of range by the metric's min 0, but of "everyday size", so poll named no order that
        // reads it right. The metric's own limits now count too, and only orders that read inside them are named.
        await using var server = await PymodbusServer.StartTcpAsync(PymodbusServer.Units((1, "ir", 0, [0x4365, 0xCCCD])));
        var profile = """
            profile: acme-em100
            vendor: Acme
            model: EM100
            protocol: modbus
            source: "Acme EM100 manual"
            modbus: { addressing: 0, byte_order: CDAB }
            metrics:
              - { name: voltage_l2, table: input, address: 0, type: float32, unit: V, kind: gauge, role: meter.voltage, min: 0, max: 500 }
            """;

        var (code, output, _) = await PollAsync(server.Port, json: false, profile);

        Assert.Equal(0, code);
        var lines = output.TrimEnd('\n').Split('\n');
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^voltage_l2 +-107617064 V +meter\.voltage +\[out_of_range\] +\(input 0: 0x4365 0xCCCD; order ABCD reads 229\.8\)$"));
    }

    [Fact]
    public async Task Regression_a_refused_modbus_register_showed_device_error_without_register_or_exception()
    {
        // The SNMP source told poll why a metric failed; the Modbus one did not, so a register missing from the meter's
        // map showed a bare [device_error] (the reason was only in a log line on stderr). The rest of the device is read.
        await using var server = await PymodbusServer.StartTcpAsync(Meter);

        var (code, output, _) = await PollAsync(server.Port, json: true);

        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(output);
        var metrics = doc.RootElement.GetProperty("metrics").EnumerateArray().ToDictionary(m => m.GetProperty("metric").GetString()!);
        var thd = metrics["thd_voltage_l1"];
        Assert.Equal("device_error", thd.GetProperty("quality").GetString());
        Assert.Equal("input 14, exception 2 ILLEGAL DATA ADDRESS", thd.GetProperty("reason").GetString());
        Assert.False(thd.TryGetProperty("raw", out _));
        Assert.Equal("good", metrics["frequency"].GetProperty("quality").GetString());
        Assert.Equal("input 10: 0x138A", metrics["frequency"].GetProperty("raw").GetString());
        Assert.Equal(12345.6, metrics["import_energy"].GetProperty("value").GetDouble());
    }

    [Fact]
    public async Task Regression_a_5_digit_register_reference_copied_as_the_address_was_refused_without_a_hint()
    {
        // The manual lists export energy as 30021 (input register 21, protocol address 20); the profile took it for the
        // address. The device refused it with exception 2 and nothing said why: now the reason names the address to write.
        await using var server = await PymodbusServer.StartTcpAsync(Meter);

        var (code, output, _) = await PollAsync(server.Port, json: true);

        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(output);
        var metrics = doc.RootElement.GetProperty("metrics").EnumerateArray().ToDictionary(m => m.GetProperty("metric").GetString()!);
        Assert.Equal(
            "input 30021, exception 2 ILLEGAL DATA ADDRESS; 30021 looks like a 5-digit reference (input register 21): with addressing: 0 write address: 20",
            metrics["export_energy"].GetProperty("reason").GetString());
        Assert.Equal("input 14, exception 2 ILLEGAL DATA ADDRESS", metrics["thd_voltage_l1"].GetProperty("reason").GetString());
    }
}
