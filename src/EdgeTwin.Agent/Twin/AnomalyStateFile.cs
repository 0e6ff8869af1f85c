using System.Security.Cryptography;
using System.Text;
using EdgeTwin.Twin.Anomaly;
using EdgeTwin.Twin.State;

namespace EdgeTwin.Agent.Twin;

/// <summary>
/// One series' learned state as saved: what it was learned under, its episode, the detector's bytes, and the layout of
/// the build that wrote them (null: this build's), which goes with them while the series has not come back.
/// </summary>
internal sealed record SavedAnomalySeries(long SavedAtUnixMs, ulong OptionsFingerprint, bool EpisodeOpen, int EpisodeQuiet, byte[] Detector, DetectorLayout? Layout = null);

/// <summary>Another build's detector layout: its fingerprint, its self-description (as written and as read).</summary>
internal sealed record DetectorLayout(byte[] Fingerprint, byte[] Description, FieldStateCodec.SavedLayout Parsed)
{
    /// <summary>What differs from this build's detectors, per type ("StreamingAnomalyDetector: new _x").</summary>
    public IReadOnlyList<string> Differences => DetectorStateCodec.Differences(Parsed);
}

/// <summary>
/// A read <see cref="AnomalyStateFile"/>: when it was written, whether this build's detectors can read it, the series.
/// <paramref name="LayoutTag"/> names the detector layout that wrote it (<see cref="AnomalyStateFile.LayoutTagOf"/>),
/// <paramref name="FormatVersion"/> its container format; a file of another format carries no series (never parsed).
/// </summary>
internal sealed record AnomalyStateContents(long SavedAtUnixMs, bool LayoutMatches, Dictionary<string, SavedAnomalySeries> Series, string LayoutTag = "", int FormatVersion = AnomalyStateFile.CurrentFormatVersion)
{
    /// <summary>
    /// The other builds' layouts its series were written with, each described (format 2 on): this build reads them by
    /// matching fields. Empty when every series is of this build's layout, or when the file cannot be taken over.
    /// </summary>
    public IReadOnlyList<DetectorLayout> OtherLayouts { get; init; } = [];

    /// <summary>
    /// Written by another build and not readable by this one: another file format, or another detector layout without
    /// a description of it (format 1, exact layout only). A file of another layout that describes it is taken over.
    /// </summary>
    public bool FromOtherBuild => FormatVersion is not (1 or AnomalyStateFile.CurrentFormatVersion) || (!LayoutMatches && (FormatVersion == 1 || OtherLayouts.Count == 0));
}

/// <summary>
/// <c>anomaly-state.bin</c> (next to the outbox): what every series' detector has learned, so that a restart goes on from
/// it instead of learning anew. Layout, little-endian: <c>ETAS</c>, format version (u16), the detectors' layout
/// fingerprint (32 bytes, <see cref="DetectorStateCodec.LayoutFingerprint"/>), written at (unix ms, i64), series count
/// (i32); format 2: the layouts the series are written in (i32 count; each its fingerprint, 32 bytes, and its
/// description, <see cref="DetectorStateCodec.LayoutDescription"/>, i32 length and bytes; the writer's own first: a
/// series not yet come back since an upgrade keeps the layout it was written in); then per series its key
/// (length-prefixed UTF-8), saved at (i64), options fingerprint (u64), episode open (bool) and quiet count (i32), format
/// 2: its layout's index (i32), the detector's state (i32 length, bytes); last, the SHA-256 of everything before it.
/// Format 1 (no layouts, no index) is still read when its fingerprint is this build's. Written
/// whole to a temp file, flushed to disk, then renamed over the old one: a power cut leaves the old state or the new one.
/// Both ways stream (a site on <c>algorithm: max</c> holds 50–90 KB per series): the file is never held whole in memory,
/// only the series' own bytes, and it is read twice, first for the checksum, then for the series.
/// </summary>
internal static class AnomalyStateFile
{
    public const string FileName = "anomaly-state.bin";
    private const ushort FormatVersion = 2;

