using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Outbox.Summaries;

/// <summary>
/// The byte layout of the three outbox blobs that let a restart send what a crashed run had summarised but not yet
/// closed: the series catalog (descriptors by the run's series ids), the open windows at the last checkpoint, and
/// which series closed a window since that checkpoint (their checkpointed window went out already). Little-endian;
/// each blob starts with its own magic and version, so a blob of another build is refused, never misread.
/// </summary>
public static class OpenWindowCheckpoint
{
    public const string CatalogBlob = "summaries.catalog";
    public const string WindowsBlob = "summaries.open_windows";
    public const string ClosedBlob = "summaries.closed";

    private static readonly byte[] CatalogMagic = "ETSCAT1\n"u8.ToArray();
    private static readonly byte[] WindowsMagic = "ETSWIN2\n"u8.ToArray();

    // Brotli of the ETSWIN2 layout after its magic, preceded by that layout's length (int32). 93 bytes per open window
    // every checkpoint_interval (180 KB for 1,961 series, every 10 s) was the largest share of the outbox's journal writes
    // at steady state; window bounds, counts, timestamps and the values of steady series repeat from window to window.
    private static readonly byte[] CompressedWindowsMagic = "ETSWIN3\n"u8.ToArray();

    // Bounds what a damaged length may make the decoder allocate (a LiteDB document holds 16 MB).
    private const int MaxWindowsBytes = 64 * 1024 * 1024;
    private static readonly byte[] ClosedMagic = "ETSCLS1\n"u8.ToArray();

    // Saved at (8), clean (1), window count (4).
    private const int HeaderBytes = 8 + 1 + 4;

    // Per window: id (4), partial (1), start, end, count, bad, first and last timestamp (6 × 8), min, max, mean, m2, last (5 × 8).
    private const int WindowBytes = 4 + 1 + (11 * 8);

    /// <summary>The descriptors of series ids 0..count-1 of <paramref name="registry"/>.</summary>
    public static byte[] EncodeCatalog(SeriesRegistry registry, int count)
    {
        ArgumentNullException.ThrowIfNull(registry);
        using var stream = new MemoryStream(64 + (count * 96));
        using (var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(CatalogMagic);
            w.Write(count);
            for (var i = 0; i < count; i++)
            {
                var d = registry[new SeriesId(i)];
                w.Write(d.DeviceId);
                w.Write(d.Metric);
                w.Write(d.Unit);
                w.Write((byte)d.Kind);
                w.Write(d.Role is not null);
                w.Write(d.Role ?? "");
                var tags = d.Tags ?? [];
                w.Write(tags.Count);
                foreach (var (key, value) in tags)
                {
                    w.Write(key);
                    w.Write(value);
                }
            }
        }

        return stream.ToArray();
    }

    /// <summary>Descriptors by id, as <see cref="EncodeCatalog"/> wrote them.</summary>
    /// <exception cref="InvalidDataException">Not a catalog of this layout, or cut short.</exception>
    public static IReadOnlyList<SeriesDescriptor> DecodeCatalog(byte[] blob)
    {
        ArgumentNullException.ThrowIfNull(blob);
        return Read(blob, CatalogBlob, CatalogMagic, r =>
        {
            var count = Count(r.ReadInt32(), blob.Length, 8, CatalogBlob);
            var list = new SeriesDescriptor[count];
            for (var i = 0; i < count; i++)
            {
                var device = r.ReadString();
                var metric = r.ReadString();
                var unit = r.ReadString();
                var kind = (MetricKind)r.ReadByte();
                var hasRole = r.ReadBoolean();
                var role = r.ReadString();
                var tagCount = Count(r.ReadInt32(), blob.Length, 2, CatalogBlob);
                List<KeyValuePair<string, string>>? tags = tagCount == 0 ? null : new(tagCount);
                for (var t = 0; t < tagCount; t++)
                {
                    tags!.Add(new(r.ReadString(), r.ReadString()));
                }

                list[i] = new SeriesDescriptor(device, metric, unit, kind, hasRole ? role : null, tags);
            }

            return list;
        });
    }

