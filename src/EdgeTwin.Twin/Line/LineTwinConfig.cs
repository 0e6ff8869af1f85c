using System.Globalization;
using EdgeTwin.Core.Config;
using EdgeTwin.Twin.Line.Oee;

namespace EdgeTwin.Twin.Line;

/// <summary>Where one machine signal comes from: a device's metric, and for a state word how its values map to states.</summary>
public sealed record SignalRef(string Device, string Metric, IReadOnlyDictionary<long, MachineState>? StateMap = null, int CounterBits = 32);

/// <summary>A station of the configured line, with its signals.</summary>
/// <param name="RejectRate">The station's usual share of rejects (<c>reject_rate</c>), the prior of its reject rate until its own counts outweigh it; null: none given.</param>
public sealed record StationConfig(StationSpec Spec, string? Machine, SignalRef? State, SignalRef? Good, SignalRef? Reject, StackLightRef? StackLight = null, QualityConfig? Quality = null, double? RejectRate = null);

/// <summary>
/// A station's quality model: the model file (format <c>edgetwin-online-logistic/3</c>, or <c>/2</c>, path resolved against the config
/// file's directory and checked loadable when the config is read), the process values in the model's input order,
/// the number of recent parts the predicted and observed reject rates are taken over, and how many parts after a part
/// is made its inspection result reaches the counters.
/// </summary>
public sealed record QualityConfig(string ModelPath, IReadOnlyList<SignalRef> Inputs, int Window = QualityConfig.DefaultWindow, int InspectionDelayParts = 0)
{
    public const int DefaultWindow = 50;

    /// <summary>A fresh model from the file (each stage learns on its own copy).</summary>
    public EdgeTwin.Twin.Line.Quality.OnlineLogisticModel LoadModel() => EdgeTwin.Twin.Line.Quality.OnlineLogisticModel.Load(ModelPath);
}

/// <summary>
/// The devices of a stack light's lamps (profile generic-stack-light), an alternative to a state word; <paramref name="Hold"/>
/// is how long a lamp that went dark still counts as lit (blinking, lamp-change gaps; see <see cref="Oee.StackLightDecoder"/>).
/// </summary>
public sealed record StackLightRef(string? Red, string? Amber, string? Green, TimeSpan? Hold = null)
{
    public TimeSpan HoldOrDefault => Hold ?? Oee.StackLightDecoder.DefaultHold;
}

/// <summary>
/// <c>line.state</c>: the line twin's books and learning are saved every <c>checkpoint_interval</c> (default 1m; at most
/// 1h) and at stop to <c>file</c> (default <c>line-state.bin</c> next to the outbox; a relative path is taken from the
/// outbox's directory, a directory gets <c>line-state.bin</c> inside), and read back at start.
/// </summary>
public sealed record LineStateConfig(bool Enabled, string? File, TimeSpan CheckpointInterval)
{
    public const string DefaultFileName = "line-state.bin";

    public static LineStateConfig Default { get; } = new(true, null, TimeSpan.FromMinutes(1));
}

/// <summary>A planned stop in the shift calendar (time of day, duration; optional station, else the whole line).</summary>
public sealed record PlannedStopConfig(TimeSpan Start, TimeSpan Duration, string? Station, string Reason);

/// <summary>A planned stop within one shift: seconds from the shift's start, for one station (its index) or the whole line (-1).</summary>
public sealed record PlannedWindow(int Station, double StartSeconds, double EndSeconds, string Reason);

