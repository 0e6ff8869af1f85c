using System.Diagnostics;
using System.Text.Json;
using EdgeTwin.Core.Events;
using EdgeTwin.IntegrationTests.Deployment;
using EdgeTwin.Outbox;
using EdgeTwin.Outbox.Summaries;

namespace EdgeTwin.IntegrationTests.StoreAndForward;

/// <summary><c>edgetwin outbox export</c> on a damaged file, as a site engineer runs it after the agent moved it aside.</summary>
public sealed class OutboxSalvageCliTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Regression_outbox_export_refused_a_moved_aside_corrupt_file()
    {
        using var dir = new TempDir();
        var db = Path.Combine(dir.Path, "outbox.db");
        var identity = new UplinkIdentity("gw-full", "site-1");
        var t0 = DateTimeOffset.UtcNow.AddMinutes(-20).ToUnixTimeMilliseconds();
        await using (var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = db, Identity = identity }, cancellationToken: Ct))
        {
            outbox.RegisterUplink("mqtt");
            for (var i = 0; i < 1207; i += 100)
            {
                await outbox.AppendAsync(Enumerable.Range(i, Math.Min(100, 1207 - i))
                    .Select(n => UplinkBodies.Event(identity, new EdgeEvent(EdgeEventKind.AlertRaised, $"pdu-a{n % 16:00}", DateTimeOffset.FromUnixTimeMilliseconds(t0 + (n * 1000L)), EventSeverity.Warning, $"event {n} of the backlog")))
                    .ToArray(), Ct);
            }
        }

        // The audit's `dd if=/dev/urandom of=outbox.db bs=8192 seek=20 count=4 conv=notrunc`, with fixed bytes.
        var noise = new byte[4 * 8192];
        new Random(20261202).NextBytes(noise);
        await using (var file = new FileStream(db, FileMode.Open, FileAccess.ReadWrite))
        {
            file.Position = 20 * 8192;
            await file.WriteAsync(noise, Ct);
        }

        // Moved aside as the agent does it (a copy: the agent's own salvage is not what this test is about).
        var aside = db + ".corrupt-20261202T153326Z";
        File.Copy(db, aside);

        var (exit, stdout, stderr) = await RunAsync("outbox", "export", "--path", aside);

        // Before: exit 1, "Outbox … is corrupt (LiteException: Page type must be data page: {0}); the agent will move it aside".
        Assert.True(exit == 0, $"exit {exit}: {stderr}");
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length >= 1000, $"{lines.Length} entries exported; stderr: {stderr}");
        var seqs = lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("seq").GetInt64()).ToList();
        Assert.Equal(seqs.Order(), seqs);
        Assert.Contains($"salvaged {lines.Length} entries", stderr, StringComparison.Ordinal);
        Assert.Contains($"; {1207 - lines.Length} entries unreadable", stderr, StringComparison.Ordinal);
        Assert.Equal(File.ReadAllBytes(db), File.ReadAllBytes(aside)); // never written to

        // --salvage on the damaged file under its own name (not yet moved aside) reads the same.
        var (exit2, stdout2, _) = await RunAsync("outbox", "export", "--path", db, "--salvage");
        Assert.Equal(0, exit2);
        Assert.Equal(stdout, stdout2);
    }

    private static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "edgetwin.dll"));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync(Ct);
        var stderr = p.StandardError.ReadToEndAsync(Ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromMinutes(3));
        await p.WaitForExitAsync(timeout.Token);
        return (p.ExitCode, await stdout, await stderr);
    }
}
