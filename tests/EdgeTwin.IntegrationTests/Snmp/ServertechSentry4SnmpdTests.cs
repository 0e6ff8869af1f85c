using EdgeTwin.Core.Samples;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>
/// The shipped servertech-sentry4 profile read by the agent's SNMP source from net-snmp's snmpd serving a recording of a
/// Sentry4-MIB subtree (Recordings/servertech-sentry4.snmprec): a 3-phase PRO2 master unit with a link unit in its chain,
/// the MIB's tenths and hundredths, three-part table indexes (unit.cord.N) as tags, and the MIB's "no reading" values.
/// </summary>
public sealed class ServertechSentry4SnmpdTests
{
    [Fact]
    public async Task Sentry4_reads_cord_power_line_phase_branch_and_outlet_rows_and_probes_in_celsius()
    {
        await using var snmpd = new SnmpdRecordingProcess("servertech-sentry4", ".1.3.6.1.4.1.1718.4");
        await snmpd.InitializeAsync();
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");

        var (got, registry) = await ShippedSnmpProfilesSnmpdTests.PollOnceAsync(snmpd, "pdu-c01", "servertech-sentry4");

        // Input cord A of unit A: untagged, so the twin and the PUE take input_power as the PDU's power.
        var power = got["pdu-c01/input_power"];
        Assert.Equal((6215.0, SampleQuality.Good), (power.Value, power.Quality));
        Assert.Equal(("W", "pdu.power"), (registry[power.Series].Unit, registry[power.Series].Role));
        Assert.Empty(registry[power.Series].Tags ?? []);
        Assert.Equal(6540, got["pdu-c01/input_apparent_power"].Value);
        Assert.Equal(0.95, got["pdu-c01/input_power_factor"].Value);            // 95 hundredths
        Assert.Equal(12345.6, got["pdu-c01/input_energy"].Value, 9);            // 123456 tenths of kWh
        Assert.Equal("kW.h", registry[got["pdu-c01/input_energy"].Series].Unit);
        Assert.Equal(50, got["pdu-c01/input_frequency"].Value, 9);              // 500 tenths of Hz
        Assert.Equal((0.0, SampleQuality.Good), (got["pdu-c01/temperature_scale"].Value, got["pdu-c01/temperature_scale"].Quality));

        // Lines in hundredths of A, one row per conductor (N included), tagged with the MIB's three-part index.
        var l1 = got["pdu-c01/line_current{line=1.1.1,line_label=L1}"];
        Assert.Equal(10.12, l1.Value, 9);
        Assert.Equal(("A", "pdu.phase_current"), (registry[l1.Series].Unit, registry[l1.Series].Role));
        Assert.Equal(8.75, got["pdu-c01/line_current{line=1.1.2,line_label=L2}"].Value, 9);
        Assert.Equal(9.3, got["pdu-c01/line_current{line=1.1.3,line_label=L3}"].Value, 9);
        Assert.Equal(2.15, got["pdu-c01/line_current{line=1.1.4,line_label=N}"].Value, 9);

        // Phases: tenths of V, W.
        Assert.Equal(230.4, got["pdu-c01/phase_voltage{phase=1.1.1,phase_label=L1-N}"].Value, 9);
        Assert.Equal(231.1, got["pdu-c01/phase_voltage{phase=1.1.3,phase_label=L3-N}"].Value, 9);
        Assert.Equal(1905, got["pdu-c01/phase_power{phase=1.1.2,phase_label=L2-N}"].Value);

        // Six branch circuits, hundredths of A.
        Assert.Equal([5.12, 5.0, 4.3, 4.45, 4.7, 4.6], [.. Enumerable.Range(1, 6).Select(b => Math.Round(got[$"pdu-c01/branch_current{{branch=1.1.{b},branch_label=BR{b}}}"].Value, 9))]);
        Assert.Equal("pdu.breaker_current", registry[got["pdu-c01/branch_current{branch=1.1.1,branch_label=BR1}"].Series].Role);

        // Outlets of the master (unit 1) and of the link unit (unit 2) are told apart by the index's first part.
        Assert.Equal(1.42, got["pdu-c01/outlet_current{outlet=1.1.1,outlet_name=web01-psu1}"].Value, 9);
        Assert.Equal(310, got["pdu-c01/outlet_power{outlet=1.1.1,outlet_name=web01-psu1}"].Value);
        Assert.Equal(3.77, got["pdu-c01/outlet_current{outlet=2.1.1,outlet_name=db01-psu1}"].Value, 9);
        Assert.Equal(840, got["pdu-c01/outlet_power{outlet=2.1.1,outlet_name=db01-psu1}"].Value);
        Assert.Equal("pdu.outlet_current", registry[got["pdu-c01/outlet_current{outlet=2.1.1,outlet_name=db01-psu1}"].Series].Role);

        // Probes: tenths of °C as the rack inlet; an unplugged probe (lost, with the MIB's -410 / -1) is no reading;
        // the position never connected (notFound) gives no series at all.
        var inlet = got["pdu-c01/temperature{probe=1.1,probe_name=C01-inlet}"];
        Assert.Equal((24.3, SampleQuality.Good), (Math.Round(inlet.Value, 9), inlet.Quality));
        Assert.Equal(("Cel", "rack.inlet_temperature"), (registry[inlet.Series].Unit, registry[inlet.Series].Role));
        Assert.Equal(41, got["pdu-c01/humidity{probe=1.1,probe_name=C01-inlet}"].Value);
        Assert.Equal("rack.inlet_humidity", registry[got["pdu-c01/humidity{probe=1.1,probe_name=C01-inlet}"].Series].Role);
        Assert.Equal(SampleQuality.DeviceError, got["pdu-c01/temperature{probe=2.1,probe_name=C01-inlet-top}"].Quality);
        Assert.Equal(SampleQuality.DeviceError, got["pdu-c01/humidity{probe=2.1,probe_name=C01-inlet-top}"].Quality);
        Assert.Equal(8, got["pdu-c01/temperature_status{probe=2.1,probe_name=C01-inlet-top}"].Value);   // lost
        Assert.DoesNotContain(got.Keys, k => k.Contains("probe=1.2", StringComparison.Ordinal));

        // Every row read, nothing else: 6 scalars, 4 lines, 3 phases × 2, 6 branches, 5 outlets × 2, 3 probes × 2 × 2.
        Assert.Equal(6 + 4 + 6 + 6 + 10 + 12, got.Count);
    }

