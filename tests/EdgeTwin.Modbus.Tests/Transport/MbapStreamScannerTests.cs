using EdgeTwin.Modbus.Transport;

namespace EdgeTwin.Modbus.Tests.Transport;

/// <summary>
/// The MBAP resynchronising scanner on fixed byte captures: what it takes as an answer, as stale, as a garbled answer, and
/// what it skips as junk, one verdict after the other as the reader would apply them. Requests waiting in these captures:
/// transaction 1 reads 1 holding register at 0 of unit 1 (answer 00 01 00 00 00 05 01 03 02 03 E8: 1000), transaction 2
/// reads 1 holding register at 10 (answer …03 F2: 1010), transaction 0x8301 reads 1 input register at 7, transaction 3
/// writes 9 to register 3 (FC 6) and transaction 4 reads 3 coils.
/// </summary>
public sealed class MbapStreamScannerTests
{
    private const string Answer1 = "00 01 00 00 00 05 01 03 02 03 E8";
    private const string Answer2 = "00 02 00 00 00 05 01 03 02 03 F2";

    private static readonly Dictionary<ushort, (byte Unit, byte[] Request)> AllWaiting = new()
    {
        [1] = (1, Hex("03 0000 0001")),
        [2] = (1, Hex("03 000A 0001")),
        [0x8301] = (1, Hex("04 0007 0001")),
        [3] = (1, Hex("06 0003 0009")),
        [4] = (1, Hex("01 0000 0003")),
    };

    private static byte[] Hex(string s) => Convert.FromHexString(s.Replace(" ", "", StringComparison.Ordinal));

    /// <summary>Requests waiting for an answer, by transaction id (also the Modbus fuzz targets').</summary>
    internal readonly struct Waiting(Dictionary<ushort, (byte Unit, byte[] Request)> requests) : IWaitingRequests
    {
        public bool TryGet(ushort transactionId, out byte unitId, out ReadOnlySpan<byte> request)
        {
            if (requests.TryGetValue(transactionId, out var r))
            {
                unitId = r.Unit;
                request = r.Request;
                return true;
            }

            unitId = 0;
            request = default;
            return false;
        }
    }

    /// <summary>Applies verdicts as the reader does (consume, then the next) until more bytes are needed; one line per verdict.</summary>
    private static string Run(string capture, bool aligned = true, Dictionary<ushort, (byte Unit, byte[] Request)>? waiting = null)
    {
        var bytes = Hex(capture);
        var trace = new List<string>();
        int pos = 0;
        while (true)
        {
            var verdict = MbapStreamScanner.Scan(bytes.AsSpan(pos), aligned, new Waiting(waiting ?? AllWaiting), out int length);
            if (verdict == MbapScan.NeedMore)
            {
                if (pos < bytes.Length)
                {
                    trace.Add($"need more after {Convert.ToHexString(bytes, pos, bytes.Length - pos)}");
                }

                return string.Join("; ", trace);
            }

            trace.Add($"{verdict.ToString().ToLowerInvariant()} {Convert.ToHexString(bytes, pos, length)}");
            if (verdict == MbapScan.Garbled)
            {
                return string.Join("; ", trace);
            }

            pos += length;
            aligned = verdict != MbapScan.Junk;
        }
    }

    [Fact]
    public void An_answer_at_a_frame_boundary_is_taken_whole()
    {
        Assert.Equal("frame 00010000000501030203E8", Run(Answer1));
        Assert.Equal("frame 00010000000501030203E8; frame 00020000000501030203F2", Run(Answer1 + Answer2));
    }

    [Fact]
    public void An_answer_split_over_reads_waits_for_its_rest_and_skips_nothing()
    {
        Assert.Equal("need more after 000100", Run("00 01 00"));
        Assert.Equal("need more after 0001000000050103", Run("00 01 00 00 00 05 01 03"));
        Assert.Equal("junk DEADBEEF000102; need more after 0001000000", Run("DE AD BE EF 00 01 02 00 01 00 00 00"));
    }

    [Fact]
    public void The_junk_gateways_append_is_skipped_and_the_answer_behind_it_taken()
    {
        // hostile_peer.py junk_after / junk_late: 7 bytes, then the next answer (in the same read, or when it comes).
        Assert.Equal("frame 00010000000501030203E8; junk DEADBEEF000102; frame 00020000000501030203F2", Run(Answer1 + "DE AD BE EF 00 01 02" + Answer2));
        // Arrived alone while nothing waits for an answer: all but a possible start skipped, the rest kept for the next read.
        Assert.Equal("junk DEADBEEF00; need more after 0102", Run("DE AD BE EF 00 01 02"));
    }

    [Fact]
    public void Regression_a_fake_header_with_an_unknown_transaction_id_swallowed_the_next_answer()
    {
        // 77 77 00 00 00 0C 01 looks like a header (protocol 0, length 12, unit 1) of a transaction nobody waits for: the
        // reader took its length and read the next answer as its PDU, so that request timed out. It is junk: its PDU would
        // start with function 0x00.
        Assert.Equal("junk 77770000000C01; frame 00020000000501030203F2", Run("77 77 00 00 00 0C 01" + Answer2));
        // Alone, before the answer has come: nothing is consumed by its length, the next read decides.
        Assert.Equal("need more after 77770000000C01", Run("77 77 00 00 00 0C 01"));
    }

