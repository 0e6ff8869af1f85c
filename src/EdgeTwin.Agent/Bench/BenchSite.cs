using System.Net;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Modbus.Server;
using EdgeTwin.Simulator.Devices;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Snmp;
using EdgeTwin.Snmp.Responder;
using CoreTable = EdgeTwin.Core.Profiles.ModbusTable;
using LibTable = EdgeTwin.Modbus.Protocol.ModbusTable;

namespace EdgeTwin.Agent.Bench;

/// <summary>
/// A simulated site served on loopback for the load benchmark: one SNMP responder per PDU/UPS/cooling unit and one
/// Modbus TCP server per drive, each on its own OS-assigned port, plus the <see cref="SiteConfig"/> that polls them.
/// The physics is not stepped while serving (values are those of the site after warm-up), so the process CPU
/// measured is the agent's plus the cost of answering its requests, not the thermal model's.
/// </summary>
internal sealed class BenchSite : IAsyncDisposable
{
    private readonly List<SnmpResponder> _responders = [];
    private readonly List<ModbusTcpServer> _servers = [];
    private readonly List<ModbusMirror> _mirrors = [];
    private readonly CancellationTokenSource _stop = new();
    private Task _refresh = Task.CompletedTask;

    private BenchSite(SiteConfig config) => Config = config;

    public SiteConfig Config { get; private set; }

    public int SnmpDevices => _responders.Count;

    public int ModbusDevices => _servers.Count;

