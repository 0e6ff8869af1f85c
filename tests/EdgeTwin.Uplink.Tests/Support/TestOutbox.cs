using EdgeTwin.Outbox;

namespace EdgeTwin.Uplink.Tests.Support;

/// <summary>
/// A small in-memory IOutbox for the uplink tests (the real ones live in EdgeTwin.Outbox). Records every
/// acknowledgement so tests can check the position only ever moves forward.
/// </summary>
internal sealed class TestOutbox : IOutbox, IOutboxStatistics
{
    private readonly Lock _gate = new();
    private readonly List<OutboxEntry> _entries = [];
    private readonly Dictionary<string, long> _acks = [];
    private readonly List<(string Uplink, long Sequence)> _ackLog = [];
    private TaskCompletionSource _appended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _next = 1;

    public IReadOnlyList<(string Uplink, long Sequence)> AckLog
    {
        get { lock (_gate) { return [.. _ackLog]; } }
    }

    public long LastSequence
    {
        get { lock (_gate) { return _next - 1; } }
    }

    /// <summary>Removes entries (as condensation would) to leave holes in the sequence.</summary>
    public void Remove(Func<OutboxEntry, bool> predicate)
    {
        lock (_gate)
        {
            _entries.RemoveAll(e => predicate(e));
        }
    }

    public ValueTask<long> AppendAsync(IReadOnlyList<OutboxRecord> records, CancellationToken cancellationToken)
    {
        TaskCompletionSource signal;
        long last;
        lock (_gate)
        {
            foreach (var r in records)
            {
                _entries.Add(new OutboxEntry(_next++, r));
            }

            last = _next - 1;
            signal = _appended;
            _appended = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        signal.TrySetResult();
        return ValueTask.FromResult(last);
    }

    public void RegisterUplink(string uplink)
    {
        lock (_gate)
        {
            _acks.TryAdd(uplink, 0);
        }
    }

    public ValueTask<IReadOnlyList<OutboxEntry>> ReadAsync(string uplink, long afterSequence, int max, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var i = _entries.FindIndex(e => e.Sequence > afterSequence);
            if (i < 0)
            {
                return ValueTask.FromResult<IReadOnlyList<OutboxEntry>>([]);
            }

            return ValueTask.FromResult<IReadOnlyList<OutboxEntry>>(_entries.GetRange(i, Math.Min(max, _entries.Count - i)));
        }
    }

    public long GetAcknowledged(string uplink)
    {
        lock (_gate)
        {
            return _acks.GetValueOrDefault(uplink);
        }
    }

    public ValueTask AcknowledgeAsync(string uplink, long sequence, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _ackLog.Add((uplink, sequence));
            _acks[uplink] = Math.Max(_acks.GetValueOrDefault(uplink), sequence);
        }

        return ValueTask.CompletedTask;
    }

    public async ValueTask WaitForEntriesAsync(long afterSequence, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task wait;
            lock (_gate)
            {
                if (_next - 1 > afterSequence)
                {
                    return;
                }

                wait = _appended.Task;
            }

            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Depth as the real outboxes count it: entries not yet acknowledged by every registered uplink.</summary>
    public OutboxStats GetStats()
    {
        lock (_gate)
        {
            var floor = _acks.Count == 0 ? 0 : _acks.Values.Min();
            var held = _entries.Where(e => e.Sequence > floor).ToList();
            return new OutboxStats(
                held.Count, held.Count > 0 ? held[0].Sequence : 0, _next - 1, held.Count > 0 ? held[0].Record.TimestampUnixMs : null,
                held.Sum(e => (long)e.Record.Payload.Length), new Dictionary<string, long>(_acks), _next - 1, 0, 0);
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
