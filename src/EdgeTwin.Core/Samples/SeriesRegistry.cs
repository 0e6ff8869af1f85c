using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Core.Samples;

/// <summary>
/// Interns series descriptors into dense <see cref="SeriesId"/>s. Registration happens when a source
/// starts or discovers a table row (rare); lookups by id happen per sample and are a lock-free array read.
/// <para>
/// Every device has a cap on its series (<see cref="DeviceSeriesBudget"/>, the device's <c>max_series</c>): a table whose
/// row indices keep changing (a switch's ifTable with interfaces coming and going, an ARP/LLDP-like table, a PDU that
/// renumbers outlets) would otherwise add series forever, and with them per-series state in every stage — a slow leak
/// on a gateway that runs for months. Rows discovered at run time go through <see cref="TryGetOrAdd"/>, which refuses a
/// new series of a device at its cap (the caller drops its sample; counted in <c>edgetwin.series.dropped</c>, warned
/// about at most once an hour per device); series it already has keep flowing. The cap is checked only when a series
/// is created, never per sample.
/// </para>
/// <para>
/// A source retires a series whose row has left the device's table for good (<see cref="Retire"/>; SNMP: absent for the
/// device's <c>row_retention</c>). Its id is never handed out again, so a sample still queued somewhere can never be
/// taken for another series; the device's budget gets the slot back, and every stage frees the series' state when it
/// reads the retirement from <see cref="RetiredSeriesCursor"/> on its own thread. What a retired series still costs is
/// its descriptor and one array slot per stage (measured in the Core README), instead of its detectors, windows and rules.
/// </para>
/// </summary>
public sealed partial class SeriesRegistry
{
    public const string MeterName = "EdgeTwin.Series";

    /// <summary>How often, at most, the cap warning of one device repeats while its new series keep being refused.</summary>
    public static readonly TimeSpan CapWarningInterval = TimeSpan.FromHours(1);

    // Without a meter factory (tests, `edgetwin poll`) the instruments live on one process-wide meter, never disposed.
    private static readonly Meter SharedMeter = new(MeterName);

    private readonly ConcurrentDictionary<string, SeriesId> _byKey = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DeviceSeriesBudget> _budgets = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Counter<long> _dropped;
    private readonly Counter<long> _retiredCounter;
    private SeriesDescriptor[] _byId = new SeriesDescriptor[64];
    private int _count;
    // Retired ids in the order they were retired (append-only: stages read it through their own cursor), and one flag per id.
    private SeriesId[] _retiredLog = new SeriesId[16];
    private int _retiredCount;
    private bool[] _isRetired = new bool[64];

    public SeriesRegistry(ILogger<SeriesRegistry>? logger = null, IMeterFactory? meterFactory = null, TimeProvider? timeProvider = null)
    {
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
        var meter = meterFactory?.Create(MeterName) ?? SharedMeter;
        _dropped = meter.CreateCounter<long>("edgetwin.series.dropped", "{sample}",
            "Samples dropped because their series would have taken a device past its max_series cap, by device.");
        _retiredCounter = meter.CreateCounter<long>("edgetwin.series.retired", "{series}",
            "Series retired because their table row left the device for good (their state is freed, the cap slot returned), by device.");
        meter.CreateObservableGauge("edgetwin.series", ObserveSeries, "{series}", "Series registered and not retired, by device.");
    }

    /// <summary>Raised once per new series, after it can be looked up. Used for birth messages.</summary>
    public event Action<SeriesId, SeriesDescriptor>? SeriesAdded;

    /// <summary>Raised once per retired series, after <see cref="IsRetired"/> says so, on the retiring source's thread.</summary>
    public event Action<SeriesId, SeriesDescriptor>? SeriesRetired;

    /// <summary>Ids handed out so far (retired ones included): the bound of every array indexed by <see cref="SeriesId"/>.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Series retired so far; <see cref="RetiredAt"/> lists them in order.</summary>
    public int RetiredCount => Volatile.Read(ref _retiredCount);

