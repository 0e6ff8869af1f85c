using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using EdgeTwin.Core.Config;
using EdgeTwin.Twin.Line.Learning;
using EdgeTwin.Twin.Line.Oee;
using EdgeTwin.Twin.Line.Quality;
using EdgeTwin.Twin.State;

namespace EdgeTwin.Twin.Line;

/// <summary>What <see cref="LineTwinStage.RestoreState"/> took from a saved state, and what it left and why.</summary>
/// <param name="SavedAtUnixMs">When the state was saved.</param>
/// <param name="Books">Whether the shift's OEE books (and the bottleneck, the calendar, the lamps) go on from the saved ones.</param>
/// <param name="BooksNotRestored">Why they start afresh (null when restored).</param>
/// <param name="Learned">The stations whose learned figures (cycle, MTBF, MTTR) and quality model go on, e.g. <c>S1</c>, <c>S3 (quality)</c>.</param>
/// <param name="NotRestored">What starts afresh and why, e.g. <c>S2: its configuration changed (StationLearner._cycle0: …)</c>.</param>
/// <param name="FromOtherBuild">Something was not taken because another agent build wrote it (another file format, or a block
/// its codec lays out differently and does not describe): the caller keeps the file for that build before this one writes over it.</param>
/// <param name="LayoutChanges">Another agent build wrote blocks whose classes differ from this build's only by fields, and
/// they were taken over field by field: what differs, per class (<c>OeeTracker: new _goodSinceRejectMoved</c>); empty otherwise.</param>
public sealed record LineStateRestore(long SavedAtUnixMs, bool Books, string? BooksNotRestored, IReadOnlyList<string> Learned, IReadOnlyList<string> NotRestored, bool FromOtherBuild = false, IReadOnlyList<string>? LayoutChanges = null)
{
    /// <summary>Another build's blocks were taken over field by field (<see cref="LayoutChanges"/> names the fields).</summary>
    public bool TakenOverFromOtherBuild => LayoutChanges is { Count: > 0 };
}

/// <summary>
/// The line twin's state over restarts. A restart is a gap in the readings and nothing more: the shift's books, the
/// part counters' last readings (so the parts made while the agent was down are counted by the first reading after it,
/// as after any gap), the calendar, the lamps, the bottleneck's periods, what each station learned (cycle, MTBF, MTTR)
/// and each quality model's online learning. Without it every deploy restarted the shift's OEE from zero and sent the
/// quality models back to their base.
/// <para>
/// File: magic, version, saved-at, the line's id, then the books and per station its learner and quality model, each
/// block with the layout fingerprint of its own codec and (format 3) the codec's layout description, the fingerprint of
/// the configuration it needs (named parts: "stations=…;planned_stops=…", so the log can say what changed) and its
/// bytes, length-prefixed; SHA-256 of all of it at the end. A block that does not fit starts afresh on its own.
/// </para>
/// <para>
/// An upgrade whose classes gained or lost fields (<c>OeeTracker._goodSinceRejectMoved</c>) takes a format-3 block over
/// field by field (<see cref="FieldStateCodec.Read(BinaryReader, object, FieldStateCodec.SavedLayout?)"/>): a new field
/// starts with the value the constructor gives it, so it must be one that is safe to resume with. The configuration parts
/// hashed from codec bytes (cycle times, stack lights, figures, the model file) are then left to the codec's checks of the
/// read-only configuration fields when the classes they hash changed. Format 2 blocks are read by an exact layout only.
/// </para>
/// </summary>
public sealed partial class LineTwinStage
{
    private static readonly byte[] Magic = "EDGETWIN-LINE-STATE\n"u8.ToArray();
    private const int StateVersion = 3;

    // Collaborators and configuration held as objects: rebuilt from the config, not saved.
    private static bool NotState(FieldInfo f) =>
        f.FieldType == typeof(IBookedStateSink) || f.FieldType == typeof(TrainedOnFile) || f.FieldType == typeof(LineStage);

