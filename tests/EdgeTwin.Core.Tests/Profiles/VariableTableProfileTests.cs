using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;

namespace EdgeTwin.Core.Tests.Profiles;

/// <summary>
/// The profile keys of a generic variable table (Rittal CMC III cmcIIIVarTable): a table filter on a text column
/// (<c>matches</c>), a column's per-row scale (<c>row_scale</c>), unit check (<c>row_unit</c>) and status gate
/// (<c>row_status</c>); read, and refused at
/// file, line and key as <c>edgetwin check</c> prints them.
/// </summary>
public sealed class VariableTableProfileTests
{
    private const string Head = """
        profile: test-profile
        vendor: X
        model: Y
        protocol: snmp
        source: a MIB
        """;

    private static IReadOnlyList<string> Problems(string yaml)
    {
        var d = new ConfigDiagnostics();
        var p = DeviceProfileLoader.Parse(yaml, "test-profile.yaml", d, "test-profile");
        Assert.Null(p);
        return [.. d.Sorted().Select(x => x.ToString())];
    }

    [Fact]
    public void A_text_filter_a_row_scale_and_a_row_unit_are_read()
    {
        const string yaml = Head + """

            tables:
              - name: temperature
                index_tag: variable
                filter: { oid: .1.3.6.1.4.1.2606.7.4.2.2.1.3, matches: ["Temperature.Value", "*.Inlet.Value"] }
                columns:
                  - { name: temperature, oid: .1.3.6.1.4.1.2606.7.4.2.2.1.11, unit: Cel, kind: gauge, role: rack.inlet_temperature,
                      row_scale: { oid: .1.3.6.1.4.1.2606.7.4.2.2.1.7 }, row_unit: { oid: 1.3.6.1.4.1.2606.7.4.2.2.1.5, matches: ["degree C", "°C"] } }
            """;
        var d = new ConfigDiagnostics();
        var p = DeviceProfileLoader.Parse(yaml, "test-profile.yaml", d, "test-profile");

        Assert.Empty(d.Sorted());
        var table = Assert.Single(p!.Tables);
        Assert.Equal(".1.3.6.1.4.1.2606.7.4.2.2.1.3", table.Filter!.Oid);
        Assert.Equal(["Temperature.Value", "*.Inlet.Value"], table.Filter.Matches!.Patterns);
        var column = Assert.Single(table.Columns);
        Assert.Equal(".1.3.6.1.4.1.2606.7.4.2.2.1.7", column.RowScale!.Oid);
        Assert.Equal(".1.3.6.1.4.1.2606.7.4.2.2.1.5", column.RowUnit!.Oid);
        Assert.Equal(["degree C", "°C"], column.RowUnit.Matches.Patterns);
    }

    [Fact]
    public void Selector_scale_and_unit_mistakes_are_reported_at_their_key()
    {
        const string yaml = Head + """

            metrics:
              - { name: uptime, oid: .1.3.6.1.2.1.1.3.0, unit: s, kind: gauge, role: net.uptime, row_scale: { oid: .1.3.6.1.2.1.1.4 } }
            tables:
              - name: temperature
                index_tag: variable
                filter: { oid: .1.3.6.1.4.1.2606.7.4.2.2.1.x, matches: ["Temperature.Value"], values: [1] }
                columns:
                  - { name: temperature, oid: .1.3.6.1.4.1.2606.7.4.2.2.1.11, unit: Cel, kind: gauge, role: rack.inlet_temperature,
                      row_scale: { oid: .1.3.6.1.4.1.2606.7.4.2.2.1.7, form: factor }, row_unit: { oid: .1.3.6.1.4.1.2606.7.4.2.2.1.5, matches: [] } }
              - name: humidity
                index_tag: variable
                filter: { oid: .1.3.6.1.4.1.2606.7.4.2.2.1.3, matches: ["Humidity.Value"], match: x }
                columns:
                  - { name: humidity, oid: .1.3.6.1.4.1.2606.7.4.2.2.1.11, unit: "%", kind: gauge, role: rack.inlet_humidity, row_unit: { matches: ["%"] } }
            """;
        Assert.Equal(
        [
            "test-profile.yaml:7:97: metrics[0].row_scale: row_scale applies to table columns only (it is read from the same row)",
            "test-profile.yaml:11:20: tables[0].filter.oid: '.1.3.6.1.4.1.2606.7.4.2.2.1.x' is not an OID (dotted numbers, e.g. .1.3.6.1.2.1.1.3.0)",
            "test-profile.yaml:11:91: tables[0].filter.values: a filter takes values (integers) or matches (text patterns), not both",
            "test-profile.yaml:14:60: tables[0].columns[0].row_scale.form: unknown key 'form' (known keys: oid)",
            "test-profile.yaml:14:133: tables[0].columns[0].row_unit.matches: matches needs at least one pattern",
            "test-profile.yaml:17:80: tables[1].filter.match: unknown key 'match' (known keys: matches, oid, values)",
            "test-profile.yaml:19:125: tables[1].columns[0].row_unit.oid: missing required key 'oid'",
        ], Problems(yaml));
    }

