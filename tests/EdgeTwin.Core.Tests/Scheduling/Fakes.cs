using System.Collections.Concurrent;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Scheduling;
using EdgeTwin.Core.Sources;
using EdgeTwin.Tests.Shared;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Core.Tests.Scheduling;

internal enum PollBehavior
{
    /// <summary>Answers at once with <see cref="FakeSource.Value"/> for every metric.</summary>
    Good,
    /// <summary>Refuses at once with a <see cref="DeviceException"/>.</summary>
    Fail,
    /// <summary>Never answers, but honours cancellation (a dead device behind a working socket).</summary>
    Hang,
    /// <summary>Never answers; when cancelled, says what it was waiting for (as the Modbus source does).</summary>
    HangThenExplain,
    /// <summary>Never answers and ignores cancellation (a buggy driver) until <see cref="FakeSource.Release"/>.</summary>
    HangIgnoringCancellation,
    /// <summary>Answers after <see cref="FakeSource.SlowFor"/> of fake time.</summary>
    Slow,
    /// <summary>
    /// Waits <see cref="FakeSource.QueueFor"/> for a shared line (telling the deadline, bound <see cref="FakeSource.QueueBound"/>),
    /// then answers after <see cref="FakeSource.SlowFor"/> on the line (an RS-485 unit behind a neighbour's request).
    /// </summary>
    QueuedThenSlow,
    /// <summary>Waits for a shared line that never comes free (bound <see cref="FakeSource.QueueBound"/>), honouring cancellation.</summary>
    QueuedForever,
}

/// <summary>
/// A scripted device. Everything it awaits completes inline from the fake clock's timer callbacks, so the
/// scheduler's idle count is exact when <see cref="FakeTimeProvider.Advance"/> returns.
/// </summary>
internal sealed class FakeSource(string deviceId, FakeTimeProvider time, params string[] metrics) : IPolledSource
{
    private readonly Lock _lock = new();
    private readonly List<DateTimeOffset> _polls = [];
    private readonly List<SeriesId> _series = [];
    private TaskCompletionSource _release = new();

    public string DeviceId { get; } = deviceId;

    public Func<int, PollBehavior> Behavior { get; set; } = _ => PollBehavior.Good;

    public Func<int, double> Value { get; set; } = _ => 21.5;