    /// <summary>
    /// A probe whose status says its reading failed (DeviceStatus readError(9) "read failure", noComm(10) "unreachable",
    /// lost(8) "disconnected") while the PDU still serves a plausible value (25.1 °C, 45 %): published as a Good rack inlet
    /// reading before, as only -410 / -1 were flagged.
    /// </summary>
    [Fact]
    public async Task Regression_a_sentry4_probe_whose_status_says_read_failure_was_published_as_a_good_reading()
    {
        await using var snmpd = new SnmpdRecordingProcess("servertech-sentry4", ".1.3.6.1.4.1.1718.4");
        await snmpd.InitializeAsync();
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");

        var (got, _) = await ShippedSnmpProfilesSnmpdTests.PollOnceAsync(snmpd, "pdu-c01", "servertech-sentry4");

        var temperature = got["pdu-c01/temperature{probe=2.2,probe_name=C01-rear}"];
        var humidity = got["pdu-c01/humidity{probe=2.2,probe_name=C01-rear}"];
        Assert.Equal(SampleQuality.DeviceError, temperature.Quality);
        Assert.True(double.IsNaN(temperature.Value));
        Assert.Equal(SampleQuality.DeviceError, humidity.Quality);
        Assert.True(double.IsNaN(humidity.Value));
        Assert.Equal(9, got["pdu-c01/temperature_status{probe=2.2,probe_name=C01-rear}"].Value);   // readError, still published
        Assert.Equal(10, got["pdu-c01/humidity_status{probe=2.2,probe_name=C01-rear}"].Value);     // noComm
        Assert.Equal(SampleQuality.Good, got["pdu-c01/temperature{probe=1.1,probe_name=C01-inlet}"].Quality);   // normal(0): a reading
    }

    [Fact]
    public async Task Sentry4_set_to_fahrenheit_flags_its_temperature_scale_out_of_range()
    {
        // The probes' values follow st4TempSensorScale; a profile cannot convert them, so a PDU set to °F must show.
        var dir = Directory.CreateTempSubdirectory("sentry4-f-");
        try
        {
            var lines = File.ReadAllLines(SnmpdRecordingProcess.RecordingPath("servertech-sentry4"))
                .Select(l => l.StartsWith("1.3.6.1.4.1.1718.4.1.9.1.10.0|", StringComparison.Ordinal) ? "1.3.6.1.4.1.1718.4.1.9.1.10.0|2|1" : l);
            // RecordingPath combines an absolute name as it is: the recording is this file.
            var recording = Path.Combine(dir.FullName, "servertech-sentry4-fahrenheit");
            File.WriteAllLines(recording + ".snmprec", lines);
            await using var snmpd = new SnmpdRecordingProcess(recording, ".1.3.6.1.4.1.1718.4");
            await snmpd.InitializeAsync();
            Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");

            var (got, _) = await ShippedSnmpProfilesSnmpdTests.PollOnceAsync(snmpd, "pdu-c01", "servertech-sentry4");

            Assert.Equal((1.0, SampleQuality.OutOfRange), (got["pdu-c01/temperature_scale"].Value, got["pdu-c01/temperature_scale"].Quality));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
