using EdgeTwin.Core.Samples;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>
/// The shipped apc-netbotz profile read by the agent's SNMP source from net-snmp's snmpd serving a recording of a
/// NETBOTZV2-MIB sensor subtree (Recordings/apc-netbotz.snmprec): a rack monitor's temperature and humidity sensors in
/// the MIB's tenths, rows indexed by number as appliances do, door switches with the MIB's open(0)/closed(1)/null(-1),
/// and the sensors' error status.
/// </summary>
public sealed class ApcNetbotzSnmpdTests
{
    [Fact]
    public async Task Netbotz_reads_tenths_of_degrees_and_percent_per_sensor_and_turns_door_switches_into_door_open()
    {
        await using var snmpd = new SnmpdRecordingProcess("apc-netbotz", ".1.3.6.1.4.1.5528.100.4");
        await snmpd.InitializeAsync();
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");

        var (got, registry) = await ShippedSnmpProfilesSnmpdTests.PollOnceAsync(snmpd, "c01-netbotz", "apc-netbotz");

        // Temperatures: tenths of °C as the rack's inlet, tagged with the row index and the sensor's label.
        var inlet = got["c01-netbotz/temperature{sensor=21604919,sensor_label=C01 inlet}"];
        Assert.Equal((23.1, SampleQuality.Good), (inlet.Value, inlet.Quality));
        Assert.Equal(("Cel", "rack.inlet_temperature"), (registry[inlet.Series].Unit, registry[inlet.Series].Role));
        Assert.Equal(-5.5, got["c01-netbotz/temperature{sensor=1382714817,sensor_label=C01 inlet top}"].Value);   // -55 tenths
        Assert.Equal(36.8, got["c01-netbotz/temperature{sensor=1382714818,sensor_label=C01 rear}"].Value);
        Assert.Equal(2, got["c01-netbotz/temperature_status{sensor=1382714817,sensor_label=C01 inlet top}"].Value);   // warning
        Assert.Equal(5, got["c01-netbotz/temperature_status{sensor=1382714818,sensor_label=C01 rear}"].Value);        // failure
        Assert.Equal("net.sensor_status", registry[got["c01-netbotz/temperature_status{sensor=21604919,sensor_label=C01 inlet}"].Series].Role);

        // Humidity: tenths of a percent.
        var humidity = got["c01-netbotz/humidity{sensor=21604920,sensor_label=C01 inlet}"];
        Assert.Equal((41.5, SampleQuality.Good), (humidity.Value, humidity.Quality));
        Assert.Equal(("%", "rack.inlet_humidity"), (registry[humidity.Series].Unit, registry[humidity.Series].Role));
        Assert.Equal(38.7, got["c01-netbotz/humidity{sensor=1382714819,sensor_label=C01 inlet top}"].Value);

        // Doors: the MIB's open(0) is door_open 1, closed(1) is 0, as generic-door-contact publishes a door; null(-1)
        // (no reading) is 2, out of range, never a closed door.
        var front = got["c01-netbotz/door_open{sensor=11,sensor_label=C01 front door}"];
        Assert.Equal((1.0, SampleQuality.Good), (front.Value, front.Quality));
        Assert.Equal("rack.door_open", registry[front.Series].Role);
        var doorColumn = ShippedSnmpProfilesSnmpdTests.Shipped("apc-netbotz").Tables.Single(t => t.Name == "door_switch").Columns[0];
        Assert.Equal(("closed", "open"), (doorColumn.States![0], doorColumn.States[1]));
        Assert.Equal((0.0, SampleQuality.Good), (got["c01-netbotz/door_open{sensor=12,sensor_label=C01 rear door}"].Value, got["c01-netbotz/door_open{sensor=12,sensor_label=C01 rear door}"].Quality));
        var side = got["c01-netbotz/door_open{sensor=13,sensor_label=C01 side panel}"];
        Assert.Equal((2.0, SampleQuality.OutOfRange), (side.Value, side.Quality));
        Assert.Equal(3, got["c01-netbotz/door_status{sensor=13,sensor_label=C01 side panel}"].Value);   // error

        // Every row read, nothing else: 3 temperature sensors, 2 humidity sensors, 3 door switches, two columns each.
        Assert.Equal((3 + 2 + 3) * 2, got.Count);
    }
}
