using EdgeTwin.Outbox;

namespace EdgeTwin.Outbox.SoakChild;

/// <summary>
/// The process <c>WriteBackKillTests</c> kills in the middle of a write-back: opens the outbox (on a read-only mount: in
/// memory), appends and acknowledges, says so, and stops at the write-back step named <c>pause</c> until it is killed.
/// Prints <c>memory true|false</c>, <c>ready FIRST LAST ACKED</c> (the entries it appended and the position it
/// acknowledged) and <c>step NAME</c> for every step reached.
/// </summary>
internal static class WriteBackChild
{
    public static async Task<int> RunAsync(string path, string pause, CancellationToken cancellationToken)
    {
        var options = new LiteDbOutboxOptions
        {
            Path = path,
            WriteBackProbeInterval = TimeSpan.FromMilliseconds(100),
            WriteBackStep = step =>
            {
                Console.Out.WriteLine($"step {step}");
                Console.Out.Flush();
                if (step == pause)
                {
                    Thread.Sleep(Timeout.Infinite); // the parent kills the process here
                }
            },
        };
        await using var outbox = await LiteDbOutbox.OpenAsync(options, cancellationToken: cancellationToken);
        await Console.Out.WriteLineAsync($"memory {(outbox.GetStats().Storage.MemoryOnlySince is not null ? "true" : "false")}");
        outbox.RegisterUplink("mqtt");
        var t0 = DateTimeOffset.UtcNow.AddMinutes(-5).ToUnixTimeMilliseconds();
        var payload = new byte[300];
        var records = Enumerable.Range(0, 500).Select(i => new OutboxRecord(OutboxKind.Summary, "pdu-a01-a", t0 + i, payload)).ToArray();
        var last = await outbox.AppendAsync(records, cancellationToken);
        var acked = last - 100;
        await outbox.AcknowledgeAsync("mqtt", acked, cancellationToken);
        await outbox.AppendAsync([], cancellationToken); // the acknowledgement committed (it may wait for the next commit)
        await Console.Out.WriteLineAsync($"ready {last - 499} {last} {acked}");
        await Console.Out.FlushAsync(cancellationToken);
        await Task.Delay(Timeout.Infinite, cancellationToken);
        return 0;
    }
}
