using System.Diagnostics.Metrics;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Core.Tests.Samples;

/// <summary>Retiring the series of a row that left its device: the cap slot comes back, the id is never handed out again.</summary>
public sealed class SeriesRetirementTests
{
    private static SeriesDescriptor Row(string device, int index) => new(device, "if_in_octets", "By/s", Tags: [new("if", index.ToString(System.Globalization.CultureInfo.InvariantCulture))]);

    [Fact]
    public void Regression_a_churning_table_stopped_at_max_series_until_a_restart_because_vanished_rows_kept_their_slots()
    {
        var registry = new SeriesRegistry();
        registry.LimitDevice("sw1", 2);
        Assert.True(registry.TryGetOrAdd(Row("sw1", 1), out var first));
        Assert.True(registry.TryGetOrAdd(Row("sw1", 2), out _));
        Assert.False(registry.TryGetOrAdd(Row("sw1", 3), out _));

        Assert.True(registry.Retire(first));

        Assert.True(registry.TryGetOrAdd(Row("sw1", 3), out var third));
        var budget = registry.Budget("sw1");
        Assert.Equal((2, 1L, 1L), (budget.Count, budget.Retired, budget.Dropped));
        Assert.NotEqual(first, third);
    }

    [Fact]
    public void A_retired_id_is_never_handed_out_again_and_its_key_comes_back_as_a_new_series()
    {
        var registry = new SeriesRegistry();
        var id = registry.GetOrAdd(Row("sw1", 7));
        Assert.True(registry.Retire(id));
        Assert.True(registry.IsRetired(id));
        Assert.False(registry.TryGet(Row("sw1", 7).Key, out _));

        var back = registry.GetOrAdd(Row("sw1", 7));
        Assert.NotEqual(id, back);
        Assert.False(registry.IsRetired(back));
        // The old id still names its series: a sample of it still queued in a stage can be described.
        Assert.Equal(Row("sw1", 7).Key, registry[id].Key);
        Assert.Equal(2, registry.Count);
        Assert.Equal(1, registry.Budget("sw1").Count);
    }

    [Fact]
    public void Retiring_twice_or_an_unknown_id_does_nothing()
    {
        var registry = new SeriesRegistry();
        var id = registry.GetOrAdd(Row("d", 1));
        Assert.True(registry.Retire(id));
        Assert.False(registry.Retire(id));
        Assert.False(registry.Retire(new SeriesId(5)));
        Assert.False(registry.Retire(SeriesId.None));
        Assert.Equal((0, 1L), (registry.Budget("d").Count, registry.Budget("d").Retired));
        Assert.Equal(1, registry.RetiredCount);
    }

    [Fact]
    public void The_snapshot_lists_live_series_only()
    {
        var registry = new SeriesRegistry();
        var ids = Enumerable.Range(0, 4).Select(i => registry.GetOrAdd(Row("d", i))).ToArray();
        registry.Retire(ids[1]);
        registry.Retire(ids[3]);
        Assert.Equal([ids[0], ids[2]], registry.Snapshot().Select(s => s.Id));
    }

    [Fact]
    public void Each_cursor_reads_every_retirement_once_in_order()
    {
        var registry = new SeriesRegistry();
        // Past the registry's first array sizes, so that growing them loses no retirement.
        var ids = Enumerable.Range(0, 200).Select(i => registry.GetOrAdd(Row("d", i))).ToArray();
        var a = default(RetiredSeriesCursor);
        var b = default(RetiredSeriesCursor);
        Assert.False(a.TryNext(registry, out _));

        for (var i = 0; i < 200; i += 3)
        {
            registry.Retire(ids[i]);
        }

        var readByA = new List<SeriesId>();
        while (a.TryNext(registry, out var id))
        {
            readByA.Add(id);
        }

        registry.Retire(ids[1]);
        while (a.TryNext(registry, out var id))
        {
            readByA.Add(id);
        }

        var readByB = new List<SeriesId>();
        while (b.TryNext(registry, out var id))
        {
            readByB.Add(id);
        }

        SeriesId[] expected = [.. Enumerable.Range(0, 200).Where(i => i % 3 == 0).Select(i => ids[i]), ids[1]];
        Assert.Equal(expected, readByA);
        Assert.Equal(expected, readByB);
        Assert.All(expected, id => Assert.True(registry.IsRetired(id)));
    }

    [Fact]
    public void Retirements_are_counted_by_device_and_raise_an_event()
    {
        var registry = new SeriesRegistry();
        var retired = new List<string>();
        registry.SeriesRetired += (_, d) => retired.Add(d.Key);
        long counted = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == SeriesRegistry.MeterName && instrument.Name == "edgetwin.series.retired")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, v, tags, _) =>
        {
            foreach (var t in tags)
            {
                if (t.Key == "device" && (string?)t.Value == "retire-metrics")
                {
                    Interlocked.Add(ref counted, v);
                }
            }
        });
        listener.Start();

        var id = registry.GetOrAdd(Row("retire-metrics", 1));
        registry.Retire(id);
        registry.Retire(id);

        Assert.Equal(1, Interlocked.Read(ref counted));
        Assert.Equal(["retire-metrics/if_in_octets{if=1}"], retired);
    }
}