    /// <summary>
    /// The open windows at <paramref name="savedAtMs"/>. <paramref name="clean"/>: written by a clean stop, after every
    /// window was closed and sent (a restart then recovers nothing and reports no gap).
    /// </summary>
    public static byte[] EncodeWindows(long savedAtMs, bool clean, IReadOnlyList<OpenWindow> windows)
    {
        ArgumentNullException.ThrowIfNull(windows);
        var blob = new byte[WindowsMagic.Length + HeaderBytes + (windows.Count * WindowBytes)];
        WindowsMagic.CopyTo(blob, 0);
        var span = blob.AsSpan(WindowsMagic.Length);
        BinaryPrimitives.WriteInt64LittleEndian(span, savedAtMs);
        span[8] = clean ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteInt32LittleEndian(span[9..], windows.Count);
        span = span[HeaderBytes..];
        foreach (var open in windows)
        {
            var w = open.Window;
            BinaryPrimitives.WriteInt32LittleEndian(span, open.Series.Value);
            span[4] = open.Partial ? (byte)1 : (byte)0;
            BinaryPrimitives.WriteInt64LittleEndian(span[5..], w.StartMs);
            BinaryPrimitives.WriteInt64LittleEndian(span[13..], w.EndMs);
            BinaryPrimitives.WriteInt64LittleEndian(span[21..], w.Count);
            BinaryPrimitives.WriteInt64LittleEndian(span[29..], w.Bad);
            BinaryPrimitives.WriteInt64LittleEndian(span[37..], w.FirstTimestampMs);
            BinaryPrimitives.WriteInt64LittleEndian(span[45..], w.LastTimestampMs);
            BinaryPrimitives.WriteDoubleLittleEndian(span[53..], w.Min);
            BinaryPrimitives.WriteDoubleLittleEndian(span[61..], w.Max);
            BinaryPrimitives.WriteDoubleLittleEndian(span[69..], w.Mean);
            BinaryPrimitives.WriteDoubleLittleEndian(span[77..], w.M2);
            BinaryPrimitives.WriteDoubleLittleEndian(span[85..], w.Last);
            span = span[WindowBytes..];
        }

        return blob;
    }

    /// <summary>
    /// <see cref="EncodeWindows"/>'s blob compressed (Brotli, quality 5) as it is stored; the plain blob when compressing
    /// does not make it smaller (a handful of windows). <see cref="DecodeWindows"/> reads both.
    /// </summary>
    public static byte[] EncodeWindowsCompressed(long savedAtMs, bool clean, IReadOnlyList<OpenWindow> windows)
    {
        var plain = EncodeWindows(savedAtMs, clean, windows);
        var body = plain.AsSpan(WindowsMagic.Length);
        var prefix = CompressedWindowsMagic.Length + 4;
        var blob = new byte[prefix + BrotliEncoder.GetMaxCompressedLength(body.Length)];
        if (!BrotliEncoder.TryCompress(body, blob.AsSpan(prefix), out var written, quality: 5, window: 22) || prefix + written >= plain.Length)
        {
            return plain;
        }

        CompressedWindowsMagic.CopyTo(blob, 0);
        BinaryPrimitives.WriteInt32LittleEndian(blob.AsSpan(CompressedWindowsMagic.Length), body.Length);
        return blob[..(prefix + written)];
    }

    /// <summary>What <see cref="EncodeWindows"/> or <see cref="EncodeWindowsCompressed"/> wrote.</summary>
    /// <exception cref="InvalidDataException">Not a window blob of this layout, or cut short.</exception>
    public static SavedWindows DecodeWindows(byte[] blob)
    {
        ArgumentNullException.ThrowIfNull(blob);
        if (blob.AsSpan().StartsWith(CompressedWindowsMagic))
        {
            blob = Decompress(blob);
        }

        var header = WindowsMagic.Length + HeaderBytes;
        if (blob.Length < header || !blob.AsSpan(0, WindowsMagic.Length).SequenceEqual(WindowsMagic))
        {
            throw new InvalidDataException($"'{WindowsBlob}' is not an open-window checkpoint of this build ({blob.Length} bytes, magic {Convert.ToHexString(blob.AsSpan(0, Math.Min(8, blob.Length)))}).");
        }

        var span = blob.AsSpan(WindowsMagic.Length);
        var savedAt = BinaryPrimitives.ReadInt64LittleEndian(span);
        var clean = span[8] == 1;
        var count = BinaryPrimitives.ReadInt32LittleEndian(span[9..]);
        if (count < 0 || blob.Length != header + ((long)count * WindowBytes))
        {
            throw new InvalidDataException($"'{WindowsBlob}' says {count} windows but holds {blob.Length - header} bytes of them ({WindowBytes} each).");
        }

        var windows = new OpenWindow[count];
        span = span[HeaderBytes..];
        for (var i = 0; i < count; i++)
        {
            var id = BinaryPrimitives.ReadInt32LittleEndian(span);
            if (id < 0)
            {
                throw new InvalidDataException($"'{WindowsBlob}': window {i} has series id {id}.");
            }

            var window = WindowAccumulator.Restore(
                startMs: BinaryPrimitives.ReadInt64LittleEndian(span[5..]),
                endMs: BinaryPrimitives.ReadInt64LittleEndian(span[13..]),
                count: BinaryPrimitives.ReadInt64LittleEndian(span[21..]),
                bad: BinaryPrimitives.ReadInt64LittleEndian(span[29..]),
                firstTimestampMs: BinaryPrimitives.ReadInt64LittleEndian(span[37..]),
                lastTimestampMs: BinaryPrimitives.ReadInt64LittleEndian(span[45..]),
                min: BinaryPrimitives.ReadDoubleLittleEndian(span[53..]),
                max: BinaryPrimitives.ReadDoubleLittleEndian(span[61..]),
                mean: BinaryPrimitives.ReadDoubleLittleEndian(span[69..]),
                m2: BinaryPrimitives.ReadDoubleLittleEndian(span[77..]),
                last: BinaryPrimitives.ReadDoubleLittleEndian(span[85..]));
            windows[i] = new OpenWindow(new SeriesId(id), span[4] == 1, window);
            span = span[WindowBytes..];
        }

        return new SavedWindows(savedAt, clean, windows);
    }

