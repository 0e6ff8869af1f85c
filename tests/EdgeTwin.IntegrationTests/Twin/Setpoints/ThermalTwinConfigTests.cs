using EdgeTwin.Agent.Twin.Thermal;
using EdgeTwin.Core.Config;
using EdgeTwin.IntegrationTests.Simulator;

namespace EdgeTwin.IntegrationTests.Twin.Setpoints;

/// <summary>The <c>thermal_twin:</c> section: defaults, mapping onto the twin's options, and problems with file, line and key.</summary>
public sealed class ThermalTwinConfigTests
{
    private static SiteConfigLoadOptions Options => new()
    {
        ProfilesDir = SimPaths.Profiles,
        SectionValidators = ConfigSectionValidators.Discover(typeof(ThermalTwinSectionValidator).Assembly),
    };

    [Fact]
    public void The_example_loads_with_every_key_mapped()
    {
        var result = SiteConfigLoader.Load(Path.Combine(SimPaths.Profiles, "examples", "thermal-twin", "dc-room-setpoint-control.yaml"), Options);
        Assert.True(result.IsValid, string.Join(Environment.NewLine, result.Problems));
        var c = ThermalTwinConfig.From(result.Config!);
        Assert.True(c.Enabled);
        Assert.Equal(TimeSpan.FromSeconds(10), c.Twin.FrameInterval);
        Assert.Equal(TimeSpan.FromHours(24), c.Twin.Window);
        Assert.Equal(40, c.Twin.Settings.ShutdownInletC);
        Assert.Equal(3, c.Twin.Settings.HotSpotSigma);
        Assert.Equal(27, c.InletLimitC);
        Assert.Equal(2, c.MarginK);
        Assert.Equal(TimeSpan.FromMinutes(15), c.OptimiseEvery);
        var sp = c.Setpoints;
        Assert.True(sp.Enabled);
        Assert.Equal(new EdgeTwin.Agent.Twin.Setpoints.SetpointBounds(17, 23, 50, 100), sp.Bounds);
        Assert.Equal(new EdgeTwin.Agent.Twin.Setpoints.SetpointBounds(18, 22, 50, 100), sp.BoundsOf("crac2"));
        Assert.Equal(sp.Bounds, sp.BoundsOf("crac1"));
        Assert.Equal(0.5, sp.MaxSupplyStepK);
        Assert.Equal(5, sp.MaxFanStepPercent);
        Assert.Equal(TimeSpan.FromMinutes(2), sp.MinWriteInterval);
        Assert.Equal(27, c.RollbackInletC);
        Assert.Equal(TimeSpan.FromMinutes(30), sp.RollbackHold);
        Assert.Equal("snmp-rw", sp.WriteCredentials);
        Assert.Equal(TimeSpan.FromMinutes(1), c.Twin.MitigationLeads["raise_fans_lower_setpoints"]);
        Assert.Equal(TimeSpan.FromMinutes(3), c.Twin.MitigationLeads["open_containment"]);
        Assert.Equal(TimeSpan.FromMinutes(15), c.Twin.MitigationLeads["migrate_load"]); // not stated: the default
    }

