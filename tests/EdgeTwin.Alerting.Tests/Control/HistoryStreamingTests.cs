using System.Globalization;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using EdgeTwin.Alerting.Control;
using EdgeTwin.Alerting.State;
using EdgeTwin.Core.Events;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Tests.Shared;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Alerting.Tests.Control;

/// <summary>
/// <c>edgetwin alerts history --limit 10000</c> against a full history: the agent streams the answer in batches (memory
/// bounded by a batch, not by the history), a client that leaves mid-answer or reads slowly harms nobody, and the bytes
/// on the wire are the ones the CLI has always parsed.
/// </summary>
/// <remarks>
/// Alone, after the parallel classes: two tests measure the whole process's heap and allocations, which the harnesses of
/// classes running beside them swelled (6.8 MB "held while the client was not reading" against a 4 MB bound, run in
/// the full assembly on a loaded machine; alone it holds under 1 MB).
/// </remarks>
[Collection(nameof(ProcessMemoryMeasured))]
public sealed class HistoryStreamingTests(ITestOutputHelper output)
{
    private const string Rules = """
        alerts:
          group_by: [rack]
          group_interval: 0s
          rules:
            - { name: inlet-hot, type: threshold, match: { metric: inlet }, above: 30, clear_below: 29, severity: critical }
        """;

    private const string FullHistory = """{"op":"history","limit":10000}""";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// Fills the history with <paramref name="lines"/> realistic lines: alerts raised and cleared on one rack after the
    /// other (rule, key, value, uplink as the agent writes them), a second apart on the fake clock, then waits until
    /// LiteDB has them all (the answer reads them from there, as on a gateway that has run for weeks).
    /// </summary>
    private static async Task FillAsync(Harness h, int lines)
    {
        for (var i = 0; i < lines / 2; i++)
        {
            var s = h.Series($"rack-r{i:D5}", "inlet");
            h.Feed(s, 35.5 + (i % 7));
            h.Advance(TimeSpan.FromSeconds(1));
            h.Feed(s, 21.25);
            h.Advance(TimeSpan.FromSeconds(1));
        }

        await Wait.UntilAsync(() => h.Manager.Store.Pending == 0 && h.Manager.Store.Unapplied == 0, $"{lines} history lines in LiteDB", 60);
    }

