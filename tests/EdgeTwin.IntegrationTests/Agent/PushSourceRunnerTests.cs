using System.Collections.Concurrent;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using Microsoft.Extensions.DependencyInjection;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.IntegrationTests.Agent;

/// <summary>How a push source that keeps failing, and then runs again, is logged (on a fake clock).</summary>
public sealed class PushSourceRunnerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Regression_a_push_source_that_kept_failing_logged_an_error_with_its_stack_trace_at_every_restart()
    {
        // A door contact whose GPIO line another process held: an Error with the whole trace every 5 minutes, all day.
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 3, 2, 0, 0, TimeSpan.Zero));
        var logs = new RecordingLogger();
        var source = new FlakySource();
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var config = AgentFiles.Load(AgentFiles.WriteConfig("""
              - { id: door-1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: pub, enabled: false }
            """));
        var metrics = new AgentMetrics(services.GetRequiredService<IMeterFactory>(), new AgentRuntime(config, new SeriesRegistry(), clock), clock);
        using var restarts = new MetricCollector<long>(services.GetRequiredService<IMeterFactory>(), AgentMetrics.MeterName, "edgetwin.push.restarts");
        var runner = new PushSourceRunner(source, new NullSink(), new NullSink(), metrics, clock, logs);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var run = runner.RunAsync(stop.Token);

        // 1 s doubling to 5 min: 22 failed starts cover more than an hour.
        await AdvanceUntilAsync(clock, () => source.Starts >= 22);
        Assert.True(restarts.GetMeasurementSnapshot().Count >= 21, "every failed start is counted");

        var errors = logs.Entries.Where(e => e.Level == LogLevel.Error).ToList();
        var error = Assert.Single(errors);
        Assert.True(error.HasException, "the first failure carries the trace");
        Assert.StartsWith("Push source door-1 failed: IOException: GPIO line 17 of /dev/gpiochip0 is busy; restarting in 1.0s", error.Message, StringComparison.Ordinal);
        var warning = Assert.Single(logs.Entries, e => e.Level == LogLevel.Warning);
        Assert.False(warning.HasException);
        Assert.StartsWith("Push source door-1 still fails: ", warning.Message, StringComparison.Ordinal);
        Assert.Contains("failed starts since 2026-12-03 02:00:00Z, the last: IOException: GPIO line 17 of /dev/gpiochip0 is busy", warning.Message, StringComparison.Ordinal);
        Assert.All(logs.Entries.Where(e => e.Level == LogLevel.Debug), e => Assert.False(e.HasException));
        Assert.True(logs.Entries.Count(e => e.Level == LogLevel.Debug) >= 17);

        // The line is free again: the source runs, and after a minute of running that is said once.
        source.Failing = false;
        var starts = source.Starts;
        await AdvanceUntilAsync(clock, () => source.Starts > starts);
        await AdvanceUntilAsync(clock, () => logs.Entries.Any(e => e.Level == LogLevel.Information));
        var recovered = Assert.Single(logs.Entries, e => e.Level == LogLevel.Information);
        Assert.Matches("^Push source door-1 runs again after 2[1-4] failed starts since 2026-12-03 02:00:00Z$", recovered.Message);

        // The same fault later is a new outage: an Error with its trace again.
        source.Failing = true;
        source.Crash();
        await AdvanceUntilAsync(clock, () => logs.Entries.Count(e => e.Level == LogLevel.Error) == 2);
        Assert.True(logs.Entries.Last(e => e.Level == LogLevel.Error).HasException);

        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(30), Ct);
    }

    /// <summary>Moves the fake clock in small steps (the runner's timers are created on its own thread) until <paramref name="done"/>.</summary>
    private static async Task AdvanceUntilAsync(FakeTimeProvider clock, Func<bool> done)
    {
        for (var i = 0; i < 20_000 && !done(); i++)
        {
            clock.Advance(TimeSpan.FromSeconds(5));
            await Task.Delay(2, Ct);
        }

        Assert.True(done(), "the runner did not get there");
    }

    private sealed class FlakySource : IPushSource
    {
        private TaskCompletionSource _crash = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _starts;

        public volatile bool Failing = true;

        public string Name => "door-1";

        public int Starts => Volatile.Read(ref _starts);

        public void Crash() => _crash.TrySetException(new IOException("GPIO line 17 of /dev/gpiochip0 is busy"));

        public void RegisterSeries(SeriesRegistry registry)
        {
        }

        public async Task RunAsync(ISampleSink samples, IEventSink events, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _starts);
            if (Failing)
            {
                throw new IOException("GPIO line 17 of /dev/gpiochip0 is busy");
            }

            _crash = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            await _crash.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    private sealed class NullSink : ISampleSink, IEventSink
    {
        public ValueTask WriteAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask PublishAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken) => ValueTask.CompletedTask;
    }

    private sealed class RecordingLogger : ILogger
    {
        private readonly ConcurrentQueue<(LogLevel Level, string Message, bool HasException)> _entries = new();

        public IReadOnlyList<(LogLevel Level, string Message, bool HasException)> Entries => [.. _entries];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _entries.Enqueue((logLevel, formatter(state, exception), exception is not null));
    }
}
