using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Tests.Config;

namespace EdgeTwin.Core.Tests.Profiles;

public sealed class ShippedProfileTests
{
    public static TheoryData<string> ProfileFiles() => [.. TestFiles.ShippedProfiles().Select(f => Path.GetFileName(f))];

    [Theory]
    [MemberData(nameof(ProfileFiles))]
    public void Profile_loads_and_names_its_source(string file)
    {
        var d = new ConfigDiagnostics();
        var profile = DeviceProfileLoader.LoadFile(Path.Combine(TestFiles.ProfilesDir, file), d);

        Assert.True(d.IsEmpty, string.Join("\n", d.Items));
        Assert.NotNull(profile);
        Assert.Equal(Path.GetFileNameWithoutExtension(file), profile.Id);
        Assert.False(string.IsNullOrWhiteSpace(profile.Source));
        Assert.NotEmpty(profile.AllMetrics);
        Assert.All(profile.AllMetrics, m =>
        {
            Assert.False(string.IsNullOrWhiteSpace(m.Unit));
            Assert.Contains(".", m.Role, StringComparison.Ordinal);
            Assert.True(m.Min is null || m.Max is null || m.Min < m.Max);
        });
    }

    [Fact]
    public void Shipped_profiles_load_without_a_single_warning()
    {
        // Every documented unit and role spelled as documented, every enum name in the schema's case: the profiles a site
        // copies from must not teach the spellings check warns about.
        var d = new ConfigDiagnostics();
        var all = new ProfileCatalog([TestFiles.ProfilesDir]).LoadAll(d);

        Assert.True(d.IsEmpty, string.Join("\n", d.Items));
        Assert.Equal(TestFiles.ShippedProfiles().Count(), all.Count);
        Assert.True(d.Warnings.Count == 0, string.Join("\n", d.Warnings));
        Assert.All(all.SelectMany(p => p.AllMetrics), m => Assert.True(ProfileVocabulary.IsKnownUnit(m.Unit), $"{m.Name}: {m.Unit}"));
    }

    [Fact]
    public void Readme_documents_the_units_and_roles_the_loader_warns_against()
    {
        // One list in code (ProfileVocabulary); the README a profile author reads must say the same.
        var readme = File.ReadAllText(Path.Combine(TestFiles.ProfilesDir, "README.md")).ReplaceLineEndings("\n");
        var unitsText = readme[readme.IndexOf("after scaling, one of ", StringComparison.Ordinal)..readme.IndexOf(" — exactly so", StringComparison.Ordinal)];
        Assert.Equal(ProfileVocabulary.Units, System.Text.RegularExpressions.Regex.Matches(unitsText, "`([^`]+)`").Select(m => m.Groups[1].Value));

        var roles = readme[readme.IndexOf("## Roles", StringComparison.Ordinal)..readme.IndexOf("## Spellings", StringComparison.Ordinal)];
        foreach (var bullet in roles.Split("\n- `", StringSplitOptions.None).Skip(1))
        {
            var area = bullet[..bullet.IndexOf('.', StringComparison.Ordinal)];
            var words = System.Text.RegularExpressions.Regex.Matches(bullet, "[a-z0-9_]+").Select(m => m.Value).ToHashSet(StringComparer.Ordinal);
            Assert.All(ProfileVocabulary.Roles[area], q => Assert.True(words.Contains(q), $"README: {area}.{q} is not documented"));
        }
    }

    [Fact]
    public void At_least_twelve_profiles_cover_the_required_devices()
    {
        var d = new ConfigDiagnostics();
        var all = new ProfileCatalog([TestFiles.ProfilesDir]).LoadAll(d);
        Assert.True(d.IsEmpty, string.Join("\n", d.Items));
        Assert.True(all.Count >= 12, $"only {all.Count} profiles");
        var ids = all.Select(p => p.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var required in (string[])["ietf-ups-mib", "apc-rpdu2", "apc-smart-ups", "raritan-px2", "eaton-epdu", "liebert-gp-crac",
                     "entity-sensor-temperature", "ietf-if-mib", "eastron-sdm630", "schneider-pm5300", "abb-acs580",
                     "maxim-ds18b20", "bosch-bme280", "sensirion-sht3x", "aosong-dht22", "generic-leak-detector", "generic-s0-energy-meter", "linux-cpu-temperature", "linux-host",
                     "eaton-xups", "apc-uio-probe", "siemens-pac3200", "janitza-umg96rm", "servertech-sentry4", "carlo-gavazzi-em24", "eastron-sdm120", "janitza-umg604", "apc-netbotz"])
        {
            Assert.Contains(required, ids);
        }

        Assert.Contains(all, p => p.Protocol == DeviceProtocol.OneWire);
        Assert.Contains(all, p => p.Protocol == DeviceProtocol.I2c);
        Assert.Contains(all, p => p.Protocol == DeviceProtocol.Gpio);
        Assert.Contains(all, p => p.Protocol == DeviceProtocol.System);
    }

