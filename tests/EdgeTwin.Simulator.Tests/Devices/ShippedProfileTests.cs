using EdgeTwin.Core.Profiles;
using EdgeTwin.Modbus.Data;
using EdgeTwin.Simulator.Devices;
using EdgeTwin.Simulator.Faults;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Snmp;
using LibTable = EdgeTwin.Modbus.Protocol.ModbusTable;

namespace EdgeTwin.Simulator.Tests.Devices;

/// <summary>The simulator serves every metric of the shipped profiles it uses, with the right values.</summary>
public sealed class ShippedProfileTests
{
    private static DeviceProfile Load(string id) => DeviceProfileLoader.LoadFileOrThrow(Path.Combine(RepoPaths.Profiles, id + ".yaml"));

    private static SimulatedSite Site() => new(SiteGenerator.Generate(new SiteGenerationOptions { Racks = 4, CoolingUnits = 2, Machines = 1, Seed = 11 }));

    public static TheoryData<string> PlannedProfiles()
    {
        var p = new SimProfiles();
        return [p.Pdu, .. p.Ups, p.CoolingUnit, p.Drive, p.Meter!];
    }

    [Theory]
    [MemberData(nameof(PlannedProfiles))]
    public void Every_metric_of_the_planned_profiles_has_a_simulated_value(string profileId)
    {
        var site = Site();
        var profile = Load(profileId);
        var device = SimDevicePlan.For(site.Spec).First(d => d.Profile == profileId);
        var unsupported = profile.Protocol == DeviceProtocol.Snmp
            ? SnmpDeviceImage.Build(site, device, profile).Unsupported
            : ModbusDeviceImage.Build(site, device, profile).Unsupported;
        Assert.Empty(unsupported);
    }

    [Fact]
    public void The_APC_PDU_reports_what_the_simulated_PDU_carries()
    {
        var site = Site();
        var pdu = site.Pdus[0];
        var profile = Load("apc-rpdu2");
        var image = SnmpDeviceImage.Build(site, new SimDeviceBinding(pdu.Id, profile.Id, SimEntityKind.Pdu, pdu.Id), profile);
        double Read(string name, int? row = null)
        {
            var metric = profile.AllMetrics.First(m => m.Name == name);
            var oid = Oid.Parse(metric.Oid!.TrimStart('.'));
            Assert.True(image.TryGet(row is null ? oid : oid.Append((uint)row), out var value), name);
            Assert.True(value.TryGetNumber(out var raw), name);
            return metric.Convert(raw);
        }

        Assert.Equal(pdu.PowerKw, Read("total_power"), 2);
        Assert.Equal(pdu.Rack.InletSensor.Reading, Read("inlet_temperature"), 1);
        Assert.Equal(2, Read("load_state")); // normal
        Assert.Equal(pdu.OutletPowerW(2), Read("outlet_power", 3), 0);
        Assert.Equal(pdu.PhaseCurrentA(0), Read("phase_current", 1), 1);

        site.Apply(FaultCommand.Parse($"pdu-overload:{pdu.Id}"));
        site.Step(TimeSpan.FromSeconds(2));
        Assert.Equal(4, Read("load_state"));
    }

    [Fact]
    public void The_Liebert_unit_reports_supply_and_return_rows_and_its_state()
    {
        var site = Site();
        var unit = site.CoolingUnits[0];
        var profile = Load("liebert-gp-crac");
        var image = SnmpDeviceImage.Build(site, new SimDeviceBinding(unit.Id, profile.Id, SimEntityKind.CoolingUnit, unit.Id), profile);
        int Raw(string oid)
        {
            Assert.True(image.TryGet(Oid.Parse(oid), out var v), oid);
            return v.AsInt32();
        }

        Assert.Equal(Math.Round(unit.SupplySensor.Reading), Raw("1.3.6.1.4.1.476.1.42.3.4.1.3.3.1.3.1"));
        Assert.Equal(Math.Round(unit.ReturnSensor.Reading), Raw("1.3.6.1.4.1.476.1.42.3.4.1.3.3.1.3.2"));
        Assert.Equal(1, Raw("1.3.6.1.4.1.476.1.42.3.4.3.1.0")); // on
        Assert.Equal(2, Raw("1.3.6.1.4.1.476.1.42.3.4.3.8.0")); // no alarm

        site.Apply(FaultCommand.Parse($"cooling-stop:{unit.Id}"));
        site.Step(TimeSpan.FromSeconds(2));
        Assert.Equal(2, Raw("1.3.6.1.4.1.476.1.42.3.4.3.1.0")); // off
        Assert.Equal(1, Raw("1.3.6.1.4.1.476.1.42.3.4.3.8.0")); // alarm
        Assert.Equal(0, Raw("1.3.6.1.4.1.476.1.42.3.4.3.16.0")); // fans at 0 %
    }

