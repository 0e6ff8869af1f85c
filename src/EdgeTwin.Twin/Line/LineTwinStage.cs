using System.Diagnostics.Metrics;
using System.Globalization;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Samples;
using EdgeTwin.Twin.Line.Learning;
using EdgeTwin.Twin.Line.Oee;
using EdgeTwin.Twin.Line.Quality;
using EdgeTwin.Twin.Line.Scenarios;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Twin.Line;

/// <summary>
/// The live line twin in the sample pipeline: machine state words, stack-light lamps and part counters
/// (bound by device and metric from the <c>line:</c> section) feed per-machine and line OEE trackers and
/// the active-period bottleneck detector; every <c>publishEvery</c> of sample time it publishes the
/// twin state (OEE, losses, bottleneck, end-of-shift forecast with its interval) as a Prediction event.
/// Trackers restart at each shift start of the calendar. Per sample: an array lookup and an O(1) update.
/// </summary>
public sealed partial class LineTwinStage : ISampleStage, IBookedStateSink
{
    /// <summary>The model in attribute <c>model</c> of the line twin's events (consumer audit F7: they had none).</summary>
    public const string ModelName = "line";

    /// <summary>Version of the line model (OEE books, bottleneck, throughput forecast, quality drift) in <c>model_version</c>; bumped when its figures change meaning.</summary>
    public const string ModelVersion = "1.0";

    private enum Signal : byte { None, State, Good, Reject, Red, Amber, Green, Input, BufferLevel }

    // Input: index of the process value in the station's quality model inputs. BufferLevel: Station is the buffer's index.
    private readonly record struct Binding(Signal Kind, int Station, int Input = 0);

    /// <summary>A measured buffer level older than this is not used (the forecast assumes the buffer half full again).</summary>
    private const long BufferLevelStaleMs = 5 * 60_000;

    /// <summary>A station without a reading for this long gives no data (as long as its OEE books turn its state Unknown).</summary>
    private const long SilentAfterMs = (long)(OeeTracker.DefaultStaleAfterSeconds * 1000);

    /// <summary>The longest gap between a machine's readings over which its state is held (the OEE books' staleAfter).</summary>
    public static TimeSpan HoldLimit { get; } = TimeSpan.FromMilliseconds(SilentAfterMs);

    /// <summary>Level of the forecast's prediction interval (p5–p95): LineScenarios' default confidence.</summary>
    private const double ForecastLevel = 0.9;

    private static readonly Meter Meter = new("EdgeTwin.Twin.Line");
    private static readonly Counter<long> StateChanges = Meter.CreateCounter<long>("edgetwin.line.state_samples", description: "Machine state readings applied to the line twin");
    private static readonly Counter<long> Publishes = Meter.CreateCounter<long>("edgetwin.line.publishes", description: "Line twin state messages published");
    private static readonly Counter<long> BufferCountsLost = Meter.CreateCounter<long>("edgetwin.line.buffer_counts_lost", description: "Counted buffer levels made unknown by a part counter that reset or jumped");
    private static readonly Counter<long> QualityAlerts = Meter.CreateCounter<long>("edgetwin.line.quality_alerts", description: "Predicted-reject warnings published (parts likely to fail inspection)");

    private readonly LineTwinConfig _config;
    private readonly SeriesRegistry _registry;
    private readonly IEventSink _events;
    private readonly ILogger _logger;
    private readonly long _publishEveryMs;
    private readonly OeeTracker[] _oee;
    private readonly StationLearner[] _learners;
    private readonly long _forecastEveryMs;
    private long _lastForecastMs = long.MinValue;
    private ShiftForecast? _forecast;
    private LineSpec _learned;
    private LineScenarioBasis? _basis;
    private LineOeeTracker _lineOee;
    private readonly int _output;
    private readonly string _constraintName; // "S3" or, for parallel machines, "S3+S3b"
    private readonly StackLightDecoder?[] _lights;
    private readonly StateReading[] _readings = new StateReading[4];
    private ActivePeriodBottleneck _bottleneck;
    private Binding[][] _binding = new Binding[64][];
    private readonly StationQuality?[] _quality;
    private readonly bool[] _qualityAlert;
    private readonly bool[] _qualityResolved; // the predicted rate fell back after a warning: its episode is over
    private bool _anyQualityAlert;
    private readonly bool[] _hasSignals; // a station without any signal configured can never give its figures
    private readonly bool[] _silentWarned; // one warning per silence episode, not one per publish
    private readonly bool[] _inputsMissingWarned; // one warning per episode of quality inputs missing
    private readonly long[] _lastSignalMs; // last state, lamp or counter reading per station (the calendar's bookings are not readings)
    private long _lastPublishMs;
    private bool[]? _awaitingAfterRestore; // stations with signals not read yet since the books were restored
    private long _firstAfterRestoreMs = long.MinValue;
    private DateTime _shiftStart = DateTime.MinValue;
    // The shift start found for a reading, and the instants [from, until) it holds for (up to the next start): the lookup
    // converts a dozen wall-clock times per reading otherwise. A pure memo of LineTwinConfig.ShiftStart, never stale.
    private DateTime _startFound;
    private long _startFoundFromMs = long.MaxValue, _startFoundUntilMs = long.MinValue;
    private long _booksFromMs; // where this shift's books start: the shift's start, or the first reading after the agent started
    private IReadOnlyList<PlannedWindow> _plannedStops = [];
    private Dictionary<string, string>? _shiftReport; // the shift that just ended, until published
    private PlannedStopCalendar _calendar; // the shift's planned stops between the signals and the OEE books
    private readonly int[] _bufferLevel;
    private readonly long[] _bufferLevelMs; // 0 = never measured
    // Buffers without a level reading, counted from the stations' part counters and anchored by starved/blocked states.
    // Not saved over restarts (CountedBuffers says why): a restart counts them unknown until the next anchor.
    private readonly CountedBuffers _counted;
    // One reading may feed several signals: an ambient value in two stations' quality models, a downstream inspection's
    // reject counter for two stations (with one binding per reading, the station configured last took it from the others).
    private readonly Dictionary<(string Device, string Metric), List<Binding>> _wanted = new();
    private readonly SampleClock _clock = new();

