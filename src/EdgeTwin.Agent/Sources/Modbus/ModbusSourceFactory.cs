using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Sources;
using EdgeTwin.Modbus.Client;
using EdgeTwin.Modbus.Data;
using EdgeTwin.Modbus.Planning;
using EdgeTwin.Modbus.Transport;
using Microsoft.Extensions.Logging;
using LibTable = EdgeTwin.Modbus.Protocol.ModbusTable;
using LibType = EdgeTwin.Modbus.Data.ModbusDataType;
using ProfileTable = EdgeTwin.Core.Profiles.ModbusTable;
using ProfileType = EdgeTwin.Core.Profiles.ModbusDataType;

namespace EdgeTwin.Agent.Sources.Modbus;

/// <summary>
/// Builds Modbus sources from device profiles. Devices on one physical bus share one transport: one serial port
/// (<c>rtu:</c>), one serial gateway (<c>rtutcp:</c>) or one TCP endpoint with several units (<c>tcp:</c>). The
/// transport serialises a bus's requests, so the devices on one RS-485 line take turns; each device sends through its own
/// share of the transport, with its own <c>timeout</c> (and late-answer guard). A request's timeout starts when
/// it has the line, and the poll's deadline pauses while it queues (<see cref="ModbusPolledSource"/>), so a dead unit
/// costs the others one timeout per attempt and never fails their polls; the scheduler's backoff keeps it rare.
/// </summary>
public sealed class ModbusSourceFactory : ISourceFactory
{
    private readonly ModbusBusRegistry _buses;

    public ModbusSourceFactory()
        : this(new ModbusBusRegistry())
    {
    }

    /// <summary>With the agent's registry, which the set-point writers share: a serial line has one owner.</summary>
    public ModbusSourceFactory(ModbusBusRegistry buses) => _buses = buses ?? throw new ArgumentNullException(nameof(buses));

    public IReadOnlyCollection<DeviceProtocol> Protocols { get; } = [DeviceProtocol.Modbus];

    public DeviceSources Create(SourceContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var device = context.Device;
        var profile = context.Profile;
        var settings = profile.Modbus ?? ModbusProfileSettings.Default;
        var metrics = new List<ProfileMetric>();
        var points = new List<ModbusPoint>();
        foreach (var metric in profile.Metrics)
        {
            if (metric.Register is not { } register)
            {
                throw new SourceCreationException(device.Id, $"profile '{profile.Id}' metric '{metric.Name}' has no register");
            }

            if (register.Type == ProfileType.String)
            {
                // Text (serial numbers, firmware) is not a sample; the CLI reads it.
                continue;
            }

            var point = ToPoint(register, settings);
            var problems = point.Validate();
            if (problems.Count > 0)
            {
                throw new SourceCreationException(device.Id, $"profile '{profile.Id}' metric '{metric.Name}': {string.Join("; ", problems)}");
            }

            metrics.Add(metric);
            points.Add(point);
        }

        var plannerOptions = new ModbusPlannerOptions
        {
            MaxRegistersPerRead = Math.Clamp(settings.MaxRegistersPerRead, 1, 125),
            RegisterGapTolerance = Math.Max(0, settings.GapTolerance),
        };
        var plan = new ModbusPollPlan(points, plannerOptions);
        var lease = _buses.Acquire(device, context);
        return DeviceSources.Of(new ModbusPolledSource(device, metrics, plan, lease, context.LoggerFactory, settings.Addressing, context.TimeProvider));
    }

