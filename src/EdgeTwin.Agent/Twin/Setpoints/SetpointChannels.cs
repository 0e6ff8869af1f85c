using System.Diagnostics.Metrics;
using System.Net;
using EdgeTwin.Agent.Sources.Modbus;
using EdgeTwin.Agent.Sources.Snmp;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Modbus.Client;
using EdgeTwin.Modbus.Protocol;
using EdgeTwin.Modbus.Transport;
using EdgeTwin.Snmp;
using EdgeTwin.Snmp.Client;
using EdgeTwin.Snmp.Transport;
using Microsoft.Extensions.Logging;
using LibTable = EdgeTwin.Modbus.Protocol.ModbusTable;
using LibType = EdgeTwin.Modbus.Data.ModbusDataType;
using ModbusPoint = EdgeTwin.Modbus.Data.ModbusPoint;

namespace EdgeTwin.Agent.Twin.Setpoints;

/// <summary>Which set point of a cooling unit a channel writes.</summary>
public enum SetpointKind
{
    /// <summary>Supply air temperature set point (°C).</summary>
    Supply,

    /// <summary>Fan speed set point (%).</summary>
    Fan,
}

/// <summary>A write, its read-back or the device failed; the message names unit, device and metric.</summary>
public sealed class SetpointWriteException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Counters of the set-point writers (meter <c>EdgeTwin.Twin.Setpoints</c>).</summary>
public sealed class SetpointMetrics : IDisposable
{
    public const string MeterName = "EdgeTwin.Twin.Setpoints";

    private readonly Meter _meter;

    public SetpointMetrics(IMeterFactory? factory = null)
    {
        _meter = factory?.Create(MeterName) ?? new Meter(MeterName);
        Writes = _meter.CreateCounter<long>("edgetwin.twin.setpoints.writes", "{write}", "Set-point writes verified by read-back.");
        Failures = _meter.CreateCounter<long>("edgetwin.twin.setpoints.write_failures", "{write}", "Set-point writes or read-backs that failed or did not match.");
        Rollbacks = _meter.CreateCounter<long>("edgetwin.twin.setpoints.rollbacks", "{rollback}", "Rollbacks of every unit to its last known-good set points.");
        Recommendations = _meter.CreateCounter<long>("edgetwin.twin.setpoints.recommendations", "{event}", "Cooling recommendations published.");
    }

    public Counter<long> Writes { get; }

    public Counter<long> Failures { get; }

    public Counter<long> Rollbacks { get; }

    public Counter<long> Recommendations { get; }

    public void Dispose() => _meter.Dispose();
}

/// <summary>
/// One writable set point of one cooling unit on one device. Every call has its own timeout (linked to the caller's
/// token); a write is always followed by a read-back that must match within the register's resolution, so a device that
/// accepts a value and keeps another is caught. Errors become <see cref="SetpointWriteException"/> in one place.
/// </summary>
public abstract partial class SetpointChannel : IAsyncDisposable
{
    private readonly ILogger _logger;
    private readonly SetpointMetrics _metrics;

    protected SetpointChannel(string unit, DeviceConfig device, ProfileMetric metric, SetpointKind kind, TimeSpan timeout, SetpointMetrics metrics, ILogger logger)
    {
        Unit = unit;
        Device = device;
        Metric = metric;
        Kind = kind;
        Timeout = timeout;
        _metrics = metrics;
        _logger = logger;
    }

    public string Unit { get; }

    public DeviceConfig Device { get; }

    public ProfileMetric Metric { get; }

    public SetpointKind Kind { get; }

    public TimeSpan Timeout { get; }

    /// <summary>Smallest step the device stores (one raw unit × scale for integer encodings).</summary>
    protected virtual double Resolution => Math.Abs(Metric.Scale);

