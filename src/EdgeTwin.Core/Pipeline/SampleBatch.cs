using System.Buffers;
using System.Collections.Concurrent;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Core.Pipeline;

/// <summary>
/// A pooled copy of one <see cref="ISampleSink.WriteAsync"/> call, shared by every stage of the fan-out. The
/// array comes from <see cref="ArrayPool{T}"/> and the batch object from a small pool, so the hot path allocates
/// nothing per sample and (in steady state) nothing per batch. Reference-counted: each stage releases it once.
/// </summary>
internal sealed class SampleBatch
{
    private static readonly ConcurrentQueue<SampleBatch> Pool = new();
    private static int _pooled;
    private static long _outstanding;
    private const int MaxPooled = 1024;

    private Sample[] _array = [];
    private int _count;
    private int _refs;

    public int Count => _count;

    public ReadOnlyMemory<Sample> Memory => new(_array, 0, _count);

    /// <summary>Batches rented and not yet returned, process-wide. Tests use it to prove nothing leaks.</summary>
    internal static long Outstanding => Interlocked.Read(ref _outstanding);

    public static SampleBatch Rent(ReadOnlySpan<Sample> samples, int references)
    {
        if (!Pool.TryDequeue(out var batch))
        {
            batch = new SampleBatch();
        }
        else
        {
            Interlocked.Decrement(ref _pooled);
        }

        batch._array = ArrayPool<Sample>.Shared.Rent(samples.Length);
        samples.CopyTo(batch._array);
        batch._count = samples.Length;
        batch._refs = references;
        Interlocked.Increment(ref _outstanding);
        return batch;
    }

    /// <summary>Drops one stage's reference; the last one returns the array and the batch to their pools.</summary>
    public void Release()
    {
        var left = Interlocked.Decrement(ref _refs);
        if (left > 0)
        {
            return;
        }

        if (left < 0)
        {
            throw new InvalidOperationException("A sample batch was released more often than it was shared.");
        }

        ArrayPool<Sample>.Shared.Return(_array);
        _array = [];
        _count = 0;
        Interlocked.Decrement(ref _outstanding);
        if (Interlocked.Increment(ref _pooled) <= MaxPooled)
        {
            Pool.Enqueue(this);
        }
        else
        {
            Interlocked.Decrement(ref _pooled);
        }
    }
}
