using EdgeTwin.Agent.Sources.Snmp;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>
/// The shipped SNMP profiles of devices the room engineer asks about (an Eaton UPS on XUPS-MIB, APC universal I/O
/// probes), read by the agent's SNMP source from net-snmp's snmpd serving a recording of the card's subtree: the OIDs,
/// scales, units, state names, table indexes and labels as the MIB lays them out.
/// </summary>
public sealed class ShippedSnmpProfilesSnmpdTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    internal static DeviceProfile Shipped(string id) =>
        DeviceProfileLoader.LoadFileOrThrow(Path.Combine(Simulator.SimPaths.Profiles, id + ".yaml"));

    /// <summary>One poll of <paramref name="profileId"/> against <paramref name="snmpd"/>: the samples by series key, registered in <paramref name="registry"/> (a new one when null).</summary>
    internal static async Task<(Dictionary<string, Sample> ByKey, SeriesRegistry Registry)> PollOnceAsync(SnmpdProcess snmpd, string deviceId, string profileId, SeriesRegistry? registry = null,
        Microsoft.Extensions.Logging.ILoggerFactory? loggers = null, bool walkColumnsTogether = true)
    {
        var profile = Shipped(profileId);
        var credentials = CredentialsConfig.V2c("ro", "public");
        var device = new DeviceConfig(deviceId, profileId, DeviceAddress.Udp("127.0.0.1", snmpd.Port)) { Credentials = credentials.Name, Timeout = TimeSpan.FromSeconds(5) };
        await using var source = new SnmpSourceFactory().Create(new SourceContext(device, profile, credentials, loggers ?? NullLoggerFactory.Instance, TimeProvider.System)).Polled!;
        ((SnmpSource)source).WalkColumnsTogether = walkColumnsTogether;
        registry ??= new SeriesRegistry();
        source.RegisterSeries(registry);
        var sink = new RecordingSink();
        await source.PollAsync(sink, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), Ct);
        return (sink.Samples.ToDictionary(s => registry[s.Series].Key), registry);
    }

    [Fact]
    public async Task Eaton_xups_reads_minutes_tenths_of_hz_signed_battery_current_and_one_row_per_phase()
    {
        await using var snmpd = new SnmpdRecordingProcess("eaton-xups", ".1.3.6.1.4.1.534");
        await snmpd.InitializeAsync();
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");

        var (got, registry) = await PollOnceAsync(snmpd, "ups-e1", "eaton-xups");

        Assert.All(got.Values, s => Assert.Equal(SampleQuality.Good, s.Quality));
        Assert.Equal(30, got["ups-e1/runtime_remaining"].Value, 9);     // xupsBatTimeRemaining 1800 s
        Assert.Equal("min", registry[got["ups-e1/runtime_remaining"].Series].Unit);
        Assert.Equal(87, got["ups-e1/battery_charge"].Value);
        Assert.Equal(216, got["ups-e1/battery_voltage"].Value);
        Assert.Equal(-2, got["ups-e1/battery_current"].Value);           // negative: recharging (an Integer32 below 0 kept)
        Assert.Equal(1, got["ups-e1/battery_status"].Value);              // batteryCharging
        Assert.Equal(49.9, got["ups-e1/input_frequency"].Value, 9);       // 499 tenths of Hz
        Assert.Equal(50, got["ups-e1/output_frequency"].Value, 9);
        Assert.Equal(41, got["ups-e1/output_load"].Value);
        Assert.Equal(3, got["ups-e1/output_source"].Value);               // normal
        Assert.Equal(7, got["ups-e1/input_line_bads"].Value);
        Assert.Equal(24, got["ups-e1/ambient_temperature"].Value);
        Assert.Equal(0, got["ups-e1/alarms_present"].Value);
        Assert.Equal([230.0, 231, 229], Phases(got, "ups-e1/input_voltage"));
        Assert.Equal([9.0, 8, 10], Phases(got, "ups-e1/input_current"));
        Assert.Equal([1840.0, 1610, 2070], Phases(got, "ups-e1/output_power"));
        Assert.Equal("W", registry[got["ups-e1/output_power{line=1}"].Series].Unit);
        Assert.Equal("ups.output_power", registry[got["ups-e1/output_power{line=1}"].Series].Role);
        Assert.Equal(12 + (2 * 3 * 3), got.Count); // every scalar and 3 phases × 3 columns × 2 tables: nothing unread
    }

    /// <summary>
    /// LIEBERT-GP-ENVIRONMENTAL-MIB names each temperature and humidity sensor by an OBJECT IDENTIFIER
    /// (lgpEnvTemperatureDescrDegC = lgpEnvSupplyAirTemperature), not by text. The agent read only text labels, so on a real
    /// unit every row came without its <c>measures</c> tag: the thermal twin could not tell supply from return air, the
    /// set-point control found no supply row ("3 rows and none labelled supply") and no shipped rule watched the supply air.
    /// The simulator served the label as text, so nothing showed it. Now the profile's label_names name the OIDs; one it
    /// does not name labels its row with the OID itself.
    /// </summary>
    [Fact]
    public async Task Regression_a_liebert_unit_naming_its_sensors_by_oid_gave_rows_without_what_they_measure()
    {
        await using var snmpd = new SnmpdRecordingProcess("liebert-gp-crac", ".1.3.6.1.4.1.476.1.42.3.4");
        await snmpd.InitializeAsync();
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");

        var (got, registry) = await PollOnceAsync(snmpd, "crac1", "liebert-gp-crac");

        Assert.All(got.Values, s => Assert.Equal(SampleQuality.Good, s.Quality));
        Assert.Equal(24, got["crac1/temperature{measures=Control,sensor=1}"].Value);
        Assert.Equal(17, got["crac1/temperature{measures=Supply air,sensor=2}"].Value);
        Assert.Equal(31, got["crac1/temperature{measures=Return air,sensor=3}"].Value);
        Assert.Equal(68, got["crac1/temperature{measures=Compressor 1,sensor=7}"].Value);
        Assert.Equal(12, got["crac1/temperature{measures=.1.3.6.1.4.1.476.1.42.3.4.1.1.20,sensor=9}"].Value);   // supply fluid: unnamed on purpose
        Assert.Equal(18, got["crac1/temperature_setpoint{measures=Supply air,sensor=2}"].Value);
        Assert.Equal(42, got["crac1/humidity{measures=Return air,sensor=2}"].Value);
        Assert.Equal("crac.air_temperature", registry[got["crac1/temperature{measures=Supply air,sensor=2}"].Series].Role);
        Assert.Equal(6 + 5 + 3 + 2, got.Count);
    }

    private static double[] Phases(Dictionary<string, Sample> got, string series) => [.. Enumerable.Range(1, 3).Select(l => got[$"{series}{{line={l}}}"].Value)];

    [Fact]
    public async Task Apc_uio_probes_are_tagged_port_dot_sensor_and_a_minus_one_is_flagged_not_published_as_a_reading()
    {
        await using var snmpd = new SnmpdRecordingProcess("apc-uio-probe", ".1.3.6.1.4.1.318.1.1.25");
        await snmpd.InitializeAsync();
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");

        var (got, registry) = await PollOnceAsync(snmpd, "a03-env", "apc-uio-probe");

        var low = got["a03-env/temperature{probe=1.1,probe_name=A03-inlet-low}"];
        Assert.Equal((23.0, SampleQuality.Good), (low.Value, low.Quality));
        Assert.Equal(("Cel", "rack.inlet_temperature"), (registry[low.Series].Unit, registry[low.Series].Role));
        Assert.Equal(41, got["a03-env/humidity{probe=1.1,probe_name=A03-inlet-low}"].Value);
        Assert.Equal(27, got["a03-env/temperature{probe=2.1,probe_name=A03-inlet-high}"].Value);
        Assert.Equal(2, got["a03-env/alarm_status{probe=2.1,probe_name=A03-inlet-high}"].Value); // uioWarning

        // -1 is the MIB's "no reading": humidity of a temperature-only AP9335T is out of range. A probe whose link is lost
        // gives no reading whatever it serves (its -1 here; see the Regression_ test below for a plausible stale value).
        Assert.Equal(SampleQuality.OutOfRange, got["a03-env/humidity{probe=2.1,probe_name=A03-inlet-high}"].Quality);
        Assert.Equal(SampleQuality.DeviceError, got["a03-env/temperature{probe=1.2,probe_name=A03-inlet-mid}"].Quality);
        Assert.Equal(3, got["a03-env/comm_status{probe=1.2,probe_name=A03-inlet-mid}"].Value);   // commsLost

        // The not-installed position 2.2 gives no series at all.
        Assert.DoesNotContain(got.Keys, k => k.Contains("probe=2.2", StringComparison.Ordinal));
        Assert.Equal(3 * 4, got.Count);
    }

    /// <summary>
    /// A probe whose link is lost (commsLost(3)) while the card still serves the alarm status it had before, uioCritical(3):
    /// published as a Good alarm_status before (only its temperature and humidity were gated), so a state rule on it
    /// raised, or kept, a critical alarm for a probe the card cannot talk to. Now it is device_error like its readings;
    /// the loss itself is comm_status 3, Good; probes whose comms are OK keep their alarm status as a reading.
    /// </summary>
    [Theory]
    [InlineData(true)]   // the comms column rides in the table's GETBULKs
    [InlineData(false)]  // walked alone, as over SNMPv1
    public async Task Regression_a_uio_probe_whose_comms_are_lost_published_its_stale_alarm_status(bool together)
    {
        var dir = Directory.CreateTempSubdirectory("uio-alarm-lost-");
        try
        {
            const string LostAlarm = "1.3.6.1.4.1.318.1.1.25.1.2.1.9.1.2";   // uioSensorStatusAlarmStatus of lost probe 1.2
            var lines = File.ReadAllLines(SnmpdRecordingProcess.RecordingPath("apc-uio-probe"))
                .Select(l => l.StartsWith(LostAlarm + "|", StringComparison.Ordinal) ? LostAlarm + "|2|3" : l).ToArray();
            Assert.Single(lines, l => l == LostAlarm + "|2|3");
            Assert.Single(lines, l => l == "1.3.6.1.4.1.318.1.1.25.1.2.1.10.1.2|2|3");   // its uioSensorStatusCommStatus: commsLost
            var recording = Path.Combine(dir.FullName, "apc-uio-probe-alarm-lost");
            File.WriteAllLines(recording + ".snmprec", lines);
            await using var snmpd = new SnmpdRecordingProcess(recording, ".1.3.6.1.4.1.318.1.1.25");
            await snmpd.InitializeAsync();
            Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");

            var (got, registry) = await PollOnceAsync(snmpd, "a03-env", "apc-uio-probe", walkColumnsTogether: together);

            var lost = got["a03-env/alarm_status{probe=1.2,probe_name=A03-inlet-mid}"];
            Assert.Equal(SampleQuality.DeviceError, lost.Quality);
            Assert.True(double.IsNaN(lost.Value), $"{lost.Value}");
            Assert.Equal("net.sensor_status", registry[lost.Series].Role);
            var comm = got["a03-env/comm_status{probe=1.2,probe_name=A03-inlet-mid}"];
            Assert.Equal((3.0, SampleQuality.Good), (comm.Value, comm.Quality));   // commsLost: the loss is what is published
            // Comms OK: the card's alarm status is the reading, uioNormal(1) and uioWarning(2) as served.
            Assert.Equal((1.0, SampleQuality.Good), (got["a03-env/alarm_status{probe=1.1,probe_name=A03-inlet-low}"].Value, got["a03-env/alarm_status{probe=1.1,probe_name=A03-inlet-low}"].Quality));
            Assert.Equal((2.0, SampleQuality.Good), (got["a03-env/alarm_status{probe=2.1,probe_name=A03-inlet-high}"].Value, got["a03-env/alarm_status{probe=2.1,probe_name=A03-inlet-high}"].Quality));
            Assert.Equal(3 * 4, got.Count);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>
    /// A probe whose link is lost (uioSensorStatusCommStatus commsLost(3)) while the card still serves the last values it
    /// had (22 °C, 38 %RH, as NMCs do until the row is cleared): published as a Good rack inlet reading before, as only
    /// the MIB's -1 was flagged (by min 0). Its comm_status is still published; the other probes are still readings.
    /// </summary>
    [Fact]
    public async Task Regression_a_uio_probe_whose_comms_are_lost_was_published_as_a_good_reading()
    {
        var dir = Directory.CreateTempSubdirectory("uio-lost-");
        try
        {
            var stale = new Dictionary<string, string>
            {
                ["1.3.6.1.4.1.318.1.1.25.1.2.1.6.1.2"] = "22",   // uioSensorStatusTemperatureDegC of lost probe 1.2
                ["1.3.6.1.4.1.318.1.1.25.1.2.1.7.1.2"] = "38",   // uioSensorStatusHumidity
            };
            var lines = File.ReadAllLines(SnmpdRecordingProcess.RecordingPath("apc-uio-probe"))
                .Select(l => l.Split('|') is [var oid, var type, _] && stale.TryGetValue(oid, out var value) ? $"{oid}|{type}|{value}" : l).ToArray();
            Assert.Equal(2, lines.Count(l => l.EndsWith("|22", StringComparison.Ordinal) || l.EndsWith("|38", StringComparison.Ordinal)));
            // RecordingPath combines an absolute name as it is: the recording is this file.
            var recording = Path.Combine(dir.FullName, "apc-uio-probe-lost");
            File.WriteAllLines(recording + ".snmprec", lines);
            await using var snmpd = new SnmpdRecordingProcess(recording, ".1.3.6.1.4.1.318.1.1.25");
            await snmpd.InitializeAsync();
            Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");

            foreach (var together in new[] { true, false })
            {
                var (got, _) = await PollOnceAsync(snmpd, "a03-env", "apc-uio-probe", walkColumnsTogether: together);

                var temperature = got["a03-env/temperature{probe=1.2,probe_name=A03-inlet-mid}"];
                var humidity = got["a03-env/humidity{probe=1.2,probe_name=A03-inlet-mid}"];
                Assert.Equal(SampleQuality.DeviceError, temperature.Quality);
                Assert.True(double.IsNaN(temperature.Value), $"{temperature.Value}");
                Assert.Equal(SampleQuality.DeviceError, humidity.Quality);
                Assert.True(double.IsNaN(humidity.Value), $"{humidity.Value}");
                var comm = got["a03-env/comm_status{probe=1.2,probe_name=A03-inlet-mid}"];
                Assert.Equal((3.0, SampleQuality.Good), (comm.Value, comm.Quality));   // commsLost, still published
                Assert.Equal((23.0, SampleQuality.Good), (got["a03-env/temperature{probe=1.1,probe_name=A03-inlet-low}"].Value, got["a03-env/temperature{probe=1.1,probe_name=A03-inlet-low}"].Quality));
                Assert.Equal((27.0, SampleQuality.Good), (got["a03-env/temperature{probe=2.1,probe_name=A03-inlet-high}"].Value, got["a03-env/temperature{probe=2.1,probe_name=A03-inlet-high}"].Quality));
                Assert.Equal(3 * 4, got.Count);
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
