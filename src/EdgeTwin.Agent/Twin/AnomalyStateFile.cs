using System.Security.Cryptography;
using System.Text;
using EdgeTwin.Twin.Anomaly;

namespace EdgeTwin.Agent.Twin;

/// <summary>One series' learned state as saved: what it was learned under, its episode, the detector's bytes.</summary>
internal sealed record SavedAnomalySeries(long SavedAtUnixMs, ulong OptionsFingerprint, bool EpisodeOpen, int EpisodeQuiet, byte[] Detector);

/// <summary>A read <see cref="AnomalyStateFile"/>: when it was written, whether this build's detectors can read it, the series.</summary>
internal sealed record AnomalyStateContents(long SavedAtUnixMs, bool LayoutMatches, Dictionary<string, SavedAnomalySeries> Series);

/// <summary>
/// <c>anomaly-state.bin</c> (next to the outbox): what every series' detector has learned, so that a restart goes on from
/// it instead of learning anew. Layout, little-endian: <c>ETAS</c>, format version (u16), the detectors' layout
/// fingerprint (32 bytes, <see cref="DetectorStateCodec.LayoutFingerprint"/>), written at (unix ms, i64), series count
/// (i32), then per series its key (length-prefixed UTF-8), saved at (i64), options fingerprint (u64), episode open (bool)
/// and quiet count (i32), the detector's state (i32 length, bytes); last, the SHA-256 of everything before it. Written
/// whole to a temp file, flushed to disk, then renamed over the old one: a power cut leaves the old state or the new one.
/// </summary>
internal static class AnomalyStateFile
{
    public const string FileName = "anomaly-state.bin";
    private const ushort FormatVersion = 1;
    private const int HashLength = 32;
    private static ReadOnlySpan<byte> Magic => "ETAS"u8;

    /// <summary>The file's contents; null when it does not exist. Throws <see cref="InvalidDataException"/> naming what is wrong and where.</summary>
    public static AnomalyStateContents? Load(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (FileNotFoundException)
        {
            return null;
        }

        return Parse(bytes);
    }

    public static AnomalyStateContents Parse(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (bytes.Length < Magic.Length + 2 || !bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
        {
            throw new InvalidDataException($"not an EdgeTwin anomaly state file ({bytes.Length} bytes, no 'ETAS' header)");
        }

        if (bytes.Length < Magic.Length + 2 + HashLength + 8 + 4 + HashLength)
        {
            throw new InvalidDataException($"truncated: {bytes.Length} bytes, shorter than the header");
        }

        var body = bytes.AsSpan(0, bytes.Length - HashLength);
        if (!SHA256.HashData(body).AsSpan().SequenceEqual(bytes.AsSpan(bytes.Length - HashLength)))
        {
            throw new InvalidDataException($"checksum mismatch over its {bytes.Length} bytes (truncated or overwritten)");
        }

        using var stream = new MemoryStream(bytes, 0, bytes.Length - HashLength, writable: false);
        using var r = new BinaryReader(stream, Encoding.UTF8);
        stream.Position = Magic.Length;
        var version = r.ReadUInt16();
        if (version != FormatVersion)
        {
            throw new InvalidDataException($"format version {version}, this agent reads version {FormatVersion}");
        }

        var layoutMatches = r.ReadBytes(HashLength).AsSpan().SequenceEqual(DetectorStateCodec.LayoutFingerprint.Span);
        var savedAt = r.ReadInt64();
        var count = r.ReadInt32();
        var series = new Dictionary<string, SavedAnomalySeries>(StringComparer.Ordinal);
        try
        {
            for (var i = 0; i < count; i++)
            {
                var key = r.ReadString();
                var entry = new SavedAnomalySeries(r.ReadInt64(), r.ReadUInt64(), r.ReadBoolean(), r.ReadInt32(), ReadBlock(r));
                series[key] = entry;
            }
        }
        catch (EndOfStreamException)
        {
            throw new InvalidDataException($"ends inside series {series.Count + 1} of {count} (byte {stream.Position})");
        }

        if (stream.Position != stream.Length)
        {
            throw new InvalidDataException($"{stream.Length - stream.Position} bytes after the last of its {count} series");
        }

        return new AnomalyStateContents(savedAt, layoutMatches, series);
    }

    private static byte[] ReadBlock(BinaryReader r)
    {
        var length = r.ReadInt32();
        if (length < 0 || length > r.BaseStream.Length - r.BaseStream.Position)
        {
            throw new EndOfStreamException();
        }

        return r.ReadBytes(length);
    }

    /// <summary>The file's bytes for <paramref name="series"/>.</summary>
    public static byte[] Serialize(long savedAtUnixMs, IReadOnlyCollection<KeyValuePair<string, SavedAnomalySeries>> series)
    {
        ArgumentNullException.ThrowIfNull(series);
        using var stream = new MemoryStream(64 + series.Sum(s => s.Key.Length + 32 + s.Value.Detector.Length));
        using (var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            w.Write(FormatVersion);
            w.Write(DetectorStateCodec.LayoutFingerprint.Span);
            w.Write(savedAtUnixMs);
            w.Write(series.Count);
            foreach (var (key, s) in series)
            {
                w.Write(key);
                w.Write(s.SavedAtUnixMs);
                w.Write(s.OptionsFingerprint);
                w.Write(s.EpisodeOpen);
                w.Write(s.EpisodeQuiet);
                w.Write(s.Detector.Length);
                w.Write(s.Detector);
            }
        }

        stream.Write(SHA256.HashData(stream.GetBuffer().AsSpan(0, (int)stream.Length)));
        return stream.ToArray();
    }

    /// <summary>A detector's state as <see cref="DetectorStateCodec"/> writes it.</summary>
    public static byte[] DetectorBytes(StreamingAnomalyDetector detector)
    {
        using var stream = new MemoryStream(detector.ApproximateBytes + 256);
        using (var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            DetectorStateCodec.Write(w, detector);
        }

        return stream.ToArray();
    }

    /// <summary>A detector for <paramref name="options"/> from <see cref="DetectorBytes"/>; throws <see cref="InvalidDataException"/> or <see cref="EndOfStreamException"/>.</summary>
    public static StreamingAnomalyDetector Detector(byte[] bytes, AnomalyDetectorOptions options)
    {
        using var stream = new MemoryStream(bytes, writable: false);
        using var r = new BinaryReader(stream, Encoding.UTF8);
        var detector = DetectorStateCodec.Read(r, options);
        if (stream.Position != stream.Length)
        {
            throw new InvalidDataException($"{stream.Length - stream.Position} bytes left after the detector's state");
        }

        return detector;
    }
}
