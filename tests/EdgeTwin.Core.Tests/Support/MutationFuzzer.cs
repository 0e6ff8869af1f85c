using System.Diagnostics;

namespace EdgeTwin.Tests.Shared;

/// <summary>What one fuzz run did; <see cref="ToString"/> is the line a test writes to its output.</summary>
public sealed record FuzzReport(string Target, long Iterations, long Accepted, long Rejected, TimeSpan Elapsed, long MaxAllocatedBytes, TimeSpan Slowest)
{
    public override string ToString() =>
        $"{Target}: {Iterations:N0} inputs in {Elapsed.TotalSeconds:F1} s ({Iterations / Math.Max(Elapsed.TotalSeconds, 1e-3):N0}/s), " +
        $"{Accepted:N0} accepted, {Rejected:N0} rejected, most allocated by one input {MaxAllocatedBytes:N0} B, slowest {Slowest.TotalMilliseconds:F2} ms";
}

/// <summary>
/// Seeded mutation fuzzer over byte captures: bit flips, boundary bytes, insertions, deletions, truncation, splicing of
/// two seeds and length-field extremes (a 1-, 2- or 4-byte big- or little-endian field rewritten to 0, 1, max or 2^31).
/// Each input runs on a worker thread watched for hangs; the allocation of each input is measured on that thread.
/// A failure message carries the input as hex, so it can become a regression test as it is.
/// </summary>
public static class MutationFuzzer
{
    /// <summary>Inputs per target when <c>EDGETWIN_FUZZ_ITERATIONS</c> is set (the long local runs); CI uses each test's own count.</summary>
    public static long Iterations(long ciDefault) =>
        long.TryParse(Environment.GetEnvironmentVariable("EDGETWIN_FUZZ_ITERATIONS"), out var n) && n > 0 ? n : ciDefault;

    private static readonly byte[] Interesting = [0x00, 0x01, 0x02, 0x7e, 0x7f, 0x80, 0x81, 0x82, 0x84, 0x85, 0xfe, 0xff, 0x30, 0x04, 0x06, 0x0a, 0x0d, 0x20, 0x22, 0x3a, 0x5c];

    public static byte[] Mutate(byte[] input, byte[][] seeds, Random rng)
    {
        var p = input;
        if (p.Length == 0)
        {
            return [Interesting[rng.Next(Interesting.Length)]];
        }
        switch (rng.Next(9))
        {
            case 0:
                p[rng.Next(p.Length)] ^= (byte)(1 << rng.Next(8));
                return p;
            case 1:
                p[rng.Next(p.Length)] = Interesting[rng.Next(Interesting.Length)];
                return p;
            case 2:
                return p[..rng.Next(p.Length)];
            case 3:
                {
                    var at = rng.Next(p.Length + 1);
                    var extra = new byte[1 + rng.Next(8)];
                    if (rng.Next(2) == 0)
                    {
                        rng.NextBytes(extra);
                    }
                    else
                    {
                        // Repeat a slice of the input itself (nested headers, doubled fields).
                        var from = rng.Next(p.Length);
                        extra = p[from..Math.Min(p.Length, from + extra.Length)];
                    }
                    return [.. p[..at], .. extra, .. p[at..]];
                }
            case 4:
                {
                    var at = rng.Next(p.Length);
                    var len = Math.Min(p.Length - at, 1 + rng.Next(8));
                    return [.. p[..at], .. p[(at + len)..]];
                }
            case 5:
                {
                    // Splice: a head of this input and a tail of another seed.
                    var other = seeds[rng.Next(seeds.Length)];
                    var cut = rng.Next(p.Length + 1);
                    var from = other.Length == 0 ? 0 : rng.Next(other.Length);
                    return [.. p[..cut], .. other[from..]];
                }
            case 6:
                {
                    // Length-field extremes: rewrite 1, 2 or 4 bytes as 0, 1, all ones, 0x80.. or 0x7f..
                    var width = rng.Next(3) switch { 0 => 1, 1 => 2, _ => 4 };
                    if (p.Length < width)
                    {
                        return p;
                    }
                    var at = rng.Next(p.Length - width + 1);
                    var fill = rng.Next(5);
                    for (var i = 0; i < width; i++)
                    {
                        p[at + i] = fill switch
                        {
                            0 => 0,
                            1 => (byte)(i == width - 1 ? 1 : 0),
                            2 => 0xff,
                            3 => (byte)(i == 0 ? 0x80 : 0),
                            _ => (byte)(i == 0 ? 0x7f : 0xff),
                        };
                    }
                    return p;
                }
            case 7:
                {
                    // BER long-form length claiming up to 2 GB, at a random place.
                    var at = rng.Next(p.Length);
                    byte[] len = rng.Next(3) switch
                    {
                        0 => [0x84, 0x7f, 0xff, 0xff, 0xff],
                        1 => [0x84, 0xff, 0xff, 0xff, 0xff],
                        _ => [0x82, 0xff, 0xff],
                    };
                    return [.. p[..at], .. len, .. p[Math.Min(p.Length, at + 1)..]];
                }
            default:
                {
                    // Duplicate a block many times (deep nesting, repeated fields).
                    var from = rng.Next(p.Length);
                    var block = p[from..Math.Min(p.Length, from + 1 + rng.Next(16))];
                    var times = 1 + rng.Next(64);
                    var result = new List<byte>(p.Length + (block.Length * times));
                    result.AddRange(p[..from]);
                    for (var i = 0; i < times; i++)
                    {
                        result.AddRange(block);
                    }
                    result.AddRange(p[from..]);
                    return [.. result];
                }
        }
    }

