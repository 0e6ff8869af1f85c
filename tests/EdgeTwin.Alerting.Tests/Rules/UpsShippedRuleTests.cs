using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Alerting.Tests.Rules;

/// <summary>The shipped data-centre rules on what the shipped UPS profiles publish during a mains failure.</summary>
public sealed class UpsShippedRuleTests
{
    [Theory]
    [InlineData("ietf-ups-mib", 9.0)]            // upsEstimatedMinutesRemaining: minutes
    [InlineData("apc-smart-ups", 9 * 60 * 100.0)] // upsAdvBatteryRunTimeRemaining: TimeTicks (1/100 s)
    [InlineData("eaton-xups", 9 * 60.0)]          // xupsBatTimeRemaining: seconds
    public async Task Regression_the_shipped_ups_runtime_low_rule_never_fired_for_an_apc_ups(string profileId, double rawFor9Minutes)
    {
        // An APC Smart-UPS on battery with 9 minutes left: apc-smart-ups published runtime_remaining in seconds (540 s),
        // the UPS-MIB profile in minutes, both as role ups.runtime_remaining, and the shipped rule says below: 10. The APC
        // alarm would have come at 10 *seconds* left, i.e. never. Both profiles now publish minutes.
        var metric = RuntimeMetric(profileId);
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", ShippedRule("ups-runtime-low")));
        var series = h.Registry.GetOrAdd(new SeriesDescriptor("ups1", metric.Name, metric.Unit, MetricKind.Gauge, metric.Role));

        h.Feed(series, metric.Convert(rawFor9Minutes * 2)); // 18 min: fine
        Assert.Null(h.Active("ups-runtime-low"));
        h.Feed(series, metric.Convert(rawFor9Minutes));
        Assert.Equal(AlertState.Firing, h.StateOf("ups-runtime-low"));
        Assert.Equal(9, metric.Convert(rawFor9Minutes), 6);
        Assert.Equal("min", metric.Unit);
    }

    [Fact]
    public async Task Regression_a_ups_without_a_runtime_estimate_raised_nothing_as_its_battery_ran_low()
    {
        // A UPS on battery whose card answers noSuchInstance for upsEstimatedMinutesRemaining (the agent publishes NaN,
        // DeviceError) and then reports upsBatteryStatus batteryLow, its own "shutdown is near". The shipped UPS rules
        // were on-battery (one alert at the switch-over) and runtime-low, which never sees a value: the battery running low
        // raised nothing new.
        var rules = ShippedRuleLines()
            .SkipWhile(l => !l.Trim().StartsWith("- name: ups-", StringComparison.Ordinal))
            .TakeWhile(l => !l.Trim().StartsWith("- name:", StringComparison.Ordinal) || l.Trim().StartsWith("- name: ups-", StringComparison.Ordinal))
            .Where(l => !l.TrimStart().StartsWith("targets:", StringComparison.Ordinal));
        Harness.Site.AddStateNames("ups-noruntime", "battery_status", new Dictionary<long, string> { [1] = "unknown", [2] = "batteryNormal", [3] = "batteryLow", [4] = "batteryDepleted" });
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", rules));
        var runtime = h.Registry.GetOrAdd(new SeriesDescriptor("ups-noruntime", "runtime_remaining", "min", MetricKind.Gauge, "ups.runtime_remaining"));
        var status = h.Registry.GetOrAdd(new SeriesDescriptor("ups-noruntime", "battery_status", "1", MetricKind.State, "ups.battery_status"));

        h.Feed(runtime, double.NaN, SampleQuality.DeviceError);
        h.Feed(status, 2);
        Assert.Empty(h.Manager.Active());
        h.Advance(TimeSpan.FromSeconds(10));
        h.Feed(runtime, double.NaN, SampleQuality.DeviceError);
        h.Feed(status, 3);
        var low = Assert.Single(h.Manager.Active());
        Assert.Equal(("ups-battery-low", Core.Events.EventSeverity.Critical, AlertState.Firing), (low.Rule, low.Severity, low.State));
        h.Advance(TimeSpan.FromSeconds(10));
        h.Feed(status, 4);
        Assert.Equal(AlertState.Firing, h.StateOf("ups-battery-low"));

        // Mains back and recharging: batteryNormal clears it.
        h.Advance(TimeSpan.FromSeconds(10));
        h.Feed(status, 2);
        Assert.Empty(h.Manager.Active());
    }