    [Fact]
    public void A_row_status_is_read_with_the_codes_that_mean_a_reading()
    {
        const string yaml = Head + """

            tables:
              - name: temperature
                index_tag: variable
                columns:
                  - { name: temperature, oid: .1.3.6.1.4.1.2606.7.4.2.2.1.11, unit: Cel, kind: gauge, role: rack.inlet_temperature,
                      row_status: { oid: 1.3.6.1.4.1.2606.7.4.2.2.1.14, values: [1, 2, 3, 4, 5] } }
            """;
        var d = new ConfigDiagnostics();
        var p = DeviceProfileLoader.Parse(yaml, "test-profile.yaml", d, "test-profile");

        Assert.Empty(d.Sorted());
        var status = Assert.Single(Assert.Single(p!.Tables).Columns).RowStatus!;
        Assert.Equal(".1.3.6.1.4.1.2606.7.4.2.2.1.14", status.Oid);
        Assert.Equal([1L, 2, 3, 4, 5], status.Values);
        Assert.True(status.IsReading(4));
        Assert.False(status.IsReading(22));   // okNoValue
        Assert.False(status.IsReading(double.NaN));
    }

    [Fact]
    public void Row_status_mistakes_are_reported_at_their_key()
    {
        const string yaml = Head + """

            metrics:
              - { name: uptime, oid: .1.3.6.1.2.1.1.3.0, unit: s, kind: gauge, role: net.uptime, row_status: { oid: .1.3.6.1.2.1.1.4, values: [1] } }
            tables:
              - name: temperature
                index_tag: variable
                columns:
                  - { name: a, oid: .1.3.6.1.4.1.9.1.11, unit: Cel, kind: gauge, role: rack.inlet_temperature, row_status: { oid: .1.3.6.1.4.1.9.1.11, values: [1] } }
                  - { name: b, oid: .1.3.6.1.4.1.9.1.12, unit: Cel, kind: gauge, role: rack.inlet_temperature, row_status: { oid: .1.3.6.1.4.1.9.1.14, values: [] } }
                  - { name: c, oid: .1.3.6.1.4.1.9.1.13, unit: Cel, kind: gauge, role: rack.inlet_temperature, row_status: { oid: .1.3.6.1.4.1.9.1.14, values: [ok], no_value: [22] } }
                  - { name: d, oid: .1.3.6.1.4.1.9.1.15, unit: Cel, kind: gauge, role: rack.inlet_temperature, row_status: { oid: .1.3.6.1.4.1.9.1.14 } }
            """;
        Assert.Equal(
        [
            "test-profile.yaml:7:98: metrics[0].row_status: row_status applies to table columns only (it is read from the same row)",
            "test-profile.yaml:12:119: tables[0].columns[0].row_status.oid: row_status names the column's own OID; give the status column of the same row (e.g. cmcIIIVarQuality beside cmcIIIVarValueInt)",
            "test-profile.yaml:13:148: tables[0].columns[1].row_status.values: row_status needs at least one value (the status codes under which the row's value is a reading)",
            "test-profile.yaml:14:149: tables[0].columns[2].row_status.values[0]: expected an integer status code, got 'ok'",
            "test-profile.yaml:14:154: tables[0].columns[2].row_status.no_value: unknown key 'no_value' (known keys: oid, values)",
            "test-profile.yaml:15:112: tables[0].columns[3].row_status.values: missing required key 'values'",
        ], Problems(yaml));
    }

    [Theory]
    [InlineData("Temperature.Value", "Temperature.Value", true)]
    [InlineData("Temperature.Value", "System.Temperature.Value", false)]   // exact without a star
    [InlineData("*Temperature.Value", "System.Temperature.Value", true)]
    [InlineData("Air.*.In-*", "Air.Temperature.In-Top", true)]
    [InlineData("Air.*.In-*", "Air.Temperature.Out-Top", false)]
    [InlineData("*", "", true)]
    [InlineData("temperature.value", "Temperature.Value", false)]          // case-sensitive, as the device spells it
    public void Text_patterns_match_whole_values_with_stars(string pattern, string text, bool matches) =>
        Assert.Equal(matches, new TextPatterns([pattern]).Match(System.Text.Encoding.UTF8.GetBytes(text)));

    [Fact]
    public void A_non_ascii_pattern_matches_its_utf8_and_its_iso_8859_1_bytes()
    {
        var celsius = new TextPatterns(["°C"]);
        Assert.True(celsius.Match("°C"u8));
        Assert.True(celsius.Match([0xB0, (byte)'C']));
        Assert.False(celsius.Match("°F"u8));
    }

    [Theory]
    [InlineData(3050, -100, 30.5)]   // RITTAL-CMC-III-MIB: "-100 -> value has to be divided by 100"
    [InlineData(221, -10, 22.1)]
    [InlineData(3, 100, 300)]        // "+100 -> value has to be multiplied by 100"
    [InlineData(24, 1, 24)]
    [InlineData(24, 0, 24)]          // not defined by the MIB: the value as read
    public void The_row_scale_divides_by_a_negative_factor_and_multiplies_by_a_positive_one(double raw, double factor, double expected) =>
        Assert.Equal(expected, ColumnRowScale.Apply(raw, factor));
}
