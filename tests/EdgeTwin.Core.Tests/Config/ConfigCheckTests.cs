using System.Text;
using System.Text.Json;
using EdgeTwin.Core.Config;

namespace EdgeTwin.Core.Tests.Config;

/// <summary>The output of <c>edgetwin check</c> (the command itself only parses options and calls this).</summary>
public sealed class ConfigCheckTests
{
    private static readonly SiteConfigLoadOptions Options = new() { ProfilesDir = TestFiles.ProfilesDir };

    [Fact]
    public void Valid_config_prints_one_ok_line_and_exits_zero()
    {
        using var dir = new TempDir();
        var path = Path.Combine(Modes.InstalledExamples(dir), "small-dc-room.yaml");
        var report = ConfigCheck.Run(path, Options);
        var text = new StringWriter();
        ConfigCheck.WriteText(report, text);

        Assert.Equal(0, report.ExitCode);
        Assert.Equal(
            $"OK: {path}: site dc1, gateway gw-dc1-01: 1 room, 4 racks, 2 cooling units, 1 UPS, 5 PDUs, 0 machines; 15 devices (15 enabled) using 13 profiles" + Environment.NewLine,
            text.ToString());
    }

    [Fact]
    public void Broken_config_prints_every_problem_then_failed_and_exits_one()
    {
        using var dir = new TempDir();
        var path = dir.Write("bad.yaml", """
            site: { id: s1, gateway_id: g1 }
            devices:
              - { id: m1, profile: eastron-sdm630, address: "tcp:127.0.0.1:502", unit_id: 300 }
              - { id: m1, profile: eastron-sdm630, address: "rtu:/dev/ttyUSB0", serial: { parity: X } }
            """);
        var report = ConfigCheck.Run(path, Options);
        var text = new StringWriter();
        ConfigCheck.WriteText(report, text);

        Assert.Equal(1, report.ExitCode);
        Assert.Equal(
            string.Join(Environment.NewLine,
                $"{path}:3:79: devices[0].unit_id: must be at most 255, got 300",
                $"{path}:4:11: devices[1].id: duplicate device id 'm1' (first defined at line 3)",
                $"{path}:4:87: devices[1].serial.parity: expected one of N, E, O, none, even, odd, got 'X'",
                $"FAILED: {path}: 3 problems") + Environment.NewLine,
            text.ToString());
    }

    [Fact]
    public void Regression_check_said_OK_for_two_rtu_devices_with_different_baud_on_one_port()
    {
        // The agent's start refused this (one port, one set of line settings), so a config that passed check
        // restarted in a loop. An omitted serial key means the defaults; disabled devices open no port.
        using var dir = new TempDir();
        var path = dir.Write("rtu.yaml", """
            site: { id: s1, gateway_id: g1 }
            devices:
              - { id: m1, profile: eastron-sdm630, address: "rtu:/dev/ttyUSB0", unit_id: 1, serial: { baud: 19200, parity: N } }
              - { id: m2, profile: eastron-sdm630, address: "rtu:/dev/ttyUSB0", unit_id: 2, serial: { baud: 9600, parity: N } }
              - { id: m3, profile: eastron-sdm630, address: "rtu:/dev/ttyUSB0", unit_id: 3 }
              - { id: m4, profile: eastron-sdm630, address: "rtu:/dev/ttyUSB0", unit_id: 4, serial: { baud: 4800 }, enabled: false }
              - { id: m5, profile: eastron-sdm630, address: "rtu:/dev/ttyUSB1", unit_id: 1 }
              - { id: m6, profile: eastron-sdm630, address: "rtu:/dev/ttyUSB1", unit_id: 2, serial: { baud: 9600, parity: E, stop_bits: 1 } }
            """);
        var report = ConfigCheck.Run(path, Options);
        var text = new StringWriter();
        ConfigCheck.WriteText(report, text);

        Assert.Equal(1, report.ExitCode);
        Assert.Equal(
            string.Join(Environment.NewLine,
                $"{path}:4:81: devices[1].serial: device 'm2': serial settings 9600 8N1 differ from device 'm1' on the same port /dev/ttyUSB0 (19200 8N1, its serial key at line 3); devices on one serial line must use the same baud, parity, stop and data bits",
                $"{path}:5:49: devices[2].address: device 'm3': serial settings 9600 8E1 (no serial key: the defaults) differ from device 'm1' on the same port /dev/ttyUSB0 (19200 8N1, its serial key at line 3); devices on one serial line must use the same baud, parity, stop and data bits",
                $"FAILED: {path}: 2 problems") + Environment.NewLine,
            text.ToString());
    }

