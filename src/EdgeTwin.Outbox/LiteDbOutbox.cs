using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Outbox;

/// <summary>
/// Durable <see cref="IOutbox"/> on LiteDB 5. One dedicated writer thread owns the <c>LiteDatabase</c>: LiteDB has
/// no async API and its transactions belong to a thread, so every operation is queued to that thread and no
/// transaction ever spans an <c>await</c>. Queued appends and acknowledgements are committed together (group
/// commit) and the journal is fsynced once per commit before any caller hears "durable".
/// </summary>
public sealed partial class LiteDbOutbox : IOutbox, IOutboxCheckpoints, IOutboxStatistics
{
    private readonly LiteDbOutboxOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly BlockingCollection<WriterOp> _queue = new();
    private readonly Thread _writer;
    private readonly TaskCompletionSource _opened = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly OutboxSignal _signal = new();
    private readonly Lock _stateLock = new();
    private readonly Dictionary<string, long> _positions = new(StringComparer.Ordinal);
    private readonly OutboxMetrics _metrics;
    private StoreState _published;
    private long _appendedSinceOpen;
    private int _disposed;

    private LiteDbOutbox(LiteDbOutboxOptions options, ILogger? logger, IMeterFactory? meterFactory, TimeProvider? time)
    {
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        _time = time ?? TimeProvider.System;
        _metrics = new OutboxMetrics(meterFactory, System.IO.Path.GetFileName(options.Path), GetStats, OldestHeld);
        _writer = new Thread(WriterMain) { IsBackground = true, Name = "edgetwin-outbox-writer" };
    }

    /// <summary>The database file.</summary>
    public string Path => _options.Path;

    /// <summary>Where the previous file went when it was found corrupt at open, or null.</summary>
    public string? MovedAsidePath { get; private set; }

    /// <summary>
    /// Opens (or creates) the outbox. A corrupt file is moved aside to <c>PATH.corrupt-&lt;timestamp&gt;</c> and a new
    /// one started; a file held by another process or a directory that cannot be written is an
    /// <see cref="OutboxStorageException"/> naming the path.
    /// </summary>
    public static async Task<LiteDbOutbox> OpenAsync(
        LiteDbOutboxOptions options,
        ILogger? logger = null,
        IMeterFactory? meterFactory = null,
        TimeProvider? time = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var outbox = new LiteDbOutbox(options, logger, meterFactory, time);
        outbox._writer.Start();
        try
        {
            await outbox._opened.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await outbox.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return outbox;
    }

    public ValueTask<long> AppendAsync(IReadOnlyList<OutboxRecord> records, CancellationToken cancellationToken) =>
        AppendAsync(records, Array.Empty<OutboxBlob>(), cancellationToken);

    public ValueTask<long> AppendAsync(IReadOnlyList<OutboxRecord> records, IReadOnlyList<OutboxBlob> blobs, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(records);
        ArgumentNullException.ThrowIfNull(blobs);
        cancellationToken.ThrowIfCancellationRequested();
        if (records.Count == 0 && blobs.Count == 0)
        {
            lock (_stateLock)
            {
                return ValueTask.FromResult(_published.Last);
            }
        }

        var copy = new OutboxRecord[records.Count];
        for (var i = 0; i < copy.Length; i++)
        {
            OutboxRecordValidation.Validate(records[i]);
            copy[i] = records[i];
        }

        var blobCopy = new (string Name, byte[] Value)[blobs.Count];
        for (var i = 0; i < blobCopy.Length; i++)
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(blobs[i].Name);
            blobCopy[i] = (blobs[i].Name, blobs[i].Value.ToArray()); // the caller may reuse its buffer
        }

        var op = new AppendOp(copy, blobCopy, cancellationToken);
        Enqueue(op);

        // Not cancellable once queued: a commit that happens anyway must not be reported as "not stored".
        return new ValueTask<long>(op.Done.Task);
    }

    public ValueTask<byte[]?> ReadBlobAsync(string name, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        cancellationToken.ThrowIfCancellationRequested();
        var op = new BlobReadOp(name, cancellationToken);
        Enqueue(op);
        return new ValueTask<byte[]?>(op.Done.Task.WaitAsync(cancellationToken));
    }

    public void RegisterUplink(string uplink)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(uplink);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        long position;
        lock (_stateLock)
        {
            if (_positions.ContainsKey(uplink))
            {
                return;
            }

            position = _published.First > 0 ? _published.First - 1 : _published.Last;
            _positions[uplink] = position;
        }

