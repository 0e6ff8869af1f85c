using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text.Json;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Samples;
using EdgeTwin.Twin.Power;
using EdgeTwin.Twin.Scenarios;
using EdgeTwin.Twin.Thermal;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Twin.Thermal;

/// <summary>
/// The live thermal twin in the agent. On the sample path it only writes the latest value of each bound series into a
/// cell (an array lookup, no allocation) and, every <see cref="ThermalTwinOptions.FrameInterval"/> of sample time, hands
/// one frame per zone to the <see cref="ThermalTwin"/>. A worker task, off the sample path, does the rest:
/// <list type="bullet">
/// <item>calibration: at start from the warm-start history (if any), then once the live window holds
///   <see cref="ThermalTwinOptions.FirstCalibrationAfter"/>, then every <see cref="ThermalTwinOptions.CalibrateEvery"/> over the
///   last <see cref="ThermalTwinOptions.Window"/>; never while a cooling failure is active. Each publishes a twin-state
///   prediction event (<c>{zone}/thermal_twin</c>: fit errors, frames, hot spots);</item>
/// <item>hot spots (racks hotter than the calibrated airflow explains): checked every <see cref="ThermalTwinOptions.HotSpotEvery"/>,
///   one anomaly event (<c>{rack}/thermal_hot_spot</c>) when a rack becomes one;</item>
/// <item>cooling failures: when a unit that was running (in its state readings, at the end of the warm-start history, or
///   before a restart) reads stopped (its device's <c>crac.running</c> or
///   <c>crac.fan_running</c>), a <c>cooling_failure</c> prediction event (<c>{zone}/cooling_failure</c>) at once and every
///   <see cref="ThermalTwinOptions.RefreshEvery"/> while it lasts, from the present readings; a final one with
///   <c>state=resolved</c> when every failed unit runs again. A failure in progress at a restart goes on with its start
///   (<see cref="ThermalTwinOptions.StateFile"/>); one found at the first reading says so (<c>down_at_start</c>).</item>
/// </list>
/// </summary>
public sealed partial class ThermalTwinStage : ISampleStage, IDisposable
{
    public const string ModelName = "thermal";

    /// <summary>
    /// Version of the thermal model (its equations, calibration and scenario defaults), in attribute <c>model_version</c>
    /// of every event it makes, like the other models' (consumer audit F7); bumped when its predictions change meaning.
    /// </summary>
    public const string ModelVersion = "1.0";

    private static readonly JsonSerializerOptions Json = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    private readonly SiteConfig _config;
    private readonly SeriesRegistry _registry;
    private readonly IEventSink _events;
    private readonly ILogger _logger;
    private readonly ThermalTwinOptions _options;
    private readonly ThermalSeriesMap _map;
    private readonly Lock _gate = new();
    private readonly List<ThermalCell> _cells = [];
    private readonly Meter _meter;
    private readonly Counter<long> _frames;
    private readonly Counter<long> _predictions;
    private readonly Counter<long> _hotSpotEvents;
    private readonly Counter<long> _implausiblePowerReadings;
    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly ZoneState[] _zones;
    private ThermalCell[]?[] _binding = new ThermalCell[]?[64];
    private bool[] _bound = new bool[64];
    private RetiredSeriesCursor _retired; // under _gate
    private long _latestMs;
    private long _nextFrameMs;
    private readonly SampleClock _clock = new();
    private long _pendingShiftMs; // a backward clock step the worker has not yet moved its zones' times by
    private Task? _worker;

    public ThermalTwinStage(SiteConfig config, SeriesRegistry registry, IEventSink events, ILogger<ThermalTwinStage> logger, ThermalTwinOptions? options = null, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _registry = registry ?? throw new ArgumentNullException(nameof(registry));
        _events = events ?? throw new ArgumentNullException(nameof(events));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        _options = options ?? new ThermalTwinOptions();
        var zones = ThermalZone.FromTopology(config.Site).Where(z => z.Racks.Count > 0).ToList();
        Twin = new ThermalTwin(zones, _options.Settings, _options.Window, meterFactory);
        _map = new ThermalSeriesMap(config, zones);
        foreach (var unusable in _map.UnusablePower())
        {
            LogPowerUnitUnusable(_logger, unusable);
        }

        _zones = [.. zones.Select(z => new ZoneState(z))];
        _meter = meterFactory?.Create(ThermalTwin.MeterName) ?? new Meter(ThermalTwin.MeterName);
        _frames = _meter.CreateCounter<long>("edgetwin.twin.thermal.frames", "{frame}", "Frames handed to the live thermal twin.");
        _predictions = _meter.CreateCounter<long>("edgetwin.twin.thermal.predictions", "{event}", "Live cooling_failure predictions published.");
        _hotSpotEvents = _meter.CreateCounter<long>("edgetwin.twin.thermal.hot_spot_events", "{event}", "Hot-spot anomaly events published.");
        _implausiblePowerReadings = _meter.CreateCounter<long>("edgetwin.twin.thermal.implausible_power", "{episode}", "Racks whose power reading turned implausible (held at the last plausible value).");
        _meter.CreateObservableGauge("edgetwin.twin.thermal.bound_series", () => Volatile.Read(ref _boundCount), "{series}", "Series feeding the thermal twin.");
        WarmStart();
        Restore();
    }

    private int _boundCount;
    private readonly HashSet<string> _implausiblePower = new(StringComparer.Ordinal); // under _gate

    public string Name => "thermal-twin";

    /// <summary>The live twin (models, windows, metrics).</summary>
    public ThermalTwin Twin { get; }

    /// <summary>Racks whose load a plan may shut down (<c>non_critical_racks</c>), for the what-ifs run outside the stage.</summary>
    public IReadOnlyList<string> NonCriticalRacks => _options.NonCriticalRacks;

    /// <summary>The latest live cooling_failure result of a zone (null: no failure active).</summary>
    public CoolingFailureResult? ActivePrediction(int zone)
    {
        lock (_gate)
        {
            return _zones[zone].Active;
        }
    }

    /// <summary>
    /// The calibrated twin of the site as it is now (each zone's model and latest frame, readings held between polls, each
    /// rack's power the median of the last minute's frames: <see cref="WhatIfLoadSeconds"/>), for
    /// what-if requests that must not wait for or disturb the live schedule; null, with the reason, before every zone the
    /// request needs (<paramref name="needs"/>; null: every zone) has been calibrated and read. A zone it does not need
    /// enters with whatever model and readings it has (its prior and an empty frame before its first calibration), so a
    /// question about room2 no longer waits for room1.
    /// </summary>
    public SiteTwin? CurrentTwin(out string? notReady, Func<ThermalZone, bool>? needs = null)
    {
        if (_zones.Length == 0)
        {
            notReady = "the site has no rooms with racks (site.rooms[].rows[].racks): there is no thermal twin";
            return null;
        }

        var models = new ZoneThermalModel[_zones.Length];
        var now = new ZoneFrame[_zones.Length];
        for (var z = 0; z < _zones.Length; z++)
        {
            models[z] = Twin.Model(z);
            if (needs is not null && !needs(_zones[z].Zone))
            {
                now[z] = Twin.LatestWithSteadyLoad(z, WhatIfLoadSeconds) ?? new ZoneFrame(0, _zones[z].Zone.Racks.Count, _zones[z].Zone.Units.Count);
                continue;
            }

            if (models[z].CalibrationFrames == 0)
            {
                notReady = Inv($"the thermal twin of zone '{_zones[z].Zone.Id}' is not calibrated yet ({Twin.FrameCount(z)} frames of telemetry; the first calibration needs {_options.FirstCalibrationAfter.TotalMinutes:0.#} min of it or a warm-start history)");
                return null;
            }

            if (Twin.LatestWithSteadyLoad(z, WhatIfLoadSeconds) is not { } latest)
            {
                notReady = $"the thermal twin of zone '{_zones[z].Zone.Id}' has no readings yet";
                return null;
            }

            now[z] = latest;
        }

        notReady = null;
        var readings = new PowerReadings();
        foreach (var (rack, age) in PowerReadingAges())
        {
            readings.RackReadingAgeS[rack] = age;
        }

        var (phases, batteries) = PowerChainReadings(readings.Assumptions);
        foreach (var (pdu, amps) in phases)
        {
            readings.PduPhaseCurrentA[pdu] = amps;
        }

        var twin = new SiteTwin(_config.Site, models, now, readings) { MitigationLeads = _options.MitigationLeads };

        // The runtime the UPS reports holds at the load it carries now; the power twin scales it to a what-if's load. Its
        // own figure for that load (not a measured output, which may include loads the twin does not model) keeps the
        // present runtime exactly the UPS's.
        var upsKw = twin.Power.Distribute(twin.Readings.RackKw).Ups;
        foreach (var (ups, (charge, runtime)) in batteries)
        {
            twin.Readings.UpsBatteries[ups] = new UpsBattery(charge, runtime, upsKw.GetValueOrDefault(ups, double.NaN));
        }

        return twin;
    }

