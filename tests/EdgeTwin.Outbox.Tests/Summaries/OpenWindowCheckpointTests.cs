using EdgeTwin.Core.Samples;
using EdgeTwin.Outbox.Summaries;
using FsCheck;
using FsCheck.Fluent;

namespace EdgeTwin.Outbox.Tests.Summaries;

/// <summary>The byte layout of the open-window checkpoint blobs: fixed captures both ways, damage, round trips.</summary>
public sealed class OpenWindowCheckpointTests
{
    private const long T0 = 1_764_500_040_000;

    // Written by struct.pack in Python from the layout in OpenWindowCheckpoint's comments, not by this code.
    private const string WindowsCapture =
        "45545357494E320A705E66D49A0100000001000000030000000140E965D49A010000A0D366D49A01000002000000000000000100000000000000"
        + "28ED65D49A010000483B66D49A010000000000000000F83F00000000000004400000000000000040000000000000E03F0000000000000440";

    private const string ClosedCapture = "455453434C53310A705E66D49A0100000200000008000000000000800200000000000000";

    private const string CatalogCapture =
        "455453434154310A02000000057064752D310E6F75746C65745F63757272656E7401410001127064752E6F75746C65745F63757272656E74"
        + "01000000066F75746C65740137087261636B2D61303111696E6C65745F74656D70657261747572650343656C00000000000000";

    private static OpenWindow CapturedWindow()
    {
        var window = default(WindowAccumulator);
        window.Reset(T0, T0 + 60_000);
        window.Add(1.5, T0 + 1_000, good: true);
        window.Add(double.NaN, T0 + 21_000, good: false);
        window.Add(2.5, T0 + 21_000, good: true); // last timestamp T0 + 21 s
        return new OpenWindow(new SeriesId(3), Partial: true, window);
    }

    [Fact]
    public void Windows_blob_equals_the_fixed_capture_both_ways()
    {
        var open = CapturedWindow();
        Assert.Equal(0.5, open.Window.M2);

        var blob = OpenWindowCheckpoint.EncodeWindows(T0 + 30_000, clean: false, [open]);
        Assert.Equal(WindowsCapture, Convert.ToHexString(blob));

        var saved = OpenWindowCheckpoint.DecodeWindows(Convert.FromHexString(WindowsCapture));
        Assert.Equal(T0 + 30_000, saved.SavedAtMs);
        Assert.False(saved.Clean);
        var back = Assert.Single(saved.Windows);
        Assert.Equal(3, back.Series.Value);
        Assert.True(back.Partial);
        var w = back.Window;
        Assert.Equal((T0, T0 + 60_000, 2L, 1L, T0 + 1_000, T0 + 21_000), (w.StartMs, w.EndMs, w.Count, w.Bad, w.FirstTimestampMs, w.LastTimestampMs));
        Assert.Equal((1.5, 2.5, 2.0, 0.5, 2.5), (w.Min, w.Max, w.Mean, w.StdDev, w.Last));
    }

    /// <summary>
    /// 1,961 series polled every 10 s (the soak audit's 53-device site), 40 s into their 60 s windows: readings of one
    /// decimal around a level per series, as PDUs, UPSs and cooling units report them.
    /// </summary>
    private static List<OpenWindow> SoakSiteWindows()
    {
        var random = new Random(53);
        var windows = new List<OpenWindow>(1961);
        for (var id = 0; id < 1961; id++)
        {
            var level = Math.Round(random.NextDouble() * 400, 1);
            var steady = id % 3 == 0; // states, counters between polls, set points
            var window = default(WindowAccumulator);
            window.Reset(T0, T0 + 60_000);
            for (var poll = 0; poll < 4; poll++)
            {
                var value = steady ? level : Math.Round(level + ((random.NextDouble() - 0.5) * 2), 1);
                window.Add(value, T0 + 1_000 + (id % 400) + (poll * 10_000), good: true);
            }

            windows.Add(new OpenWindow(new SeriesId(id), Partial: false, window));
        }

        return windows;
    }

