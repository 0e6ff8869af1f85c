namespace EdgeTwin.Simulator.Physics;

/// <summary>
/// Everything that defines a simulated site, including the "hidden" physical parameters a twin must
/// calibrate rather than read (room thermal mass, recirculation, coupling of units to racks).
/// Build one by hand for exact tests, or with <see cref="SiteGenerator"/> for randomised sites.
/// </summary>
public sealed record SiteSpec
{
    public string SiteId { get; init; } = "sim";

    public string GatewayId { get; init; } = "gw-sim";

    public int Seed { get; init; } = 1;

    /// <summary>Wall-clock time the simulation starts at (load follows the time of day).</summary>
    public DateTimeOffset Start { get; init; } = DefaultStart;

    /// <summary>A Monday noon, so a default run sees the working-day peak.</summary>
    public static DateTimeOffset DefaultStart { get; } = new(2026, 1, 5, 12, 0, 0, TimeSpan.Zero);

    /// <summary>The site's (first) room: the only one unless <see cref="Rooms"/> names more.</summary>
    public required RoomSpec Room { get; init; }

    /// <summary>
    /// Every room, <see cref="Room"/> first, when the site has more than one or its rooms are sub-metered; empty (the
    /// default): the one room <see cref="Room"/>. Racks and cooling units say their room (<c>Room</c>, null: the first).
    /// </summary>
    public IReadOnlyList<RoomSpec> Rooms { get; init; } = [];

    /// <summary><see cref="Rooms"/>, or <see cref="Room"/> alone when it is empty.</summary>
    public IReadOnlyList<RoomSpec> AllRooms => Rooms.Count > 0 ? Rooms : [Room];

    public required IReadOnlyList<RackSpec> Racks { get; init; }

    public required IReadOnlyList<CoolingUnitSpec> CoolingUnits { get; init; }

    public IReadOnlyList<PduSpec> Pdus { get; init; } = [];

    public IReadOnlyList<UpsSpec> Upses { get; init; } = [];

    public IReadOnlyList<MachineSpec> Machines { get; init; } = [];

    /// <summary>A production line of PLC-controlled stations (see <c>Line/</c>), or null for none.</summary>
    public Line.SimLineSpec? Line { get; init; }

    /// <summary>Inlet temperature at which a server switches itself off to protect itself.</summary>
    public double ThermalShutdownInletC { get; init; } = 40;

    /// <summary>Simulated time run at construction so the site starts near its steady state.</summary>
    public TimeSpan WarmUp { get; init; } = TimeSpan.FromHours(2);
}

/// <param name="Id">Room id (e.g. <c>room1</c>).</param>
/// <param name="VolumeM3">Air volume; with <paramref name="MassFactor"/> gives the room's heat capacity.</param>
/// <param name="MassFactor">Heat capacity of structure, raised floor and equipment as a multiple of the air's.</param>
/// <param name="EnvelopeUaKwPerK">Heat lost through walls per kelvin above <paramref name="OutsideC"/>.</param>
/// <param name="OutsideC">Temperature beyond the envelope.</param>
public sealed record RoomSpec(string Id, double VolumeM3, double MassFactor = 4, double EnvelopeUaKwPerK = 0.3, double OutsideC = 22)
{
    /// <summary>
    /// The room's non-IT, non-cooling load (lighting, controls, fire and access systems) in kW: constant, drawn from the
    /// utility through the main meter (and the room's sub-meter), and a heat source of the room. 0 by default.
    /// </summary>
    public double LightingKw { get; init; }

    /// <summary>
    /// True when the room's own non-IT loads (its cooling units' fans and compressors and <see cref="LightingKw"/>) are
    /// fed through a sub-meter of their own, served as device <c>meter-ROOM</c> and named in the config as the room's
    /// <c>power.infrastructure_meters</c> (its partial PUE).
    /// </summary>
    public bool InfrastructureMeter { get; init; }
}

/// <param name="Id">Rack id (e.g. <c>A01</c>).</param>
/// <param name="Row">Row id (e.g. <c>A</c>).</param>
/// <param name="Position">1-based position in the row.</param>
/// <param name="DesignKw">IT power of the rack with every server at full load (hidden: servers draw 35-100 % of it).</param>
/// <param name="Servers">Number of servers (each its own heat source with its own inlet height).</param>
/// <param name="BaseRecirculation">Fraction of hot air the rack's inlet draws even when cold air is plentiful.</param>
/// <param name="TopRecirculation">Extra recirculation seen by the top server (grows with height, squared).</param>
/// <param name="PowerBudgetKw">The budget the site config states (not a physical limit).</param>
public sealed record RackSpec(
    string Id,
    string Row,
    int Position,
    double DesignKw,
    int Servers = 10,
    double BaseRecirculation = 0.05,
    double TopRecirculation = 0.1,
    double PowerBudgetKw = 0)
{
    /// <summary>Mean server utilisation; the daily pattern swings around it.</summary>
    public double BaseUtilisation { get; init; } = 0.55;

    /// <summary>Half the peak-to-trough swing of the daily pattern.</summary>
    public double DailyAmplitude { get; init; } = 0.2;

    /// <summary>Id of the room the rack stands in; null: the site's first room.</summary>
    public string? Room { get; init; }
}