    /// <summary>
    /// The PDUs' phase currents (A, phase 1 first) and the UPSes' battery charge and runtime (min) as last read; a reading
    /// older than <see cref="SiteTwin.StaleAfter"/> against the newest of the site is left out and named in
    /// <paramref name="assumptions"/>, as a PDU that stopped answering is not its phase split now.
    /// </summary>
    internal (Dictionary<string, double[]> Phases, Dictionary<string, (double Charge, double Runtime)> Batteries) PowerChainReadings(List<string> assumptions)
    {
        var phases = new Dictionary<string, SortedDictionary<int, (double A, long Ms)>>(StringComparer.Ordinal);
        var batteries = new Dictionary<string, (double Charge, double Runtime)>(StringComparer.Ordinal);
        var stale = new SortedSet<string>(StringComparer.Ordinal);
        lock (_gate)
        {
            var newest = _cells.Count == 0 ? 0 : _cells.Max(c => c.LastMs);
            var staleMs = (long)SiteTwin.StaleAfter.TotalMilliseconds;
            foreach (var c in _cells)
            {
                if (c.Element is not { } id || c.LastMs == 0 || double.IsNaN(c.Value))
                {
                    continue;
                }

                if (newest - c.LastMs > staleMs)
                {
                    stale.Add(id);
                    continue;
                }

                switch (c.Signal)
                {
                    case ThermalSignal.PhaseCurrent:
                        (phases.TryGetValue(id, out var p) ? p : phases[id] = [])[c.Index] = (c.Value, c.LastMs);
                        break;
                    case ThermalSignal.UpsCharge:
                        batteries[id] = (c.Value, batteries.TryGetValue(id, out var b) ? b.Runtime : double.NaN);
                        break;
                    case ThermalSignal.UpsRuntime:
                        batteries[id] = (batteries.TryGetValue(id, out var r) ? r.Charge : double.NaN, c.Value);
                        break;
                }
            }
        }

        foreach (var id in stale)
        {
            assumptions.Add(Inv($"{id}: its phase currents or battery readings are over {SiteTwin.StaleAfter.TotalMinutes:0} min old; not used"));
        }

        // A PDU with one phase of several read has no measured split: its phases are not used rather than read as 0 A.
        var pduPhases = _config.Site.Power.Pdus.ToDictionary(p => p.Id, p => p.Phases, StringComparer.Ordinal);
        return (phases.Where(p => p.Value.Count == pduPhases.GetValueOrDefault(p.Key)).ToDictionary(p => p.Key, p => p.Value.Values.Select(v => v.A).ToArray(), StringComparer.Ordinal), batteries);
    }

    /// <summary>
    /// Per rack with a power meter that has reported: seconds between its oldest meter's last reading and the newest power
    /// reading of the site (∞: one of its meters never reported). A PDU that stops answering keeps its last value in the
    /// rack's sum; without its age the what-ifs took that as the load now.
    /// </summary>
    internal Dictionary<string, double> PowerReadingAges()
    {
        var ages = new Dictionary<string, double>(StringComparer.Ordinal);
        lock (_gate)
        {
            var newest = 0L;
            var racks = new Dictionary<(int Zone, int Rack), (long Oldest, bool AnyRead)>();
            foreach (var c in _cells)
            {
                if (c.Signal != ThermalSignal.Power)
                {
                    continue;
                }

                newest = Math.Max(newest, c.LastMs);
                racks[(c.Zone, c.Index)] = racks.TryGetValue((c.Zone, c.Index), out var r)
                    ? (Math.Min(r.Oldest, c.LastMs), r.AnyRead || c.LastMs > 0)
                    : (c.LastMs, c.LastMs > 0);
            }

            foreach (var ((z, i), (ms, anyRead)) in racks)
            {
                if (anyRead)
                {
                    ages[_zones[z].Zone.Racks[i].Id] = ms == 0 ? double.PositiveInfinity : (newest - ms) / 1000.0;
                }
            }
        }

        return ages;
    }

    /// <summary>Each zone's calibration window (the load history the capacity forecast reads), oldest first.</summary>
    public IReadOnlyList<IReadOnlyList<ZoneFrame>> WindowFrames() => [.. Enumerable.Range(0, _zones.Length).Select(Twin.WindowFrames)];

