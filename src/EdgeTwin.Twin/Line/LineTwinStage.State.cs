using System.Globalization;
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
public sealed record LineStateRestore(long SavedAtUnixMs, bool Books, string? BooksNotRestored, IReadOnlyList<string> Learned, IReadOnlyList<string> NotRestored);

/// <summary>
/// The line twin's state over restarts. A restart is a gap in the readings and nothing more: the shift's books, the
/// part counters' last readings (so the parts made while the agent was down are counted by the first reading after it,
/// as after any gap), the calendar, the lamps, the bottleneck's periods, what each station learned (cycle, MTBF, MTTR)
/// and each quality model's online learning. Without it every deploy restarted the shift's OEE from zero and sent the
/// quality models back to their base.
/// <para>
/// File: magic, version, the codec's layout fingerprint, saved-at, the line's id, then the books (with a fingerprint of
/// the configuration they need: stations, cycle times, shift calendar, planned stops, lamps) and per station its learner
/// and quality model (each with the fingerprint of what the configuration makes of it before it learns), each block
/// length-prefixed; SHA-256 of all of it at the end. A block whose configuration changed starts afresh on its own.
/// </para>
/// </summary>
public sealed partial class LineTwinStage
{
    private static readonly byte[] StateMagic = "EDGETWIN-LINE-STATE\n"u8.ToArray();
    private const int StateVersion = 1;

    private static readonly FieldStateCodec StateCodec = new(
        [typeof(OeeTracker), typeof(LineOeeTracker), typeof(ActivePeriodBottleneck), typeof(PlannedStopCalendar), typeof(StackLightDecoder), typeof(StationLearner), typeof(StationQuality)],
        // Collaborators and configuration held as objects: rebuilt from the config, not saved.
        skip: f => f.FieldType == typeof(IBookedStateSink) || f.FieldType == typeof(TrainedOnFile) || f.FieldType == typeof(LineStage));

