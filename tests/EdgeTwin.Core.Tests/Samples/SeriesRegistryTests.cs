using System.Runtime.CompilerServices;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Core.Tests.Samples;

public sealed class SeriesRegistryTests
{
    [Fact]
    public void Same_key_interns_to_the_same_id_and_ids_are_dense()
    {
        var registry = new SeriesRegistry();
        var a = registry.GetOrAdd(new SeriesDescriptor("pdu-1", "outlet_current", "A", Tags: [new("outlet", "7")]));
        var b = registry.GetOrAdd(new SeriesDescriptor("pdu-1", "outlet_current", "A", Tags: [new("outlet", "8")]));
        var again = registry.GetOrAdd(new SeriesDescriptor("pdu-1", "outlet_current", "A", Tags: [new("outlet", "7")]));

        Assert.Equal(0, a.Value);
        Assert.Equal(1, b.Value);
        Assert.Equal(a, again);
        Assert.Equal("pdu-1/outlet_current{outlet=7}", registry[a].Key);
        Assert.Equal(2, registry.Count);
    }

    [Fact]
    public void Tag_order_does_not_change_identity()
    {
        var registry = new SeriesRegistry();
        var a = registry.GetOrAdd(new SeriesDescriptor("d", "m", "1", Tags: [new("x", "1"), new("y", "2")]));
        var b = registry.GetOrAdd(new SeriesDescriptor("d", "m", "1", Tags: [new("y", "2"), new("x", "1")]));
        Assert.Equal(a, b);
    }

    [Fact]
    public void Concurrent_registration_issues_each_key_exactly_once()
    {
        var registry = new SeriesRegistry();
        var added = 0;
        registry.SeriesAdded += (_, _) => Interlocked.Increment(ref added);

        Parallel.For(0, 8, _ =>
        {
            for (var i = 0; i < 1000; i++)
            {
                registry.GetOrAdd(new SeriesDescriptor($"dev-{i % 250}", "temp", "Cel"));
            }
        });

        Assert.Equal(250, registry.Count);
        Assert.Equal(250, added);
        var keys = registry.Snapshot().Select(s => s.Descriptor.Key).ToHashSet();
        Assert.Equal(250, keys.Count);
    }

    [Fact]
    public void Unknown_id_is_rejected()
    {
        var registry = new SeriesRegistry();
        Assert.Throws<ArgumentOutOfRangeException>(() => registry[new SeriesId(3)]);
    }

    [Fact]
    public void Sample_is_a_small_reference_free_struct()
    {
        Assert.Equal(24, Unsafe.SizeOf<Sample>());
        Assert.False(RuntimeHelpers.IsReferenceOrContainsReferences<Sample>());
    }
}