    [Fact]
    public void The_UPS_MIB_follows_a_utility_failure()
    {
        var site = Site();
        var profile = Load("ietf-ups-mib");
        var image = SnmpDeviceImage.Build(site, new SimDeviceBinding("ups1", profile.Id, SimEntityKind.Ups, "ups1"), profile);
        int Raw(string oid)
        {
            Assert.True(image.TryGet(Oid.Parse(oid), out var v), oid);
            return v.Type == SnmpType.Counter32 ? (int)v.AsUInt32() : v.AsInt32();
        }

        Assert.Equal(3, Raw("1.3.6.1.2.1.33.1.4.1.0")); // upsOutputSource normal
        Assert.Equal(0, Raw("1.3.6.1.2.1.33.1.2.2.0"));
        site.Apply(FaultCommand.Parse("utility-fail:ups1"));
        site.Step(TimeSpan.FromSeconds(30));
        Assert.Equal(5, Raw("1.3.6.1.2.1.33.1.4.1.0")); // battery
        Assert.InRange(Raw("1.3.6.1.2.1.33.1.2.2.0"), 29, 31); // upsSecondsOnBattery
        Assert.Equal(1, Raw("1.3.6.1.2.1.33.1.3.1.0")); // upsInputLineBads
        Assert.Equal(Math.Round(site.Ups("ups1").LoadPercent), Raw("1.3.6.1.2.1.33.1.4.4.1.5.1"));
    }

    [Fact]
    public void The_ABB_drive_and_the_Eastron_meter_decode_to_the_simulated_values()
    {
        var site = Site();
        var machine = site.Machines[0];
        var drive = Load("abb-acs580");
        var image = ModbusDeviceImage.Build(site, new SimDeviceBinding("drive1", drive.Id, SimEntityKind.Machine, machine.Id), drive);
        var regs = new ushort[8];
        // 01.07 motor current at 400107 → protocol address 106.
        Assert.True(image.TryReadRegisters(LibTable.HoldingRegisters, 100, regs));
        Assert.Equal(Math.Round(machine.CurrentA), (short)regs[6]);
        Assert.Equal(20000, (short)regs[0]); // 01.01 speed at 100 % = 20000
        var status = new ushort[1];
        Assert.True(image.TryReadRegisters(LibTable.HoldingRegisters, 50, status));
        Assert.Equal(1 << 2, status[0] & (1 << 2)); // RDY_REF: running

        var meterProfile = Load("eastron-sdm630");
        var meter = ModbusDeviceImage.Build(site, new SimDeviceBinding("meter1", meterProfile.Id, SimEntityKind.Meter, "room1"), meterProfile);
        var input = new ushort[0x40];
        Assert.True(meter.TryReadRegisters(LibTable.InputRegisters, 0, input));
        var voltage = new ModbusPoint(LibTable.InputRegisters, 0, EdgeTwin.Modbus.Data.ModbusDataType.Float32).Decode(input.AsSpan(0, 2));
        var total = new ModbusPoint(LibTable.InputRegisters, 0x34, EdgeTwin.Modbus.Data.ModbusDataType.Float32).Decode(input.AsSpan(0x34, 2));
        var l1 = new ModbusPoint(LibTable.InputRegisters, 0x0C, EdgeTwin.Modbus.Data.ModbusDataType.Float32).Decode(input.AsSpan(0x0C, 2));
        Assert.Equal(230, voltage, 3);
        Assert.Equal(total / 3, l1, 0);
        // UPS losses, fans and compressors (COP 3) on top of the IT load: the PUE of a real room, 1.3–1.8.
        Assert.InRange(total, site.TotalItKw * 1000 * 1.3, site.TotalItKw * 1000 * 1.8);
    }
}