    public TimeSpan SlowFor { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan QueueFor { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan QueueBound { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Shared by the sources of one test: the most polls seen in flight at once.</summary>
    public ConcurrencyProbe? Probe { get; set; }

    public IReadOnlyList<SeriesId> Series => _series;

    public IReadOnlyList<DateTimeOffset> PollTimes
    {
        get
        {
            lock (_lock)
            {
                return [.. _polls];
            }
        }
    }

    public void Release() => _release.TrySetResult();

    public void RegisterSeries(SeriesRegistry registry)
    {
        foreach (var m in metrics.Length == 0 ? ["temperature"] : metrics)
        {
            _series.Add(registry.GetOrAdd(new SeriesDescriptor(DeviceId, m, "Cel")));
        }
    }

    public ValueTask PollAsync(ISampleSink sink, long acquiredAtUnixMs, CancellationToken cancellationToken) =>
        PollAsync(sink, acquiredAtUnixMs, null, cancellationToken);

    public async ValueTask PollAsync(ISampleSink sink, long acquiredAtUnixMs, PollDeadline? deadline, CancellationToken cancellationToken)
    {
        int index;
        lock (_lock)
        {
            index = _polls.Count;
            _polls.Add(time.GetUtcNow());
        }

        Probe?.Enter();
        try
        {
            switch (Behavior(index))
            {
                case PollBehavior.Fail:
                    throw new DeviceException(DeviceId, "connection refused");
                case PollBehavior.Hang:
                    // Not Task.Delay(.., time, ct): its cancellation resumes us on the thread pool, so under load the
                    // scheduler could still see the poll running after CancelAsync and skip the next tick as abandoned.
                    var hung = new TaskCompletionSource();
                    using (cancellationToken.UnsafeRegister(static s => ((TaskCompletionSource)s!).TrySetCanceled(), hung))
                    {
                        await hung.Task;
                    }

                    break;
                case PollBehavior.HangThenExplain:
                    var waiting = new TaskCompletionSource();
                    using (cancellationToken.UnsafeRegister(static s => ((TaskCompletionSource)s!).TrySetCanceled(), waiting))
                    {
                        try
                        {
                            await waiting.Task;
                        }
                        catch (OperationCanceledException ex)
                        {
                            throw new DeviceException(DeviceId, "tcp://127.0.0.1:502 unit 1: no answer to ReadHoldingRegisters at 0 within 2 s", ex);
                        }
                    }

                    break;
                case PollBehavior.HangIgnoringCancellation:
                    _release = new TaskCompletionSource();
                    await _release.Task;
                    break;
                case PollBehavior.QueuedThenSlow:
                    deadline!.WaitingForLine(QueueBound);
                    await FakeDelay(QueueFor, cancellationToken);
                    deadline.OnLine();
                    await FakeDelay(SlowFor, cancellationToken);
                    break;
                case PollBehavior.QueuedForever:
                    deadline!.WaitingForLine(QueueBound);
                    var line = new TaskCompletionSource();
                    using (cancellationToken.UnsafeRegister(static s => ((TaskCompletionSource)s!).TrySetCanceled(), line))
                    {
                        await line.Task;
                    }

                    break;
                case PollBehavior.Slow:
                    var done = new TaskCompletionSource();
                    using (time.CreateTimer(_ => done.TrySetResult(), null, SlowFor, Timeout.InfiniteTimeSpan))
                    {
                        await done.Task;
                    }

                    break;
            }

            var batch = new Sample[_series.Count];
            for (var i = 0; i < batch.Length; i++)
            {
                batch[i] = new Sample(_series[i], acquiredAtUnixMs, Value(index));
            }

            await sink.WriteAsync(batch, cancellationToken);
        }
        finally
        {
            Probe?.Exit();
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>A wait on the fake clock that resumes inline from its timer callback (or its cancellation).</summary>
    private async Task FakeDelay(TimeSpan delay, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource();
        using (time.CreateTimer(static s => ((TaskCompletionSource)s!).TrySetResult(), done, delay, Timeout.InfiniteTimeSpan))
        using (cancellationToken.UnsafeRegister(static s => ((TaskCompletionSource)s!).TrySetCanceled(), done))
        {
            await done.Task;
        }
    }
}

internal sealed class ConcurrencyProbe
{
    private int _now;
    private int _max;

    public int Max => Volatile.Read(ref _max);

    public void Enter()
    {
        var now = Interlocked.Increment(ref _now);
        int max;
        while (now > (max = Volatile.Read(ref _max)) && Interlocked.CompareExchange(ref _max, now, max) != max)
        {
        }
    }

    public void Exit() => Interlocked.Decrement(ref _now);
}

internal sealed class CollectingSampleSink : ISampleSink
{
    private readonly ConcurrentQueue<Sample> _samples = new();

    public IReadOnlyList<Sample> Samples => [.. _samples];

    public ValueTask WriteAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken)
    {
        foreach (var s in samples.Span)
        {
            _samples.Enqueue(s);
        }

        return ValueTask.CompletedTask;
    }
}

internal sealed class CollectingEventSink : IEventSink
{
    private readonly ConcurrentQueue<EdgeEvent> _events = new();

    public IReadOnlyList<EdgeEvent> Events => [.. _events];

    public ValueTask PublishAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken)
    {
        _events.Enqueue(edgeEvent);
        return ValueTask.CompletedTask;
    }
}

/// <summary>Runs a scheduler on a fake clock and advances it in small steps, waiting for the loops to settle after each.</summary>
internal sealed class SchedulerHarness : IAsyncDisposable
{
    public static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public SchedulerHarness(PollSchedulerOptions? options = null)
    {
        Options = options ?? new PollSchedulerOptions { JitterFraction = 0, RandomSeed = 7 };
    }

    public FakeTimeProvider Time { get; } = new(Start);

    /// <summary>The scheduler's clock: <see cref="Time"/>, whose wall clock a test can step (NTP) while its timestamp runs on.</summary>
    public SteppableClock Clock => _clock ??= new SteppableClock(Time);

    private SteppableClock? _clock;

    public SeriesRegistry Registry { get; } = new();

    public CollectingSampleSink Samples { get; } = new();

    public CollectingEventSink Events { get; } = new();

    public PollSchedulerOptions Options { get; }

    /// <summary>What the scheduler logged, with the level.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<(Microsoft.Extensions.Logging.LogLevel Level, string Message)> Logs { get; } = new();

    public PollScheduler? Scheduler { get; private set; }

    public FakeSource Source(string id, params string[] metrics) => new(id, Time, metrics);

    public async Task StartAsync(params PolledDevice[] devices)
    {
        Scheduler = new PollScheduler(devices, Registry, Samples, Events, Options, Clock, new ListLogger<PollScheduler>(Logs));
        await Scheduler.StartAsync(CancellationToken.None);
        await SettleAsync();
    }

    /// <summary>Moves fake time forward by <paramref name="total"/> in steps of <paramref name="step"/> (default 100 ms).</summary>
    public async Task AdvanceAsync(TimeSpan total, TimeSpan? step = null)
    {
        var s = step ?? TimeSpan.FromMilliseconds(100);
        for (var elapsed = TimeSpan.Zero; elapsed < total; elapsed += s)
        {
            Time.Advance(s);
            await SettleAsync();
        }
    }

    /// <summary>Waits (in real time, generously) until every device loop is parked on the fake clock.</summary>
    public async Task SettleAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (Scheduler!.BusyLoops != 0)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"scheduler loops did not settle: {Scheduler.BusyLoops} still busy at fake time {Time.GetUtcNow():O}");
            }

            await Task.Delay(1);
        }
    }

    public static TimeSpan Since(DateTimeOffset t) => t - Start;

    public async ValueTask DisposeAsync()
    {
        if (Scheduler is not null)
        {
            await Scheduler.DisposeAsync();
        }
    }
}