    /// <summary>The <paramref name="index"/>-th series retired (0 ≤ index &lt; <see cref="RetiredCount"/>).</summary>
    public SeriesId RetiredAt(int index)
    {
        var log = Volatile.Read(ref _retiredLog);
        if ((uint)index >= (uint)RetiredCount)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, "No such retirement.");
        }

        return log[index];
    }

    /// <summary>True once <paramref name="id"/> was retired; its id is never handed out again.</summary>
    public bool IsRetired(SeriesId id)
    {
        var flags = Volatile.Read(ref _isRetired);
        return (uint)id.Value < (uint)flags.Length && Volatile.Read(ref flags[id.Value]);
    }

    /// <summary>
    /// Retires a series that will deliver no more samples (its row left the device's table): its key is free again (a row
    /// that comes back is a new series with a new id), its device's budget gets the slot back, and stages free its state
    /// when their <see cref="RetiredSeriesCursor"/> reaches it. False when it was retired already or is unknown.
    /// </summary>
    public bool Retire(SeriesId id)
    {
        SeriesDescriptor descriptor;
        DeviceSeriesBudget budget;
        lock (_gate)
        {
            if ((uint)id.Value >= (uint)_count || _isRetired[id.Value])
            {
                return false;
            }

            descriptor = _byId[id.Value];
            budget = Budget(descriptor.DeviceId);
            if (_byKey.TryGetValue(descriptor.Key, out var mapped) && mapped == id)
            {
                _byKey.TryRemove(descriptor.Key, out _);
            }

            if (_retiredCount == _retiredLog.Length)
            {
                var grown = new SeriesId[_retiredLog.Length * 2];
                Array.Copy(_retiredLog, grown, _retiredCount);
                Volatile.Write(ref _retiredLog, grown);
            }

            _retiredLog[_retiredCount] = id;
            Volatile.Write(ref _isRetired[id.Value], true);
            Volatile.Write(ref _retiredCount, _retiredCount + 1);
            Interlocked.Decrement(ref budget.CountField);
            Interlocked.Increment(ref budget.RetiredField);
        }

        _retiredCounter.Add(1, new KeyValuePair<string, object?>("device", descriptor.DeviceId));
        SeriesRetired?.Invoke(id, descriptor);
        return true;
    }

    /// <summary>
    /// Sets the series cap of <paramref name="deviceId"/> (its <c>max_series</c>) and where an operator raises it
    /// (<paramref name="raiseAt"/>, e.g. <c>max_series of device 'sw-1' in /etc/edgetwin/edgetwin.yaml</c>), before its
    /// sources register. A device never limited gets <see cref="DeviceSeriesBudget.DefaultMaxSeries"/>.
    /// </summary>
    public DeviceSeriesBudget LimitDevice(string deviceId, int maxSeries, string? raiseAt = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSeries, 1);
        var budget = Budget(deviceId);
        budget.MaxSeries = maxSeries;
        budget.RaiseAt = raiseAt ?? budget.RaiseAt;
        return budget;
    }

    /// <summary>The series budget of a device: its count, its cap and the samples dropped at the cap.</summary>
    public DeviceSeriesBudget Budget(string deviceId) => _budgets.GetOrAdd(deviceId, static id => new DeviceSeriesBudget(id));

    /// <summary>Every device's budget, for status views.</summary>
    public IReadOnlyList<DeviceSeriesBudget> Budgets() => [.. _budgets.Values.OrderBy(b => b.DeviceId, StringComparer.Ordinal)];

    /// <summary>
    /// Interns a series a source declares up front (a profile's scalars and registers, a sensor's outputs). It counts
    /// towards the device's cap but is never refused: the profile bounds those, and refusing one would silently lose a
    /// configured metric. Series discovered at run time (table rows) go through <see cref="TryGetOrAdd"/>.
    /// </summary>
    public SeriesId GetOrAdd(SeriesDescriptor descriptor)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        return _byKey.TryGetValue(descriptor.Key, out var existing) ? existing : Add(descriptor, capped: false);
    }

    /// <summary>
    /// Interns a series discovered at run time; false (and <see cref="SeriesId.None"/>) when it is new and its device
    /// already has <see cref="DeviceSeriesBudget.MaxSeries"/> series. The caller then drops the sample: this counts it.
    /// </summary>
    public bool TryGetOrAdd(SeriesDescriptor descriptor, out SeriesId id)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        if (_byKey.TryGetValue(descriptor.Key, out id))
        {
            return true;
        }

        id = Add(descriptor, capped: true);
        return !id.IsNone;
    }

    private SeriesId Add(SeriesDescriptor descriptor, bool capped)
    {
        var budget = Budget(descriptor.DeviceId);
        SeriesId id;
        lock (_gate)
        {
            if (_byKey.TryGetValue(descriptor.Key, out var existing))
            {
                return existing;
            }

            if (capped && budget.Count >= budget.MaxSeries)
            {
                id = SeriesId.None;
            }
            else
            {
                if (_count == _byId.Length)
                {
                    var grown = new SeriesDescriptor[_byId.Length * 2];
                    Array.Copy(_byId, grown, _count);
                    Volatile.Write(ref _byId, grown);
                    var flags = new bool[grown.Length];
                    Array.Copy(_isRetired, flags, _count);
                    Volatile.Write(ref _isRetired, flags);
                }

                id = new SeriesId(_count);
                _byId[_count] = descriptor;
                Volatile.Write(ref _count, _count + 1);
                _byKey[descriptor.Key] = id;
                Interlocked.Increment(ref budget.CountField);
            }
        }

        if (id.IsNone)
        {
            Refused(budget, descriptor.Key);
        }
        else
        {
            SeriesAdded?.Invoke(id, descriptor);
        }

        return id;
    }

    /// <summary>
    /// Counts (and warns about, as <see cref="TryGetOrAdd"/> does) a sample of a series a source already had refused and
    /// would have refused again — its device at its cap — without the source building the descriptor each time.
    /// <paramref name="seriesKey"/> is the refused series' <see cref="SeriesDescriptor.Key"/>, for the warning.
    /// Allocation-free.
    /// </summary>
    public void CountRefused(DeviceSeriesBudget budget, string seriesKey)
    {
        ArgumentNullException.ThrowIfNull(budget);
        Refused(budget, seriesKey);
    }

    private void Refused(DeviceSeriesBudget budget, string seriesKey)
    {
        var dropped = Interlocked.Increment(ref budget.DroppedField);
        _dropped.Add(1, new KeyValuePair<string, object?>("device", budget.DeviceId));
        lock (budget.WarningGate)
        {
            var now = _time.GetTimestamp();
            if (budget.LastWarning is { } last && _time.GetElapsedTime(last, now) < CapWarningInterval)
            {
                return;
            }

            budget.LastWarning = now;
        }

        LogCapReached(_logger, budget.DeviceId, budget.MaxSeries, dropped, budget.RaiseAt, seriesKey);
    }

    private IEnumerable<Measurement<int>> ObserveSeries()
    {
        foreach (var budget in _budgets.Values)
        {
            yield return new Measurement<int>(budget.Count, new KeyValuePair<string, object?>("device", budget.DeviceId));
        }
    }

    public bool TryGet(string key, out SeriesId id) => _byKey.TryGetValue(key, out id);

    public SeriesDescriptor this[SeriesId id]
    {
        get
        {
            var snapshot = Volatile.Read(ref _byId);
            if ((uint)id.Value >= (uint)Count)
            {
                throw new ArgumentOutOfRangeException(nameof(id), id.Value, "Unknown series id.");
            }

            return snapshot[id.Value];
        }
    }

    /// <summary>A stable copy of every series registered so far and not retired, in id order.</summary>
    public IReadOnlyList<(SeriesId Id, SeriesDescriptor Descriptor)> Snapshot()
    {
        var count = Count;
        var snapshot = Volatile.Read(ref _byId);
        var list = new List<(SeriesId, SeriesDescriptor)>(count);
        for (var i = 0; i < count; i++)
        {
            if (!IsRetired(new SeriesId(i)))
            {
                list.Add((new SeriesId(i), snapshot[i]));
            }
        }

        return list;
    }

    [LoggerMessage(EventId = 1300, Level = LogLevel.Warning, Message = "Device {DeviceId} reached its cap of {MaxSeries} series: samples of further new series are dropped ({Dropped} so far, metric edgetwin.series.dropped), its existing series keep flowing. A table whose row indices keep changing adds series forever; if the device really has more, raise {RaiseAt}. A dropped series: {Example}")]
    private static partial void LogCapReached(ILogger logger, string deviceId, int maxSeries, long dropped, string raiseAt, string example);
}