    [Fact]
    public async Task Regression_the_shipped_phase_current_rule_warned_on_32a_feeds_at_40_percent_and_never_at_the_breaker()
    {
        // pdu-phase-current-high was `above: 12.8` A ("80 % of a 16 A breaker") for every PDU: small-dc-room's 32 A
        // single-phase feeds warned at 13 A (40 % of their breaker) in normal operation, and nothing said critical when a
        // 16 A phase went past its breaker. It is now % of each feed's own breaker_a, from the site's power chain.
        var rules = ShippedRule("pdu-phase-current-high").Concat(ShippedRule("pdu-phase-current-over-breaker"));
        Harness.Site.AddBreaker("pdu-32a", 32);
        Harness.Site.AddBreaker("pdu-16a", 16);
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", rules));
        SeriesId Phase(string device, string phase) => h.Registry.GetOrAdd(new SeriesDescriptor(device, "phase_current", "A", MetricKind.Gauge, "pdu.phase_current", [new("phase", phase)]));
        var big = Phase("pdu-32a", "1");
        var small = Phase("pdu-16a", "1");
        var unknown = Phase("pdu-nobreaker", "1"); // a PDU the power chain does not list: no rating to compare with

        h.Feed(big, 14);
        h.Feed(small, 12);
        h.Feed(unknown, 14);
        h.Advance(TimeSpan.FromMinutes(2));
        Assert.Empty(h.Manager.Active());

        h.Feed(small, 13.5);
        h.Advance(TimeSpan.FromSeconds(61));
        var warning = Assert.Single(h.Manager.Active());
        Assert.Equal(("pdu-phase-current-high", "pdu-16a/phase_current{phase=1}", AlertState.Firing), (warning.Rule, warning.Key, warning.State));
        Assert.Equal("device pdu-16a (site dc1): phase_current{phase=1} 13.5 A, 84.4 % of its 16 A breaker, above 80 % since 12:03:00 UTC", warning.Summary);

        h.Feed(small, 17);
        h.Advance(TimeSpan.FromSeconds(11));
        Assert.Equal(AlertState.Firing, h.StateOf("pdu-phase-current-over-breaker"));
        h.Feed(big, 30);
        h.Advance(TimeSpan.FromSeconds(61));
        Assert.Equal(AlertState.Firing, h.StateOf("pdu-phase-current-high", "pdu-32a/phase_current{phase=1}"));
        Assert.Equal(AlertState.Inactive, h.StateOf("pdu-phase-current-over-breaker", "pdu-32a/phase_current{phase=1}"));
    }

