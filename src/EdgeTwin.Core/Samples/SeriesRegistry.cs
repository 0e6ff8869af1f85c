using System.Collections.Concurrent;

namespace EdgeTwin.Core.Samples;

/// <summary>
/// Interns series descriptors into dense <see cref="SeriesId"/>s. Registration happens when a source
/// starts or discovers a table row (rare); lookups by id happen per sample and are a lock-free array read.
/// </summary>
public sealed class SeriesRegistry
{
    private readonly ConcurrentDictionary<string, SeriesId> _byKey = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private SeriesDescriptor[] _byId = new SeriesDescriptor[64];
    private int _count;

    /// <summary>Raised once per new series, after it can be looked up. Used for birth messages.</summary>
    public event Action<SeriesId, SeriesDescriptor>? SeriesAdded;

    public int Count => Volatile.Read(ref _count);

    public SeriesId GetOrAdd(SeriesDescriptor descriptor)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        if (_byKey.TryGetValue(descriptor.Key, out var existing))
        {
            return existing;
        }

        SeriesId id;
        lock (_gate)
        {
            if (_byKey.TryGetValue(descriptor.Key, out existing))
            {
                return existing;
            }

            if (_count == _byId.Length)
            {
                var grown = new SeriesDescriptor[_byId.Length * 2];
                Array.Copy(_byId, grown, _count);
                Volatile.Write(ref _byId, grown);
            }

            id = new SeriesId(_count);
            _byId[_count] = descriptor;
            Volatile.Write(ref _count, _count + 1);
            _byKey[descriptor.Key] = id;
        }

        SeriesAdded?.Invoke(id, descriptor);
        return id;
    }

    public bool TryGet(string key, out SeriesId id) => _byKey.TryGetValue(key, out id);

    public SeriesDescriptor this[SeriesId id]
    {
        get
        {
            var snapshot = Volatile.Read(ref _byId);
            if ((uint)id.Value >= (uint)Count)
            {
                throw new ArgumentOutOfRangeException(nameof(id), id.Value, "Unknown series id.");
            }

            return snapshot[id.Value];
        }
    }

    /// <summary>A stable copy of every series registered so far, in id order.</summary>
    public IReadOnlyList<(SeriesId Id, SeriesDescriptor Descriptor)> Snapshot()
    {
        var count = Count;
        var snapshot = Volatile.Read(ref _byId);
        var list = new List<(SeriesId, SeriesDescriptor)>(count);
        for (var i = 0; i < count; i++)
        {
            list.Add((new SeriesId(i), snapshot[i]));
        }

        return list;
    }
}
