using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using EdgeTwin.Core.Config;
using EdgeTwin.Twin.Line;
using EdgeTwin.Twin.Line.Oee;
using EdgeTwin.Twin.Line.Scenarios;

namespace EdgeTwin.Agent.Line;

/// <summary>Options and helpers shared by the <c>line</c> and <c>simulate</c> line commands.</summary>
internal sealed class LineCli
{
    public Option<FileInfo> Config { get; } = new("--config", "-c") { Description = "Site config file with a line: section.", Required = true };

    public Option<bool> Json { get; } = new("--json") { Description = "Print JSON for scripts." };

    public Option<int> Replications { get; } = new("--replications") { Description = "Simulation replications.", DefaultValueFactory = _ => 100 };

    public Option<ulong> Seed { get; } = new("--seed") { Description = "Random seed (results are reproducible).", DefaultValueFactory = _ => 1UL };

    public Option<string?> Shift { get; } = new("--shift") { Description = "Start of the shift (HH:MM) whose planned stops the simulation keeps; default: the calendar's first." };

    public Option<string?> Date { get; } = new("--date") { Description = "Day the shift starts on (YYYY-MM-DD, in shift.time_zone, else the host's): the shift's real length and planned stops that day, 7 h or 9 h the nights the clocks change; default: a shift of shift.length." };

    /// <summary>Buffer levels the what-ifs start from (<c>--buffer B1=12</c>); the others are assumed as the live twin assumes them.</summary>
    public Option<string[]> Buffers { get; } = new("--buffer") { Description = "Parts in a buffer now, e.g. --buffer B1=12 (repeatable); default half full, as the live twin assumes." };

    /// <summary>A buffer's level at the start of a what-if: given with <c>--buffer</c> or assumed (<see cref="LineSnapshot.AssumedLevel"/>).</summary>
    public sealed record BufferStart(string Id, int Level, int Capacity, bool Given);

    /// <summary>
    /// Where the what-if starts: <paramref name="elapsedSeconds"/> into the shift with the <c>--buffer</c> levels and the
    /// others half full, like the live twin (it used to start from the configured <c>initial</c> levels, empty by default,
    /// so upstream stops looked many times costlier than the live twin said). <paramref name="levels"/>: the BUFFER=LEVEL
    /// values to use, default every <c>--buffer</c> value. Null after printing why an argument is wrong.
    /// </summary>
    public (LineNow Now, IReadOnlyList<BufferStart> Buffers)? Start(ParseResult parse, LineTwinConfig c, double elapsedSeconds, TextWriter error, IEnumerable<string>? levels = null)
    {
        ArgumentNullException.ThrowIfNull(parse);
        ArgumentNullException.ThrowIfNull(c);
        ArgumentNullException.ThrowIfNull(error);
        var buffers = c.Spec.Buffers.Select(b => new BufferStart(b.Id, LineSnapshot.AssumedLevel(b), b.Capacity, false)).ToArray();
        foreach (var text in levels ?? parse.GetValue(Buffers) ?? [])
        {
            var eq = text.IndexOf('=', StringComparison.Ordinal);
            int i = eq <= 0 ? -1 : Array.FindIndex(buffers, b => b.Id == text[..eq].Trim());
            if (i < 0 || !int.TryParse(text[(eq + 1)..], NumberStyles.Integer, CultureInfo.InvariantCulture, out var level) || level < 0 || level > buffers[i].Capacity)
            {
                error.WriteLine($"--buffer {text}: expected BUFFER=LEVEL with a buffer of line {c.Id} ({string.Join(", ", buffers.Select(b => $"{b.Id} 0..{b.Capacity}"))})");
                return null;
            }
            buffers[i] = buffers[i] with { Level = level, Given = true };
        }
        var snapshot = new LineSnapshot([.. buffers.Select(b => b.Level)], new bool[c.Spec.Stations.Count]);
        return (new LineNow(elapsedSeconds, 0, snapshot), buffers);
    }

    /// <summary>"buffers at the start: B1 10/20, B2 7/15 (assumed half full as the live twin does; --buffer B=N sets one)".</summary>
    public static string DescribeBuffers(IReadOnlyList<BufferStart> buffers)
    {
        ArgumentNullException.ThrowIfNull(buffers);
        var list = string.Join(", ", buffers.Select(b => string.Create(CultureInfo.InvariantCulture, $"{b.Id} {b.Level}/{b.Capacity}{(b.Given ? " given" : "")}")));
        return buffers.All(b => b.Given) ? $"buffers at the start: {list}" : $"buffers at the start: {list} (not given: assumed half full, as the live twin does; --buffer B1=N sets one)";
    }