/// <summary>
/// The <c>line:</c> section of the site config: stations and buffers, ideal cycle times, failure
/// figures (until learned from the machine states), shift calendar, planned stops and the signals of
/// every machine. Read by <see cref="Read"/>, which reports every problem with file, line and key.
/// </summary>
public sealed record LineTwinConfig(
    string Id,
    LineSpec Spec,
    IReadOnlyList<StationConfig> Stations,
    TimeSpan ShiftLength,
    IReadOnlyList<TimeSpan> ShiftStarts,
    IReadOnlyList<PlannedStopConfig> PlannedStops,
    double MarginPerUnit,
    TimeSpan MicroStop,
    string? OutputStation)
{
    /// <summary>Buffers whose level (parts in them) a signal gives, by buffer id; the others are assumed half full in forecasts.</summary>
    public IReadOnlyDictionary<string, SignalRef> BufferLevels { get; init; } = new Dictionary<string, SignalRef>(StringComparer.Ordinal);

    /// <summary>
    /// <c>shift.time_zone</c>: the zone whose wall clock the shift calendar (starts, planned stops) is in; null = the
    /// host's. A gateway kept on UTC runs a plant's 06:00 shift at 06:00 UTC without it.
    /// </summary>
    public string? TimeZoneId { get; init; }

    /// <summary>The zone of <see cref="TimeZoneId"/>, or the host's.</summary>
    public TimeZoneInfo TimeZone { get; init; } = TimeZoneInfo.Local;

    /// <summary><c>state:</c> keeping the shift's books and what the line learned over restarts.</summary>
    public LineStateConfig State { get; init; } = LineStateConfig.Default;

    /// <summary>Reads the section of a loaded config; throws <see cref="ConfigException"/> with every problem, null when there is none.</summary>
    public static LineTwinConfig? From(SiteConfig config, ConfigMapping? section)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (section is null) return null;
        var diagnostics = new ConfigDiagnostics();
        var result = Read(new ConfigReader(section, diagnostics));
        if (!diagnostics.IsEmpty || result is null) throw new ConfigException(diagnostics.Sorted());
        return result;
    }

    /// <summary>Parses a YAML document holding a top-level <c>line:</c> section (used by the CLI and tests).</summary>
    public static LineTwinConfig? Parse(string yaml, string file, ConfigDiagnostics diagnostics)
    {
        ArgumentNullException.ThrowIfNull(diagnostics);
        var root = ConfigReader.For(YamlTree.Parse(yaml, file, diagnostics), diagnostics);
        if (root is null) return null;
        var section = root.Section("line", required: true);
        return section is null ? null : Read(section);
    }

    /// <summary>Reads and validates the section; problems go to the reader's diagnostics. Null when invalid.</summary>
    public static LineTwinConfig? Read(ConfigReader r)
    {
        ArgumentNullException.ThrowIfNull(r);
        int before = r.Diagnostics.Items.Count;
        var id = r.Id("id", required: true);
        var tick = r.Duration("tick", min: TimeSpan.FromMilliseconds(10)) ?? TimeSpan.FromSeconds(1);
        var margin = r.Double("margin_per_unit", min: 0) ?? 0;
        var microStop = r.Duration("micro_stop") ?? TimeSpan.FromMinutes(2);
        var output = r.Id("output_station");

        var shiftLength = TimeSpan.FromHours(8);
        var starts = new List<TimeSpan>();
        string? zoneId = null;
        TimeZoneInfo? zone = null;
        if (r.Section("shift") is { } sh)
        {
            shiftLength = sh.Duration("length", min: TimeSpan.FromMinutes(1)) ?? shiftLength;
            if (sh.String("time_zone") is { } tz)
            {
                zone = FindZone(tz, out var problem);
                if (zone is null) r.Diagnostics.Add(sh.Node("time_zone")!, problem!);
                else zoneId = tz;
            }
            if (sh.Sequence("starts") is { } seq)
                foreach (var item in seq.Items)
                    if (TimeOfDay(item, r.Diagnostics) is { } t) starts.Add(t);
            // Overlapping shifts would run each shift's books into the next one's: the length must fit between starts.
            var sorted = starts.Distinct().Order().ToList();
            for (int k = 0; k < sorted.Count && sh.Node("length") is { } lengthNode; k++)
            {
                var next = k + 1 < sorted.Count ? sorted[k + 1] : sorted[0] + TimeSpan.FromDays(1);
                if (next - sorted[k] >= shiftLength) continue;
                r.Diagnostics.Add(lengthNode, string.Create(CultureInfo.InvariantCulture,
                    $"shift length {shiftLength.TotalHours:0.##} h exceeds the {(next - sorted[k]).TotalHours:0.##} h between the starts {sorted[k]:hh\\:mm} and {sorted[(k + 1) % sorted.Count]:hh\\:mm}: shifts would overlap"));
                break;
            }
            sh.ReportUnknownKeys();
        }
        if (starts.Count == 0) starts.Add(TimeSpan.FromHours(6));

        var buffers = new List<BufferSpec>();
        var levels = new Dictionary<string, SignalRef>(StringComparer.Ordinal);
        var bufferNodes = new Dictionary<string, ConfigNode>(StringComparer.Ordinal);
        var bufferItems = new List<ConfigNode>(); // the YAML item of each buffer in `buffers`, same order
        if (r.Sequence("buffers", required: true) is { } bseq)
        {
            foreach (var item in bseq.Items)
            {
                var b = ConfigReader.For(item, r.Diagnostics);
                if (b is null) continue;
                var bid = b.Id("id", required: true);
                var cap = b.Int("capacity", required: true, min: 1, max: 1_000_000);
                var initial = b.Int("initial", min: 0) ?? 0;
                if (bid is not null && !bufferNodes.TryAdd(bid, item)) r.Diagnostics.Add(b.Node("id")!, $"buffer '{bid}' is defined twice");
                if (cap is not null && initial > cap) r.Diagnostics.Add(b.Node("initial")!, $"initial level {initial} exceeds the capacity {cap}");
                if (bid is not null && cap is not null)
                {
                    buffers.Add(new BufferSpec(bid, cap.Value, Math.Min(initial, cap.Value)));
                    bufferItems.Add(item);
                }
                if (Signal(b, "level", isState: false) is { } level && bid is not null) levels[bid] = level;
                b.ReportUnknownKeys();
            }
        }

        var stations = new List<StationConfig>();
        var stationNodes = new Dictionary<string, ConfigNode>(StringComparer.Ordinal);
        var stationItems = new List<ConfigNode>(); // the YAML item of each station in `stations`, same order
        if (r.Sequence("stations", required: true) is { } sseq)
        {
            if (sseq.Items.Count == 0) r.Diagnostics.Add(sseq, "a line needs at least one station");
            foreach (var item in sseq.Items)
            {
                var s = ConfigReader.For(item, r.Diagnostics);
                if (s is null) continue;
                var sid = s.Id("id", required: true);
                var machine = s.Id("machine");
                var ct = s.Duration("ideal_cycle_time", required: true, min: TimeSpan.FromMilliseconds(1));
                var mtbf = s.Duration("mtbf");
                var mttr = s.Duration("mttr");
                var cv = s.Double("cycle_time_cv", min: 0, max: 1) ?? 0;
                var rejectRate = s.Double("reject_rate", min: 0, max: 1);
                var inputs = s.IdList("inputs") ?? [];
                var outBuf = s.Id("output");
                foreach (var (value, node) in inputs)
                    if (!bufferNodes.ContainsKey(value)) r.Diagnostics.Add(node, $"buffer '{value}' is not defined under line.buffers");
                if (outBuf is not null && !bufferNodes.ContainsKey(outBuf)) r.Diagnostics.Add(s.Node("output")!, $"buffer '{outBuf}' is not defined under line.buffers");
                if (mtbf is not null && mttr is null) r.Diagnostics.Add(s.Node("mtbf")!, "mttr is required with mtbf");
                SignalRef? state = null, good = null, reject = null;
                StackLightRef? light = null;
                QualityConfig? quality = s.Section("quality") is { } qs ? ReadQuality(qs) : null;
                if (s.Section("signals") is { } sig)
                {
                    state = Signal(sig, "state", isState: true);
                    good = Signal(sig, "good", isState: false);
                    reject = Signal(sig, "reject", isState: false);
                    if (sig.Section("stack_light") is { } sl)
                    {
                        light = new StackLightRef(sl.Id("red"), sl.Id("amber"), sl.Id("green"), sl.Duration("hold", min: TimeSpan.Zero));
                        if (light is { Red: null, Amber: null, Green: null }) r.Diagnostics.Add(sl.Mapping, "a stack light needs at least one of red, amber, green");
                        sl.ReportUnknownKeys();
                    }
                    if (state is not null && light is not null) r.Diagnostics.Add(sig.Node("stack_light")!, "give the state either as a state word or as a stack light, not both");
                    sig.ReportUnknownKeys();
                }
                if (sid is not null && !stationNodes.TryAdd(sid, item)) r.Diagnostics.Add(s.Node("id")!, $"station '{sid}' is defined twice");
                if (sid is not null && ct is not null)
                {
                    var spec = new StationSpec(sid, ct.Value.TotalSeconds, mtbf?.TotalSeconds ?? 0, mttr?.TotalSeconds ?? 0,
                        inputs.Select(i => i.Value).ToArray(), outBuf, cv);
                    stations.Add(new StationConfig(spec, machine, state, good, reject, light, quality, rejectRate));
                    stationItems.Add(item);
                }
                s.ReportUnknownKeys();
            }
        }
        if (output is not null && !stationNodes.ContainsKey(output)) r.Diagnostics.Add(r.Node("output_station")!, $"station '{output}' is not defined under line.stations");

        var stops = new List<PlannedStopConfig>();
        if (r.Sequence("planned_stops") is { } pseq)
        {
            foreach (var item in pseq.Items)
            {
                var p = ConfigReader.For(item, r.Diagnostics);
                if (p is null) continue;
                var startNode = p.Node("start");
                TimeSpan? start = startNode is null ? null : TimeOfDay(startNode, r.Diagnostics);
                if (startNode is null) p.ReportMissing("start");
                var duration = p.Duration("duration", required: true, min: TimeSpan.FromSeconds(1));
                var station = p.Id("station");
                var reason = p.String("reason") ?? "planned";
                if (station is not null && !stationNodes.ContainsKey(station)) r.Diagnostics.Add(p.Node("station")!, $"station '{station}' is not defined under line.stations");
                if (start is not null && duration is not null) stops.Add(new PlannedStopConfig(start.Value, duration.Value, station, reason));
                p.ReportUnknownKeys();
            }
        }
        var keep = LineStateConfig.Default;
        if (r.Section("state") is { } st)
        {
            var (file, interval) = StateSection.Read(st, LineStateConfig.DefaultFileName, keep.CheckpointInterval, TimeSpan.FromHours(1), "a power cut loses the books' time since the last checkpoint");
            keep = new LineStateConfig(st.Bool("enabled") ?? keep.Enabled, file, interval);
            st.ReportUnknownKeys();
        }
        r.ReportUnknownKeys();

        if (r.Diagnostics.Items.Count > before || id is null) return null;
        var lineSpec = new LineSpec(stations.Select(s => s.Spec).ToArray(), buffers, tick.TotalSeconds);
        // Structural problems (a buffer nobody feeds or takes from, a cycle, an output that is also an input) at the key of
        // the station or buffer at fault, with its line, not at `line:`.
        foreach (var problem in lineSpec.Problems()) r.Diagnostics.Add(Locate(problem, r.Mapping, stationItems, bufferItems), problem.Message);
        if (r.Diagnostics.Items.Count > before) return null;
        return new LineTwinConfig(id, lineSpec, stations, shiftLength, starts, stops, margin, microStop,
            output ?? stations.Last(s => s.Spec.Output is null).Spec.Id) { BufferLevels = levels, State = keep, TimeZoneId = zoneId, TimeZone = zone ?? TimeZoneInfo.Local };
    }

    /// <summary>The node of a line problem's field (<c>output</c>, <c>mttr</c>), else its station or buffer item, else the section.</summary>
    private static ConfigNode Locate(LineProblem problem, ConfigMapping section, List<ConfigNode> stationItems, List<ConfigNode> bufferItems)
    {
        ConfigNode element = problem.Element switch
        {
            LineElement.Station when problem.Index >= 0 && problem.Index < stationItems.Count => stationItems[problem.Index],
            LineElement.Buffer when problem.Index >= 0 && problem.Index < bufferItems.Count => bufferItems[problem.Index],
            _ => section,
        };
        return problem.Field is { } field && element is ConfigMapping m ? m[field] ?? element : element;
    }

    private static SignalRef? Signal(ConfigReader sig, string key, bool isState)
    {
        var s = sig.Section(key);
        if (s is null) return null;
        var device = s.Id("device", required: true);
        var metric = s.String("metric", required: true);
        var bits = s.Int("bits", min: 1, max: 64) ?? 32;
        Dictionary<long, MachineState>? map = null;
        if (isState && s.Section("map") is { } m)
        {
            map = new Dictionary<long, MachineState>();
            foreach (var (k, v) in m.Mapping.Entries)
            {
                m.Node(k);
                if (!long.TryParse(k, NumberStyles.Integer, CultureInfo.InvariantCulture, out var code))
                    s.Diagnostics.Add(m.Mapping.KeyMark(k), v.Path, $"state code '{k}' is not an integer");
                else if (v is not ConfigScalar sv || !MachineStates.TryParse(sv.Value, out var st))
                    s.Diagnostics.Add(v, $"expected one of running, idle, starved, blocked, faulted, setup, planned_stop, got {ConfigReader.Describe(v)}");
                else
                    map[code] = st;
            }
        }
        s.ReportUnknownKeys();
        return device is null || metric is null ? null : new SignalRef(device, metric, map, bits);
    }

    private static QualityConfig? ReadQuality(ConfigReader q)
    {
        var modelNode = q.Node("model");
        var model = q.String("model", required: true);
        var window = q.Int("window", min: 5, max: 100_000) ?? QualityConfig.DefaultWindow;
        var delayNode = q.Node("inspection_delay_parts");
        var delay = q.Int("inspection_delay_parts", min: 0, max: 100_000) ?? 0;
        var inputs = new List<SignalRef>();
        var seq = q.Sequence("inputs", required: true);
        if (seq is not null)
        {
            if (seq.Items.Count == 0) q.Diagnostics.Add(seq, "a quality model needs at least one input { device, metric }");
            foreach (var item in seq.Items)
            {
                var i = ConfigReader.For(item, q.Diagnostics);
                if (i is null) continue;
                var device = i.Id("device", required: true);
                var metric = i.String("metric", required: true);
                if (device is not null && metric is not null) inputs.Add(new SignalRef(device, metric));
                i.ReportUnknownKeys();
            }
        }
        q.ReportUnknownKeys();
        if (model is null || modelNode is null || seq is null) return null;
        var dir = Path.GetDirectoryName(modelNode.Mark.File);
        var path = ConfigReader.ResolvePath(model, string.IsNullOrEmpty(dir) ? Directory.GetCurrentDirectory() : dir)!;
        EdgeTwin.Twin.Line.Quality.OnlineLogisticModel loaded;
        try
        {
            // Loaded now so that `edgetwin check` and the agent's start report a bad file, not the first part.
            loaded = EdgeTwin.Twin.Line.Quality.OnlineLogisticModel.Load(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            var why = ex is FileNotFoundException or DirectoryNotFoundException ? $"quality model file {path} not found" : $"quality model: {ex.Message}";
            q.Diagnostics.Add(modelNode, why);
            return null;
        }
        if (loaded.InputWidth != seq.Items.Count)
        {
            q.Diagnostics.Add(seq, $"the quality model {path} takes {loaded.InputWidth} inputs, {seq.Items.Count} are listed");
            return null;
        }
        if ((long)delay * loaded.InputWidth > EdgeTwin.Twin.Line.Quality.StationQuality.MaxDelayedValues)
        {
            q.Diagnostics.Add(delayNode!, $"{delay} parts × {loaded.InputWidth} inputs of {path} is more than the {EdgeTwin.Twin.Line.Quality.StationQuality.MaxDelayedValues} process values kept for delayed results; at most {EdgeTwin.Twin.Line.Quality.StationQuality.MaxDelayedValues / loaded.InputWidth} parts");
            return null;
        }

        return inputs.Count == seq.Items.Count ? new QualityConfig(path, inputs, window, delay) : null;
    }

    /// <summary>A time of day as the config writes it (06:00, 6:00, 06:00:30), below 24:00.</summary>
    public static bool TryParseTimeOfDay(string? text, out TimeSpan time) =>
        TimeSpan.TryParseExact(text, ["hh\\:mm", "h\\:mm", "hh\\:mm\\:ss"], CultureInfo.InvariantCulture, out time) && time < TimeSpan.FromDays(1);

    // An IANA name (Europe/Berlin) from the host's tzdata; .NET also maps Windows names, but the gateway's files are IANA.
    private static TimeZoneInfo? FindZone(string id, out string? problem)
    {
        problem = null;
        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(id);
        }
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            problem = $"unknown time zone '{id}': give an IANA name such as Europe/Berlin or UTC (from the host's tzdata, /usr/share/zoneinfo; is the tzdata package installed?)";
            return null;
        }
    }

    private static TimeSpan? TimeOfDay(ConfigNode node, ConfigDiagnostics diagnostics)
    {
        if (node is ConfigScalar s && TryParseTimeOfDay(s.Value, out var t))
            return t;
        diagnostics.Add(node, $"expected a time of day like 06:00, got {ConfigReader.Describe(node)}");
        return null;
    }

    /// <summary>
    /// The calendar's planned stops that fall in the shift starting at <paramref name="shiftStart"/> (time of day), as
    /// seconds from its start, cut at its end; a stop at 02:00 is 4 h into a 22:00 shift.
    /// </summary>
    public IReadOnlyList<PlannedWindow> PlannedWindows(TimeSpan shiftStart)
    {
        var windows = new List<PlannedWindow>();
        double length = ShiftLength.TotalSeconds;
        foreach (var stop in PlannedStops)
        {
            var offset = stop.Start - shiftStart;
            if (offset < TimeSpan.Zero) offset += TimeSpan.FromDays(1);
            double start = offset.TotalSeconds;
            if (start >= length) continue;
            int station = stop.Station is null ? -1 : Spec.StationIndex(stop.Station);
            windows.Add(new PlannedWindow(station, start, Math.Min(length, start + stop.Duration.TotalSeconds), stop.Reason));
        }
        windows.Sort((a, b) => a.StartSeconds.CompareTo(b.StartSeconds));
        return windows;
    }

    /// <summary>
    /// The instant a wall-clock time of the calendar is in <paramref name="zone"/>, as the live twin takes it: a time the
    /// clocks skip (02:30 the night they go forward) is read with the zone's standard offset (03:30 after the change), a
    /// time that occurs twice (02:30 the night they go back) is its second, standard-time occurrence.
    /// </summary>
    public static DateTimeOffset Instant(DateTime wallClock, TimeZoneInfo zone)
    {
        ArgumentNullException.ThrowIfNull(zone);
        wallClock = DateTime.SpecifyKind(wallClock, DateTimeKind.Unspecified);
        return new DateTimeOffset(wallClock, zone.GetUtcOffset(wallClock));
    }

    /// <summary>
    /// Real seconds from the shift's wall-clock start to its wall-clock end in <paramref name="zone"/>: a 22:00–06:00
    /// shift is 7 h the night the clocks go forward and 9 h the night they go back.
    /// </summary>
    public double ShiftSeconds(DateTime shiftStart, TimeZoneInfo zone) =>
        (Instant(shiftStart + ShiftLength, zone) - Instant(shiftStart, zone)).TotalSeconds;

    /// <summary>
    /// The calendar's stops of the shift starting at <paramref name="shiftStart"/> (wall clock in <paramref name="zone"/>)
    /// in real seconds from its start: each begins at the instant of its wall-clock start and lasts its <c>duration</c>
    /// in real time, cut at the shift's end. A 04:00 break is 7 h into a 22:00 shift the night the clocks go back; a
    /// 30-min break at 01:45 that night is 30 min (its wall-clock end, 02:15, is read in the repeated hour's second pass:
    /// it lasted 90 min), one at 02:30 the night they go forward is 03:30–04:00 CEST (its wall-clock end, 03:00, came
    /// before its start and the break vanished).
    /// </summary>
    public IReadOnlyList<PlannedWindow> PlannedWindows(DateTime shiftStart, TimeZoneInfo zone)
    {
        var startInstant = Instant(shiftStart, zone);
        double shiftSeconds = ShiftSeconds(shiftStart, zone), length = ShiftLength.TotalSeconds;
        var windows = new List<PlannedWindow>();
        foreach (var w in PlannedWindows(shiftStart.TimeOfDay))
        {
            double start = (Instant(shiftStart + TimeSpan.FromSeconds(w.StartSeconds), zone) - startInstant).TotalSeconds;
            if (start >= shiftSeconds) continue;
            // Not cut (it ends before the shift does): its duration; cut at the shift's end: the shift's real end.
            double end = w.EndSeconds < length ? Math.Min(shiftSeconds, start + (w.EndSeconds - w.StartSeconds)) : shiftSeconds;
            windows.Add(w with { StartSeconds = start, EndSeconds = end });
        }
        windows.Sort((a, b) => a.StartSeconds.CompareTo(b.StartSeconds));
        return windows;
    }

    /// <summary>The calendar's first shift start (wall clock) after <paramref name="shiftStart"/>.</summary>
    public DateTime NextShiftStart(DateTime shiftStart)
    {
        DateTime best = DateTime.MaxValue;
        foreach (var day in new[] { shiftStart.Date, shiftStart.Date.AddDays(1) })
            foreach (var s in ShiftStarts)
            {
                var start = day + s;
                if (start > shiftStart && start < best) best = start;
            }
        return best;
    }

    /// <summary>
    /// Start (wall clock in <paramref name="zone"/>) of the shift in progress at <paramref name="time"/>: the latest start
    /// whose instant (<see cref="Instant"/>) has come. Compared by the wall clock, a 02:30 start began at the first 02:30
    /// the night the clocks go back (its instant is the second, an hour later) and at 03:00 the night they go forward (its
    /// instant is 03:30): the books opened before the shift and the shift started twice.
    /// </summary>
    public DateTime ShiftStart(DateTimeOffset time, TimeZoneInfo zone)
    {
        ArgumentNullException.ThrowIfNull(zone);
        var local = TimeZoneInfo.ConvertTime(time, zone).DateTime;
        DateTime best = DateTime.MinValue;
        foreach (var day in new[] { local.Date.AddDays(-1), local.Date })
            foreach (var s in ShiftStarts)
            {
                var start = day + s;
                if (start > best && Instant(start, zone) <= time) best = start;
            }
        return best;
    }
}

