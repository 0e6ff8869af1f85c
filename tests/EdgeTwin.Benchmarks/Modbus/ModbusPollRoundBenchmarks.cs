using System.Diagnostics;
using System.Net;
using BenchmarkDotNet.Attributes;
using EdgeTwin.Modbus.Client;
using EdgeTwin.Modbus.Data;
using EdgeTwin.Modbus.Planning;
using EdgeTwin.Modbus.Protocol;
using EdgeTwin.Modbus.Server;
using EdgeTwin.Modbus.Transport;

namespace EdgeTwin.Benchmarks.Modbus;

/// <summary>
/// One poll round of 100 simulated meters × 40 registers (20 float32 points each) over TCP on loopback,
/// against our own server in the same process. Two layouts: each meter its own IP (100 connections polled
/// concurrently), and 100 units behind one gateway (one connection, polled in turn).
/// CPU per register is process CPU (client and server) divided by registers read; it is printed at the end.
/// </summary>
public class ModbusPollRoundBenchmarks
{
    private const int Meters = 100;
    private const int RegistersPerMeter = 40;
    private readonly List<ModbusTcpServer> _servers = [];
    private readonly List<ModbusClient> _clients = [];
    private readonly List<ModbusClient> _gateway = [];
    private ModbusPollPlan? _plan;
    private TimeSpan _cpu;
    private long _registersRead;

    [GlobalSetup]
    public async Task Setup()
    {
        var points = Enumerable.Range(0, RegistersPerMeter / 2)
            .Select(i => new ModbusPoint(ModbusTable.HoldingRegisters, i * 2, ModbusDataType.Float32) { Order = ModbusWordOrder.CDAB })
            .ToArray();
        _plan = new ModbusPollPlan(points);
        var gatewayUnits = new ModbusServerUnits();
        for (int m = 0; m < Meters; m++)
        {
            var map = new ModbusRegisterMap().AddRange(ModbusTable.HoldingRegisters, 0, RegistersPerMeter);
            foreach (var p in points)
            {
                map.SetValue(p, 230 + m + (p.Address * 0.01));
            }

            var units = new ModbusServerUnits();
            units.Add(1, map);
            gatewayUnits.Add((byte)(m + 1), map);
            var server = new ModbusTcpServer(units, new ModbusTcpServerOptions { Endpoint = new IPEndPoint(IPAddress.Loopback, 0), MaxConnections = 4 });
            await server.StartAsync();
            _servers.Add(server);
            _clients.Add(new ModbusClient(new ModbusTcpTransport(new ModbusTcpOptions { Host = "127.0.0.1", Port = server.LocalEndPoint.Port })));
        }

        var gateway = new ModbusTcpServer(gatewayUnits);
        await gateway.StartAsync();
        _servers.Add(gateway);
        _gateway.Add(new ModbusClient(new ModbusTcpTransport(new ModbusTcpOptions { Host = "127.0.0.1", Port = gateway.LocalEndPoint.Port })));
    }

    [Benchmark(Description = "100 meters x 40 regs, 100 connections, concurrent")]
    public async Task<int> PollRound_OwnConnections()
    {
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var reads = new Task<ModbusPointReading[]>[Meters];
        for (int m = 0; m < Meters; m++)
        {
            reads[m] = _plan!.ReadAsync(_clients[m], 1, CancellationToken.None);
        }

        var results = await Task.WhenAll(reads);
        Account(cpu);
        return Check(results);
    }

    [Benchmark(Description = "100 units x 40 regs behind one gateway, in turn")]
    public async Task<int> PollRound_OneGateway()
    {
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var results = new ModbusPointReading[Meters][];
        for (int m = 0; m < Meters; m++)
        {
            results[m] = await _plan!.ReadAsync(_gateway[0], (byte)(m + 1), CancellationToken.None);
        }

        Account(cpu);
        return Check(results);
    }

    private void Account(TimeSpan cpuBefore)
    {
        _cpu += Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
        _registersRead += Meters * RegistersPerMeter;
    }

    private int Check(ModbusPointReading[][] results)
    {
        int ok = 0;
        foreach (var meter in results)
        {
            foreach (var r in meter)
            {
                if (!r.Ok)
                {
                    throw new InvalidOperationException($"poll failed: {r.Error?.Message}");
                }

                ok++;
            }
        }

        // All 20 points of all 100 meters: a plan that read fewer would report a faster round of less work.
        if (ok != Meters * _plan!.Points.Count)
        {
            throw new InvalidOperationException($"ModbusPollRound: {ok} points read, not {Meters * _plan.Points.Count} ({Meters} meters x {_plan.Points.Count})");
        }

        return ok;
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        if (_registersRead > 0)
        {
            Console.WriteLine($"// MODBUS CPU per register: {_cpu.TotalMicroseconds / _registersRead:F2} us over {_registersRead} registers (process CPU, client + in-process server)");
        }

        foreach (var c in _clients)
        {
            await c.DisposeAsync();
        }

        foreach (var c in _gateway)
        {
            await c.DisposeAsync();
        }

        foreach (var s in _servers)
        {
            await s.DisposeAsync();
        }
    }
}
