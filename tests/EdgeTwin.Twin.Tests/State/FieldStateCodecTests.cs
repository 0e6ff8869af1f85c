using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using EdgeTwin.Twin.State;

namespace EdgeTwin.Twin.Tests.State;

/// <summary>The generic field codec behind the anomaly and line state files: fixed bytes both ways, checks, round trips.</summary>
public sealed class FieldStateCodecTests
{
    internal enum Mode : byte { Off, On, Blink }

    internal struct Counter
    {
        private readonly int _bits;

        public Counter(int bits) => _bits = bits;

        public long Last;
        public bool Seen;

        public readonly int Bits => _bits;
    }

    internal sealed class Part
    {
        public double Level = 0.5;
    }

    internal sealed class Sample
    {
        private readonly double _cycle;

        public Sample(double cycle, int slots)
        {
            _cycle = cycle;
            Slots = new int[slots];
        }

        public double Cycle => _cycle;

        public int[] Slots { get; }

        public Mode Mode;
        public Counter Good = new(16);
        public string? Name;
        public long[][] Windows = [new long[1]];
        public List<(double Start, double End)> Periods = [];
        public Part? Inner = new();
    }

    private static readonly FieldStateCodec Codec = new([typeof(Sample)]);

    private static byte[] Write(object o)
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms))
        {
            Codec.Write(w, o);
        }

        return ms.ToArray();
    }

    private static void Read(byte[] bytes, object target)
    {
        using var r = new BinaryReader(new MemoryStream(bytes));
        Codec.Read(r, target);
        Assert.Equal(bytes.Length, r.BaseStream.Position);
    }

    private static Sample Filled()
    {
        var s = new Sample(30, 2) { Mode = Mode.Blink, Name = "S1", Windows = [[1, 2], []], Periods = [(1.5, 2.5)] };
        s.Slots[0] = 7;
        s.Slots[1] = -1;
        s.Good.Last = 65_535;
        s.Good.Seen = true;
        s.Inner!.Level = 0.25;
        return s;
    }

    // Declaration order: _cycle, <Slots>k__BackingField, Mode, Good (_bits, Last, Seen), Name, Windows, Periods, Inner.
    private const string FilledHex =
        "000000000000 3E40" +                            // _cycle 30.0
        "02000000 07000000 FFFFFFFF" +                   // Slots: length 2, 7, -1
        "02" +                                           // Mode Blink
        "10000000 FFFF000000000000 01" +                 // Good: _bits 16, Last 65535, Seen
        "01 02 5331" +                                   // Name present, length 2, "S1"
        "02000000 02000000 0100000000000000 0200000000000000 00000000" + // Windows: 2 arrays, [1, 2] and []
        "01000000 000000000000F83F 0000000000000440" +   // Periods: 1 item (1.5, 2.5)
        "01 000000000000D03F";                           // Inner present, Level 0.25

    private static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal));

    [Fact]
    public void Writes_the_fixed_bytes_of_a_known_object()
    {
        Assert.Equal(Convert.ToHexString(Hex(FilledHex)), Convert.ToHexString(Write(Filled())));
        Assert.Equal(Hex(FilledHex).Length, Codec.Size(Filled()));
    }

    [Fact]
    public void Reads_the_fixed_bytes_into_an_object_built_from_the_same_configuration()
    {
        var s = new Sample(30, 2);
        Read(Hex(FilledHex), s);
        Assert.Equal(Mode.Blink, s.Mode);
        Assert.Equal([7, -1], s.Slots);
        Assert.Equal(65_535, s.Good.Last);
        Assert.True(s.Good.Seen);
        Assert.Equal(16, s.Good.Bits);
        Assert.Equal("S1", s.Name);
        Assert.Equal([1L, 2L], s.Windows[0]); // an inner array of another length is replaced
        Assert.Empty(s.Windows[1]);
        Assert.Equal([(1.5, 2.5)], s.Periods);
        Assert.Equal(0.25, s.Inner!.Level);
    }

    [Fact]
    public void State_learned_under_another_configuration_is_refused_naming_the_field()
    {
        var bytes = Write(Filled());
        Assert.Equal("Sample._cycle: saved 30, the configuration now gives 32", Assert.Throws<InvalidDataException>(() => Read(bytes, new Sample(32, 2))).Message);
        Assert.Equal("Sample.<Slots>k__BackingField: saved 2 elements, the configuration now gives 3", Assert.Throws<InvalidDataException>(() => Read(bytes, new Sample(30, 3))).Message);
        var withoutInner = new Sample(30, 2) { Inner = null };
        Assert.Contains("Sample.Inner: saved with it, the configuration now does not use it", Assert.Throws<InvalidDataException>(() => Read(bytes, withoutInner)).Message, StringComparison.Ordinal);
        Assert.Throws<EndOfStreamException>(() => Read(bytes[..^4], new Sample(30, 2)));
    }

    private sealed class WithDictionary
    {
        public Dictionary<string, double> Learned = [];
    }

    [Fact]
    public void A_field_of_a_type_it_cannot_save_fails_at_construction_naming_it()
    {
        var ex = Assert.Throws<NotSupportedException>(() => new FieldStateCodec([typeof(WithDictionary)]));
        Assert.StartsWith("WithDictionary.Learned is a Dictionary`2, which FieldStateCodec cannot save", ex.Message, StringComparison.Ordinal);
        // Not state: skipped on request, and the layout says which fields are saved.
        var skipping = new FieldStateCodec([typeof(WithDictionary)], skip: f => f.Name == "Learned");
        Assert.NotEqual(Codec.LayoutFingerprint.ToArray(), skipping.LayoutFingerprint.ToArray());
    }

    [Property(MaxTest = 200)]
    public Property Any_state_reads_back_to_the_same_bytes(int seed, NonNegativeInt slots, NonNegativeInt windows)
    {
        var rng = new Random(seed);
        var s = new Sample(30, slots.Get % 50)
        {
            Mode = (Mode)rng.Next(3),
            Name = rng.Next(3) == 0 ? null : new string((char)rng.Next(32, 0x3000), rng.Next(20)),
            Windows = [.. Enumerable.Range(0, windows.Get % 5).Select(_ => Enumerable.Range(0, rng.Next(10)).Select(_ => rng.NextInt64()).ToArray())],
            Periods = [.. Enumerable.Range(0, rng.Next(6)).Select(_ => (rng.NextDouble(), rng.NextDouble() * 1e9))],
            Inner = new Part { Level = rng.NextDouble() },
        };
        s.Good.Last = rng.NextInt64();
        s.Good.Seen = rng.Next(2) == 1;
        for (var i = 0; i < s.Slots.Length; i++)
        {
            s.Slots[i] = rng.Next();
        }

        var bytes = Write(s);
        var back = new Sample(30, s.Slots.Length);
        Read(bytes, back);
        return (bytes.SequenceEqual(Write(back)) && Codec.Size(s) == bytes.Length).ToProperty();
    }
}
