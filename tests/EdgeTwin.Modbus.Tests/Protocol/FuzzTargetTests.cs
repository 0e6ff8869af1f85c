using EdgeTwin.Modbus.Data;
using EdgeTwin.Modbus.Protocol;
using EdgeTwin.Modbus.Server;
using EdgeTwin.Modbus.Transport;

namespace EdgeTwin.Modbus.Tests.Protocol;

/// <summary>
/// Mutation fuzzing of every Modbus byte reader: the MBAP stream scanner and the client's answer decoding as the TCP
/// transport drives them, RTU response framing (noise, echo, CRC) and decoding, and the server's request parsing and
/// handling (the simulator's TCP and RTU servers). Only <see cref="ModbusProtocolException"/> and, for an exception
/// response, <see cref="ModbusDeviceException"/> may escape; the scanner and <see cref="RtuFrame.TryFindResponse"/>
/// never throw and always make progress. CI runs a few seconds each; EDGETWIN_FUZZ_ITERATIONS=1000000 the long campaign.
/// </summary>
public sealed class FuzzTargetTests(ITestOutputHelper output)
{
    private static byte[] Hex(string s) => Convert.FromHexString(s.Replace(" ", "", StringComparison.Ordinal));

    private static bool Documented(Exception ex) => ex is ModbusProtocolException or ModbusDeviceException;

    // The requests in flight (transaction id -> unit, request PDU) and answers that fit them, from the spec's examples.
    private static readonly Dictionary<ushort, (byte Unit, byte[] Request)> Requests = new()
    {
        [1] = (1, Hex("03 006B 0003")),
        [2] = (1, Hex("01 0013 0013")),
        [3] = (1, Hex("06 0001 0003")),
        [4] = (1, Hex("10 0001 0002 04 000A 0102")),
        [5] = (1, Hex("17 0003 0006 000E 0003 06 00FF 00FF 00FF")),
        [6] = (1, Hex("2B 0E 01 00")),
        [7] = (1, Hex("04 0008 0001")),
        [8] = (1, Hex("0F 0013 000A 02 CD 01")),
    };

    private static readonly byte[][] AnswerPdus =
    [
        Hex("03 06 022B 0000 0064"), Hex("01 03 CD 6B 05"), Hex("06 0001 0003"), Hex("10 0001 0002"),
        Hex("17 0C 00FE 0ACD 0001 0003 000D 00FF"), Hex("2B 0E 01 01 00 00 03 00 04 41434D45 01 04 504D2D31 02 05 56322E3131"),
        Hex("04 02 000A"), Hex("0F 0013 000A"), Hex("83 02"),
    ];

    [Fact]
    public void Tcp_stream_scanning_and_answer_decoding_only_throw_the_documented_exceptions()
    {
        // Seeds: each answer alone, all of them back to back, and with junk and a stale frame between.
        var frames = AnswerPdus.Select((pdu, i) => Mbap((ushort)(i + 1), pdu)).ToArray();
        byte[][] seeds = [.. frames, [.. frames.SelectMany(f => f)], [.. frames[0], .. Hex("DEADBEEF 0009 0000 0005 01 03 02 0064"), .. frames[1]]];
        var report = MutationFuzzer.Run("modbus tcp stream", seeds, MutationFuzzer.Iterations(100_000), 21, stream =>
        {
            var pos = 0;
            var aligned = true;
            var decoded = false;
            for (var steps = 0; ; steps++)
            {
                var verdict = MbapStreamScanner.Scan(stream.AsSpan(pos), aligned, new Transport.MbapStreamScannerTests.Waiting(Requests), out var length);
                if (verdict == MbapScan.NeedMore || verdict == MbapScan.Garbled)
                {
                    return decoded;
                }

                // Progress: every verdict but NeedMore consumes bytes that are there; so the loop ends.
                Assert.InRange(length, 1, stream.Length - pos);
                Assert.True(steps <= stream.Length, "the scanner did not make progress");
                if (verdict == MbapScan.Frame)
                {
                    var pdu = MbapFrame.Read(stream.AsSpan(pos, length), out var header);
                    if (Requests.TryGetValue(header.TransactionId, out var request) && (pdu[0] & 0x7F) == request.Request[0])
                    {
                        try
                        {
                            Decode(header.UnitId, request.Request, pdu);
                            decoded = true;
                        }
                        catch (Exception ex) when (Documented(ex))
                        {
                            // One answer rejected; the connection reads on, as the transport does.
                        }
                    }
                }

                pos += length;
                aligned = verdict != MbapScan.Junk;
            }
        // A stream input carries many frames (repeated blocks), each decoded answer allocating its values: the long run's
        // largest was 62 KB and CI saw 65.8 KB for one input (thread-pool and pool-miss noise). A believed length would
        // show far above; MBAP lengths are 16-bit, so 1 MB still catches any input that makes the decoder keep growing.
        }, Documented, maxAllocatedBytes: 1024 * 1024);
        output.WriteLine(report.ToString());
    }

