using System.Diagnostics;
using System.Net;
using EdgeTwin.Core.Config;
using EdgeTwin.Modbus.Client;
using EdgeTwin.Modbus.Data;
using EdgeTwin.Modbus.Transport;
using EdgeTwin.Simulator.Faults;
using EdgeTwin.Snmp;
using EdgeTwin.Snmp.Client;
using LibTable = EdgeTwin.Modbus.Protocol.ModbusTable;

namespace EdgeTwin.IntegrationTests.Simulator;

/// <summary>The simulated site answers our own SNMP and Modbus clients with the simulated values, faults included.</summary>
public sealed class SimulatedSiteServingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static SnmpTarget Target(DeviceAddress address, TimeSpan? timeout = null) => new()
    {
        EndPoint = address.TryGetIPEndPoint()!,
        Community = "public",
        Timeout = timeout ?? TimeSpan.FromSeconds(3),
        Retries = 0,
    };

    private static ModbusClient Modbus(DeviceAddress address, TimeSpan? timeout = null) =>
        new(new ModbusTcpTransport(new ModbusTcpOptions { Host = address.Host!, Port = address.Port!.Value, RequestTimeout = timeout ?? TimeSpan.FromSeconds(3) }));

    [Fact]
    public async Task The_written_config_loads_and_validates_against_the_shipped_profiles()
    {
        await using var host = await SimPaths.StartAsync(racks: 3, units: 2, machines: 2);
        var path = Path.Combine(Path.GetTempPath(), $"edgetwin-sim-{Guid.NewGuid():N}.yaml");
        try
        {
            SiteConfigWriter.WriteFile(host.BuildConfig(TimeSpan.FromSeconds(5), SimPaths.Profiles), path);
            var result = SiteConfigLoader.Load(path);

            Assert.True(result.IsValid, string.Join(Environment.NewLine, result.Problems));
            var config = result.Config!;
            Assert.Equal(host.Devices.Count, config.Devices.Count);
            Assert.Equal(3, config.Site.AllRacks.Count());
            Assert.All(config.Devices, d => Assert.Equal(TimeSpan.FromSeconds(5), d.Interval));
            Assert.All(config.Devices, d => Assert.Contains(d.Profile, config.Profiles.Keys));
            Assert.Equal(host.Devices.Single(d => d.Binding.DeviceId == "drive2").Address, config.FindDevice("drive2")!.Address);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task SNMP_devices_answer_with_the_simulated_values()
    {
        await using var host = await SimPaths.StartAsync();
        await using var client = new SnmpClient();
        var pdu = host.Devices.Single(d => d.Binding.DeviceId == "pdu-a01-a");
        var simPdu = host.Site.Pdu("pdu-a01-a");

        var values = await client.GetAsync(Target(pdu.Address), [Oid.Parse("1.3.6.1.4.1.318.1.1.26.4.3.1.5.1"), Oid.Parse("1.3.6.1.4.1.318.1.1.26.10.2.2.1.8.1")], Ct);
        Assert.Equal(Math.Round(simPdu.PowerKw * 100), values[0].Value.AsInt32());
        Assert.Equal(Math.Round(simPdu.Rack.InletSensor.Reading * 10), values[1].Value.AsInt32());

        var outlets = await client.BulkWalkAsync(Target(pdu.Address), Oid.Parse("1.3.6.1.4.1.318.1.1.26.9.4.3.1.6"), Ct);
        Assert.Equal(simPdu.OutletCount, outlets.Count);

        var unit = host.Devices.Single(d => d.Binding.DeviceId == "crac1");
        var state = await client.GetAsync(Target(unit.Address), [Oid.Parse("1.3.6.1.4.1.476.1.42.3.4.3.1.0")], Ct);
        Assert.Equal(1, state[0].Value.AsInt32());
        host.Site.Apply(FaultCommand.Parse("cooling-stop:crac1"));
        host.Refresh();
        state = await client.GetAsync(Target(unit.Address), [Oid.Parse("1.3.6.1.4.1.476.1.42.3.4.3.1.0")], Ct);
        Assert.Equal(2, state[0].Value.AsInt32());
    }

    [Fact]
    public async Task Modbus_devices_answer_with_the_simulated_values()
    {
        await using var host = await SimPaths.StartAsync();
        var drive = host.Devices.Single(d => d.Binding.DeviceId == "drive1");
        var machine = host.Site.Machine("m1");
        await using (var client = Modbus(drive.Address))
        {
            var regs = await client.ReadHoldingRegistersAsync(1, 106, 1, Ct); // 01.07 motor current
            Assert.Equal(Math.Round(machine.CurrentA), (short)regs[0]);
            var status = await client.ReadHoldingRegistersAsync(1, 50, 1, Ct); // ABB Drives status word
            Assert.Equal(1 << 2, status[0] & (1 << 2));
            // The map is sparse like a real drive's: an unmapped register is an illegal address.
            await Assert.ThrowsAsync<EdgeTwin.Modbus.Protocol.ModbusDeviceException>(() => client.ReadHoldingRegistersAsync(1, 200, 1, Ct));
        }

        var meter = host.Devices.Single(d => d.Binding.DeviceId == "meter1");
        await using (var client = Modbus(meter.Address))
        {
            var regs = await client.ReadInputRegistersAsync(1, 0, 2, Ct);
            Assert.Equal(230, new ModbusPoint(LibTable.InputRegisters, 0, ModbusDataType.Float32).Decode(regs), 3);
        }
    }

    [Fact]
    public async Task Dark_slow_and_garbled_devices_misbehave_on_the_wire()
    {
        await using var host = await SimPaths.StartAsync();
        await using var snmp = new SnmpClient();
        var pdu = host.Devices.Single(d => d.Binding.DeviceId == "pdu-a01-a");
        var sysName = Oid.Parse("1.3.6.1.2.1.1.5.0");

        host.Site.Apply(FaultCommand.Parse("device-dark:pdu-a01-a"));
        host.Refresh();
        await Assert.ThrowsAsync<SnmpTimeoutException>(() => snmp.GetAsync(Target(pdu.Address, TimeSpan.FromMilliseconds(500)), [sysName], Ct));

        host.Site.Apply(FaultCommand.Parse("device-slow:pdu-a01-a:700ms"));
        host.Refresh();
        var watch = Stopwatch.StartNew();
        var answer = await snmp.GetAsync(Target(pdu.Address), [sysName], Ct);
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(650), $"answered after {watch.Elapsed.TotalMilliseconds:0} ms");
        Assert.Equal("pdu-a01-a", System.Text.Encoding.UTF8.GetString(answer[0].Value.AsBytes().Span));

        host.Site.Apply(FaultCommand.Parse("device-garble:pdu-a01-a:1"));
        host.Refresh();
        var garbled = await snmp.GetAsync(Target(pdu.Address), [Oid.Parse("1.3.6.1.4.1.318.1.1.26.4.3.1.5.1")], Ct);
        Assert.Equal(SnmpType.OctetString, garbled[0].Value.Type); // an INTEGER turned into junk bytes

        var drive = host.Devices.Single(d => d.Binding.DeviceId == "drive1");
        host.Site.Apply(FaultCommand.Parse("device-garble:drive1:1"));
        host.Refresh();
        await using (var client = Modbus(drive.Address, TimeSpan.FromSeconds(1)))
        {
            // Garbled, not silent: any exception passed here, so a drive that went dark (a timeout) passed as garbled.
            var misread = await Assert.ThrowsAsync<EdgeTwin.Modbus.Protocol.ModbusProtocolException>(() => client.ReadHoldingRegistersAsync(1, 106, 1, Ct));
            Assert.Contains("garbled response", misread.Message, StringComparison.Ordinal);
        }

        host.Site.Apply(FaultCommand.Parse("device-dark:drive1"));
        host.Refresh();
        await using (var client = Modbus(drive.Address, TimeSpan.FromMilliseconds(500)))
        {
            await Assert.ThrowsAnyAsync<EdgeTwin.Modbus.Protocol.ModbusCommunicationException>(() => client.ReadHoldingRegistersAsync(1, 106, 1, Ct));
        }

        host.Site.Apply(FaultCommand.Parse("device-ok:drive1"));
        host.Refresh();
        await using (var client = Modbus(drive.Address))
        {
            var regs = await client.ReadHoldingRegistersAsync(1, 106, 1, Ct);
            Assert.Equal(Math.Round(host.Site.Machine("m1").CurrentA), (short)regs[0]);
        }
    }
}
