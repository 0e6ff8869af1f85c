using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Core.Tests.Profiles;

/// <summary>What a profile that loads may still get wrong: warnings with line, column and key, the profile kept.</summary>
public sealed class ProfileWarningTests
{
    private static (DeviceProfile Profile, IReadOnlyList<string> Warnings) Load(string yaml, string id = "test-profile")
    {
        var d = new ConfigDiagnostics();
        var p = DeviceProfileLoader.Parse(yaml, id + ".yaml", d, id);
        Assert.True(d.IsEmpty, string.Join("\n", d.Items));
        Assert.NotNull(p);
        return (p, [.. d.SortedWarnings().Select(x => x.ToString())]);
    }

    [Fact]
    public void Regression_a_metric_copied_without_changing_its_oid_passed_check_without_a_word()
    {
        // seconds_on_battery then reported the battery status, and nothing said so.
        const string yaml = """
            profile: test-profile
            vendor: X
            model: Y
            protocol: snmp
            source: UPS-MIB
            metrics:
              - { name: battery_status, oid: .1.3.6.1.2.1.33.1.2.1.0, unit: "1", kind: state, role: ups.battery_status }
              - { name: seconds_on_battery, oid: .1.3.6.1.2.1.33.1.2.1.0, unit: s, kind: gauge, role: ups.seconds_on_battery }
              - { name: runtime_remaining, oid: .1.3.6.1.2.1.33.1.2.3.0, unit: min, kind: gauge, role: ups.runtime_remaining }
            """;
        var (profile, warnings) = Load(yaml);

        Assert.Equal(3, profile.Metrics.Count);
        Assert.Equal(
            ["test-profile.yaml:8:38: warning: metrics[1].oid: metric 'seconds_on_battery' reads the same OID .1.3.6.1.2.1.33.1.2.1.0 as metric 'battery_status' (line 7); a copied metric whose oid was not changed?"],
            warnings);
    }

    [Fact]
    public void Regression_two_modbus_metrics_on_overlapping_registers_passed_check_without_a_word()
    {
        // The profile-commissioning audit: a metric copied from voltage_l1 with only its type changed read half of the
        // float as ct_ratio (17254), and a float32 placed one register into the one before it read two halves of two
        // values. Bit fields of one status register and a counter with its rate share registers on purpose.
        const string yaml = """
            profile: test-profile
            vendor: X
            model: Y
            protocol: modbus
            source: register map
            modbus: { addressing: 1 }
            metrics:
              - { name: voltage_l1, table: input, address: 1, type: float32, unit: V, kind: gauge, role: meter.voltage }
              - { name: ct_ratio, table: input, address: 1, type: uint16, unit: "1", kind: gauge, role: lab.ct }
              - { name: current_l1, table: input, address: 2, type: float32, unit: A, kind: gauge, role: meter.current }
              - { name: setpoint, table: holding, address: 1, type: float32, unit: V, kind: gauge, role: lab.setpoint }
              - { name: energy, table: input, address: 10, type: uint32, unit: kW.h, kind: counter, role: meter.energy_import }
              - { name: power_from_energy, table: input, address: 10, type: uint32, unit: kW.h, kind: counter, role: lab.power, rate: true }
              - { name: alarm, table: input, address: 20, type: bit, bit: 0, unit: "1", kind: state, role: lab.alarm }
              - { name: warning, table: input, address: 20, type: bit, bit: 1, unit: "1", kind: state, role: lab.warning }
              - { name: status, table: input, address: 20, type: uint16, unit: "1", kind: state, role: lab.status }
            """;
        var (profile, warnings) = Load(yaml);

        Assert.Equal(9, profile.Metrics.Count);
        Assert.Equal(
            [
                "test-profile.yaml:9:46: warning: metrics[1].address: metric 'ct_ratio' (input 1, uint16) overlaps the registers of metric 'voltage_l1' (input 1-2, float32, line 8); a copied metric whose address was not changed, or a 2- or 4-register value miscounted?",
                "test-profile.yaml:10:48: warning: metrics[2].address: metric 'current_l1' (input 2-3, float32) overlaps the registers of metric 'voltage_l1' (input 1-2, float32, line 8); a copied metric whose address was not changed, or a 2- or 4-register value miscounted?",
            ],
            warnings);
    }