    private static byte[] Decompress(byte[] blob)
    {
        var prefix = CompressedWindowsMagic.Length + 4;
        var length = blob.Length < prefix ? -1 : BinaryPrimitives.ReadInt32LittleEndian(blob.AsSpan(CompressedWindowsMagic.Length));
        if (length < HeaderBytes || length > MaxWindowsBytes)
        {
            throw new InvalidDataException($"'{WindowsBlob}' (compressed, {blob.Length} bytes) says it holds {length} bytes, not a length of this build's layout.");
        }

        var plain = new byte[WindowsMagic.Length + length];
        WindowsMagic.CopyTo(plain, 0);
        if (!BrotliDecoder.TryDecompress(blob.AsSpan(prefix), plain.AsSpan(WindowsMagic.Length), out var written) || written != length)
        {
            throw new InvalidDataException($"'{WindowsBlob}' (compressed, {blob.Length} bytes) is damaged or cut short: it did not decompress to the {length} bytes it names.");
        }

        return plain;
    }

    /// <summary>The series that closed a window since the checkpoint taken at <paramref name="checkpointMs"/>.</summary>
    public static byte[] EncodeClosed(long checkpointMs, ReadOnlySpan<ulong> bits)
    {
        var blob = new byte[ClosedMagic.Length + 8 + 4 + (bits.Length * 8)];
        ClosedMagic.CopyTo(blob, 0);
        var span = blob.AsSpan(ClosedMagic.Length);
        BinaryPrimitives.WriteInt64LittleEndian(span, checkpointMs);
        BinaryPrimitives.WriteInt32LittleEndian(span[8..], bits.Length);
        span = span[12..];
        foreach (var word in bits)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(span, word);
            span = span[8..];
        }

        return blob;
    }

    /// <summary>What <see cref="EncodeClosed"/> wrote: the checkpoint it belongs to and the bits.</summary>
    /// <exception cref="InvalidDataException">Not a closed-series blob of this layout, or cut short.</exception>
    public static (long CheckpointMs, ulong[] Bits) DecodeClosed(byte[] blob)
    {
        ArgumentNullException.ThrowIfNull(blob);
        var header = ClosedMagic.Length + 12;
        if (blob.Length < header || !blob.AsSpan(0, ClosedMagic.Length).SequenceEqual(ClosedMagic))
        {
            throw new InvalidDataException($"'{ClosedBlob}' is not a closed-series record of this build ({blob.Length} bytes).");
        }

        var span = blob.AsSpan(ClosedMagic.Length);
        var checkpoint = BinaryPrimitives.ReadInt64LittleEndian(span);
        var words = BinaryPrimitives.ReadInt32LittleEndian(span[8..]);
        if (words < 0 || blob.Length != header + ((long)words * 8))
        {
            throw new InvalidDataException($"'{ClosedBlob}' says {words} words but holds {blob.Length - header} bytes.");
        }

        var bits = new ulong[words];
        span = span[12..];
        for (var i = 0; i < words; i++)
        {
            bits[i] = BinaryPrimitives.ReadUInt64LittleEndian(span[(i * 8)..]);
        }

        return (checkpoint, bits);
    }

    /// <summary>Whether bit <paramref name="id"/> is set.</summary>
    public static bool IsSet(ReadOnlySpan<ulong> bits, int id) => (id >> 6) < bits.Length && (bits[id >> 6] & (1UL << (id & 63))) != 0;

    private static T Read<T>(byte[] blob, string name, byte[] magic, Func<BinaryReader, T> read)
    {
        if (blob.Length < magic.Length || !blob.AsSpan(0, magic.Length).SequenceEqual(magic))
        {
            throw new InvalidDataException($"'{name}' is not of this build's layout ({blob.Length} bytes).");
        }

        using var reader = new BinaryReader(new MemoryStream(blob, magic.Length, blob.Length - magic.Length, writable: false), Encoding.UTF8);
        try
        {
            var value = read(reader);
            if (reader.BaseStream.Position != reader.BaseStream.Length)
            {
                throw new InvalidDataException($"'{name}' has {reader.BaseStream.Length - reader.BaseStream.Position} bytes after its end.");
            }

            return value;
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or FormatException)
        {
            // Over a MemoryStream an IOException is the bytes' fault: EndOfStreamException, or the bare IOException
            // BinaryReader.ReadString throws for a negative string length (it escaped the feeder; found by fuzzing).
            throw new InvalidDataException($"'{name}' is cut short or damaged: {ex.Message}", ex);
        }
    }

    // A count cannot exceed what the blob could hold: a damaged count must not allocate gigabytes.
    private static int Count(int value, int blobLength, int minBytesEach, string name) =>
        value >= 0 && (long)value * minBytesEach <= blobLength ? value : throw new InvalidDataException($"'{name}' has an impossible count {value} for {blobLength} bytes.");
}

/// <summary>A decoded open-window checkpoint.</summary>
public sealed record SavedWindows(long SavedAtMs, bool Clean, IReadOnlyList<OpenWindow> Windows);