    public ValueTask ProcessAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken)
    {
        if (_zones.Length == 0)
        {
            return ValueTask.CompletedTask;
        }

        _worker ??= Task.Run(() => RunWorkerAsync(_stop.Token), CancellationToken.None);
        var wake = false;
        long latest = 0;
        lock (_gate)
        {
            UnbindRetired();
            foreach (var s in samples.Span)
            {
                if (!s.IsGood)
                {
                    Invalidate(s);
                    continue;
                }

                if (Cells(s.Series) is not { } cells)
                {
                    continue;
                }

                foreach (var cell in cells)
                {
                    var v = cell.ToTwin(s.Value);
                    if (cell.Signal is ThermalSignal.Running or ThermalSignal.FanRunning && cell.Value != v)
                    {
                        wake = true;
                    }

                    cell.Value = v;
                    cell.LastMs = s.TimestampUnixMs;
                }

                latest = Math.Max(latest, s.TimestampUnixMs);
            }

            if (latest > 0 && _clock.Observe(latest) is var step and > 0)
            {
                // The wall clock stepped back. Before, no frame was due until it caught up with the old "next frame" time,
                // the twin dropped frames older than its last, and the worker's "now" stood still: no frame, hot spot,
                // calibration or failure forecast for the size of the step. The frames so far were stamped ahead by the
                // step: the windows move back so the next frame follows their newest by one interval.
                for (var z = 0; z < _zones.Length; z++)
                {
                    if (Twin.Latest(z) is { } last)
                    {
                        Twin.Shift(z, (latest / 1000.0) - _options.FrameInterval.TotalSeconds - last.TimeSeconds);
                    }
                }

                _nextFrameMs = 0;
                Interlocked.Add(ref _pendingShiftMs, -step);
                Interlocked.Exchange(ref _latestMs, latest);
                SampleClock.LogSteppedBack(_logger, "Thermal twin", step, latest, "its frames restart at the new time and its window and schedules move back by the step");
            }
            else if (latest > _latestMs)
            {
                Interlocked.Exchange(ref _latestMs, latest);
            }
        }

        if (latest > 0 && latest >= _nextFrameMs)
        {
            _nextFrameMs = latest + (long)_options.FrameInterval.TotalMilliseconds;
            for (var z = 0; z < _zones.Length; z++)
            {
                Twin.Observe(z, Snapshot(z, latest));
            }

            _frames.Add(_zones.Length);
            wake = true;
        }

        if (wake)
        {
            Wake();
        }

        return ValueTask.CompletedTask;
    }

    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_worker is { } w)
        {
            await w.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        try
        {
            _worker?.Wait(TimeSpan.FromSeconds(10));
        }
        catch (AggregateException)
        {
            // The worker logs its own failures.
        }

        _stop.Dispose();
        _wake.Dispose();
        Twin.Dispose();
        _meter.Dispose();
    }

    /// <summary>The present readings of a zone as a frame (missing readings NaN, held by the twin from the previous frame).</summary>
    internal ZoneFrame Snapshot(int zone, long timeMs)
    {
        var z = _zones[zone].Zone;
        var frame = new ZoneFrame(timeMs / 1000.0, z.Racks.Count, z.Units.Count);
        var inletN = new int[z.Racks.Count];
        var outletN = new int[z.Racks.Count];
        var fanRunning = new bool[z.Units.Count];
        Array.Fill(fanRunning, true);
        lock (_gate)
        {
            foreach (var c in _cells)
            {
                if (c.Zone != zone || double.IsNaN(c.Value))
                {
                    continue;
                }

                switch (c.Signal)
                {
                    case ThermalSignal.Inlet:
                        frame.RackInletC[c.Index] = (inletN[c.Index]++ == 0 ? 0 : frame.RackInletC[c.Index]) + c.Value;
                        break;
                    case ThermalSignal.Outlet:
                        frame.RackOutletC[c.Index] = (outletN[c.Index]++ == 0 ? 0 : frame.RackOutletC[c.Index]) + c.Value;
                        break;
                    case ThermalSignal.Power:
                        frame.RackPowerKw[c.Index] = (double.IsNaN(frame.RackPowerKw[c.Index]) ? 0 : frame.RackPowerKw[c.Index]) + c.Value;
                        break;
                    case ThermalSignal.Running:
                        frame.UnitRunning[c.Index] = c.Value >= 0.5;
                        frame.UnitStateRead[c.Index] = true;
                        break;
                    case ThermalSignal.FanRunning:
                        fanRunning[c.Index] = c.Value >= 0.5;
                        frame.UnitStateRead[c.Index] = true;
                        break;
                    case ThermalSignal.Fan:
                        frame.UnitFanSpeed[c.Index] = Math.Clamp(c.Value, 0, 1);
                        break;
                    case ThermalSignal.Supply:
                        frame.UnitSupplyC[c.Index] = c.Value;
                        break;
                    case ThermalSignal.Return:
                        frame.UnitReturnC[c.Index] = c.Value;
                        break;
                }
            }
        }

        for (var i = 0; i < inletN.Length; i++)
        {
            frame.RackInletC[i] = inletN[i] > 1 ? frame.RackInletC[i] / inletN[i] : frame.RackInletC[i];
            frame.RackOutletC[i] = outletN[i] > 1 ? frame.RackOutletC[i] / outletN[i] : frame.RackOutletC[i];
        }

        // A rack power no rack draws (0 kW, ten times its budget) is held at the last plausible value: it reached the
        // calibration and the forecast's start before (Regression_implausible_rack_power_reached_thermal_calibration).
        var raw = (double[])frame.RackPowerKw.Clone();
        var implausible = frame.DropImplausiblePower(z.Racks);
        var held = implausible.Count > 0 ? Twin.Latest(zone) : null;
        foreach (var i in implausible)
        {
            frame.RackPowerKw[i] = held?.RackPowerKw[i] ?? double.NaN;
        }

        ReportImplausiblePower(z, implausible, raw);

        // A unit whose fans stopped moves no air: for the twin it is not running.
        for (var j = 0; j < fanRunning.Length; j++)
        {
            frame.UnitRunning[j] &= fanRunning[j];
        }

        return frame;
    }

    /// <summary>Per unit of a zone, the sample time of its newest state reading (0: none yet).</summary>
    private long[] StateReadAtMs(int zone)
    {
        var at = new long[_zones[zone].Zone.Units.Count];
        lock (_gate)
        {
            foreach (var c in _cells)
            {
                if (c.Zone == zone && c.Signal is ThermalSignal.Running or ThermalSignal.FanRunning && !double.IsNaN(c.Value))
                {
                    at[c.Index] = Math.Max(at[c.Index], c.LastMs);
                }
            }
        }

        return at;
    }

    /// <summary>One warning when a rack's power turns implausible, one line when it is plausible again (not one per frame).</summary>
    private void ReportImplausiblePower(ThermalZone zone, List<int> implausible, double[] raw)
    {
        lock (_gate)
        {
            for (var i = 0; i < zone.Racks.Count; i++)
            {
                var rack = zone.Racks[i];
                var bad = implausible.Contains(i);
                if (bad && _implausiblePower.Add(rack.Id))
                {
                    _implausiblePowerReadings.Add(1);
                    LogPowerImplausible(_logger, rack.Id, raw[i], rack.BudgetKw, ZoneFrame.MaxPowerBudgetMultiple * rack.BudgetKw);
                }
                else if (!bad && !double.IsNaN(raw[i]) && _implausiblePower.Remove(rack.Id))
                {
                    LogPowerPlausibleAgain(_logger, rack.Id, raw[i]);
                }
            }
        }
    }

    /// <summary>
    /// Under _gate. A retired series (a sensor row that left its PDU's table) no longer feeds its rack: before, its last
    /// reading stayed in the rack's average for as long as the agent ran.
    /// </summary>
    private void UnbindRetired()
    {
        while (_retired.TryNext(_registry, out var id))
        {
            var i = id.Value;
            if ((uint)i < (uint)_binding.Length && _binding[i] is { } cells)
            {
                foreach (var cell in cells)
                {
                    _cells.Remove(cell);
                }

                _binding[i] = null;
                Interlocked.Decrement(ref _boundCount);
            }
        }
    }

    /// <summary>
    /// Under _gate. A sample that says its sensor has no reading (out of range: a probe disconnected from its card answers
    /// PowerNet-MIB's -1; a device error) clears that sensor's inlet or outlet temperature: its last good value stayed in
    /// its rack's average as if measured now for as long as the probe was lost
    /// (<c>Regression_a_disconnected_probes_last_reading_stayed_in_its_racks_inlet_average</c>). The rack's other sensors
    /// make its reading; with none left it is missing, which the twin holds from its previous frame. A stale (the device
    /// did not answer) or stuck reading stays held, and a power reading too: a rack's power is a sum, not an average.
    /// </summary>
    private void Invalidate(Sample s)
    {
        if (s.Quality is not (SampleQuality.OutOfRange or SampleQuality.DeviceError) || Cells(s.Series) is not { } cells)
        {
            return;
        }

        foreach (var cell in cells)
        {
            if (cell.Signal is ThermalSignal.Inlet or ThermalSignal.Outlet)
            {
                cell.Value = double.NaN;
            }
        }
    }

    private ThermalCell[]? Cells(SeriesId id)
    {
        var i = id.Value;
        if (i < 0)
        {
            return null;
        }

        if (i >= _bound.Length)
        {
            var n = Math.Max(i + 1, _bound.Length * 2);
            Array.Resize(ref _bound, n);
            Array.Resize(ref _binding, n);
        }

        if (!_bound[i])
        {
            var cells = _map.Bind(_registry[id]);
            _binding[i] = cells.Count == 0 ? null : [.. cells];
            _cells.AddRange(cells);
            _bound[i] = true;
            if (cells.Count > 0)
            {
                Interlocked.Increment(ref _boundCount);
            }
        }

        return _binding[i];
    }

    private void Wake()
    {
        try
        {
            if (_wake.CurrentCount == 0)
            {
                _wake.Release();
            }
        }
        catch (SemaphoreFullException)
        {
            // Already signalled.
        }
        catch (ObjectDisposedException)
        {
            // Shutting down.
        }
    }

    private void WarmStart()
    {
        var frames = _options.WarmStart;
        if (_options.WarmStartHistoryCsv is { } path)
        {
            frames = HistoryCsv.Read(path, Twin.Zones).Frames;
        }

        if (frames is null)
        {
            return;
        }

        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        for (var z = 0; z < Math.Min(frames.Count, _zones.Length); z++)
        {
            // A history older than the window (or timed from its first row, as HistoryCsv does) is moved to end one frame
            // before now: it is the normal operation the twin calibrates from, and the window would otherwise drop it.
            var last = frames[z].Count > 0 ? frames[z][^1].TimeSeconds : now;
            var shift = last < now - Twin.Window.TotalSeconds ? now - _options.FrameInterval.TotalSeconds - last : 0;
            foreach (var f in frames[z])
            {
                var copy = f.Clone();
                copy.TimeSeconds += shift;
                Twin.Observe(z, copy);
            }

            _zones[z].WarmStarted = frames[z].Count > 0;

            // A unit running at the end of that history counts as seen running: if the agent's first reading finds it
            // stopped, that is a failure (regression: the arm64 demo under qemu first polled crac1 after its scripted
            // stop and never predicted). Only where the history has the unit's state: a unit without one is not known
            // to run.
            if (frames[z].Count > 0)
            {
                var end = frames[z][^1];
                for (var j = 0; j < Math.Min(end.UnitRunning.Length, _zones[z].SeenRunning.Length); j++)
                {
                    _zones[z].SeenRunning[j] |= end.UnitStateRead[j] && end.UnitRunning[j];
                }
            }
        }
    }

    /// <summary>
    /// Takes back what the previous run kept (<see cref="ThermalTwinOptions.StateFile"/>): the units it saw running, and
    /// the cooling failure in progress, which continues with its start and age (a restart is not a new failure).
    /// </summary>
    private void Restore()
    {
        if (_options.StateFile is not { } path)
        {
            return;
        }

        Dictionary<string, PersistedZone> saved;
        try
        {
            saved = ThermalTwinStateFile.Load(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException)
        {
            LogStateUnreadable(_logger, path, ex);
            return;
        }

        foreach (var state in _zones)
        {
            if (!saved.TryGetValue(state.Zone.Id, out var zone))
            {
                continue;
            }

            foreach (var id in zone.SeenRunning)
            {
                if (state.UnitIndex(id) is { } j)
                {
                    state.SeenRunning[j] = true;
                }
            }

            var failed = zone.FailedUnits.Where(u => state.UnitIndex(u) is not null).ToList();
            if (failed.Count > 0)
            {
                state.FailedUnits = [.. failed.OrderBy(u => state.UnitIndex(u))];
                state.FailureStartedMs = zone.FailureStartedMs;
                state.FailureStartKnown = zone.FailureStartKnown;
                state.Carried.UnionWith(state.FailedUnits);
                state.Resumed = true;
            }
        }
    }

    /// <summary>Writes what a restart needs (see <see cref="Restore"/>); a failure to write is logged, the twin goes on.</summary>
    private void Persist()
    {
        if (_options.StateFile is not { } path)
        {
            return;
        }

        var zones = _zones.ToDictionary(
            z => z.Zone.Id,
            z => new PersistedZone
            {
                SeenRunning = [.. z.Zone.Units.Where((_, j) => z.SeenRunning[j]).Select(u => u.Id)],
                FailedUnits = [.. z.FailedUnits],
                FailureStartedMs = z.FailedUnits.Count > 0 ? z.FailureStartedMs : 0,
                FailureStartKnown = z.FailedUnits.Count > 0 && z.FailureStartKnown,
            },
            StringComparer.Ordinal);
        try
        {
            ThermalTwinStateFile.Save(path, zones);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogStateUnwritable(_logger, path, ex);
        }
    }

    private async Task RunWorkerAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await _wake.WaitAsync(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (Interlocked.Exchange(ref _pendingShiftMs, 0) is var shift and not 0)
            {
                foreach (var zone in _zones)
                {
                    zone.Shift(shift);
                }
            }

            for (var z = 0; z < _zones.Length; z++)
            {
                try
                {
                    await TickAsync(z, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or ArithmeticException or MathNet.Numerics.NonConvergenceException)
                {
                    LogWorkerFailed(_logger, _zones[z].Zone.Id, ex);
                }
            }
        }
    }

    private async Task TickAsync(int z, CancellationToken ct)
    {
        var state = _zones[z];
        var nowMs = Interlocked.Read(ref _latestMs);
        if (nowMs == 0 && !state.WarmStarted)
        {
            return;
        }

        var frame = Snapshot(z, nowMs);
        var stateAt = StateReadAtMs(z);
        var failed = new List<string>();
        var unreachable = new List<string>();
        var seen = false;
        for (var j = 0; j < state.Zone.Units.Count; j++)
        {
            // Running or stopped only from the unit's state readings: before its first one (or without a state series)
            // the frame assumes it runs, which is not a sighting (regression: every restart with a unit down took the
            // unit for seen running at the first tick, before its state was polled, and announced a new failure).
            var id = state.Zone.Units[j].Id;
            if (!frame.UnitStateRead[j])
            {
                // A unit of a failure carried over a restart stays down until its first reading says otherwise.
                if (state.Carried.Contains(id))
                {
                    frame.UnitRunning[j] = false;
                    failed.Add(id);
                }

                continue;
            }

            state.Carried.Remove(id);

            var running = frame.UnitRunning[j];
            if (running && state.SeenRunning[j] && nowMs - stateAt[j] > (long)_options.UnitUnreachableAfter.TotalMilliseconds)
            {
                // Its last reading said running, but it has not answered since while the rest of the site has: a unit
                // that loses power takes its controller card with it, and its held "running" hid the failure. Taken as
                // stopped (the safe side), its own held air readings dropped, and the prediction marked degraded.
                frame.UnitRunning[j] = false;
                frame.UnitReturnC[j] = double.NaN;
                frame.UnitSupplyC[j] = double.NaN;
                unreachable.Add(id);
                failed.Add(id);
                state.LastStateReadMs[id] = stateAt[j];
                continue;
            }

            if (running)
            {
                seen |= !state.SeenRunning[j];
                state.SeenRunning[j] = true;
                state.RunningThisRun[j] = true;
            }

            if (!running && state.SeenRunning[j])
            {
                failed.Add(id);
            }
        }

        if (seen)
        {
            Persist();
        }

        var measuredRoom = frame.RoomC();
        if (failed.Count == 0)
        {
            if (state.FailedUnits.Count > 0)
            {
                await PublishResolvedAsync(state, nowMs, ct).ConfigureAwait(false);
                Persist();
            }

            state.LastHealthy = frame;
            state.TrackRoom(measuredRoom, nowMs, RoomSmoothingSeconds);
            await MaintainAsync(z, state, nowMs, ct).ConfigureAwait(false);
            return;
        }

        var model = Twin.Model(z);
        var changed = !failed.SequenceEqual(state.FailedUnits, StringComparer.Ordinal);
        if (changed && state.FailedUnits.Count == 0)
        {
            // The residuals of the last healthy frame are each rack's steady offset; held through the failure forecasts.
            state.Biases = ThermalForecast.Biases(model, state.LastHealthy ?? frame);
            state.ResetLoad();
            state.FailureStartedMs = nowMs;

            // Seen to stop only if seen running in this run; a unit already stopped at its first reading (it ran before
            // the restart, or at the end of the warm-start history) stopped at some unknown time before now.
            state.FailureStartKnown = failed.All(u => state.RunningThisRun[state.UnitIndex(u)!.Value]);
            if (unreachable.Count > 0)
            {
                LogFailureUnreachable(_logger, string.Join(", ", failed), state.Zone.Id, string.Join(", ", unreachable), _options.UnitUnreachableAfter.TotalSeconds);
            }
            else if (state.FailureStartKnown)
            {
                LogFailureDetected(_logger, string.Join(", ", failed), state.Zone.Id);
            }
            else
            {
                LogFailureFoundAtStart(_logger, string.Join(", ", failed), state.Zone.Id);
            }
        }
        else
        {
            if (state.Resumed)
            {
                LogFailureContinues(_logger, state.Zone.Id, string.Join(", ", failed), Time(state.FailureStartedMs));
            }
            else if (changed)
            {
                // A second unit stopping (or one of two coming back) changed the forecast's events but left the log at the
                // first unit: an operator reading the journal saw crac2 down and never that crac1's fans had failed too.
                var stopped = failed.Except(state.FailedUnits, StringComparer.Ordinal).ToList();
                var back = state.FailedUnits.Except(failed, StringComparer.Ordinal).ToList();
                LogFailureChanged(_logger, state.Zone.Id, stopped.Count == 0 ? "none" : string.Join(", ", stopped), back.Count == 0 ? "none" : string.Join(", ", back), string.Join(", ", failed));
            }

            ObserveRoom(model, state, frame, measuredRoom, nowMs);
        }

        state.Resumed = false;

        state.RoomMs = nowMs;

        // The forecast starts from the observer's room temperature, not from the (often whole-degree) return readings.
        if (!double.IsNaN(state.RoomC))
        {
            Array.Fill(frame.UnitReturnC, state.RoomC);
        }

        // And from each rack's load averaged since the failure began (over the last minute once it is older), not its last
        // reading: with one unit left at its capacity the room settles where the envelope carries the surplus off, about
        // 12 K per kW in the demo, so the swing of the readings (±0.4 kW over a room) moved the predicted peak by up to
        // 6.6 K between refreshes 5 s apart.
        state.TrackLoad(frame, nowMs, LoadSmoothingSeconds);
        state.SmoothedLoad(frame);

        changed |= !unreachable.SequenceEqual(state.Unreachable, StringComparer.Ordinal);
        if (changed || nowMs - state.LastRefreshMs >= (long)_options.RefreshEvery.TotalMilliseconds)
        {
            state.FailedUnits = failed;
            state.Unreachable = unreachable;
            state.LastRefreshMs = nowMs;
            if (changed)
            {
                Persist();
            }

            await PublishFailureAsync(z, state, frame, nowMs, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Time constant of the racks' load the failure forecast starts from (their readings' short-term swing averaged out).</summary>
    private const double LoadSmoothingSeconds = 60;

    /// <summary>
    /// Span of frames whose median power per rack the what-ifs start from (<see cref="ThermalTwin.LatestWithSteadyLoad"/>):
    /// from the last frame, the demo's "lose crac1" answered A01 at 32 °C in 1,977 s, then 1,465 s, 1,381 s, 1,631 s over
    /// 40 s, and in the agent's first 10 s "no rack reaches 32 °C" from a frame summed before the racks' second feeds had reported.
    /// </summary>
    private const double WhatIfLoadSeconds = 60;

    /// <summary>Time constant of the room temperature's smoothing in normal operation and of the observer's correction.</summary>
    private const double RoomSmoothingSeconds = 60;

    private const double RoomCorrectionSeconds = 120;

    /// <summary>Hot-spot checks in a row before a rack is reported.</summary>
    private const int HotSpotConfirmations = 3;

    /// <summary>
    /// During a failure the room node is integrated with the calibrated model from the measured inputs (IT power, unit
    /// states and fans), and pulled toward the measured room temperature with a 2-minute time constant: return sensors that
    /// report whole degrees would otherwise hold the forecast's start still for a minute and then jump.
    /// </summary>
    private static void ObserveRoom(ZoneThermalModel model, ZoneState state, ZoneFrame frame, double measured, long nowMs)
    {
        if (double.IsNaN(state.RoomC))
        {
            state.RoomC = measured;
            return;
        }

        var units = model.Zone.Units.Count;
        var fan = new double[units];
        var supply = new double[units];
        for (var j = 0; j < units; j++)
        {
            fan[j] = !frame.UnitRunning[j] ? 0 : double.IsNaN(frame.UnitFanSpeed[j]) ? 1 : Math.Clamp(frame.UnitFanSpeed[j], 0, 1);
        }

        var it = frame.TotalPowerKw();
        var remaining = Math.Min(60, (nowMs - state.RoomMs) / 1000.0);
        while (remaining > 1e-6)
        {
            var dt = Math.Min(2, remaining);
            for (var j = 0; j < units; j++)
            {
                supply[j] = frame.UnitRunning[j] ? model.SupplyAt(j, state.RoomC, fan[j], model.UnitSetpointC[j]) : state.RoomC;
            }

            state.RoomC += model.RoomDerivative(state.RoomC, it, fan, frame.UnitRunning, supply) * dt;
            if (!double.IsNaN(measured))
            {
                state.RoomC += (measured - state.RoomC) * Math.Min(1, dt / RoomCorrectionSeconds);
            }

            remaining -= dt;
        }
    }

    private async Task MaintainAsync(int z, ZoneState state, long nowMs, CancellationToken ct)
    {
        var model = Twin.Model(z);
        var due = model.CalibrationFrames == 0
            ? state.WarmStarted || (Twin.FrameCount(z) >= 10 && WindowSeconds(z) >= _options.FirstCalibrationAfter.TotalSeconds)
            : nowMs - state.LastCalibrationMs >= (long)_options.CalibrateEvery.TotalMilliseconds;
        if (due && Twin.FrameCount(z) >= 10)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            model = await Task.Run(() => Twin.Recalibrate(z), ct).ConfigureAwait(false);
            state.LastCalibrationMs = nowMs;
            state.WarmStarted = false;
            var spots = Twin.FindHotSpots(z);
            LogCalibrated(_logger, state.Zone.Id, model.CalibrationFrames, model.InletFitRmseK, model.RoomFitRmseK, clock.Elapsed.TotalSeconds);
            await _events.PublishAsync(
                new EdgeEvent(
                    EdgeEventKind.Prediction,
                    state.Zone.Id + "/thermal_twin",
                    Time(nowMs),
                    EventSeverity.Info,
                    Inv($"thermal twin of {state.Zone.Id} calibrated on {model.CalibrationFrames} frames: inlet fit {model.InletFitRmseK:0.00} K rms, room fit {model.RoomFitRmseK:0.00} K rms, {spots.Count} hot spot(s)"),
                    new Dictionary<string, string>(StringComparer.Ordinal)
                    {
                        ["model"] = ModelName,
                        ["model_version"] = ModelVersion,
                        ["zone"] = state.Zone.Id,
                        ["quantity"] = "calibration",
                        ["inlet_fit_rmse_k"] = Num(model.InletFitRmseK),
                        ["room_fit_rmse_k"] = Num(model.RoomFitRmseK),
                        ["calibration_frames"] = Num(model.CalibrationFrames),
                        ["calibration_s"] = Num(Math.Round(clock.Elapsed.TotalSeconds, 3)),
                        ["hot_spots"] = Num(spots.Count),
                    }),
                ct).ConfigureAwait(false);
        }

        if (model.CalibrationFrames > 0 && nowMs - state.LastHotSpotMs >= (long)_options.HotSpotEvery.TotalMilliseconds)
        {
            state.LastHotSpotMs = nowMs;
            var spots = Twin.FindHotSpots(z);
            var counts = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var spot in spots)
            {
                counts[spot.Rack] = state.HotSpots.GetValueOrDefault(spot.Rack) + 1;
            }

            state.HotSpots = counts;

            // A rack is reported once per episode, when it has been a hot spot on HotSpotConfirmations checks in a row
            // (a transient after a load step is not a blocked tile).
            foreach (var spot in spots.Where(s => counts[s.Rack] == HotSpotConfirmations))
            {
                _hotSpotEvents.Add(1);
                await _events.PublishAsync(
                    new EdgeEvent(
                        EdgeEventKind.Anomaly,
                        spot.Rack + "/thermal_hot_spot",
                        Time(nowMs),
                        EventSeverity.Warning,
                        Inv($"hot spot: {spot.Rack} inlet {spot.InletC:0.0} °C is {spot.ResidualK:0.0} K above what the airflow explains ({spot.ModelledC:0.0} °C; residual spread {spot.SigmaK:0.00} K)"),
                        new Dictionary<string, string>(StringComparer.Ordinal)
                        {
                            ["model"] = ModelName,
                            ["model_version"] = ModelVersion,
                            ["zone"] = state.Zone.Id,
                            ["rack"] = spot.Rack,
                            ["inlet_c"] = Num(spot.InletC),
                            ["modelled_c"] = Num(spot.ModelledC),
                            ["residual_k"] = Num(spot.ResidualK),
                            ["sigma_k"] = Num(spot.SigmaK),
                        }),
                    ct).ConfigureAwait(false);
            }
        }
    }

    private double WindowSeconds(int z) => Twin.FrameCount(z) * _options.FrameInterval.TotalSeconds;

    private async Task PublishFailureAsync(int z, ZoneState state, ZoneFrame frame, long nowMs, CancellationToken ct)
    {
        var model = Twin.Model(z);
        var result = await Task.Run(
            () => CoolingFailureScenario.Run(model, frame, new CoolingFailureOptions
            {
                FailedUnits = state.FailedUnits,
                Horizon = _options.Horizon,
                NonCriticalRacks = _options.NonCriticalRacks,
                RackBiasK = state.Biases,
                MeasureLeads = _options.MitigationLeads,
            }),
            ct).ConfigureAwait(false);
        lock (_gate)
        {
            state.Active = result;
        }

        _predictions.Add(1);
        var first32 = result.Racks.Where(r => r.TimeTo32Seconds is not null).MinBy(r => r.TimeTo32Seconds);
        var first27 = result.Racks.Min(r => r.TimeTo27Seconds);
        var shutdown = result.TimeToThermalShutdownSeconds;
        var severity = (shutdown is { } sd && sd < 1800) || (first32?.TimeTo32Seconds is { } t32 && t32 < 900) ? EventSeverity.Critical
            : result.AffectedRacks.Count > 0 ? EventSeverity.Warning : EventSeverity.Info;
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["scenario"] = CoolingFailureScenario.Name,
            ["model"] = ModelName,
            ["model_version"] = ModelVersion,
            ["state"] = "active",
            ["zone"] = state.Zone.Id,
            ["failed_units"] = string.Join(',', result.FailedUnits),
            ["failure_age_s"] = Num(Math.Round(Math.Max(0, nowMs - state.FailureStartedMs) / 1000.0, 1)),
            ["failure_started"] = Time(state.FailureStartedMs).ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture),
            ["down_at_start"] = state.FailureStartKnown ? "false" : "true",
            ["horizon_s"] = Num(result.HorizonSeconds),
            // One name across the forecast families (maintenance, line state): where the forecast stops saying anything.
            ["horizon_end"] = WireTime.Instant(nowMs + (long)(result.HorizonSeconds * 1000)),
            ["shutdown_inlet_c"] = Num(result.ShutdownInletC),
            ["affected_racks"] = string.Join(',', result.AffectedRacks),
            ["affected_servers"] = Num(result.AffectedServers.Values.Sum()),
            ["affected_servers_by_rack"] = JsonSerializer.Serialize(result.AffectedServers, Json),
            ["mitigation_plan"] = JsonSerializer.Serialize(result.MitigationPlan, Json),
            ["racks"] = JsonSerializer.Serialize(result.Racks.Where(r => r.TimeTo27Seconds is not null), Json),
            ["model_fit_rmse_k"] = Num(result.ModelFitRmseK),
            ["calibrated"] = model.CalibrationFrames > 0 ? "true" : "false",
            ["model_basis"] = result.ModelBasis,
            ["assumptions"] = JsonSerializer.Serialize(result.Assumptions, Json),
            ["unreachable_units"] = string.Join(',', state.Unreachable),
            ["degraded"] = state.Unreachable.Count > 0 ? "true" : "false",
            ["failed_unit_count"] = Num(result.FailedUnits.Count),
        };
        if (shutdown is { } s)
        {
            attributes["time_to_thermal_shutdown_s"] = Num(s);
            attributes["time_to_thermal_shutdown_min"] = Num(Math.Round(s / 60, 2));
            attributes["time_to_shutdown_min"] = attributes["time_to_thermal_shutdown_min"];
            attributes["thermal_shutdown_at"] = Time(nowMs + (long)(s * 1000)).ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);
        }

        if (first32 is not null)
        {
            attributes["time_to_32c_s"] = Num(first32.TimeTo32Seconds!.Value);
            attributes["first_rack_32c"] = first32.Rack;
        }

        if (first27 is { } t27)
        {
            attributes["time_to_27c_s"] = Num(t27);
        }

        // What the step buys is said in words: a bare "(+72 min)" after the action read like a deadline.
        var plan = result.MitigationPlan.Count == 0 ? string.Empty
            : "; first step: " + result.MitigationPlan[0].Description
              + (result.MitigationPlan[0].PreventsLimit ? " (keeps every rack below the limit" + Deadline(result.MitigationPlan[0]) + ")" : Inv($" (buys {result.MitigationPlan[0].MinutesGained:0.#} min)"));
        if (result.MitigationPlan.Count > 1 && result.MitigationPlan[^1] is { Action: CoolingFailureScenario.AllMeasures } all)
        {
            // No step is enough alone: whether all of them together are is the operator's next question.
            plan += "; " + all.Description + (all.PreventsLimit ? ": keep every rack below the limit" + Deadline(all) : Inv($": buy {all.MinutesGained:0.#} min"));
        }

        var since = state.FailureStartKnown
            ? Inv($"stopped at {Time(state.FailureStartedMs):HH:mm:ss} UTC")
            : Inv($"stopped before {Time(state.FailureStartedMs):HH:mm:ss} UTC, already down when the agent started");
        var stopped = result.FailedUnits.Where(u => !state.Unreachable.Contains(u)).ToList();
        var units = (stopped.Count == 0 ? string.Empty : Inv($"{string.Join(", ", stopped)} {since}"))
            + (stopped.Count > 0 && state.Unreachable.Count > 0 ? "; " : string.Empty)
            // Told apart from a stop that was read: its state is not known, only that it stopped answering.
            + string.Join("; ", state.Unreachable.Select(u => Inv($"{u} UNREACHABLE since {Time(state.LastStateReadMs.GetValueOrDefault(u)):HH:mm:ss} UTC, taken as stopped")));
        var hottest = HottestFirst(result);
        var message = Inv($"cooling_failure in {state.Zone.Id} ({units}): ")
            + (state.Unreachable.Count > 0 ? "DEGRADED prediction (unit state unknown), " : string.Empty)
            // A model on typical figures gave "no rack reaches 27 °C" as plainly as a fitted one; only a NaN fit error hinted.
            + (result.ModelBasis == "defaults" ? Inv($"GUESS from typical figures ({state.Zone.Id} not fitted to its telemetry yet), ") : string.Empty)
            // The peak goes with the time: when the inlet levels off just above 32 °C the crossing time swings widely
            // between refreshes (38 to 97 min in the demo), and the peak says the case is marginal.
            + Crossing(result)
            // A time of day as well as a countdown: the countdown is stale by the time a woken operator reads it.
            + (shutdown is null ? string.Empty : Inv($", thermal shutdown in {Minutes(shutdown)} (at {Time(nowMs + (long)(shutdown.Value * 1000)):HH:mm} UTC)"))
            + Inv($", {result.AffectedRacks.Count} rack(s) affected")
            + (hottest.Length == 0 ? string.Empty : " (" + hottest + ")") + plan
            // Why it is a guess; a fitted model's lesser assumptions (no daily profile yet) are in the attribute only.
            + (result.ModelBasis == "defaults" && result.Assumptions.Count > 0 ? " [assumed: " + string.Join("; ", result.Assumptions) + "]" : string.Empty);
        await _events.PublishAsync(new EdgeEvent(EdgeEventKind.Prediction, state.Zone.Id + "/cooling_failure", Time(nowMs), severity, message, attributes), ct).ConfigureAwait(false);
    }

    private async Task PublishResolvedAsync(ZoneState state, long nowMs, CancellationToken ct)
    {
        var units = string.Join(',', state.FailedUnits);
        state.FailedUnits = [];
        state.Unreachable = [];
        state.Resumed = false;
        state.Biases = null;
        lock (_gate)
        {
            state.Active = null;
        }

        LogFailureCleared(_logger, units, state.Zone.Id);
        await _events.PublishAsync(
            new EdgeEvent(
                EdgeEventKind.Prediction,
                state.Zone.Id + "/cooling_failure",
                Time(nowMs),
                EventSeverity.Info,
                $"cooling_failure in {state.Zone.Id} resolved: {units} running again",
                new Dictionary<string, string>(StringComparer.Ordinal)
                {
                    ["scenario"] = CoolingFailureScenario.Name,
                    ["model"] = ModelName,
                    ["model_version"] = ModelVersion,
                    ["state"] = "resolved",
                    ["zone"] = state.Zone.Id,
                    ["failed_units"] = units,
                }),
            ct).ConfigureAwait(false);
    }

    /// <summary>
    /// The affected racks, worst first (highest predicted peak), each with its inlet now and its peak: the operator
    /// knew how many racks but not which, nor how hot they are now. At most five, the rest counted.
    /// </summary>
    private static string HottestFirst(CoolingFailureResult result)
    {
        var affected = result.Racks.Where(r => result.AffectedRacks.Contains(r.Rack)).OrderByDescending(r => r.PeakInletC).ToList();
        var shown = affected.Take(5).Select(r => Inv($"{r.Rack} {r.InletNowC:0.0} °C now, peak {r.PeakInletC:0.0} °C"));
        return string.Join("; ", shown) + (affected.Count > 5 ? Inv($"; {affected.Count - 5} more") : string.Empty);
    }

    /// <summary>
    /// The first rack to reach 32 °C, with the peak it comes from. A crossing only the upper band of the forecast
    /// reaches is said as possible, next to the expected peak: "A01 reaches 32 °C in 103.5 min (peak 31.6 °C …)" read as
    /// a contradiction.
    /// </summary>
    internal static string Crossing(CoolingFailureResult result)
    {
        if (result.Racks.Where(r => r.TimeTo32Seconds is not null).MinBy(r => r.TimeTo32Seconds) is not { } first32)
        {
            return "no rack predicted to reach 32 °C" + First27(result);
        }

        var horizon = Inv($"within {result.HorizonSeconds / 60:0} min");
        return first32.TimeTo32Basis == "upper_band"
            ? Inv($"{first32.Rack} may reach 32 °C in {Minutes(first32.TimeTo32Seconds)} (upper band of the forecast; expected peak {first32.PeakInletC:0.0} °C {horizon})")
            : Inv($"{first32.Rack} reaches 32 °C in {Minutes(first32.TimeTo32Seconds)} (peak {first32.PeakInletC:0.0} °C {horizon})");
    }

    /// <summary>
    /// When no rack reaches 32 °C, the first to pass the recommended 27 °C: "0 rack(s) affected" alone read as all clear
    /// while the inlet alerts were minutes away. A rack already above it says so ("reaches 27 °C in 0 s" did not).
    /// </summary>
    private static string First27(CoolingFailureResult result) =>
        result.Racks.Where(r => r.TimeTo27Seconds is not null).MinBy(r => r.TimeTo27Seconds) is { } r
            ? r.TimeTo27Seconds <= 0 || r.InletNowC >= 27
                ? Inv($" ({r.Rack} {r.InletNowC:0.0} °C now, above 27 °C already, peak {r.PeakInletC:0.0} °C)")
                : Inv($" ({r.Rack} {r.InletNowC:0.0} °C now reaches 27 °C in {Minutes(r.TimeTo27Seconds)}, peak {r.PeakInletC:0.0} °C)")
            : string.Empty;

    private static string Minutes(double? seconds) => seconds is { } s ? s < 120 ? Inv($"{s:0} s") : Inv($"{s / 60:0.0} min") : "-";

    private static DateTimeOffset Time(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    // Attribute numbers are the wire's (WireNumber: 12 significant digits); "R" sent fit errors as 0.514320195239356.
    private static string Num(double v) => WireNumber.Format(v);

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    /// <summary>" if taken within 8.5 min": how long a preventing step may wait, the operator's deadline.</summary>
    private static string Deadline(MitigationStep step) => CoolingFailureScenario.Deadline(step);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cooling failure in {Zone}: {Units} down; {Unreachable} unreachable (no state reading for {Seconds} s while the site still reports), taken as stopped; publishing degraded live cooling_failure predictions")]
    private static partial void LogFailureUnreachable(ILogger logger, string units, string zone, string unreachable, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cooling failure in {Zone}: {Units} stopped; publishing live cooling_failure predictions")]
    private static partial void LogFailureDetected(ILogger logger, string units, string zone);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cooling failure in {Zone}: {Units} already stopped when the agent started (since unknown); publishing live cooling_failure predictions")]
    private static partial void LogFailureFoundAtStart(ILogger logger, string units, string zone);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cooling failure in {Zone} continues after the agent's restart: {Units} stopped since {Since:u}; publishing live cooling_failure predictions")]
    private static partial void LogFailureContinues(ILogger logger, string zone, string units, DateTimeOffset since);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Thermal twin state {Path} could not be read; starting without it (units not yet seen running, no failure in progress)")]
    private static partial void LogStateUnreadable(ILogger logger, string path, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Thermal twin state {Path} could not be written; a restart will not know the units seen running or the failure in progress")]
    private static partial void LogStateUnwritable(ILogger logger, string path, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cooling failure in {Zone} changed: stopped now {Stopped}, running again {Back}; down: {Units}")]
    private static partial void LogFailureChanged(ILogger logger, string zone, string stopped, string back, string units);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cooling failure in {Zone} resolved: {Units} running again")]
    private static partial void LogFailureCleared(ILogger logger, string units, string zone);

    [LoggerMessage(Level = LogLevel.Information, Message = "Thermal twin of {Zone} calibrated on {Frames} frames: inlet fit {InletRmse:0.00} K, room fit {RoomRmse:0.00} K, {Seconds:0.00} s")]
    private static partial void LogCalibrated(ILogger logger, string zone, int frames, double inletRmse, double roomRmse, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Thermal twin: rack {Rack} power reads {Kw} kW, implausible (at or below 0, or above {LimitKw} kW = 3 x its {BudgetKw} kW budget); its last plausible power is held for the model and the forecasts")]
    private static partial void LogPowerImplausible(ILogger logger, string rack, double kw, double budgetKw, double limitKw);

    [LoggerMessage(Level = LogLevel.Information, Message = "Thermal twin: rack {Rack} power plausible again ({Kw} kW)")]
    private static partial void LogPowerPlausibleAgain(ILogger logger, string rack, double kw);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Thermal twin: {What}")]
    private static partial void LogPowerUnitUnusable(ILogger logger, string what);

    [LoggerMessage(Level = LogLevel.Error, Message = "Thermal twin of {Zone}: calibration or prediction failed")]
    private static partial void LogWorkerFailed(ILogger logger, string zone, Exception exception);

    private sealed class ZoneState(ThermalZone zone)
    {
        public ThermalZone Zone { get; } = zone;

        /// <summary>Units seen running: in this run's state readings, at the end of the warm-start history, or before a restart.</summary>
        public bool[] SeenRunning { get; } = new bool[zone.Units.Count];

        /// <summary>Units seen running in this run's state readings (a stop of one of them is seen as it happens).</summary>
        public bool[] RunningThisRun { get; } = new bool[zone.Units.Count];

        /// <summary>False when the failed units were already stopped at their first reading: the start is not known.</summary>
        public bool FailureStartKnown { get; set; }

        /// <summary>The failure in progress was carried over a restart and not yet checked against this run's readings.</summary>
        public bool Resumed { get; set; }

        /// <summary>Failed units carried over a restart whose state has not been read yet in this run (taken as still down).</summary>
        public HashSet<string> Carried { get; } = new(StringComparer.Ordinal);

        public List<string> FailedUnits { get; set; } = [];

        /// <summary>Failed units that were not read stopped but stopped answering (taken as stopped; the prediction is degraded).</summary>
        public List<string> Unreachable { get; set; } = [];

        /// <summary>When each unreachable unit's state was last read (its last "running").</summary>
        public Dictionary<string, long> LastStateReadMs { get; } = new(StringComparer.Ordinal);

        public double[]? Biases { get; set; }

        public ZoneFrame? LastHealthy { get; set; }

        public long FailureStartedMs { get; set; }

        public long LastRefreshMs { get; set; }

        public long LastCalibrationMs { get; set; }

        public long LastHotSpotMs { get; set; }

        public bool WarmStarted { get; set; }

        /// <summary>Racks flagged on the latest hot-spot check, with how many checks in a row.</summary>
        public Dictionary<string, int> HotSpots { get; set; } = new(StringComparer.Ordinal);

        public CoolingFailureResult? Active { get; set; }

        /// <summary>Smoothed (normal operation) or observed (failure) room temperature; NaN before the first reading.</summary>
        public double RoomC { get; set; } = double.NaN;

        public long RoomMs { get; set; }

        public int? UnitIndex(string id)
        {
            for (var j = 0; j < Zone.Units.Count; j++)
            {
                if (string.Equals(Zone.Units[j].Id, id, StringComparison.Ordinal))
                {
                    return j;
                }
            }

            return null;
        }

        /// <summary>
        /// Moves the zone's sample times by <paramref name="ms"/> after a backward clock step: the calibration, hot-spot and
        /// refresh schedules would otherwise wait for the clock to catch up, and a failure's start (stamped ahead by the
        /// step) would give a negative age.
        /// </summary>
        public void Shift(long ms)
        {
            LastCalibrationMs += ms;
            LastHotSpotMs += ms;
            LastRefreshMs += ms;
            RoomMs += ms;
            if (FailedUnits.Count > 0)
            {
                FailureStartedMs += ms;
            }
        }

        /// <summary>Each rack's load, smoothed over time since the failure began (NaN until its first plausible reading).</summary>
        private double[]? _loadKw;

        private long _loadMs;

        private int _loadUpdates;

        /// <summary>Starts the load's smoothing afresh (a failure begins): nothing from before it is averaged in.</summary>
        public void ResetLoad() => _loadKw = null;

        /// <summary>
        /// Follows each rack's power: the mean of its readings at each tick since <see cref="ResetLoad"/> (a reading counts as
        /// often as it held), turning into an exponential average with time constant <paramref name="tau"/> once that weighs
        /// a new reading more. A rack without a reading keeps its value (the frame then holds NaN, and the forecast its own fallback).
        /// Only during a failure: smoothed before it, a failure in the agent's first minute started from the partial sums of
        /// racks whose second feed had not reported yet (32 °C forecast in 178 s; the simulator: 108 s).
        /// </summary>
        public void TrackLoad(ZoneFrame frame, long nowMs, double tau)
        {
            var racks = frame.RackPowerKw.Length;
            if (_loadKw is null || _loadKw.Length != racks)
            {
                _loadKw = new double[racks];
                Array.Fill(_loadKw, double.NaN);
                _loadMs = nowMs;
                _loadUpdates = 0;
            }

            _loadUpdates++;
            var weight = Math.Clamp(Math.Max(Math.Max(0, nowMs - _loadMs) / 1000.0 / tau, 1.0 / _loadUpdates), 0, 1);
            for (var i = 0; i < racks; i++)
            {
                var kw = frame.RackPowerKw[i];
                if (!double.IsFinite(kw))
                {
                    continue;
                }

                _loadKw[i] = double.IsNaN(_loadKw[i]) ? kw : _loadKw[i] + ((kw - _loadKw[i]) * weight);
            }

            _loadMs = nowMs;
        }

        /// <summary>Puts the smoothed load into <paramref name="frame"/> for the racks that have a reading in it.</summary>
        public void SmoothedLoad(ZoneFrame frame)
        {
            if (_loadKw is null || _loadKw.Length != frame.RackPowerKw.Length)
            {
                return;
            }

            for (var i = 0; i < _loadKw.Length; i++)
            {
                if (double.IsFinite(frame.RackPowerKw[i]) && !double.IsNaN(_loadKw[i]))
                {
                    frame.RackPowerKw[i] = _loadKw[i];
                }
            }
        }

        public void TrackRoom(double measured, long nowMs, double tau)
        {
            if (!double.IsNaN(measured))
            {
                RoomC = double.IsNaN(RoomC) ? measured : RoomC + ((measured - RoomC) * Math.Min(1, Math.Max(0, (nowMs - RoomMs) / 1000.0) / tau));
            }

            RoomMs = nowMs;
        }
    }
}