    [Fact]
    public void Regression_check_named_only_the_first_of_two_devices_whose_serial_settings_differ_on_one_port()
    {
        // The message named the second device only by its index (devices[1]) and the first device's line without its
        // key; it now names both devices and, for the first, whether its settings come from its serial key or the defaults.
        using var dir = new TempDir();
        var path = dir.Write("rtu.yaml", """
            site: { id: s1, gateway_id: g1 }
            devices:
              - { id: line-first, profile: eastron-sdm630, address: "rtu:/dev/ttyUSB0", unit_id: 1 }
              - { id: line-second, profile: eastron-sdm630, address: "rtu:/dev/ttyUSB0", unit_id: 2, serial: { baud: 19200, parity: E } }
            """);
        var report = ConfigCheck.Run(path, Options);
        var text = new StringWriter();
        ConfigCheck.WriteText(report, text);

        Assert.Equal(1, report.ExitCode);
        Assert.StartsWith(
            $"{path}:4:90: devices[1].serial: device 'line-second': serial settings 19200 8E1 differ from device 'line-first' on the same port /dev/ttyUSB0 (9600 8E1, the defaults: no serial key, its address at line 3);",
            text.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Regression_check_accepted_enum_names_in_another_case_and_unknown_units_without_a_word()
    {
        // Site config and profile alike: the value is still accepted (exit 0), each spelling named with file, line and key.
        using var dir = new TempDir();
        dir.Write("profiles/custom-pdu.yaml", """
            profile: custom-pdu
            vendor: X
            model: Y
            protocol: modbus
            source: register map
            modbus: { byte_order: abcd }
            metrics:
              - { name: total_power, table: holding, address: 0, type: float32, unit: w, kind: gauge, role: pdu.power }
            """);
        var path = dir.Write("site.yaml", """
            site: { id: s1, gateway_id: g1 }
            devices:
              - { id: p1, profile: custom-pdu, address: "rtu:/dev/ttyUSB0", unit_id: 1, serial: { parity: NONE } }
            """);
        var profile = Path.Combine(dir.Path, "profiles", "custom-pdu.yaml");
        var report = ConfigCheck.Run(path, new SiteConfigLoadOptions { ProfilesDir = Path.Combine(dir.Path, "profiles") });
        var text = new StringWriter();
        ConfigCheck.WriteText(report, text);

        Assert.Equal(0, report.ExitCode);
        var lines = text.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(
        [
            $"{profile}:6:23: warning: modbus.byte_order: 'abcd' is accepted as 'ABCD'; write 'ABCD' (the schema and editors accept only that spelling)",
            $"{profile}:8:75: warning: metrics[0].unit: unknown unit 'w' (did you mean 'W'?); it is kept as written, but the twin and the centre understand only the units in device-profiles/README.md",
            $"{path}:3:95: warning: devices[0].serial.parity: 'NONE' is accepted as 'none'; write 'none' (the schema and editors accept only that spelling)",
        ], lines[..^1]);
        Assert.StartsWith($"OK: {path}: site s1", lines[^1], StringComparison.Ordinal);
        Assert.EndsWith("using 1 profile; 3 warnings", lines[^1], StringComparison.Ordinal);
        Assert.Equal(report.Warnings, report.Config!.Warnings); // what the agent logs at start

        using var ms = new MemoryStream();
        ConfigCheck.WriteJson(report, ms);
        using var doc = JsonDocument.Parse(ms.ToArray());
        Assert.True(doc.RootElement.GetProperty("ok").GetBoolean());
        var w = doc.RootElement.GetProperty("warnings")[2];
        Assert.Equal((3, 95, "devices[0].serial.parity"), (w.GetProperty("line").GetInt32(), w.GetProperty("column").GetInt32(), w.GetProperty("path").GetString()));
    }

    [Fact]
    public void Json_output_carries_positions_and_summary()
    {
        using var dir = new TempDir();
        var bad = dir.Write("bad.yaml", "site: { id: s1 }\ndevices: []\n");
        using var ms = new MemoryStream();
        ConfigCheck.WriteJson(ConfigCheck.Run(bad, Options), ms);
        using var doc = JsonDocument.Parse(Encoding.UTF8.GetString(ms.ToArray()));
        Assert.False(doc.RootElement.GetProperty("ok").GetBoolean());
        var p = doc.RootElement.GetProperty("problems")[0];
        Assert.Equal((1, 7, "site.gateway_id", "missing required key 'gateway_id'"), (p.GetProperty("line").GetInt32(), p.GetProperty("column").GetInt32(), p.GetProperty("path").GetString(), p.GetProperty("message").GetString()));

        using var ok = new MemoryStream();
        ConfigCheck.WriteJson(ConfigCheck.Run(Path.Combine(TestFiles.ExamplesDir, "machine-line.yaml"), Options), ok);
        using var okDoc = JsonDocument.Parse(ok.ToArray());
        Assert.True(okDoc.RootElement.GetProperty("ok").GetBoolean());
        Assert.Equal(3, okDoc.RootElement.GetProperty("summary").GetProperty("machines").GetInt32());
        Assert.Equal(10, okDoc.RootElement.GetProperty("summary").GetProperty("devices").GetInt32());
    }
}