    /// <summary>
    /// A state directory whose <c>alerts.db</c> holds <paramref name="lines"/> history lines as a gateway's does after weeks:
    /// racks' inlet alerts raised and cleared, each line with the event attributes and message the agent saves with it
    /// for the outbox, all published. Written through the store as the agent writes them (10,000 changes fed through the
    /// engine take a minute on the shared CI machine; the 1,000-line fill above is the engine's own).
    /// </summary>
    private static async Task<string> SeedAsync(int lines)
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-history-").FullName;
        var t0 = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);
        var seq0 = t0.ToUnixTimeMilliseconds();
        using (var store = new AlertStore(Path.Combine(dir, "alerts.db")))
        {
            store.Start(_ => { });
            for (var at = 0; at < lines; at += 500)
            {
                var unit = new WriteUnit { Done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
                for (var i = at; i < Math.Min(lines, at + 500); i++)
                {
                    var raised = i % 2 == 0;
                    var rack = $"rack-r{i / 2 % 400:D3}";
                    var time = t0.AddSeconds(i * 37);
                    var value = raised ? 35.5 + (i % 7) : 28.75;
                    var attributes = new Dictionary<string, string>
                    {
                        ["label.device"] = rack, ["label.rule"] = "inlet-hot", ["label.severity"] = "critical",
                        ["alert_id"] = (seq0 + (i / 2)).ToString(CultureInfo.InvariantCulture), ["rule"] = "inlet-hot",
                        ["key"] = rack + "/inlet", ["state"] = raised ? "firing" : "resolved",
                        ["value"] = value.ToString(CultureInfo.InvariantCulture), ["peak"] = "41.5", ["time"] = time.ToString("O", CultureInfo.InvariantCulture),
                        ["fired_at"] = time.ToString("O", CultureInfo.InvariantCulture), ["uplink"] = "online", ["during_outage"] = "false",
                        ["rule_type"] = "threshold", ["severity"] = "critical", ["device"] = rack, ["series"] = rack + "/inlet",
                        ["metric"] = "inlet", ["unit"] = "Cel", ["for_s"] = "0", ["direction"] = "above", ["threshold"] = "30",
                        ["clear_level"] = "29", ["value_unit"] = "Cel",
                    };
                    var entry = new AlertHistoryEntry(0, seq0 + (i / 2), "inlet-hot", rack + "/inlet", raised ? "raised" : "cleared", EventSeverity.Critical, value, time, "online");
                    unit.Writes.Add(AlertStore.Append(seq0 + i, entry, raised ? EdgeEventKind.AlertRaised : EdgeEventKind.AlertCleared, attributes, $"device {rack} (site dc1): inlet {value} °C above 30 °C since {time:HH:mm:ss} UTC"));
                }

                if (at + 500 >= lines)
                {
                    unit.Writes.Add(AlertStore.PublishedThrough(seq0 + lines - 1));
                }

                store.Submit(unit);
                store.Pump();
                await unit.Done.Task;
            }
        }

        return dir;
    }

    private static async Task<Socket> ConnectAsync(string path, string request)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await s.ConnectAsync(new UnixDomainSocketEndPoint(path), Ct);
        await s.SendAsync(Encoding.UTF8.GetBytes(request + "\n"), SocketFlags.None, Ct);
        return s;
    }

    /// <summary>Reads the answer into a reused buffer (the client allocates nothing per byte): its length, hash and last byte.</summary>
    private static async Task<(long Length, string Sha256, byte Last)> DrainAsync(Socket s)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        long length = 0;
        byte last = 0;
        int n;
        while ((n = await s.ReceiveAsync(buffer, SocketFlags.None, Ct)) > 0)
        {
            sha.AppendData(buffer, 0, n);
            length += n;
            last = buffer[n - 1];
        }

        return (length, Convert.ToHexString(sha.GetHashAndReset()), last);
    }

    [Fact]
    public async Task Regression_a_full_alert_history_answer_allocated_tens_of_megabytes()
    {
        await using var c = await HistoryControl.StartAsync(Rules, await SeedAsync(10_000));

        // Once to JIT every path (LiteDB's query code included), then measured: the whole process's allocations, since the
        // server answers on thread-pool threads; the client only reads into one reused buffer.
        using (var warm = await ConnectAsync(c.Socket, FullHistory))
        {
            await DrainAsync(warm);
        }

        long allocated = 0;
        long length = 0;
        for (var i = 0; i < 3; i++)
        {
            using var s = await ConnectAsync(c.Socket, FullHistory);
            var before = GC.GetTotalAllocatedBytes(precise: true);
            var (n, _, last) = await DrainAsync(s);
            var used = GC.GetTotalAllocatedBytes(precise: true) - before;
            Assert.Equal((byte)'\n', last);
            length = n;
            allocated = i == 0 ? used : Math.Min(allocated, used);
        }

        output.WriteLine($"history of 10,000 lines: answer {length:N0} B, allocated {allocated:N0} B (least of 3 runs)");
        Assert.InRange(length, 1_500_000, 4_000_000);

        // Before: 133 MB (LiteDB read each whole line, the event attributes and message saved with it for the outbox
        // included, 12.4 KB allocated per line; a list of all 10,000; the answer grown by doubling in one buffer, then
        // copied to a byte[] sent in one write). Now 52 MB, nearly all LiteDB reading a line's nine fields (about 5 KB per
        // line, garbage at once: the live set is one batch). The bound leaves room for LiteDB and the runtime.
        Assert.True(allocated < 80L * 1024 * 1024, $"a 10,000-line history answer allocated {allocated:N0} B");
    }

    /// <summary>SHA-256 of the answers captured from the agent before the history was streamed (commit 43f8458).</summary>
    private static readonly Dictionary<int, (long Length, string Sha256)> Before = new()
    {
        [10_000] = (249870, "A3EFDEA91D40BE836DBA4FEF5C3306096D8BCAFB4AF93D11CF1CC4FC11040EDB"),
        [500] = (105670, "C89837ED5367E010D21A2E16389E83B2DDB583549BC218CFEBE83F0977CE7A6E"),
        [1] = (226, "CDA9741C17B492BBCC565F6B32CE9E64EFE95C155FE9E508AD1C41AA1ABFDE16"),
    };

    [Fact]
    public async Task The_history_answer_has_the_bytes_the_cli_parsed_before_it_was_streamed()
    {
        // The CLI (the same binary, an older or newer build) parses one JSON line: streamed in batches, the line must be
        // the same bytes. 1,200 lines raised and cleared, acknowledged and silenced, the last 200 still being committed
        // (LiteDB held back: the answer takes them from the manager), asked for all, the newest 500 and the newest one.
        await using var c = await HistoryControl.StartAsync(Rules);
        await FillAsync(c.H, 1_000);
        c.H.Manager.Store.HoldApply = true;
        for (var i = 0; i < 50; i++)
        {
            var s = c.H.Series($"rack-q{i:D3}", "inlet");
            c.H.Feed(s, 40 + (i * 0.125));
            c.H.Advance(TimeSpan.FromMilliseconds(1500));
            Assert.Equal(ControlResult.Done, c.H.Manager.Acknowledge(c.H.Active("inlet-hot", $"rack-q{i:D3}/inlet")!.Id, "op\"erator é"));
            c.H.Manager.Silence("inlet-hot", c.H.Time.GetUtcNow().AddMinutes(i + 1), "night shift");
            c.H.Feed(s, 20);
            c.H.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.True(c.H.Manager.Store.AppliedSeq < c.H.Manager.History(1)[0].Seq, "the newest lines are not in LiteDB yet");
        var got = new Dictionary<int, (long Length, string Sha256)>();
        foreach (var limit in Before.Keys)
        {
            using var s = await ConnectAsync(c.Socket, $$"""{"op":"history","limit":{{limit}}}""");
            var (length, sha, _) = await DrainAsync(s);
            got[limit] = (length, sha);
            output.WriteLine($"[{limit}] = ({length}, \"{sha}\"),");
        }

        Assert.Equal(Before, got);
    }

    [Fact]
    public async Task A_client_that_closes_in_the_middle_of_a_history_answer_costs_the_server_nothing()
    {
        await using var c = await HistoryControl.StartAsync(Rules, await SeedAsync(10_000));

        for (var i = 0; i < 5; i++)
        {
            using var s = await ConnectAsync(c.Socket, FullHistory);
            var part = new byte[64 * 1024];
            var got = 0;
            while (got < part.Length)
            {
                got += await s.ReceiveAsync(part.AsMemory(got), SocketFlags.None, Ct);
            }

            Assert.StartsWith("""{"ok":true,"history":[{"seq":""", Encoding.UTF8.GetString(part, 0, 40), StringComparison.Ordinal);
            s.Close(); // unread data: the kernel resets the connection under the server's next write
        }

        await Wait.UntilAsync(() => c.Server.Connections == 0, "the server to let go of the closed connections");
        Assert.DoesNotContain(c.Log.Lines, l => l.Level >= LogLevel.Warning);

        // The server goes on: the next client gets the whole history.
        using var next = await ConnectAsync(c.Socket, FullHistory);
        var whole = new MemoryStream();
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = await next.ReceiveAsync(buffer, SocketFlags.None, Ct)) > 0)
        {
            whole.Write(buffer, 0, n);
        }

        using var answer = JsonDocument.Parse(whole.ToArray());
        Assert.Equal(10_000, answer.RootElement.GetProperty("history").GetArrayLength());
    }

    [Fact]
    public async Task Alerts_raised_while_a_client_reads_a_long_history_slowly_reach_the_store_without_waiting_for_it()
    {
        await using var c = await HistoryControl.StartAsync(Rules, await SeedAsync(10_000));
        var newest = c.H.Manager.History(1)[0].Seq;
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var heapBefore = GC.GetTotalMemory(forceFullCollection: true);

        // The client reads the first bytes and stops: the server's write blocks once the socket's buffers are full.
        using var slow = await ConnectAsync(c.Socket, FullHistory);
        var head = new byte[1024];
        var first = await slow.ReceiveAsync(head, SocketFlags.None, Ct);
        Assert.True(first > 0);
        await Task.Delay(500, Ct);
        var heapStalled = GC.GetTotalMemory(forceFullCollection: true);
        output.WriteLine($"heap held while the answer waits for the client: {heapStalled - heapBefore:N0} B");

        // Meanwhile 100 changes: committed, in LiteDB, and a LiteDB checkpoint (which waits for every open LiteDB
        // transaction) runs, all while the history answer is half sent.
        for (var i = 0; i < 50; i++)
        {
            var s = c.H.Series($"rack-w{i:D3}", "inlet");
            c.H.Feed(s, 36);
            c.H.Feed(s, 20);
        }

        await Wait.UntilAsync(() => c.H.Manager.Store.AppliedSeq >= newest + 100 && c.H.Manager.Store.Unapplied == 0, "the new lines in LiteDB", 10);
        var checkpoint = Task.Run(c.H.Manager.Store.CheckpointForTest, Ct);
        Assert.Same(checkpoint, await Task.WhenAny(checkpoint, Task.Delay(TimeSpan.FromSeconds(10), Ct)));
        await checkpoint;

        // The client reads on: the history as of its request, 10,000 lines, none of the new ones.
        var rest = new MemoryStream();
        rest.Write(head, 0, first);
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = await slow.ReceiveAsync(buffer, SocketFlags.None, Ct)) > 0)
        {
            rest.Write(buffer, 0, n);
        }

        using var answer = JsonDocument.Parse(rest.ToArray());
        var lines = answer.RootElement.GetProperty("history");
        Assert.Equal(10_000, lines.GetArrayLength());
        Assert.Equal(newest, lines[9_999].GetProperty("seq").GetInt64());
        Assert.Equal(newest - 9_999, lines[0].GetProperty("seq").GetInt64());
        Assert.True(heapStalled - heapBefore < 4L * 1024 * 1024, $"{heapStalled - heapBefore:N0} B held while the client was not reading");
    }

    [Fact]
    public async Task The_newest_lines_are_counted_across_a_jump_in_the_line_numbers()
    {
        // A start above a replayed published mark numbers on from there (AlertManager.FirstSeq): lines 1-100, then
        // 1,000-1,049. The newest 80 are 71-100 and 1,000-1,049, not the 80 numbers below 1,049.
        var dir = Directory.CreateTempSubdirectory("edgetwin-history-").FullName;
        try
        {
            using var store = new AlertStore(Path.Combine(dir, "alerts.db"));
            store.Start(_ => { });
            var unit = new WriteUnit { Done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
            var t0 = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);
            foreach (var seq in Enumerable.Range(1, 100).Concat(Enumerable.Range(1_000, 50)))
            {
                unit.Writes.Add(AlertStore.Append(seq, new AlertHistoryEntry(0, 7, "inlet-hot", "rack-r01/inlet", "raised", EventSeverity.Critical, 35, t0.AddSeconds(seq), "online"), null));
            }

            store.Submit(unit);
            store.Pump();
            await unit.Done.Task;
            await Wait.UntilAsync(() => store.AppliedSeq == 1_049 && store.Unapplied == 0, "the lines in LiteDB");

            Assert.Equal([.. Enumerable.Range(71, 30).Concat(Enumerable.Range(1_000, 50))], store.History(80).Select(e => (int)e.Seq));
            Assert.Equal([.. Enumerable.Range(1_040, 10)], store.History(10).Select(e => (int)e.Seq));
            Assert.Equal(150, store.History(10_000).Count);

            // Read in batches of 7 through the cursor: the same lines, in order, none twice.
            var cursor = new AlertHistoryCursor(store, [], 80, 7);
            var read = new List<long>();
            while (!cursor.Done)
            {
                var batch = cursor.Next();
                Assert.InRange(batch.Count, 1, 7);
                read.AddRange(batch.Select(e => e.Seq));
            }

            Assert.Equal(store.History(80).Select(e => e.Seq), read);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}

/// <summary>An alerting service with its control socket started (as the agent runs it).</summary>
internal sealed class HistoryControl : IAsyncDisposable
{
    public Harness H { get; private set; } = null!;

    public ListLogger Log { get; } = new();

    public string Socket => Path.Combine(H.Dir, "alerts.sock");

    public AlertControlServer Server { get; private set; } = null!;

    public static async Task<HistoryControl> StartAsync(string rules, string? dir = null)
    {
        var c = new HistoryControl { H = await Harness.StartAsync(rules, dir) };
        c.Server = new AlertControlServer(c.H.Service, c.Socket, c.H.Time, c.Log);
        c.Server.Start();
        return c;
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        await H.DisposeAsync();

    }
}

/// <summary>Test classes that measure the whole process's memory: run alone, after every parallel class.</summary>
[CollectionDefinition(nameof(ProcessMemoryMeasured), DisableParallelization = true)]
public sealed class ProcessMemoryMeasured;