/// <summary>
/// How many series one device has against its cap (<c>max_series</c>), and how many samples were dropped because a new
/// series would have gone past it. Read by status views; updated by <see cref="SeriesRegistry"/> only.
/// </summary>
public sealed class DeviceSeriesBudget
{
    /// <summary>
    /// Default cap: about three times what the largest real devices need (a 48-port switch's interface tables with a dozen
    /// counters per port is about 600 series, a 3-phase 48-outlet PDU about 300), and small enough that a device whose
    /// table churns stops at 2000 series' worth of per-series state instead of growing for months.
    /// </summary>
    public const int DefaultMaxSeries = 2000;

    internal int CountField;
    internal long DroppedField;
    internal long RetiredField;

    internal DeviceSeriesBudget(string deviceId)
    {
        DeviceId = deviceId;
        RaiseAt = $"max_series of device '{deviceId}' in the site config";
    }

    public string DeviceId { get; }

    /// <summary>The cap.</summary>
    public int MaxSeries { get; internal set; } = DefaultMaxSeries;

    /// <summary>Where an operator raises the cap (the config key and file), for the warning.</summary>
    public string RaiseAt { get; internal set; }

    /// <summary>Series the device has (retired ones no longer count).</summary>
    public int Count => Volatile.Read(ref CountField);

    /// <summary>Series of the device retired so far (rows that left its tables for good).</summary>
    public long Retired => Interlocked.Read(ref RetiredField);

    /// <summary>Samples dropped because their series would have gone past the cap.</summary>
    public long Dropped => Interlocked.Read(ref DroppedField);

    /// <summary>True once the device has as many series as its cap allows.</summary>
    public bool AtCap => Count >= MaxSeries;

    internal Lock WarningGate { get; } = new();

    internal long? LastWarning { get; set; }
}

/// <summary>
/// A stage's place in the registry's list of retired series: each stage reads the retirements on its own thread, at the
/// start of a batch (one volatile read when there is none), and frees the state it keeps for them.
/// </summary>
public struct RetiredSeriesCursor
{
    private int _next;

    /// <summary>The next retirement this cursor has not seen yet; false when it has seen them all.</summary>
    public bool TryNext(SeriesRegistry registry, out SeriesId id)
    {
        ArgumentNullException.ThrowIfNull(registry);
        if (_next < registry.RetiredCount)
        {
            id = registry.RetiredAt(_next++);
            return true;
        }

        id = SeriesId.None;
        return false;
    }
}
