using System.Text;
using System.Text.Json;
using EdgeTwin.IntegrationTests.Agent;
using EdgeTwin.Outbox;

namespace EdgeTwin.IntegrationTests.StoreAndForward;

/// <summary>
/// <c>edgetwin outbox stats</c> while the agent holds the outbox: it reads a snapshot copy from <c>$TMPDIR</c>. The real
/// binary in its own process, with the outbox held open by this one as the agent would.
/// </summary>
public sealed class OutboxSnapshotCliTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetwin-outbox-snapshot-cli-").FullName;
    private LiteDbOutbox _held = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string File => Path.Combine(_dir, "outbox.db");

    public async ValueTask InitializeAsync()
    {
        _held = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = File }, cancellationToken: Ct);
        _held.RegisterUplink("mqtt");
        var payload = Encoding.UTF8.GetBytes("{\"v\":1}");
        await _held.AppendAsync([.. Enumerable.Range(0, 20).Select(i => new OutboxRecord(OutboxKind.Summary, "pdu-a", 1_796_000_000_000 + i, payload))], Ct);
    }

    public async ValueTask DisposeAsync()
    {
        await _held.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Regression_outbox_stats_counted_dropped_entries_as_behind()
    {
        // A long outage on a 256 KiB budget: the oldest summaries are dropped, their sequences become gaps.
        var file = Path.Combine(_dir, "small", "outbox.db");
        var payload = Encoding.UTF8.GetBytes("{\"v\":\"" + new string('x', 900) + "\"}");
        await using (var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = file, DiskBudgetBytes = 256 * 1024 }, cancellationToken: Ct))
        {
            outbox.RegisterUplink("mqtt");
            for (var i = 0; i < 8; i++)
            {
                await outbox.AppendAsync([.. Enumerable.Range(0, 50).Select(j => new OutboxRecord(OutboxKind.Summary, "pdu-a", 1_796_000_000_000 + (i * 50) + j, payload))], Ct);
                await outbox.RunMaintenanceAsync(Ct);
            }

            var stats = outbox.GetStats();
            Assert.True(stats.Dropped > 0, "the budget dropped nothing");
        }

        var (exit, output, error) = await AgentProcess.RunCliAsync("outbox", "stats", "--path", file, "--json");
        Assert.True(exit == 0, error);
        using var doc = JsonDocument.Parse(output);
        var depth = doc.RootElement.GetProperty("depth").GetInt64();
        Assert.Equal(depth, doc.RootElement.GetProperty("uplinks").GetProperty("mqtt").GetProperty("behind").GetInt64());

        (_, output, _) = await AgentProcess.RunCliAsync("outbox", "stats", "--path", file);
        Assert.Matches($@"uplink       mqtt: acknowledged \d+, {depth} behind\n", output);
    }

    [Fact]
    public async Task Regression_outbox_stats_crashed_with_a_stack_trace_when_the_snapshot_could_not_be_written()
    {
        // A TMPDIR that cannot take the copy (here a file, so no directory can be made in it; a full tmpfs fails alike).
        var notADirectory = Path.Combine(_dir, "not-a-directory");
        await System.IO.File.WriteAllTextAsync(notADirectory, "x", Ct);
        var (code, _, err) = await AgentProcess.RunCliAsync(new Dictionary<string, string> { ["TMPDIR"] = notADirectory }, "outbox", "stats", "--path", File);
        Assert.Equal(1, code);
        Assert.DoesNotContain("Unhandled exception", err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
        Assert.Contains($"edgetwin outbox: the agent holds {File}, and a snapshot copy into {notADirectory}", err, StringComparison.Ordinal);
        Assert.Contains("`edgetwin status` shows the backlog from the running agent without a copy", err, StringComparison.Ordinal);

        // With room, the same command reads the copy and leaves nothing behind.
        var temp = Directory.CreateDirectory(Path.Combine(_dir, "tmp")).FullName;
        (code, var output, err) = await AgentProcess.RunCliAsync(new Dictionary<string, string> { ["TMPDIR"] = temp }, "outbox", "stats", "--path", File);
        Assert.True(code == 0, err);
        Assert.Contains("entries      20 ", output, StringComparison.Ordinal);
        Assert.Contains("snapshot copy taken now", output, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(temp));
    }
}