    [Fact]
    public async Task Regression_a_breaker_alert_gave_neither_the_current_in_amps_nor_the_breakers_rating()
    {
        // pdu-a01-a overloaded on the simulator: "rack A01 (room1, site sim): phase_current{phase=1} 110.313 % of breaker
        // above 100 % of breaker". The operator at the rack reads amps on the PDU's display and needs the breaker's size.
        Harness.Site.AddBreaker("pdu-amps", 16);
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", ShippedRule("pdu-phase-current-over-breaker")));
        var phase = h.Registry.GetOrAdd(new SeriesDescriptor("pdu-amps", "phase_current", "A", MetricKind.Gauge, "pdu.phase_current", [new("phase", "1")]));
        h.Feed(phase, 17.65);
        h.Advance(TimeSpan.FromSeconds(11));
        h.Feed(phase, 17.65);
        Assert.Equal("device pdu-amps (site dc1): phase_current{phase=1} 17.65 A, 110.3 % of its 16 A breaker, above 100 % since 12:00:10 UTC", h.Active("pdu-phase-current-over-breaker")!.Summary);

        h.Feed(phase, 12.15);
        h.Advance(TimeSpan.FromSeconds(11));
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Resolved), "the resolved message");
        var resolved = h.Sink.All.Single(a => a.Status == AlertStatus.Resolved);
        Assert.Equal("device pdu-amps (site dc1): phase_current{phase=1} 12.15 A, 75.9 % of its 16 A breaker, back below 95 % (clear level); peak 110.3 % of breaker", resolved.Summary);
        Assert.Equal("75.9 % of breaker", resolved.ValueText);
    }

    [Theory]
    [InlineData("ietf-ups-mib")]  // upsOutputPercentLoad, per output line
    [InlineData("apc-smart-ups")] // upsHighPrecOutputLoad, tenths of %
    [InlineData("eaton-xups")]    // xupsOutputLoad, %
    public async Task Regression_a_ups_at_98_percent_load_raised_nothing(string profileId)
    {
        // Mains failure, racks' fans ramping on the warm room: the UPS's output climbs to 98 % of its rating. Past 100 %
        // it goes to bypass (no mains to bypass to: the load drops) or its runtime collapses. The shipped rules had no
        // rule on ups.load at all.
        var d = new ConfigDiagnostics();
        var metric = DeviceProfileLoader.LoadFile(Path.Combine(ShippedFiles.Repo(), "device-profiles", profileId + ".yaml"), d)!.AllMetrics.Single(m => m.Role == "ups.load");
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", ShippedRule("ups-load-high").Concat(ShippedRule("ups-overload"))));
        var load = h.Registry.GetOrAdd(new SeriesDescriptor("ups1", metric.Name, metric.Unit, MetricKind.Gauge, metric.Role, profileId == "ietf-ups-mib" ? [new("line", "1")] : null));
        var raw = metric.Scale == 1 ? 1.0 : 10.0;

        h.Feed(load, metric.Convert(70 * raw));
        h.Advance(TimeSpan.FromMinutes(2));
        Assert.Empty(h.Manager.Active());
        h.Feed(load, metric.Convert(98 * raw));
        h.Advance(TimeSpan.FromSeconds(61));
        Assert.Equal(AlertState.Firing, h.StateOf("ups-load-high"));
        Assert.Equal(AlertState.Inactive, h.StateOf("ups-overload"));
        h.Feed(load, metric.Convert(104 * raw));
        h.Advance(TimeSpan.FromSeconds(6));
        Assert.Equal(AlertState.Firing, h.StateOf("ups-overload"));

        // Load shed: both clear.
        h.Feed(load, metric.Convert(80 * raw));
        Assert.Empty(h.Manager.Active());
    }

    [Theory]
    [InlineData("ietf-ups-mib", 5)]  // upsOutputSource battery(5)
    [InlineData("apc-smart-ups", 3)] // upsBasicOutputStatus onBattery(3)
    [InlineData("eaton-xups", 5)]    // xupsOutputSource battery(5)
    public async Task Shipped_ups_on_battery_rule_fires_on_each_shipped_ups_profiles_battery_state(string profileId, int onBattery)
    {
        // The rule matches state names, not codes: a UPS profile whose output source calls "on battery" anything else
        // than battery/onBattery would never raise it.
        var d = new ConfigDiagnostics();
        var metric = DeviceProfileLoader.LoadFile(Path.Combine(ShippedFiles.Repo(), "device-profiles", profileId + ".yaml"), d)!.AllMetrics.Single(m => m.Role == "ups.output_source");
        var device = "ups-" + profileId;
        Harness.Site.AddStateNames(device, metric.Name, metric.States!);
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", ShippedRule("ups-on-battery")));
        var source = h.Registry.GetOrAdd(new SeriesDescriptor(device, metric.Name, metric.Unit, MetricKind.State, metric.Role));
        var normal = metric.States!.Single(s => s.Value is "normal" or "onLine").Key;

        h.Feed(source, normal);
        Assert.Empty(h.Manager.Active());
        h.Feed(source, onBattery);
        Assert.Equal(AlertState.Firing, h.StateOf("ups-on-battery"));
        h.Feed(source, normal);
        Assert.Empty(h.Manager.Active());
    }

    [Theory]
    [InlineData("ietf-ups-mib", 5, 2)]   // upsOutputSource battery(5) → none(2) when the battery is depleted
    [InlineData("apc-smart-ups", 3, 11)] // upsBasicOutputStatus onBattery(3) → sleepingUntilPowerReturn(11)
    [InlineData("apc-smart-ups", 3, 7)]  // … or off(7)
    [InlineData("eaton-xups", 5, 2)]     // xupsOutputSource battery(5) → none(2)
    public async Task Regression_a_ups_whose_battery_ran_out_cleared_ups_on_battery_and_nothing_said_its_output_was_off(string profileId, int onBattery, int off)
    {
        // The simulator's utility-fail run to the end (the agent on the real pipeline): ups1 went from battery(5) to
        // none(2), the shipped ups-on-battery cleared ("reports none (state code 2), no longer battery / onBattery"), the
        // relay went off, and no shipped rule said the load had lost its power.
        var d = new ConfigDiagnostics();
        var metric = DeviceProfileLoader.LoadFile(Path.Combine(ShippedFiles.Repo(), "device-profiles", profileId + ".yaml"), d)!.AllMetrics.Single(m => m.Role == "ups.output_source");
        var device = "ups-off-" + profileId;
        Harness.Site.AddStateNames(device, metric.Name, metric.States!);
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", ShippedRule("ups-on-battery").Concat(ShippedRule("ups-output-off"))));
        var source = h.Registry.GetOrAdd(new SeriesDescriptor(device, metric.Name, metric.Unit, MetricKind.State, metric.Role));

        h.Feed(source, onBattery);
        Assert.Equal(AlertState.Firing, h.StateOf("ups-on-battery"));
        h.Feed(source, off);
        var alert = Assert.Single(h.Manager.Active());
        Assert.Equal(("ups-output-off", Core.Events.EventSeverity.Critical, AlertState.Firing), (alert.Rule, alert.Severity, alert.State));
        Assert.Contains($"reports {metric.States![off]} (state code {off})", alert.Summary, StringComparison.Ordinal);
        Assert.NotNull(alert.Action);
    }

    [Fact]
    public void The_site_index_takes_each_metered_feeds_breaker_from_the_power_chain()
    {
        var result = SiteConfigLoader.Load(
            Path.Combine(ShippedFiles.Repo(), "device-profiles", "examples", "small-dc-room.yaml"),
            new SiteConfigLoadOptions { ProfilesDir = Path.Combine(ShippedFiles.Repo(), "device-profiles") });
        Assert.True(result.Config is not null, string.Join("\n", result.Problems));
        var site = new EdgeTwin.Alerting.Rules.SiteIndex(result.Config);

        Assert.Equal(32, site.BreakerA("pdu-a01-a"));
        Assert.Equal(16, site.BreakerA("pdu-a02-b"));
        Assert.Null(site.BreakerA("ups1"));
    }

    [Fact]
    public void Every_role_a_shipped_threshold_rule_matches_has_one_unit_in_the_shipped_profiles()
    {
        // A threshold is a number in the unit of the series: a role whose profiles disagree on the unit makes one rule
        // right for one vendor and wrong by a factor for the other (runtime in min vs s was 60×).
        var roles = ShippedRuleLines()
            .Select(l => System.Text.RegularExpressions.Regex.Match(l, @"match: \{ role: ([a-z_.]+) \}"))
            .Where(m => m.Success)
            .Select(m => m.Groups[1].Value)
            .ToHashSet(StringComparer.Ordinal);
        var profiles = new ProfileCatalog([Path.Combine(ShippedFiles.Repo(), "device-profiles")]).LoadAll(new ConfigDiagnostics());
        foreach (var role in roles)
        {
            var units = profiles.SelectMany(p => p.AllMetrics.Where(m => m.Role == role && m.Kind != MetricKind.State).Select(m => (p.Id, m.Unit))).ToList();
            Assert.True(units.Select(u => u.Unit).Distinct(StringComparer.Ordinal).Count() <= 1, $"{role}: {string.Join(", ", units.Select(u => u.Id + " " + u.Unit))}");
        }
    }

    private static ProfileMetric RuntimeMetric(string profileId)
    {
        var d = new ConfigDiagnostics();
        var profile = DeviceProfileLoader.LoadFile(Path.Combine(ShippedFiles.Repo(), "device-profiles", profileId + ".yaml"), d);
        Assert.NotNull(profile);
        return profile.AllMetrics.Single(m => m.Role == "ups.runtime_remaining");
    }

    private static string[] ShippedRuleLines() => File.ReadAllLines(Path.Combine(ShippedFiles.Repo(), "device-profiles", "examples", "alert-rules", "datacenter.yaml"));

    private static IEnumerable<string> ShippedRule(string name) => ShippedFiles.Rule("datacenter", name);
}