/// <param name="Id">Unit id (e.g. <c>crac1</c>).</param>
/// <param name="CapacityKw">Sensible cooling capacity at full fan speed.</param>
/// <param name="SupplySetpointC">Supply air set point.</param>
/// <param name="Coupling">Fraction of this unit's airflow that reaches each rack (rack id → fraction); the rest bypasses.</param>
public sealed record CoolingUnitSpec(string Id, double CapacityKw, double SupplySetpointC, IReadOnlyDictionary<string, double> Coupling)
{
    /// <summary>Air temperature difference across the coil at full capacity and full airflow, which sizes the fans.</summary>
    public double DesignDeltaTK { get; init; } = 11;

    /// <summary>Inlet temperature the fan controller keeps the warmest served rack at.</summary>
    public double InletTargetC { get; init; } = 23;

    public double MinFanSpeed { get; init; } = 0.3;

    /// <summary>Fan electrical power at full speed (power scales with speed cubed).</summary>
    public double FanRatedKw { get; init; } = CapacityKwToFanKw(CapacityKw);

    /// <summary>The racks this unit mainly serves (largest coupling), as the site config states it.</summary>
    public IReadOnlyList<string> Serves { get; init; } = [.. Coupling.Where(c => c.Value > 0).OrderByDescending(c => c.Value).Select(c => c.Key)];

    /// <summary>Id of the room the unit cools (its air stays in that room); null: the site's first room.</summary>
    public string? Room { get; init; }

    private static double CapacityKwToFanKw(double capacityKw) => capacityKw * 0.03;
}

/// <param name="Id">PDU id (e.g. <c>pdu-a01-a</c>).</param>
/// <param name="Rack">The rack it feeds.</param>
/// <param name="Feed">Feed letter (<c>a</c>, <c>b</c>); servers split their load evenly over live feeds.</param>
/// <param name="Upstream">UPS id feeding it, or null.</param>
/// <param name="BreakerA">Breaker rating per phase.</param>
/// <param name="Phases">1 or 3; outlets are spread round-robin over phases.</param>
/// <param name="VoltageV">Line-to-neutral voltage.</param>
public sealed record PduSpec(string Id, string Rack, string Feed, string? Upstream, double BreakerA = 32, int Phases = 1, double VoltageV = 230)
{
    public double PowerFactor { get; init; } = 0.95;
}

/// <param name="Id">UPS id.</param>
/// <param name="CapacityKw">Rated output.</param>
/// <param name="BatteryKwh">Usable battery energy when fully charged.</param>
public sealed record UpsSpec(string Id, double CapacityKw, double BatteryKwh)
{
    public double OutputVoltageV { get; init; } = 230;
}

/// <param name="Id">Machine id (e.g. <c>m1</c>).</param>
/// <param name="Line">Production line id.</param>
/// <param name="RatedKw">Motor rating.</param>
/// <param name="RatedSpeedRpm">Speed at 50 Hz.</param>
/// <param name="LoadFactor">Mean fraction of rated torque the process asks for.</param>
/// <param name="InitialWear">Bearing wear at start, 0 new, 1 failed.</param>
/// <param name="HoursToFailure">Hours from defect onset to failure at rated speed (hidden; wear accelerates as it grows).</param>
public sealed record MachineSpec(
    string Id,
    string Line,
    double RatedKw = 15,
    double RatedSpeedRpm = 1480,
    double LoadFactor = 0.7,
    double InitialWear = 0,
    double HoursToFailure = 24 * 14)
{
    public double RatedCurrentA => RatedKw * 1000 / (Math.Sqrt(3) * 400 * 0.86 * 0.92);

    /// <summary>
    /// Mean running hours until a bearing defect initiates (Weibull, shape 1.5, drawn from the machine's seed);
    /// until then the bearing is healthy and does not wear. Null (the default): the defect is there from the start
    /// and grows from <see cref="InitialWear"/>. Infinity: the bearing never fails.
    /// </summary>
    public double? MeanHoursToDefect { get; init; }

    /// <summary>Log-normal spread (σ of ln) of each defect's growth time around <see cref="HoursToFailure"/>; 0 = exact.</summary>
    public double GrowthSpread { get; init; }

    /// <summary>Process knocks (impacts that raise vibration and kurtosis for a few minutes) per running day.</summary>
    public double KnocksPerDay { get; init; }

    /// <summary>Amplitude of the daily cycle of the process load (fraction of rated torque, ± around <see cref="LoadFactor"/>).</summary>
    public double DailyLoadSwing { get; init; }

    /// <summary>
    /// Set for a fan (a cooling unit's or air handler's blower) instead of a process machine: its speed follows the
    /// room's daily heat load and its load the fan law (power ∝ speed³), so its vibration and bearing heat move with the
    /// speed all day; <see cref="LoadFactor"/> and <see cref="DailyLoadSwing"/> are not used.
    /// </summary>
    public FanDuty? Fan { get; init; }
}

/// <summary>How a simulated fan is driven.</summary>
/// <param name="MeanSpeed">Mean speed as a fraction of rated.</param>
/// <param name="DailySpeedSwing">Amplitude of the daily speed cycle (fraction of rated, ± around <paramref name="MeanSpeed"/>).</param>
public sealed record FanDuty(double MeanSpeed = 0.7, double DailySpeedSwing = 0.15)
{
    /// <summary>Lowest speed the fan controller runs at (EC fans' usual minimum).</summary>
    public const double MinSpeed = 0.3;
}
