namespace EdgeTwin.Twin.Anomaly;

/// <summary>
/// Contextual novelty in the spirit of CAD OSE (Contextual Anomaly Detector, open-source edition; our own code): the value is
/// quantised into a few bins over the range seen so far, and for every history length k = 1..orders the context
/// "last k bins → this bin" is looked up in a fixed-capacity table. The score is the fraction of those contexts never seen
/// before (a novel pattern of any length scores high; a pattern seen before, however rare, scores low). Long contexts carry
/// the memory of shape that a first-order transition matrix lacks.
/// <para>
/// The table is set-associative (buckets of <see cref="Ways"/> 32-bit fingerprints, least-recently-used replacement), so it is
/// bounded and forgets the least recently seen contexts when full; it is allocated once, and <see cref="Update"/> allocates
/// nothing. Not thread-safe: one instance per series.
/// </para>
/// </summary>
public sealed class ContextNoveltyDetector
{
    /// <summary>Slots per bucket.</summary>
    public const int Ways = 4;

    private readonly int _levels;
    private readonly int _orders;
    private readonly uint[] _keys;
    private readonly uint[] _stamps;
    private readonly int _bucketMask;
    private readonly byte[] _history;
    private int _historyPos;
    private int _historyCount;
    private uint _clock;
    private double _min;
    private double _max;

    /// <param name="levels">Quantisation bins (2..250); two more symbols mark values beyond the range seen so far.</param>
    /// <param name="orders">Longest context (history length), 1..32.</param>
    /// <param name="capacity">Table slots; rounded up to a power of two, at least <see cref="Ways"/>.</param>
    public ContextNoveltyDetector(int levels, int orders, int capacity)
    {
        if (levels is < 2 or > 250)
        {
            throw new ArgumentOutOfRangeException(nameof(levels), levels, "must be in 2..250");
        }

        if (orders is < 1 or > 32)
        {
            throw new ArgumentOutOfRangeException(nameof(orders), orders, "must be in 1..32");
        }

        if (capacity is < Ways or > (1 << 24))
        {
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, $"must be in {Ways}..{1 << 24}");
        }

        _levels = levels;
        _orders = orders;
        var slots = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)capacity);
        _keys = new uint[slots];
        _stamps = new uint[slots];
        _bucketMask = (slots / Ways) - 1;
        _history = new byte[orders];
    }

    /// <summary>Approximate bytes held (bounded by the capacity; independent of the series length).</summary>
    public int ApproximateBytes => 64 + (8 * _keys.Length) + _history.Length;

    /// <summary>Contexts looked up by the last update that were novel (0..orders).</summary>
    public int LastNovel { get; private set; }

    /// <summary>Learns one value and returns the fraction of its contexts (of the lengths available so far) never seen before.</summary>
    public double Update(double x)
    {
        // Bins over the range seen before this value; a value beyond it gets its own symbol (new high / new low), so a new
        // extreme is a novel context rather than one more visit to the top or bottom bin.
        int bin;
        if (_clock == 0)
        {
            _min = _max = x;
            bin = 0;
        }
        else if (x > _max)
        {
            bin = _levels;
            _max = x;
        }
        else if (x < _min)
        {
            bin = _levels + 1;
            _min = x;
        }
        else
        {
            var range = _max - _min;
            bin = range <= 0 ? 0 : Math.Min((int)((x - _min) / range * _levels), _levels - 1);
        }

        _clock++;

        // For each history length k: was this history seen before (so it predicts something), and was this continuation of it
        // seen before? Only contexts whose history is known count: a never-seen continuation of a known history is the
        // surprise; a never-seen history on a noisy series is routine.
        var novel = 0;
        var known = 0;
        var available = Math.Min(_historyCount, _orders);
        var h = 0x9E3779B97F4A7C15UL;
        var pos = _historyPos;
        for (var k = 1; k <= available; k++)
        {
            pos = pos == 0 ? _orders - 1 : pos - 1;
            h = Mix(h + ((ulong)_history[pos] << 8) + (ulong)k);
            if (!Visit(h))
            {
                known++;
                if (Visit(Mix(h ^ (0xD6E8FEB86659FD93UL * (ulong)(bin + 1)))))
                {
                    novel++;
                }
            }
            else
            {
                Visit(Mix(h ^ (0xD6E8FEB86659FD93UL * (ulong)(bin + 1))));
            }
        }

        _history[_historyPos] = (byte)bin;
        _historyPos = _historyPos + 1 == _orders ? 0 : _historyPos + 1;
        if (_historyCount < _orders)
        {
            _historyCount++;
        }

        LastNovel = novel;
        return known == 0 ? 0.0 : (double)novel / known;
    }

    /// <summary>Marks the context as seen now; true when it was not in the table.</summary>
    private bool Visit(ulong hash)
    {
        var fingerprint = (uint)(hash >> 32) | 1u; // never 0, which marks an empty slot
        var start = (int)((uint)hash & (uint)_bucketMask) * Ways;
        var victim = start;
        var oldest = -1L;
        for (var i = start; i < start + Ways; i++)
        {
            if (_keys[i] == fingerprint)
            {
                _stamps[i] = _clock;
                return false;
            }

            if (_keys[i] == 0)
            {
                // Slots fill in order and are never emptied, so no match lies beyond an empty one.
                victim = i;
                break;
            }

            long age = _clock - _stamps[i];
            if (age > oldest)
            {
                oldest = age;
                victim = i;
            }
        }

        _keys[victim] = fingerprint;
        _stamps[victim] = _clock;
        return true;
    }

    private static ulong Mix(ulong z)
    {
        // SplitMix64 finaliser: cheap, well-spread.
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