    private static readonly FieldStateCodec BooksCodec = new(
        [typeof(OeeTracker), typeof(LineOeeTracker), typeof(ActivePeriodBottleneck), typeof(PlannedStopCalendar), typeof(StackLightDecoder)], NotState);

    private static readonly FieldStateCodec LearnerCodec = new([typeof(StationLearner)], NotState);

    private static readonly FieldStateCodec QualityCodec = new([typeof(StationQuality)], NotState);

    /// <summary>The first bytes of a line state file (a file that does not begin so is not taken over).</summary>
    public static ReadOnlySpan<byte> StateFileMagic => Magic;

    // What the configuration makes of each block before anything is learned (set by the constructor), in named parts.
    private string _booksFingerprint = "";
    private string[] _learnerFingerprints = [];
    private string[] _qualityFingerprints = [];

    private OeeTracker NewOeeTracker(int station) => new(_config.Spec.Stations[station].CycleTimeSeconds, _config.MicroStop.TotalSeconds);

    private StationLearner NewLearner(int station) => new(_config.Spec.Stations[station], _config.MicroStop.TotalSeconds);

    private LineOeeTracker NewLineOee() => new(_config.Spec, _output, _config.MicroStop.TotalSeconds);

    private ActivePeriodBottleneck NewBottleneck() => new(_config.Spec.Stations.Select(s => s.Id).ToArray());

    private StackLightDecoder? NewLight(int station) => _config.Stations[station].StackLight is { } l
        ? new StackLightDecoder(l.Red is not null, l.Amber is not null, l.Green is not null, l.HoldOrDefault)
        : null;

    private StationQuality? NewQuality(int station) => _config.Stations[station].Quality is { } q
        ? new StationQuality(q.LoadModel(), q.Inputs.Count, q.Window, q.InspectionDelayParts)
        : null;

    // The books' objects in file order (stations' trackers, the line's, bottleneck, calendar, the wired stack lights).
    private object[] BookObjects() => [.. _oee, _lineOee, _bottleneck, _calendar, .. _lights.OfType<StackLightDecoder>()];

