using EdgeTwin.Core.Events;
using EdgeTwin.Outbox.Summaries;
using EdgeTwin.Outbox.Tests.Summaries;

namespace EdgeTwin.Outbox.Tests.LiteDb;

/// <summary>
/// A file as a kill part-way through an append committed in pieces leaves it: 10 accepted events, then the first pieces
/// of a 973-summary append committed (meta's <c>pending_to</c> set), the rest never written. The disk is 300 KiB above
/// the reserve, so the append goes in pieces; the journal "fills" after 300 KiB more, as in
/// <see cref="JournalPiecesTests"/>, and the outbox is closed without another operation, so nothing reopens the file and
/// removes the pieces. Events and summaries are stamped from a fixed clock: the file's layout is the same on every run.
/// </summary>
internal static class UnfinishedAppend
{
    public const int KeptEvents = 10;
    public const int AppendRecords = 973;

    public static readonly DateTimeOffset Now = new(2026, 12, 3, 9, 14, 0, TimeSpan.Zero);

    /// <summary>The last accepted sequence (the 10th event) and the records of the append that never completed.</summary>
    public sealed record Result(long Kept, OutboxRecord[] Append);

    public static LiteDbOutboxOptions Options(string path, JournalWriteLimit? limit = null, int segmentCapacity = 8192) => new()
    {
        Path = path,
        Identity = UplinkBodiesTests.Gw,
        DiskReserveBytes = 0,
        FileSystemSpace = () => (300 * 1024, 64L << 20),
        WrapStream = limit is null ? null : limit.Wrap,
        SegmentCapacity = segmentCapacity,
    };

    public static async Task<Result> WriteAsync(string path, TimeProvider time, CancellationToken ct, int segmentCapacity = 8192)
    {
        var limit = new JournalWriteLimit();
        var append = Summaries(AppendRecords);
        await using var outbox = await LiteDbOutbox.OpenAsync(Options(path, limit, segmentCapacity), time: time, cancellationToken: ct);
        outbox.RegisterUplink("mqtt");
        var kept = await outbox.AppendAsync(
            Enumerable.Range(0, KeptEvents).Select(i => UplinkBodies.Event(UplinkBodiesTests.Gw, new EdgeEvent(EdgeEventKind.AlertRaised, "rack-a01", Now.AddSeconds(-i), EventSeverity.Warning, $"alert {i}"))).ToArray(),
            ct);
        limit.FailAfter(300 * 1024);
        var failed = await Assert.ThrowsAsync<OutboxStorageException>(async () => await outbox.AppendAsync(append, ct));
        Assert.Contains("No space left on device", failed.Message, StringComparison.Ordinal);
        return new Result(kept, append);
    }

    public static OutboxRecord[] Summaries(int count)
    {
        var t0 = Now.AddHours(-1).ToUnixTimeMilliseconds();
        var records = new OutboxRecord[count];
        for (var i = 0; i < count; i++)
        {
            var acc = default(WindowAccumulator);
            acc.Reset(t0 - 10_000, t0);
            acc.Add(i, t0 - 1, good: true);
            records[i] = UplinkBodies.Summary(UplinkBodiesTests.Gw, new Core.Samples.SeriesDescriptor($"pdu-a{i % 16:00}", $"outlet_current_{i}", "A"), acc);
        }

        return records;
    }
}