    internal static ModbusPoint ToPoint(ModbusRegister register, ModbusProfileSettings settings)
    {
        var table = register.Table switch
        {
            ProfileTable.Coil => LibTable.Coils,
            ProfileTable.Discrete => LibTable.DiscreteInputs,
            ProfileTable.Input => LibTable.InputRegisters,
            _ => LibTable.HoldingRegisters,
        };
        var type = register.Type switch
        {
            ProfileType.Bit => LibType.Bit,
            ProfileType.Int16 => LibType.Int16,
            ProfileType.UInt16 => LibType.UInt16,
            ProfileType.Int32 => LibType.Int32,
            ProfileType.UInt32 => LibType.UInt32,
            ProfileType.Int64 => LibType.Int64,
            ProfileType.UInt64 => LibType.UInt64,
            ProfileType.Float32 => LibType.Float32,
            ProfileType.Float64 => LibType.Float64,
            _ => LibType.Ascii,
        };
        var order = (register.Order ?? settings.ByteOrder) switch
        {
            WordOrder.CDAB => ModbusWordOrder.CDAB,
            WordOrder.BADC => ModbusWordOrder.BADC,
            WordOrder.DCBA => ModbusWordOrder.DCBA,
            _ => ModbusWordOrder.ABCD,
        };
        // The loader has already turned 1-based register numbers into protocol addresses.
        return new ModbusPoint(table, register.Address, type)
        {
            Order = order,
            BitOffset = !EdgeTwin.Modbus.Protocol.ModbusTableExtensions.IsBitTable(table) && register.Bit is { } bit ? bit : null,
            StringRegisters = type == LibType.Ascii ? Math.Max(1, ((register.Length ?? 2) + 1) / 2) : 0,
        };
    }
}

/// <summary>
/// One shared transport per physical bus, reference-counted by its users: the pollers of the devices on it and the
/// set-point writers of cooling units on a serial line (one port, one owner; the transport serialises their requests).
/// Each lease has its own client over a <see cref="ModbusTransportShare"/> with its device's timeout: the options the
/// transport was opened with (the first device's) are not the line's timeout for every unit on it.
/// </summary>
public sealed class ModbusBusRegistry
{
    private readonly object _gate = new();
    private readonly Dictionary<string, Bus> _buses = new(StringComparer.Ordinal);

    internal BusLease Acquire(DeviceConfig device, SourceContext context) => Acquire(device, context.LoggerFactory, context.TimeProvider);

    /// <summary>
    /// A share of <paramref name="device"/>'s bus whose requests run with <paramref name="requestTimeout"/> (a set-point
    /// writer's write timeout), by default the device's own <c>timeout</c>.
    /// </summary>
    internal BusLease Acquire(DeviceConfig device, ILoggerFactory loggers, TimeProvider time, TimeSpan? requestTimeout = null)
    {
        var address = device.Address;
        // The bus as the device's config names it, for messages; the key finds the one transport per physical port.
        string name = address.Scheme == AddressScheme.Rtu ? $"serial://{address.Path}" : "";
        string key = address.Scheme switch
        {
            AddressScheme.Tcp => "tcp://" + EndpointText.Of(address.Host!, address.Port!.Value),
            AddressScheme.RtuTcp => "rtu+tcp://" + EndpointText.Of(address.Host!, address.Port!.Value),
            AddressScheme.Rtu => $"serial://{SerialPortKey(address.Path!)}",
            _ => throw new SourceCreationException(device.Id, $"Modbus devices need a tcp:, rtu: or rtutcp: address, not {address.Scheme.ToString().ToLowerInvariant()}:"),
        };
        var timeout = requestTimeout is { } given && given > TimeSpan.Zero ? given
            : device.Timeout > TimeSpan.Zero ? device.Timeout : DeviceConfig.DefaultTimeout;
        lock (_gate)
        {
            if (_buses.TryGetValue(key, out var bus))
            {
                // A backstop: the config loader already rejects this at the device's serial key. No serial settings
                // means the defaults, as the transport would open the port with them.
                var mine = device.Serial ?? new SerialSettings();
                if (address.Scheme == AddressScheme.Rtu && mine != (bus.Serial ?? new SerialSettings()))
                {
                    throw new SourceCreationException(device.Id, $"serial settings {mine} differ from device '{bus.FirstDevice}' on {address.Path} ({bus.Serial ?? new SerialSettings()}); devices on one serial line must use the same settings");
                }

                bus.Users++;
                return new BusLease(this, key, name.Length > 0 ? name : key, Share(bus.Transport, timeout, device.Interval));
            }

            var logger = loggers.CreateLogger("EdgeTwin.Modbus." + key);
            IModbusSharedTransport transport = address.Scheme switch
            {
                AddressScheme.Tcp => new ModbusTcpTransport(new ModbusTcpOptions { Host = address.Host!, Port = address.Port ?? 502, RequestTimeout = timeout }, logger, time),
                AddressScheme.RtuTcp => new ModbusRtuTransport(new TcpRtuChannel(address.Host!, address.Port ?? 502, timeout), new ModbusRtuOptions { RequestTimeout = timeout }, logger, time),
                _ => new ModbusRtuTransport(new SerialRtuChannel(ToSerial(address.Path!, device.Serial ?? new SerialSettings())), new ModbusRtuOptions { RequestTimeout = timeout }, logger, time),
            };
            bus = new Bus(transport, device.Serial, device.Id) { Users = 1 };
            _buses[key] = bus;
            return new BusLease(this, key, name.Length > 0 ? name : key, Share(transport, timeout, device.Interval));
        }
    }

