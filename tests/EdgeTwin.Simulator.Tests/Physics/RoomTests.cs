using EdgeTwin.Simulator.Devices;
using EdgeTwin.Simulator.Faults;
using EdgeTwin.Simulator.Physics;

namespace EdgeTwin.Simulator.Tests.Physics;

/// <summary>Sites split over several rooms (<see cref="SiteGenerationOptions.Rooms"/>): own air, own cooling, own sub-meter.</summary>
public sealed class RoomTests
{
    private static SiteSpec TwoRooms(int racks = 6, int units = 3) =>
        SiteGenerator.Generate(new SiteGenerationOptions { Racks = racks, CoolingUnits = units, Machines = 0, Seed = 5, Rooms = 2 });

    [Fact]
    public void Rooms_split_the_racks_and_units_in_blocks_and_a_unit_cools_only_its_own_room()
    {
        var spec = TwoRooms(racks: 7, units: 3);

        Assert.Equal(["room1", "room2"], spec.AllRooms.Select(r => r.Id));
        Assert.Same(spec.Room, spec.AllRooms[0]);
        Assert.Equal(["room1", "room1", "room1", "room2", "room2", "room2", "room2"], spec.Racks.Select(r => r.Room));
        Assert.Equal(["room1", "room2", "room2"], spec.CoolingUnits.Select(u => u.Room));
        // Rows are a room's own: room2's racks start a new row.
        Assert.Equal(["A01", "A02", "A03", "B01", "B02", "B03", "B04"], spec.Racks.Select(r => r.Id));
        var roomOf = spec.Racks.ToDictionary(r => r.Id, r => r.Room);
        Assert.All(spec.CoolingUnits, u => Assert.All(u.Coupling.Keys, rack => Assert.Equal(u.Room, roomOf[rack])));
        Assert.All(spec.AllRooms, r => Assert.True(r.InfrastructureMeter && r.LightingKw > 0, $"{r.Id}: sub-metered, with lighting"));
    }

    [Fact]
    public void One_room_given_draws_the_default_site_and_adds_only_its_sub_meter_and_lighting()
    {
        var options = new SiteGenerationOptions { Racks = 12, CoolingUnits = 2, Machines = 1, Seed = 9 };
        var plain = SiteGenerator.Generate(options);
        var metered = SiteGenerator.Generate(options with { Rooms = 1 });

        Assert.Empty(plain.Rooms);
        Assert.False(plain.Room.InfrastructureMeter);
        Assert.Equal(0, plain.Room.LightingKw);
        Assert.Equal(plain.Racks, metered.Racks.Select(r => r with { Room = null }));
        Assert.Equal(plain.CoolingUnits.Select(u => (u.Id, u.CapacityKw, u.SupplySetpointC, u.DesignDeltaTK)), metered.CoolingUnits.Select(u => (u.Id, u.CapacityKw, u.SupplySetpointC, u.DesignDeltaTK)));
        Assert.Equal(plain.Room with { }, metered.Room with { LightingKw = 0, InfrastructureMeter = false });
        Assert.Equal(plain.Upses, metered.Upses);
    }

