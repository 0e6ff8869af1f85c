using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Modbus.Data;
using EdgeTwin.Simulator.Devices;
using EdgeTwin.Simulator.Faults;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Snmp;
using CoreType = EdgeTwin.Core.Profiles.ModbusDataType;
using CoreTable = EdgeTwin.Core.Profiles.ModbusTable;
using LibTable = EdgeTwin.Modbus.Protocol.ModbusTable;

namespace EdgeTwin.Simulator.Tests.Devices;

public sealed class DeviceImageTests
{
    private static readonly DeviceProfile PduProfile = new(
        "test-pdu", "Test", "PDU", DeviceProtocol.Snmp, "test",
        [
            new ProfileMetric("total_power", "kW", MetricKind.Gauge, "pdu.power") { Oid = ".1.3.6.1.4.1.99.1.5.1", Scale = 0.01 },
            new ProfileMetric("energy", "kW.h", MetricKind.Counter, "pdu.energy") { Oid = ".1.3.6.1.4.1.99.1.6.1", Scale = 0.1 },
            new ProfileMetric("inlet", "Cel", MetricKind.Gauge, "rack.inlet_temperature") { Oid = ".1.3.6.1.4.1.99.2.1", Scale = 0.1 },
            new ProfileMetric("mood", "1", MetricKind.Gauge, "pdu.mood") { Oid = ".1.3.6.1.4.1.99.2.9" },
        ],
        [
            new ProfileTable("outlet", "outlet", [new ProfileMetric("outlet_current", "A", MetricKind.Gauge, "pdu.outlet_current") { Oid = ".1.3.6.1.4.1.99.3.1.6", Scale = 0.1 }])
            {
                LabelOid = ".1.3.6.1.4.1.99.3.1.2",
            },
        ]);

    private static readonly DeviceProfile DriveProfile = new(
        "test-drive", "Test", "VFD 9000", DeviceProtocol.Modbus, "test",
        [
            new ProfileMetric("speed", "rpm", MetricKind.Gauge, "machine.speed") { Register = new ModbusRegister(CoreTable.Holding, 99, CoreType.Int16) },
            new ProfileMetric("current", "A", MetricKind.Gauge, "machine.current") { Register = new ModbusRegister(CoreTable.Holding, 100, CoreType.UInt16), Scale = 0.01 },
            new ProfileMetric("vibration", "mm/s", MetricKind.Gauge, "machine.vibration_rms") { Register = new ModbusRegister(CoreTable.Holding, 103, CoreType.Float32) { Order = WordOrder.CDAB } },
            new ProfileMetric("run_hours", "h", MetricKind.Counter, "machine.run_hours") { Register = new ModbusRegister(CoreTable.Holding, 105, CoreType.UInt32) },
            new ProfileMetric("running", "1", MetricKind.State, "machine.running") { Register = new ModbusRegister(CoreTable.Holding, 109, CoreType.UInt16) { Bit = 2 }, States = new Dictionary<long, string> { [0] = "stopped", [1] = "running" } },
            new ProfileMetric("faulted", "1", MetricKind.State, "machine.fault") { Register = new ModbusRegister(CoreTable.Holding, 109, CoreType.UInt16) { Bit = 3 }, States = new Dictionary<long, string> { [0] = "none", [1] = "fault" } },
            new ProfileMetric("fault_coil", "1", MetricKind.State, "machine.fault") { Register = new ModbusRegister(CoreTable.Coil, 0, CoreType.Bit), States = new Dictionary<long, string> { [0] = "none", [1] = "fault" } },
        ],
        [])
    {
        Modbus = new ModbusProfileSettings(Addressing: 1, ByteOrder: WordOrder.ABCD),
    };

    private static SimulatedSite Site() => new(Physics.TestSites.OneRack() with { Machines = [new MachineSpec("m1", "line1", InitialWear: 0.5)] });

    [Fact]
    public void SNMP_image_serves_scalars_and_table_rows_inversely_scaled()
    {
        var site = Site();
        var binding = new SimDeviceBinding("pdu-a01-a", "test-pdu", SimEntityKind.Pdu, "pdu-a01-a");
        var image = SnmpDeviceImage.Build(site, binding, PduProfile);

        Assert.True(image.TryGet(Oid.Parse("1.3.6.1.4.1.99.1.5.1"), out var power));
        Assert.Equal((int)Math.Round(site.Pdu("pdu-a01-a").PowerKw * 100), power.AsInt32());
        Assert.True(image.TryGet(Oid.Parse("1.3.6.1.4.1.99.1.6.1"), out var energy));
        Assert.Equal(SnmpType.Counter32, energy.Type);
        Assert.True(image.TryGet(Oid.Parse("1.3.6.1.4.1.99.3.1.6.4"), out var outlet4));
        Assert.Equal(Math.Round(site.Pdu("pdu-a01-a").OutletCurrentA(3) * 10), outlet4.AsInt32());
        Assert.True(image.TryGet(Oid.Parse("1.3.6.1.4.1.99.3.1.2.2"), out var label));
        Assert.Equal("outlet 2", System.Text.Encoding.UTF8.GetString(label.AsBytes().Span));

        // Four servers → four outlets; nothing past them, and the unmappable metric is reported, not faked.
        Assert.False(image.TryGet(Oid.Parse("1.3.6.1.4.1.99.3.1.6.5"), out _));
        Assert.Equal(["mood"], image.Unsupported);
    }