    // What the configuration makes of each block before anything is learned (set by the constructor).
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
        var shape = new StringBuilder()
            .Append(CultureInfo.InvariantCulture, $"{c.ShiftLength.Ticks};{string.Join(',', c.ShiftStarts.Select(s => s.Ticks))};")
            .Append(string.Join('|', c.PlannedStops)).Append(';').Append(c.OutputStation).Append(';')
            .Append(string.Join('|', c.Spec.Stations.Select(s => s.Id))).Append(';')
            .Append(string.Join('|', c.Spec.Buffers.Select(b => $"{b.Id}:{b.Capacity}"))).Append(';')
            .Append(string.Join('|', c.Stations.Select(s => s.StackLight)));
        _booksFingerprint = Hash(Encoding.UTF8.GetBytes(shape.ToString()), Bytes(BookObjects()));
        _learnerFingerprints = [.. _learners.Select(l => Hash(Bytes([l])))];
        _qualityFingerprints = [.. _quality.Select(q => q is null ? "" : Hash(Bytes([q])))];
    }

    private static string Hash(params byte[][] parts)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var p in parts) sha.AppendData(p);
        return Convert.ToHexString(sha.GetHashAndReset());
    }

    private static byte[] Bytes(IEnumerable<object> objects)
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            foreach (var o in objects) StateCodec.Write(w, o);
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
            w.Write(StateMagic);
            w.Write(StateVersion);
            w.Write(StateCodec.LayoutFingerprint.Span);
            w.Write(savedAtUnixMs);
            w.Write(_config.Id);
            w.Write(_booksFingerprint);
            WriteBlock(w, WriteBooks);
            w.Write(_config.Stations.Count);
            for (int i = 0; i < _config.Stations.Count; i++)
            {
                w.Write(_config.Spec.Stations[i].Id);
                w.Write(_learnerFingerprints[i]);
                WriteBlock(w, b => StateCodec.Write(b, _learners[i]));
                w.Write(_qualityFingerprints[i]);
                WriteBlock(w, b =>
                {
                    if (_quality[i] is { } q) StateCodec.Write(b, q);
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
        foreach (var o in BookObjects()) StateCodec.Write(w, o);
    }

    private static void WriteBlock(BinaryWriter w, Action<BinaryWriter> write)
    {
        using var ms = new MemoryStream();
        using (var b = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true)) write(b);
        w.Write((int)ms.Length);
        w.Write(ms.GetBuffer(), 0, (int)ms.Length);
    }

    /// <summary>
    /// Goes on from a state <see cref="SaveState"/> wrote, before the first batch. The books are taken when the line's
    /// configuration they rest on is unchanged and the state is less than a shift old (a restart in the next shift then
    /// closes the saved shift's books and publishes its report, as an agent that never stopped would); each station's
    /// learned figures and quality model when its own configuration is unchanged, however old. A block that does not fit
    /// starts afresh and the result says why. Throws <see cref="InvalidDataException"/> for a file that is not a line
    /// state or is damaged (checksum, truncation); nothing is changed then.
    /// </summary>
    public LineStateRestore RestoreState(byte[] file, long nowUnixMs)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (file.Length < StateMagic.Length + 32 || !file.AsSpan(0, StateMagic.Length).SequenceEqual(StateMagic))
            throw new InvalidDataException("not a line twin state file (magic)");
        var body = file.AsSpan(0, file.Length - 32);
        if (!SHA256.HashData(body).AsSpan().SequenceEqual(file.AsSpan(file.Length - 32)))
            throw new InvalidDataException("checksum mismatch: the file is damaged or was cut short");

        try
        {
            using var r = new BinaryReader(new MemoryStream(file, 0, body.Length, writable: false), Encoding.UTF8);
            r.ReadBytes(StateMagic.Length);
            var version = r.ReadInt32();
            var layout = r.ReadBytes(32);
            long savedAt = r.ReadInt64();
            var notRestored = new List<string>();
            var learned = new List<string>();
            if (version != StateVersion || !layout.AsSpan().SequenceEqual(StateCodec.LayoutFingerprint.Span))
            {
                const string why = "written by an agent build whose line twin keeps other state: everything starts afresh";
                return new LineStateRestore(savedAt, false, why, learned, [why]);
            }

            var lineId = r.ReadString();
            if (lineId != _config.Id)
            {
                var why = $"saved for line '{lineId}', this is line '{_config.Id}': everything starts afresh";
                return new LineStateRestore(savedAt, false, why, learned, [why]);
            }

            var booksFingerprint = r.ReadString();
            var books = ReadBlock(r);
            string? booksWhy = booksFingerprint != _booksFingerprint ? "the line's configuration changed (stations, cycle times, shift calendar, planned stops or lamps)"
                : nowUnixMs - savedAt > (long)_config.ShiftLength.TotalMilliseconds ? $"saved {Durations.Approximate(TimeSpan.FromMilliseconds(nowUnixMs - savedAt))} ago, longer than a shift"
                : savedAt - nowUnixMs > 60_000 ? $"saved {Durations.Approximate(TimeSpan.FromMilliseconds(savedAt - nowUnixMs))} in the future (the clock was changed)"
                : null;
            if (booksWhy is null && !TryReadBooks(books, out var error)) booksWhy = error;
            if (booksWhy is not null) notRestored.Add("the shift's books: " + booksWhy);

            int stations = r.ReadInt32();
            for (int k = 0; k < stations; k++)
            {
                var id = r.ReadString();
                var learnerFingerprint = r.ReadString();
                var learner = ReadBlock(r);
                var qualityFingerprint = r.ReadString();
                var quality = ReadBlock(r);
                int i = _config.Spec.Stations.ToList().FindIndex(s => s.Id == id);
                if (i < 0)
                {
                    notRestored.Add($"{id}: no longer in the line");
                    continue;
                }

                if (learnerFingerprint != _learnerFingerprints[i]) notRestored.Add($"{id}: its figures changed in the configuration (cycle time, MTBF, MTTR or CV): learned anew");
                else if (!TryRead(learner, [_learners[i]], out var why)) notRestored.Add($"{id}: {why}");
                else learned.Add(id);

                if (_quality[i] is not { } q) continue;
                if (qualityFingerprint != _qualityFingerprints[i]) notRestored.Add($"{id} (quality): {(qualityFingerprint.Length == 0 ? "had no quality model" : "its model file, inputs, window or inspection delay changed")}: starts from the base model");
                else if (!TryRead(quality, [q], out var why)) notRestored.Add($"{id} (quality): {why}");
                else learned.Add($"{id} (quality)");
            }

            return new LineStateRestore(savedAt, booksWhy is null, booksWhy, learned, notRestored);
        }
        catch (EndOfStreamException)
        {
            throw new InvalidDataException("cut short inside its blocks");
        }
    }

    private static byte[] ReadBlock(BinaryReader r)
    {
        int length = r.ReadInt32();
        if (length < 0 || length > r.BaseStream.Length - r.BaseStream.Position) throw new EndOfStreamException();
        return r.ReadBytes(length);
    }

    private bool TryReadBooks(byte[] block, out string? why)
    {
        long shiftTicks = 0, booksFrom = 0, lastPublish = 0, lastForecast = 0;
        int kind = 0;
        var lastSignal = new long[_lastSignalMs.Length];
        var level = new int[_bufferLevel.Length];
        var levelMs = new long[_bufferLevelMs.Length];
        bool ok = TryRead(block, BookObjects(), out why, r =>
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
        });
        if (!ok) return false;
        _shiftStart = new DateTime(shiftTicks, (DateTimeKind)kind);
        _booksFromMs = booksFrom;
        _lastPublishMs = lastPublish;
        _lastForecastMs = lastForecast;
        lastSignal.CopyTo(_lastSignalMs, 0);
        level.CopyTo(_bufferLevel, 0);
        levelMs.CopyTo(_bufferLevelMs, 0);
        if (_shiftStart != DateTime.MinValue) _plannedStops = _config.PlannedWindows(_shiftStart.TimeOfDay);
        _awaitingAfterRestore = [.. _hasSignals];
        _firstAfterRestoreMs = long.MinValue;
        return true;
    }

    // Reads a block into the targets; on a mismatch every target goes back to what it held (nothing half-restored).
    private static bool TryRead(byte[] block, object[] targets, out string? why, Action<BinaryReader>? header = null)
    {
        var backup = Bytes(targets);
        try
        {
            using var r = new BinaryReader(new MemoryStream(block, writable: false), Encoding.UTF8);
            header?.Invoke(r);
            foreach (var t in targets) StateCodec.Read(r, t);
            if (r.BaseStream.Position != block.Length) throw new InvalidDataException("more state saved than the configuration has room for");
            why = null;
            return true;
        }
        catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException)
        {
            using var r = new BinaryReader(new MemoryStream(backup, writable: false), Encoding.UTF8);
            foreach (var t in targets) StateCodec.Read(r, t);
            why = ex is EndOfStreamException ? "its saved state is shorter than the configuration needs" : "its saved state does not fit: " + ex.Message;
            return false;
        }
    }
}