    /// <summary>The set point as the device holds it now (engineering unit).</summary>
    public async Task<double> ReadAsync(CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(Timeout);
        try
        {
            return await ReadValueAsync(cts.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (Translatable(ex, cancellationToken))
        {
            _metrics.Failures.Add(1, Tag());
            throw new SetpointWriteException($"cooling unit {Unit}: reading {Metric.Name} from device {Device.Id} failed: {Describe(ex)}", ex);
        }
    }

    /// <summary>Writes <paramref name="value"/> and returns the read-back, which matched it.</summary>
    public async Task<double> WriteAsync(double value, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(Timeout);
        double readBack;
        try
        {
            await WriteValueAsync(value, cts.Token).ConfigureAwait(false);
            readBack = await ReadValueAsync(cts.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (Translatable(ex, cancellationToken))
        {
            _metrics.Failures.Add(1, Tag());
            LogWriteFailed(_logger, Unit, Metric.Name, Device.Id, value, Describe(ex));
            throw new SetpointWriteException($"cooling unit {Unit}: writing {Metric.Name} = {value:0.##} to device {Device.Id} failed: {Describe(ex)}", ex);
        }

        if (!(Math.Abs(readBack - value) <= (Resolution / 2) + 1e-6))
        {
            _metrics.Failures.Add(1, Tag());
            LogReadBackMismatch(_logger, Unit, Metric.Name, Device.Id, value, readBack);
            throw new SetpointWriteException($"cooling unit {Unit}: device {Device.Id} reads {Metric.Name} = {readBack:0.##} back after writing {value:0.##}");
        }

        _metrics.Writes.Add(1, Tag());
        LogWritten(_logger, Unit, Metric.Name, Device.Id, value);
        return readBack;
    }

    public abstract ValueTask DisposeAsync();

    protected abstract Task WriteValueAsync(double value, CancellationToken cancellationToken);

    protected abstract Task<double> ReadValueAsync(CancellationToken cancellationToken);

    private KeyValuePair<string, object?> Tag() => new("unit", Unit);

    // Timeouts of our own token become write failures; the caller's cancellation passes through.
    private static bool Translatable(Exception ex, CancellationToken caller) =>
        ex is not SetpointWriteException && (ex is not OperationCanceledException || !caller.IsCancellationRequested)
        && ex is SnmpException or ModbusProtocolException or ModbusDeviceException or ModbusCommunicationException or OperationCanceledException
            or IOException or System.Net.Sockets.SocketException or InvalidOperationException or FormatException;

    private static string Describe(Exception ex) => ex is OperationCanceledException ? "timed out" : ex.Message;

    [LoggerMessage(Level = LogLevel.Information, Message = "Set point written: {Unit} {Metric} = {Value} on {Device} (read back)")]
    private static partial void LogWritten(ILogger logger, string unit, string metric, string device, double value);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Set-point write failed: {Unit} {Metric} = {Value} on {Device}: {Reason}")]
    private static partial void LogWriteFailed(ILogger logger, string unit, string metric, string device, double value, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Set-point read-back mismatch: {Unit} {Metric} written {Value}, device {Device} reads {ReadBack}")]
    private static partial void LogReadBackMismatch(ILogger logger, string unit, string metric, string device, double value, double readBack);
}

/// <summary>
/// SNMP: SET of an INTEGER (raw = (value − offset) / scale, rounded) at the metric's OID, GET for the read-back. For a table
/// column the row is the one whose label names the supply air (found once by walking the table's label column), or the
/// only row.
/// </summary>
internal sealed class SnmpSetpointChannel : SetpointChannel
{
    private readonly SnmpClient _client;
    private readonly SnmpTargetTemplate _template;
    private readonly ProfileTable? _table;
    private SnmpTarget? _target;
    private Oid? _oid;

    public SnmpSetpointChannel(string unit, DeviceConfig device, ProfileMetric metric, ProfileTable? table, SetpointKind kind, SnmpTargetTemplate template, SnmpClient client, TimeSpan timeout, SetpointMetrics metrics, ILogger logger)
        : base(unit, device, metric, kind, timeout, metrics, logger)
    {
        _client = client;
        _template = template;
        _table = table;
    }

    protected override async Task WriteValueAsync(double value, CancellationToken cancellationToken)
    {
        var (target, oid) = await ResolveAsync(cancellationToken).ConfigureAwait(false);
        var raw = Math.Round(Metric.ToRaw(value));
        if (raw is < int.MinValue or > int.MaxValue)
        {
            throw new FormatException($"{value} does not fit the INTEGER of {Metric.Name}");
        }

        await _client.SetAsync(target, [new VarBind(oid, SnmpValue.Integer((int)raw))], cancellationToken).ConfigureAwait(false);
    }

    protected override async Task<double> ReadValueAsync(CancellationToken cancellationToken)
    {
        var (target, oid) = await ResolveAsync(cancellationToken).ConfigureAwait(false);
        var vbs = await _client.GetAsync(target, [oid], cancellationToken).ConfigureAwait(false);
        return vbs.Count == 1 && vbs[0].Value.TryGetNumber(out var raw)
            ? Metric.Convert(raw)
            : throw new FormatException($"{oid} answered {(vbs.Count == 1 ? vbs[0].Value.ToString() : "nothing")}, not a number");
    }

    public override ValueTask DisposeAsync() => ValueTask.CompletedTask; // the client is shared

    private async Task<(SnmpTarget Target, Oid Oid)> ResolveAsync(CancellationToken ct)
    {
        if (_target is { } t && _oid is { } o)
        {
            return (t, o);
        }

        var a = Device.Address;
        var ep = a.TryGetIPEndPoint() ?? await SnmpEndpoint.ResolveAsync(
            a.Scheme == AddressScheme.Udp6 ? $"udp6:[{a.Host}]:{a.Port}" : $"udp:{a.Host}:{a.Port}", a.Port ?? DeviceAddress.SnmpPort, ct).ConfigureAwait(false);
        var target = _template.For(ep);
        var column = Oid.Parse(Metric.Oid!.TrimStart('.'));
        if (_table is null)
        {
            (_target, _oid) = (target, column);
            return (target, column);
        }

        // A table column: find the supply row by its label (lgpEnvTemperatureDescrDegC names what each sensor measures).
        string? row = null;
        if (_table.LabelOid is { } labelText)
        {
            var labelOid = Oid.Parse(labelText.TrimStart('.'));
            var labels = await _client.WalkAsync(target, labelOid, ct, _table.MaxRows).ConfigureAwait(false);
            foreach (var vb in labels)
            {
                var label = SnmpRowLabel.Of(_table, vb.Value);
                if (label.Contains("supply", StringComparison.OrdinalIgnoreCase) || label.Contains("discharge", StringComparison.OrdinalIgnoreCase))
                {
                    row = string.Join('.', vb.Oid.Arcs[labelOid.Length..].ToArray());
                    break;
                }
            }
        }

        if (row is null)
        {
            var cells = await _client.WalkAsync(target, column, ct, _table.MaxRows).ConfigureAwait(false);
            row = cells.Count == 1 ? string.Join('.', cells[0].Oid.Arcs[column.Length..].ToArray())
                : throw new FormatException($"table {_table.Name} has {cells.Count} rows and none labelled supply: which one is the supply set point is unknown");
        }

        var oid = Oid.Parse(column.ToNumericString().TrimStart('.') + "." + row);
        (_target, _oid) = (target, oid);
        return (target, oid);
    }
}

/// <summary>
/// Modbus: the profile's holding register(s) written with FC 6 (one register) or FC 16 (several), encoded with the
/// profile's type, word order, scale and offset; a coil with FC 5. Read back with FC 3 / FC 1. On <c>tcp:</c> its own
/// connection (the poller's stays untouched); on a serial line (<c>rtu:</c>, <c>rtutcp:</c>) the poller's bus, leased
/// from the agent's <see cref="ModbusBusRegistry"/>: a port has one owner, and its transport puts the write between
/// two polls rather than on top of one.
/// </summary>
internal sealed class ModbusSetpointChannel : SetpointChannel
{
    private readonly ModbusClient _client;
    private readonly BusLease? _lease;
    private readonly ModbusPoint _point;
    private readonly byte _unitId;

    public ModbusSetpointChannel(string unit, DeviceConfig device, ProfileMetric metric, ModbusProfileSettings settings, SetpointKind kind, TimeSpan timeout, SetpointMetrics metrics, ILoggerFactory loggers, TimeProvider time)
        : base(unit, device, metric, kind, timeout, metrics, loggers.CreateLogger<SetpointChannel>())
    {
        var a = device.Address;
        if (a.Scheme != AddressScheme.Tcp)
        {
            throw new SetpointWriteException($"cooling unit {unit}: device {device.Id} is on {a.Scheme.ToString().ToLowerInvariant()}:, which is written over its poller's bus (the agent's Modbus bus registry), not a connection of its own");
        }

        _point = ModbusSourceFactory.ToPoint(metric.Register!, settings) with { Scale = metric.Scale, Offset = metric.Offset };
        _unitId = device.UnitId ?? 1;
        var transport = new ModbusTcpTransport(new ModbusTcpOptions { Host = a.Host!, Port = a.Port ?? DeviceAddress.ModbusPort, RequestTimeout = timeout }, loggers.CreateLogger("EdgeTwin.Modbus.Setpoints"), time);
        _client = new ModbusClient(transport);
    }

    /// <summary>Writes over a shared bus; the channel owns the lease and releases it on dispose.</summary>
    public ModbusSetpointChannel(string unit, DeviceConfig device, ProfileMetric metric, ModbusProfileSettings settings, SetpointKind kind, TimeSpan timeout, SetpointMetrics metrics, ILoggerFactory loggers, BusLease bus)
        : base(unit, device, metric, kind, timeout, metrics, loggers.CreateLogger<SetpointChannel>())
    {
        _lease = bus ?? throw new ArgumentNullException(nameof(bus));
        _client = bus.Client;
        _point = ModbusSourceFactory.ToPoint(metric.Register!, settings) with { Scale = metric.Scale, Offset = metric.Offset };
        _unitId = device.UnitId ?? 1;
    }

    protected override double Resolution => _point.Type is LibType.Float32 or LibType.Float64 ? 1e-3 : base.Resolution;

    protected override async Task WriteValueAsync(double value, CancellationToken cancellationToken)
    {
        var address = _point.ProtocolAddress;
        if (_point.Table == LibTable.Coils)
        {
            await _client.WriteSingleCoilAsync(_unitId, address, Math.Round(Metric.ToRaw(value)) != 0, cancellationToken).ConfigureAwait(false);
            return;
        }

        var registers = new ushort[_point.Length];
        _point.Encode(value, registers);
        if (registers.Length == 1)
        {
            await _client.WriteSingleRegisterAsync(_unitId, address, registers[0], cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await _client.WriteMultipleRegistersAsync(_unitId, address, registers, cancellationToken).ConfigureAwait(false);
        }
    }

    protected override async Task<double> ReadValueAsync(CancellationToken cancellationToken)
    {
        if (_point.Table == LibTable.Coils)
        {
            var bits = await _client.ReadCoilsAsync(_unitId, _point.ProtocolAddress, 1, cancellationToken).ConfigureAwait(false);
            return _point.DecodeBit(bits[0]);
        }

        var registers = await _client.ReadHoldingRegistersAsync(_unitId, _point.ProtocolAddress, (ushort)_point.Length, cancellationToken).ConfigureAwait(false);
        return _point.Decode(registers);
    }

    public override ValueTask DisposeAsync() => _lease is not null ? _lease.DisposeAsync() : _client.DisposeAsync();
}