    [Fact]
    public void Rtu_response_framing_and_decoding_only_throw_the_documented_exceptions()
    {
        var requests = Requests.Values.ToArray();
        byte[][] seeds = [.. AnswerPdus.Select(pdu => Rtu(1, pdu)), [.. Rtu(1, AnswerPdus[0]), .. Rtu(1, AnswerPdus[1])], [0x00, 0xFF, .. Rtu(1, AnswerPdus[8])]];
        var rng = new Random(22);
        var report = MutationFuzzer.Run("modbus rtu", seeds, MutationFuzzer.Iterations(100_000), 23, buffered =>
        {
            var (unit, requestPdu) = requests[rng.Next(requests.Length)];
            var sent = Rtu(unit, requestPdu);
            var found = RtuFrame.TryFindResponse(buffered, rng.Next(4) == 0 ? sent : [], out var start, out var length, out var echo, out var garbage);
            Assert.InRange(garbage, 0, buffered.Length);
            _ = RtuFrame.TryExpectedResponseLength(buffered);
            if (buffered.Length >= 2)
            {
                try
                {
                    _ = RtuFrame.ExpectedResponseLength(buffered);
                }
                catch (ModbusProtocolException)
                {
                    // Documented: no response can start here.
                }
            }

            if (!found || echo)
            {
                return false;
            }

            Assert.True(start >= 0 && length >= RtuFrame.MinFrameLength && start + length <= buffered.Length, $"frame {start}+{length} of {buffered.Length}");
            var pdu = RtuFrame.Read(buffered.AsSpan(start, length), out var unitId);
            if (pdu.IsEmpty || (pdu[0] & 0x7F) != requestPdu[0])
            {
                return false;
            }

            Decode(unitId, requestPdu, pdu);
            return true;
        }, Documented, maxAllocatedBytes: 64 * 1024);
        output.WriteLine(report.ToString());
    }

    [Fact]
    public void Server_request_parsing_and_handling_only_throw_the_documented_exceptions()
    {
        var map = new ModbusRegisterMap()
            .AddRange(ModbusTable.HoldingRegisters, 0, 200)
            .AddRange(ModbusTable.InputRegisters, 0, 100)
            .AddRange(ModbusTable.Coils, 0, 100)
            .AddRange(ModbusTable.DiscreteInputs, 0, 100);
        var unit = new ModbusServerUnit(1, map);
        byte[][] pdus =
        [
            Hex("01 0013 0013"), Hex("02 00C4 0016"), Hex("03 006B 0003"), Hex("04 0008 0001"), Hex("05 00AC FF00"), Hex("06 0001 0003"),
            Hex("0F 0013 000A 02 CD 01"), Hex("10 0001 0002 04 000A 0102"), Hex("17 0003 0006 000E 0003 06 00FF 00FF 00FF"), Hex("2B 0E 01 00"),
            Hex("2B 0E 04 03"), Hex("08 0000 A537"),
        ];
        // Whole MBAP and RTU request frames: the servers frame with ReadHeader / ExpectedRequestLength before the PDU.
        byte[][] seeds = [.. pdus, .. pdus.Select((p, i) => Mbap((ushort)i, p)), .. pdus.Select(p => Rtu(1, p))];
        var response = new byte[ModbusPdu.MaxLength];
        var report = MutationFuzzer.Run("modbus server requests", seeds, MutationFuzzer.Iterations(100_000), 24, input =>
        {
            var n = ModbusRequestHandler.Handle(unit, input, response);
            Assert.InRange(n, 0, ModbusPdu.MaxLength);
            var expected = RtuFrame.ExpectedRequestLength(input);
            Assert.True(expected is -1 or 0 || expected >= 4, $"RTU request length {expected}");
            if (input.Length >= MbapFrame.HeaderLength)
            {
                var header = MbapFrame.ReadHeader(input);
                Assert.InRange(header.PduLength, 1, ModbusPdu.MaxLength);
            }

            return n > 0;
        }, Documented, maxAllocatedBytes: 64 * 1024);
        output.WriteLine(report.ToString());
    }

    /// <summary>Decodes an answer to <paramref name="request"/> as <see cref="Client.ModbusClient"/> does.</summary>
    private static void Decode(byte unitId, byte[] request, ReadOnlySpan<byte> pdu)
    {
        ModbusPdu.ThrowIfException(unitId, pdu, "fuzz", "request");
        var parsed = ModbusPdu.ParseRequest(request);
        switch (parsed.FunctionCode)
        {
            case ModbusFunctionCode.ReadHoldingRegisters or ModbusFunctionCode.ReadInputRegisters:
                ModbusPdu.ReadRegistersResponse(pdu, parsed.FunctionCode, parsed.Count, new ushort[parsed.Count]);
                break;
            case ModbusFunctionCode.ReadWriteMultipleRegisters:
                ModbusPdu.ReadRegistersResponse(pdu, parsed.FunctionCode, parsed.Count, new ushort[parsed.Count]);
                break;
            case ModbusFunctionCode.ReadCoils or ModbusFunctionCode.ReadDiscreteInputs:
                ModbusPdu.ReadBitsResponse(pdu, parsed.FunctionCode, parsed.Count, new bool[parsed.Count]);
                break;
            case ModbusFunctionCode.EncapsulatedInterface:
                _ = ModbusPdu.ReadDeviceIdentificationResponse(pdu);
                break;
            default:
                ModbusPdu.CheckWriteResponse(pdu, parsed.FunctionCode, parsed.Address, parsed.Count);
                break;
        }
    }

    private static byte[] Mbap(ushort transactionId, byte[] pdu)
    {
        var frame = new byte[MbapFrame.HeaderLength + pdu.Length];
        MbapFrame.Write(frame, transactionId, 1, pdu);
        return frame;
    }

    private static byte[] Rtu(byte unit, byte[] pdu)
    {
        var frame = new byte[pdu.Length + 3];
        RtuFrame.Write(frame, unit, pdu);
        return frame;
    }
}