        Enqueue(new RegisterOp(uplink, position));
    }

    /// <summary>Forgets an uplink (removed from the config) so it no longer holds entries back.</summary>
    public async ValueTask RemoveUplinkAsync(string uplink, CancellationToken cancellationToken)
    {
        lock (_stateLock)
        {
            if (!_positions.Remove(uplink))
            {
                throw new UnknownUplinkException(uplink);
            }
        }

        var op = new RemoveUplinkOp(uplink, cancellationToken);
        Enqueue(op);
        await op.Done.Task.ConfigureAwait(false);
    }

    public async ValueTask<IReadOnlyList<OutboxEntry>> ReadAsync(string uplink, long afterSequence, int max, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(max);
        lock (_stateLock)
        {
            if (!_positions.ContainsKey(uplink))
            {
                throw new UnknownUplinkException(uplink);
            }
        }

        return await ReadFromAsync(afterSequence, max, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Entries after <paramref name="afterSequence"/> without an uplink (inspection: <c>edgetwin outbox peek|export</c>).</summary>
    public async ValueTask<IReadOnlyList<OutboxEntry>> ReadFromAsync(long afterSequence, int max, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(max);
        cancellationToken.ThrowIfCancellationRequested();
        var op = new ReadOp(afterSequence, max, cancellationToken);
        Enqueue(op);
        return await op.Done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public long GetAcknowledged(string uplink)
    {
        lock (_stateLock)
        {
            return _positions.TryGetValue(uplink, out var position) ? position : throw new UnknownUplinkException(uplink);
        }
    }

    public async ValueTask AcknowledgeAsync(string uplink, long sequence, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_stateLock)
        {
            if (!_positions.TryGetValue(uplink, out var position))
            {
                throw new UnknownUplinkException(uplink);
            }

            if (sequence <= position)
            {
                return; // Acks are cumulative; a late or repeated one changes nothing.
            }
        }

        var op = new AckOp(uplink, sequence, cancellationToken);
        Enqueue(op);
        await op.Done.Task.ConfigureAwait(false);
    }

    public ValueTask WaitForEntriesAsync(long afterSequence, CancellationToken cancellationToken) =>
        _signal.WaitAsync(afterSequence, cancellationToken);

    /// <summary>Runs the maximum-age and budget checks now instead of at the next interval.</summary>
    public async ValueTask RunMaintenanceAsync(CancellationToken cancellationToken)
    {
        var op = new MaintenanceOp(cancellationToken);
        Enqueue(op);
        await op.Done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public OutboxStats GetStats()
    {
        var runFirst = RunFirstSequence(); // its own lock, not taken inside _stateLock
        lock (_stateLock)
        {
            var s = _published;
            return new OutboxStats(
                s.Depth,
                s.First,
                s.Last,
                s.Depth > 0 ? s.OldestTimestamp : null,
                s.FileBytes,
                new Dictionary<string, long>(_positions, StringComparer.Ordinal),
                Interlocked.Read(ref _appendedSinceOpen),
                s.Condensed,
                s.Dropped)
            {
                EntryBytes = s.Bytes,
                PendingEntries = s.PendingPieces,
                PendingBytes = s.PendingBytes,
                Storage = StorageState(),
                RunFirstSequence = runFirst,
            };
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _queue.CompleteAdding();
        if (_writer.IsAlive)
        {
            await _stopped.Task.ConfigureAwait(false);
        }

        _queue.Dispose();
        _signal.Dispose();
        _metrics.Dispose();
    }

    private void Enqueue(WriterOp op)
    {
        try
        {
            _queue.Add(op);
        }
        catch (InvalidOperationException)
        {
            throw new ObjectDisposedException(nameof(LiteDbOutbox), $"Outbox {_options.Path} is closed.");
        }
    }

    private void Publish(in StoreState state, IReadOnlyDictionary<string, long>? positions)
    {
        lock (_stateLock)
        {
            _published = state;
            if (positions is not null)
            {
                foreach (var (uplink, position) in positions)
                {
                    // A removed uplink stays removed; a position only moves forward.
                    if (_positions.TryGetValue(uplink, out var current) && position > current)
                    {
                        _positions[uplink] = position;
                    }
                }
            }
        }
    }

    /// <summary>What the writer knows about the store; copied per batch and published only after a commit.</summary>
    private struct StoreState
    {
        public long Last;
        public long First;
        public long Depth;
        public long Bytes;
        public long OldestTimestamp;
        public long Condensed;
        public long Dropped;
        public long FileBytes;

        /// <summary>Read-only open: committed pieces of an unfinished append left on disk (hidden, never read) and their bytes.</summary>
        public long PendingPieces;
        public long PendingBytes;

        /// <summary>The file had no meta yet when opened: it was created now.</summary>
        public bool Created;
    }

    private abstract class WriterOp(CancellationToken cancellationToken)
    {
        public CancellationToken CancellationToken { get; } = cancellationToken;

        public abstract void Fail(Exception exception);

        public abstract void Cancel();
    }

    private abstract class WriterOp<T>(CancellationToken cancellationToken) : WriterOp(cancellationToken)
    {
        public TaskCompletionSource<T> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override void Fail(Exception exception) => Done.TrySetException(exception);

        public override void Cancel() => Done.TrySetCanceled(CancellationToken);
    }

    private sealed class AppendOp(OutboxRecord[] records, (string Name, byte[] Value)[] blobs, CancellationToken ct) : WriterOp<long>(ct)
    {
        public OutboxRecord[] Records { get; } = records;

        public (string Name, byte[] Value)[] Blobs { get; } = blobs;
    }

    private sealed class BlobReadOp(string name, CancellationToken ct) : WriterOp<byte[]?>(ct)
    {
        public string Name { get; } = name;
    }

    private sealed class AckOp(string uplink, long sequence, CancellationToken ct) : WriterOp<bool>(ct)
    {
        public string Uplink { get; } = uplink;

        public long Sequence { get; } = sequence;
    }

    private sealed class RegisterOp(string uplink, long position) : WriterOp<bool>(CancellationToken.None)
    {
        public string Uplink { get; } = uplink;

        public long Position { get; } = position;
    }

    private sealed class RemoveUplinkOp(string uplink, CancellationToken ct) : WriterOp<bool>(ct)
    {
        public string Uplink { get; } = uplink;
    }

    private sealed class ReadOp(long after, int max, CancellationToken ct) : WriterOp<IReadOnlyList<OutboxEntry>>(ct)
    {
        public long After { get; } = after;

        public int Max { get; } = max;
    }

    private sealed class MaintenanceOp(CancellationToken ct) : WriterOp<bool>(ct);
}