    [Fact]
    public void Apc_rpdu2_matches_the_powernet_mib()
    {
        var p = DeviceProfileLoader.LoadFileOrThrow(Path.Combine(TestFiles.ProfilesDir, "apc-rpdu2.yaml"));
        var power = p.FindMetric("total_power")!;
        Assert.Equal(".1.3.6.1.4.1.318.1.1.26.4.3.1.5.1", power.Oid);
        Assert.Equal(0.01, power.Scale);
        Assert.Equal("kW", power.Unit);
        Assert.Equal(12.34, power.Convert(1234), 9);
        var outlet = p.Tables.Single(t => t.Name == "outlet");
        Assert.Equal("outlet", outlet.IndexTag);
        Assert.Equal(".1.3.6.1.4.1.318.1.1.26.9.4.3.1.6", outlet.Columns.Single(c => c.Name == "outlet_current").Oid);
        Assert.Equal(MetricKind.State, p.FindMetric("load_state")!.Kind);
        Assert.Equal("overload", p.FindMetric("load_state")!.States![4]);
    }

    [Fact]
    public void Sdm630_registers_are_zero_based_float32_input_registers()
    {
        var p = DeviceProfileLoader.LoadFileOrThrow(Path.Combine(TestFiles.ProfilesDir, "eastron-sdm630.yaml"));
        var total = p.FindMetric("total_power")!.Register!;
        Assert.Equal(new ModbusRegister(ModbusTable.Input, 0x34, ModbusDataType.Float32), total);
        Assert.Equal(2, total.Count);
        Assert.Equal(0x156, p.FindMetric("total_energy")!.Register!.Address);
        Assert.Equal(MetricKind.Counter, p.FindMetric("total_energy")!.Kind);
    }

    [Fact]
    public void Pm5300_one_based_register_numbers_become_protocol_addresses()
    {
        var p = DeviceProfileLoader.LoadFileOrThrow(Path.Combine(TestFiles.ProfilesDir, "schneider-pm5300.yaml"));
        Assert.Equal(1, p.Modbus!.Addressing);
        Assert.Equal(2999, p.FindMetric("current_a")!.Register!.Address); // "3000 Current A" in the register list
        var energy = p.FindMetric("active_energy_delivered")!.Register!;
        Assert.Equal(ModbusDataType.Int64, energy.Type);
        Assert.Equal(4, energy.Count);
    }

    [Fact]
    public void Acs580_status_bits_share_one_register()
    {
        var p = DeviceProfileLoader.LoadFileOrThrow(Path.Combine(TestFiles.ProfilesDir, "abb-acs580.yaml"));
        var running = p.FindMetric("running")!.Register!;
        var tripped = p.FindMetric("tripped")!.Register!;
        Assert.Equal(50, running.Address);
        Assert.Equal(running.Address, tripped.Address);
        Assert.Equal((2, 3), (running.Bit!.Value, tripped.Bit!.Value));
        Assert.Equal(106, p.FindMetric("motor_current")!.Register!.Address); // 01.07 -> 400107 -> protocol 106
    }

    [Fact]
    public void Local_sensor_profiles_carry_their_driver_settings()
    {
        var s0 = DeviceProfileLoader.LoadFileOrThrow(Path.Combine(TestFiles.ProfilesDir, "generic-s0-energy-meter.yaml"));
        Assert.Equal(SensorDriver.Pulse, s0.Sensor!.Driver);
        Assert.Equal(1000, s0.Sensor.PulsesPerUnit);
        Assert.Equal(TimeSpan.FromMilliseconds(5), s0.Sensor.Debounce);
        var leak = DeviceProfileLoader.LoadFileOrThrow(Path.Combine(TestFiles.ProfilesDir, "generic-leak-detector.yaml"));
        Assert.True(leak.Sensor!.ActiveLow);
        Assert.Equal(PullMode.Up, leak.Sensor.Pull);
        var bme = DeviceProfileLoader.LoadFileOrThrow(Path.Combine(TestFiles.ProfilesDir, "bosch-bme280.yaml"));
        Assert.Equal("4", bme.Sensor!.Parameters["oversampling"]);
        Assert.Equal(["temperature", "humidity", "pressure"], bme.Metrics.Select(m => m.Channel));
    }