    /// <summary>
    /// Soak audit: the open-window checkpoint, 93 bytes per series every checkpoint_interval (182 KB every 10 s on the
    /// 53-device site, 22 LiteDB pages in the journal and again in the data file), was the largest part of the outbox's
    /// steady writes. Now it is stored compressed and decodes to exactly the same windows.
    /// </summary>
    [Fact]
    public void Regression_the_open_window_checkpoint_wrote_93_bytes_per_series_every_10_s_wearing_the_flash()
    {
        var windows = SoakSiteWindows();
        var plain = OpenWindowCheckpoint.EncodeWindows(T0 + 40_000, clean: false, windows);
        var stored = OpenWindowCheckpoint.EncodeWindowsCompressed(T0 + 40_000, clean: false, windows);
        Assert.Equal(8 + 13 + (1961 * 93), plain.Length);
        Assert.True(stored.Length * 2 < plain.Length, $"{stored.Length} bytes stored for {plain.Length} plain");
        TestContext.Current.TestOutputHelper?.WriteLine($"{stored.Length} bytes stored for {plain.Length} plain");

        var back = OpenWindowCheckpoint.DecodeWindows(stored);
        Assert.Equal(T0 + 40_000, back.SavedAtMs);
        Assert.False(back.Clean);
        Assert.Equal(plain, OpenWindowCheckpoint.EncodeWindows(back.SavedAtMs, back.Clean, back.Windows)); // bit for bit
    }

    [Fact]
    public void A_damaged_compressed_windows_blob_is_refused_naming_it()
    {
        var stored = OpenWindowCheckpoint.EncodeWindowsCompressed(T0, clean: false, SoakSiteWindows());
        var cut = stored[..(stored.Length / 2)];
        Assert.Contains("summaries.open_windows", Assert.Throws<InvalidDataException>(() => OpenWindowCheckpoint.DecodeWindows(cut)).Message);

        var huge = (byte[])stored.Clone();
        huge[8] = 0xFF;
        huge[11] = 0x7F; // a length of 2 GB
        Assert.Contains("says it holds", Assert.Throws<InvalidDataException>(() => OpenWindowCheckpoint.DecodeWindows(huge)).Message);
    }

    [Fact]
    public void A_stored_windows_blob_is_never_larger_than_the_plain_one_and_reads_back()
    {
        foreach (var windows in new[] { [], [CapturedWindow()], SoakSiteWindows() })
        {
            var plain = OpenWindowCheckpoint.EncodeWindows(T0 + 30_000, clean: windows.Count == 0, windows);
            var stored = OpenWindowCheckpoint.EncodeWindowsCompressed(T0 + 30_000, clean: windows.Count == 0, windows);
            Assert.True(stored.Length <= plain.Length);
            var back = OpenWindowCheckpoint.DecodeWindows(stored);
            Assert.Equal(plain, OpenWindowCheckpoint.EncodeWindows(back.SavedAtMs, back.Clean, back.Windows));
        }
    }

    [Fact]
    public void Closed_blob_equals_the_fixed_capture_both_ways()
    {
        ulong[] bits = [(1UL << 3) | (1UL << 63), 1UL << 1];
        Assert.Equal(ClosedCapture, Convert.ToHexString(OpenWindowCheckpoint.EncodeClosed(T0 + 30_000, bits)));

        var (checkpoint, back) = OpenWindowCheckpoint.DecodeClosed(Convert.FromHexString(ClosedCapture));
        Assert.Equal(T0 + 30_000, checkpoint);
        Assert.Equal(bits, back);
        Assert.True(OpenWindowCheckpoint.IsSet(back, 3));
        Assert.True(OpenWindowCheckpoint.IsSet(back, 63));
        Assert.True(OpenWindowCheckpoint.IsSet(back, 65));
        Assert.False(OpenWindowCheckpoint.IsSet(back, 64));
        Assert.False(OpenWindowCheckpoint.IsSet(back, 500)); // beyond the words: a series that never closed one
    }

