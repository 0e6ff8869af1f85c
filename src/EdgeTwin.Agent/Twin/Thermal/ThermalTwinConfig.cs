using EdgeTwin.Agent.Twin.Setpoints;
using EdgeTwin.Core.Config;
using EdgeTwin.Twin.Optimisation;
using EdgeTwin.Twin.Scenarios;

namespace EdgeTwin.Agent.Twin.Thermal;

/// <summary>
/// The <c>thermal_twin:</c> section of the site config: the live twin's schedule and assumptions (mapped onto
/// <see cref="ThermalTwinOptions"/>, code defaults where a key is absent), the cooling optimiser's limit, margin and period,
/// and <c>setpoint_control</c> (<see cref="SetpointControlOptions"/>). The same code validates the section for
/// <c>edgetwin check</c> and at start, so problems carry file, line and key. Keys in Twin/Thermal/README.md.
/// </summary>
public sealed record ThermalTwinConfig(bool Enabled, ThermalTwinOptions Twin, double InletLimitC, double MarginK, TimeSpan OptimiseEvery, SetpointControlOptions Setpoints)
{
    public const string SectionName = "thermal_twin";

    /// <summary>No section: the code defaults, advisory optimisation every 15 min, set-point writing off.</summary>
    public static ThermalTwinConfig Default { get; } = new(true, new ThermalTwinOptions(), 27, CoolingOptimiser.DefaultMarginK, TimeSpan.FromMinutes(15), new SetpointControlOptions());

    /// <summary>The inlet at which written set points are rolled back (<c>rollback_inlet_c</c>, default the inlet limit).</summary>
    public double RollbackInletC => Setpoints.RollbackInletC ?? InletLimitC;

    /// <summary>
    /// Reads the section of a loaded config (absent: <see cref="Default"/>); unknown cooling units under
    /// <c>setpoint_control.units</c> are reported too. Throws <see cref="ConfigException"/> with every problem.
    /// </summary>
    public static ThermalTwinConfig From(SiteConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!config.Sections.TryGetValue(SectionName, out var section))
        {
            return Default;
        }

        var diagnostics = new ConfigDiagnostics();
        var result = Read(new ConfigReader(section, diagnostics));
        CheckReferences(section, config, diagnostics);

        if (!diagnostics.IsEmpty)
        {
            throw new ConfigException(diagnostics.Sorted());
        }

