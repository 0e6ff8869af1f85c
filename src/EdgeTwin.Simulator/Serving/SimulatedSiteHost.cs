using System.Net;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Modbus.Server;
using EdgeTwin.Simulator.Devices;
using EdgeTwin.Simulator.Faults;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Snmp;
using EdgeTwin.Snmp.Responder;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using LibTable = EdgeTwin.Modbus.Protocol.ModbusTable;

namespace EdgeTwin.Simulator.Serving;

/// <summary>Options for serving a simulated site.</summary>
public sealed record SiteHostOptions
{
    /// <summary>Address every device listens on (a free port each, picked by the OS).</summary>
    public IPAddress BindAddress { get; init; } = IPAddress.Loopback;

    public string Community { get; init; } = "public";

    /// <summary>SNMP community that may SET the devices' writable set points (a CRAC's supply set point); null: none.</summary>
    public string? WriteCommunity { get; init; } = "private";

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Simulated seconds per wall-clock second.</summary>
    public double TimeScale { get; init; } = 1;

    /// <summary>How often the physics advances and Modbus registers are refreshed.</summary>
    public TimeSpan Tick { get; init; } = TimeSpan.FromMilliseconds(250);

    public SimProfiles Profiles { get; init; } = new();

    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;
}

/// <summary>One served device: what it simulates and where it answers.</summary>
public sealed record ServedDevice(SimDeviceBinding Binding, DeviceProfile Profile, DeviceAddress Address, IReadOnlyList<string> Unsupported);

/// <summary>
/// Serves a <see cref="SimulatedSite"/>: every SNMP device through the SNMP library's responder (one UDP port
/// each), every Modbus device through the Modbus library's TCP server (one TCP port each, unit 1), on free
/// ports of the bind address. Keeps the physics moving with a <see cref="SiteRunner"/>, copies the values into the
/// Modbus register maps each tick, and applies the site's network faults (dark, slow, garble) to the
/// responders and server units.
/// </summary>
public sealed partial class SimulatedSiteHost : IAsyncDisposable
{
    private readonly List<SnmpServed> _snmp = [];
    private readonly List<ModbusServed> _modbus = [];
    private readonly SimRandom _garbleRandom;
    private readonly ILogger _logger;
    private readonly TimeSpan _tick;
    private readonly TimeProvider _time;

    private SimulatedSiteHost(SimulatedSite site, SiteHostOptions options)
    {
        Site = site;
        Runner = new SiteRunner(site, options.TimeProvider, options.TimeScale, options.Tick);
        _garbleRandom = new SimRandom(site.Spec.Seed ^ 0x5eed);
        _logger = options.LoggerFactory.CreateLogger<SimulatedSiteHost>();
        _tick = options.Tick;
        _time = options.TimeProvider;
    }

    public SimulatedSite Site { get; }

    /// <summary>Writes clients made to the served devices (SNMP SETs answered, Modbus coil/register writes), accepted or not.</summary>
    public long Writes => Interlocked.Read(ref _writes);

    private long _writes;

    public SiteRunner Runner { get; }

    public IReadOnlyList<ServedDevice> Devices => [.. _snmp.Select(s => s.Device), .. _modbus.Select(m => m.Device)];