    [Fact]
    public void SNMP_image_walks_in_lexicographic_order_to_the_end_of_the_MIB()
    {
        var image = SnmpDeviceImage.Build(Site(), new SimDeviceBinding("pdu-a01-a", "test-pdu", SimEntityKind.Pdu, "pdu-a01-a"), PduProfile);
        var walked = new List<Oid>();
        var oid = Oid.Parse("1.3.6.1.4.1.99");
        while (image.TryGetNext(oid, out var next) && next.Oid.StartsWith(Oid.Parse("1.3.6.1.4.1.99")))
        {
            walked.Add(next.Oid);
            oid = next.Oid;
        }

        Assert.Equal(3 + 4 + 4, walked.Count); // 3 scalars, 4 labels, 4 outlet currents
        Assert.Equal(walked.Order().ToList(), walked);
        Assert.False(image.TryGetNext(Oid.Parse("1.3.6.1.4.1.100"), out var end));
        Assert.Equal(SnmpType.EndOfMibView, end.Value.Type);
    }

    [Fact]
    public void Modbus_image_encodes_types_orders_scales_and_bit_fields_the_library_decodes_back()
    {
        var site = Site();
        var machine = site.Machine("m1");
        var image = ModbusDeviceImage.Build(site, new SimDeviceBinding("drive1", "test-drive", SimEntityKind.Machine, "m1"), DriveProfile);
        Span<ushort> regs = stackalloc ushort[11];

        // Profile addresses are protocol addresses once loaded (the loader applies a 1-based map's offset).
        Assert.True(image.TryReadRegisters(LibTable.HoldingRegisters, 99, regs));
        Assert.Equal(machine.SpeedRpm, new ModbusPoint(LibTable.HoldingRegisters, 99, EdgeTwin.Modbus.Data.ModbusDataType.Int16).Decode(regs[..1]));
        Assert.Equal(machine.CurrentA, new ModbusPoint(LibTable.HoldingRegisters, 100, EdgeTwin.Modbus.Data.ModbusDataType.UInt16) { Scale = 0.01 }.Decode(regs[1..2]), 2);
        Assert.Equal(machine.VibrationSensor.Reading, new ModbusPoint(LibTable.HoldingRegisters, 103, EdgeTwin.Modbus.Data.ModbusDataType.Float32) { Order = ModbusWordOrder.CDAB }.Decode(regs[4..6]), 5);
        Assert.Equal(0, regs[2]); // gap
        Assert.Equal(0b0100, regs[10]); // running bit 2 set, fault bit 3 clear

        Span<bool> coil = stackalloc bool[1];
        Assert.True(image.TryReadBits(LibTable.Coils, 0, coil));
        Assert.False(coil[0]);

        site.Apply(FaultCommand.Parse("machine-wear:m1:1"));
        site.Step(TimeSpan.FromSeconds(1));
        Assert.True(image.TryReadRegisters(LibTable.HoldingRegisters, 99, regs));
        Assert.Equal(0, regs[0]);
        Assert.Equal(0b1000, regs[10]);
        Assert.True(image.TryReadBits(LibTable.Coils, 0, coil));
        Assert.True(coil[0]);
    }

    [Fact]
    public void Modbus_reads_outside_the_map_are_illegal_addresses()
    {
        var image = ModbusDeviceImage.Build(Site(), new SimDeviceBinding("drive1", "test-drive", SimEntityKind.Machine, "m1"), DriveProfile);
        var regs = new ushort[4];
        Assert.False(image.TryReadRegisters(LibTable.HoldingRegisters, 98, regs));
        Assert.False(image.TryReadRegisters(LibTable.HoldingRegisters, 108, regs));
        Assert.False(image.TryReadRegisters(LibTable.InputRegisters, 99, regs));
    }

    [Fact]
    public void The_site_config_describes_the_topology_and_one_device_per_simulated_device()
    {
        var spec = SiteGenerator.Generate(new SiteGenerationOptions { Racks = 12, CoolingUnits = 3, Machines = 2, Seed = 2 });
        var plan = SimDevicePlan.For(spec);
        var port = 20000;
        var endpoints = plan.Select(d => (d, d.Kind is SimEntityKind.Machine or SimEntityKind.Meter ? DeviceAddress.Tcp("127.0.0.1", port++) : DeviceAddress.Udp("127.0.0.1", port++)));
        var config = SimSiteConfig.Build(spec, endpoints, TimeSpan.FromSeconds(5));

        Assert.Equal(12, config.Site.AllRacks.Count());
        Assert.Equal(["A", "B"], config.Site.Rooms[0].Rows.Select(r => r.Id));
        Assert.Equal(24 + 2 + 3 + 2 + 1, config.Devices.Count);
        Assert.All(config.Site.Power.Pdus, p => Assert.Equal(p.Id, p.Device));
        Assert.All(config.Site.CoolingUnits, u => Assert.NotEmpty(u.Serves));
        Assert.Equal("drive2", config.Site.AllMachines.Last().Device);
        var drive = config.FindDevice("drive1")!;
        Assert.Equal(new DeviceLocation(Machine: "m1"), drive.Location);
        Assert.Null(drive.Credentials);
        var pdu = config.FindDevice("pdu-b02-b")!;
        Assert.Equal(SimSiteConfig.Credentials, pdu.Credentials);
        Assert.Equal("B02", pdu.Location.Rack);
        Assert.Equal(TimeSpan.FromSeconds(5), pdu.Interval);
    }
}
