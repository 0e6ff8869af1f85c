using FsCheck;
using FsCheck.Fluent;

namespace EdgeTwin.Outbox.Tests.LiteDb;

/// <summary>The memory outbox's stream against <see cref="MemoryStream"/> as the model: LiteDB seeks, writes pages, truncates its journal.</summary>
public sealed class ChunkedMemoryStreamTests
{
    [Fact]
    public void Property_reads_lengths_and_positions_match_a_memory_stream()
    {
        // Offsets around the 64 KiB chunk edges, so writes and reads span chunks; lengths up to three chunks.
        var offset = Gen.OneOf(Gen.Choose(0, 200_000), Gen.Choose(-3, 3).Select(d => 65_536 + d), Gen.Choose(-3, 3).Select(d => 131_072 + d));
        var step = Gen.OneOf(
            offset.SelectMany(at => Gen.Choose(1, 70_000).Select(n => (Op: 'w', At: at, N: n))),
            offset.SelectMany(at => Gen.Choose(1, 70_000).Select(n => (Op: 'r', At: at, N: n))),
            offset.Select(at => (Op: 'l', At: at, N: 0)));
        Prop.ForAll(step.ListOf().ToArbitrary(), (List<(char Op, int At, int N)> steps) =>
        {
            using var model = new MemoryStream();
            using var chunked = new ChunkedMemoryStream();
            var fill = (byte)1;
            foreach (var (op, at, n) in steps)
            {
                switch (op)
                {
                    case 'w':
                        var data = new byte[n];
                        Array.Fill(data, fill++);
                        model.Position = at;
                        model.Write(data);
                        chunked.Position = at;
                        chunked.Write(data);
                        break;
                    case 'r':
                        var expected = new byte[n];
                        var actual = new byte[n];
                        model.Position = at;
                        chunked.Position = at;
                        var read = model.Read(expected);
                        if (chunked.Read(actual) != read || !expected.AsSpan(0, read).SequenceEqual(actual.AsSpan(0, read)))
                        {
                            return false;
                        }

                        break;
                    default:
                        model.SetLength(at);
                        chunked.SetLength(at);
                        break;
                }

                if (model.Length != chunked.Length || model.Position != chunked.Position)
                {
                    return false;
                }
            }

            var all = new byte[model.Length];
            var got = new byte[chunked.Length];
            model.Position = 0;
            chunked.Position = 0;
            model.ReadExactly(all);
            chunked.ReadExactly(got);
            return all.AsSpan().SequenceEqual(got) && chunked.Allocated >= chunked.Length && chunked.Allocated < chunked.Length + 65_536;
        }).QuickCheckThrowOnFailure();
    }
}
