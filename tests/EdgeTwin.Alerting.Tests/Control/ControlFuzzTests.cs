using System.Text;
using System.Text.Json;
using EdgeTwin.Alerting.Control;
using EdgeTwin.Alerting.Tests.Support;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Alerting.Tests.Control;

/// <summary>
/// Mutation fuzzing of the alert control socket's request handling (what any local user can write to it): every request
/// gets one JSON answer with "ok", and none reaches the catch-all that reports an exception the checks did not foresee
/// (a warning "failed: &lt;exception&gt;"). CI runs a few seconds; EDGETWIN_FUZZ_ITERATIONS sets the long campaign.
/// </summary>
public sealed class ControlFuzzTests(ITestOutputHelper output)
{
    // One threshold rule, one alert per rack: the store the durability tests use.
    private const string Rules = State.GroupCommitTests.Rules;

    [Fact]
    public async Task Control_requests_always_get_an_answer_and_never_an_unforeseen_exception()
    {
        await using var h = await Harness.StartAsync(Rules);
        h.Feed(h.Series("rack-r01", "inlet"), 35);
        var id = h.Active("inlet-hot")!.Id;
        var log = new ListLogger();
        await using var server = new AlertControlServer(h.Service, Path.Combine(h.Dir, "alerts.sock"), h.Time, log);
        var peer = new ControlPeer(Environment.ProcessId, 1000, 1000, "fuzz");
        byte[][] seeds =
        [
            .. new[]
            {
                """{"op":"list"}""", """{"op":"status"}""", """{"op":"history","limit":50}""", $$"""{"op":"ack","id":{{id}}}""",
                """{"op":"ack","rule":"inlet-hot","series":"rack-r01"}""", """{"op":"silence","rule":"inlet-hot","seconds":7200}""",
                """{"op":"silence","rule":"inlet-hot","seconds":1e308,"by":"x"}""", """{"op":"maintenance_done","machine":"m1"}""",
                """{"op":"history","limit":-1}""", """[{"op":"list"}]""", """{"op":null}""",
            }.Select(Encoding.UTF8.GetBytes),
        ];
        // The allocation bound is the largest answer there is: "history" with its limit clamped to 10,000 entries (the
        // fuzzer's acks and silences fill the history; Handle writes it whole: a full history of raised and cleared lines
        // allocated 133 MB before LiteDB read only a line's fields, about 55 MB now; HistoryStreamingTests).
        var report = MutationFuzzer.Run("alert control requests", seeds, MutationFuzzer.Iterations(5_000), 31, request =>
        {
            var answer = server.Handle(request, Random.Shared.Next(8) == 0 ? null : peer);
            using var doc = JsonDocument.Parse(answer);
            return doc.RootElement.GetProperty("ok").GetBoolean();
        }, _ => false, maxAllocatedBytes: 128 * 1024 * 1024, hangLimit: TimeSpan.FromSeconds(30));
        output.WriteLine(report.ToString());
        var unforeseen = log.Lines.Where(l => l.Level >= LogLevel.Warning && l.Message.Contains(" failed: ", StringComparison.Ordinal)).Select(l => l.Message).Distinct().Take(5).ToArray();
        Assert.True(unforeseen.Length == 0, string.Join("\n", unforeseen));
    }

    [Fact]
    public async Task Regression_invalid_utf8_inside_a_request_string_was_an_unforeseen_exception()
    {
        // Found by the fuzzer: {"op":"<0xFF>"}. JsonDocument parses it and throws only when the string is read, so the
        // answer was "request failed: InvalidOperationException: Cannot transcode invalid UTF-8" and a warning with a stack.
        await using var h = await Harness.StartAsync(Rules);
        var log = new ListLogger();
        await using var server = new AlertControlServer(h.Service, Path.Combine(h.Dir, "alerts.sock"), h.Time, log);
        byte[] request = [0x7B, 0x22, 0x6F, 0x70, 0x22, 0x3A, 0x22, 0xFF, 0x22, 0x7D];

        using var answer = JsonDocument.Parse(server.Handle(request, new ControlPeer(Environment.ProcessId, 1000, 1000, "fuzz")));

        Assert.False(answer.RootElement.GetProperty("ok").GetBoolean());
        Assert.Equal("request is not UTF-8 (invalid byte 0xFF at offset 7)", answer.RootElement.GetProperty("error").GetString());
        Assert.DoesNotContain(log.Lines, l => l.Message.Contains("InvalidOperationException", StringComparison.Ordinal));
    }
}
