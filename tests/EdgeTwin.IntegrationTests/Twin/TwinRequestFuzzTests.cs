using System.Buffers;
using System.Text;
using EdgeTwin.Agent.Twin.Requests;

namespace EdgeTwin.IntegrationTests.Twin;

/// <summary>
/// Mutation fuzzing of twin request payloads (MQTT, from anyone allowed to publish on the request topics): every payload
/// gets a reply, malformed ones a malformed_request or invalid_field naming the problem; nothing escapes
/// <see cref="TwinRequestHandler.Handle"/> (the server turns an escaped exception into an "internal" error with a stack).
/// Without a twin the scenarios stop after reading their fields, which is what is fuzzed. In memory, no broker.
/// </summary>
public sealed class TwinRequestFuzzTests(ITestOutputHelper output)
{
    private static readonly string[] SeedPayloads =
    [
        """{"units":["crac1","crac2"],"horizon_min":90,"non_critical":"r1,r2"}""", """{"kw":12.5,"zone":"z1","next_to":"r3","feeds":["a","b"]}""",
        """{"rack":"r1","delta_kw":-3}""", """{"element":"pdu-a"}""", """{"confidence":0.95}""", """{"margin":2}""",
        """{"station":"s1","minutes":30,"start_in_min":5,"replications":20}""", """{"buffer":"b1","capacity":10,"replications":5}""",
        """{"station":"s2","cycle_s":41.5}""", "", "[1,2]",
    ];

    [Fact]
    public void Twin_request_payloads_always_get_a_reply_and_never_an_exception()
    {
        string[] scenarios = [.. TwinRequestHandler.Fields.Keys];
        byte[][] seeds = [.. SeedPayloads.Select(Encoding.UTF8.GetBytes)];
        var rng = new Random(61);
        var report = MutationFuzzer.Run("twin requests", seeds, MutationFuzzer.Iterations(50_000), 62, payload =>
        {
            var scenario = scenarios[rng.Next(scenarios.Length)];
            var reply = TwinRequestHandler.Handle(scenario, new ReadOnlySequence<byte>(payload), null, null);
            Assert.NotEqual(TwinRequestErrors.Internal, reply.Code);
            return reply.Ok;
        }, _ => false, maxAllocatedBytes: 4 * 1024 * 1024);
        output.WriteLine(report.ToString());
    }

    [Fact]
    public void Regression_invalid_utf8_in_a_twin_request_string_was_an_internal_error()
    {
        // {"units":["<0xC3>"]}: JsonDocument parses it and throws InvalidOperationException when the string is read; the
        // server answered "internal" and logged a stack for what is the requester's malformed payload.
        byte[] payload = [.. "{\"units\":[\""u8, 0xC3, .. "\"]}"u8];

        var reply = TwinRequestHandler.Handle(TwinRequestHandler.CoolingFailure, new ReadOnlySequence<byte>(payload), null, null);

        Assert.Equal(TwinRequestErrors.MalformedRequest, reply.Code);
        Assert.Equal("payload is not UTF-8 (invalid byte at offset 11)", reply.Error);
    }
}