    /// <param name="forecastEvery">How often the end-of-shift forecast (replications of the rest of the shift) is recomputed; published states in between carry the last one.</param>
    public LineTwinStage(LineTwinConfig config, SeriesRegistry registry, IEventSink events, ILogger<LineTwinStage> logger, TimeSpan? publishEvery = null, TimeSpan? forecastEvery = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        TimeZone = config.TimeZone;
        _registry = registry ?? throw new ArgumentNullException(nameof(registry));
        _events = events ?? throw new ArgumentNullException(nameof(events));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        _publishEveryMs = (long)(publishEvery ?? TimeSpan.FromMinutes(1)).TotalMilliseconds;
        var st = config.Spec.Stations;
        _oee = st.Select((_, i) => NewOeeTracker(i)).ToArray();
        _learners = st.Select((_, i) => NewLearner(i)).ToArray();
        _forecastEveryMs = (long)(forecastEvery ?? TimeSpan.FromMinutes(1)).TotalMilliseconds;
        _learned = config.Spec;
        _output = config.Spec.StationIndex(config.OutputStation!);
        // The line's ideal rate is its slowest stage's (parallel machines add their rates), the same function as `line oee`.
        _lineOee = NewLineOee();
        _constraintName = string.Join('+', _lineOee.Constraint.Stations.Select(i => st[i].Id));
        _lights = config.Stations.Select((_, i) => NewLight(i)).ToArray();
        _bottleneck = NewBottleneck();
        _calendar = new PlannedStopCalendar(st.Count, this);
        _bufferLevel = new int[config.Spec.Buffers.Count];
        _bufferLevelMs = new long[config.Spec.Buffers.Count];
        _counted = new CountedBuffers(config.Spec,
            [.. config.Stations.Select(s => s.Good?.CounterBits ?? 0)], [.. config.Stations.Select(s => s.Reject?.CounterBits ?? 0)]);
        foreach (var (buffer, level) in config.BufferLevels) Want((level.Device, level.Metric), new(Signal.BufferLevel, config.Spec.BufferIndex(buffer)));
        // Each stage learns on its own copy of the model file (validated when the config was read).
        _quality = config.Stations.Select((_, i) => NewQuality(i)).ToArray();
        _qualityAlert = new bool[config.Stations.Count];
        _qualityResolved = new bool[config.Stations.Count];
        _hasSignals = config.Stations.Select(s => s.State is not null || s.Good is not null || s.Reject is not null || s.StackLight is not null).ToArray();
        _silentWarned = new bool[config.Stations.Count];
        _inputsMissingWarned = new bool[config.Stations.Count];
        _lastSignalMs = Enumerable.Repeat(long.MinValue, config.Stations.Count).ToArray();
        for (int i = 0; i < config.Stations.Count; i++)
        {
            var s = config.Stations[i];
            if (s.Quality is { } q)
                for (int k = 0; k < q.Inputs.Count; k++) Want((q.Inputs[k].Device, q.Inputs[k].Metric), new(Signal.Input, i, k));
            if (s.State is { } sr) Want((sr.Device, sr.Metric), new(Signal.State, i));
            if (s.Good is { } g) Want((g.Device, g.Metric), new(Signal.Good, i));
            if (s.Reject is { } r) Want((r.Device, r.Metric), new(Signal.Reject, i));
            // Stack-light lamps: any metric of the lamp's device with the lamp role (profile generic-stack-light, metric "lamp").
            if (s.StackLight?.Red is { } red) Want((red, "lamp"), new(Signal.Red, i));
            if (s.StackLight?.Amber is { } amber) Want((amber, "lamp"), new(Signal.Amber, i));
            if (s.StackLight?.Green is { } green) Want((green, "lamp"), new(Signal.Green, i));
        }

        FingerprintFreshState();
    }

    public string Name => "line-twin";

    private void Want((string Device, string Metric) key, Binding binding)
    {
        if (!_wanted.TryGetValue(key, out var list)) _wanted[key] = list = [];
        list.Add(binding);
    }

