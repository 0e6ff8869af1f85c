using EdgeTwin.Agent.Sources.Modbus;
using EdgeTwin.Agent.Sources.Snmp;
using EdgeTwin.Agent.Twin.Setpoints;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.IntegrationTests.Simulator;
using EdgeTwin.Modbus.Client;
using EdgeTwin.Modbus.Tests.Peers;
using EdgeTwin.Modbus.Transport;
using EdgeTwin.Simulator.Devices;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Simulator.Serving;
using EdgeTwin.Snmp.Client;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.IntegrationTests.Twin.Setpoints;

/// <summary>
/// The set-point writers against real peers: Modbus against a pymodbus server (FC 6 / FC 16 with the profile's type, word
/// order and scale, verified by read-back), SNMP SET against the simulator's SNMP agent (the Liebert profile's supply row
/// of the set-point table) and the simulator's Modbus CRAC (the write reaches the simulated unit).
/// </summary>
public sealed class SetpointWriterTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Modbus_writes_int16_and_word_swapped_float32_set_points_to_pymodbus_and_reads_them_back()
    {
        await using var server = await PymodbusServer.StartTcpAsync(PymodbusServer.Units((1, "hr", 0, new int[16])));
        var device = new DeviceConfig("crac-bms", "test", DeviceAddress.Tcp("127.0.0.1", server.Port)) { UnitId = 1 };
        using var metrics = new SetpointMetrics();
        var supply = new ProfileMetric("supply_setpoint", "Cel", MetricKind.Gauge, "crac.supply_setpoint")
        {
            Register = new ModbusRegister(ModbusTable.Holding, 8, ModbusDataType.Int16),
            Scale = 0.1,
            Writable = true,
        };
        var fan = new ProfileMetric("fan_speed_setpoint", "%", MetricKind.Gauge, "crac.fan_speed_setpoint")
        {
            Register = new ModbusRegister(ModbusTable.Holding, 10, ModbusDataType.Float32) { Order = WordOrder.CDAB },
            Writable = true,
        };
        await using var supplyChannel = new ModbusSetpointChannel("CRAC-1", device, supply, ModbusProfileSettings.Default, SetpointKind.Supply, TimeSpan.FromSeconds(5), metrics, NullLoggerFactory.Instance, TimeProvider.System);
        await using var fanChannel = new ModbusSetpointChannel("CRAC-1", device, fan, ModbusProfileSettings.Default, SetpointKind.Fan, TimeSpan.FromSeconds(5), metrics, NullLoggerFactory.Instance, TimeProvider.System);

        Assert.Equal(19.5, await supplyChannel.WriteAsync(19.5, Ct), 3);
        Assert.Equal(-2.3, await supplyChannel.WriteAsync(-2.3, Ct), 3);
        Assert.Equal(72.25, await fanChannel.WriteAsync(72.25, Ct), 3);

        // What pymodbus holds, read by a separate client: raw -23 as int16 at 8, the float32 word-swapped at 10..11.
        await using var client = new ModbusClient(new ModbusTcpTransport(new ModbusTcpOptions { Host = "127.0.0.1", Port = server.Port, RequestTimeout = TimeSpan.FromSeconds(5) }, NullLogger.Instance, TimeProvider.System));
        var raw = await client.ReadHoldingRegistersAsync(1, 8, 4, Ct);
        Assert.Equal(unchecked((ushort)-23), raw[0]);
        var bytes = BitConverter.GetBytes(72.25f); // little-endian: bytes[3] is A (most significant)
        Assert.Equal((ushort)((bytes[1] << 8) | bytes[0]), raw[2]); // CDAB: the low word first
        Assert.Equal((ushort)((bytes[3] << 8) | bytes[2]), raw[3]);
        Assert.Equal(72.25, await fanChannel.ReadAsync(Ct), 3);
    }

    [Fact]
    public async Task Modbus_rtu_set_points_go_over_the_pollers_serial_bus_between_its_polls()
    {
        // A unit on RS-485 (socat pty pair, pymodbus on the far end): the port has one owner, the agent's bus registry.
        // The writer leases the poller's bus; its requests take turns with the polls and closing it leaves the bus open.
        await using var pty = await SocatPtyPair.StartAsync();
        await using var server = await PymodbusServer.StartSerialAsync(pty.A, 19200, PymodbusServer.Units((3, "hr", 0, [215, 0, 0, 0, 0, 0, 0, 0, 215, 0])));
        var device = new DeviceConfig("crac-rtu", "test", DeviceAddress.Rtu(pty.B)) { UnitId = 3, Serial = new SerialSettings(19200, SerialParity.None), Timeout = TimeSpan.FromSeconds(2) };
        var buses = new ModbusBusRegistry();
        await using var poller = buses.Acquire(device, NullLoggerFactory.Instance, TimeProvider.System);
        using var stopPolling = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var polls = 0;
        var polling = Task.Run(
            async () =>
            {
                while (!stopPolling.IsCancellationRequested)
                {
                    var registers = await poller.Client.ReadHoldingRegistersAsync(3, 0, 10, stopPolling.Token);
                    Assert.Equal(215, registers[0]); // the poller's own reads stay intact around the writes
                    Interlocked.Increment(ref polls);
                }
            },
            Ct);

        using var metrics = new SetpointMetrics();
        var supply = new ProfileMetric("supply_setpoint", "Cel", MetricKind.Gauge, "crac.supply_setpoint")
        {
            Register = new ModbusRegister(ModbusTable.Holding, 8, ModbusDataType.Int16),
            Scale = 0.1,
            Writable = true,
        };
        var channel = new ModbusSetpointChannel("CRAC-1", device, supply, ModbusProfileSettings.Default, SetpointKind.Supply, TimeSpan.FromSeconds(5), metrics, NullLoggerFactory.Instance, buses.Acquire(device, NullLoggerFactory.Instance, TimeProvider.System));
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(19.5 + i, await channel.WriteAsync(19.5 + i, Ct), 3);
        }

        await channel.DisposeAsync();
        var before = Volatile.Read(ref polls);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (Volatile.Read(ref polls) < before + 3 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, Ct);
        }

        await stopPolling.CancelAsync();
        try
        {
            await polling;
        }
        catch (OperationCanceledException)
        {
            // Stopped inside a read.
        }

        Assert.True(polls >= before + 3, $"the poller's bus closed with the writer: {polls} polls, {before} before");
        Assert.Equal(23.5, (await poller.Client.ReadHoldingRegistersAsync(3, 8, 1, Ct))[0] / 10.0, 3);

        // The TCP constructor refuses a serial device with the reason, instead of opening the port a second time.
        var ex = Assert.Throws<SetpointWriteException>(() => new ModbusSetpointChannel("CRAC-1", device, supply, ModbusProfileSettings.Default, SetpointKind.Supply, TimeSpan.FromSeconds(5), metrics, NullLoggerFactory.Instance, TimeProvider.System));
        Assert.Contains("crac-rtu", ex.Message, StringComparison.Ordinal);
        Assert.Contains("poller's bus", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Modbus_write_to_an_address_the_device_lacks_fails_with_unit_device_and_metric_named()
    {
        await using var server = await PymodbusServer.StartTcpAsync(PymodbusServer.Units((1, "hr", 0, new int[4])));
        var device = new DeviceConfig("crac-bms", "test", DeviceAddress.Tcp("127.0.0.1", server.Port)) { UnitId = 1 };
        using var metrics = new SetpointMetrics();
        var metric = new ProfileMetric("supply_setpoint", "Cel", MetricKind.Gauge, "crac.supply_setpoint") { Register = new ModbusRegister(ModbusTable.Holding, 40, ModbusDataType.Int16), Scale = 0.1, Writable = true };
        await using var channel = new ModbusSetpointChannel("CRAC-1", device, metric, ModbusProfileSettings.Default, SetpointKind.Supply, TimeSpan.FromSeconds(5), metrics, NullLoggerFactory.Instance, TimeProvider.System);
        var ex = await Assert.ThrowsAsync<SetpointWriteException>(() => channel.WriteAsync(20, Ct));
        Assert.Contains("CRAC-1", ex.Message, StringComparison.Ordinal);
        Assert.Contains("crac-bms", ex.Message, StringComparison.Ordinal);
        Assert.Contains("supply_setpoint", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Modbus_write_to_a_silent_device_times_out_within_the_write_timeout()
    {
        await using var server = await PymodbusServer.StartTcpAsync(PymodbusServer.Units((1, "hr", 0, new int[16])), new System.Text.Json.Nodes.JsonObject { ["silent"] = true });
        var device = new DeviceConfig("crac-bms", "test", DeviceAddress.Tcp("127.0.0.1", server.Port)) { UnitId = 1 };
        using var metrics = new SetpointMetrics();
        var metric = new ProfileMetric("supply_setpoint", "Cel", MetricKind.Gauge, "crac.supply_setpoint") { Register = new ModbusRegister(ModbusTable.Holding, 8, ModbusDataType.Int16), Scale = 0.1, Writable = true };
        await using var channel = new ModbusSetpointChannel("CRAC-1", device, metric, ModbusProfileSettings.Default, SetpointKind.Supply, TimeSpan.FromSeconds(1), metrics, NullLoggerFactory.Instance, TimeProvider.System);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await Assert.ThrowsAsync<SetpointWriteException>(() => channel.WriteAsync(20, Ct));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task Snmp_set_of_the_liebert_supply_set_point_reaches_the_simulated_unit_and_reads_back()
    {
        var spec = SiteGenerator.Generate(new SiteGenerationOptions { Racks = 2, CoolingUnits = 2, Machines = 0, Seed = 3 });
        var site = new SimulatedSite(spec);
        await using var sim = await SimulatedSiteHost.StartAsync(site, SimPaths.LoadProfiles(), new SiteHostOptions(), Ct);
        var served = sim.Devices.Single(d => d.Binding.Kind == SimEntityKind.CoolingUnit && d.Binding.EntityId == "crac1");
        var profile = served.Profile;
        var table = profile.Tables.Single(t => t.Columns.Any(c => c.Writable));
        var column = table.Columns.Single(c => c.Writable);
        var device = new DeviceConfig("crac1", profile.Id, served.Address) { Credentials = "rw", Timeout = TimeSpan.FromSeconds(2) };
        await using var client = new SnmpClient();
        using var metrics = new SetpointMetrics();
        var channel = new SnmpSetpointChannel("crac1", device, column, table, SetpointKind.Supply, SnmpSourceFactory.Target(device, CredentialsConfig.V2c("rw", "private")), client, TimeSpan.FromSeconds(5), metrics, NullLogger.Instance);

        double before;
        lock (site.SyncRoot)
        {
            before = site.CoolingUnit("crac1").SupplySetpointC;
        }

        Assert.Equal(Math.Round(before), await channel.ReadAsync(Ct)); // whole degrees in lgpEnvTemperatureSetPointDegC
        Assert.Equal(21, await channel.WriteAsync(21, Ct));
        lock (site.SyncRoot)
        {
            Assert.Equal(21, site.CoolingUnit("crac1").SupplySetpointC);
            Assert.NotEqual(21, site.CoolingUnit("crac2").SupplySetpointC);
        }

        // A value the unit refuses (outside 5–35 °C) is an SNMP error, reported as a failed write.
        await Assert.ThrowsAsync<SetpointWriteException>(() => channel.WriteAsync(2, Ct));

        // The read-only community cannot SET: refused by the agent.
        var readOnly = new SnmpSetpointChannel("crac1", device, column, table, SetpointKind.Supply, SnmpSourceFactory.Target(device, CredentialsConfig.V2c("ro", "public")), client, TimeSpan.FromSeconds(5), metrics, NullLogger.Instance);
        await Assert.ThrowsAsync<SetpointWriteException>(() => readOnly.WriteAsync(22, Ct));
        lock (site.SyncRoot)
        {
            Assert.Equal(21, site.CoolingUnit("crac1").SupplySetpointC);
        }
    }

    [Fact]
    public async Task Modbus_writes_to_the_simulated_bms_crac_change_its_supply_and_fan_set_points()
    {
        var spec = SiteGenerator.Generate(new SiteGenerationOptions { Racks = 2, CoolingUnits = 1, Machines = 0, Seed = 4 });
        var site = new SimulatedSite(spec);
        var profiles = new SimProfiles { CoolingUnit = "generic-modbus-crac" };
        await using var sim = await SimulatedSiteHost.StartAsync(site, SimulatedSiteHost.LoadProfiles(SimPaths.Profiles, profiles), new SiteHostOptions { Profiles = profiles }, Ct);
        var served = sim.Devices.Single(d => d.Binding.Kind == SimEntityKind.CoolingUnit);
        Assert.Empty(served.Unsupported);
        var device = new DeviceConfig(served.Binding.DeviceId, served.Profile.Id, served.Address) { UnitId = 1 };
        using var metrics = new SetpointMetrics();
        var settings = served.Profile.Modbus!;
        await using var supply = new ModbusSetpointChannel("crac1", device, served.Profile.FindMetric("supply_setpoint")!, settings, SetpointKind.Supply, TimeSpan.FromSeconds(5), metrics, NullLoggerFactory.Instance, TimeProvider.System);
        await using var fan = new ModbusSetpointChannel("crac1", device, served.Profile.FindMetric("fan_speed_setpoint")!, settings, SetpointKind.Fan, TimeSpan.FromSeconds(5), metrics, NullLoggerFactory.Instance, TimeProvider.System);

        Assert.Equal(0, await fan.ReadAsync(Ct)); // the unit's own fan control
        Assert.Equal(20.7, await supply.WriteAsync(20.7, Ct), 3);
        Assert.Equal(65, await fan.WriteAsync(65, Ct), 3);
        lock (site.SyncRoot)
        {
            Assert.Equal(20.7, site.CoolingUnit("crac1").SupplySetpointC, 3);
            Assert.Equal(0.65, site.CoolingUnit("crac1").FanSpeedOverride!.Value, 3);
        }

        Assert.Equal(2, sim.Writes);

        // The unit refuses 45 °C: the register keeps the value in force, so the read-back fails the write.
        await Assert.ThrowsAsync<SetpointWriteException>(() => supply.WriteAsync(45, Ct));
        Assert.Equal(20.7, await supply.ReadAsync(Ct), 3);
    }
}
