using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace EdgeTwin.Twin.Thermal;

/// <summary>
/// The live thermal twin of a site: keeps a sliding window of frames per zone (sample-and-hold between polls),
/// recalibrates on demand (the agent does it periodically, off the sample path), and exposes its fit error and hot
/// spots as metrics (meter <c>EdgeTwin.Twin.Thermal</c>):
/// <c>edgetwin.twin.thermal.inlet_fit_rmse</c> and <c>edgetwin.twin.thermal.room_fit_rmse</c> (K, per zone),
/// <c>edgetwin.twin.thermal.hot_spots</c> (racks, per zone), <c>edgetwin.twin.thermal.calibration.duration</c> (s).
/// Thread safety: <see cref="Observe"/> and <see cref="Recalibrate"/> may run on different threads; models are swapped atomically.
/// </summary>
public sealed class ThermalTwin : IDisposable
{
    public const string MeterName = "EdgeTwin.Twin.Thermal";

    private readonly Lock _gate = new();
    private readonly Queue<ZoneFrame>[] _windows;
    private readonly ZoneFrame?[] _last;
    private readonly ZoneThermalModel[] _models;
    private readonly int[] _hotSpots;
    private readonly Meter _meter;
    private readonly Histogram<double> _calibrationSeconds;

    public ThermalTwin(IReadOnlyList<ThermalZone> zones, ThermalSettings? settings = null, TimeSpan? window = null, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(zones);
        Zones = zones;
        Settings = settings ?? new ThermalSettings();
        Window = window ?? TimeSpan.FromHours(24);
        _windows = [.. zones.Select(_ => new Queue<ZoneFrame>())];
        _last = new ZoneFrame?[zones.Count];
        _models = [.. zones.Select(z => ThermalCalibrator.Prior(z, Settings))];
        _hotSpots = new int[zones.Count];
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _calibrationSeconds = _meter.CreateHistogram<double>("edgetwin.twin.thermal.calibration.duration", "s", "Duration of a batch calibration of one zone.");
        _meter.CreateObservableGauge("edgetwin.twin.thermal.inlet_fit_rmse", () => Gauge(m => m.InletFitRmseK), "K", "RMS error of the rack inlet fit.");
        _meter.CreateObservableGauge("edgetwin.twin.thermal.room_fit_rmse", () => Gauge(m => m.RoomFitRmseK), "K", "RMS error of the room temperature fit.");
        _meter.CreateObservableGauge("edgetwin.twin.thermal.hot_spots", HotSpotGauge, "{rack}", "Racks hotter than the model explains.");
    }

    public IReadOnlyList<ThermalZone> Zones { get; }

    public ThermalSettings Settings { get; }

    public TimeSpan Window { get; }

    /// <summary>The calibrated model of a zone (the prior until the first calibration).</summary>
    public ZoneThermalModel Model(int zone)
    {
        lock (_gate)
        {
            return _models[zone];
        }
    }

    /// <summary>The latest frame of a zone (readings held between polls), or null before the first.</summary>
    public ZoneFrame? Latest(int zone)
    {
        lock (_gate)
        {
            return _last[zone]?.Clone();
        }
    }

    /// <summary>
    /// The latest frame of a zone with each rack's power the median of the rack's readings over the frames of the last
    /// <paramref name="seconds"/> (the latest included, one taken exactly that long before it not), or null before the
    /// first frame. What-if questions start from it: near a unit's capacity the predicted peak follows the room's load
    /// steeply, and answered from the last reading the same question moved with each poll's swing; a frame summed while a
    /// rack's second feed had not reported yet (the agent's first poll) is one of several in the median and does not
    /// carry. A load step shows after half the span.
    /// </summary>
    public ZoneFrame? LatestWithSteadyLoad(int zone, double seconds)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(seconds);
        ZoneFrame latest;
        List<ZoneFrame> recent = [];
        lock (_gate)
        {
            if (_last[zone] is not { } last)
            {
                return null;
            }

            latest = last.Clone();
            foreach (var f in _windows[zone])
            {
                if (f.TimeSeconds > last.TimeSeconds - seconds)
                {
                    recent.Add(f);
                }
            }
        }

        var values = new double[recent.Count];
        for (var i = 0; i < latest.RackPowerKw.Length; i++)
        {
            var n = 0;
            foreach (var f in recent)
            {
                if (i < f.RackPowerKw.Length && double.IsFinite(f.RackPowerKw[i]))
                {
                    values[n++] = f.RackPowerKw[i];
                }
            }

            if (n == 0 || !double.IsFinite(latest.RackPowerKw[i]))
            {
                continue;
            }

            var span = values.AsSpan(0, n);
            span.Sort();
            latest.RackPowerKw[i] = n % 2 == 1 ? span[n / 2] : (span[(n / 2) - 1] + span[n / 2]) / 2;
        }