    public ValueTask ProcessAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken)
    {
        long last = 0;
        foreach (var s in samples.Span)
        {
            var bindings = Bind(s.Series);
            if (bindings.Length == 0) continue;
            if (!s.IsGood)
            {
                // Missing/bad readings: the trackers' staleness handles the gap. A process value read out of range, stuck
                // or in error is not known: the next parts are scored with it missing, not with the last good value.
                if (s.Quality is SampleQuality.OutOfRange or SampleQuality.Stuck or SampleQuality.DeviceError)
                    foreach (var b in bindings)
                        if (b.Kind == Signal.Input) _quality[b.Station]!.SetMissing(b.Input);
                continue;
            }
            if (_clock.Observe(s.TimestampUnixMs) is var step and > 0) OnClockStep(step, s.TimestampUnixMs);
            foreach (var b in bindings)
            {
                if (b.Kind == Signal.BufferLevel)
                {
                    // A level reading is where the line stands, not a machine event: it neither starts the books nor the clock.
                    _bufferLevel[b.Station] = (int)Math.Clamp(Math.Round(s.Value), 0, _config.Spec.Buffers[b.Station].Capacity);
                    _bufferLevelMs[b.Station] = s.TimestampUnixMs;
                    continue;
                }
                if (b.Kind == Signal.Input)
                {
                    // Process values only set the inputs of the next parts; they do not start the books or the clock.
                    _quality[b.Station]!.SetInput(b.Input, s.Value, s.TimestampUnixMs);
                    continue;
                }
                if (_lastPublishMs == 0) _lastPublishMs = s.TimestampUnixMs; // first publish one period after the first reading
                RollShift(s.TimestampUnixMs);
                Apply(b.Kind, b.Station, s);
                if (s.TimestampUnixMs > _lastSignalMs[b.Station]) _lastSignalMs[b.Station] = s.TimestampUnixMs;
                if (_awaitingAfterRestore is { } awaiting)
                {
                    awaiting[b.Station] = false;
                    if (_firstAfterRestoreMs == long.MinValue) _firstAfterRestoreMs = s.TimestampUnixMs;
                }
                last = Math.Max(last, s.TimestampUnixMs);
            }
        }
        if (last > 0)
        {
            // Lamp holds that ran out while no lamp of that tower reported (a steady tower reports only its keep-alives).
            for (int i = 0; i < _lights.Length; i++)
                if (_lights[i] is { } light) Apply(i, light.Advance(last, _readings));
            // Planned stops begin and end on the calendar, whether or not the station reported at that moment.
            _calendar.Advance(last);
        }
        bool publish = last > 0 && last - _lastPublishMs >= _publishEveryMs && !HoldingAfterRestore(last);
        if (publish) _lastPublishMs = last;
        if (!publish && !_anyQualityAlert && _shiftReport is null) return ValueTask.CompletedTask;
        return PublishAsync(last, publish, cancellationToken);
    }

    private Binding[] Bind(SeriesId id)
    {
        int i = id.Value;
        if (i < 0) return [];
        if (i >= _binding.Length) Array.Resize(ref _binding, Math.Max(i + 1, _binding.Length * 2));
        if (_binding[i] is not { } b)
        {
            var d = _registry[id];
            _binding[i] = b = _wanted.TryGetValue((d.DeviceId, d.Metric), out var list) ? [.. list] : [];
        }
        return b;
    }

    private void Apply(Signal kind, int station, Sample s)
    {
        long ms = s.TimestampUnixMs;
        switch (kind)
        {
            case Signal.State:
                var map = _config.Stations[station].State!.StateMap;
                var state = map is not null && map.TryGetValue((long)s.Value, out var m) ? m : MachineState.Unknown;
                SetState(station, ms, state);
                break;
            case Signal.Red or Signal.Amber or Signal.Green:
                Apply(station, _lights[station]!.Apply(ms, (StackLamp)(kind - Signal.Red), s.Value != 0, _readings));
                break;
            case Signal.Good:
                CountBuffers(station, reject: false, s);
                var good = _oee[station].OnGoodCounter(ms, (ulong)Math.Max(0, s.Value));
                _learners[station].OnParts(ms, good);
                // Good parts without the reject counter (on another PLC, not reporting, or none at all) would teach the model that every part passes.
                if (_config.Stations[station].Reject is not null && !RejectsSilent(station, ms))
                {
                    _learners[station].OnInspected(good, rejected: false);
                    OnQualityParts(station, good, rejected: false, ms);
                }
                if (station == _output) _lineOee.OnGoodCounter(ms, (ulong)Math.Max(0, s.Value));
                break;
            case Signal.Reject:
                CountBuffers(station, reject: true, s);
                var rejects = _oee[station].OnRejectCounter(ms, (ulong)Math.Max(0, s.Value));
                _learners[station].OnParts(ms, rejects);
                _learners[station].OnInspected(rejects, rejected: true);
                OnQualityParts(station, rejects, rejected: true, ms);
                if (station == _output) _lineOee.OnRejectCounter(ms, (ulong)Math.Max(0, s.Value));
                break;
        }
    }

    private void CountBuffers(int station, bool reject, Sample s)
    {
        int lost = _counted.OnCounter(station, reject, s.TimestampUnixMs, (ulong)Math.Max(0, s.Value), out var why);
        if (lost < 0) return;
        BufferCountsLost.Add(1);
        var spec = _config.Spec;
        var b = spec.Buffers[lost];
        string counter = $"{spec.Stations[station].Id}'s {(reject ? "reject" : "good")} counter {(why == BufferCountLoss.Reset ? "went back (a reset)" : "jumped more than the station can have made")}";
        string anchors = string.Join(" or ", spec.Stations.Where(x => x.Inputs.Count == 1 && x.Inputs[0] == b.Id).Select(x => x.Id + " starved")
            .Concat(spec.Stations.Where(x => x.Output == b.Id).Select(x => x.Id + " blocked")));
        LogBufferCountLost(_logger, _config.Id, b.Id, counter, anchors.Length == 0 ? "a level reading" : anchors);
    }

    // Parts the counters (robust to resets and wraps) say were made: test-then-train, then the alert rule.
    private void OnQualityParts(int station, long parts, bool rejected, long ms)
    {
        if (parts <= 0 || _quality[station] is not { } q) return;
        q.OnParts(parts, rejected, ms);
        bool was = q.Alerted;
        if (q.CheckAlert()) _qualityAlert[station] = _anyQualityAlert = true;
        else if (was && !q.Alerted) _qualityResolved[station] = _anyQualityAlert = true;
    }

    private void Apply(int station, int readings)
    {
        for (int k = 0; k < readings; k++) SetState(station, _readings[k].TimestampMs, _readings[k].State);
    }

    private void SetState(int station, long ms, MachineState state)
    {
        StateChanges.Add(1);
        // Failures and repairs are physical: the learner sees the signals, not the calendar (a fault during a break is a fault).
        _learners[station].OnState(ms, state);
        _counted.OnState(station, state);
        _calendar.OnState(station, ms, state);
    }

    void IBookedStateSink.OnBookedState(int station, long ms, MachineState state)
    {
        _oee[station].OnState(ms, state);
        _lineOee.OnState(station, ms, state);
        _bottleneck.OnState(station, ms / 1000.0, ActivePeriodBottleneck.IsActive(state));
    }

    /// <summary>
    /// The wall clock stepped back by <paramref name="stepMs"/> (a reading at <paramref name="nowMs"/> older than the latest).
    /// Before, every reading older than the last one was dropped by the calendar and the OEE books (no state, no count,
    /// no publish for the size of the step), and a step back across a shift's start failed every batch (a shift report
    /// that ended before it began). The times read so far were ahead by the step: they move back with it, so the books,
    /// the learners and the lamp decoders go on from the new time; the bottleneck's periods start over (they no longer
    /// form one stretch of time).
    /// </summary>
    private void OnClockStep(long stepMs, long nowMs)
    {
        long ms = -stepMs;
        foreach (var t in _oee) t.Shift(ms);
        _lineOee.Shift(ms);
        foreach (var l in _learners) l.Shift(ms);
        foreach (var light in _lights) light?.Shift(ms);
        _counted.Shift(ms);
        _bottleneck = NewBottleneck();
        for (int i = 0; i < _lastSignalMs.Length; i++)
            if (_lastSignalMs[i] != long.MinValue) _lastSignalMs[i] += ms;
        for (int b = 0; b < _bufferLevelMs.Length; b++)
            if (_bufferLevelMs[b] != 0) _bufferLevelMs[b] = Math.Max(1, _bufferLevelMs[b] + ms);
        if (_firstAfterRestoreMs != long.MinValue) _firstAfterRestoreMs += ms;
        if (_lastPublishMs != 0) _lastPublishMs += ms;
        _booksFromMs += ms;
        _calendar.Shift(ms, nowMs);
        ClockStepped(_logger, _config.Id, stepMs, nowMs);
    }

    /// <summary>
    /// The site's time zone: the shift calendar (starts, planned stops) is wall-clock time in it. Default: the config's
    /// <c>shift.time_zone</c>, else the host's.
    /// </summary>
    public TimeZoneInfo TimeZone { get; init; }

    private DateTime Local(long ms) => TimeZoneInfo.ConvertTime(DateTimeOffset.FromUnixTimeMilliseconds(ms), TimeZone).DateTime;

    private long UnixMs(DateTime local) => LineTwinConfig.Instant(local, TimeZone).ToUnixTimeMilliseconds();

    /// <summary>Real seconds from the shift's wall-clock start to its wall-clock end: 7 h or 9 h on a night the clocks change.</summary>
    private double ShiftSeconds(DateTime start) => _config.ShiftSeconds(start, TimeZone);

    /// <summary>
    /// The calendar's stops of the shift starting at <paramref name="start"/> in real seconds from its start: a 04:00 break
    /// is 7 h into a 22:00 shift the night the clocks go back (6 h by the wall clock; it was booked at 03:00).
    /// </summary>
    private IReadOnlyList<PlannedWindow> PlannedWindows(DateTime start) => _config.PlannedWindows(start, TimeZone);

    /// <summary>The wall-clock start of the shift in progress at <paramref name="ms"/> (its start instant has come).</summary>
    private DateTime ShiftStartAt(long ms)
    {
        if (ms >= _startFoundFromMs && ms < _startFoundUntilMs) return _startFound;
        var start = _config.ShiftStart(DateTimeOffset.FromUnixTimeMilliseconds(ms), TimeZone);
        if (start == DateTime.MinValue) return start; // no start in the two days looked at (cannot happen with one a day)
        _startFound = start;
        _startFoundFromMs = UnixMs(start);
        _startFoundUntilMs = UnixMs(_config.NextShiftStart(start));
        return start;
    }

    private void RollShift(long ms)
    {
        var start = ShiftStartAt(ms);
        if (start == _shiftStart) return;
        bool first = _shiftStart == DateTime.MinValue;
        long startMs = UnixMs(start);
        if (!first && start < _shiftStart)
        {
            // A reading from just before the start after one past it is poll jitter between devices (the clock's latest
            // time is past the start): it stays in this shift's books, which take it as a late reading. Going back to the
            // last shift for it, the next reading rolled it over again and remade its report from books restarted at the start.
            if (_clock.LatestMs >= UnixMs(_shiftStart)) return;
            // The clock stepped back across the shift's start (OnClockStep moved the books back with it): the readings so
            // far were made in the shift the clock says now, so the books go on under it, with its planned stops.
            _shiftStart = start;
            _plannedStops = PlannedWindows(start);
            _calendar.Schedule(_plannedStops, startMs, offShiftFromSeconds: ShiftSeconds(start));
            return;
        }

        if (!first)
        {
            // The last shift's stops (cut at its end) close, and its final books are kept for the report, before the new shift's books open.
            // (up to just before the new start: with back-to-back shifts the off-shift time begins at the new start, and
            // entering it there would show the books and the failure learner a zero-length stop, e.g. end a repair.)
            _calendar.Advance(startMs - 1);
            var scheduledEnd = _shiftStart + _config.ShiftLength;
            _shiftReport = ShiftReport(_shiftStart, scheduledEnd < start ? scheduledEnd : start, startMs);
        }
        _shiftStart = start;
        // The agent sees the shift from its first reading on: what came before is in no books, and the reports say so.
        // That is also the case when nothing was read around the shift's start (the agent was down across it).
        _booksFromMs = first || !WatchedAt(startMs) ? Math.Max(ms, startMs) : startMs;
        _plannedStops = PlannedWindows(start);
        // After the shift's scheduled end, until the next shift starts, no production is planned: a calendar with gaps
        // between shifts (two shifts a day) must not book the night's idle machines as waiting.
        _calendar.Schedule(_plannedStops, startMs, offShiftFromSeconds: ShiftSeconds(start));
        if (first) return;
        foreach (var t in _oee) t.StartPeriod(startMs);
        _lineOee.StartPeriod(startMs);
        _bottleneck = NewBottleneck();
        LogShift(_logger, _config.Id, start);
    }

    /// <summary>The books of the shift that ended at <paramref name="endMs"/>: what the plant manager reads the next morning.</summary>
    private Dictionary<string, string> ShiftReport(DateTime shiftStart, DateTime shiftEnd, long endMs)
    {
        var a = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["line"] = _config.Id,
            ["report"] = "shift",
            // Local wall-clock boundaries (the plant's 06:00), with their UTC offset so they are instants too.
            ["shift.start"] = WireTime.WallClock(shiftStart, TimeZone),
            ["shift.end"] = WireTime.WallClock(shiftEnd, TimeZone),
        };
        AddBooks(a, endMs, UnixMs(shiftStart));
        AddCoverage(a, shiftStart, UnixMs(shiftEnd));
        return a;
    }

    /// <summary>
    /// What the books cover of the shift <paramref name="shiftStart"/> until <paramref name="untilMs"/>: <c>books_from</c> (the shift's
    /// start, or the agent's first reading when it started mid-shift), <c>covered_s</c> and <c>shift_s</c>. A report of a
    /// shift the gateway saw 13 minutes of must not read as the shift's total.
    /// </summary>
    private void AddCoverage(Dictionary<string, string> a, DateTime shiftStart, long untilMs)
    {
        long startMs = UnixMs(shiftStart), endMs = untilMs;
        endMs = Math.Max(startMs, endMs); // a reading stamped before the shift's start (a clock stepped back) covers none of it
        long from = Math.Clamp(_booksFromMs, startMs, endMs);
        a["books_from"] = WireTime.WallClock(Local(from), TimeZone);
        a["covered_s"] = WireNumber.Format((endMs - from) / 1000.0);
        a["shift_s"] = WireNumber.Format(ShiftSeconds(shiftStart));
    }

    /// <summary>
    /// The line with the figures learned so far (cycle times, MTBF, MTTR, CV; the configured ones as the prior), as of
    /// the last published state. Immutable; safe to read from any thread (the maintenance cost hook does).
    /// </summary>
    public LineSpec LearnedLine => Volatile.Read(ref _learned);

    /// <summary>
    /// What the line's what-ifs start from, as of the last published state (null until the first publish, one
    /// <c>publishEvery</c> of readings after the first). Safe to read from any thread.
    /// </summary>
    public LineScenarioBasis? ScenarioBasis => Volatile.Read(ref _basis);

    /// <summary>The learned figures of one station now.</summary>
    public LearnedFigures Learned(int station, long nowMs) => _learners[station].Figures(nowMs);

    /// <summary>The twin state now: OEE per machine and line, bottleneck, forecast.</summary>
    public IReadOnlyDictionary<string, string> State(long nowMs, int replications = 30)
    {
        var inv = CultureInfo.InvariantCulture;
        var a = new Dictionary<string, string>(StringComparer.Ordinal) { ["line"] = _config.Id };
        var (line, stations) = AddBooks(a, nowMs);
        for (int i = 0; i < _oee.Length; i++)
        {
            string id = _config.Spec.Stations[i].Id;
            a[$"state.{id}"] = MachineStates.Name(_oee[i].State);
            var f = _learners[i].Figures(nowMs);
            a[$"learned.cycle_s.{id}"] = WireNumber.Format(f.CycleSeconds);
            a[$"learned.mtbf_s.{id}"] = WireNumber.Format(f.MtbfSeconds);
            a[$"learned.mttr_s.{id}"] = WireNumber.Format(f.MttrSeconds);
            a[$"learned.breakdowns.{id}"] = f.Breakdowns.ToString(inv);
            if (_quality[i] is { WindowParts: > 0 } q)
            {
                a[$"quality.predicted_reject_rate.{id}"] = WireNumber.Format(q.PredictedRate);
                a[$"quality.observed_reject_rate.{id}"] = WireNumber.Format(q.ObservedRate);
                a[$"quality.long_run_reject_rate.{id}"] = WireNumber.Format(q.LongRunRate);
                a[$"quality.window_parts.{id}"] = q.WindowParts.ToString(inv);
            }
            if (_quality[i] is { } qm)
            {
                // Inputs the model fills with its mean now (never read, a bad reading, none within the hold): said, so a
                // predicted rate is not read as coming from process values the gateway no longer has.
                var inputs = _config.Stations[i].Quality!.Inputs;
                string? missing = null;
                int more = 0;
                for (int k = 0; k < inputs.Count; k++)
                {
                    if (!qm.InputMissing(k, nowMs)) continue;
                    // A wide model (hundreds of inputs) names the first few and counts the rest.
                    if (missing is not null && missing.Count(c => c == ',') >= 4) more++;
                    else missing = (missing is null ? "" : missing + ",") + inputs[k].Device + "/" + inputs[k].Metric;
                }
                if (more > 0) missing += string.Create(inv, $" (+{more} more)");
                if (missing is not null) a[$"quality.missing_inputs.{id}"] = missing;
                if ((missing is not null) != _inputsMissingWarned[i])
                {
                    _inputsMissingWarned[i] = missing is not null;
                    if (missing is not null) LogInputsMissing(_logger, _config.Id, id, missing);
                    else LogInputsBack(_logger, _config.Id, id);
                }
            }
        }

        var learned = _config.Spec with { Stations = [.. _config.Spec.Stations.Select((s, i) => _learners[i].Apply(s, nowMs))] };
        Volatile.Write(ref _learned, learned);
        if (_shiftStart != DateTime.MinValue)
        {
            var shiftEnd = _shiftStart + _config.ShiftLength;
            a["shift.start"] = WireTime.WallClock(_shiftStart, TimeZone);
            a["shift.end"] = WireTime.WallClock(shiftEnd, TimeZone);
            // By instants: in the hour the clocks repeat the wall clock reads 02:40 before a 02:30 end that is an hour away.
            AddCoverage(a, _shiftStart, Math.Min(nowMs, UnixMs(shiftEnd)));
            // Real seconds: the wall clock's difference was an hour off all night when the clocks changed.
            double shiftSeconds = ShiftSeconds(_shiftStart);
            double elapsed = Math.Clamp((nowMs - UnixMs(_shiftStart)) / 1000.0, 0, shiftSeconds);
            var down = _oee.Select(t => t.State == MachineState.Faulted).ToArray();
            // A buffer with a fresh level reading starts the forecast at it, one counted from fresh part counters since its
            // last anchor at the count; the others are assumed half full.
            var levels = new int[_bufferLevel.Length];
            for (int b = 0; b < levels.Length; b++)
            {
                bool measured = _bufferLevelMs[b] != 0 && nowMs - _bufferLevelMs[b] <= BufferLevelStaleMs;
                bool counted = !measured && _counted.Trusted(b, nowMs);
                levels[b] = measured ? _bufferLevel[b] : counted ? _counted.Level(b) : LineSnapshot.AssumedLevel(_config.Spec.Buffers[b]);
                a[$"buffer_level.{_config.Spec.Buffers[b].Id}"] = levels[b].ToString(inv);
                a[$"buffer_level_source.{_config.Spec.Buffers[b].Id}"] = measured ? "measured" : counted ? "counted" : "assumed";
            }
            long output = line.GoodQuantity + line.UnseenGoodQuantity; // what the shift has made, seen or not
            var now = new LineNow(elapsed, output, new LineSnapshot(levels, down));
            Volatile.Write(ref _basis, new LineScenarioBasis(_config.Id, learned, shiftSeconds, _config.MarginPerUnit, now, nowMs) { PlannedStops = _plannedStops });
            // Replications of the rest of the shift are the expensive part: recomputed at most every forecastEvery.
            if (_forecast is null || nowMs - _lastForecastMs >= _forecastEveryMs || nowMs < _lastForecastMs)
            {
                _forecast = new LineScenarios(learned, shiftSeconds, _config.MarginPerUnit) { Replications = replications, PlannedStops = _plannedStops, Confidence = ForecastLevel }
                    .ForecastEndOfShift(now);
                _lastForecastMs = nowMs;
            }

            var f = _forecast;
            a["forecast.end_of_shift"] = WireNumber.Format(f.Mean.Mean);
            a["forecast.p5"] = WireNumber.Format(f.Prediction.Low);
            a["forecast.p95"] = WireNumber.Format(f.Prediction.High);
            // The share of simulated outcomes between p5 and p95 (a prediction interval, not the mean's CI): said, not implied.
            a["forecast.level"] = WireNumber.Format(ForecastLevel);
            // The instant the forecast is for, in UTC: the name every forecast family shares (shift.end is local wall clock).
            a["horizon_end"] = WireTime.Instant(UnixMs(shiftEnd));
            // Quality term: the parts still to come are good with the product of (1 − reject rate) over the stations,
            // each station's rate the one expected over that many parts.
            long soFar = output;
            double ahead = Math.Max(0, f.Mean.Mean - soFar), goodShare = 1;
            for (int i = 0; i < _oee.Length; i++)
            {
                double rate = RejectRate(i, stations[i], ahead);
                goodShare *= 1 - rate;
                if (_quality[i] is { WindowParts: > 0 } || _config.Stations[i].Reject is not null) a[$"quality.reject_rate_ahead.{_config.Spec.Stations[i].Id}"] = WireNumber.Format(rate);
            }

            double Good(double parts) => soFar + Math.Max(0, parts - soFar) * goodShare;
            a["forecast.good_share"] = WireNumber.Format(goodShare);
            a["forecast.good_end_of_shift"] = WireNumber.Format(Good(f.Mean.Mean));
            a["forecast.good_p5"] = WireNumber.Format(Good(f.Prediction.Low));
            a["forecast.good_p95"] = WireNumber.Format(Good(f.Prediction.High));
        }
        return a;
    }

    /// <summary>
    /// After a restore, the first twin state waits until every station with signals has been read again (at most one
    /// publish period after the first reading): published from the first poll alone, it showed the other stations as
    /// silent and the output's count as of the last checkpoint (a dip, a count going backwards).
    /// </summary>
    private bool HoldingAfterRestore(long nowMs)
    {
        if (_awaitingAfterRestore is not { } awaiting) return false;
        if (Array.IndexOf(awaiting, true) >= 0 && nowMs - _firstAfterRestoreMs < _publishEveryMs) return true;
        _awaitingAfterRestore = null;
        return false;
    }

    /// <summary>Whether any station was read within <see cref="SilentAfterMs"/> before <paramref name="ms"/>.</summary>
    private bool WatchedAt(long ms)
    {
        foreach (var last in _lastSignalMs)
            if (last != long.MinValue && last >= ms - SilentAfterMs) return true;
        return false;
    }

    /// <summary>
    /// A station's reject counter is configured and gives no data now (never read, or not for <see cref="SilentAfterMs"/>;
    /// for a closed shift: not read in it) — typically a vision system or test rig on its own PLC while the machine's PLC
    /// still counts good parts. Its quality would read 1.00 on the good parts alone.
    /// </summary>
    private bool RejectsSilent(int station, long nowMs, long? closedShiftStartMs = null)
    {
        if (_config.Stations[station].Reject is null) return false;
        long last = _oee[station].RejectCounterLastReadingMs;
        return last == long.MinValue || (closedShiftStartMs is { } from ? last < from : nowMs - last > SilentAfterMs);
    }

    /// <summary>
    /// A station that counts parts and has no reject counter (its profile has none): its counter counts every part it
    /// makes and which were bad is not measured, so its quality is no data, not 1.00, and its OEE is A × P.
    /// </summary>
    private bool NoRejectCounter(int station) => _config.Stations[station] is { Good: not null, Reject: null };

    /// <summary>A station gives no data now: no signal configured, never a reading, or none for <see cref="SilentAfterMs"/>.</summary>
    private bool Silent(int station, long nowMs)
    {
        long last = _lastSignalMs[station];
        return !_hasSignals[station] || last == long.MinValue || nowMs - last > SilentAfterMs;
    }

    private static void Put(Dictionary<string, string> a, string key, double? value)
    {
        // No data is an absent attribute (with `no_data` naming the stations), never a 0 an MES would chart and alarm on.
        if (value is { } v) a[key] = WireNumber.Format(v);
        else a.Remove(key);
    }

    /// <summary>
    /// The shift's books up to <paramref name="nowMs"/>: OEE and its factors per station and for the line, the line's losses,
    /// good parts, bottleneck. A figure without data (0/0) is left out; <c>no_data</c> lists the silent stations and
    /// <c>line.no_data</c> says why the line's figures are left out (its output station silent).
    /// </summary>
    /// <param name="closedShiftStartMs">For a closed shift's report: its start. A station is then without data when it gave
    /// no reading in that shift (not when it was silent at its end: the agent may have been down then).</param>
    private (OeeReport Line, OeeReport[] Stations) AddBooks(Dictionary<string, string> a, long nowMs, long? closedShiftStartMs = null)
    {
        bool NoData(int station) => closedShiftStartMs is { } from
            ? !_hasSignals[station] || _lastSignalMs[station] == long.MinValue || _lastSignalMs[station] < from
            : Silent(station, nowMs);
        var inv = CultureInfo.InvariantCulture;
        var stations = new OeeReport[_oee.Length];
        List<string>? silent = null, noRejects = null, noCounter = null;
        for (int i = 0; i < _oee.Length; i++)
        {
            var r = stations[i] = _oee[i].Report(nowMs);
            string id = _config.Spec.Stations[i].Id;
            if (!NoData(i) && RejectsSilent(i, nowMs, closedShiftStartMs))
            {
                // Good parts counted, rejects not known: quality (and performance, which counts every part) left out, not 1.00.
                r = stations[i] = r.WithoutRejects();
                (noRejects ??= []).Add(id);
            }
            else if (!NoData(i) && NoRejectCounter(i))
            {
                // Every part counted, none told bad: performance stands, quality is not measured (it read 1.00).
                r = stations[i] = r.WithoutQuality();
                (noRejects ??= []).Add(id);
                (noCounter ??= []).Add(id);
            }
            Put(a, $"oee.{id}", r.Oee);
            Put(a, $"availability.{id}", r.Availability);
            Put(a, $"performance.{id}", r.Effectiveness);
            Put(a, $"quality.{id}", r.QualityRate);
            // Time without readings is outside the books (not running, not down): said, so an availability of 1.00 over
            // a 10-min silence does not read as "ran all along", and PBT lets the losses be checked against the lost time.
            // The counts behind the rates (a quality of 0.96 is 4 of 100 or 400 of 10,000): with the station's counter
            // readings, and its rejects only while its reject counter reports.
            if (_oee[i].HasCounts && !NoData(i))
            {
                a[$"good.{id}"] = r.GoodQuantity.ToString(inv);
                if (noRejects?.Contains(id) != true) a[$"rejects.{id}"] = r.RejectQuantity.ToString(inv);
                else a.Remove($"rejects.{id}");
            }
            else
            {
                a.Remove($"good.{id}");
                a.Remove($"rejects.{id}");
            }
            a[$"unknown_s.{id}"] = WireNumber.Format(r.UnknownTime);
            a[$"planned_busy_s.{id}"] = WireNumber.Format(r.PlannedBusyTime);
            if (NoData(i)) (silent ??= []).Add(id);
        }
        if (silent is not null) a["no_data"] = string.Join(',', silent);
        if (noRejects is not null) a["quality.no_data"] = string.Join(',', noRejects);
        else a.Remove("quality.no_data");
        if (noCounter is not null) a["quality.no_reject_counter"] = string.Join(',', noCounter);
        else a.Remove("quality.no_reject_counter");

        var line = _lineOee.Report(nowMs);
        bool lineData = !NoData(_output) && _lineOee.HasCounts;
        if (!lineData)
        {
            // The line is seen at its output station: without its counts the line's OEE is not known, whatever the constraint did.
            a["line.no_data"] = $"output station {_config.Spec.Stations[_output].Id} not reporting";
            line = line.WithoutQuantities();
        }
        else if (line.Effectiveness > 1)
        {
            // More parts out than the constraint's running time allows: parts that were in the buffers before the books
            // started (the first minutes of a shift or after a restart). An OEE above 1 is not published, the flag says why.
            a["line.no_data"] = string.Create(inv, $"performance {line.Effectiveness:0.00} > 1: the books are too short yet, parts out of buffers filled before they began");
            line = line.WithoutQuantities();
        }
        else if (noCounter?.Contains(_config.Spec.Stations[_output].Id) == true)
        {
            line = line.WithoutQuality(); // the output station counts its parts but not its rejects: the line's OEE is A × P
        }
        else if (noRejects?.Contains(_config.Spec.Stations[_output].Id) == true)
        {
            line = line.WithoutRejects(); // the line's quality is its output station's
        }
        a["unknown_s.line"] = WireNumber.Format(line.UnknownTime);
        a["planned_busy_s.line"] = WireNumber.Format(line.PlannedBusyTime);
        Put(a, "oee.line", line.Oee);
        Put(a, "availability.line", line.Availability);
        Put(a, "performance.line", line.Effectiveness);
        Put(a, "quality.line", line.QualityRate);
        a["loss.breakdowns_s"] = WireNumber.Format(line.Losses.Breakdowns);
        a["loss.setups_s"] = WireNumber.Format(line.Losses.Setups);
        a["loss.waiting_s"] = WireNumber.Format(line.Losses.Waiting);
        a["loss.micro_stops_s"] = WireNumber.Format(line.Losses.MicroStops);
        Put(a, "loss.speed_s", line.Losses.SpeedLoss);
        Put(a, "loss.rejects_s", line.Losses.Rejects);
        a["good"] = line.GoodQuantity.ToString(inv);
        // The output station's rejects this shift, when known (its reject counter reporting).
        if (line.QualityRate is not null) a["rejects"] = line.RejectQuantity.ToString(inv);
        else a.Remove("rejects");
        // Parts the output station made while it could not be seen (the agent down, readings missing for over 5 min):
        // outside the books like that time, but part of the shift's output.
        if (line.UnseenGoodQuantity > 0) a["good_unseen"] = line.UnseenGoodQuantity.ToString(inv);
        else a.Remove("good_unseen");
        a["bottleneck"] = _bottleneck.Analyse(nowMs / 1000.0).Bottleneck ?? "";
        return (line, stations);
    }

    /// <summary>Warns once per silence episode about each station that gives no data (and says so again when it reports).</summary>
    private void WarnSilent(long nowMs)
    {
        for (int i = 0; i < _oee.Length; i++)
        {
            bool silent = Silent(i, nowMs);
            if (silent == _silentWarned[i]) continue;
            _silentWarned[i] = silent;
            string id = _config.Spec.Stations[i].Id;
            string role = i == _output ? " (the line's output station: the line's OEE is no data too)" : "";
            if (!silent) LogStationBack(_logger, _config.Id, id);
            else if (!_hasSignals[i]) LogStationSilent(_logger, _config.Id, id, "has no signals configured", role);
            else if (_lastSignalMs[i] == long.MinValue) LogStationSilent(_logger, _config.Id, id, "has not reported since the agent started", role);
            else LogStationSilent(_logger, _config.Id, id, string.Create(CultureInfo.InvariantCulture, $"has not reported for {(nowMs - _lastSignalMs[i]) / 60_000.0:0.#} min"), role);
        }
    }

    /// <summary>
    /// A station's reject rate for the <paramref name="ahead"/> parts still to come (the good share is Π over stations of
    /// 1 − this, the stations' rejects taken as independent): for a station with a quality model (once it has scored a
    /// part) the window's predicted rate fading to the long-run one over those parts (<see cref="StationQuality.RateAhead"/>),
    /// else the share of rejects this shift weighed with the earlier shifts' and the configured <c>reject_rate</c>
    /// (<see cref="StationLearner.RejectRate"/>; 0 without reject counts).
    /// </summary>
    private double RejectRate(int station, OeeReport shift, double ahead)
    {
        if (_quality[station] is { WindowParts: > 0 } q) return q.RateAhead(ahead);
        return _learners[station].RejectRate(shift.GoodQuantity + shift.RejectQuantity, shift.RejectQuantity, _config.Stations[station].RejectRate);
    }

    /// <summary>The live quality model of a station (null without a <c>quality:</c> block).</summary>
    public StationQuality? Quality(int station) => _quality[station];

    private async ValueTask PublishAsync(long nowMs, bool state, CancellationToken ct)
    {
        if (_shiftReport is { } report)
        {
            _shiftReport = null;
            var inv = CultureInfo.InvariantCulture;
            var end = DateTimeOffset.Parse(report["shift.end"], inv); // carries its offset: the instant the shift ended
            var summary = string.Create(inv, $"shift {Clock(report["shift.start"])}–{Clock(report["shift.end"])} ended: ") + Summary(report);
            LogState(_logger, summary);
            await _events.PublishAsync(new EdgeEvent(EdgeEventKind.Prediction, $"line/{_config.Id}/shift", end.ToUniversalTime(), EventSeverity.Info,
                summary, WithModel(report)) { Device = _config.Id }, ct).ConfigureAwait(false);
        }

        if (_anyQualityAlert)
        {
            _anyQualityAlert = false;
            for (int i = 0; i < _qualityAlert.Length; i++)
            {
                // Both within one batch: the warning, then its end (an alert rule sees the episode and ends resolved).
                bool alert = _qualityAlert[i], resolved = _qualityResolved[i];
                _qualityAlert[i] = _qualityResolved[i] = false;
                if (alert) await PublishQualityAsync(i, nowMs, resolved: false, ct).ConfigureAwait(false);
                if (resolved) await PublishQualityAsync(i, nowMs, resolved: true, ct).ConfigureAwait(false);
            }
        }
        if (state) await PublishStateAsync(nowMs, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// The warning that a station's parts are likely to fail inspection (<c>state: active</c>), and its end once the
    /// predicted rate has fallen back (<c>state: resolved</c>, Info). Regression: the warning was the episode's only
    /// event, so an alert rule on it cleared by its clear_after timer while the worn tool still made bad parts, or stayed
    /// firing long after the tool change.
    /// </summary>
    private async ValueTask PublishQualityAsync(int station, long nowMs, bool resolved, CancellationToken ct)
    {
        var inv = CultureInfo.InvariantCulture;
        var q = _quality[station]!;
        string id = _config.Spec.Stations[station].Id;
        if (!resolved) QualityAlerts.Add(1);
        var summary = resolved
            ? string.Create(inv, $"line {_config.Id} station {id}: parts likely to fail inspection: resolved, predicted reject rate back to {q.PredictedRate:P1} over the last {q.WindowParts} parts (long-run {q.LongRunRate:P1}, observed in the window {q.ObservedRate:P1})")
            : string.Create(inv, $"line {_config.Id} station {id}: parts likely to fail inspection: predicted reject rate {q.PredictedRate:P1} over the last {q.WindowParts} parts (long-run {q.LongRunRate:P1}, observed in the window {q.ObservedRate:P1})");
        if (resolved) LogQualityResolved(_logger, summary);
        else LogQuality(_logger, summary);
        var attrs = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["line"] = _config.Id,
            ["station"] = id,
            ["state"] = resolved ? "resolved" : "active",
            ["predicted_reject_rate"] = WireNumber.Format(q.PredictedRate),
            ["observed_reject_rate"] = WireNumber.Format(q.ObservedRate),
            ["long_run_reject_rate"] = WireNumber.Format(q.LongRunRate),
            ["window_parts"] = q.WindowParts.ToString(inv),
        };
        await _events.PublishAsync(new EdgeEvent(EdgeEventKind.Prediction, $"line/{_config.Id}/quality/{id}", DateTimeOffset.FromUnixTimeMilliseconds(nowMs),
            resolved ? EventSeverity.Info : EventSeverity.Warning, summary, WithModel(attrs)) { Device = _config.Id }, ct).ConfigureAwait(false);
    }

    private async ValueTask PublishStateAsync(long nowMs, CancellationToken ct)
    {
        var attrs = State(nowMs);
        WarnSilent(nowMs);
        Publishes.Add(1);
        var summary = Summary(attrs);
        // The journal shows the line's OEE too, so `edgetwin run` on a terminal (or journalctl) answers without an uplink.
        LogState(_logger, summary);
        await _events.PublishAsync(new EdgeEvent(EdgeEventKind.Prediction, "line/" + _config.Id, DateTimeOffset.FromUnixTimeMilliseconds(nowMs), EventSeverity.Info,
            summary, WithModel(attrs)) { Device = _config.Id }, ct).ConfigureAwait(false);
    }

    /// <summary>An event's attributes with the model and its version, as every model's events carry them (consumer audit F7).</summary>
    private static Dictionary<string, string> WithModel(IReadOnlyDictionary<string, string> attributes)
    {
        var a = new Dictionary<string, string>(attributes, StringComparer.Ordinal)
        {
            ["model"] = ModelName,
            ["model_version"] = ModelVersion,
        };
        return a;
    }

    /// <summary>
    /// HH:mm of a wall-clock time of the messages (<see cref="WireTime.WallClock"/>) for the summary, with its offset when
    /// the site's clocks show that time twice (02:30+02:00 or 02:30+01:00 the night they go back): without it a shift
    /// ending at the second 02:30 read as the first.
    /// </summary>
    private string Clock(string wallClock)
    {
        var t = DateTimeOffset.Parse(wallClock, CultureInfo.InvariantCulture);
        return TimeZone.IsAmbiguousTime(t) ? wallClock[11..16] + wallClock[19..] : wallClock[11..16];
    }

    private string Summary(IReadOnlyDictionary<string, string> a)
    {
        var inv = CultureInfo.InvariantCulture;
        double D(string key) => a.TryGetValue(key, out var v) ? double.Parse(v, inv) : double.NaN;
        var output = _config.Spec.Stations[_output].Id;
        var constraint = _constraintName;
        // The line's own factors, so that A × P × Q is the OEE shown (a station's factors next to the line's OEE do not multiply out).
        // A factor without data reads "—"; without the output station's counts the OEE is "no data" and says why.
        string F(string key) => a.TryGetValue(key, out var v) ? double.Parse(v, inv).ToString("0.00", inv) : "—";
        var oee = a.TryGetValue("line.no_data", out var why) ? $"no data ({why})" : F("oee.line");
        var good = a["good"];
        var bottleneck = a["bottleneck"].Length == 0 ? "-" : a["bottleneck"];
        var unseen = a.TryGetValue("good_unseen", out var u) ? $" (+{u} made while not seen)" : "";
        var rejected = a.TryGetValue("rejects", out var rj) ? $", {rj} rejected" : "";
        var text = string.Create(inv, $"line {_config.Id}: OEE {oee} = A {F("availability.line")} × P {F("performance.line")} × Q {F("quality.line")} (parts out of {output}, {constraint}'s cycle and states), {good} good{unseen}{rejected}, bottleneck {bottleneck}");
        if (a.TryGetValue("no_data", out var silent)) text += $", no data from {silent}";
        var noCounter = a.GetValueOrDefault("quality.no_reject_counter")?.Split(',') ?? [];
        if (a.TryGetValue("quality.no_data", out var noRejects) && noRejects.Split(',').Except(noCounter).ToArray() is { Length: > 0 } silentRejects)
            text += $", no reject counts from {string.Join(',', silentRejects)} (quality no data)";
        if (noCounter.Length > 0) text += $", no reject counter at {string.Join(',', noCounter)} (quality not measured, OEE = A × P)";
        // Stations with signals that went unread for a while (a station without signals is never read: not news).
        var unread = _config.Spec.Stations.Select((s, i) => (s.Id, Seconds: _hasSignals[i] ? D($"unknown_s.{s.Id}") : double.NaN))
            .Where(x => x.Seconds >= 60).Select(x => string.Create(inv, $"{x.Id} {x.Seconds / 60:0} min")).ToArray();
        if (unread.Length > 0) text += $", no readings: {string.Join(", ", unread)} (outside the books)";
        if (a.TryGetValue("covered_s", out var cov) && a.TryGetValue("shift_s", out var len) && a.TryGetValue("shift.start", out var shiftFrom))
        {
            double covered = double.Parse(cov, inv), length = double.Parse(len, inv);
            // Say when the books started after the shift did (agent started or restarted mid-shift).
            if (a["books_from"] != shiftFrom)
                text += string.Create(inv, $" (books from {Clock(a["books_from"])}, {covered / 60:0} of {length / 60:0} min of the shift)");
        }
        if (!a.ContainsKey("forecast.end_of_shift")) return text;
        double mean = D("forecast.end_of_shift"), p5 = D("forecast.p5"), p95 = D("forecast.p95");
        var at = a.TryGetValue("shift.end", out var end) ? " at " + Clock(end) + ":" : "";
        text += string.Create(inv, $", end of shift{at} {mean:0} ({D("forecast.level") * 100:0} % of outcomes {p5:0}–{p95:0})");
        if (!a.ContainsKey("forecast.good_end_of_shift")) return text;
        text += string.Create(inv, $", {D("forecast.good_end_of_shift"):0} good");
        // Why fewer good than made: the stations whose rejects the forecast expects, at the rate it uses for each.
        // Without it "8105, 5953 good" sat next to the output station's Q 0.98.
        var expected = _config.Spec.Stations
            .Select(s => (s.Id, Rate: a.TryGetValue($"quality.reject_rate_ahead.{s.Id}", out var p) ? double.Parse(p, inv) : 0))
            .Where(x => x.Rate >= 0.005).OrderByDescending(x => x.Rate).ToList();
        if (expected.Count == 0) return text;
        var named = string.Join(", ", expected.Take(3).Select(x => string.Create(inv, $"{x.Id} {x.Rate * 100:0.#} %")));
        return text + $" (rejects expected at {named}{(expected.Count > 3 ? ", …" : "")})";
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Summary}")]
    private static partial void LogState(ILogger logger, string summary);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Summary}")]
    private static partial void LogQuality(ILogger logger, string summary);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Summary}")]
    private static partial void LogQualityResolved(ILogger logger, string summary);

    [LoggerMessage(Level = LogLevel.Warning, Message = "line {Line}: station {Station} {Why}: its OEE figures are no data{Role}")]
    private static partial void LogStationSilent(ILogger logger, string line, string station, string why, string role);

    [LoggerMessage(Level = LogLevel.Warning, Message = "line {Line}: station {Station}'s quality model is missing the process values {Inputs} (never read, read out of range, stuck or in error, or not for 5 min): its parts are scored and learned with the model's mean for them")]
    private static partial void LogInputsMissing(ILogger logger, string line, string station, string inputs);

    [LoggerMessage(Level = LogLevel.Information, Message = "line {Line}: station {Station}'s quality model has all its process values again")]
    private static partial void LogInputsBack(ILogger logger, string line, string station);

    [LoggerMessage(Level = LogLevel.Warning, Message = "line {Line}: buffer {Buffer}'s counted level is unknown: {Counter}; the forecast assumes it half full until {Anchor}")]
    private static partial void LogBufferCountLost(ILogger logger, string line, string buffer, string counter, string anchor);

    [LoggerMessage(Level = LogLevel.Information, Message = "line {Line}: station {Station} reports again")]
    private static partial void LogStationBack(ILogger logger, string line, string station);

    private static void ClockStepped(ILogger logger, string line, long stepMs, long nowMs) =>
        SampleClock.LogSteppedBack(logger, "Line twin " + line, stepMs, nowMs, "its books, learners and publishing go on from the new time (the times read so far move back by the step)");

    [LoggerMessage(Level = LogLevel.Information, Message = "line {Line}: new shift from {Start}, OEE books restarted")]
    private static partial void LogShift(ILogger logger, string line, DateTime start);
}