    [Fact]
    public void Mitigation_lead_times_name_the_plans_actions_and_stay_within_two_hours()
    {
        var yaml = Yaml("""
              mitigation_lead_times:
                open_doors: 3m
                cap_load: 3h
                migrate_load: soon
            """);
        var result = SiteConfigLoader.Parse(yaml, "site.yaml", Options);
        Assert.False(result.IsValid);
        var problems = result.Problems.Select(p => p.ToString()).ToList();
        Assert.Contains("site.yaml:13:5: thermal_twin.mitigation_lead_times.open_doors: unknown key 'open_doors' (known keys: cap_load, migrate_load, open_containment, raise_fans_lower_setpoints, shed_load)", problems);
        Assert.Contains(problems, p => p.StartsWith("site.yaml:14:", StringComparison.Ordinal) && p.Contains("thermal_twin.mitigation_lead_times.cap_load: must be at most 2h", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("site.yaml:15:", StringComparison.Ordinal) && p.Contains("thermal_twin.mitigation_lead_times.migrate_load", StringComparison.Ordinal) && p.Contains("duration", StringComparison.Ordinal));
    }

    [Fact]
    public void Without_the_section_the_code_defaults_hold_and_writing_is_off()
    {
        var result = SiteConfigLoader.Load(Path.Combine(SimPaths.Profiles, "examples", "small-dc-room.yaml"), Options);
        Assert.True(result.IsValid, string.Join(Environment.NewLine, result.Problems));
        var c = ThermalTwinConfig.From(result.Config!);
        Assert.Same(ThermalTwinConfig.Default, c);
        Assert.False(c.Setpoints.Enabled);
        Assert.Equal(new ThermalTwinOptions().FrameInterval, c.Twin.FrameInterval);
        Assert.Equal(27, c.RollbackInletC);

        // A section that sets only some keys keeps the others at their defaults, and writing stays off.
        var partial = SiteConfigLoader.Parse(Yaml("  optimise_every: 5m\n  setpoint_control:\n    max_supply_step_k: 0.3\n"), "site.yaml", Options);
        Assert.True(partial.IsValid, string.Join(Environment.NewLine, partial.Problems));
        var p = ThermalTwinConfig.From(partial.Config!);
        Assert.False(p.Setpoints.Enabled);
        Assert.Equal(0.3, p.Setpoints.MaxSupplyStepK);
        Assert.Equal(TimeSpan.FromMinutes(5), p.OptimiseEvery);
        Assert.Equal(ThermalTwinConfig.Default.Twin.Window, p.Twin.Window);
    }

    [Fact]
    public void Invalid_section_is_rejected_with_file_line_and_key()
    {
        var yaml = Yaml("""
              frame_interval: soon
              inlet_limit_c: 60
              setpoint_control:
                enabled: yes
                min_supply_c: 25
                max_supply_c: 20
                max_supply_stepk: 1
                rollback_hold: 10
                units:
                  crac9: { min_supply_c: 18 }
            """);
        var result = SiteConfigLoader.Parse(yaml, "site.yaml", Options);
        var problems = result.Problems.Select(p => p.ToString()).ToList();
        Assert.False(result.IsValid);
        Assert.Contains(problems, p => p.StartsWith("site.yaml:12:", StringComparison.Ordinal) && p.Contains("thermal_twin.frame_interval", StringComparison.Ordinal) && p.Contains("duration", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("site.yaml:13:", StringComparison.Ordinal) && p.Contains("thermal_twin.inlet_limit_c", StringComparison.Ordinal) && p.Contains("at most 45", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("site.yaml:15:", StringComparison.Ordinal) && p.Contains("thermal_twin.setpoint_control.enabled", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("thermal_twin.setpoint_control", StringComparison.Ordinal) && p.Contains("min_supply_c (25) must be below max_supply_c (20)", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("site.yaml:18:", StringComparison.Ordinal) && p.Contains("unknown key 'max_supply_stepk' (did you mean 'max_supply_step_k'?)", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("site.yaml:19:", StringComparison.Ordinal) && p.Contains("thermal_twin.setpoint_control.rollback_hold", StringComparison.Ordinal));

    }

    [Fact]
    public void Regression_check_passed_an_unknown_cooling_unit_and_credentials_that_the_start_rejected()
    {
        // check said OK, the agent's start failed (exit 1, restart loop) and Ansible's validate step let the config through.
        var result = SiteConfigLoader.Parse(Yaml("  setpoint_control:\n    write_credentials: snmp-rx\n    units:\n      crac9: { min_supply_c: 18 }\n"), "site.yaml", Options);
        Assert.False(result.IsValid);
        Assert.Equal(
        [
            "site.yaml:13:24: thermal_twin.setpoint_control.write_credentials: unknown credentials 'snmp-rx' (credentials: has none)",
            "site.yaml:15:7: thermal_twin.setpoint_control.units.crac9: unknown cooling unit 'crac9' (site.cooling_units has crac1)",
        ], result.Problems.Select(p => p.ToString()));
    }

    /// <summary>A small site (lines 1–9) with <paramref name="section"/> under <c>thermal_twin:</c> (line 11) from line 12.</summary>
    private static string Yaml(string section) => $$"""
        site:
          id: s1
          gateway_id: g1
          rooms:
            - { id: room1, rows: [ { id: A, racks: [ { id: A01, position: 1, power_budget_kw: 8 } ] } ] }
          cooling_units:
            - { id: crac1, room: room1, capacity_kw: 20, serves: [A01] }
        devices: []
        outbox: { path: /tmp/x.db }

        thermal_twin:
        {{section}}
        """;
}