    /// <summary>
    /// The serial port a path names, links resolved: <c>/dev/serial/by-id/usb-FTDI_…-port0</c> beside
    /// <c>/dev/ttyUSB0</c> for the same adapter opened the port twice, and the two transports' requests and answers
    /// interleaved on one line (or, without root, the second open failed as "in use"). A path that does not exist (yet)
    /// is its own key; the transport still opens the path as written, so a by-id path keeps following the adapter.
    /// </summary>
    internal static string SerialPortKey(string path)
    {
        try
        {
            return new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(path);
        }
        catch (IOException)
        {
            return path;
        }
        catch (UnauthorizedAccessException)
        {
            return path;
        }
    }

    /// <summary>
    /// A device's client on a shared bus: its requests use its own timeout; closing it leaves the bus open. A failed
    /// connect's wait stops failing its polls after one interval: the scheduler is the backoff that spaces the polls of a
    /// down device (up to 5 min). The transport's own wait (up to 30 s) grew with every unit's failed connect behind one
    /// gateway and failed, untried, the polls of a unit that was back, each counted as a failure that doubled its backoff.
    /// </summary>
    private static ModbusClient Share(IModbusSharedTransport transport, TimeSpan timeout, TimeSpan interval) =>
        new(new ModbusTransportShare(transport, new ModbusRequestSettings(timeout) { ReconnectWaitMax = interval > TimeSpan.Zero ? interval : null }), ownsTransport: false);

    private static SerialLineOptions ToSerial(string path, SerialSettings s) => new()
    {
        PortName = path,
        BaudRate = s.Baud,
        DataBits = s.DataBits,
        Parity = s.Parity switch
        {
            SerialParity.None => System.IO.Ports.Parity.None,
            SerialParity.Odd => System.IO.Ports.Parity.Odd,
            _ => System.IO.Ports.Parity.Even,
        },
        StopBits = s.StopBits == 2 ? System.IO.Ports.StopBits.Two : System.IO.Ports.StopBits.One,
    };

    internal async ValueTask ReleaseAsync(string key)
    {
        IModbusTransport? last = null;
        lock (_gate)
        {
            if (_buses.TryGetValue(key, out var bus) && --bus.Users == 0)
            {
                _buses.Remove(key);
                last = bus.Transport;
            }
        }

        if (last is not null)
        {
            await last.DisposeAsync().ConfigureAwait(false);
        }
    }

    private sealed class Bus(IModbusSharedTransport transport, SerialSettings? serial, string firstDevice)
    {
        public string FirstDevice { get; } = firstDevice;

        /// <summary>The bus's one transport, closed with the last lease; the devices send through their shares of it.</summary>
        public IModbusSharedTransport Transport { get; } = transport;

        public SerialSettings? Serial { get; } = serial;

        public int Users { get; set; }
    }
}

/// <summary>A source's share of a bus, with a client that sends with its device's timeout; disposing the last lease closes the bus.</summary>
internal sealed class BusLease(ModbusBusRegistry registry, string key, string name, ModbusClient client) : IAsyncDisposable
{
    private int _released;

    public ModbusClient Client { get; } = client;

    /// <summary>The bus as the device's config names it (<c>serial:///dev/serial/by-id/…</c>), for messages.</summary>
    public string Bus { get; } = name;

    public ValueTask DisposeAsync() =>
        Interlocked.Exchange(ref _released, 1) == 0 ? registry.ReleaseAsync(key) : ValueTask.CompletedTask;
}
