using System.Diagnostics;
using EdgeTwin.Outbox.Soak;

namespace EdgeTwin.Outbox.Tests.Crash;

/// <summary>
/// The real thing: a separate process appends (and consumes) under load and is killed with SIGKILL at random
/// moments, 21 times (7 of them while a consumer reads and acknowledges). After every kill the file must open cleanly (never moved aside) and hold everything the
/// process had reported durable, with every entry the one that was appended at its sequence.
/// </summary>
public sealed class SigkillTests : IDisposable
{
    private const int Kills = 21;
    private readonly TempDirectory _dir = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Nothing_reported_durable_is_lost_across_random_SIGKILLs_during_ingest_and_replay()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Skip("Needs Linux: the test kills a child process with SIGKILL.");
        }

        var child = System.IO.Path.Combine(AppContext.BaseDirectory, "EdgeTwin.Outbox.SoakChild.dll");
        Assert.True(File.Exists(child), $"soak child not built at {child}");
        var path = _dir.File("outbox.db");
        var seed = Environment.TickCount;
        TestContext.Current.TestOutputHelper?.WriteLine($"seed {seed}");
        var random = new Random(seed);
        long maxDurable = 0, maxAcked = 0, firstReady = -1;
        var sawKillMidWork = 0;

        for (var i = 0; i < Kills; i++)
        {
            var consume = i % 3 == 1; // a third of the kills land in a consumer's read/ack loop
            var delay = TimeSpan.FromMilliseconds(random.Next(0, 250));
            var run = await RunAndKillAsync(child, path, consume, delay);
            if (firstReady < 0)
            {
                // The new file's last sequence before anything was appended (Unix ms × 1000 at creation, not 0).
                firstReady = run.Ready;
                Assert.True(firstReady >= 1_700_000_000_000_000, $"a new outbox file started at {firstReady}, not from the clock");
            }

            maxDurable = Math.Max(maxDurable, run.Durable);
            maxAcked = Math.Max(maxAcked, run.Acked);
            if (run.Durable > run.Ready)
            {
                sawKillMidWork++;
            }

            TestContext.Current.TestOutputHelper?.WriteLine($"kill {i + 1}: consume={consume} after {delay.TotalMilliseconds} ms, ready {run.Ready}, durable {run.Durable}, acked {run.Acked}");
            await VerifyAsync(path, maxDurable, maxAcked, firstReady, i);
        }

        Assert.Equal(Kills, sawKillMidWork);
        Assert.True(maxAcked > 0, "the consumer never acknowledged anything before a kill");
    }

    private static async Task VerifyAsync(string path, long maxDurable, long maxAcked, long firstReady, int kill)
    {
        await using var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = path }, cancellationToken: Ct);
        Assert.Null(outbox.MovedAsidePath);
        var stats = outbox.GetStats();
        Assert.True(stats.LastSequence >= maxDurable, $"kill {kill + 1}: last sequence {stats.LastSequence} < reported durable {maxDurable}");

        if (stats.UplinkPositions.TryGetValue(OutboxSoak.Uplink, out var acked))
        {
            Assert.True(acked >= maxAcked, $"kill {kill + 1}: acknowledged position {acked} < reported acknowledged {maxAcked}");
            Assert.Equal(stats.Depth == 0 ? 0 : acked + 1, stats.FirstSequence); // nothing unacknowledged was removed
        }
        else
        {
            Assert.Equal(0, maxAcked);
            Assert.Equal(stats.Depth == 0 ? 0 : firstReady + 1, stats.FirstSequence);
        }

        var expected = stats.FirstSequence;
        var after = stats.FirstSequence - 1;
        while (true)
        {
            var page = await outbox.ReadFromAsync(after, 5000, Ct);
            if (page.Count == 0)
            {
                break;
            }

            foreach (var entry in page)
            {
                Assert.Equal(expected, entry.Sequence);
                Assert.Equal(entry.Sequence - 1, OutboxSoak.ParseCounter(entry.Record.Payload.Span));
                expected++;
            }

            after = page[^1].Sequence;
        }

        Assert.Equal(stats.Depth == 0 ? stats.FirstSequence : stats.LastSequence + 1, expected);
        Assert.Equal(stats.Depth, stats.Depth == 0 ? 0 : stats.LastSequence - stats.FirstSequence + 1);
    }

    private sealed record Run(long Ready, long Durable, long Acked);

    private static async Task<Run> RunAndKillAsync(string child, string path, bool consume, TimeSpan delay)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(child);
        start.ArgumentList.Add(path);
        if (consume)
        {
            start.ArgumentList.Add("--consume");
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the soak child");
        var lines = new List<string>();

        // The random moment is counted from the first completed operation of the kind under test, so every kill
        // lands while appends (or reads and acknowledgements) are in flight, not during start-up.
        var busy = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var busyPrefix = consume ? "acked " : "durable ";
        var reader = Task.Run(
            async () =>
            {
                while (await process.StandardOutput.ReadLineAsync(CancellationToken.None) is { } line)
                {
                    lock (lines)
                    {
                        lines.Add(line);
                    }

                    if (line.StartsWith(busyPrefix, StringComparison.Ordinal))
                    {
                        busy.TrySetResult();
                    }
                }
            },
            CancellationToken.None);
        var errors = process.StandardError.ReadToEndAsync(CancellationToken.None);

        try
        {
            await busy.Task.WaitAsync(TimeSpan.FromSeconds(90), Ct);
            await Task.Delay(delay, Ct);
            if (process.HasExited)
            {
                Assert.Fail($"soak child exited by itself ({process.ExitCode}): {await errors}");
            }
        }
        finally
        {
            process.Kill(); // SIGKILL on Linux: no finalizers, no flush, no dispose
            await process.WaitForExitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30), CancellationToken.None);
        }

        await reader.WaitAsync(TimeSpan.FromSeconds(30), CancellationToken.None);
        Assert.Equal(137, process.ExitCode); // 128 + SIGKILL
        long readyAt = 0, durable = 0, acked = 0;
        foreach (var line in lines.Where(l => l.EndsWith(';'))) // a line cut by the kill does not count
        {
            var parts = line.TrimEnd(';').Split(' ');
            var value = long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
            switch (parts[0])
            {
                case "ready": readyAt = value; break;
                case "durable": durable = Math.Max(durable, value); break;
                case "acked": acked = Math.Max(acked, value); break;
                default: throw new InvalidOperationException($"unexpected soak line '{line}'");
            }
        }

        return new Run(readyAt, Math.Max(durable, readyAt), acked);
    }
}