    /// <summary>
    /// The text of a buffer or cycle-time what-if, after <paramref name="head"/>: the rest of the shift's output as configured
    /// and changed, each with its interval, then the change (scenario − baseline, paired) and its value at the margin.
    /// </summary>
    public static IEnumerable<string> DescribeChange(string head, ScenarioResult r, double marginPerUnit)
    {
        ArgumentNullException.ThrowIfNull(r);
        var inv = CultureInfo.InvariantCulture;
        // The engine reports a loss; these what-ifs are as often gains, so the text gives the signed change.
        var change = new Estimate(-r.LostOutput.Mean, -r.LostOutput.High, -r.LostOutput.Low, r.LostOutput.Level);
        var value = new Estimate(-r.Cost.Mean, -r.Cost.High, -r.Cost.Low, r.Cost.Level);
        yield return string.Create(inv, $"{head}: rest of shift {r.Baseline.Mean:0.#} parts ({Level(r.Baseline)} CI {r.Baseline.Low:0.#}–{r.Baseline.High:0.#}) -> {r.Scenario.Mean:0.#} parts ({Level(r.Scenario)} CI {r.Scenario.Low:0.#}–{r.Scenario.High:0.#})");
        yield return string.Create(inv, $"change in output {change.Mean:+0.#;-0.#;0} parts ({Level(change)} CI {change.Low:+0.#;-0.#;0} to {change.High:+0.#;-0.#;0}), worth {value.Mean:+0.##;-0.##;0} ({Level(value)} CI {value.Low:+0.##;-0.##;0} to {value.High:+0.##;-0.##;0}) at {marginPerUnit} per part; {r.Replications} paired replications");
    }

    /// <summary>An interval's level as the text outputs print it, e.g. "90 %" (from the estimate, not assumed).</summary>
    public static string Level(Estimate e) => string.Create(CultureInfo.InvariantCulture, $"{e.Level * 100:0.#} %");

    public static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public void AddTo(Command c, bool replications = true)
    {
        c.Options.Add(Config);
        c.Options.Add(Json);
        c.Options.Add(Seed);
        c.Options.Add(Shift);
        c.Options.Add(Date);
        if (replications) c.Options.Add(Replications);
    }

    /// <summary>The shift the commands simulate or book: the line (its <c>ShiftLength</c> the shift's real length) and the shift's planned stops in seconds from its start.</summary>
    public sealed record ShiftPlan(LineTwinConfig Line, IReadOnlyList<PlannedWindow> Stops);

    /// <summary>
    /// The shift <c>--shift</c> names (or the calendar's first) with its planned stops; with <c>--date</c> the shift that
    /// day, taken as the live twin takes it (a 22:00–06:00 shift is 7 h the night the clocks go forward, 9 h the night
    /// they go back, and a 04:00 break 7 h into it then): without a date a state log of such a night was booked with the
    /// break an hour off. Null after printing why a value is wrong.
    /// </summary>
    public ShiftPlan? ShiftOf(ParseResult parse, LineTwinConfig c, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(parse);
        ArgumentNullException.ThrowIfNull(c);
        ArgumentNullException.ThrowIfNull(error);
        var text = parse.GetValue(Shift);
        var start = c.ShiftStarts.Count > 0 ? c.ShiftStarts[0] : TimeSpan.Zero;
        if (text is not null)
        {
            if (!LineTwinConfig.TryParseTimeOfDay(text, out start))
            {
                error.WriteLine($"--shift: expected a time of day like 06:00, got '{text}'");
                return null;
            }
            // A time that starts no shift would put the calendar's stops at the wrong minutes of the shift (07:00 on a
            // 06/14/22 calendar moved the 10:00 break from 240 to 180 min) without a word.
            if (c.ShiftStarts.Count > 0 && !c.ShiftStarts.Contains(start))
            {
                error.WriteLine($"--shift {text} is not a shift start of line {c.Id} ({string.Join(", ", c.ShiftStarts.Select(t => t.ToString("hh\\:mm", CultureInfo.InvariantCulture)))})");
                return null;
            }
        }
        if (parse.GetValue(Date) is not { } dateText) return new ShiftPlan(c, c.PlannedWindows(start));
        if (!DateTime.TryParseExact(dateText, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day))
        {
            error.WriteLine($"--date: expected a day like 2026-10-24, got '{dateText}'");
            return null;
        }
        var shiftStart = day + start;
        var line = c with { ShiftLength = TimeSpan.FromSeconds(c.ShiftSeconds(shiftStart, c.TimeZone)) };
        return new ShiftPlan(line, c.PlannedWindows(shiftStart, c.TimeZone));
    }

