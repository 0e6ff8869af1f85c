using EdgeTwin.Core.Config;

namespace EdgeTwin.Core.Tests.Config;

/// <summary>What <c>edgetwin check</c> tells the technician who wires local sensors (1-Wire, I2C, GPIO).</summary>
public sealed class SensorConfigCheckTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string[] Check(string devices, string? profilesDir = null)
    {
        var path = _dir.Write("site.yaml", "site: { id: s1, gateway_id: gw1 }\ndevices:\n" + devices);
        var report = ConfigCheck.Run(path, new SiteConfigLoadOptions { ProfilesDir = profilesDir ?? TestFiles.ProfilesDir });
        var text = new StringWriter();
        ConfigCheck.WriteText(report, text);
        return text.ToString().Replace(_dir.Path + "/", "", StringComparison.Ordinal)
            .Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries)
            .Where(l => !l.StartsWith("FAILED", StringComparison.Ordinal) && !l.StartsWith("OK", StringComparison.Ordinal))
            .ToArray();
    }

    [Fact]
    public void Regression_an_i2c_address_typed_as_i2cdetect_prints_it_was_read_as_decimal_without_a_word()
    {
        // i2cdetect's grid shows "76"; i2c:1:76 is decimal 76 = 0x4c, where no BME280 can answer: NACK at every poll.
        Assert.Equal(
            ["site.yaml:3:47: warning: devices[0].address: a BME280 answers only at 0x76 or 0x77 (SDO to GND / VDD), not at 0x4c; '76' without 0x is decimal (76 = 0x4c), and i2cdetect prints hex: write i2c:1:0x76"],
            Check("  - { id: c1, profile: bosch-bme280, address: \"i2c:1:76\" }\n"));
        Assert.Equal(
            ["site.yaml:3:50: warning: devices[0].address: an SHT3x answers only at 0x44 or 0x45 (ADDR to GND / VDD), not at 0x40"],
            Check("  - { id: c1, profile: sensirion-sht3x, address: \"i2c:1:0x40\" }\n"));
        Assert.Empty(Check("  - { id: c1, profile: sensirion-sht3x, address: \"i2c:1:0x45\" }\n  - { id: c2, profile: bosch-bme280, address: \"i2c:1:0x77\" }\n"));
    }

    [Fact]
    public void Regression_an_8_bit_i2c_address_from_a_datasheet_was_refused_without_the_7_bit_one()
    {
        Assert.Equal(
            ["site.yaml:3:47: devices[0].address: '0xEC' is not a 7-bit I2C address (0x03-0x77); it looks like the 8-bit form some datasheets print (address << 1): the 7-bit address is 0x76, as i2cdetect shows it"],
            Check("  - { id: c1, profile: bosch-bme280, address: \"i2c:1:0xEC\" }\n"));
    }

    [Fact]
    public void Regression_a_ds18s20_id_on_the_ds18b20_driver_passed_check_and_failed_every_poll()
    {
        // Family 10's scratchpad is in half degrees: each poll failed with "t=… disagrees with scratchpad value".
        Assert.Equal(
            ["site.yaml:3:48: devices[0].address: '10-000802b4d3a1' is a DS18S20/DS1820 (family 10, 9-bit scratchpad), which the ds18b20 driver cannot read; DS18B20 ids start with 28-",
             "site.yaml:4:48: devices[1].address: '26-000000a1b2c3' has 1-Wire family 26, not a DS18B20-type thermometer (family 28, or 22/3b/42); `ls /sys/bus/w1/devices` on the gateway lists the ids on the bus"],
            Check("  - { id: t1, profile: maxim-ds18b20, address: \"w1:10-000802b4d3a1\" }\n"
                + "  - { id: t2, profile: maxim-ds18b20, address: \"w1:26-000000a1b2c3\" }\n"
                + "  - { id: t3, profile: maxim-ds18b20, address: \"w1:28-0316a2791aff\" }\n"
                + "  - { id: t4, profile: maxim-ds18b20, address: \"w1:3B-0000001a2b3c\" }\n"));
    }

    [Fact]
    public void Regression_a_bad_sensor_parameter_passed_check_and_failed_or_was_ignored_at_start()
    {
        // oversampling: 3 failed only when the agent built the source; kind: laek made a leak detector a generic input
        // (events no longer critical); a misspelt key was ignored.
        var profiles = Path.Combine(_dir.Path, "profiles");
        _dir.Write("profiles/my-bme.yaml", """
            profile: my-bme
            vendor: Bosch
            model: BME280
            protocol: i2c
            source: "datasheet"
            sensor: { driver: bme280, parameters: { oversampling: 3, oversampeling: 4 } }
            metrics:
              - { name: temperature, channel: temperature, unit: Cel, kind: gauge, role: room.temperature }
            """);
        _dir.Write("profiles/my-leak.yaml", """
            profile: my-leak
            vendor: Generic
            model: leak cable
            protocol: gpio
            source: "contact"
            sensor: { driver: digital, pull: up, parameters: { kind: laek, chatter_changes: 1, chatter_window: soon } }
            metrics:
              - { name: leak, channel: state, unit: "1", kind: state, role: room.leak }
            """);
        var lines = Check("  - { id: c1, profile: my-bme, address: \"i2c:1:0x76\" }\n  - { id: l1, profile: my-leak, address: \"gpio:17\" }\n", profiles);

        Assert.Equal(
            ["profiles/my-bme.yaml:6:55: sensor.parameters.oversampling: oversampling '3' is not one of 1, 2, 4, 8, 16",
             "profiles/my-bme.yaml:6:73: warning: sensor.parameters.oversampeling: driver bme280 ignores parameter 'oversampeling' (did you mean 'oversampling'?)",
             "profiles/my-leak.yaml:6:58: sensor.parameters.kind: kind 'laek' is not leak, door, smoke, lamp or generic (did you mean 'leak'?)",
             "profiles/my-leak.yaml:6:81: sensor.parameters.chatter_changes: chatter_changes '1' is not 0 (off) or a count of 2..1000",
             "profiles/my-leak.yaml:6:100: sensor.parameters.chatter_window: chatter_window 'soon' is not a duration (500ms, 10s, 5m)",
             "site.yaml:3:24: devices[0].profile: profile 'my-bme' is invalid (see the problems in its file)",
             "site.yaml:4:24: devices[1].profile: profile 'my-leak' is invalid (see the problems in its file)"],
            lines);
    }

    [Fact]
    public void Regression_a_gpio_input_on_the_i2c_or_1_wire_pins_passed_check()
    {
        // gpio:3 (header pin 5, I2C SCL) beside an I2C sensor, gpio:4 (w1-gpio's default pin) beside a DS18B20: the
        // open failed at start or the input took the bus's line. Without a device on those buses the pins are free.
        Assert.Equal(
            ["site.yaml:5:59: warning: devices[2].address: GPIO 3 is SCL of I2C bus 1 (header pin 5), which device 'c1' uses: give this input another pin (gpio: numbers are BCM, not header pins)",
             "site.yaml:6:47: warning: devices[3].address: GPIO 4 is the default 1-Wire pin of the w1-gpio overlay, which device 't1' needs: give this input another pin, or move the bus with dtoverlay=w1-gpio,gpiopin=N"],
            Check("  - { id: c1, profile: sensirion-sht3x, address: \"i2c:1:0x44\" }\n"
                + "  - { id: t1, profile: maxim-ds18b20, address: \"w1:28-0316a2791aff\" }\n"
                + "  - { id: leak1, profile: generic-leak-detector, address: \"gpio:3\" }\n"
                + "  - { id: h1, profile: aosong-dht22, address: \"gpio:4\" }\n"));
        Assert.Empty(Check("  - { id: leak1, profile: generic-leak-detector, address: \"gpio:3\" }\n  - { id: h1, profile: aosong-dht22, address: \"gpio:4\" }\n"));
    }
}