    [Fact]
    public void Regression_enum_names_in_another_case_passed_check_while_the_schema_rejects_them()
    {
        // The schema's enums are case-sensitive, so an editor or CI flagged a file check accepted without a word.
        // The names are still accepted (site files written that way keep loading), now with a warning each.
        const string yaml = """
            profile: test-profile
            vendor: X
            model: Y
            protocol: modbus
            source: register map
            modbus: { byte_order: abcd }
            metrics:
              - { name: a, table: Holding, address: 0, type: Float32, order: cdab, unit: V, kind: Gauge, role: meter.voltage }
            """;
        var (profile, warnings) = Load(yaml);

        Assert.Equal(WordOrder.ABCD, profile.Modbus!.ByteOrder);
        var register = profile.Metrics[0].Register!;
        Assert.Equal((ModbusTable.Holding, ModbusDataType.Float32, WordOrder.CDAB), (register.Table, register.Type, register.Order));
        Assert.Equal(MetricKind.Gauge, profile.Metrics[0].Kind);
        Assert.Equal(
        [
            "test-profile.yaml:6:23: warning: modbus.byte_order: 'abcd' is accepted as 'ABCD'; write 'ABCD' (the schema and editors accept only that spelling)",
            "test-profile.yaml:8:23: warning: metrics[0].table: 'Holding' is accepted as 'holding'; write 'holding' (the schema and editors accept only that spelling)",
            "test-profile.yaml:8:50: warning: metrics[0].type: 'Float32' is accepted as 'float32'; write 'float32' (the schema and editors accept only that spelling)",
            "test-profile.yaml:8:66: warning: metrics[0].order: 'cdab' is accepted as 'CDAB'; write 'CDAB' (the schema and editors accept only that spelling)",
            "test-profile.yaml:8:87: warning: metrics[0].kind: 'Gauge' is accepted as 'gauge'; write 'gauge' (the schema and editors accept only that spelling)",
        ], warnings);
    }

    [Fact]
    public void Regression_a_misspelt_role_and_undocumented_units_passed_check_silently()
    {
        // meter.frequncy matched no role the twin looks up, so the metric was silently disconnected from it.
        const string yaml = """
            profile: test-profile
            vendor: X
            model: Y
            protocol: snmp
            source: MIB
            metrics:
              - { name: energy, oid: .1.3.6.1.1.0, unit: kWh, kind: counter, role: meter.energy_import }
              - { name: temp, oid: .1.3.6.1.2.0, unit: "°C", kind: gauge, role: room.temperature }
              - { name: freq, oid: .1.3.6.1.3.0, unit: Hz, kind: gauge, role: meter.frequncy }
              - { name: power, oid: .1.3.6.1.4.0, unit: Watt, kind: gauge, role: pdu.power }
              - { name: custom, oid: .1.3.6.1.5.0, unit: furlong, kind: gauge, role: lab.anything_goes }
            """;
        var (profile, warnings) = Load(yaml);

        Assert.Equal(5, profile.Metrics.Count);
        Assert.Equal("meter.frequncy", profile.Metrics[2].Role); // kept as written: a warning, not an error
        var units = string.Join(", ", ProfileVocabulary.Units);
        const string Tail = "; it is kept as written, but the twin and the centre understand only the units in device-profiles/README.md";
        Assert.Equal(
        [
            "test-profile.yaml:7:46: warning: metrics[0].unit: unknown unit 'kWh' (did you mean 'kW.h'?)" + Tail,
            "test-profile.yaml:8:44: warning: metrics[1].unit: unknown unit '°C' (did you mean 'Cel'?)" + Tail,
            "test-profile.yaml:9:67: warning: metrics[2].role: unknown role 'meter.frequncy' (did you mean 'meter.frequency'?); the twin and the simulator look metrics up by role, so this metric feeds none of them",
            "test-profile.yaml:10:45: warning: metrics[3].unit: unknown unit 'Watt' (did you mean 'W'?)" + Tail,
            $"test-profile.yaml:11:46: warning: metrics[4].unit: unknown unit 'furlong' (documented units: {units})" + Tail,
        ], warnings);
    }

    [Theory]
    [InlineData("w", "W")]
    [InlineData("KW", "kW")]
    [InlineData("Wh", "W.h")]
    [InlineData("kVAr", "kvar")]
    [InlineData("rpm", "/min")]
    [InlineData("degC", "Cel")]
    [InlineData("Hzz", "Hz")]
    public void Unit_suggestions_are_documented_units(string written, string suggested)
    {
        Assert.Equal(suggested, ProfileVocabulary.SuggestUnit(written));
        Assert.True(ProfileVocabulary.IsKnownUnit(suggested));
    }

    [Fact]
    public void A_role_far_from_every_known_one_lists_the_area_roles()
    {
        var warning = ProfileVocabulary.RoleWarning("room.co2_concentration");
        Assert.Equal("unknown role 'room.co2_concentration' (known room. roles: temperature, humidity, pressure, leak, leak_changes); the twin and the simulator look metrics up by role, so this metric feeds none of them", warning);
        Assert.Null(ProfileVocabulary.RoleWarning("crah.supply_temperature"));
        Assert.Null(ProfileVocabulary.RoleWarning("lab.anything"));
    }

