using EdgeTwin.Twin.Scenarios;
using EdgeTwin.Twin.Thermal;

namespace EdgeTwin.Agent.Twin.Thermal;

/// <summary>Settings of the live thermal twin in the agent (<see cref="ThermalTwinStage"/>); defaults in README.md.</summary>
public sealed record ThermalTwinOptions
{
    /// <summary>Model assumptions a site config does not state (shutdown inlet, outside temperature, …).</summary>
    public ThermalSettings Settings { get; init; } = new();

    /// <summary>How often the latest readings are taken as one frame of the calibration window (sample time).</summary>
    public TimeSpan FrameInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Sliding window of frames each calibration fits.</summary>
    public TimeSpan Window { get; init; } = TimeSpan.FromHours(24);

    /// <summary>First calibration once the window holds this much live telemetry (unless a warm start calibrated already).</summary>
    public TimeSpan FirstCalibrationAfter { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Recalibration period after the first (skipped while a cooling failure is active).</summary>
    public TimeSpan CalibrateEvery { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Period of hot-spot checks on the latest frame (outside failures).</summary>
    public TimeSpan HotSpotEvery { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>How often a live <c>cooling_failure</c> prediction is refreshed while a unit is down.</summary>
    public TimeSpan RefreshEvery { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A unit last read running whose state has not been read for this long, while the rest of the site still reports, is
    /// unreachable: taken as stopped in a degraded <c>cooling_failure</c> (a unit that loses power usually takes its
    /// controller's SNMP/Modbus card with it; its last "running" was held and no failure was ever predicted).
    /// </summary>
    public TimeSpan UnitUnreachableAfter { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Forecast horizon of the live prediction.</summary>
    public TimeSpan Horizon { get; init; } = TimeSpan.FromHours(2);

    /// <summary>Racks whose load may be shed in the mitigation plan.</summary>
    public IReadOnlyList<string> NonCriticalRacks { get; init; } = [];

    /// <summary>
    /// How long each mitigation takes from decision to effect at this site (<c>mitigation_lead_times</c>, by action); actions
    /// not named take <see cref="CoolingFailureOptions.DefaultMeasureLeads"/>'s.
    /// </summary>
    public IReadOnlyDictionary<string, TimeSpan> MitigationLeads { get; init; } = CoolingFailureOptions.DefaultMeasureLeads;

    /// <summary>
    /// Recorded frames per zone (index as <see cref="ThermalZone.FromTopology"/>) to calibrate from at start, so the twin is
    /// useful at once after an install or restart; times in Unix seconds, before the first live sample. Null: none.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<ZoneFrame>>? WarmStart { get; init; }

    /// <summary>
    /// The demo's options: warm-started from 6 simulated hours of the demo site's normal telemetry (a copy of the site, see
    /// <see cref="SimulatedThermalPlant.History"/>), refreshed every 5 s so the countdown moves in the live view.
    /// </summary>
    internal static ThermalTwinOptions DemoWarmStart(EdgeTwin.Simulator.Physics.SiteSpec spec) => new()
    {
        Settings = new ThermalSettings { ShutdownInletC = spec.ThermalShutdownInletC },
        RefreshEvery = TimeSpan.FromSeconds(5),
        WarmStart = SimulatedThermalPlant.History(spec, TimeSpan.FromHours(6), DateTimeOffset.UtcNow),
    };

    /// <summary>
    /// Where the units seen running and a cooling failure in progress are kept over a restart (<c>thermal-twin.json</c>);
    /// null: nothing kept. <c>AddThermalTwin</c> puts it next to the outbox when the agent has one.
    /// </summary>
    public string? StateFile { get; init; }

    /// <summary>A recorded history CSV (<c>timestamp,series,value</c>, roles in Twin/Thermal/README.md) to warm-start from.</summary>
    public string? WarmStartHistoryCsv { get; init; }
}