    public static async Task<BenchSite> StartAsync(int snmpDevices, int modbusDevices, TimeSpan interval, string profilesDir, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(snmpDevices);
        ArgumentOutOfRangeException.ThrowIfNegative(modbusDevices);
        // Two PDUs per rack; the two UPS units and cooling units make up the rest of the SNMP devices.
        var racks = Math.Max(1, (snmpDevices + 1) / 2);
        var spec = SiteGenerator.Generate(new SiteGenerationOptions { Racks = racks, Machines = modbusDevices, Seed = 7 }) with
        {
            WarmUp = TimeSpan.FromMinutes(1),
        };
        var site = new SimulatedSite(spec);
        var plan = SimDevicePlan.For(spec, new SimProfiles { Meter = null });
        var snmp = plan.Where(d => d.Kind != SimEntityKind.Machine).Take(snmpDevices).ToList();
        var modbus = plan.Where(d => d.Kind == SimEntityKind.Machine).Take(modbusDevices).ToList();

        var catalog = new ProfileCatalog([profilesDir]);
        var profiles = new Dictionary<string, DeviceProfile>(StringComparer.Ordinal);
        DeviceProfile Profile(string id)
        {
            if (!profiles.TryGetValue(id, out var p))
            {
                var diagnostics = new ConfigDiagnostics();
                p = catalog.Get(id, diagnostics, out var found)
                    ?? throw new InvalidOperationException($"bench: device profile '{id}' not usable in {profilesDir} (found: {found}): {string.Join("; ", diagnostics.Items)}");
                profiles[id] = p;
            }

            return p;
        }

        var bench = new BenchSite(null!);
        var endpoints = new List<(SimDeviceBinding, DeviceAddress)>();
        try
        {
            foreach (var device in snmp)
            {
                var image = SnmpDeviceImage.Build(site, device, Profile(device.Profile));
                var responder = new SnmpResponder(new ImageMib(image), new SnmpResponderOptions { EndPoint = new IPEndPoint(IPAddress.Loopback, 0), Communities = ["public"] });
                bench._responders.Add(responder);
                endpoints.Add((device, DeviceAddress.Udp("127.0.0.1", responder.LocalEndPoint.Port)));
            }

            foreach (var device in modbus)
            {
                var profile = Profile(device.Profile);
                var mirror = ModbusMirror.Create(ModbusDeviceImage.Build(site, device, profile), profile);
                var units = new ModbusServerUnits();
                units.Add(1, mirror.Map);
                var server = new ModbusTcpServer(units, new ModbusTcpServerOptions { Endpoint = new IPEndPoint(IPAddress.Loopback, 0) });
                bench._servers.Add(server);
                await server.StartAsync(cancellationToken).ConfigureAwait(false);
                bench._mirrors.Add(mirror);
                endpoints.Add((device, DeviceAddress.Tcp("127.0.0.1", server.LocalEndPoint.Port)));
            }
        }
        catch
        {
            await bench.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        bench.Config = SimSiteConfig.Build(spec, endpoints, interval, profilesDir: profilesDir) with { Profiles = profiles };
        var refreshEvery = TimeSpan.FromTicks(Math.Max(TimeSpan.FromMilliseconds(200).Ticks, interval.Ticks / 2));
        bench._refresh = bench.RefreshAsync(refreshEvery, bench._stop.Token);
        return bench;
    }

    // Modbus servers serve stored registers, so copy the image into them (the site does not move, but a real
    // copy keeps the served bytes exactly what the image encodes).
    private async Task RefreshAsync(TimeSpan every, CancellationToken cancellationToken)
    {
        foreach (var m in _mirrors)
        {
            m.Refresh();
        }

        using var timer = new PeriodicTimer(every);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                foreach (var m in _mirrors)
                {
                    m.Refresh();
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _refresh.ConfigureAwait(false);
        foreach (var r in _responders)
        {
            await r.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var s in _servers)
        {
            await s.DisposeAsync().ConfigureAwait(false);
        }

        _stop.Dispose();
    }

    private sealed class ImageMib(SnmpDeviceImage image) : ISnmpMibProvider
    {
        public SnmpValue Get(Oid oid) => image.TryGet(oid, out var value) ? value : SnmpValue.NoSuchObject;

        public bool TryGetNext(Oid oid, out VarBind next) => image.TryGetNext(oid, out next);
    }

    private sealed class ModbusMirror
    {
        private readonly ModbusDeviceImage _image;
        private readonly List<(LibTable Table, int Start, int Count)> _spans;

        private ModbusMirror(ModbusDeviceImage image, List<(LibTable, int, int)> spans, ModbusRegisterMap map)
        {
            _image = image;
            _spans = spans;
            Map = map;
        }

        public ModbusRegisterMap Map { get; }

        public static ModbusMirror Create(ModbusDeviceImage image, DeviceProfile profile)
        {
            // One span per table from the first to the last mapped register, as the image serves it.
            var spans = profile.AllMetrics
                .Where(m => m.Register is not null)
                .Select(m => m.Register!)
                .GroupBy(r => r.Table switch
                {
                    CoreTable.Coil => LibTable.Coils,
                    CoreTable.Discrete => LibTable.DiscreteInputs,
                    CoreTable.Input => LibTable.InputRegisters,
                    _ => LibTable.HoldingRegisters,
                })
                .Select(g => (g.Key, g.Min(r => r.Address), g.Max(r => r.Address + r.Count) - g.Min(r => r.Address)))
                .ToList();
            var map = new ModbusRegisterMap();
            foreach (var (table, start, count) in spans)
            {
                map.AddRange(table, start, count);
            }

            return new ModbusMirror(image, spans, map);
        }

        public void Refresh()
        {
            foreach (var (table, start, count) in _spans)
            {
                if (table is LibTable.Coils or LibTable.DiscreteInputs)
                {
                    var bits = new bool[count];
                    if (_image.TryReadBits(table, start, bits))
                    {
                        for (var i = 0; i < count; i++)
                        {
                            Map.SetBit(table, start + i, bits[i]);
                        }
                    }
                }
                else
                {
                    var registers = new ushort[count];
                    if (_image.TryReadRegisters(table, start, registers))
                    {
                        Map.SetRegisters(table, start, registers);
                    }
                }
            }
        }
    }
}
