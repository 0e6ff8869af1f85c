using System.Buffers.Binary;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Modbus.Client;
using EdgeTwin.Modbus.Transport;
using EdgeTwin.Simulator.Devices;
using EdgeTwin.Simulator.Faults;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Simulator.Serving;
using EdgeTwin.Snmp;
using EdgeTwin.Snmp.Client;

namespace EdgeTwin.Simulator.Tests.Serving;

/// <summary>
/// The UPS, main meter and rack probe profiles a user picks (eaton-xups, siemens-pac3200, apc-uio-probe) served from
/// the shipped profiles and read back over real SNMP and Modbus on loopback with our own clients.
/// </summary>
public sealed class ChosenProfileServingTests
{
    private static readonly SimProfiles Alternatives = new() { Ups = ["eaton-xups"], Meter = "siemens-pac3200", RackProbe = "apc-uio-probe" };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static SiteSpec Spec(int racks = 3) => SiteGenerator.Generate(new SiteGenerationOptions { Racks = racks, CoolingUnits = 2, Machines = 1, Seed = 5 });

    private static async Task<SimulatedSiteHost> StartAsync(SimProfiles profiles, int racks = 3) =>
        await SimulatedSiteHost.StartAsync(new SimulatedSite(Spec(racks)), SimulatedSiteHost.LoadProfiles(RepoPaths.Profiles, profiles), new SiteHostOptions { Profiles = profiles }, Ct);

    private static SnmpTarget Target(DeviceAddress address) => new()
    {
        EndPoint = address.TryGetIPEndPoint()!,
        Community = "public",
        Timeout = TimeSpan.FromSeconds(3),
        Retries = 0,
    };

    private static ModbusClient Modbus(DeviceAddress address) =>
        new(new ModbusTcpTransport(new ModbusTcpOptions { Host = address.Host!, Port = address.Port!.Value, RequestTimeout = TimeSpan.FromSeconds(3) }));

    private static async Task<int> GetIntAsync(SnmpClient client, ServedDevice device, string oid) =>
        (await client.GetAsync(Target(device.Address), [Oid.Parse(oid)], Ct))[0].Value.AsInt32();

    [Fact]
    public void The_default_plan_serves_the_same_devices_and_profiles_as_before()
    {
        // Pinned: the choices are opt-in; without them a site is what it was (UPS profiles in turn, eastron meter, no probes).
        var spec = Spec();
        var plan = SimDevicePlan.For(spec);
        string[] expected =
        [
            .. spec.Pdus.Select(p => $"{p.Id} apc-rpdu2 Pdu {p.Id}"),
            "ups1 ietf-ups-mib Ups ups1",
            "ups2 apc-smart-ups Ups ups2",
            "crac1 liebert-gp-crac CoolingUnit crac1",
            "crac2 liebert-gp-crac CoolingUnit crac2",
            "drive1 abb-acs580 Machine m1",
            $"meter1 eastron-sdm630 Meter {spec.Room.Id}",
        ];
        Assert.Equal(expected, plan.Select(d => $"{d.DeviceId} {d.Profile} {d.Kind} {d.EntityId}"));
        Assert.Equal(plan, SimDevicePlan.For(spec, new SimProfiles()));
        Assert.Null(new SimProfiles().RackProbe);
    }

    [Fact]
    public void A_ups_profile_list_is_used_in_turn_and_probes_sit_one_per_rack_at_its_inlet()
    {
        var spec = Spec(racks: 3) with { Upses = [new UpsSpec("ups1", 20, 5), new UpsSpec("ups2", 20, 5), new UpsSpec("ups3", 20, 5)] };
        var plan = SimDevicePlan.For(spec, Alternatives with { Ups = ["eaton-xups", "ietf-ups-mib"] });
        Assert.Equal(["eaton-xups", "ietf-ups-mib", "eaton-xups"], plan.Where(d => d.Kind == SimEntityKind.Ups).Select(d => d.Profile));
        Assert.Equal("siemens-pac3200", plan.Single(d => d.Kind == SimEntityKind.Meter).Profile);
        Assert.Equal(spec.Racks.Select(r => ("probe-" + r.Id.ToLowerInvariant(), r.Id)), plan.Where(d => d.Kind == SimEntityKind.RackProbe).Select(d => (d.DeviceId, d.EntityId)));
    }