    [Fact]
    public void Catalog_equals_the_fixed_capture_both_ways()
    {
        var registry = new SeriesRegistry();
        var outlet = new SeriesDescriptor("pdu-1", "outlet_current", "A", MetricKind.Gauge, "pdu.outlet_current", [new("outlet", "7")]);
        var inlet = new SeriesDescriptor("rack-a01", "inlet_temperature", "Cel");
        registry.GetOrAdd(outlet);
        registry.GetOrAdd(inlet);

        Assert.Equal(CatalogCapture, Convert.ToHexString(OpenWindowCheckpoint.EncodeCatalog(registry, 2)));

        var back = OpenWindowCheckpoint.DecodeCatalog(Convert.FromHexString(CatalogCapture));
        Assert.Equal(2, back.Count);
        Assert.Equal(outlet.Key, back[0].Key);
        Assert.Equal("pdu.outlet_current", back[0].Role);
        Assert.Equal("A", back[0].Unit);
        Assert.Equal(inlet.Key, back[1].Key);
        Assert.Null(back[1].Role);
        Assert.Null(back[1].Tags);
    }

    [Theory]
    [InlineData(OpenWindowCheckpoint.WindowsBlob, 0, "not an open-window checkpoint")] // empty
    [InlineData(OpenWindowCheckpoint.WindowsBlob, 40, "says 1 windows but holds")] // cut inside the window
    [InlineData(OpenWindowCheckpoint.ClosedBlob, 20, "says 2 words but holds")]
    [InlineData(OpenWindowCheckpoint.CatalogBlob, 30, "cut short or damaged")]
    public void A_damaged_blob_is_refused_naming_it(string name, int keepBytes, string expected)
    {
        var whole = Convert.FromHexString(name switch
        {
            OpenWindowCheckpoint.WindowsBlob => WindowsCapture,
            OpenWindowCheckpoint.ClosedBlob => ClosedCapture,
            _ => CatalogCapture,
        });
        var cut = whole[..keepBytes];
        var ex = Assert.Throws<InvalidDataException>(() => _ = name switch
        {
            OpenWindowCheckpoint.WindowsBlob => (object)OpenWindowCheckpoint.DecodeWindows(cut),
            OpenWindowCheckpoint.ClosedBlob => OpenWindowCheckpoint.DecodeClosed(cut),
            _ => OpenWindowCheckpoint.DecodeCatalog(cut),
        });
        Assert.Contains(name, ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_blob_of_another_kind_is_refused()
    {
        var ex = Assert.Throws<InvalidDataException>(() => OpenWindowCheckpoint.DecodeWindows(Convert.FromHexString(ClosedCapture)));
        Assert.Contains("not an open-window checkpoint of this build", ex.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidDataException>(() => OpenWindowCheckpoint.DecodeCatalog(Convert.FromHexString(WindowsCapture)));
    }

    [Fact]
    public void A_catalog_with_an_impossible_count_does_not_allocate_it()
    {
        var blob = Convert.FromHexString(CatalogCapture);
        BitConverter.TryWriteBytes(blob.AsSpan(8), int.MaxValue);
        var ex = Assert.Throws<InvalidDataException>(() => OpenWindowCheckpoint.DecodeCatalog(blob));
        Assert.Contains("impossible count", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Windows_round_trip_bit_for_bit()
    {
        var value = Gen.Choose(-1_000_000, 1_000_000).Select(i => i / 13.0);
        var window = Gen.Zip(Gen.Zip(Gen.Choose(0, 5_000), Gen.Elements(true, false)), Gen.Zip(value.ListOf(), Gen.Choose(0, 3))).Select(t =>
        {
            var ((id, partial), (values, bad)) = t;
            var acc = default(WindowAccumulator);
            acc.Reset(T0, T0 + 60_000);
            for (var i = 0; i < values.Count; i++)
            {
                acc.Add(values[i], T0 + i, good: true);
            }

            for (var i = 0; i < bad; i++)
            {
                acc.Add(0, T0 + values.Count + i, good: false);
            }

            return new OpenWindow(new SeriesId(id), partial, acc);
        });

        Prop.ForAll(
            Gen.Zip(window.ListOf(), Gen.Elements(true, false)).ToArbitrary(),
            ((List<OpenWindow> Windows, bool Clean) c) =>
            {
                var saved = OpenWindowCheckpoint.DecodeWindows(OpenWindowCheckpoint.EncodeWindows(T0 + 7, c.Clean, c.Windows));
                return saved.SavedAtMs == T0 + 7
                    && saved.Clean == c.Clean
                    && saved.Windows.Count == c.Windows.Count
                    && saved.Windows.Zip(c.Windows).All(p => p.First.Series == p.Second.Series
                        && p.First.Partial == p.Second.Partial
                        && Same(p.First.Window, p.Second.Window));
            }).QuickCheckThrowOnFailure();
    }

    private static bool Same(WindowAccumulator a, WindowAccumulator b) =>
        a.StartMs == b.StartMs && a.EndMs == b.EndMs && a.Count == b.Count && a.Bad == b.Bad
        && a.FirstTimestampMs == b.FirstTimestampMs && a.LastTimestampMs == b.LastTimestampMs
        && BitConverter.DoubleToInt64Bits(a.Min) == BitConverter.DoubleToInt64Bits(b.Min)
        && BitConverter.DoubleToInt64Bits(a.Max) == BitConverter.DoubleToInt64Bits(b.Max)
        && BitConverter.DoubleToInt64Bits(a.Mean) == BitConverter.DoubleToInt64Bits(b.Mean)
        && BitConverter.DoubleToInt64Bits(a.M2) == BitConverter.DoubleToInt64Bits(b.M2)
        && BitConverter.DoubleToInt64Bits(a.Last) == BitConverter.DoubleToInt64Bits(b.Last);

    [Fact]
    public void Regression_a_negative_string_length_in_the_catalog_escaped_as_a_bare_IOException()
    {
        // Found by fuzzing: one descriptor whose device name's 7-bit length prefix decodes to -1. BinaryReader.ReadString
        // throws a bare IOException there, which Read did not turn into the documented InvalidDataException.
        byte[] blob = [.. "ETSCAT1\n"u8, 0x01, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F];

        var ex = Assert.Throws<InvalidDataException>(() => OpenWindowCheckpoint.DecodeCatalog(blob));

        Assert.Contains("'summaries.catalog' is cut short or damaged", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Mutated_checkpoint_blobs_only_throw_the_documented_exception()
    {
        // The blobs the outbox keeps across a restart (a damaged disk hands them back): catalog, open windows (plain and
        // Brotli, whose claimed length is bounded before allocating), closed set. Only InvalidDataException may escape.
        var windows = Enumerable.Range(0, 40).Select(i => CapturedWindow() with { Series = new SeriesId(i) }).ToArray();
        byte[][] seeds =
        [
            Convert.FromHexString(CatalogCapture), Convert.FromHexString(WindowsCapture), Convert.FromHexString(ClosedCapture),
            OpenWindowCheckpoint.EncodeWindowsCompressed(T0, clean: true, windows),
        ];
        var report = EdgeTwin.Tests.Shared.MutationFuzzer.Run("outbox checkpoint blobs", seeds, EdgeTwin.Tests.Shared.MutationFuzzer.Iterations(50_000), 81, blob =>
        {
            var accepted = 0;
            foreach (var decode in new Action<byte[]>[] { b => OpenWindowCheckpoint.DecodeCatalog(b), b => OpenWindowCheckpoint.DecodeWindows(b), b => OpenWindowCheckpoint.DecodeClosed(b) })
            {
                try
                {
                    decode(blob);
                    accepted++;
                }
                catch (InvalidDataException)
                {
                    // Documented: the feeder starts without the checkpoint.
                }
            }

            return accepted > 0;
        }, _ => false, maxAllocatedBytes: 80 * 1024 * 1024); // a damaged Brotli length may claim up to MaxWindowsBytes (64 MiB), by design
        TestContext.Current.TestOutputHelper?.WriteLine(report.ToString());
    }
}