    [Theory]
    [InlineData(3, 2, 3)]
    [InlineData(2, 4, 3)]
    public void More_rooms_than_racks_or_cooling_units_is_refused(int racks, int units, int rooms)
    {
        var ex = Assert.Throws<ArgumentException>(() => SiteGenerator.Generate(new SiteGenerationOptions { Racks = racks, CoolingUnits = units, Rooms = rooms }));
        Assert.Contains($"{rooms} rooms need at least as many racks ({racks}) and cooling units ({units})", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Each_rooms_energy_balances_on_its_own_and_the_main_meter_is_the_ups_inputs_plus_every_rooms_sub_meter()
    {
        var site = new SimulatedSite(TwoRooms());
        site.ResetEnergyAccounts();
        site.Step(TimeSpan.FromHours(1));

        foreach (var room in site.Rooms)
        {
            var stored = room.HeatCapacityKjPerK * (room.TemperatureC - room.AccountStartC);
            Assert.True(room.HeatInKj > 30_000, $"{room.Id}: {room.HeatInKj:0} kJ in an hour");
            Assert.Equal(0, (room.HeatInKj - room.HeatOutKj - stored) / room.HeatInKj, 6);
        }

        Assert.Equal(site.Rooms.Sum(r => r.HeatInKj), site.HeatInKj, 6);
        var expected = site.Upses.Sum(u => u.InputKw) + site.Rooms.Sum(r => site.RoomInfrastructureKw(r.Id));
        Assert.Equal(expected, site.FacilityKw, 9);
        Assert.Equal(site.Pdus.Sum(p => p.PowerKw), site.Rooms.Sum(r => site.RoomItKw(r.Id)), 9);
        foreach (var room in site.Rooms)
        {
            var units = site.CoolingUnits.Where(u => site.RoomOf(u) == room).ToList();
            Assert.NotEmpty(units);
            Assert.Equal(units.Sum(u => u.FanPowerKw + u.CompressorKw) + room.Spec.LightingKw, site.RoomInfrastructureKw(room.Id), 9);
            Assert.InRange(site.RoomPartialPue(room.Id), 1.1, 1.8);
        }

        // The site PUE is the rooms' pPUEs weighted by their IT power plus the UPS losses, which no room's sub-meter sees.
        var it = site.Pdus.Sum(p => p.PowerKw);
        var weighted = site.Rooms.Sum(r => site.RoomPartialPue(r.Id) * site.RoomItKw(r.Id)) / it;
        Assert.Equal((site.Upses.Sum(u => u.InputKw) - it) / it, site.Pue - weighted, 9);
        Assert.InRange(site.Pue - weighted, 0.005, 0.2);
    }

    [Fact]
    public void A_rooms_sub_meter_counts_its_non_IT_energy_and_reads_nothing_with_the_mains_gone()
    {
        var site = new SimulatedSite(TwoRooms());
        var room = site.RoomById("room2");
        var start = room.InfrastructureEnergyKwh;
        var kw = site.RoomInfrastructureKw("room2");
        site.Step(TimeSpan.FromMinutes(10));
        Assert.Equal(kw / 6, room.InfrastructureEnergyKwh - start, kw / 6 * 0.05);

        var binding = new SimDeviceBinding("meter-room2", "eastron-sdm630", SimEntityKind.RoomMeter, "room2");
        Assert.True(RoleValues.TryRead(site, binding, "meter.power_total", null, out var power));
        Assert.Equal(site.RoomInfrastructureKw("room2"), power.Value, 12);
        Assert.True(RoleValues.TryRead(site, binding, "meter.energy_import", null, out var energy));
        Assert.Equal(room.InfrastructureEnergyKwh, energy.Value, 12);
        Assert.True(RoleValues.TryRead(site, binding, "room.temperature", null, out var air));
        Assert.Equal(room.TemperatureC, air.Value, 12);

        site.Apply(FaultCommand.Parse("utility-fail:ups1"));
        site.Apply(FaultCommand.Parse("utility-fail:ups2"));
        var before = room.InfrastructureEnergyKwh;
        site.Step(TimeSpan.FromMinutes(1));
        Assert.True(RoleValues.TryRead(site, binding, "meter.power_total", null, out power));
        Assert.Equal(0, power.Value);
        Assert.Equal(before, room.InfrastructureEnergyKwh);
    }

    [Fact]
    public void A_cooling_stop_heats_its_own_room_only()
    {
        var site = new SimulatedSite(TwoRooms(racks: 4, units: 2));
        var other = site.RoomById("room2").TemperatureC;
        site.Apply(FaultCommand.Parse("cooling-stop:crac1"));
        site.Step(TimeSpan.FromMinutes(10));

        Assert.Equal("room1", site.RoomOf(site.CoolingUnit("crac1")).Id);
        Assert.True(site.RoomById("room1").TemperatureC > other + 3, $"room1 {site.RoomById("room1").TemperatureC:0.0} °C");
        Assert.InRange(site.RoomById("room2").TemperatureC, other - 1.5, other + 1.5);
    }

    [Fact]
    public void A_unit_coupled_to_a_rack_of_another_room_is_refused()
    {
        var spec = TwoRooms(racks: 2, units: 2);
        var crac1 = spec.CoolingUnits[0];
        var bad = spec with { CoolingUnits = [crac1 with { Coupling = new Dictionary<string, double>(crac1.Coupling) { ["B01"] = 0.1 } }, spec.CoolingUnits[1]] };

        var ex = Assert.Throws<ArgumentException>(() => new SimulatedSite(bad));
        Assert.Contains("cooling unit 'crac1' (room room1): coupling names rack 'B01' of room room2", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_plan_puts_a_sub_meter_in_every_sub_metered_room_with_the_main_meters_profile()
    {
        var spec = TwoRooms();
        Assert.Equal(
            [("meter-room1", "eastron-sdm630", "room1"), ("meter-room2", "eastron-sdm630", "room2")],
            SimDevicePlan.For(spec).Where(d => d.Kind == SimEntityKind.RoomMeter).Select(d => (d.DeviceId, d.Profile, d.EntityId)));
        Assert.All(
            SimDevicePlan.For(spec, new SimProfiles { Meter = "siemens-pac3200" }).Where(d => d.Kind is SimEntityKind.RoomMeter or SimEntityKind.Meter),
            d => Assert.Equal("siemens-pac3200", d.Profile));
        Assert.DoesNotContain(SimDevicePlan.For(TestSites.Generated().Spec), d => d.Kind == SimEntityKind.RoomMeter);
    }
}