    [Theory]
    [InlineData(SimProfileSlot.Ups, "eastron-sdm630", "is not a UPS profile")]
    [InlineData(SimProfileSlot.Meter, "eaton-xups", "is not a meter profile")]
    [InlineData(SimProfileSlot.RackProbe, "apc-rpdu2", "measures pdu.* too")]
    [InlineData(SimProfileSlot.RackProbe, "sensirion-sht3x", "speaks i2c (the simulator serves SNMP and Modbus)")]
    [InlineData(SimProfileSlot.Ups, "no-such-ups", "is not a profile in")]
    public void A_profile_of_the_wrong_kind_or_unknown_is_refused_with_the_known_choices(SimProfileSlot slot, string id, string reason)
    {
        var profiles = slot switch
        {
            SimProfileSlot.Ups => new SimProfiles { Ups = [id] },
            SimProfileSlot.Meter => new SimProfiles { Meter = id },
            _ => new SimProfiles { RackProbe = id },
        };
        var ex = Assert.Throws<SimProfileChoiceException>(() => SimulatedSiteHost.LoadProfiles(RepoPaths.Profiles, profiles));
        Assert.Equal(slot, ex.Slot);
        Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
        string[] known = slot switch
        {
            SimProfileSlot.Ups => ["apc-smart-ups", "eaton-xups", "ietf-ups-mib"],
            SimProfileSlot.Meter => ["eastron-sdm630", "schneider-pm5300", "siemens-pac3200"],
            _ => ["apc-uio-probe"],
        };
        Assert.Superset(known.ToHashSet(), ex.Known.ToHashSet());
        Assert.DoesNotContain(id, ex.Known);
        Assert.Contains("known: " + string.Join(", ", ex.Known), ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Eaton_xups_reads_on_battery_with_its_runtime_in_seconds_after_a_utility_failure()
    {
        await using var host = await StartAsync(new SimProfiles { Ups = ["eaton-xups"] });
        var profile = SimulatedSiteHost.LoadProfiles(RepoPaths.Profiles, new SimProfiles { Ups = ["eaton-xups"] })["eaton-xups"];
        var served = host.Devices.Single(d => d.Binding.DeviceId == "ups1");
        Assert.Equal("eaton-xups", served.Profile.Id);
        // Seconds on battery and a battery temperature are not in XUPS-MIB: nothing the simulator cannot fill is left.
        Assert.Empty(served.Unsupported);
        await using var client = new SnmpClient();
        Assert.Equal(3, await GetIntAsync(client, served, "1.3.6.1.4.1.534.1.4.5.0")); // xupsOutputSource normal(3)

        host.Site.Apply(FaultCommand.Parse("utility-fail:ups1"));
        host.Site.Step(TimeSpan.FromSeconds(60));
        host.Refresh();
        var ups = host.Site.Ups("ups1");
        Assert.True(ups.OnBattery);

        Assert.Equal(5, await GetIntAsync(client, served, "1.3.6.1.4.1.534.1.4.5.0")); // battery(5): the ups-on-battery rule's state
        Assert.Equal("battery", profile.FindMetric("output_source")!.States![5]);
        var seconds = await GetIntAsync(client, served, "1.3.6.1.4.1.534.1.2.1.0"); // xupsBatTimeRemaining, s
        Assert.Equal(Math.Round(ups.RuntimeMinutes * 60), seconds);
        Assert.InRange(ups.RuntimeMinutes, 1, 10_000);
        // Published in minutes, as ietf-ups-mib and apc-smart-ups: one ups-runtime-low threshold for all.
        var runtime = profile.FindMetric("runtime_remaining")!;
        Assert.Equal("min", runtime.Unit);
        Assert.Equal(ups.RuntimeMinutes, runtime.Convert(seconds), 0.01);
        Assert.Equal(2, await GetIntAsync(client, served, "1.3.6.1.4.1.534.1.2.5.0")); // ABM batteryDischarging
        Assert.Equal(0, await GetIntAsync(client, served, "1.3.6.1.4.1.534.1.3.1.0")); // input 0 Hz
        Assert.Equal(Math.Round(ups.BatteryCurrentA), await GetIntAsync(client, served, "1.3.6.1.4.1.534.1.2.3.0"));
        Assert.True(ups.BatteryCurrentA > 0, "discharging reads positive, as XUPS-MIB says");
        Assert.Equal(Math.Round(ups.OutputKw * 1000), await GetIntAsync(client, served, "1.3.6.1.4.1.534.1.4.4.1.4.1")); // xupsOutputWatts line 1
        Assert.Equal(Math.Round(ups.LoadPercent), await GetIntAsync(client, served, "1.3.6.1.4.1.534.1.4.1.0"));
    }

    [Fact]
    public async Task Regression_eaton_xups_battery_status_read_batteryDischarging_on_mains()
    {
        // The battery status carried only UPS-MIB's words (batteryNormal …): none is an XUPS-MIB ABM label, so the UPS-MIB
        // code 2 went on the wire, which XUPS-MIB calls batteryDischarging, on a UPS on mains with a full battery.
        await using var host = await StartAsync(new SimProfiles { Ups = ["eaton-xups", "ietf-ups-mib"] });
        await using var client = new SnmpClient();
        var eaton = host.Devices.Single(d => d.Binding.DeviceId == "ups1");
        Assert.Equal(100, host.Site.Ups("ups1").BatteryChargePercent);
        Assert.Equal(3, await GetIntAsync(client, eaton, "1.3.6.1.4.1.534.1.2.5.0")); // batteryFloating
        // UPS-MIB's own status is unchanged: batteryNormal(2).
        Assert.Equal(2, await GetIntAsync(client, host.Devices.Single(d => d.Binding.DeviceId == "ups2"), "1.3.6.1.2.1.33.1.2.1.0"));

        host.Site.Apply(FaultCommand.Parse("utility-fail:ups1"));
        host.Site.Step(TimeSpan.FromSeconds(30));
        host.Site.Apply(FaultCommand.Parse("utility-restore:ups1"));
        host.Site.Step(TimeSpan.FromSeconds(5));
        host.Refresh();
        Assert.True(host.Site.Ups("ups1").BatteryChargePercent < 100);
        Assert.Equal(1, await GetIntAsync(client, eaton, "1.3.6.1.4.1.534.1.2.5.0")); // batteryCharging
    }

    [Fact]
    public async Task Siemens_pac3200_serves_float32_and_float64_in_the_profiles_word_order()
    {
        await using var host = await StartAsync(new SimProfiles { Meter = "siemens-pac3200" });
        var served = host.Devices.Single(d => d.Binding.DeviceId == "meter1");
        Assert.Equal("siemens-pac3200", served.Profile.Id);
        Assert.Equal(WordOrder.ABCD, served.Profile.Modbus!.ByteOrder);
        Assert.Empty(served.Unsupported);
        host.Site.Step(TimeSpan.FromMinutes(30)); // an energy count worth reading
        host.Refresh();
        var facilityKw = host.Site.Upses.Sum(u => u.InputKw) + host.Site.CoolingUnits.Sum(u => u.FanPowerKw + u.CompressorKw);
        var importWh = host.Site.Upses.Sum(u => u.InputEnergyKwh) * 1000;
        Assert.True(importWh > 0);

        await using var client = Modbus(served.Address);
        // Decoded by hand, big-endian words high first (ABCD, as the profile declares), not with the codec that encoded them.
        var voltage = await client.ReadHoldingRegistersAsync(1, 1, 2, Ct);
        Assert.Equal(230f, Float32(voltage));
        var totals = await client.ReadHoldingRegistersAsync(1, 63, 8, Ct); // VA, W, var, PF sums
        Assert.Equal((float)(facilityKw / 0.97 * 1000), Float32(totals.AsSpan(0, 2)));
        Assert.Equal((float)(facilityKw * 1000), Float32(totals.AsSpan(2, 2)));
        Assert.Equal(0.97f, Float32(totals.AsSpan(6, 2)));
        // The other word order reads something else entirely: the order is the profile's, not an accident of symmetry.
        Assert.NotEqual(Float32(totals.AsSpan(2, 2)), Float32([totals[3], totals[2]]));
        var powerL2 = await client.ReadHoldingRegistersAsync(1, 27, 2, Ct);
        Assert.Equal((float)(facilityKw / 3 * 1000), Float32(powerL2));
        var frequency = await client.ReadHoldingRegistersAsync(1, 55, 2, Ct);
        Assert.Equal(50f, Float32(frequency));

        var energy = await client.ReadHoldingRegistersAsync(1, 801, 16, Ct); // import T1, T2, export T1, T2: Double, Wh
        Assert.Equal(importWh, Float64(energy.AsSpan(0, 4)), 6);
        Assert.Equal(0, Float64(energy.AsSpan(8, 4)));
    }

    [Fact]
    public async Task Regression_pac3200_tariff_2_import_counted_the_whole_import_again()
    {
        // Both tariff registers have role meter.energy_import: tariff 2 served the whole import as tariff 1 did, so a
        // simulated single-tariff site read its energy twice. Tariff 2 (named _t2) of a single-tariff site stays at 0.
        await using var host = await StartAsync(new SimProfiles { Meter = "siemens-pac3200" });
        host.Site.Step(TimeSpan.FromMinutes(30));
        host.Refresh();
        await using var client = Modbus(host.Devices.Single(d => d.Binding.DeviceId == "meter1").Address);
        var energy = await client.ReadHoldingRegistersAsync(1, 801, 8, Ct);
        Assert.True(Float64(energy.AsSpan(0, 4)) > 0);
        Assert.Equal(0, Float64(energy.AsSpan(4, 4)));
    }

    [Fact]
    public async Task Apc_uio_probe_serves_each_racks_inlet_temperature_and_humidity()
    {
        await using var host = await StartAsync(new SimProfiles { RackProbe = "apc-uio-probe" }, racks: 2);
        await using var client = new SnmpClient();
        var probes = host.Devices.Where(d => d.Binding.Kind == SimEntityKind.RackProbe).ToList();
        Assert.Equal(host.Site.Racks.Select(r => r.Id), probes.Select(p => p.Binding.EntityId));
        host.Site.Apply(FaultCommand.Parse("cooling-stop:crac1"));
        host.Site.Apply(FaultCommand.Parse("cooling-stop:crac2"));
        host.Site.Step(TimeSpan.FromMinutes(5)); // inlets apart from the room's 22 °C, humidity with them
        host.Refresh();
        foreach (var probe in probes)
        {
            var rack = host.Site.Rack(probe.Binding.EntityId);
            Assert.Empty(probe.Unsupported);
            var temperature = await client.BulkWalkAsync(Target(probe.Address), Oid.Parse("1.3.6.1.4.1.318.1.1.25.1.2.1.6"), Ct);
            var row = Assert.Single(temperature); // one probe at the rack's inlet, no rear row reading the inlet again
            Assert.Equal(Math.Round(rack.InletSensor.Reading), row.Value.AsInt32());
            var humidity = await GetIntAsync(client, probe, "1.3.6.1.4.1.318.1.1.25.1.2.1.7.1");
            Assert.Equal(Math.Round(Math.Clamp(45 - (3 * (rack.InletC - 22)), 5, 95)), humidity);
            Assert.InRange(humidity, 5, 95);
            Assert.Equal(2, await GetIntAsync(client, probe, "1.3.6.1.4.1.318.1.1.25.1.2.1.10.1")); // commsOK: the profile's row filter keeps it
            Assert.Equal(1, await GetIntAsync(client, probe, "1.3.6.1.4.1.318.1.1.25.1.2.1.9.1")); // uioNormal
            var name = await client.GetAsync(Target(probe.Address), [Oid.Parse("1.3.6.1.4.1.318.1.1.25.1.2.1.3.1")], Ct);
            Assert.Equal(rack.Id + " inlet", System.Text.Encoding.UTF8.GetString(name[0].Value.AsBytes().Span));
        }

        var config = host.BuildConfig(TimeSpan.FromSeconds(10), RepoPaths.Profiles);
        Assert.All(probes, p => Assert.Equal(p.Binding.EntityId, config.FindDevice(p.Binding.DeviceId)!.Location!.Rack));
    }

    [Fact]
    public async Task A_lost_probe_reads_comms_lost_and_the_mibs_no_reading_and_a_probe_over_its_cards_threshold_alarms()
    {
        await using var host = await StartAsync(new SimProfiles { RackProbe = "apc-uio-probe" }, racks: 2);
        await using var client = new SnmpClient();
        var a01 = host.Devices.Single(d => d.Binding.DeviceId == "probe-a01");
        var a02 = host.Devices.Single(d => d.Binding.DeviceId == "probe-a02");
        const string Temperature = "1.3.6.1.4.1.318.1.1.25.1.2.1.6.1", Humidity = "1.3.6.1.4.1.318.1.1.25.1.2.1.7.1", Alarm = "1.3.6.1.4.1.318.1.1.25.1.2.1.9.1", Comm = "1.3.6.1.4.1.318.1.1.25.1.2.1.10.1";

        host.Site.Apply(FaultCommand.Parse("probe-lost:A01"));
        var inlet = host.Site.Rack("A02").InletSensor.Reading;
        host.Site.Apply(FaultCommand.Parse(FormattableString.Invariant($"probe-threshold:A02:{Math.Floor(inlet) - 1}")));
        host.Refresh();

        // PowerNet-MIB: commsLost(3), -1 "an invalid reading due to lost communications", sensorStatusNotApplicable(4).
        Assert.Equal(3, await GetIntAsync(client, a01, Comm));
        Assert.Equal(-1, await GetIntAsync(client, a01, Temperature));
        Assert.Equal(-1, await GetIntAsync(client, a01, Humidity));
        Assert.Equal(4, await GetIntAsync(client, a01, Alarm));
        // Over the card's high threshold: uioWarning(2), the probe connected and reading.
        Assert.Equal(2, await GetIntAsync(client, a02, Comm));
        Assert.Equal(2, await GetIntAsync(client, a02, Alarm));
        Assert.Equal(Math.Round(host.Site.Rack("A02").InletSensor.Reading), await GetIntAsync(client, a02, Temperature));
        // More than 5 K over it: uioCritical(3).
        host.Site.Apply(FaultCommand.Parse(FormattableString.Invariant($"probe-threshold:A02:{Math.Floor(inlet) - 6}")));
        host.Refresh();
        Assert.Equal(3, await GetIntAsync(client, a02, Alarm));

        host.Site.Apply(FaultCommand.Parse("probe-ok:A01"));
        host.Site.Apply(FaultCommand.Parse("probe-ok:A02"));
        host.Refresh();
        Assert.Equal(2, await GetIntAsync(client, a01, Comm));
        Assert.Equal(Math.Round(host.Site.Rack("A01").InletSensor.Reading), await GetIntAsync(client, a01, Temperature));
        Assert.Equal(1, await GetIntAsync(client, a01, Alarm));
        Assert.Equal(1, await GetIntAsync(client, a02, Alarm));
        Assert.Contains(host.Site.Events(), e => e.Source == "A01" && e.Message.Contains("comms lost", StringComparison.Ordinal));
    }

    private static float Float32(ReadOnlySpan<ushort> words)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt16BigEndian(bytes, words[0]);
        BinaryPrimitives.WriteUInt16BigEndian(bytes[2..], words[1]);
        return BinaryPrimitives.ReadSingleBigEndian(bytes);
    }

    private static double Float64(ReadOnlySpan<ushort> words)
    {
        Span<byte> bytes = stackalloc byte[8];
        for (var i = 0; i < 4; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(bytes[(2 * i)..], words[i]);
        }

        return BinaryPrimitives.ReadDoubleBigEndian(bytes);
    }
}
