namespace EdgeTwin.Snmp.Responder;

/// <summary>
/// A sorted, thread-safe OID store: fixed values or callbacks evaluated on each read (for live values such as a
/// simulated temperature). Tables are rows of columns under an entry OID: entry.column.index.
/// </summary>
public sealed class SnmpMibStore : ISnmpMibProvider
{
    private readonly SortedList<Oid, Func<SnmpValue>> _entries = new();
    private readonly Lock _lock = new();

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    public void Set(Oid oid, SnmpValue value) => Set(oid, () => value);

    public void Set(Oid oid, Func<SnmpValue> callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        if (oid.Length < 2)
        {
            throw new ArgumentException($"OID {oid} is too short to serve", nameof(oid));
        }
        lock (_lock)
        {
            _entries[oid] = callback;
        }
    }

    public void Set(string oid, SnmpValue value) => Set(Oid.Parse(oid), value);
    public void Set(string oid, Func<SnmpValue> callback) => Set(Oid.Parse(oid), callback);

    /// <summary>Sets one table cell: <paramref name="entry"/>.<paramref name="column"/>.<paramref name="index"/>.</summary>
    public void SetCell(Oid entry, uint column, ReadOnlySpan<uint> index, Func<SnmpValue> callback) =>
        Set(entry.Append([column, .. index]), callback);

    public void SetCell(Oid entry, uint column, ReadOnlySpan<uint> index, SnmpValue value) =>
        Set(entry.Append([column, .. index]), value);

    public bool Remove(Oid oid)
    {
        lock (_lock)
        {
            return _entries.Remove(oid);
        }
    }

    /// <summary>Removes <paramref name="root"/> and everything under it; returns how many went.</summary>
    public int RemoveSubtree(Oid root)
    {
        lock (_lock)
        {
            var i = LowerBound(root);
            var n = 0;
            while (i < _entries.Count && _entries.Keys[i].StartsWith(root))
            {
                _entries.RemoveAt(i);
                n++;
            }
            return n;
        }
    }

    public SnmpValue Get(Oid oid)
    {
        Func<SnmpValue>? cb;
        bool objectExists;
        lock (_lock)
        {
            if (_entries.TryGetValue(oid, out cb))
            {
                objectExists = true;
            }
            else
            {
                // noSuchInstance when the object (all but the last arc) has other instances, else noSuchObject.
                var parentLength = Math.Max(1, oid.Length - 1);
                var i = LowerBound(oid);
                objectExists = (i < _entries.Count && SharesPrefix(_entries.Keys[i], oid, parentLength))
                    || (i > 0 && SharesPrefix(_entries.Keys[i - 1], oid, parentLength));
            }
        }
        return cb is not null ? cb() : objectExists ? SnmpValue.NoSuchInstance : SnmpValue.NoSuchObject;
    }

    public bool TryGetNext(Oid oid, out VarBind next)
    {
        Oid key;
        Func<SnmpValue> cb;
        lock (_lock)
        {
            var i = LowerBound(oid);
            if (i < _entries.Count && _entries.Keys[i] == oid)
            {
                i++;
            }
            if (i >= _entries.Count)
            {
                next = default;
                return false;
            }
            key = _entries.Keys[i];
            cb = _entries.Values[i];
        }
        next = new VarBind(key, cb());
        return true;
    }

    private static bool SharesPrefix(Oid a, Oid b, int length) =>
        a.Length > length && b.Length >= length && a.Arcs[..length].SequenceEqual(b.Arcs[..length]);

    /// <summary>Index of the first key &gt;= <paramref name="oid"/>.</summary>
    private int LowerBound(Oid oid)
    {
        var keys = _entries.Keys;
        int lo = 0, hi = keys.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (keys[mid] < oid)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }
        return lo;
    }
}
