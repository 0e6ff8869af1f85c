using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using EdgeTwin.Core.Samples;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Core.Tests.Samples;

/// <summary>The per-device series cap: refused rows are counted and warned about, existing series are untouched.</summary>
public sealed class SeriesCapTests
{
    private readonly ConcurrentQueue<(LogLevel Level, string Message)> _logs = new();
    private readonly FakeTimeProvider _time = new();

    private SeriesRegistry NewRegistry() => new(new CapListLogger(_logs), timeProvider: _time);

    private static SeriesDescriptor Row(string device, int index) => new(device, "if_in_octets", "By/s", Tags: [new("if", index.ToString(System.Globalization.CultureInfo.InvariantCulture))]);

    private string[] Warnings() => [.. _logs.Where(l => l.Level == LogLevel.Warning).Select(l => l.Message)];

    [Fact]
    public void New_series_past_the_cap_are_refused_and_counted_while_known_ones_keep_their_ids()
    {
        var registry = NewRegistry();
        registry.LimitDevice("sw1", 3, "max_series of device 'sw1' in /etc/edgetwin/edgetwin.yaml");
        var accepted = Enumerable.Range(1, 3).Select(i => (registry.TryGetOrAdd(Row("sw1", i), out var id), id)).ToList();
        Assert.All(accepted, a => Assert.True(a.Item1));

        Assert.False(registry.TryGetOrAdd(Row("sw1", 4), out var refused));
        Assert.True(refused.IsNone);
        Assert.False(registry.TryGetOrAdd(Row("sw1", 5), out _));
        // Known series still resolve to the same id at the cap.
        Assert.True(registry.TryGetOrAdd(Row("sw1", 2), out var again));
        Assert.Equal(accepted[1].id, again);
        // Another device has its own budget (the default).
        Assert.True(registry.TryGetOrAdd(Row("sw2", 4), out _));

        var budget = registry.Budget("sw1");
        Assert.Equal((3, 3, 2L, true), (budget.Count, budget.MaxSeries, budget.Dropped, budget.AtCap));
        Assert.Equal(4, registry.Count);
        Assert.Equal(DeviceSeriesBudget.DefaultMaxSeries, registry.Budget("sw2").MaxSeries);
        Assert.False(registry.TryGet(Row("sw1", 4).Key, out _));
    }

    [Fact]
    public void A_refusal_the_source_already_knows_is_counted_and_warned_about_as_a_refusal_without_allocating()
    {
        var registry = NewRegistry();
        var budget = registry.LimitDevice("sw1", 1);
        Assert.True(registry.TryGetOrAdd(Row("sw1", 1), out _));
        var key = Row("sw1", 2).Key;
        Assert.False(registry.TryGetOrAdd(Row("sw1", 2), out _));
        registry.CountRefused(budget, key); // warm-up

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1_000; i++)
        {
            registry.CountRefused(budget, key);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);

        Assert.Equal(1_002, budget.Dropped);
        Assert.Single(Warnings());
        _time.Advance(SeriesRegistry.CapWarningInterval);
        registry.CountRefused(budget, key);
        Assert.Equal(2, Warnings().Length);
        Assert.Contains("A dropped series: sw1/if_in_octets{if=2}", Warnings()[1], StringComparison.Ordinal);
    }

    [Fact]
    public void Series_declared_up_front_count_towards_the_cap_but_are_never_refused()
    {
        var registry = NewRegistry();
        registry.LimitDevice("pdu1", 2);
        registry.GetOrAdd(new SeriesDescriptor("pdu1", "a", "1"));
        registry.GetOrAdd(new SeriesDescriptor("pdu1", "b", "1"));
        var third = registry.GetOrAdd(new SeriesDescriptor("pdu1", "c", "1"));
        Assert.False(third.IsNone);
        Assert.Equal(3, registry.Budget("pdu1").Count);
        Assert.False(registry.TryGetOrAdd(Row("pdu1", 1), out _));
        Assert.Equal(1, registry.Budget("pdu1").Dropped);
    }

    [Fact]
    public void The_warning_names_device_cap_key_and_an_example_and_repeats_at_most_hourly()
    {
        var registry = NewRegistry();
        registry.LimitDevice("sw1", 1, "max_series of device 'sw1' in /etc/edgetwin/edgetwin.yaml");
        Assert.True(registry.TryGetOrAdd(Row("sw1", 1), out _));
        for (var i = 2; i <= 50; i++)
        {
            Assert.False(registry.TryGetOrAdd(Row("sw1", i), out _));
        }

        var warning = Assert.Single(Warnings());
        Assert.Contains("Device sw1 reached its cap of 1 series", warning, StringComparison.Ordinal);
        Assert.Contains("raise max_series of device 'sw1' in /etc/edgetwin/edgetwin.yaml", warning, StringComparison.Ordinal);
        Assert.Contains("A dropped series: sw1/if_in_octets{if=2}", warning, StringComparison.Ordinal);

        _time.Advance(TimeSpan.FromMinutes(59));
        Assert.False(registry.TryGetOrAdd(Row("sw1", 51), out _));
        Assert.Single(Warnings());
        _time.Advance(TimeSpan.FromMinutes(2));
        Assert.False(registry.TryGetOrAdd(Row("sw1", 52), out _));
        Assert.Equal(2, Warnings().Length);
        Assert.Contains("(51 so far", Warnings()[1], StringComparison.Ordinal);
    }

    [Fact]
    public void Dropped_samples_and_series_per_device_are_published_as_metrics()
    {
        var registry = NewRegistry();
        registry.LimitDevice("metrics-dev", 2);
        long dropped = 0;
        var series = -1;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == SeriesRegistry.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) =>
        {
            if (i.Name == "edgetwin.series.dropped" && Device(tags) == "metrics-dev")
            {
                Interlocked.Add(ref dropped, v);
            }
        });
        listener.SetMeasurementEventCallback<int>((i, v, tags, _) =>
        {
            if (i.Name == "edgetwin.series" && Device(tags) == "metrics-dev")
            {
                series = v;
            }
        });
        listener.Start();

        for (var i = 0; i < 7; i++)
        {
            registry.TryGetOrAdd(Row("metrics-dev", i), out _);
        }

        listener.RecordObservableInstruments();
        Assert.Equal(5, Interlocked.Read(ref dropped));
        Assert.Equal(2, series);
    }

    [Fact]
    public void A_cap_below_one_is_rejected()
    {
        var registry = NewRegistry();
        Assert.Throws<ArgumentOutOfRangeException>(() => registry.LimitDevice("d", 0));
    }

    private static string? Device(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        foreach (var t in tags)
        {
            if (t.Key == "device")
            {
                return t.Value as string;
            }
        }

        return null;
    }

    private sealed class CapListLogger(ConcurrentQueue<(LogLevel Level, string Message)> logs) : ILogger<SeriesRegistry>
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            logs.Enqueue((logLevel, formatter(state, exception)));
    }
}
