using EdgeTwin.Twin.State;

namespace EdgeTwin.Twin.Tests.State;

/// <summary>
/// Layout evolution: a state written by a build whose types had other fields is read by matching fields, not thrown away.
/// Two builds are two versions of the types (V1, V2) named alike in the description through the codec's type-name hook,
/// as the same type of two agent builds is.
/// </summary>
public sealed class FieldStateCodecEvolutionTests
{
    internal static class V1
    {
        internal struct Window
        {
            public long Start;
            public int Count;
        }

        internal sealed class Inner
        {
            public double Level = 0.5;
        }

        internal sealed class Detector
        {
            private readonly double _alpha;

            public Detector(double alpha) => _alpha = alpha;

            public double Alpha => _alpha;

            public long Seen;
            public double Dropped;
            public int[] DroppedArray = [];
            public string? DroppedName;
            public Window DroppedWindow;
            public List<Window> DroppedList = [];
            public Inner? DroppedInner = new();
            public long[][] DroppedJagged = [];
            public int Changed;
            public Window Kept;
            public Inner? KeptInner = new();
            public double Last;
        }
    }

    internal static class V2
    {
        internal struct Window
        {
            public long Start;
            public long Added;
            public int Count;
        }

        internal sealed class Inner
        {
            public double Level = 0.5;
        }

        internal sealed class Detector
        {
            private readonly double _alpha;

            public Detector(double alpha) => _alpha = alpha;

            public double Alpha => _alpha;

            public long Added = 42;
            public Window Kept;
            public long Seen;
            public long Changed = -1;
            public Inner? KeptInner = new();
            public double Last;
        }
    }

    // Both builds call their types by one name, as two builds of the agent do.
    private static string Alike(Type t) => t.FullName!.Replace("+V1+", "+", StringComparison.Ordinal).Replace("+V2+", "+", StringComparison.Ordinal);

    private static readonly FieldStateCodec Old = new([typeof(V1.Detector)], typeName: Alike);
    private static readonly FieldStateCodec New = new([typeof(V2.Detector)], typeName: Alike);

    private static V1.Detector Learned(double alpha = 0.1) => new(alpha)
    {
        Seen = 1234,
        Dropped = 2.5,
        DroppedArray = [1, 2, 3],
        DroppedName = "ringing",
        DroppedWindow = new V1.Window { Start = 9, Count = 2 },
        DroppedList = [new V1.Window { Start = 1, Count = 1 }, new V1.Window { Start = 2, Count = 2 }],
        DroppedInner = new V1.Inner { Level = 0.75 },
        DroppedJagged = [[1, 2], [], [3]],
        Changed = 7,
        Kept = new V1.Window { Start = 1_700_000_000_000, Count = 60 },
        KeptInner = new V1.Inner { Level = 0.125 },
        Last = 21.5,
    };

    private static byte[] Write(FieldStateCodec codec, object o)
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms))
        {
            codec.Write(w, o);
        }

        return ms.ToArray();
    }

    private static void ReadNew(byte[] bytes, object target, FieldStateCodec.SavedLayout? writer)
    {
        using var r = new BinaryReader(new MemoryStream(bytes));
        New.Read(r, target, writer);
        Assert.Equal(bytes.Length, r.BaseStream.Position);
    }

    [Fact]
    public void Fields_the_writer_had_and_this_build_lacks_are_skipped_and_new_fields_keep_their_constructed_values()
    {
        var bytes = Write(Old, Learned());
        var writer = FieldStateCodec.SavedLayout.Parse(Old.Description);
        var d = new V2.Detector(0.1);
        ReadNew(bytes, d, writer);

        Assert.Equal(1234, d.Seen);
        Assert.Equal(21.5, d.Last);
        Assert.Equal(1_700_000_000_000, d.Kept.Start);
        Assert.Equal(60, d.Kept.Count);
        Assert.Equal(0, d.Kept.Added); // new in a nested struct: what the struct held
        Assert.Equal(0.125, d.KeptInner!.Level);
        Assert.Equal(42, d.Added); // new: the constructor's value
        Assert.Equal(-1, d.Changed); // int then, long now: not read, the constructor's value
    }

    [Fact]
    public void The_differences_name_each_types_new_dropped_and_changed_fields()
    {
        var writer = FieldStateCodec.SavedLayout.Parse(Old.Description);
        Assert.Equal(
            ["Detector: new Added; dropped Dropped, DroppedArray, DroppedName, DroppedWindow, DroppedList, DroppedInner, DroppedJagged; changed type Changed", "Window: new Added"],
            New.Differences(writer).Order(StringComparer.Ordinal));
        Assert.False(New.SameLayout(writer, typeof(V2.Detector)));
        Assert.True(New.SameLayout(writer, typeof(V2.Inner)));
        Assert.Empty(New.Differences(FieldStateCodec.SavedLayout.Parse(New.Description)));
    }

    [Fact]
    public void A_state_read_by_its_own_description_reads_as_by_the_fingerprint()
    {
        var v2 = new V2.Detector(0.1) { Added = 5, Seen = 6, Changed = 7, Last = 8, Kept = new V2.Window { Start = 1, Added = 2, Count = 3 } };
        var bytes = Write(New, v2);
        var back = new V2.Detector(0.1);
        ReadNew(bytes, back, FieldStateCodec.SavedLayout.Parse(New.Description));
        Assert.Equal(bytes, Write(New, back));
    }

    [Fact]
    public void State_learned_under_another_configuration_is_still_refused()
    {
        var bytes = Write(Old, Learned(alpha: 0.1));
        var writer = FieldStateCodec.SavedLayout.Parse(Old.Description);
        var ex = Assert.Throws<InvalidDataException>(() => ReadNew(bytes, new V2.Detector(0.2), writer));
        Assert.Equal("Detector._alpha: saved 0.1, the configuration now gives 0.2", ex.Message);
    }

    [Fact]
    public void A_truncated_state_is_still_refused_also_inside_a_skipped_field()
    {
        var bytes = Write(Old, Learned());
        var writer = FieldStateCodec.SavedLayout.Parse(Old.Description);
        Assert.Throws<EndOfStreamException>(() => ReadNew(bytes[..^3], new V2.Detector(0.1), writer));
        // Cut inside the dropped array (after _alpha, Seen, Dropped and the array's length): the skip runs out of bytes.
        var cut = bytes[..(8 + 8 + 8 + 4 + 2)];
        var ex = Record.Exception(() => ReadNew(cut, new V2.Detector(0.1), writer));
        Assert.True(ex is InvalidDataException or EndOfStreamException, ex?.ToString() ?? "no exception");
    }

    [Fact]
    public void A_damaged_description_is_refused_not_guessed_at()
    {
        var description = Old.Description.ToArray();
        Assert.Throws<InvalidDataException>(() => FieldStateCodec.SavedLayout.Parse(description.AsSpan(0, description.Length - 5)));
        Assert.Throws<InvalidDataException>(() => FieldStateCodec.SavedLayout.Parse([.. description, 0]));
        Assert.Throws<InvalidDataException>(() => FieldStateCodec.SavedLayout.Parse([0xFF, 0xFF, 0xFF, 0x7F]));
    }
}