    [Fact]
    public void Regression_an_invalid_label_oid_also_reported_label_tag_needs_label_oid()
    {
        // The key was there, only invalid: the follow-on "label_tag needs label_oid" sent the reader looking for a missing key.
        const string yaml = """
            profile: test-profile
            vendor: X
            model: Y
            protocol: snmp
            source: MIB
            tables:
              - name: outlet
                index_tag: outlet
                label_oid: 1.3.6.x
                label_tag: outlet_name
                columns:
                  - { name: outlet_current, oid: .1.3.6.1.4, unit: A, kind: gauge, role: pdu.outlet_current }
            """;
        var d = new ConfigDiagnostics();
        Assert.Null(DeviceProfileLoader.Parse(yaml, "test-profile.yaml", d, "test-profile"));
        Assert.Equal(
            ["test-profile.yaml:9:16: tables[0].label_oid: '1.3.6.x' is not an OID (dotted numbers, e.g. .1.3.6.1.2.1.1.3.0)"],
            d.Sorted().Select(x => x.ToString()));

        // A missing label_oid is still reported.
        d = new ConfigDiagnostics();
        Assert.Null(DeviceProfileLoader.Parse(yaml.Replace("    label_oid: 1.3.6.x\n", "", StringComparison.Ordinal), "test-profile.yaml", d, "test-profile"));
        Assert.Equal(["test-profile.yaml:9:16: tables[0].label_tag: label_tag needs label_oid"], d.Sorted().Select(x => x.ToString()));
    }

    [Fact]
    public void Label_names_name_oid_labels_and_a_bad_key_value_or_missing_label_oid_is_named_at_its_line()
    {
        const string yaml = """
            profile: test-profile
            vendor: X
            model: Y
            protocol: snmp
            source: MIB
            tables:
              - name: temperature
                index_tag: sensor
                label_oid: .1.3.6.1.4.1.476.1.42.3.4.1.3.3.1.2
                label_tag: measures
                label_names:
                  .1.3.6.1.4.1.476.1.42.3.4.1.1.3: Supply air
                  1.3.6.1.4.1.476.1.42.3.4.1.1.2: Return air
                columns:
                  - { name: temperature, oid: .1.3.6.1.4.1.476.1.42.3.4.1.3.3.1.3, unit: Cel, kind: gauge, role: crac.air_temperature }
            """;
        var d = new ConfigDiagnostics();
        var profile = DeviceProfileLoader.Parse(yaml, "test-profile.yaml", d, "test-profile");
        Assert.Empty(d.Sorted());
        Assert.Equal(
            new Dictionary<string, string> { [".1.3.6.1.4.1.476.1.42.3.4.1.1.3"] = "Supply air", [".1.3.6.1.4.1.476.1.42.3.4.1.1.2"] = "Return air" },
            profile!.Tables[0].LabelNames);

        d = new ConfigDiagnostics();
        Assert.Null(DeviceProfileLoader.Parse(yaml.Replace("1.3.6.1.4.1.476.1.42.3.4.1.1.2: Return air", "lgpEnvReturnAirTemperature: Return air", StringComparison.Ordinal)
            .Replace("Supply air\n", "\n", StringComparison.Ordinal), "test-profile.yaml", d, "test-profile"));
        Assert.Equal(
            [
                "test-profile.yaml:12:39: tables[0].label_names..1.3.6.1.4.1.476.1.42.3.4.1.1.3: expected the row label for this OID, got nothing",
                "test-profile.yaml:13:7: tables[0].label_names.lgpEnvReturnAirTemperature: label_names keys are the OIDs the label column returns (dotted numbers, e.g. .1.3.6.1.4.1.476.1.42.3.4.1.1.3), got 'lgpEnvReturnAirTemperature'",
            ],
            d.Sorted().Select(x => x.ToString()));

        d = new ConfigDiagnostics();
        Assert.Null(DeviceProfileLoader.Parse(yaml.Replace("    label_oid: .1.3.6.1.4.1.476.1.42.3.4.1.3.3.1.2\n", "", StringComparison.Ordinal), "test-profile.yaml", d, "test-profile"));
        Assert.Equal(
            [
                "test-profile.yaml:9:16: tables[0].label_tag: label_tag needs label_oid",
                "test-profile.yaml:11:7: tables[0].label_names: label_names needs label_oid (the column whose OID values they name)",
            ],
            d.Sorted().Select(x => x.ToString()));
    }
}
