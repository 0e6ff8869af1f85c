using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Core.Tests.Pipeline;

/// <summary>A stage that records what it saw and can be held shut to fill its queue.</summary>
internal sealed class RecordingStage(string name) : ISampleStage
{
    private readonly ConcurrentQueue<Sample[]> _batches = new();
    private volatile TaskCompletionSource _gate = Opened();

    public string Name { get; } = name;

    public Func<ReadOnlyMemory<Sample>, Exception?> Fail { get; set; } = _ => null;

    public IReadOnlyList<Sample[]> Batches => [.. _batches];

    public int Flushed { get; private set; }

    /// <summary>Signalled when a batch has entered <see cref="ProcessAsync"/>.</summary>
    public SemaphoreSlim Entered { get; } = new(0);

    public void Hold() => _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Open() => _gate.TrySetResult();

    public async ValueTask ProcessAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken)
    {
        Entered.Release();
        await _gate.Task.WaitAsync(cancellationToken);
        if (Fail(samples) is { } ex)
        {
            throw ex;
        }

        _batches.Enqueue(samples.ToArray());
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        Flushed++;
        return ValueTask.CompletedTask;
    }

    private static TaskCompletionSource Opened()
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        tcs.SetResult();
        return tcs;
    }
}

public sealed class SamplePipelineTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Sample[] Batch(int first, int count) =>
        [.. Enumerable.Range(first, count).Select(i => new Sample(new SeriesId(i), 1_700_000_000_000 + i, i * 0.5))];

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("timed out waiting for " + what);
            }

            await Task.Delay(5, Ct);
        }
    }

    [Fact]
    public async Task Every_stage_gets_every_batch_in_order_as_a_copy_of_the_callers_buffer()
    {
        var twin = new RecordingStage("twin");
        var alerting = new RecordingStage("alerting");
        await using var pipeline = new SamplePipeline().AddStage(twin).AddStage(alerting);
        pipeline.Start();

        var buffer = new Sample[3];
        for (var n = 0; n < 50; n++)
        {
            Batch(n * 3, 3).CopyTo(buffer, 0);
            await pipeline.WriteAsync(buffer, Ct);
            Array.Clear(buffer); // the caller reuses its buffer at once
        }

        await pipeline.CompleteAsync(Ct);

        foreach (var stage in new[] { twin, alerting })
        {
            Assert.Equal(50, stage.Batches.Count);
            for (var n = 0; n < 50; n++)
            {
                Assert.Equal(Batch(n * 3, 3), stage.Batches[n]);
            }

            Assert.Equal(1, stage.Flushed);
        }

        Assert.All(pipeline.Stats(), s => Assert.Equal((50L, 150L, 0L, 0L), (s.Batches, s.Samples, s.Dropped, s.Blocked)));
    }

    [Fact]
    public async Task A_full_wait_queue_holds_the_writer_back_and_counts_it_as_blocked()
    {
        var slow = new RecordingStage("summaries");
        var fast = new RecordingStage("twin");
        await using var pipeline = new SamplePipeline().AddStage(slow, new StageOptions(Capacity: 2)).AddStage(fast);
        pipeline.Start();
        slow.Hold();

        await pipeline.WriteAsync(Batch(0, 1), Ct);
        Assert.True(await slow.Entered.WaitAsync(TimeSpan.FromSeconds(20), Ct)); // batch 0 is in the stage, the queue is empty
        await pipeline.WriteAsync(Batch(1, 1), Ct);
        await pipeline.WriteAsync(Batch(2, 1), Ct);
        var blocked = pipeline.WriteAsync(Batch(3, 1), Ct).AsTask();

        await Task.Delay(200, Ct);
        Assert.False(blocked.IsCompleted);
        var stats = pipeline.Stats().Single(s => s.Name == "summaries");
        Assert.Equal((2, 1L, 0L), (stats.QueueDepth, stats.Blocked, stats.Dropped));

        slow.Open();
        await blocked.WaitAsync(TimeSpan.FromSeconds(20), Ct);
        await pipeline.CompleteAsync(Ct);
        Assert.Equal([0, 1, 2, 3], slow.Batches.Select(b => b[0].Series.Value));
        Assert.Equal(4, fast.Batches.Count);
    }

    [Fact]
    public async Task A_drop_oldest_queue_keeps_the_newest_batches_and_counts_the_dropped_ones()
    {
        var live = new RecordingStage("live-view");
        var before = SampleBatch.Outstanding;
        await using (var pipeline = new SamplePipeline().AddStage(live, new StageOptions(2, QueueFullMode.DropOldest)))
        {
            pipeline.Start();
            live.Hold();
            await pipeline.WriteAsync(Batch(0, 1), Ct);
            Assert.True(await live.Entered.WaitAsync(TimeSpan.FromSeconds(20), Ct));
            for (var i = 1; i <= 4; i++)
            {
                await pipeline.WriteAsync(Batch(i, 1), Ct); // never waits
            }

            var stats = pipeline.Stats()[0];
            Assert.Equal((2, 2L, 0L), (stats.QueueDepth, stats.Dropped, stats.Blocked));
            live.Open();
            await pipeline.CompleteAsync(Ct);
            Assert.Equal([0, 3, 4], live.Batches.Select(b => b[0].Series.Value));
        }

        Assert.Equal(before, SampleBatch.Outstanding);
    }

    [Fact]
    public async Task A_drop_newest_queue_drops_the_incoming_batch()
    {
        var live = new RecordingStage("live-view");
        await using var pipeline = new SamplePipeline().AddStage(live, new StageOptions(1, QueueFullMode.DropNewest));
        pipeline.Start();
        live.Hold();
        await pipeline.WriteAsync(Batch(0, 1), Ct);
        Assert.True(await live.Entered.WaitAsync(TimeSpan.FromSeconds(20), Ct));
        await pipeline.WriteAsync(Batch(1, 1), Ct);
        await pipeline.WriteAsync(Batch(2, 1), Ct);
        live.Open();
        await pipeline.CompleteAsync(Ct);

        Assert.Equal([0, 1], live.Batches.Select(b => b[0].Series.Value));
        Assert.Equal(1, pipeline.Stats()[0].Dropped);
    }

    [Fact]
    public async Task A_failing_stage_skips_that_batch_only_and_does_not_disturb_the_others()
    {
        var flaky = new RecordingStage("alerting") { Fail = s => s.Span[0].Series.Value == 1 ? new InvalidOperationException("rule crashed") : null };
        var twin = new RecordingStage("twin");
        await using var pipeline = new SamplePipeline().AddStage(flaky).AddStage(twin);
        pipeline.Start();
        for (var i = 0; i < 3; i++)
        {
            await pipeline.WriteAsync(Batch(i, 1), Ct);
        }

        await pipeline.CompleteAsync(Ct);

        Assert.Equal([0, 2], flaky.Batches.Select(b => b[0].Series.Value));
        Assert.Equal([0, 1, 2], twin.Batches.Select(b => b[0].Series.Value));
        Assert.Equal(1, pipeline.Stats()[0].Errors);
    }

    [Fact]
    public async Task Complete_drains_every_queued_batch_before_returning_and_refuses_later_writes()
    {
        var stage = new RecordingStage("summaries");
        var before = SampleBatch.Outstanding;
        await using var pipeline = new SamplePipeline().AddStage(stage, new StageOptions(1000));
        pipeline.Start();
        stage.Hold();
        for (var i = 0; i < 500; i++)
        {
            await pipeline.WriteAsync(Batch(i, 2), Ct);
        }

        var complete = pipeline.CompleteAsync(Ct);
        stage.Open();
        await complete.WaitAsync(TimeSpan.FromSeconds(20), Ct);

        Assert.Equal(500, stage.Batches.Count);
        Assert.Equal(before, SampleBatch.Outstanding);
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => pipeline.WriteAsync(Batch(0, 1), Ct).AsTask());
        Assert.Equal("The pipeline is shutting down and takes no more samples.", ex.Message);
    }

    [Fact]
    public async Task Complete_with_an_expired_deadline_abandons_what_is_queued_and_returns_the_batches()
    {
        var stage = new RecordingStage("summaries");
        var before = SampleBatch.Outstanding;
        await using var pipeline = new SamplePipeline().AddStage(stage, new StageOptions(100));
        pipeline.Start();
        stage.Hold();
        for (var i = 0; i < 10; i++)
        {
            await pipeline.WriteAsync(Batch(i, 1), Ct);
        }

        using var expired = new CancellationTokenSource();
        await expired.CancelAsync();
        await pipeline.CompleteAsync(expired.Token).WaitAsync(TimeSpan.FromSeconds(20), Ct);

        Assert.Empty(stage.Batches);
        Assert.Equal(before, SampleBatch.Outstanding);
    }

    [Fact]
    public async Task Queue_depth_and_counters_are_published_as_metrics()
    {
        using var metrics = new PipelineMetrics();
        var measurements = new ConcurrentDictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter == GetMeter(metrics))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => measurements.AddOrUpdate(Key(i, tags), v, (_, old) => old + v));
        listener.SetMeasurementEventCallback<int>((i, v, tags, _) => measurements[Key(i, tags)] = v);
        listener.Start();

        var stage = new RecordingStage("twin");
        await using var pipeline = new SamplePipeline(metrics).AddStage(stage, new StageOptions(1));
        pipeline.Start();
        stage.Hold();
        await pipeline.WriteAsync(Batch(0, 4), Ct);
        Assert.True(await stage.Entered.WaitAsync(TimeSpan.FromSeconds(20), Ct));
        await pipeline.WriteAsync(Batch(4, 4), Ct);
        listener.RecordObservableInstruments();
        Assert.Equal(1, measurements["edgetwin.pipeline.queue_depth/twin"]);

        var blocked = pipeline.WriteAsync(Batch(8, 4), Ct).AsTask();
        await WaitUntilAsync(() => measurements.ContainsKey("edgetwin.pipeline.blocked/twin"), "a blocked write");
        stage.Open();
        await blocked;
        await pipeline.CompleteAsync(Ct);

        Assert.Equal(12, measurements["edgetwin.pipeline.samples/"]);
        Assert.Equal(3, measurements["edgetwin.pipeline.batches/twin"]);
        Assert.Equal(1, measurements["edgetwin.pipeline.blocked/twin"]);

        static string Key(Instrument i, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var stage = "";
            foreach (var t in tags)
            {
                if (t.Key == "stage")
                {
                    stage = (string)t.Value!;
                }
            }

            return i.Name + "/" + stage;
        }

        static Meter GetMeter(PipelineMetrics m) => m.Batches.Meter;
    }

    [Fact]
    public async Task Events_reach_every_event_stage_in_order()
    {
        var a = new ConcurrentQueue<EdgeEvent>();
        var b = new ConcurrentQueue<EdgeEvent>();
        await using var hub = new EventHub()
            .AddStage(new DelegateEventStage("uplink", (e, _) => { a.Enqueue(e); return ValueTask.CompletedTask; }), capacity: 1)
            .AddStage(new DelegateEventStage("alerting", (e, _) => { b.Enqueue(e); return ValueTask.CompletedTask; }));
        hub.Start();
        var sent = Enumerable.Range(0, 20)
            .Select(i => new EdgeEvent(EdgeEventKind.DeviceDown, $"d{i}", DateTimeOffset.UnixEpoch.AddSeconds(i), EventSeverity.Warning, "down"))
            .ToArray();
        foreach (var e in sent)
        {
            await hub.PublishAsync(e, Ct);
        }

        await hub.CompleteAsync(Ct);

        Assert.Equal(sent, a);
        Assert.Equal(sent, b);
    }
}
