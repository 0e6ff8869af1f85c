using System.Diagnostics;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.State;

namespace EdgeTwin.Benchmarks.Alerting;

/// <summary>A message sink that records, per message, the time from the sample or edge behind it to its delivery.</summary>
internal sealed class LatencySink(string name) : IAlertSink
{
    private readonly Lock _gate = new();
    private readonly List<double> _latenciesMs = new(100_000);
    private readonly List<double> _commitMs = new(100_000);
    private long _messages;
    private long _alerts;

    public string Name { get; } = name;

    public bool FollowsState => false;

    public long Messages => Interlocked.Read(ref _messages);

    public long Alerts => Interlocked.Read(ref _alerts);

    public Task DeliverAsync(AlertNotification notification, IReadOnlyList<AlertSnapshot> alerts, CancellationToken cancellationToken)
    {
        var ms = notification.CauseTimestamp == 0 ? double.NaN : Stopwatch.GetElapsedTime(notification.CauseTimestamp).TotalMilliseconds;
        lock (_gate)
        {
            if (!double.IsNaN(ms))
            {
                _latenciesMs.Add(ms);
                if (notification.CommittedTimestamp != 0)
                {
                    _commitMs.Add((notification.CommittedTimestamp - notification.CauseTimestamp) * 1000.0 / Stopwatch.Frequency);
                }
            }
        }

        Interlocked.Increment(ref _messages);
        Interlocked.Add(ref _alerts, alerts.Count);
        return Task.CompletedTask;
    }

    public IReadOnlyList<double> Latencies()
    {
        lock (_gate)
        {
            return [.. _latenciesMs];
        }
    }

    /// <summary>The part of each latency until the change was committed and queued for the sink.</summary>
    public IReadOnlyList<double> UntilCommitted()
    {
        lock (_gate)
        {
            return [.. _commitMs];
        }
    }

    /// <summary>Forgets what was measured (after a warm-up round: the JIT's first calls are not the steady state).</summary>
    public void Reset()
    {
        lock (_gate)
        {
            _latenciesMs.Clear();
            _commitMs.Clear();
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

internal static class Percentiles
{
    public static string Describe(string what, IReadOnlyList<double> values)
    {
        if (values.Count == 0)
        {
            return $"{what}: no values";
        }

        var sorted = values.Order().ToArray();
        double P(double p) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
        return FormattableString.Invariant($"{what}: n={sorted.Length} p50={P(0.50):0.00} ms p99={P(0.99):0.00} ms max={sorted[^1]:0.00} ms");
    }

    public static async Task UntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (!condition())
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new TimeoutException("benchmark condition not reached within " + timeout);
            }

            await Task.Delay(1);
        }
    }
}