    /// <summary>Builds every device of the site's plan and starts serving it.</summary>
    /// <param name="profiles">Profiles by id (at least those the plan names).</param>
    public static async Task<SimulatedSiteHost> StartAsync(SimulatedSite site, IReadOnlyDictionary<string, DeviceProfile> profiles, SiteHostOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(site);
        ArgumentNullException.ThrowIfNull(profiles);
        options ??= new SiteHostOptions();
        // A profile of the wrong kind would serve nothing but "unsupported" in that slot: refuse it before any port opens.
        foreach (var (slot, id) in ChosenSlots(options.Profiles))
        {
            if (profiles.TryGetValue(id, out var chosen))
            {
                SimProfileChoices.Check(slot, chosen, () => [.. profiles.Values.Where(p => SimProfileChoices.Fits(slot, p)).Select(p => p.Id).Order(StringComparer.Ordinal)]);
            }
        }

        var host = new SimulatedSiteHost(site, options);
        try
        {
            foreach (var binding in SimDevicePlan.For(site.Spec, options.Profiles))
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (!profiles.TryGetValue(binding.Profile, out var profile))
                {
                    throw new InvalidOperationException($"simulated device '{binding.DeviceId}': profile '{binding.Profile}' is not loaded");
                }

                if (profile.Protocol == DeviceProtocol.Snmp)
                {
                    host.StartSnmp(binding, profile, options);
                }
                else if (profile.Protocol == DeviceProtocol.Modbus)
                {
                    await host.StartModbusAsync(binding, profile, options, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    throw new InvalidOperationException($"simulated device '{binding.DeviceId}': profile '{profile.Id}' is {profile.Protocol}, which the simulator does not serve");
                }
            }

            host.Refresh();
            LogStarted(host._logger, host._snmp.Count, host._modbus.Count, options.BindAddress);
            return host;
        }
        catch
        {
            await host.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Loads the profiles the plan needs from a directory.</summary>
    /// <exception cref="SimProfileChoiceException">A UPS, meter or rack probe profile is not in the directory or not of that kind.</exception>
    public static IReadOnlyDictionary<string, DeviceProfile> LoadProfiles(string directory, SimProfiles? profiles = null)
    {
        profiles ??= new SimProfiles();
        if (profiles.Ups.Count == 0)
        {
            // Here the directory is known: the message lists the UPS profiles it holds (ChosenSlots cannot).
            throw new SimProfileChoiceException(SimProfileSlot.Ups, "", "is empty: name at least one UPS profile", SimProfileChoices.Known(SimProfileSlot.Ups, directory));
        }

        var result = new Dictionary<string, DeviceProfile>(StringComparer.Ordinal);
        foreach (var (slot, id) in ChosenSlots(profiles))
        {
            if (!result.ContainsKey(id))
            {
                result[id] = SimProfileChoices.Load(slot, id, directory);
            }
        }

        foreach (var id in new[] { profiles.Pdu, profiles.CoolingUnit, profiles.Drive, profiles.LineStation }.Distinct(StringComparer.Ordinal))
        {
            var path = Path.Combine(directory, id + ".yaml");
            if (!File.Exists(path))
            {
                throw new FileNotFoundException($"device profile '{id}' not found in {directory}", path);
            }

            result[id] = DeviceProfileLoader.LoadFileOrThrow(path);
        }

        return result;
    }

    /// <summary>The profiles the user picks (UPS units, main meter, rack probes), each with its slot.</summary>
    private static IEnumerable<(SimProfileSlot Slot, string Id)> ChosenSlots(SimProfiles profiles)
    {
        if (profiles.Ups.Count == 0)
        {
            throw new SimProfileChoiceException(SimProfileSlot.Ups, "", "is empty: name at least one UPS profile", []);
        }

        foreach (var id in profiles.Ups)
        {
            yield return (SimProfileSlot.Ups, id);
        }

        if (profiles.Meter is { } meter)
        {
            yield return (SimProfileSlot.Meter, meter);
        }

        if (profiles.RoomMeter is { } roomMeter)
        {
            yield return (SimProfileSlot.Meter, roomMeter);
        }

        if (profiles.RackProbe is { } probe)
        {
            yield return (SimProfileSlot.RackProbe, probe);
        }
    }

    /// <summary>The site config an agent uses to poll this site (devices at their served addresses).</summary>
    public SiteConfig BuildConfig(TimeSpan interval, string? profilesDir = null, TimeSpan? timeout = null, string community = "public") =>
        SimSiteConfig.Build(Site.Spec, Devices.Select(d => (d.Binding, d.Address)), interval, community, profilesDir, timeout);

    /// <summary>Advances the physics and refreshes what the devices serve until cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            Refresh();
            try
            {
                await Task.Delay(_tick, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>One tick: physics to the present, Modbus maps, faults.</summary>
    public void Refresh()
    {
        Runner.Sync();
        foreach (var s in _snmp)
        {
            var fault = Site.DeviceFault(s.Device.Binding.DeviceId);
            s.Responder.Mute = fault.Dark;
            s.Responder.ResponseDelay = fault.Delay;
            s.Provider.GarbleProbability = fault.GarbleProbability;
        }

        foreach (var m in _modbus)
        {
            var fault = Site.DeviceFault(m.Device.Binding.DeviceId);
            m.Unit.Silent = fault.Dark;
            m.Unit.ResponseDelay = fault.Delay;
            // The server garbles all or nothing; switching it per tick gives the asked-for share of answers.
            m.Unit.Garble = fault.GarbleProbability > 0 && _garbleRandom.NextDouble() < fault.GarbleProbability;
            m.Refresh();
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var s in _snmp)
        {
            await s.Responder.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var m in _modbus)
        {
            await m.Server.DisposeAsync().ConfigureAwait(false);
        }

        _snmp.Clear();
        _modbus.Clear();
    }

    private void StartSnmp(SimDeviceBinding binding, DeviceProfile profile, SiteHostOptions options)
    {
        var image = SnmpDeviceImage.Build(Site, binding, profile);
        var provider = new FaultyMibProvider(image, new SimRandom(_garbleRandom.NextSeed()), () => Interlocked.Increment(ref _writes));
        var responder = new SnmpResponder(
            provider,
            new SnmpResponderOptions
            {
                EndPoint = new IPEndPoint(options.BindAddress, 0),
                Communities = [options.Community],
                WriteCommunities = options.WriteCommunity is { } w ? [w] : [],
            },
            options.LoggerFactory.CreateLogger<SnmpResponder>());
        var ep = responder.LocalEndPoint;
        _snmp.Add(new SnmpServed(new ServedDevice(binding, profile, DeviceAddress.Udp(ep.Address.ToString(), ep.Port), image.Unsupported), responder, provider));
    }

    private async Task StartModbusAsync(SimDeviceBinding binding, DeviceProfile profile, SiteHostOptions options, CancellationToken cancellationToken)
    {
        var image = ModbusDeviceImage.Build(Site, binding, profile);
        var map = new ModbusRegisterMap();
        foreach (var (table, start, count) in image.Ranges())
        {
            map.AddRange(table, start, count);
        }

        var units = new ModbusServerUnits();
        var unit = units.Add(1, map, new Dictionary<byte, string>
        {
            [0] = profile.Vendor,
            [1] = profile.Model,
            [2] = "EdgeTwin simulator",
        });
        // A client's write of a writable set point reaches the simulated unit; the next refresh serves it back.
        map.Written += (_, e) =>
        {
            Interlocked.Increment(ref _writes);
            image.ApplyWrite(e.Table, e.Address, e.Count, map);
        };
        var server = new ModbusTcpServer(units, new ModbusTcpServerOptions { Endpoint = new IPEndPoint(options.BindAddress, 0) }, options.LoggerFactory.CreateLogger<ModbusTcpServer>());
        await server.StartAsync(cancellationToken).ConfigureAwait(false);
        var ep = server.LocalEndPoint;
        _modbus.Add(new ModbusServed(new ServedDevice(binding, profile, DeviceAddress.Tcp(ep.Address.ToString(), ep.Port), image.Unsupported), server, unit, image));
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Simulated site serving {Snmp} SNMP and {Modbus} Modbus devices on {Address}")]
    private static partial void LogStarted(ILogger logger, int snmp, int modbus, IPAddress address);

    private sealed record SnmpServed(ServedDevice Device, SnmpResponder Responder, FaultyMibProvider Provider);

    private sealed class ModbusServed(ServedDevice device, ModbusTcpServer server, ModbusServerUnit unit, ModbusDeviceImage image)
    {
        private readonly IReadOnlyList<(LibTable Table, int Start, int Count)> _ranges = image.Ranges();

        public ServedDevice Device { get; } = device;

        public ModbusTcpServer Server { get; } = server;

        public ModbusServerUnit Unit { get; } = unit;

        /// <summary>
        /// Copies the simulated values into the unit's map in one atomic update, read inside it: a client's write that
        /// lands in the map between a snapshot taken outside and its copy was overwritten with the value from before
        /// the write, and the writer's read-back saw its write undone (CI: "reads supply_setpoint = 20.7 back after
        /// writing 20.2").
        /// </summary>
        public void Refresh() => Unit.Map.Update(map =>
        {
            var buffers = new List<(LibTable Table, int Start, ushort[] Registers)>(_ranges.Count);
            foreach (var (table, start, count) in _ranges)
            {
                if (table is LibTable.Coils or LibTable.DiscreteInputs)
                {
                    var bits = new bool[count];
                    if (image.TryReadBits(table, start, bits))
                    {
                        buffers.Add((table, start, [.. bits.Select(b => b ? (ushort)1 : (ushort)0)]));
                    }
                }
                else
                {
                    var registers = new ushort[count];
                    if (image.TryReadRegisters(table, start, registers))
                    {
                        buffers.Add((table, start, registers));
                    }
                }
            }

            foreach (var (table, start, registers) in buffers)
            {
                map.SetRegisters(table, start, registers);
            }
        });
    }

    /// <summary>
    /// The MIB a responder serves, with the device's garble fault: a garbled answer carries values of the
    /// wrong type with random bytes (the SNMP responder has no wire-level corruption hook).
    /// </summary>
    private sealed class FaultyMibProvider(SnmpDeviceImage image, SimRandom random, Action onWrite) : ISnmpWritableMibProvider
    {
        public SnmpErrorStatus Set(Oid oid, SnmpValue value)
        {
            onWrite();
            return image.TrySet(oid, value);
        }

        private readonly Lock _gate = new();

        public double GarbleProbability { get; set; }

        public SnmpValue Get(Oid oid)
        {
            if (!image.TryGet(oid, out var value))
            {
                return SnmpValue.NoSuchObject;
            }

            return Garbled() ?? value;
        }

        public bool TryGetNext(Oid oid, out VarBind next)
        {
            if (!image.TryGetNext(oid, out next))
            {
                return false;
            }

            if (Garbled() is { } garbage)
            {
                next = new VarBind(next.Oid, garbage);
            }

            return true;
        }

        private SnmpValue? Garbled()
        {
            var p = GarbleProbability;
            if (p <= 0)
            {
                return null;
            }

            lock (_gate)
            {
                if (random.NextDouble() >= p)
                {
                    return null;
                }

                var bytes = new byte[4];
                for (var i = 0; i < bytes.Length; i++)
                {
                    bytes[i] = (byte)random.Next(0, 256);
                }

                return SnmpValue.OctetString(bytes);
            }
        }
    }
}