/// <summary>Checks <c>line:</c> for <c>edgetwin check</c> and the agent's start (found by reflection).</summary>
public sealed class LineSectionValidator : IConfigSectionValidator
{
    public string Section => "line";

    public void Validate(ConfigReader section) => LineTwinConfig.Read(section);

    /// <summary><c>line.state.file</c> when the line keeps its state (the agent's <c>LineStateStage</c>).</summary>
    public IEnumerable<StateFileSetting> StateFiles(ConfigReader? section) =>
        section is not null && LineTwinConfig.Read(section) is { State.Enabled: true } c
            ? [StateFileSetting.Of(section.Mapping, "line.state", c.State.File, LineStateConfig.DefaultFileName)]
            : [];

    /// <summary>"line line1: 4 stations, 3 buffers, 2 of 4 machines with signals" — the line twin a valid section sets up.</summary>
    public string? Describe(ConfigReader section)
    {
        if (LineTwinConfig.Read(section) is not { } c) return null;
        // A machine without a state or counter signal is simulated, never observed: worth seeing before the agent runs.
        int withSignals = c.Stations.Count(s => s.State is not null || s.StackLight is not null || s.Good is not null || s.Reject is not null);
        var inv = CultureInfo.InvariantCulture;
        var text = string.Create(inv, $"line {c.Id}: {c.Stations.Count} station{(c.Stations.Count == 1 ? "" : "s")}, {c.Spec.Buffers.Count} buffer{(c.Spec.Buffers.Count == 1 ? "" : "s")}, {withSignals} of {c.Stations.Count} machines with signals");
        return ClockChangeNote(c, DateTime.UtcNow.Date) is { } note ? text + "; " + note : text;
    }

