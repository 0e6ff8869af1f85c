namespace EdgeTwin.Outbox;

/// <summary>
/// A non-durable <see cref="IOutbox"/> for tests and for running without a disk (nothing survives a restart).
/// Same semantics as the LiteDB outbox: gap-free sequences from 1, per-uplink positions, removal only when
/// every registered uplink has acknowledged, and nothing removed while no uplink is registered.
/// </summary>
public sealed class InMemoryOutbox : IOutbox, IOutboxStatistics
{
    private readonly Lock _gate = new();
    private readonly Queue<OutboxEntry> _entries = new();
    private readonly Dictionary<string, long> _acked = new(StringComparer.Ordinal);
    private readonly OutboxSignal _signal = new();
    private long _lastSequence;
    private long _bytes;
    private long _appended;
    private bool _disposed;

    public long LastSequence
    {
        get
        {
            lock (_gate)
            {
                return _lastSequence;
            }
        }
    }

    public ValueTask<long> AppendAsync(IReadOnlyList<OutboxRecord> records, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(records);
        cancellationToken.ThrowIfCancellationRequested();
        long last;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            foreach (var record in records)
            {
                OutboxRecordValidation.Validate(record);
            }

            foreach (var record in records)
            {
                // Copy: the caller may reuse its payload buffer once the append completes.
                var copy = record with { Payload = record.Payload.ToArray() };
                _entries.Enqueue(new OutboxEntry(++_lastSequence, copy));
                _bytes += copy.Payload.Length;
            }

            _appended += records.Count;
            last = _lastSequence;
        }

        if (records.Count > 0)
        {
            _signal.Set(last);
        }

        return ValueTask.FromResult(last);
    }

    public void RegisterUplink(string uplink)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(uplink);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_acked.ContainsKey(uplink))
            {
                _acked[uplink] = _entries.Count > 0 ? _entries.Peek().Sequence - 1 : _lastSequence;
            }
        }
    }

    public ValueTask<IReadOnlyList<OutboxEntry>> ReadAsync(string uplink, long afterSequence, int max, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(max);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_acked.ContainsKey(uplink))
            {
                throw new UnknownUplinkException(uplink);
            }

            var result = new List<OutboxEntry>(Math.Min(max, _entries.Count));
            foreach (var entry in _entries)
            {
                if (entry.Sequence <= afterSequence)
                {
                    continue;
                }

                result.Add(entry);
                if (result.Count == max)
                {
                    break;
                }
            }

            return ValueTask.FromResult<IReadOnlyList<OutboxEntry>>(result);
        }
    }

    public long GetAcknowledged(string uplink)
    {
        lock (_gate)
        {
            return _acked.TryGetValue(uplink, out var position) ? position : throw new UnknownUplinkException(uplink);
        }
    }

    public ValueTask AcknowledgeAsync(string uplink, long sequence, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_acked.TryGetValue(uplink, out var position))
            {
                throw new UnknownUplinkException(uplink);
            }

            if (sequence > _lastSequence)
            {
                throw new ArgumentOutOfRangeException(nameof(sequence), sequence, $"Uplink '{uplink}' acknowledged sequence {sequence}, but the outbox has only reached {_lastSequence}.");
            }

            if (sequence <= position)
            {
                return ValueTask.CompletedTask; // Acks are cumulative; a late or repeated one changes nothing.
            }

            _acked[uplink] = sequence;
            var removeUpTo = _acked.Values.Min();
            while (_entries.Count > 0 && _entries.Peek().Sequence <= removeUpTo)
            {
                _bytes -= _entries.Dequeue().Record.Payload.Length;
            }
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask WaitForEntriesAsync(long afterSequence, CancellationToken cancellationToken) =>
        _signal.WaitAsync(afterSequence, cancellationToken);

    public OutboxStats GetStats()
    {
        lock (_gate)
        {
            var first = _entries.Count > 0 ? _entries.Peek() : default;
            return new OutboxStats(
                _entries.Count,
                _entries.Count > 0 ? first.Sequence : 0,
                _lastSequence,
                _entries.Count > 0 ? first.Record.TimestampUnixMs : null,
                _bytes,
                new Dictionary<string, long>(_acked, StringComparer.Ordinal),
                _appended,
                Condensed: 0,
                Dropped: 0);
        }
    }

    public ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            _disposed = true;
        }

        _signal.Dispose();
        return ValueTask.CompletedTask;
    }
}
