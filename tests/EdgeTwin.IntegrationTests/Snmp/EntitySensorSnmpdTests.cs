using EdgeTwin.Core.Samples;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>
/// The shipped entity-sensor-temperature profile read by the agent's SNMP source from net-snmp's snmpd serving a recording
/// of a switch's ENTITY-SENSOR-MIB entPhySensorTable and the ENTITY-MIB names of its rows
/// (Recordings/entity-sensor-temperature.snmprec): celsius rows only, labelled by entPhysicalName, and a temperature taken
/// for a reading only while its entPhySensorOperStatus is ok(1).
/// </summary>
public sealed class EntitySensorSnmpdTests
{
    private static SnmpdRecordingProcess Snmpd() =>
        new("entity-sensor-temperature", ".1.3.6.1.2.1.99", ".1.3.6.1.2.1.47.1.1.1.1.7");

    [Fact]
    public async Task Entity_sensor_reads_the_celsius_rows_labelled_by_entity_name()
    {
        await using var snmpd = Snmpd();
        await snmpd.InitializeAsync();
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");

        var (got, registry) = await ShippedSnmpProfilesSnmpdTests.PollOnceAsync(snmpd, "tor-a01", "entity-sensor-temperature");

        var cpu = got["tor-a01/temperature{entity=1001,sensor_name=CPU}"];
        Assert.Equal((48.0, SampleQuality.Good), (cpu.Value, cpu.Quality));
        Assert.Equal(("Cel", "net.device_temperature"), (registry[cpu.Series].Unit, registry[cpu.Series].Role));
        Assert.Equal((27.0, SampleQuality.Good), (got["tor-a01/temperature{entity=1002,sensor_name=Inlet}"].Value, got["tor-a01/temperature{entity=1002,sensor_name=Inlet}"].Quality));
        Assert.Equal(1, got["tor-a01/sensor_status{entity=1001,sensor_name=CPU}"].Value);
        Assert.Equal(0, got["tor-a01/sensor_precision{entity=1001,sensor_name=CPU}"].Value);

        // The fan (rpm) is not a temperature: no series. Four celsius rows × three columns.
        Assert.DoesNotContain(got.Keys, k => k.Contains("entity=2001", StringComparison.Ordinal));
        Assert.Equal(4 * 3, got.Count);
    }

    /// <summary>
    /// entPhySensorOperStatus unavailable(2) ("the agent presently cannot obtain the sensor value") beside a 0, and
    /// nonoperational(3) ("the agent believes the sensor is broken") beside a plausible 41: both were published as Good
    /// device temperatures (0 °C is within the profile's -20..125), the status only beside them.
    /// </summary>
    [Fact]
    public async Task Regression_a_switch_sensor_the_agent_cannot_read_was_published_as_a_good_temperature()
    {
        await using var snmpd = Snmpd();
        await snmpd.InitializeAsync();
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");

        var (got, _) = await ShippedSnmpProfilesSnmpdTests.PollOnceAsync(snmpd, "tor-a01", "entity-sensor-temperature");

        foreach (var key in new[] { "tor-a01/temperature{entity=1003,sensor_name=Outlet}", "tor-a01/temperature{entity=1004,sensor_name=PSU2 hotspot}" })
        {
            Assert.Equal(SampleQuality.DeviceError, got[key].Quality);
            Assert.True(double.IsNaN(got[key].Value), key);
        }
        Assert.Equal(2, got["tor-a01/sensor_status{entity=1003,sensor_name=Outlet}"].Value);          // unavailable, still published
        Assert.Equal(3, got["tor-a01/sensor_status{entity=1004,sensor_name=PSU2 hotspot}"].Value);    // nonoperational
    }
}