    /// <summary>
    /// The calendar's times (shift starts, planned-stop starts) that the site's clocks skip or show twice in the year from
    /// <paramref name="from"/>, and how the twin takes them (<see cref="LineTwinConfig.Instant"/>): valid config, but a
    /// 02:30 start in Europe/Berlin is 03:30 CEST one night and the second 02:30 another, which the engineer should see
    /// before the night comes. Null when there is none.
    /// </summary>
    public static string? ClockChangeNote(LineTwinConfig c, DateTime from)
    {
        ArgumentNullException.ThrowIfNull(c);
        var zone = c.TimeZone;
        if (!zone.SupportsDaylightSavingTime) return null;
        var inv = CultureInfo.InvariantCulture;
        var notes = new List<string>();
        var times = c.ShiftStarts.Select(t => ("shift start", t)).Concat(c.PlannedStops.Select(p => ("planned stop", p.Start))).Distinct();
        foreach (var (what, t) in times)
        {
            DateTime? skipped = null, repeated = null;
            for (var day = from.Date; day < from.Date.AddDays(366) && (skipped is null || repeated is null); day = day.AddDays(1))
            {
                var wall = DateTime.SpecifyKind(day + t, DateTimeKind.Unspecified);
                if (skipped is null && zone.IsInvalidTime(wall)) skipped = wall;
                if (repeated is null && zone.IsAmbiguousTime(wall)) repeated = wall;
            }
            var parts = new List<string>();
            if (skipped is { } sk) parts.Add(string.Create(inv, $"skipped on {sk:yyyy-MM-dd} (then {EdgeTwin.Core.Events.WireTime.WallClock(sk, zone)[11..]})"));
            if (repeated is { } rp) parts.Add(string.Create(inv, $"shown twice on {rp:yyyy-MM-dd} (then the second, {EdgeTwin.Core.Events.WireTime.WallClock(rp, zone)[11..]})"));
            if (parts.Count > 0) notes.Add(string.Create(inv, $"{what} {t:hh\\:mm} is {string.Join(" and ", parts)}"));
        }
        return notes.Count == 0 ? null : $"in {c.TimeZoneId ?? zone.Id} the {string.Join("; the ", notes)}";
    }