        return result;
    }

    /// <summary>
    /// <c>setpoint_control.units</c> must name the site's cooling units, and <c>write_credentials</c> an entry of
    /// <c>credentials:</c> (else control would show as enabled while every write fails for want of credentials).
    /// </summary>
    internal static void CheckReferences(ConfigMapping section, SiteConfig config, ConfigDiagnostics diagnostics)
    {
        if (ConfigReader.For(section["setpoint_control"], new ConfigDiagnostics()) is not { } sc)
        {
            return;
        }

        if (sc.Mapping["units"] is ConfigMapping units)
        {
            var known = config.Site.CoolingUnits.Select(u => u.Id).ToHashSet(StringComparer.Ordinal);
            foreach (var (id, node) in units.Entries)
            {
                if (!known.Contains(id))
                {
                    diagnostics.Add(units.KeyMark(id), node.Path, $"unknown cooling unit '{id}' (site.cooling_units has {string.Join(", ", known.Order(StringComparer.Ordinal))})");
                }
            }
        }

        if (sc.Mapping["write_credentials"] is ConfigScalar { IsNull: false } credentials && !config.Credentials.ContainsKey(credentials.Value))
        {
            var suggestion = SiteReferences.Closest(credentials.Value, config.Credentials.Keys);
            diagnostics.Add(credentials, suggestion is not null
                ? $"unknown credentials '{credentials.Value}' (did you mean '{suggestion}'?)"
                : $"unknown credentials '{credentials.Value}' (credentials: has {(config.Credentials.Count == 0 ? "none" : string.Join(", ", config.Credentials.Keys.Order(StringComparer.Ordinal)))})");
        }
    }

    internal static ThermalTwinConfig Read(ConfigReader r)
    {
        var d = Default;
        var t = d.Twin;
        var enabled = r.Bool("enabled") ?? true;
        var settings = t.Settings;
        if (r.Double("shutdown_inlet_c", min: 20, max: 80) is { } shutdown)
        {
            settings = settings with { ShutdownInletC = shutdown };
        }

        if (r.Double("hot_spot_sigma", positive: true, max: 20) is { } sigma)
        {
            settings = settings with { HotSpotSigma = sigma };
        }

        var twin = t with
        {
            Settings = settings,
            FrameInterval = r.Duration("frame_interval", min: TimeSpan.FromSeconds(1)) ?? t.FrameInterval,
            Window = r.Duration("calibration_window", min: TimeSpan.FromMinutes(10)) ?? t.Window,
            FirstCalibrationAfter = r.Duration("first_calibration_after", min: TimeSpan.FromMinutes(1)) ?? t.FirstCalibrationAfter,
            CalibrateEvery = r.Duration("calibrate_every", min: TimeSpan.FromMinutes(1)) ?? t.CalibrateEvery,
            HotSpotEvery = r.Duration("hot_spot_every", min: TimeSpan.FromSeconds(1)) ?? t.HotSpotEvery,
            RefreshEvery = r.Duration("refresh_every", min: TimeSpan.FromSeconds(1)) ?? t.RefreshEvery,
            Horizon = r.Duration("horizon", min: TimeSpan.FromMinutes(1)) ?? t.Horizon,
            UnitUnreachableAfter = r.Duration("unit_unreachable_after", min: TimeSpan.FromSeconds(5)) ?? t.UnitUnreachableAfter,
            NonCriticalRacks = r.IdList("non_critical_racks")?.Select(x => x.Value).ToList() ?? t.NonCriticalRacks,
            MitigationLeads = r.Section("mitigation_lead_times") is { } leads ? ReadLeads(leads) : t.MitigationLeads,
        };
        if (twin.FirstCalibrationAfter > twin.Window && r.Node("first_calibration_after") is { } fca)
        {
            r.Diagnostics.Add(fca, "first_calibration_after must not exceed calibration_window");
        }

        var limit = r.Double("inlet_limit_c", min: 15, max: 45) ?? d.InletLimitC;
        var margin = r.Double("margin_k", min: 0, max: 10) ?? d.MarginK;
        var every = r.Duration("optimise_every", min: TimeSpan.FromSeconds(10)) ?? d.OptimiseEvery;
        var setpoints = r.Section("setpoint_control") is { } sc ? ReadSetpoints(sc, limit) : d.Setpoints;
        r.ReportUnknownKeys();
        return new ThermalTwinConfig(enabled, twin, limit, margin, every, setpoints);
    }

    private static SetpointControlOptions ReadSetpoints(ConfigReader r, double inletLimitC)
    {
        var d = new SetpointControlOptions();
        var bounds = ReadBounds(r, d.Bounds);
        var units = new Dictionary<string, SetpointBounds>(StringComparer.Ordinal);
        if (r.Section("units") is { } u)
        {
            foreach (var (id, _) in u.Mapping.Entries)
            {
                if (u.Section(id, required: true) is { } unit)
                {
                    units[id] = ReadBounds(unit, bounds);
                    unit.ReportUnknownKeys();
                }
            }
        }

        var options = new SetpointControlOptions
        {
            Enabled = r.Bool("enabled") ?? false,
            Bounds = bounds,
            UnitBounds = units,
            MaxSupplyStepK = r.Double("max_supply_step_k", positive: true, max: 5) ?? d.MaxSupplyStepK,
            MaxFanStepPercent = r.Double("max_fan_step_percent", positive: true, max: 50) ?? d.MaxFanStepPercent,
            MinWriteInterval = r.Duration("min_write_interval", min: TimeSpan.FromSeconds(1)) ?? d.MinWriteInterval,
            RollbackInletC = r.Double("rollback_inlet_c", min: 15, max: 45),
            RollbackHold = r.Duration("rollback_hold", min: TimeSpan.FromSeconds(1)) ?? d.RollbackHold,
            SettleTime = r.Duration("settle_time", min: TimeSpan.FromSeconds(1)) ?? d.SettleTime,
            MaxFitRmseK = r.Double("max_fit_rmse_k", positive: true, max: 10) ?? d.MaxFitRmseK,
            WriteTimeout = r.Duration("write_timeout", min: TimeSpan.FromMilliseconds(100)) ?? d.WriteTimeout,
            CheckEvery = r.Duration("check_every", min: TimeSpan.FromMilliseconds(100)) ?? d.CheckEvery,
            WriteCredentials = r.Id("write_credentials"),
        };
        if (options.RollbackInletC is { } rb && rb > inletLimitC + 5 && r.Node("rollback_inlet_c") is { } node)
        {
            r.Diagnostics.Add(node, FormattableString.Invariant($"rollback_inlet_c ({rb}) is more than 5 K above inlet_limit_c ({inletLimitC}): racks would run hot before a rollback"));
        }

        r.ReportUnknownKeys();
        return options;
    }

    /// <summary>
    /// <c>mitigation_lead_times</c>: per action of the cooling-failure plan, how long it takes at this site from the
    /// decision to its effect (0 to 2 h); the actions not named keep their defaults.
    /// </summary>
    private static Dictionary<string, TimeSpan> ReadLeads(ConfigReader r)
    {
        var leads = new Dictionary<string, TimeSpan>(CoolingFailureOptions.DefaultMeasureLeads, StringComparer.Ordinal);
        foreach (var action in CoolingFailureOptions.MeasureActions)
        {
            if (r.Duration(action, min: TimeSpan.Zero) is not { } lead)
            {
                continue;
            }

            if (lead > CoolingFailureOptions.MaxMeasureLead && r.Node(action) is { } node)
            {
                r.Diagnostics.Add(node, $"must be at most {Durations.Format(CoolingFailureOptions.MaxMeasureLead)}, got '{Durations.Format(lead)}': a measure that takes longer is no help against a cooling stop");
                continue;
            }

            leads[action] = lead;
        }

        r.ReportUnknownKeys();
        return leads;
    }

    private static SetpointBounds ReadBounds(ConfigReader r, SetpointBounds start)
    {
        var b = new SetpointBounds(
            r.Double("min_supply_c", min: 5, max: 35) ?? start.MinSupplyC,
            r.Double("max_supply_c", min: 5, max: 35) ?? start.MaxSupplyC,
            r.Double("min_fan_percent", min: 0, max: 100) ?? start.MinFanPercent,
            r.Double("max_fan_percent", min: 0, max: 100) ?? start.MaxFanPercent);
        foreach (var problem in b.Problems())
        {
            r.Diagnostics.Add(r.Mapping, problem);
        }

        return b;
    }
}

/// <summary>Checks <c>thermal_twin:</c> for <c>edgetwin check</c> and the agent's start (found by reflection).</summary>
public sealed class ThermalTwinSectionValidator : IConfigSectionValidator
{
    public string Section => ThermalTwinConfig.SectionName;

    public void Validate(ConfigReader section)
    {
        ArgumentNullException.ThrowIfNull(section);
        ThermalTwinConfig.Read(section);
    }

    public void ValidateReferences(ConfigReader section, SiteReferences site)
    {
        ArgumentNullException.ThrowIfNull(section);
        ArgumentNullException.ThrowIfNull(site);
        ThermalTwinConfig.CheckReferences(section.Mapping, site.Config, section.Diagnostics);
    }

    /// <summary>The thermal twin's state (units seen running, a cooling failure in progress), next to the outbox (no key moves it).</summary>
    public IEnumerable<StateFileSetting> StateFiles(ConfigReader? section) => [StateFileSetting.Fixed(ThermalTwinConfig.SectionName, ThermalTwinExtensions.StateFileName)];
}
