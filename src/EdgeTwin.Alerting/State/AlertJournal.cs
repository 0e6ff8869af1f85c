using System.Diagnostics.CodeAnalysis;
using System.Buffers.Binary;
using LiteDB;
using Microsoft.Win32.SafeHandles;

namespace EdgeTwin.Alerting.State;

/// <summary>
/// The alert store's append-only journal (<c>alerts.journal</c>): what makes a change durable before LiteDB has it.
/// A record is <c>[int32 length][uint32 FNV-1a of the payload][payload]</c>, the payload a BSON document
/// <c>{c: collection, i: id, d: document or null}</c>. One <c>write</c> per group commit. Reading stops at the first
/// record that is cut short (the process died while writing it; it was never released) or damaged (a bad checksum, an
/// impossible length or undecodable BSON with more bytes after it: corruption, which the store sets aside a copy of).
/// <see cref="FlushToDisk"/> is for the store's background thread: it fsyncs through a handle of its own, so it never
/// shares the stream the committer writes with.
/// </summary>
internal sealed class AlertJournal : IDisposable
{
    private const int HeaderBytes = 8;
    private FileStream? _file;
    private SafeFileHandle? _syncHandle;
    private bool _readOnly;
    private long _syncedLength;

    // Where the last whole record ends (the file may be longer after a failed write), and whether it may be.
    private long _whole;
    private bool _torn;

    public AlertJournal(string path)
    {
        Path = path;
        OpenWritable();
    }

    private AlertJournal(string path, FileStream? readOnly)
    {
        Path = path;
        _file = readOnly;
        _readOnly = true;
        _whole = readOnly?.Length ?? 0;
    }

    /// <summary>
    /// The journal of a read-only directory: readable (a missing file reads as empty); the first write or reset opens it
    /// for writing, and fails as long as the directory is read-only.
    /// </summary>
    public static AlertJournal OpenReadOnly(string path)
    {
        try
        {
            return new AlertJournal(path, new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0));
        }
        catch (FileNotFoundException)
        {
            return new AlertJournal(path, null);
        }
    }

    public string Path { get; }

    public long Length => _file?.Length ?? 0;

    [MemberNotNull(nameof(_file))]
    private void OpenWritable()
    {
        if (_file is not null && !_readOnly)
        {
            return;
        }

        var file = new FileStream(Path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, bufferSize: 0);
        try
        {
            _syncHandle = File.OpenHandle(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        }
        catch
        {
            file.Dispose();
            throw;
        }

        var wasReadOnly = _readOnly;
        _file?.Dispose();
        _file = file;
        _readOnly = false;
        if (!wasReadOnly)
        {
            _whole = _file.Length;
        }
    }

    /// <summary>
    /// A record no power cut can have left: a group commit never writes this much, so a longer length read from a
    /// header is damage, not a record cut short.
    /// </summary>
    private const int MaxRecordBytes = 64 << 20;

    /// <summary>
    /// Every whole record, in order, up to the first bad one. <paramref name="damage"/> says why reading stopped early:
    /// a record cut short at the end of the file (the process died while writing it; it was never released), or a
    /// record that is damaged with bytes after it (a bit flip, a bad sector), which is corruption.
    /// </summary>
    public List<StoreWrite> ReadAll(out JournalDamage? damage)
    {
        damage = null;
        var writes = new List<StoreWrite>();
        if (_file is null)
        {
            return writes;
        }

        var bytes = new byte[_file.Length];
        _file.Position = 0;
        _file.ReadExactly(bytes);
        var at = 0;
        while (at < bytes.Length)
        {
            var rest = bytes.AsSpan(at);
            if (rest.Length < HeaderBytes || rest.IndexOfAnyExcept((byte)0) < 0)
            {
                // A partial header, or zeros a power cut left where the last write was to go.
                damage = new JournalDamage(at, "the last record was cut short", Torn: true);
                break;
            }

            var length = BinaryPrimitives.ReadInt32LittleEndian(rest);
            var sum = BinaryPrimitives.ReadUInt32LittleEndian(rest[4..]);
            if (length > rest.Length - HeaderBytes && length <= MaxRecordBytes)
            {
                damage = new JournalDamage(at, "the last record was cut short", Torn: true);
                break;
            }

            if (length <= 0 || length > MaxRecordBytes)
            {
                damage = new JournalDamage(at, $"record at byte {at} has an impossible length {length}", Torn: false);
                break;
            }

            var payload = rest.Slice(HeaderBytes, length);
            if (Fnv(payload) != sum)
            {
                // The last record's bytes not all on disk (a power cut after the size grew) is a cut, not damage.
                var last = HeaderBytes + length == rest.Length;
                damage = new JournalDamage(at, last ? "the last record was cut short" : $"record at byte {at} fails its checksum", Torn: last);
                break;
            }

            try
            {
                var doc = BsonSerializer.Deserialize(payload.ToArray());
                writes.Add(new StoreWrite((StoreCollection)doc["c"].AsInt32, doc["i"], doc["d"].IsDocument ? doc["d"].AsDocument : null));
            }
            catch (Exception ex) when (ex is not (OutOfMemoryException or IOException))
            {
                damage = new JournalDamage(at, $"record at byte {at} cannot be decoded ({ex.GetType().Name}: {ex.Message})", Torn: false);
                break;
            }

            at += HeaderBytes + length;
        }

        if (_readOnly)
        {
            // Nothing resets a read-only journal after its replay: a later write goes after the last whole record.
            _whole = at;
            _torn = at < bytes.Length;
        }

        return writes;
    }

    /// <summary>
    /// Copies the journal to <c>PATH.corrupt</c> (a timestamp added when one is there already) before the store empties
    /// it, so the damaged bytes stay for a look; returns where it went, or why it could not be copied, for the warning.
    /// </summary>
    public string SetAsideCopy()
    {
        var aside = Path + ".corrupt";
        if (File.Exists(aside))
        {
            aside += "-" + DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        }

        try
        {
            _file?.Flush();
            File.Copy(Path, aside, overwrite: true);
            return aside;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return $"not copied: {ex.Message}";
        }
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

        OpenWritable();

        // After a failed write (a full disk takes part of it) the file may end in a torn record: writing after it would
        // hide every later record from ReadAll, so the next write starts where the last whole record ended.
        if (_torn)
        {
            _file.SetLength(_whole);
            _torn = false;
        }

        _file.Position = _whole;
        try
        {
            _file.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
        }
        catch
        {
            _torn = true;
            throw;
        }

        _whole += buffer.Length;
    }

    /// <summary>
    /// fsyncs the journal when it changed since the last call (fsync is per file, so any handle does); afterwards a
    /// power cut loses nothing written before the call. Returns whether it synced.
    /// </summary>
    public bool FlushToDisk()
    {
        if (_syncHandle is null)
        {
            return false; // read-only: nothing written
        }

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
        OpenWritable();
        _file.SetLength(0);
        _file.Position = 0;
        _whole = 0;
        _torn = false;
        Interlocked.Exchange(ref _syncedLength, -1); // the truncation itself is not on disk yet
    }

    public void Dispose()
    {
        _file?.Dispose();
        _syncHandle?.Dispose();
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

/// <summary>Why <see cref="AlertJournal.ReadAll"/> stopped before the end: at byte <paramref name="Offset"/>, <paramref name="Reason"/>.</summary>
/// <param name="Torn">The last record was cut short (a kill or power cut while writing it), not damage in the middle.</param>
internal sealed record JournalDamage(long Offset, string Reason, bool Torn);