        return latest;
    }

    public int FrameCount(int zone)
    {
        lock (_gate)
        {
            return _windows[zone].Count;
        }
    }

    /// <summary>The frames of a zone's window, oldest first (a copy of the list; frames are not changed once added).</summary>
    public IReadOnlyList<ZoneFrame> WindowFrames(int zone)
    {
        lock (_gate)
        {
            return [.. _windows[zone]];
        }
    }

    /// <summary>
    /// Adds a frame (missing readings NaN; they are held from the previous frame). Implausible rack power readings are
    /// dropped first (<see cref="ZoneFrame.DropImplausiblePower"/>) and so held too: the window the calibration fits holds none.
    /// </summary>
    public void Observe(int zone, ZoneFrame frame)
    {
        ArgumentNullException.ThrowIfNull(frame);
        frame.DropImplausiblePower(Zones[zone].Racks);
        lock (_gate)
        {
            if (_last[zone] is { } previous)
            {
                if (frame.TimeSeconds <= previous.TimeSeconds)
                {
                    return;
                }

                frame.FillFrom(previous);
            }

            var q = _windows[zone];
            q.Enqueue(frame);
            while (q.Count > 0 && frame.TimeSeconds - q.Peek().TimeSeconds > Window.TotalSeconds)
            {
                q.Dequeue();
            }

            _last[zone] = frame;
        }
    }

    /// <summary>
    /// Moves a zone's window (and latest frame) by <paramref name="seconds"/>: after the wall clock stepped back, the frames
    /// stamped before the step were ahead by it, and <see cref="Observe"/> dropped every frame until the clock caught up
    /// with them (no frame, no hot spot, no failure forecast for the size of the step). Moved, the window stays one stretch
    /// of time that the calibration (its time-of-day profile, its rates) can use. Frames are copied: lists handed out by
    /// <see cref="WindowFrames"/> keep theirs.
    /// </summary>
    public void Shift(int zone, double seconds)
    {
        lock (_gate)
        {
            var q = _windows[zone];
            var moved = new Queue<ZoneFrame>(q.Count);
            foreach (var f in q)
            {
                var copy = f.Clone();
                copy.TimeSeconds += seconds;
                moved.Enqueue(copy);
            }

            _windows[zone] = moved;
            if (_last[zone] is { } last)
            {
                // The latest frame is the window's newest (Observe enqueues it; only the oldest leave).
                var copy = last.Clone();
                copy.TimeSeconds += seconds;
                _last[zone] = moved.Count > 0 ? moved.Last() : copy;
            }
        }
    }

    /// <summary>Calibrates a zone from its window and swaps the model in; returns it.</summary>
    public ZoneThermalModel Recalibrate(int zone)
    {
        ZoneFrame[] frames;
        lock (_gate)
        {
            frames = [.. _windows[zone]];
        }

        var clock = Stopwatch.StartNew();
        var model = ThermalCalibrator.Calibrate(Zones[zone], frames, Settings);
        _calibrationSeconds.Record(clock.Elapsed.TotalSeconds, new KeyValuePair<string, object?>("zone", Zones[zone].Id));
        lock (_gate)
        {
            _models[zone] = model;
            _hotSpots[zone] = _last[zone] is { } last ? HotSpots.Find(model, last, Settings.HotSpotSigma).Count : 0;
        }

        return model;
    }

    /// <summary>Hot spots of a zone on its latest frame.</summary>
    public IReadOnlyList<HotSpot> FindHotSpots(int zone)
    {
        ZoneThermalModel model;
        ZoneFrame? last;
        lock (_gate)
        {
            model = _models[zone];
            last = _last[zone]?.Clone();
        }

        var spots = last is null ? [] : HotSpots.Find(model, last, Settings.HotSpotSigma);
        lock (_gate)
        {
            _hotSpots[zone] = spots.Count;
        }

        return spots;
    }

    public void Dispose() => _meter.Dispose();

    private IEnumerable<Measurement<double>> Gauge(Func<ZoneThermalModel, double> value)
    {
        lock (_gate)
        {
            return [.. _models.Where(m => m.CalibrationFrames > 0).Select(m => new Measurement<double>(value(m), new KeyValuePair<string, object?>("zone", m.Zone.Id)))];
        }
    }

    private IEnumerable<Measurement<int>> HotSpotGauge()
    {
        lock (_gate)
        {
            return [.. _hotSpots.Select((n, z) => new Measurement<int>(n, new KeyValuePair<string, object?>("zone", Zones[z].Id)))];
        }
    }
}
