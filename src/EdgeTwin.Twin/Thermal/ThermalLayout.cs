using EdgeTwin.Core.Config;

namespace EdgeTwin.Twin.Thermal;

/// <summary>A rack as the thermal twin sees it (from the site config; nothing hidden).</summary>
public sealed record ThermalRack(string Id, string Row, int Position, double BudgetKw, int Servers);

/// <summary>A cooling unit as the thermal twin sees it: rated capacity and the racks the config says it serves.</summary>
public sealed record ThermalUnit(string Id, double CapacityKw, IReadOnlyList<string> Serves);

/// <summary>One cooling zone (a room): its racks and cooling units, indexed in file order.</summary>
public sealed record ThermalZone(string Id, double? VolumeM3, IReadOnlyList<ThermalRack> Racks, IReadOnlyList<ThermalUnit> Units)
{
    public int RackIndex(string id)
    {
        for (var i = 0; i < Racks.Count; i++)
        {
            if (string.Equals(Racks[i].Id, id, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }

    public int UnitIndex(string id)
    {
        for (var j = 0; j < Units.Count; j++)
        {
            if (string.Equals(Units[j].Id, id, StringComparison.Ordinal))
            {
                return j;
            }
        }

        return -1;
    }

    /// <summary>Cooling zones of a site: one per room, with the cooling units that stand in it.</summary>
    public static IReadOnlyList<ThermalZone> FromTopology(SiteTopology site)
    {
        ArgumentNullException.ThrowIfNull(site);
        return [.. site.Rooms.Select(room => new ThermalZone(
            room.Id,
            room.VolumeM3,
            [.. room.Rows.SelectMany(row => row.Racks.Select(r => new ThermalRack(r.Id, row.Id, r.Position, r.PowerBudgetKw, r.Servers)))],
            [.. site.CoolingUnits.Where(u => string.Equals(u.Room, room.Id, StringComparison.Ordinal)).Select(u => new ThermalUnit(u.Id, u.CapacityKw, u.Serves))]))];
    }
}

/// <summary>
/// Assumptions of the thermal twin that a site config does not state. Every one is a typical figure, documented
/// in Thermal/README.md; none is read from the simulator.
/// </summary>
public sealed record ThermalSettings
{
    /// <summary>Temperature beyond the room's envelope.</summary>
    public double OutsideC { get; init; } = 22;

    /// <summary>Inlet temperature at which servers switch themselves off (the configured thermal shutdown).</summary>
    public double ShutdownInletC { get; init; } = 40;

    /// <summary>Typical air temperature rise across a server; sizes a rack's airflow demand from its power.</summary>
    public double ServerDeltaTK { get; init; } = 12;

    /// <summary>
    /// Server fans speed up above <see cref="RecommendedInletC"/>: extra IT power per kelvin of inlet above it, as a fraction
    /// of the rack's power (typical vendor curves: 1–3 %/K).
    /// </summary>
    public double ServerFanPowerPerK { get; init; } = 0.02;

    /// <summary>Extra airflow demand per kelvin of inlet above <see cref="RecommendedInletC"/> (more recirculation when cold air is short).</summary>
    public double ServerAirflowPerK { get; init; } = 0.05;

    /// <summary>Typical coil ΔT at rated capacity and full airflow; first guess of a unit's airflow.</summary>
    public double UnitDesignDeltaTK { get; init; } = 11;

    /// <summary>Fan electrical power at full speed as a fraction of a unit's cooling capacity (heat added to the room).</summary>
    public double FanKwPerCoolingKw { get; init; } = 0.03;

    /// <summary>Heat capacity of structure and equipment as a multiple of the room air's, when the data cannot tell.</summary>
    public double MassFactorPrior { get; init; } = 4;

    /// <summary>Air volume per rack assumed when the room has no <c>volume_m3</c>.</summary>
    public double VolumePerRackM3 { get; init; } = 30;

    /// <summary>Time constant of a rack inlet following its mixed supply (air transit and mixing).</summary>
    public double InletLagSeconds { get; init; } = 20;

    /// <summary>ASHRAE recommended upper inlet limit.</summary>
    public double RecommendedInletC { get; init; } = 27;

    /// <summary>ASHRAE class A1 allowable upper inlet limit.</summary>
    public double AllowableInletC { get; init; } = 32;

    /// <summary>Conductance to the neighbouring space when doors or containment are opened (mitigation).</summary>
    public double OpenDoorsUaKwPerK { get; init; } = 1.5;

    /// <summary>Lowest supply set point a unit accepts (mitigation and optimiser bound).</summary>
    public double MinSupplySetpointC { get; init; } = 14;

    /// <summary>Highest supply set point the optimiser may recommend.</summary>
    public double MaxSupplySetpointC { get; init; } = 27;

    /// <summary>Lowest fan speed a unit runs at.</summary>
    public double MinFanSpeed { get; init; } = 0.3;

    /// <summary>A rack is a hot spot when its inlet exceeds the model by more than this many σ of its calibration residual.</summary>
    public double HotSpotSigma { get; init; } = 3;
}
