using System.Buffers.Binary;
using LiteDB;
using Microsoft.Win32.SafeHandles;

namespace EdgeTwin.Alerting.State;

/// <summary>
/// The alert store's append-only journal (<c>alerts.journal</c>): what makes a change durable before LiteDB has it.
/// A record is <c>[int32 length][uint32 FNV-1a of the payload][payload]</c>, the payload a BSON document
/// <c>{c: collection, i: id, d: document or null}</c>. One <c>write</c> per group commit. Reading stops at the first
/// record that is cut short or fails its checksum (the process died while writing it; it was never released).
/// <see cref="FlushToDisk"/> is for the store's background thread: it fsyncs through a handle of its own, so it never
/// shares the stream the committer writes with.
/// </summary>
internal sealed class AlertJournal : IDisposable
{
    private const int HeaderBytes = 8;
    private readonly FileStream _file;
    private readonly SafeFileHandle _syncHandle;
    private long _syncedLength;

    public AlertJournal(string path)
    {
        Path = path;
        _file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, bufferSize: 0);
        _syncHandle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
    }

    public string Path { get; }

    public long Length => _file.Length;

    /// <summary>Every whole record, in order; <paramref name="torn"/> when a partial record ends the file.</summary>
    public List<StoreWrite> ReadAll(out bool torn)
    {
        torn = false;
        var writes = new List<StoreWrite>();
        var bytes = new byte[_file.Length];
        _file.Position = 0;
        _file.ReadExactly(bytes);
        var at = 0;
        while (at < bytes.Length)
        {
            if (bytes.Length - at < HeaderBytes)
            {
                torn = true;
                break;
            }

            var length = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(at));
            var sum = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 4));
            if (length <= 0 || length > bytes.Length - at - HeaderBytes || Fnv(bytes.AsSpan(at + HeaderBytes, length)) != sum)
            {
                torn = true;
                break;
            }

            var doc = BsonSerializer.Deserialize(bytes.AsSpan(at + HeaderBytes, length).ToArray());
            writes.Add(new StoreWrite((StoreCollection)doc["c"].AsInt32, doc["i"], doc["d"].IsDocument ? doc["d"].AsDocument : null));
            at += HeaderBytes + length;
        }

        return writes;
    }

    /// <summary>Appends the writes with a single <c>write</c> call (the OS has them when it returns: SIGKILL-safe).</summary>
    public void Append(IReadOnlyList<StoreWrite> writes)
    {
        using var buffer = new MemoryStream(writes.Count * 256);
        Span<byte> header = stackalloc byte[HeaderBytes];
        foreach (var w in writes)
        {
            var payload = BsonSerializer.Serialize(new BsonDocument
            {
                ["c"] = (int)w.Collection,
                ["i"] = w.Id,
                ["d"] = w.Document is null ? BsonValue.Null : w.Document,
            });
            BinaryPrimitives.WriteInt32LittleEndian(header, payload.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(header[4..], Fnv(payload));
            buffer.Write(header);
            buffer.Write(payload);
        }

        _file.Position = _file.Length;
        _file.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>
    /// fsyncs the journal when it changed since the last call (fsync is per file, so any handle does); afterwards a
    /// power cut loses nothing written before the call. Returns whether it synced.
    /// </summary>
    public bool FlushToDisk()
    {
        var length = RandomAccess.GetLength(_syncHandle);
        if (length == Interlocked.Read(ref _syncedLength))
        {
            return false;
        }

        RandomAccess.FlushToDisk(_syncHandle);
        Interlocked.Exchange(ref _syncedLength, length);
        return true;
    }

    /// <summary>Empties the journal (everything in it is in LiteDB).</summary>
    public void Reset()
    {
        _file.SetLength(0);
        _file.Position = 0;
        Interlocked.Exchange(ref _syncedLength, -1); // the truncation itself is not on disk yet
    }

    public void Dispose()
    {
        _file.Dispose();
        _syncHandle.Dispose();
    }

    private static uint Fnv(ReadOnlySpan<byte> data)
    {
        var hash = 2166136261u;
        foreach (var b in data)
        {
            hash = (hash ^ b) * 16777619u;
        }

        return hash;
    }
}