    /// <summary>The container format this build writes and reads. A later format must keep the first 38 bytes (magic, version, layout) where they are.</summary>
    public const int CurrentFormatVersion = FormatVersion;

    /// <summary>This build's detector layout, as <see cref="LayoutTagOf"/> names it (the suffix of the file it keeps aside for it).</summary>
    public static string OwnLayoutTag { get; } = LayoutTagOf(DetectorStateCodec.LayoutFingerprint.Span);

    /// <summary>A layout fingerprint's first 6 bytes in hex: short enough for a file name, long enough to tell builds apart.</summary>
    public static string LayoutTagOf(ReadOnlySpan<byte> layout) => Convert.ToHexStringLower(layout[..Math.Min(6, layout.Length)]);

    /// <summary>
    /// Where a file written by the build of <paramref name="layoutTag"/> is kept while another build runs
    /// (<c>anomaly-state.bin.build-0123456789ab</c>): an upgrade keeps the old build's file there and a rollback to that
    /// build goes on from it, instead of each build writing over what the other learned.
    /// </summary>
    public static string KeptAsidePath(string path, string layoutTag) => path + ".build-" + layoutTag;
    private const int HashLength = 32;
    private const int HeaderLength = 4 + 2 + HashLength + 8 + 4;
    internal static ReadOnlySpan<byte> Magic => "ETAS"u8;

    /// <summary>The file's contents; null when it (or its directory) does not exist. Throws <see cref="InvalidDataException"/> naming what is wrong and where.</summary>
    public static AnomalyStateContents? Load(string path)
    {
        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }

        using (file)
        {
            var length = file.Length;
            if (length == 0)
            {
                throw new InvalidDataException("empty (0 bytes)");
            }

            Span<byte> magic = stackalloc byte[4];
            if (length < Magic.Length || file.ReadAtLeast(magic, Magic.Length, throwOnEndOfStream: false) < Magic.Length || !magic.SequenceEqual(Magic))
            {
                throw new InvalidDataException($"not an EdgeTwin anomaly state file ({length} bytes, no 'ETAS' header)");
            }

            if (length < HeaderLength + HashLength)
            {
                throw new InvalidDataException($"truncated: {length} bytes, shorter than the header");
            }

            // Version and layout first: a file of another format is another build's, not a damaged one, and its checksum
            // may be computed differently; it is reported and kept, never parsed (before, a newer version was "corrupt").
            Span<byte> head = stackalloc byte[2 + HashLength];
            file.ReadExactly(head);
            var version = System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(head[..2]);
            var layoutTag = LayoutTagOf(head[2..]);
            if (version is not (1 or FormatVersion))
            {
                return new AnomalyStateContents(0, false, new Dictionary<string, SavedAnomalySeries>(StringComparer.Ordinal), layoutTag, version);
            }

            VerifyChecksum(file, length);
            file.Position = Magic.Length + 2;
            using var r = new BinaryReader(new BufferedStream(file, 1 << 16), Encoding.UTF8, leaveOpen: true);
            var layoutMatches = r.ReadBytes(HashLength).AsSpan().SequenceEqual(DetectorStateCodec.LayoutFingerprint.Span);
            var savedAt = r.ReadInt64();
            if (savedAt < 0 || savedAt > DateTimeOffset.MaxValue.ToUnixTimeMilliseconds())
            {
                // The stage takes the file's age as a TimeSpan: a damaged time overflowed it there, past the stage
                // (the line state's fuzzer found the same in that file).
                throw new InvalidDataException(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"saved at {savedAt} ms since 1970, not a time"));
            }