    /// <summary>Fingerprints of the fresh (configured, not yet learned) state: call at the end of the constructor.</summary>
    private void FingerprintFreshState()
    {
        var c = _config;
        string Text(string text) => Hash(Encoding.UTF8.GetBytes(text));
        _booksFingerprint = Parts(
            ("stations", Text($"{string.Join('|', c.Spec.Stations.Select(s => s.Id))};{c.OutputStation};{string.Join('|', c.Spec.Buffers.Select(b => $"{b.Id}:{b.Capacity}"))}")),
            ("cycle_times_or_micro_stop", Hash(Bytes(BooksCodec, [.. _oee, _lineOee]))),
            ("shift", Text(string.Create(CultureInfo.InvariantCulture, $"{c.ShiftLength.Ticks};{string.Join(',', c.ShiftStarts.Select(s => s.Ticks))}{(c.TimeZoneId is { } zone ? ";" + zone : "")}"))),
            // The reason is a label: renaming it changes no booking.
            ("planned_stops", Text(string.Join('|', c.PlannedStops.Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Start.Ticks}+{p.Duration.Ticks}@{p.Station}"))))),
            ("stack_lights", Hash(Bytes(BooksCodec, _lights.OfType<StackLightDecoder>()), Encoding.UTF8.GetBytes(string.Join('|', c.Stations.Select(s => s.StackLight))))));
        _learnerFingerprints = [.. _learners.Select(l => Parts(("figures", Hash(Bytes(LearnerCodec, [l])))))];
        _qualityFingerprints = [.. c.Stations.Select((s, i) => s.Quality is { } q && _quality[i] is { } live
            ? Parts(
                ("model_file", Hash(Bytes(QualityCodec, [live.Model]))),
                ("inputs", q.Inputs.Count.ToString(CultureInfo.InvariantCulture)),
                ("window", q.Window.ToString(CultureInfo.InvariantCulture)),
                ("inspection_delay_parts", q.InspectionDelayParts.ToString(CultureInfo.InvariantCulture)))
            : "")];
    }

    // The configuration parts hashed from codec bytes, with the classes whose layout the hash depends on: when another
    // build laid those out otherwise, the hash cannot be compared, and the codec's read-only checks stand in for it.
    private static readonly (string Part, Type[] Types)[] BooksLayoutParts =
        [("cycle_times_or_micro_stop", [typeof(OeeTracker), typeof(LineOeeTracker)]), ("stack_lights", [typeof(StackLightDecoder)])];

    private static readonly (string Part, Type[] Types)[] LearnerLayoutParts = [("figures", [typeof(StationLearner)])];

    private static readonly (string Part, Type[] Types)[] QualityLayoutParts = [("model_file", [typeof(OnlineLogisticModel)])];

    private static string Parts(params (string Name, string Value)[] parts) => string.Join(';', parts.Select(p => p.Name + "=" + p.Value));

    // The named parts in which two fingerprints differ ("planned_stops, stack_lights").
    private static string Changed(string saved, string now)
    {
        // The saved one comes from the file: a damaged one may name a part twice (ToDictionary threw ArgumentException
        // past RestoreState; found by fuzzing), so the last wins and it is simply reported as differing.
        static Dictionary<string, string> Split(string f)
        {
            var parts = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in f.Split(';', StringSplitOptions.RemoveEmptyEntries).Select(p => p.Split('=', 2)))
            {
                parts[p[0]] = p.Length > 1 ? p[1] : "";
            }

            return parts;
        }

        var a = Split(saved);
        var b = Split(now);
        var changed = a.Keys.Union(b.Keys).Where(k => a.GetValueOrDefault(k) != b.GetValueOrDefault(k)).ToList();
        return changed.Count == 0 ? "its configuration" : string.Join(", ", changed);
    }

    private static string Hash(params byte[][] parts)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var p in parts) sha.AppendData(p);
        return Convert.ToHexString(sha.GetHashAndReset())[..16];
    }

    private static byte[] Bytes(FieldStateCodec codec, IEnumerable<object> objects)
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            foreach (var o in objects) codec.Write(w, o);
        }

        return ms.ToArray();
    }

    /// <summary>
    /// Everything the line twin has booked and learned, as the bytes of a state file. Call between batches (on the
    /// pipeline's thread, or after the last one): the objects must not change while they are written.
    /// </summary>
    public byte[] SaveState(long savedAtUnixMs)
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            w.Write(StateVersion);
            w.Write(savedAtUnixMs);
            w.Write(_config.Id);
            WriteBlock(w, BooksCodec, _booksFingerprint, WriteBooks);
            w.Write(_config.Stations.Count);
            for (int i = 0; i < _config.Stations.Count; i++)
            {
                w.Write(_config.Spec.Stations[i].Id);
                var learner = _learners[i];
                WriteBlock(w, LearnerCodec, _learnerFingerprints[i], b => LearnerCodec.Write(b, learner));
                var quality = _quality[i];
                WriteBlock(w, QualityCodec, _qualityFingerprints[i], b =>
                {
                    if (quality is not null) QualityCodec.Write(b, quality);
                });
            }
        }

        var body = ms.ToArray();
        return [.. body, .. SHA256.HashData(body)];
    }

    private void WriteBooks(BinaryWriter w)
    {
        w.Write(_shiftStart.Ticks);
        w.Write((int)_shiftStart.Kind);
        w.Write(_booksFromMs);
        // The publishing rhythm goes on too: a restart does not shift when the twin state is published.
        w.Write(_lastPublishMs);
        w.Write(_lastForecastMs);
        foreach (var v in _lastSignalMs) w.Write(v);
        foreach (var v in _bufferLevel) w.Write(v);
        foreach (var v in _bufferLevelMs) w.Write(v);
        foreach (var o in BookObjects()) BooksCodec.Write(w, o);
    }

    private static void WriteBlock(BinaryWriter w, FieldStateCodec codec, string fingerprint, Action<BinaryWriter> write)
    {
        w.Write(codec.LayoutFingerprint.Span);
        w.Write(codec.Description.Length);
        w.Write(codec.Description);
        w.Write(fingerprint);
        using var ms = new MemoryStream();
        using (var b = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true)) write(b);
        w.Write((int)ms.Length);
        w.Write(ms.GetBuffer(), 0, (int)ms.Length);
    }

    /// <summary>A block as read from the file: its codec layout (and, format 3, its description), its configuration fingerprint, its bytes.</summary>
    private readonly record struct SavedBlock(byte[] Layout, byte[]? Description, string Fingerprint, byte[] Bytes)
    {
        public static SavedBlock Read(BinaryReader r, int version)
        {
            var layout = r.ReadBytes(32);
            byte[]? description = null;
            if (version >= 3)
            {
                int described = r.ReadInt32();
                if (described < 0 || described > r.BaseStream.Length - r.BaseStream.Position) throw new EndOfStreamException();
                description = r.ReadBytes(described);
            }

            var fingerprint = FieldStateCodec.ReadString(r);
            int length = r.ReadInt32();
            if (layout.Length != 32 || length < 0 || length > r.BaseStream.Length - r.BaseStream.Position) throw new EndOfStreamException();
            return new SavedBlock(layout, description, fingerprint, r.ReadBytes(length));
        }

        public bool LayoutMatches(FieldStateCodec codec) => Layout.AsSpan().SequenceEqual(codec.LayoutFingerprint.Span);

        /// <summary>The writer's layout when it is not this build's and is described (null: this build's, or not readable).</summary>
        public FieldStateCodec.SavedLayout? Writer(FieldStateCodec codec)
        {
            if (LayoutMatches(codec) || Description is null) return null;
            try
            {
                return FieldStateCodec.SavedLayout.Parse(Description);
            }
            catch (InvalidDataException)
            {
                return null;
            }
        }

        /// <summary>Whether this build reads the block: its own layout, or another one it describes.</summary>
        public bool Readable(FieldStateCodec codec) => LayoutMatches(codec) || Writer(codec) is not null;

        // Why this block cannot be read into a fresh one of `fingerprint` (null: it can). Of another build's layout, the
        // parts hashed from codec bytes of classes laid out otherwise are not compared (`layoutParts`).
        public string? Mismatch(FieldStateCodec codec, string fingerprint, string what, (string Part, Type[] Types)[] layoutParts)
        {
            if (LayoutMatches(codec)) return Fingerprint != fingerprint ? $"{Changed(Fingerprint, fingerprint)} changed in the configuration" : null;
            if (Writer(codec) is not { } writer) return $"kept by an agent build that saves {what} differently";
            var ignored = layoutParts.Where(p => !p.Types.All(t => codec.SameLayout(writer, t))).Select(p => p.Part).ToHashSet(StringComparer.Ordinal);
            string Comparable(string f) => string.Join(';', f.Split(';', StringSplitOptions.RemoveEmptyEntries).Where(p => !ignored.Contains(p.Split('=', 2)[0])));
            return Comparable(Fingerprint) != Comparable(fingerprint) ? $"{Changed(Comparable(Fingerprint), Comparable(fingerprint))} changed in the configuration" : null;
        }
    }

    /// <summary>
    /// Goes on from a state <see cref="SaveState"/> wrote, before the first batch. The books are taken when the line's
    /// configuration they rest on is unchanged and the state is less than a shift old (a restart in the next shift then
    /// closes the saved shift's books and publishes its report, as an agent that never stopped would); each station's
    /// learned figures and quality model when its own configuration is unchanged, however old. A block that does not fit
    /// (its configuration changed, or an agent build that saves it differently) starts afresh and the result says why.
    /// Throws <see cref="InvalidDataException"/> for a file that is not a line state or is damaged (checksum,
    /// truncation); nothing is changed then.
    /// </summary>
    public LineStateRestore RestoreState(byte[] file, long nowUnixMs)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (file.Length == 0) throw new InvalidDataException("empty (0 bytes)");
        if (file.Length < Magic.Length + 32 || !file.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw new InvalidDataException("not a line twin state file (it does not begin as one)");
        var body = file.AsSpan(0, file.Length - 32);
        if (!SHA256.HashData(body).AsSpan().SequenceEqual(file.AsSpan(file.Length - 32)))
            throw new InvalidDataException("checksum mismatch: the file is damaged or was cut short");

        try
        {
            using var r = new BinaryReader(new MemoryStream(file, 0, body.Length, writable: false), Encoding.UTF8);
            r.ReadBytes(Magic.Length);
            var version = r.ReadInt32();
            long savedAt = r.ReadInt64();
            // A damaged time made the age checks below overflow TimeSpan (ArgumentOutOfRangeException past every caller;
            // found by fuzzing): a time outside what a clock can give is damage.
            if (savedAt < 0 || savedAt > DateTimeOffset.MaxValue.ToUnixTimeMilliseconds())
                throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"saved at {savedAt} ms since 1970, not a time"));
            var notRestored = new List<string>();
            var learned = new List<string>();
            if (version is not (2 or StateVersion))
            {
                var why = $"written in format {version}, this agent reads formats 2 and {StateVersion}: everything starts afresh";
                return new LineStateRestore(savedAt, false, why, learned, [why], FromOtherBuild: true);
            }

            var lineId = FieldStateCodec.ReadString(r);
            if (lineId != _config.Id)
            {
                var why = $"saved for line '{lineId}', this is line '{_config.Id}': everything starts afresh";
                return new LineStateRestore(savedAt, false, why, learned, [why]);
            }

            var books = SavedBlock.Read(r, version);
            var otherBuild = !books.Readable(BooksCodec);
            var changes = new List<string>();
            void Evolved(FieldStateCodec codec, SavedBlock block)
            {
                if (block.Writer(codec) is { } writer) changes.AddRange(codec.Differences(writer).Where(d => !changes.Contains(d)));
            }

            Evolved(BooksCodec, books);
            string? booksWhy = books.Mismatch(BooksCodec, _booksFingerprint, "the books", BooksLayoutParts)
                ?? (nowUnixMs - savedAt > (long)_config.ShiftLength.TotalMilliseconds ? $"saved {Durations.Approximate(TimeSpan.FromMilliseconds(nowUnixMs - savedAt))} ago, longer than a shift"
                : savedAt - nowUnixMs > 60_000 ? $"saved {Durations.Approximate(TimeSpan.FromMilliseconds(savedAt - nowUnixMs))} in the future (the clock was changed)"
                : null);
            if (booksWhy is null && !TryReadBooks(books.Bytes, books.Writer(BooksCodec), out var error)) booksWhy = error;
            if (booksWhy is not null) notRestored.Add("the shift's books: " + booksWhy);

            int stations = r.ReadInt32();
            var ids = _config.Spec.Stations.Select(s => s.Id).ToList();
            for (int k = 0; k < stations; k++)
            {
                var id = FieldStateCodec.ReadString(r);
                var learner = SavedBlock.Read(r, version);
                var quality = SavedBlock.Read(r, version);
                otherBuild |= !learner.Readable(LearnerCodec) || (quality.Fingerprint.Length > 0 && !quality.Readable(QualityCodec));
                Evolved(LearnerCodec, learner);
                if (quality.Fingerprint.Length > 0) Evolved(QualityCodec, quality);
                int i = ids.IndexOf(id);
                if (i < 0)
                {
                    notRestored.Add($"{id}: no longer in the line");
                    continue;
                }

                if (learner.Mismatch(LearnerCodec, _learnerFingerprints[i], "learned figures", LearnerLayoutParts) is { } why) notRestored.Add($"{id}: {why} (cycle time, MTBF, MTTR, CV or micro_stop): learned anew from the configured figures");
                else if (!TryRead(LearnerCodec, learner.Bytes, [_learners[i]], out why, writer: learner.Writer(LearnerCodec))) notRestored.Add($"{id}: {why}");
                else learned.Add(id);

                if (_quality[i] is not { } q) continue;
                if (quality.Fingerprint.Length == 0) notRestored.Add($"{id} (quality): had no quality model: starts from the base model");
                else if (quality.Mismatch(QualityCodec, _qualityFingerprints[i], "quality models", QualityLayoutParts) is { } qwhy) notRestored.Add($"{id} (quality): {qwhy}: starts from the base model");
                else if (!TryRead(QualityCodec, quality.Bytes, [q], out qwhy, writer: quality.Writer(QualityCodec))) notRestored.Add($"{id} (quality): {qwhy}");
                else learned.Add($"{id} (quality)");
            }

            // What-ifs and the maintenance cost hook read the learned line: as restored, not as configured until the first publish.
            Volatile.Write(ref _learned, _config.Spec with { Stations = [.. _config.Spec.Stations.Select((s, i) => _learners[i].Apply(s, nowUnixMs))] });
            return new LineStateRestore(savedAt, booksWhy is null, booksWhy, learned, notRestored, otherBuild, changes);
        }
        catch (EndOfStreamException)
        {
            throw new InvalidDataException("cut short inside its blocks");
        }
    }

    private bool TryReadBooks(byte[] block, FieldStateCodec.SavedLayout? writer, out string? why)
    {
        long shiftTicks = 0, booksFrom = 0, lastPublish = 0, lastForecast = 0;
        int kind = 0;
        var lastSignal = new long[_lastSignalMs.Length];
        var level = new int[_bufferLevel.Length];
        var levelMs = new long[_bufferLevelMs.Length];
        bool ok = TryRead(BooksCodec, block, BookObjects(), out why, r =>
        {
            shiftTicks = r.ReadInt64();
            kind = r.ReadInt32();
            booksFrom = r.ReadInt64();
            lastPublish = r.ReadInt64();
            lastForecast = r.ReadInt64();
            for (int i = 0; i < lastSignal.Length; i++) lastSignal[i] = r.ReadInt64();
            for (int i = 0; i < level.Length; i++) level[i] = r.ReadInt32();
            for (int i = 0; i < levelMs.Length; i++) levelMs[i] = r.ReadInt64();
            if (kind is < 0 or > 2 || shiftTicks < 0 || shiftTicks > DateTime.MaxValue.Ticks) throw new InvalidDataException("shift start out of range");
        }, writer);
        if (!ok) return false;
        _calendar.AfterRestore();
        _shiftStart = new DateTime(shiftTicks, (DateTimeKind)kind);
        _booksFromMs = booksFrom;
        _lastPublishMs = lastPublish;
        _lastForecastMs = lastForecast;
        lastSignal.CopyTo(_lastSignalMs, 0);
        level.CopyTo(_bufferLevel, 0);
        levelMs.CopyTo(_bufferLevelMs, 0);
        if (_shiftStart != DateTime.MinValue) _plannedStops = PlannedWindows(_shiftStart);
        _awaitingAfterRestore = [.. _hasSignals];
        _firstAfterRestoreMs = long.MinValue;
        return true;
    }

    // Reads a block into the targets; on a mismatch every target goes back to what it held (nothing half-restored).
    private static bool TryRead(FieldStateCodec codec, byte[] block, object[] targets, out string? why, Action<BinaryReader>? header = null, FieldStateCodec.SavedLayout? writer = null)
    {
        var backup = Bytes(codec, targets);
        try
        {
            using var r = new BinaryReader(new MemoryStream(block, writable: false), Encoding.UTF8);
            header?.Invoke(r);
            foreach (var t in targets) codec.Read(r, t, writer);
            if (r.BaseStream.Position != block.Length) throw new InvalidDataException("more state saved than the configuration has room for");
            why = null;
            return true;
        }
        catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException)
        {
            using var r = new BinaryReader(new MemoryStream(backup, writable: false), Encoding.UTF8);
            foreach (var t in targets) codec.Read(r, t);
            why = ex is EndOfStreamException ? "its saved state is shorter than the configuration needs" : "its saved state does not fit: " + ex.Message;
            return false;
        }
    }
}
