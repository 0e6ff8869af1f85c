using EdgeTwin.Simulator.Faults;
using EdgeTwin.Simulator.Physics;

namespace EdgeTwin.Simulator.Tests.Physics;

public sealed class ThermalTests
{
    [Fact]
    public void Room_energy_balances_the_heat_in_and_out_over_an_hour()
    {
        var site = TestSites.Generated();
        site.ResetEnergyAccounts();
        site.Step(TimeSpan.FromHours(1));

        var stored = site.Room.HeatCapacityKjPerK * (site.Room.TemperatureC - site.AccountStartRoomC);
        Assert.True(site.HeatInKj > 150_000, $"an hour of ~50 kW should put in ~180 MJ, got {site.HeatInKj:0} kJ");
        Assert.Equal(0, (site.HeatInKj - site.HeatOutKj - stored) / site.HeatInKj, 6);
    }

    [Fact]
    public void At_steady_state_cooling_removes_the_IT_and_fan_heat()
    {
        var site = TestSites.Generated();
        site.ResetEnergyAccounts();
        site.Step(TimeSpan.FromHours(1));

        // Over an hour the room barely changes, so what comes in goes out, to within a few percent.
        Assert.InRange(site.HeatOutKj / site.HeatInKj, 0.97, 1.03);
        Assert.InRange(site.Room.TemperatureC, 24, 36);
        Assert.All(site.Racks, r => Assert.InRange(r.InletC, 17, 24.5));
        Assert.All(site.Racks, r => Assert.True(r.OutletC > r.InletC + 5, $"rack {r.Id}: outlet {r.OutletC:0.0} not above inlet {r.InletC:0.0}"));
    }

    [Fact]
    public void Stopping_a_cooling_unit_warms_the_racks_it_feeds_by_several_degrees_within_ten_minutes()
    {
        var site = TestSites.Generated();
        var nearest = site.Racks.OrderByDescending(r => site.Coupling("crac1", r.Id)).First();
        var farthest = site.Racks.OrderBy(r => site.Coupling("crac1", r.Id)).First();
        var before = nearest.InletC;
        var farBefore = farthest.InletC;
        var roomBefore = site.Room.TemperatureC;

        site.Apply(FaultCommand.Parse("cooling-stop:crac1"));
        site.Step(TimeSpan.FromMinutes(10));

        Assert.Equal(0, site.CoolingUnit("crac1").AirflowKgPerS);
        Assert.Equal(1, site.CoolingUnit("crac2").FanSpeed, 2); // the survivor goes flat out
        Assert.True(nearest.InletC - before > 3, $"rack {nearest.Id} inlet rose only {nearest.InletC - before:0.00} K");
        Assert.True(site.Room.TemperatureC > roomBefore + 0.5, "the room must warm with half its cooling gone");
        // Racks far from the failed unit, fed by the survivor, stay cooler than the ones that lost their air.
        Assert.True(farthest.InletC - farBefore < (nearest.InletC - before) / 2, $"far rack rose {farthest.InletC - farBefore:0.0} K, near rack {nearest.InletC - before:0.0} K");
    }

    [Fact]
    public void With_all_cooling_lost_the_room_warms_at_IT_power_over_heat_capacity()
    {
        var spec = TestSites.OneRack();
        var site = new SimulatedSite(spec);
        var roomBefore = site.Room.TemperatureC;
        var powerKw = site.TotalItKw;

        site.Apply(FaultCommand.Parse("cooling-stop:crac1"));
        site.Step(TimeSpan.FromMinutes(2));

        // The coil stops at once, so the first minutes follow dT/dt = P / C (fan heat stops too; no envelope).
        var expected = powerKw * 120 / site.Room.HeatCapacityKjPerK;
        Assert.InRange(site.Room.TemperatureC - roomBefore, expected * 0.85, expected * 1.15);
    }

    [Fact]
    public void Total_cooling_loss_at_ten_kW_per_rack_shuts_servers_down_within_minutes()
    {
        var site = TestSites.Generated(racks: 10, units: 2, machines: 0, seed: 3);
        site.Apply(FaultCommand.Parse("cooling-stop:crac1"));
        site.Apply(FaultCommand.Parse("cooling-stop:crac2"));
        var start = site.Now;
        TimeSpan? firstShutdown = null;
        for (var i = 0; i < 30 * 60 && firstShutdown is null; i++)
        {
            site.Step(TimeSpan.FromSeconds(1));
            if (site.Racks.Any(r => r.ServersShutDown > 0))
            {
                firstShutdown = site.Now - start;
            }
        }

        Assert.NotNull(firstShutdown);
        Assert.InRange(firstShutdown.Value, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(15));
        Assert.Contains(site.Events(), e => e.Message.Contains("shut down on inlet over-temperature", StringComparison.Ordinal));
    }

    [Fact]
    public void A_failed_fan_stops_the_airflow_although_the_unit_is_on()
    {
        var site = new SimulatedSite(TestSites.OneRack());
        var before = site.Rack("A01").InletC;
        site.Apply(FaultCommand.Parse("cooling-fan-fail:crac1"));
        site.Step(TimeSpan.FromMinutes(3));

        var unit = site.CoolingUnit("crac1");
        Assert.Equal(CoolingUnitState.FanFailed, unit.State);
        Assert.Equal(0, unit.AirflowKgPerS);
        Assert.Equal(0, unit.CoolingKw);
        Assert.True(site.Rack("A01").InletC > before + 5);

        site.Apply(FaultCommand.Parse("cooling-restore:crac1"));
        site.Step(TimeSpan.FromMinutes(30));
        Assert.InRange(site.Rack("A01").InletC, 17, 24);
    }

    [Fact]
    public void Higher_servers_see_warmer_inlets()
    {
        var site = TestSites.Generated();
        var rack = site.Racks[0];
        Assert.True(rack.ServerInletC(rack.ServerCount - 1) > rack.ServerInletC(0));
    }

    [Fact]
    public void Sensors_lag_and_carry_noise_but_track_the_true_value()
    {
        var site = TestSites.Generated();
        var rack = site.Racks[0];
        var errors = new List<double>();
        for (var i = 0; i < 600; i++)
        {
            site.Step(TimeSpan.FromSeconds(1));
            errors.Add(rack.InletSensor.Reading - rack.InletC);
        }

        Assert.InRange(errors.Average(), -0.2, 0.2);
        Assert.True(errors.Any(e => Math.Abs(e) > 0.01), "a real sensor is never exact");
        Assert.True(errors.All(e => Math.Abs(e) < 1.5));
    }
}