    /// <summary>Whether <c>--replications</c> is at least 2 (a paired interval needs two); false after printing why not.</summary>
    public bool CheckReplications(ParseResult parse, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(parse);
        ArgumentNullException.ThrowIfNull(error);
        // Not raised to 2 quietly: the answer said "2 paired replications" to someone who asked for 0.
        if (parse.GetResult(Replications) is null || parse.GetValue(Replications) >= 2) return true;
        error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"--replications {parse.GetValue(Replications)}: at least 2 are needed (a paired interval needs two)"));
        return false;
    }

    /// <summary>The line's what-ifs from the config, with the shift's planned stops.</summary>
    public static LineScenarios Scenarios(LineTwinConfig c, IReadOnlyList<PlannedWindow> stops, int replications, ulong seed) =>
        new(c.Spec, c.ShiftLength.TotalSeconds, c.MarginPerUnit) { Replications = Math.Max(2, replications), Seed = seed, PlannedStops = stops };

    /// <summary>One line per planned stop, e.g. "planned stop 240–255 min: break (all stations)".</summary>
    public static IEnumerable<string> Describe(LineTwinConfig c, IReadOnlyList<PlannedWindow> stops) =>
        stops.Select(w => string.Create(CultureInfo.InvariantCulture,
            $"planned stop {w.StartSeconds / 60:0}–{w.EndSeconds / 60:0} min into the shift: {w.Reason} ({(w.Station < 0 ? "all stations" : c.Spec.Stations[w.Station].Id)})"));

    /// <summary>Reads the <c>line:</c> section; prints every problem as FILE:LINE:COL: key: message.</summary>
    public static LineTwinConfig? Load(FileInfo file, TextWriter error)
    {
        string yaml;
        try
        {
            yaml = File.ReadAllText(file.FullName);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // As run, check and the other commands say it (.NET's own text called a directory "access denied").
            error.WriteLine($"{file.FullName}: {SiteConfigLoader.CannotRead(file.FullName, ex)}");
            return null;
        }
        var d = new ConfigDiagnostics();
        var c = LineTwinConfig.Parse(yaml, file.FullName, d);
        foreach (var p in d.Sorted()) error.WriteLine(p.ToString());
        return d.IsEmpty ? c : null;
    }

    public static MachineState ToMachineState(StationState s) => s switch
    {
        StationState.Working => MachineState.Running,
        StationState.Starved => MachineState.Starved,
        StationState.Blocked => MachineState.Blocked,
        StationState.Down => MachineState.Faulted,
        StationState.PlannedStop => MachineState.PlannedStop,
        _ => MachineState.Unknown,
    };

    /// <summary>
    /// A recorded or simulated shift: OEE trackers per station plus the bottleneck detector. <paramref name="RejectsNotMeasured"/>:
    /// per station, why its rejects are not known although it counted parts (null: they are), see <see cref="RejectsUnknown"/>.
    /// </summary>
    public sealed record ShiftRecord(IReadOnlyList<string> Stations, IReadOnlyList<OeeTracker> Oee, LineOeeTracker LineOee, ActivePeriodBottleneck Bottleneck, double EndSeconds, string Source)
    {
        public IReadOnlyList<RejectsUnknown?> RejectsNotMeasured { get; init; } = [];
    }

    /// <summary>
    /// Why a station that counted parts has no reject figure. <paramref name="AllPartsCounted"/>: its counter counts every
    /// part it makes (no reject counter, or a simulated shift, which does not model rejects), so performance stands and
    /// its OEE is A × P; false: a reject counter is configured and gave no reading, so its good parts leave out an unknown
    /// number of rejects and performance is no data too (as the live twin's <c>quality.no_data</c>).
    /// </summary>
    public sealed record RejectsUnknown(string Reason, bool AllPartsCounted)
    {
        public OeeReport Apply(OeeReport r) => AllPartsCounted ? r.WithoutQuality() : r.WithoutRejects();
    }

    // Quality 100 % was shown for a station that was never asked for its rejects: no reject reading is no data.
    private static RejectsUnknown?[] RejectsUnknownOf(LineTwinConfig c, OeeTracker[] trackers, bool simulated) =>
        [.. trackers.Select((t, i) => !t.HasCounts || t.RejectCounterLastReadingMs != long.MinValue ? null
            : simulated ? new RejectsUnknown("rejects not simulated", true)
            : c.Stations[i].Reject is null ? new RejectsUnknown("no reject counter", true)
            : new RejectsUnknown("no reject readings in the log", false))];

    /// <summary>
    /// Reads a state log (CSV: time_s,station,state[,good_count,reject_count]; counters are raw PLC values)
    /// or, without one, simulates one shift of the configured line.
    /// </summary>
    public static ShiftRecord Record(LineTwinConfig c, FileInfo? states, ulong seed, IReadOnlyList<PlannedWindow>? stops = null)
    {
        var ids = c.Spec.Stations.Select(s => s.Id).ToArray();
        // Logs hold state changes only, so a state holds until the next change (stale only after a whole shift).
        double stale = c.ShiftLength.TotalSeconds;
        var trackers = c.Spec.Stations.Select(s => new OeeTracker(s.CycleTimeSeconds, c.MicroStop.TotalSeconds, stale)).ToArray();
        int outIdx = c.Spec.StationIndex(c.OutputStation!);
        // Line OEE: the slowest stage's ideal rate and states (the live twin's LineOeeTracker), the output station's parts.
        var line = new LineOeeTracker(c.Spec, outIdx, c.MicroStop.TotalSeconds, stale);
        var detector = new ActivePeriodBottleneck(ids);
        double end = 0;
        if (states is null)
        {
            var sim = new LineSimulator(c.Spec);
            sim.Reset(seed);
            LineScenarios.ScheduleCalendar(sim, stops ?? [], 0);
            var obs = new Observer(trackers, line, detector, c.Spec.TickSeconds);
            sim.Advance(sim.TicksFor(c.ShiftLength.TotalSeconds), obs);
            end = c.ShiftLength.TotalSeconds;
            for (int s = 0; s < ids.Length; s++) trackers[s].AddParts(sim.Completed(s), 0);
            line.AddParts(sim.Completed(outIdx), 0);
            return new ShiftRecord(ids, trackers, line, detector, end, $"simulated shift (seed {seed})") { RejectsNotMeasured = RejectsUnknownOf(c, trackers, simulated: true) };
        }
        // A log's time_s counts from the shift's start: the shift's planned stops book as planned whatever the log says
        // (a log stamped otherwise, e.g. in Unix seconds, starts after every stop and is booked as it is).
        var books = new Observer(trackers, line, detector, 1);
        var calendar = new PlannedStopCalendar(ids.Length, books);
        calendar.Schedule(stops ?? [], 0);
        int lineNo = 0;
        foreach (var raw in File.ReadLines(states.FullName))
        {
            lineNo++;
            var t = raw.Trim();
            if (t.Length == 0 || t.StartsWith('#') || (lineNo == 1 && t.StartsWith("time", StringComparison.OrdinalIgnoreCase))) continue;
            var f = t.Split(',');
            if (f.Length < 3 || !double.TryParse(f[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var ts))
                throw new FormatException($"{states.FullName}:{lineNo}: expected time_s,station,state[,good,reject]");
            int s = Array.IndexOf(ids, f[1].Trim());
            if (s < 0) throw new FormatException($"{states.FullName}:{lineNo}: station '{f[1].Trim()}' is not in the line");
            if (!MachineStates.TryParse(f[2], out var st)) throw new FormatException($"{states.FullName}:{lineNo}: unknown state '{f[2].Trim()}'");
            long ms = (long)(ts * 1000);
            calendar.OnState(s, ms, st);
            if (Counter(3, "good_count") is { } good)
            {
                trackers[s].OnGoodCounter(ms, good);
                if (s == outIdx) line.OnGoodCounter(ms, good);
            }
            if (Counter(4, "reject_count") is { } rej)
            {
                trackers[s].OnRejectCounter(ms, rej);
                if (s == outIdx) line.OnRejectCounter(ms, rej);
            }

            // An empty field is no reading; anything else that is not a count is an error (it was skipped: parts went missing).
            ulong? Counter(int field, string name)
            {
                if (f.Length <= field || f[field].Trim().Length == 0) return null;
                if (ulong.TryParse(f[field].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var value)) return value;
                throw new FormatException($"{states.FullName}:{lineNo}: {name} '{f[field].Trim()}' is not a counter reading (a whole number ≥ 0)");
            }
            end = Math.Max(end, ts);
        }
        calendar.Advance((long)(end * 1000));
        return new ShiftRecord(ids, trackers, line, detector, end, states.FullName) { RejectsNotMeasured = RejectsUnknownOf(c, trackers, simulated: false) };
    }

    /// <summary>Feeds the OEE books and the bottleneck detector: from the simulator (ticks) or from a state log through the calendar.</summary>
    private sealed class Observer(OeeTracker[] trackers, LineOeeTracker line, ActivePeriodBottleneck detector, double tick) : IStationStateObserver, IBookedStateSink
    {
        public void OnStateChange(long t, int station, StationState state) => OnBookedState(station, (long)(t * tick * 1000), ToMachineState(state));

        public void OnBookedState(int station, long timestampMs, MachineState state)
        {
            trackers[station].OnState(timestampMs, state);
            line.OnState(station, timestampMs, state);
            detector.OnState(station, timestampMs / 1000.0, ActivePeriodBottleneck.IsActive(state));
        }
    }
}