    /// <summary>
    /// Every device and metric the line's signals name (state words, counters, stack-light lamps, quality inputs, buffer
    /// levels) must exist: a typo otherwise passes <c>check</c> and the agent's start and silently turns the station into
    /// one that never reports. An unknown device is an error at its <c>device</c> key, a metric its device's profile does
    /// not have an error at its <c>metric</c> key, each with "did you mean" when a name is close.
    /// </summary>
    public void ValidateReferences(ConfigReader section, SiteReferences site)
    {
        ArgumentNullException.ThrowIfNull(section);
        ArgumentNullException.ThrowIfNull(site);
        var d = section.Diagnostics;
        var devices = site.Config.Devices.ToDictionary(x => x.Id, x => x.Profile, StringComparer.Ordinal);

        // The device's profile, or null after reporting an unknown device.
        EdgeTwin.Core.Profiles.DeviceProfile? Device(ConfigScalar device, out bool known)
        {
            known = devices.TryGetValue(device.Value, out var profile);
            if (!known)
            {
                var suggestion = SiteReferences.Closest(device.Value, devices.Keys);
                d.Add(device, suggestion is not null
                    ? $"unknown device '{device.Value}' (did you mean '{suggestion}'?)"
                    : devices.Count == 0
                        ? $"unknown device '{device.Value}' (the site has no devices)"
                        : $"unknown device '{device.Value}' (devices: has {string.Join(", ", devices.Keys.Order(StringComparer.Ordinal))})");
                return null;
            }
            return site.Config.Profiles.GetValueOrDefault(profile!);
        }

        void Metric(ConfigNode? device, ConfigNode? metric, string? fixedMetric = null)
        {
            if (device is not ConfigScalar { IsNull: false } dev) return;
            var profile = Device(dev, out bool known);
            // SNMP table columns become one series per row: their names are not checked here.
            if (!known || profile is null || profile.Tables.Count > 0) return;
            var name = fixedMetric ?? (metric as ConfigScalar)?.Value;
            if (name is null || profile.Metrics.Any(m => m.Name == name)) return;
            var names = profile.Metrics.Select(m => m.Name).ToArray();
            if (fixedMetric is not null)
            {
                d.Add(dev, $"device '{dev.Value}' (profile {profile.Id}) has no metric '{fixedMetric}': a stack-light lamp is a generic-stack-light device");
                return;
            }
            var suggestion = SiteReferences.Closest(name, names);
            d.Add(metric!, suggestion is not null
                ? $"device '{dev.Value}' (profile {profile.Id}) has no metric '{name}' (did you mean '{suggestion}'?)"
                : $"device '{dev.Value}' (profile {profile.Id}) has no metric '{name}' (it has {string.Join(", ", names)})");
        }

        void Signal(ConfigNode? node)
        {
            if (node is ConfigMapping m) Metric(m["device"], m["metric"]);
        }

        // A machine's state and counters must be read within the books' hold: a longer gap is unknown time and its parts
        // unseen, so a station polled every 10 min would have no OEE at all.
        var intervals = site.Config.Devices.ToDictionary(x => x.Id, x => x.Interval, StringComparer.Ordinal);
        void Polled(ConfigNode? device)
        {
            if (device is ConfigMapping m) device = m["device"];
            if (device is not ConfigScalar { IsNull: false } dev || !intervals.TryGetValue(dev.Value, out var interval) || interval <= LineTwinStage.HoldLimit) return;
            d.Add(dev, $"device '{dev.Value}' is polled every {Durations.Format(interval)}: the line twin holds a machine's state for at most {Durations.Format(LineTwinStage.HoldLimit)} between readings (a longer gap is unknown time and its parts unseen), so this station would have no OEE; poll it at least every {Durations.Format(LineTwinStage.HoldLimit)}");
        }

        if (section.Mapping["buffers"] is ConfigSequence buffers)
            foreach (var b in buffers.Items.OfType<ConfigMapping>()) Signal(b["level"]);
        if (section.Mapping["stations"] is not ConfigSequence stations) return;
        foreach (var st in stations.Items.OfType<ConfigMapping>())
        {
            if (st["signals"] is ConfigMapping sig)
            {
                Signal(sig["state"]);
                Signal(sig["good"]);
                Signal(sig["reject"]);
                Polled(sig["state"]);
                Polled(sig["good"]);
                Polled(sig["reject"]);
                if (sig["stack_light"] is ConfigMapping light)
                {
                    foreach (var lamp in new[] { "red", "amber", "green" })
                    {
                        Metric(light[lamp], null, "lamp");
                        Polled(light[lamp]);
                    }
                }
            }
            if (st["quality"] is ConfigMapping q && q["inputs"] is ConfigSequence inputs)
                foreach (var i in inputs.Items) Signal(i);
        }
    }
}
