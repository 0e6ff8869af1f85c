using System.Text;
using EdgeTwin.Outbox.Tests.Contract;
using FsCheck;
using FsCheck.Fluent;
using LiteDB;

namespace EdgeTwin.Outbox.Tests.LiteDb;

/// <summary>The whole durable contract again with three sequences per segment, so nearly every step crosses a boundary.</summary>
public sealed class LiteDbOutboxSmallSegmentContractTests : DurableOutboxContractTests
{
    private readonly TempDirectory _dir = new();

    private LiteDbOutboxOptions Options => new() { Path = _dir.File("outbox.db"), SegmentCapacity = 3 };

    protected override async ValueTask<IOutbox> CreateOutboxAsync() => await LiteDbOutbox.OpenAsync(Options, cancellationToken: Ct);

    protected override async ValueTask<IOutbox?> ReopenOutboxAsync(IOutbox outbox)
    {
        await outbox.DisposeAsync();
        return await LiteDbOutbox.OpenAsync(Options, cancellationToken: Ct);
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        _dir.Dispose();
    }
}

/// <summary>Segment collections: acknowledged entries leave by whole collections, and nothing held is lost doing so.</summary>
public sealed class LiteDbOutboxSegmentTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _dir.Dispose();

    private static OutboxRecord Record(long i) =>
        new(OutboxKind.Event, $"dev-{i % 5}", 1_795_000_000_000 + i, Encoding.UTF8.GetBytes($"{{\"i\":{i},\"pad\":\"{new string('x', (int)(i % 40))}\"}}"));

    private static List<string> Collections(string path)
    {
        using var db = new LiteDatabase(new ConnectionString { Filename = path, ReadOnly = true });
        return db.GetCollectionNames().Where(n => n.StartsWith("seg_", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
    }

    [Fact]
    public async Task Acknowledged_segments_are_dropped_whole_and_a_partly_acknowledged_one_stays_until_it_is_complete()
    {
        var path = _dir.File("o.db");
        long b; // the new file's sequences start after b (Unix ms × 1000 at creation)
        await using (var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = path, SegmentCapacity = 10 }, cancellationToken: Ct))
        {
            b = await outbox.AppendAsync([], Ct);
            outbox.RegisterUplink("mqtt");
            await outbox.AppendAsync(Enumerable.Range(1, 35).Select(i => Record(i)).ToList(), Ct);
            await outbox.AcknowledgeAsync("mqtt", b + 23, Ct);
            var stats = outbox.GetStats();
            Assert.Equal(12, stats.Depth);
            Assert.Equal(b + 24, stats.FirstSequence);
            Assert.Equal(Enumerable.Range(24, 12).Select(i => b + i), (await outbox.ReadFromAsync(0, 100, Ct)).Select(e => e.Sequence));
        }

        // Segments b+1 and b+11 dropped; b+21 keeps its acknowledged b+21..b+23 on disk (not readable), b+31 untouched.
        Assert.Equal([$"seg_{b + 21}", $"seg_{b + 31}"], Collections(path));

        await using (var reopened = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = path, SegmentCapacity = 10 }, cancellationToken: Ct))
        {
            Assert.Equal(12, reopened.GetStats().Depth);
            Assert.Equal(b + 24, (await reopened.ReadAsync("mqtt", 0, 1, Ct))[0].Sequence);
            await reopened.AcknowledgeAsync("mqtt", b + 30, Ct);
        }

        Assert.Equal([$"seg_{b + 31}"], Collections(path));
    }

    [Fact]
    public async Task A_file_written_before_segments_is_moved_into_segments_with_its_positions()
    {
        var path = _dir.File("legacy.db");
        using (var db = new LiteDatabase(new ConnectionString { Filename = path }))
        {
            // The layout up to this change: one "entries" collection, acknowledged entries already deleted.
            var entries = db.GetCollection("entries");
            for (long i = 4; i <= 9; i++)
            {
                var r = Record(i);
                entries.Insert(new BsonDocument { ["_id"] = i, ["k"] = (int)r.Kind, ["d"] = r.DeviceId, ["t"] = r.TimestampUnixMs, ["p"] = r.Payload.ToArray(), ["n"] = 200L });
            }

            db.GetCollection("uplinks").Insert(new BsonDocument { ["_id"] = "mqtt", ["acked"] = 3L });
            db.GetCollection("meta").Insert(new BsonDocument { ["_id"] = "state", ["last"] = 9L, ["condensed"] = 0L, ["dropped"] = 0L });
        }

        await using (var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = path, SegmentCapacity = 4 }, cancellationToken: Ct))
        {
            Assert.Equal(6, outbox.GetStats().Depth);
            Assert.Equal(3, outbox.GetAcknowledged("mqtt"));
            var read = await outbox.ReadAsync("mqtt", 3, 100, Ct);
            Assert.Equal([4L, 5, 6, 7, 8, 9], read.Select(e => e.Sequence));
            Assert.Equal(Record(7).Payload.ToArray(), read[3].Record.Payload.ToArray());
            Assert.Equal(10, await outbox.AppendAsync([Record(10)], Ct));
        }

        using var check = new LiteDatabase(new ConnectionString { Filename = path, ReadOnly = true });
        Assert.False(check.CollectionExists("entries"));
    }

    /// <summary>
    /// Random appends, acknowledgements by two uplinks and reopens against a list model: every uplink reads exactly
    /// the entries after its position, depth counts what someone still needs, and bytes go back to zero when all is acknowledged.
    /// </summary>
    [Fact]
    public void Property_reads_depth_and_bytes_match_a_list_model_across_segments_and_reopens()
    {
        var step = Gen.OneOf(
            Gen.Choose(1, 9).Select(n => (Op: 'a', N: n)),
            Gen.Choose(0, 12).Select(n => (Op: 'm', N: n)),
            Gen.Choose(0, 12).Select(n => (Op: 'k', N: n)),
            Gen.Constant((Op: 'r', N: 0)));
        Prop.ForAll(
            Gen.Choose(1, 5).SelectMany(capacity => step.ListOf().Select(steps => (capacity, steps))).ToArbitrary(),
            ((int Capacity, List<(char Op, int N)> Steps) c) => Run(c.Capacity, c.Steps).GetAwaiter().GetResult())
            .QuickCheckThrowOnFailure();
    }

    private async Task<bool> Run(int capacity, List<(char Op, int N)> steps)
    {
        var path = _dir.File($"p-{Guid.NewGuid():N}.db");
        var options = new LiteDbOutboxOptions { Path = path, SegmentCapacity = capacity, FlushToDisk = false };
        var outbox = await LiteDbOutbox.OpenAsync(options, cancellationToken: Ct);
        try
        {
            outbox.RegisterUplink("m");
            outbox.RegisterUplink("k");
            var last = await outbox.AppendAsync([], Ct); // a new file starts from the clock, not 0
            var acked = new Dictionary<string, long> { ["m"] = last, ["k"] = last };
            foreach (var (op, n) in steps)
            {
                switch (op)
                {
                    case 'a':
                        last = await outbox.AppendAsync(Enumerable.Range(1, n).Select(i => Record(last + i)).ToList(), Ct);
                        break;
                    case 'm' or 'k':
                        var uplink = op == 'm' ? "m" : "k";
                        var to = Math.Min(last, acked[uplink] + n);
                        await outbox.AcknowledgeAsync(uplink, to, Ct);
                        acked[uplink] = Math.Max(acked[uplink], to);
                        break;
                    default:
                        await outbox.DisposeAsync();
                        outbox = await LiteDbOutbox.OpenAsync(options, cancellationToken: Ct);
                        break;
                }

                foreach (var (uplink, position) in acked)
                {
                    var read = await outbox.ReadAsync(uplink, position, 1000, Ct);
                    Assert.Equal(Enumerable.Range(1, (int)(last - position)).Select(i => position + i), read.Select(e => e.Sequence));
                    Assert.All(read, e => Assert.Equal(Record(e.Sequence).Payload.ToArray(), e.Record.Payload.ToArray()));
                }

                var stats = outbox.GetStats();
                Assert.Equal(last, stats.LastSequence);
                Assert.Equal(last - acked.Values.Min(), stats.Depth);
                Assert.Equal(stats.Depth == 0, stats.EntryBytes == 0);
            }

            return true;
        }
        finally
        {
            await outbox.DisposeAsync();
        }
    }
}