    /// <summary>
    /// Runs <paramref name="target"/> on <paramref name="iterations"/> mutants of <paramref name="seeds"/>. It returns
    /// true when the input was accepted; any exception <paramref name="documented"/> accepts counts as rejected; any
    /// other fails the run naming the input. So do an input running longer than <paramref name="hangLimit"/> and one
    /// allocating more than <paramref name="maxAllocatedBytes"/>.
    /// </summary>
    public static FuzzReport Run(string name, IReadOnlyList<byte[]> seeds, long iterations, int seed,
        Func<byte[], bool> target, Func<Exception, bool> documented, long maxAllocatedBytes, TimeSpan? hangLimit = null)
    {
        var limit = hangLimit ?? TimeSpan.FromSeconds(5);
        var seedArray = seeds.ToArray();
        long accepted = 0, rejected = 0, maxAlloc = 0, done = 0;
        long slowestTicks = 0;
        byte[]? current = null;
        long startedAt = 0;
        string? failure = null;
        var total = Stopwatch.StartNew();
        var worker = new Thread(() =>
        {
            var rng = new Random(seed);
            try
            {
                for (long i = 0; i < iterations; i++)
                {
                    var input = (byte[])seedArray[rng.Next(seedArray.Length)].Clone();
                    var mutations = rng.Next(5); // 0: the seed itself now and then
                    for (var m = 0; m < mutations; m++)
                    {
                        input = Mutate(input, seedArray, rng);
                    }
                    Volatile.Write(ref current, input);
                    var before = GC.GetAllocatedBytesForCurrentThread();
                    var t0 = Stopwatch.GetTimestamp();
                    Volatile.Write(ref startedAt, t0);
                    try
                    {
                        if (target(input))
                        {
                            accepted++;
                        }
                        else
                        {
                            rejected++;
                        }
                    }
                    catch (Exception ex) when (documented(ex))
                    {
                        rejected++;
                    }
                    catch (Exception ex)
                    {
                        failure = $"{name}: undocumented {ex.GetType().Name} on input #{i} {Convert.ToHexString(input)}: {ex}";
                        return;
                    }
                    var took = Stopwatch.GetTimestamp() - t0;
                    var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                    slowestTicks = Math.Max(slowestTicks, took);
                    maxAlloc = Math.Max(maxAlloc, allocated);
                    if (allocated > maxAllocatedBytes)
                    {
                        failure = $"{name}: input #{i} allocated {allocated:N0} B (bound {maxAllocatedBytes:N0}): {Convert.ToHexString(input)}";
                        return;
                    }
                    Volatile.Write(ref startedAt, 0);
                    Interlocked.Increment(ref done);
                }
            }
            finally
            {
                Volatile.Write(ref startedAt, -1);
            }
        }) { IsBackground = true, Name = "fuzz " + name };
        worker.Start();
        while (!worker.Join(100))
        {
            var s = Volatile.Read(ref startedAt);
            if (s > 0 && Stopwatch.GetElapsedTime(s) > limit)
            {
                // The worker is left running (background thread); the test fails with the input that hung.
                throw new TimeoutException($"{name}: one input ran longer than {limit.TotalSeconds} s: {Convert.ToHexString(Volatile.Read(ref current) ?? [])}");
            }
        }
        if (failure is not null)
        {
            throw new InvalidOperationException(failure);
        }
        return new FuzzReport(name, done, accepted, rejected, total.Elapsed, maxAlloc, TimeSpan.FromSeconds((double)slowestTicks / Stopwatch.Frequency));
    }
}
