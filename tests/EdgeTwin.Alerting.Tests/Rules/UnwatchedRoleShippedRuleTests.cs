using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Alerting.Tests.Rules;

/// <summary>
/// The shipped rules on roles the shipped profiles published and no shipped rule matched before: the supply's voltage and
/// frequency (meters), a UPS battery that does not recharge, a cooling unit's supply air, damaged frames on a switch
/// uplink, room humidity and a bearing's kurtosis. Every series is made as the shipped profile publishes it (its unit,
/// kind and role; the profile's scale applied to the values fed), so a rule whose number does not fit the profile fails here.
/// </summary>
public sealed class UnwatchedRoleShippedRuleTests
{
    public static TheoryData<string, string, string, string, string, string?, double, double, double, TimeSpan, string?> Cases => new()
    {
        // rule set, rule, profile, device, metric, row tag (key=value), normal, trouble, inside the hysteresis, hold, alert key (null: the series)
        { "datacenter", "supply-voltage-low", "janitza-umg604", "meter-main", "voltage_l2_n", null, 231.4, 198.0, 208.5, TimeSpan.FromMinutes(10), "meter-main" },
        { "datacenter", "supply-voltage-high", "eastron-sdm120", "meter-it", "voltage", null, 232.0, 258.3, 251.0, TimeSpan.FromMinutes(10), "meter-it" },
        { "datacenter", "supply-frequency-low", "carlo-gavazzi-em24", "meter-gen", "frequency", null, 50.0, 49.3, 49.6, TimeSpan.FromSeconds(30), "meter-gen" },
        { "datacenter", "supply-frequency-high", "siemens-pac3200", "meter-main", "frequency", null, 50.02, 50.8, 50.4, TimeSpan.FromSeconds(30), "meter-main" },
        { "datacenter", "ups-battery-not-recharging", "apc-smart-ups", "ups-apc", "battery_charge", null, 100.0, 61.5, 93.0, TimeSpan.FromHours(24), "ups-apc" },
        { "datacenter", "uplink-in-errors-high", "ietf-if-mib", "core-sw", "in_errors", "if_name=Te1/1/1", 0.0, 4.5, 0.5, TimeSpan.FromMinutes(5), null },
        { "datacenter", "uplink-out-errors-high", "ietf-if-mib", "core-sw", "out_errors", "if_name=Te1/1/2", 0.0, 2.0, 0.5, TimeSpan.FromMinutes(5), null },
        { "datacenter", "cooling-unit-supply-air-warm", "generic-modbus-crac", "crac-1", "supply_temperature", null, 19.5, 29.3, 26.0, TimeSpan.FromMinutes(10), "crac-1" },
        { "datacenter", "cooling-unit-supply-sensor-warm", "liebert-gp-crac", "crac1", "temperature", "measures=Supply air", 18.0, 29.0, 26.0, TimeSpan.FromMinutes(10), "crac1" },
        { "datacenter", "room-humidity-high", "bosch-bme280", "room1-env", "humidity", null, 45.0, 86.0, 78.0, TimeSpan.FromMinutes(10), "room1" },
        { "machine-line", "bearing-kurtosis-high", "generic-vibration-transmitter", "press-1", "vibration_kurtosis", null, 3.1, 7.2, 4.5, TimeSpan.FromMinutes(30), "press-1" },
        { "machine-line", "supply-voltage-low", "schneider-pm5300", "feeder-line1", "voltage_an", null, 229.0, 201.0, 209.0, TimeSpan.FromMinutes(10), "feeder-line1" },
        { "machine-line", "supply-frequency-high", "eastron-sdm630", "meter-line1", "frequency", null, 49.98, 50.7, 50.4, TimeSpan.FromSeconds(30), "meter-line1" },
        { "machine-line", "cabinet-hot", "sensirion-sht3x", "cabinet-climate", "temperature", null, 31.5, 44.2, 38.5, TimeSpan.FromMinutes(5), "cabinet-climate" },
        { "machine-line", "vibration-zone-c", "generic-vibration-transmitter", "press-1", "vibration_rms", null, 1.12, 3.37, 2.63, TimeSpan.FromMinutes(10), "press-1" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Regression_trouble_on_a_role_no_shipped_rule_matched_raised_nothing_with_the_shipped_rules(
        string ruleSet, string rule, string profile, string device, string metric, string? rowTag, double normal, double trouble, double between, TimeSpan hold, string? key)
    {
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", ShippedFiles.Rule(ruleSet, rule)));
        var series = Published(h, profile, device, metric, rowTag);
        key ??= h.Registry[series].Key;

        h.Feed(series, normal);
        h.Advance(hold + TimeSpan.FromMinutes(1));
        h.Feed(series, normal);
        Assert.Null(h.Active(rule));

        // Not before its hold: pending at 90 % of it, firing once it has passed.
        h.Feed(series, trouble);
        Assert.Equal(AlertState.Pending, h.StateOf(rule, key));
        for (var step = 0; step < 9; step++)
        {
            h.Advance(hold / 10);
            h.Feed(series, trouble);
        }

        Assert.Equal(AlertState.Pending, h.StateOf(rule, key));
        h.Advance((hold / 10) + TimeSpan.FromSeconds(1));
        h.Feed(series, trouble);
        var alert = h.Active(rule, key);
        Assert.NotNull(alert);
        Assert.Equal((AlertState.Firing, EventSeverity.Warning), (alert.State, alert.Severity));
        Assert.Contains(ruleSet == "datacenter" && rule == "room-humidity-high" ? "room1" : device, alert.Action, StringComparison.Ordinal);

        // Inside the hysteresis it stays; back to normal it clears.
        h.Advance(TimeSpan.FromSeconds(10));
        h.Feed(series, between);
        Assert.Equal(AlertState.Firing, h.StateOf(rule, key));
        h.Advance(TimeSpan.FromSeconds(10));
        h.Feed(series, normal);
        Assert.Null(h.Active(rule));
    }

    /// <summary>The rules' numbers are in one unit: every shipped profile of the role publishes it in that unit.</summary>
    [Theory]
    [InlineData("meter.voltage", "V")]
    [InlineData("meter.frequency", "Hz")]
    [InlineData("ups.battery_charge", "%")]
    [InlineData("net.in_errors", "1/s")]
    [InlineData("net.out_errors", "1/s")]
    [InlineData("crac.supply_temperature", "Cel")]
    [InlineData("crac.air_temperature", "Cel")]
    [InlineData("room.humidity", "%")]
    [InlineData("machine.vibration_kurtosis", "1")]
    [InlineData("machine.vibration_rms", "mm/s")]
    [InlineData("rack.inlet_temperature", "Cel")]
    public void Every_shipped_profile_publishes_the_role_in_the_unit_of_its_rule(string role, string unit)
    {
        var published = Directory.EnumerateFiles(Path.Combine(ShippedFiles.Repo(), "device-profiles"), "*.yaml")
            .Select(DeviceProfileLoader.LoadFileOrThrow)
            .SelectMany(p => p.AllMetrics.Where(m => m.Role == role).Select(m => (p.Id, m.Name, Unit: UnitOf(m))))
            .ToList();
        Assert.NotEmpty(published);
        Assert.All(published, m => Assert.True(m.Unit == unit, $"{m.Id} {m.Name}: {m.Unit}, the rule is in {unit}"));
    }

    /// <summary>The Liebert rule matches its supply row by the label the profile gives lgpEnvSupplyAirTemperature.</summary>
    [Fact]
    public void The_liebert_profile_labels_its_supply_air_row_as_the_shipped_rule_matches_it()
    {
        var table = DeviceProfileLoader.LoadFileOrThrow(Path.Combine(ShippedFiles.Repo(), "device-profiles", "liebert-gp-crac.yaml")).Tables.Single(t => t.Name == "temperature");
        Assert.Equal("measures", table.LabelTag);
        Assert.Equal("Supply air", table.LabelNames[".1.3.6.1.4.1.476.1.42.3.4.1.1.3"]);
        Assert.Contains("match: { role: crac.air_temperature, tags: { measures: \"Supply air\" } }", string.Join("\n", ShippedFiles.Rule("datacenter", "cooling-unit-supply-sensor-warm")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_ups_that_recharges_within_a_day_after_an_outage_raises_nothing()
    {
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", ShippedFiles.Rule("datacenter", "ups-battery-not-recharging")));
        var charge = Published(h, "ietf-ups-mib", "ups-ietf", "battery_charge");

        // 40 % left after a long outage, then about 8 % an hour back to full.
        for (var hour = 0; hour <= 12; hour++)
        {
            h.Feed(charge, Math.Min(100, 40 + (8 * hour)));
            h.Advance(TimeSpan.FromHours(1));
        }

        h.Advance(TimeSpan.FromHours(13));
        h.Feed(charge, 100);
        Assert.Null(h.Active("ups-battery-not-recharging"));
    }

    [Fact]
    public async Task Regression_vibration_in_iso_20816_3_zone_d_raised_nothing_with_the_shipped_rules()
    {
        // machine-line.yaml had no rule on a transmitter's velocity RMS but vibration-sensor-stuck: a machine shaking itself
        // apart raised nothing locally. Zone C (over 2.8 mm/s) warns after 10 min, zone D (over 4.5 mm/s) is critical after 1 min.
        await using var h = await VibrationZoneRulesAsync();
        var rms = Published(h, "generic-vibration-transmitter", "press-1", "vibration_rms");
        void Hold(double mmPerSecond, TimeSpan span)
        {
            Readings(h, rms, mmPerSecond, span, TimeSpan.FromSeconds(10));
            h.Feed(rms, mmPerSecond);
        }

        Hold(1.12, TimeSpan.FromMinutes(5));   // zone B: a healthy machine in service
        Assert.Empty(h.Manager.Active());

        // A loose foot: 5.63 mm/s. Zone D after its minute (critical); zone C, which it is above too, after its 10.
        Hold(5.63, TimeSpan.FromSeconds(50));
        Assert.Equal(AlertState.Pending, h.StateOf("vibration-zone-d", "press-1"));
        Hold(5.63, TimeSpan.FromSeconds(20));
        var d = h.Active("vibration-zone-d", "press-1");
        Assert.NotNull(d);
        Assert.Equal((AlertState.Firing, EventSeverity.Critical), (d.State, d.Severity));
        Assert.Contains("press-1", d.Action, StringComparison.Ordinal);
        Assert.Equal(AlertState.Pending, h.StateOf("vibration-zone-c", "press-1"));
        Hold(5.63, TimeSpan.FromMinutes(9));
        var c = h.Active("vibration-zone-c", "press-1");
        Assert.NotNull(c);
        Assert.Equal((AlertState.Firing, EventSeverity.Warning), (c.State, c.Severity));

        // Bolts tightened to 4.2 (inside zone D's hysteresis): critical stays; at 3.1 it clears and zone C stays.
        Hold(4.2, TimeSpan.FromMinutes(1));
        Assert.Equal(AlertState.Firing, h.StateOf("vibration-zone-d", "press-1"));
        Hold(3.1, TimeSpan.FromSeconds(10));
        Assert.Null(h.Active("vibration-zone-d"));
        Assert.Equal(AlertState.Firing, h.StateOf("vibration-zone-c", "press-1"));

        // The drive stops: velocity falls to about 0, below both: everything clears, and a long stop raises nothing.
        Hold(0.02, TimeSpan.FromHours(2));
        Assert.Empty(h.Manager.Active());
    }

    [Fact]
    public async Task A_run_up_through_a_resonance_raises_no_vibration_alert()
    {
        await using var h = await VibrationZoneRulesAsync();
        var rms = Published(h, "generic-vibration-transmitter", "press-1", "vibration_rms");

        // Stopped, then a start passing the foundation's resonance: 7.4 mm/s for 20 s, then steady at 1.3 mm/s.
        h.Feed(rms, 0.02);
        h.Advance(TimeSpan.FromMinutes(30));
        Readings(h, rms, 7.4, TimeSpan.FromSeconds(20), TimeSpan.FromSeconds(5));
        Readings(h, rms, 1.3, TimeSpan.FromMinutes(30), TimeSpan.FromSeconds(10));

        Assert.Empty(h.Manager.Active());
    }

    [Fact]
    public async Task A_process_knock_of_a_few_minutes_raises_no_bearing_kurtosis_alert()
    {
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", ShippedFiles.Rule("machine-line", "bearing-kurtosis-high")));
        var kurtosis = Published(h, "generic-vibration-transmitter", "press-1", "vibration_kurtosis");

        h.Feed(kurtosis, 3.0);
        for (var minute = 0; minute < 8; minute++)
        {
            h.Advance(TimeSpan.FromMinutes(1));
            h.Feed(kurtosis, 5.6);   // a tool strike: impulsive for a few minutes
        }

        h.Advance(TimeSpan.FromMinutes(1));
        h.Feed(kurtosis, 3.1);
        h.Advance(TimeSpan.FromMinutes(40));
        h.Feed(kurtosis, 3.1);
        Assert.Null(h.Active("bearing-kurtosis-high"));
    }

    [Fact]
    public async Task Errors_on_an_access_port_raise_nothing_and_on_an_uplink_name_the_port()
    {
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", ShippedFiles.Rule("datacenter", "uplink-in-errors-high")));
        var uplink = Published(h, "ietf-if-mib", "core-sw", "in_errors", "Te1/1/1");
        var access = Published(h, "ietf-if-mib", "core-sw", "in_errors", "Gi1/0/7");

        for (var minute = 0; minute <= 6; minute++)
        {
            h.Feed(uplink, 3);
            h.Feed(access, 50);   // a bad patch cable to one server: not the rack's uplink
            h.Advance(TimeSpan.FromMinutes(1));
        }

        var alert = Assert.Single(h.Manager.Active());
        Assert.Equal(("uplink-in-errors-high", AlertState.Firing), (alert.Rule, alert.State));
        Assert.Contains("Te1/1/1", alert.Summary, StringComparison.Ordinal);
        Assert.Contains("core-sw", alert.Action, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_loose_neutral_raises_one_low_and_one_high_alert_for_the_meter_not_one_per_phase()
    {
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n"
            + string.Join("\n", ShippedFiles.Rule("datacenter", "supply-voltage-low")) + "\n"
            + string.Join("\n", ShippedFiles.Rule("datacenter", "supply-voltage-high")));
        var l1 = Published(h, "siemens-pac3200", "meter-main", "voltage_l1_n");
        var l2 = Published(h, "siemens-pac3200", "meter-main", "voltage_l2_n");
        var l3 = Published(h, "siemens-pac3200", "meter-main", "voltage_l3_n");

        for (var minute = 0; minute <= 11; minute++)
        {
            h.Feed(l1, 268);   // the neutral point shifted: the lightly loaded phase high, the loaded ones low
            h.Feed(l2, 196);
            h.Feed(l3, 201);
            h.Advance(TimeSpan.FromMinutes(1));
        }

        Assert.Equal(
            [("supply-voltage-high", "meter-main"), ("supply-voltage-low", "meter-main")],
            h.Manager.Active().Where(a => a.State == AlertState.Firing).Select(a => (a.Rule, a.Key)).Order().ToList());
    }

    /// <summary>A series as the agent's source publishes the shipped profile's metric (a rate counter as a gauge in unit/s).</summary>
    private static Task<Harness> VibrationZoneRulesAsync() => Harness.StartAsync("alerts:\n  rules:\n"
        + string.Join("\n", ShippedFiles.Rule("machine-line", "vibration-zone-c")) + "\n"
        + string.Join("\n", ShippedFiles.Rule("machine-line", "vibration-zone-d")));

    /// <summary>One reading every <paramref name="every"/> for <paramref name="span"/>, the clock moved after each.</summary>
    private static void Readings(Harness h, SeriesId series, double value, TimeSpan span, TimeSpan every)
    {
        for (var t = TimeSpan.Zero; t < span; t += every)
        {
            h.Feed(series, value);
            h.Advance(every);
        }
    }

    /// <summary>The series as the shipped profile publishes it; <paramref name="rowTag"/> (<c>if_name=Te1/1/1</c>, or a bare value for <c>if_name</c>) is a table row's label.</summary>
    private static SeriesId Published(Harness h, string profile, string device, string metric, string? rowTag = null)
    {
        var m = DeviceProfileLoader.LoadFileOrThrow(Path.Combine(ShippedFiles.Repo(), "device-profiles", profile + ".yaml")).AllMetrics.Single(x => x.Name == metric);
        var rate = m.Kind == MetricKind.Counter && m.Rate;
        var tag = rowTag?.Split('=', 2) is [var k, var v] ? new KeyValuePair<string, string>(k, v) : rowTag is null ? default : new("if_name", rowTag);
        return h.Registry.GetOrAdd(new SeriesDescriptor(device, m.Name, UnitOf(m), rate ? MetricKind.Gauge : m.Kind, m.Role, rowTag is null ? null : [tag]));
    }

    private static string UnitOf(ProfileMetric m) => m.Kind == MetricKind.Counter && m.Rate ? m.Unit + "/s" : m.Unit;
}