            var count = r.ReadInt32();
            var series = new Dictionary<string, SavedAnomalySeries>(StringComparer.Ordinal);
            var bodyEnd = length - HashLength;
            // Format 1 does not describe its layout: only the build of that layout reads it (FromOtherBuild).
            var layouts = new List<DetectorLayout?>();
            if (version >= 2)
            {
                try
                {
                    var n = r.ReadInt32();
                    if (n < 1 || n > bodyEnd / HashLength)
                    {
                        throw new InvalidDataException($"{n} detector layouts");
                    }

                    for (var i = 0; i < n; i++)
                    {
                        var fingerprint = r.ReadBytes(HashLength);
                        var description = ReadBlock(r, bodyEnd);
                        layouts.Add(fingerprint.AsSpan().SequenceEqual(DetectorStateCodec.LayoutFingerprint.Span)
                            ? null
                            : new DetectorLayout(fingerprint, description, FieldStateCodec.SavedLayout.Parse(description)));
                    }
                }
                catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException && !layoutMatches)
                {
                    // The checksum held: a build that describes its layout otherwise. Kept for it, as format 1 of another layout.
                    return new AnomalyStateContents(savedAt, false, series, layoutTag, version);
                }
            }

            try
            {
                for (var i = 0; i < count; i++)
                {
                    var key = FieldStateCodec.ReadString(r);
                    var (at, options, open, quiet) = (r.ReadInt64(), r.ReadUInt64(), r.ReadBoolean(), r.ReadInt32());
                    var index = version >= 2 ? r.ReadInt32() : 0;
                    if (version >= 2 && (index < 0 || index >= layouts.Count))
                    {
                        throw new InvalidDataException($"series {key}: detector layout {index} of {layouts.Count}");
                    }

                    series[key] = new SavedAnomalySeries(at, options, open, quiet, ReadBlock(r, bodyEnd), version >= 2 ? layouts[index] : null);
                }
            }
            catch (EndOfStreamException)
            {
                throw new InvalidDataException($"ends inside series {series.Count + 1} of {count}");
            }

            return new AnomalyStateContents(savedAt, layoutMatches, series, layoutTag, version)
            {
                OtherLayouts = [.. layouts.OfType<DetectorLayout>().Where(l => series.Values.Any(s => s.Layout == l))],
            };
        }
    }

    private static void VerifyChecksum(FileStream file, long length)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 16];
        file.Position = 0;
        for (var left = length - HashLength; left > 0;)
        {
            var n = file.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            if (n == 0)
            {
                throw new InvalidDataException($"shrank while being read ({length} bytes)");
            }

            hash.AppendData(buffer, 0, n);
            left -= n;
        }

        Span<byte> stored = stackalloc byte[HashLength];
        file.ReadExactly(stored);
        if (!hash.GetHashAndReset().AsSpan().SequenceEqual(stored))
        {
            throw new InvalidDataException($"checksum mismatch over its {length} bytes (truncated or overwritten)");
        }
    }

    /// <summary>A length-prefixed block; the checksum already vouches for the length, <paramref name="fileBody"/> only bounds the allocation.</summary>
    private static byte[] ReadBlock(BinaryReader r, long fileBody)
    {
        var length = r.ReadInt32();
        if (length < 0 || length > fileBody)
        {
            throw new EndOfStreamException();
        }

        return r.ReadBytes(length);
    }

    /// <summary>The file's size for <paramref name="series"/> (the free-space check before writing).</summary>
    public static long Size(IReadOnlyCollection<KeyValuePair<string, SavedAnomalySeries>> series) =>
        HeaderLength + HashLength + 4 + Layouts(series).Sum(l => HashLength + 4 + (l?.Description.Length ?? DetectorStateCodec.LayoutDescription.Length))
        + series.Sum(s => StringLength(s.Key) + 8 + 8 + 1 + 4 + 4 + 4 + s.Value.Detector.Length);

    /// <summary>The layouts the series are written in: this build's first (null), then the others' still waiting for their series.</summary>
    private static List<DetectorLayout?> Layouts(IReadOnlyCollection<KeyValuePair<string, SavedAnomalySeries>> series) =>
        [null, .. series.Select(s => s.Value.Layout).OfType<DetectorLayout>().Distinct()];

    /// <summary>What <see cref="BinaryWriter.Write(string)"/> writes: a 7-bit encoded length, then UTF-8.</summary>
    private static long StringLength(string s)
    {
        var bytes = Encoding.UTF8.GetByteCount(s);
        var prefix = 1;
        for (var n = bytes >> 7; n > 0; n >>= 7)
        {
            prefix++;
        }

        return prefix + bytes;
    }

    /// <summary>Streams the file for <paramref name="series"/> into <paramref name="stream"/> (hashed as it goes).</summary>
    public static async Task WriteAsync(Stream stream, long savedAtUnixMs, IReadOnlyCollection<KeyValuePair<string, SavedAnomalySeries>> series, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(series);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var chunk = new MemoryStream(256);
        using var w = new BinaryWriter(chunk, Encoding.UTF8, leaveOpen: true);

        async Task FlushChunkAsync()
        {
            w.Flush();
            hash.AppendData(chunk.GetBuffer(), 0, (int)chunk.Length);
            await stream.WriteAsync(chunk.GetBuffer().AsMemory(0, (int)chunk.Length), cancellationToken).ConfigureAwait(false);
            chunk.SetLength(0);
        }

        w.Write(Magic);
        w.Write(FormatVersion);
        w.Write(DetectorStateCodec.LayoutFingerprint.Span);
        w.Write(savedAtUnixMs);
        w.Write(series.Count);
        var layouts = Layouts(series);
        w.Write(layouts.Count);
        foreach (var layout in layouts)
        {
            w.Write(layout is null ? DetectorStateCodec.LayoutFingerprint.Span : layout.Fingerprint);
            var description = layout is null ? DetectorStateCodec.LayoutDescription : layout.Description;
            w.Write(description.Length);
            w.Write(description);
        }

        foreach (var (key, s) in series)
        {
            w.Write(key);
            w.Write(s.SavedAtUnixMs);
            w.Write(s.OptionsFingerprint);
            w.Write(s.EpisodeOpen);
            w.Write(s.EpisodeQuiet);
            w.Write(layouts.IndexOf(s.Layout));
            w.Write(s.Detector.Length);
            await FlushChunkAsync().ConfigureAwait(false);
            hash.AppendData(s.Detector);
            await stream.WriteAsync(s.Detector, cancellationToken).ConfigureAwait(false);
        }

        await FlushChunkAsync().ConfigureAwait(false);
        await stream.WriteAsync(hash.GetHashAndReset(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A detector's state as <see cref="DetectorStateCodec"/> writes it.</summary>
    public static byte[] DetectorBytes(StreamingAnomalyDetector detector)
    {
        // Written into an array of the exact size: at a checkpoint these arrays are the state's one copy in memory.
        var bytes = new byte[DetectorStateCodec.Size(detector)];
        using var stream = new MemoryStream(bytes, writable: true);
        using (var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            DetectorStateCodec.Write(w, detector);
        }

        return stream.Position == bytes.Length ? bytes : throw new InvalidOperationException($"DetectorStateCodec.Size said {bytes.Length} bytes, Write wrote {stream.Position}");
    }

    /// <summary>
    /// A detector for <paramref name="options"/> from <see cref="DetectorBytes"/> of the build whose layout is
    /// <paramref name="layout"/> (null: this build's); throws <see cref="InvalidDataException"/> or <see cref="EndOfStreamException"/>.
    /// </summary>
    public static StreamingAnomalyDetector Detector(byte[] bytes, AnomalyDetectorOptions options, DetectorLayout? layout = null)
    {
        using var stream = new MemoryStream(bytes, writable: false);
        using var r = new BinaryReader(stream, Encoding.UTF8);
        var detector = DetectorStateCodec.Read(r, options, layout?.Parsed);
        if (stream.Position != stream.Length)
        {
            throw new InvalidDataException($"{stream.Length - stream.Position} bytes left after the detector's state");
        }

        return detector;
    }
}