    [Fact]
    public void Entity_sensor_table_keeps_only_celsius_rows()
    {
        var p = DeviceProfileLoader.LoadFileOrThrow(Path.Combine(TestFiles.ProfilesDir, "entity-sensor-temperature.yaml"));
        var filter = p.Tables.Single().Filter!;
        Assert.Equal(".1.3.6.1.2.1.99.1.1.1.1", filter.Oid);
        Assert.True(filter.Accepts(8));
        Assert.False(filter.Accepts(6));
    }

    [Fact]
    public void Eaton_xups_publishes_minutes_tenths_of_hz_and_the_ups_mib_state_names()
    {
        // XUPS-MIB: xupsBatTimeRemaining in seconds, xupsInputFrequency/xupsOutputFrequency in 0.1 Hz, xupsOutputSource
        // battery(5) — the name the shipped ups-on-battery rule matches; per-phase output watts for the PUE.
        var p = DeviceProfileLoader.LoadFileOrThrow(Path.Combine(TestFiles.ProfilesDir, "eaton-xups.yaml"));
        var runtime = p.FindMetric("runtime_remaining")!;
        Assert.Equal((".1.3.6.1.4.1.534.1.2.1.0", "min"), (runtime.Oid, runtime.Unit));
        Assert.Equal(30, runtime.Convert(1800), 9);
        Assert.Equal(49.9, p.FindMetric("input_frequency")!.Convert(499), 9);
        Assert.Equal("battery", p.FindMetric("output_source")!.States![5]);
        Assert.Equal(".1.3.6.1.4.1.534.1.6.1.0", p.FindMetric("ambient_temperature")!.Oid);
        var output = p.Tables.Single(t => t.Name == "output");
        Assert.Equal("line", output.IndexTag);
        var watts = output.Columns.Single(c => c.Role == "ups.output_power");
        Assert.Equal((".1.3.6.1.4.1.534.1.4.4.1.4", "W"), (watts.Oid, watts.Unit));
    }

    [Fact]
    public void Apc_uio_probe_reads_celsius_and_skips_ports_without_a_probe()
    {
        var p = DeviceProfileLoader.LoadFileOrThrow(Path.Combine(TestFiles.ProfilesDir, "apc-uio-probe.yaml"));
        var table = p.Tables.Single();
        Assert.Equal(".1.3.6.1.4.1.318.1.1.25.1.2.1.3", table.LabelOid);
        var temperature = table.Columns.Single(c => c.Name == "temperature");
        Assert.Equal((".1.3.6.1.4.1.318.1.1.25.1.2.1.6", "Cel", "rack.inlet_temperature"), (temperature.Oid, temperature.Unit, temperature.Role));
        Assert.Equal("rack.inlet_humidity", table.Columns.Single(c => c.Name == "humidity").Role);
        Assert.True(table.Filter!.Accepts(2)); // commsOK
        Assert.True(table.Filter.Accepts(3)); // commsLost: kept, its -1 readings are flagged
        Assert.False(table.Filter.Accepts(1)); // notInstalled
        // A lost probe's values and alarm status are no reading whatever the card serves (its comm_status stays published).
        foreach (var value in table.Columns.Where(c => c.Name is "temperature" or "humidity" or "alarm_status"))
        {
            Assert.Equal(".1.3.6.1.4.1.318.1.1.25.1.2.1.10", value.RowStatus!.Oid);
            Assert.True(value.RowStatus.IsReading(2));    // commsOK
            Assert.False(value.RowStatus.IsReading(3));   // commsLost
        }
        Assert.Null(table.Columns.Single(c => c.Name == "comm_status").RowStatus);
    }

    [Fact]
    public void Pac3200_offsets_are_protocol_addresses_of_big_endian_floats()
    {
        var p = DeviceProfileLoader.LoadFileOrThrow(Path.Combine(TestFiles.ProfilesDir, "siemens-pac3200.yaml"));
        Assert.Equal(0, p.Modbus!.Addressing);
        Assert.Equal(new ModbusRegister(ModbusTable.Holding, 1, ModbusDataType.Float32), p.FindMetric("voltage_l1_n")!.Register!);
        Assert.Equal(55, p.FindMetric("frequency")!.Register!.Address);
        Assert.Equal(65, p.FindMetric("total_power")!.Register!.Address);
        var energy = p.FindMetric("active_energy_import_t1")!.Register!;
        Assert.Equal((801, ModbusDataType.Float64, 4), (energy.Address, energy.Type, energy.Count));
        Assert.Equal(WordOrder.ABCD, p.Modbus.ByteOrder);
    }
}