    [Fact]
    public void A_fake_header_that_makes_a_self_consistent_frame_with_the_next_answers_first_bytes_does_not_swallow_it()
    {
        // Length 3 and the next answer's transaction id 0x8301 as its PDU read as an exception answer (83 01): a whole,
        // self-consistent stale frame, but the answer waited for starts inside it and wins.
        Assert.Equal("junk 77770000000301; frame 83010000000501040203EF", Run("77 77 00 00 00 03 01 83 01 00 00 00 05 01 04 02 03 EF"));
    }

    [Fact]
    public void A_truncated_copy_of_an_answer_before_the_whole_answer_is_skipped()
    {
        // The copy's length runs 2 bytes into the whole answer behind it; taken, it would have read register 0 as 0x0001.
        Assert.Equal("junk 000100000005010302; frame 00010000000501030203E8", Run("00 01 00 00 00 05 01 03 02" + Answer1));
        Assert.Equal("junk FFFF000100000005010302; frame 00010000000501030203E8", Run("FF FF 00 01 00 00 00 05 01 03 02" + Answer1, aligned: false));
    }

    [Fact]
    public void An_exception_answer_and_a_write_echo_behind_junk_are_taken()
    {
        Assert.Equal("junk FFFF; frame 000100000003018302", Run("FF FF 00 01 00 00 00 03 01 83 02"));
        Assert.Equal("junk DEADBEEF000102; frame 000300000006010600030009", Run("DE AD BE EF 00 01 02 00 03 00 00 00 06 01 06 00 03 00 09"));
        Assert.Equal("junk 55; frame 00040000000401010105", Run("55 00 04 00 00 00 04 01 01 01 05"));
    }

    [Fact]
    public void Behind_junk_only_a_frame_that_fits_its_request_in_every_field_is_taken()
    {
        // After junk, bytes with a waiting transaction id are taken only when unit, function, length, byte count and a
        // write's echo fit: an echo of another value, another unit, a byte count for 2 registers are junk.
        Assert.Equal("junk FF00030000000601060003; need more after 0008", Run("FF 00 03 00 00 00 06 01 06 00 03 00 08"));
        Assert.Equal("junk FF000100000005020302; need more after 03E8", Run("FF 00 01 00 00 00 05 02 03 02 03 E8"));
        Assert.Equal("junk FF00010000000701030403E8; need more after 03E9", Run("FF 00 01 00 00 00 07 01 03 04 03 E8 03 E9"));
        Assert.Equal("junk FF00010000000301; need more after 8309", Run("FF 00 01 00 00 00 03 01 83 09")); // exception 9 does not exist
    }

    [Fact]
    public void A_late_answer_to_a_request_given_up_on_is_stale_and_the_next_answer_taken()
    {
        Assert.Equal("stale 0009000000050103020064; frame 00020000000501030203F2", Run("00 09 00 00 00 05 01 03 02 00 64" + Answer2));
    }

    [Fact]
    public void A_garbled_header_naming_a_waiting_request_at_a_frame_boundary_is_its_garbled_answer()
    {
        Assert.Equal("garbled 00010007000501", Run("00 01 00 07 00 05 01 03 02 03 E8"));
        // Length 20 where the PDU says 10 (byte count 8): the bytes both agree on belong to it.
        Assert.Equal("garbled 0001000000140103080001000200030004", Run("00 01 00 00 00 14 01 03 08 00 01 00 02 00 03 00 04"));
        // Inside junk the same bytes are junk: the request waits for its answer rather than failing on bytes it cannot own.
        Assert.Equal("junk FF000100070005010302; need more after 03E8", Run("FF 00 01 00 07 00 05 01 03 02 03 E8"));
    }

    [Fact]
    public void Endless_junk_is_skipped_whole_without_keeping_it()
    {
        // All but the last two bytes at once (they could start a frame); the reader counts them and bounds the run.
        var junk = Convert.ToHexString(Hex(string.Concat(Enumerable.Repeat("AA 55 ", 2000))));
        Assert.Equal($"junk {junk[..^4]}; need more after AA55", Run(junk));
    }

    [Fact]
    public void Scanning_allocates_nothing()
    {
        // The reader scans every frame it receives: answers, junk and stale frames must cost no allocation.
        var capture = Hex(Answer1 + "DE AD BE EF 00 01 02 77 77 00 00 00 0C 01" + Answer2 + "00 09 00 00 00 05 01 03 02 00 64 FF FF 00 01 00 00 00 03 01 83 02");
        var waiting = new Waiting(AllWaiting);
        int frames = Drain(capture, waiting); // JIT and statics first
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            frames += Drain(capture, waiting);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(4 * 1001, frames);

        static int Drain(byte[] bytes, Waiting waiting)
        {
            int pos = 0, frames = 0;
            bool aligned = true;
            while (true)
            {
                var verdict = MbapStreamScanner.Scan(bytes.AsSpan(pos), aligned, waiting, out int length);
                if (verdict == MbapScan.NeedMore)
                {
                    return frames;
                }

                frames += verdict is MbapScan.Frame or MbapScan.Stale ? 1 : 0;
                pos += length;
                aligned = verdict != MbapScan.Junk;
            }
        }
    }
}
