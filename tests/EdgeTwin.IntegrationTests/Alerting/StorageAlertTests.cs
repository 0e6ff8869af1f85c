using System.Text.Json;
using EdgeTwin.Agent.Alerting;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.Alerting;
using EdgeTwin.Alerting.Control;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.State;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.IntegrationTests.Deployment;
using EdgeTwin.Outbox;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.IntegrationTests.Alerting;

/// <summary>
/// The operator's side of a gateway whose storage failed under the outbox (the outbox side, on a real ext4 the kernel
/// turns read-only, is <c>ReadOnlyFileSystemTests</c>): the shipped rule's alarm, and <c>edgetwin status</c>.
/// </summary>
public sealed class StorageAlertTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetwin-storage-alert-").FullName;
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.UtcNow);
    private AlertingService _service = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        // The shipped data-centre rule as it is in the file, with no sinks: what the operator's site gets by pasting it.
        var shipped = File.ReadAllLines(Path.Combine(Tool.RepoRoot(), "device-profiles", "examples", "alert-rules", "datacenter.yaml"))
            .SkipWhile(l => !l.Contains("- name: gateway-storage-failed", StringComparison.Ordinal))
            .TakeWhile((l, i) => i == 0 || !l.TrimStart().StartsWith("- name:", StringComparison.Ordinal));
        var yaml = "alerts:\n  group_interval: 0s\n  rules:\n" + string.Join("\n", shipped) + "\n";
        var diagnostics = new ConfigDiagnostics();
        var root = (ConfigMapping)YamlTree.Parse(yaml, "datacenter.yaml", diagnostics)!;
        var config = AlertsConfig.Read(new ConfigReader((ConfigMapping)root["alerts"]!, diagnostics), _dir);
        Assert.Empty(diagnostics.Sorted());
        Assert.Single(config.Rules);
        _service = new AlertingService(config, new SiteIndex(null), new SeriesRegistry(), null, new AlertingOptions
        {
            StorePath = Path.Combine(_dir, "alerts.db"),
            RunConnectivityProbe = false,
        });
        await _service.StartAsync(CancellationToken.None);
    }

    public async ValueTask DisposeAsync()
    {
        await _service.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private static OutboxStorageState MemoryOnly(DateTimeOffset since) =>
        new(since, "Read-only file system : '/var/lib/edgetwin/outbox.db'", 1_796_451_146_156_001, 64L << 20, null, null);

    /// <summary>
    /// Regression: the SD card went read-only under the agent and no local alarm said so; the relay, the journal and the
    /// NOC's webhook stayed quiet while the gateway's buffer lived in RAM. Now the shipped rule fires critical with the
    /// outbox's own words, stays firing while it lasts (the feed repeats the event within the rule's clear_after), and
    /// clears at once when the outbox writes again.
    /// </summary>
    [Fact]
    public async Task Regression_a_gateway_whose_storage_went_read_only_raised_no_local_alarm()
    {
        OutboxStorageState? storage = OutboxStorageState.Healthy;
        var feed = new StorageAlertFeed(() => storage, _service.Handle, _clock);
        feed.Check();
        Assert.Empty(_service.Manager.Active());

        storage = MemoryOnly(_clock.GetUtcNow());
        feed.Check();
        await AlertingAgentSetup.Until(() => _service.Manager.Active().Any(a => a.State == AlertState.Firing), "the storage alert", 20);
        var alert = Assert.Single(_service.Manager.Active());
        Assert.Equal(("gateway-storage-failed", EventSeverity.Critical, "outbox"), (alert.Rule, alert.Severity, alert.Key));
        Assert.Contains("read-only", alert.Summary, StringComparison.Ordinal);
        Assert.Contains("in memory only", alert.Summary, StringComparison.Ordinal);

        // Hours later it is still firing: the rule's clear_after (5m) never ran out between the feed's repeats.
        for (var minute = 0; minute < 30; minute++)
        {
            _clock.Advance(StorageAlertFeed.CheckInterval * 4);
            feed.Check();
        }

        Assert.Equal(AlertState.Firing, Assert.Single(_service.Manager.Active()).State);

        // The storage works again (a remount, or the process restarted on a repaired disk): cleared at once.
        storage = OutboxStorageState.Healthy;
        feed.Check();
        await AlertingAgentSetup.Until(() => _service.Manager.Active().Count == 0, "the storage alert cleared", 20);
    }

    [Fact]
    public async Task Failing_writes_alarm_only_after_a_minute_of_failing()
    {
        OutboxStorageState? storage = new(null, null, 0, 0, _clock.GetUtcNow(), "Input/output error : '/var/lib/edgetwin/outbox-log.db'");
        var feed = new StorageAlertFeed(() => storage, _service.Handle, _clock);
        feed.Check();
        _clock.Advance(TimeSpan.FromSeconds(45));
        feed.Check();
        await Task.Delay(200, Ct);
        Assert.Empty(_service.Manager.Active()); // a retried, transient failure is not an alarm

        _clock.Advance(TimeSpan.FromSeconds(20));
        feed.Check();
        await AlertingAgentSetup.Until(() => _service.Manager.Active().Any(a => a.State == AlertState.Firing), "the storage alert", 20);
        Assert.Contains("cannot write", Assert.Single(_service.Manager.Active()).Summary, StringComparison.Ordinal);
    }

    /// <summary>
    /// Regression: while the outbox could not write, <c>edgetwin status</c> said "0 entries … nothing unsent" and exited
    /// 0, from the last figures committed before the failure. Now it names the state and exits 1.
    /// </summary>
    [Fact]
    public async Task Regression_status_said_nothing_unsent_and_healthy_while_the_outbox_could_not_write()
    {
        await using var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = Path.Combine(_dir, "outbox.db") }, cancellationToken: Ct);
        outbox.RegisterUplink("mqtt");
        var since = _clock.GetUtcNow();
        var storage = MemoryOnly(since);
        var status = new OutboxStatus(() => outbox.GetStats() with { Storage = storage }, 512L << 20, TimeSpan.FromDays(7), _clock, diskFree: () => 100L << 20);
        var socket = Path.Combine(_dir, "alerts.sock");
        await using var server = new AlertControlServer(_service, socket) { StatusWriter = status.Write };
        server.Start();
        _service.Connectivity.Observe(true, true);

        var (exit, output, error) = await InProcessCli.RunAsync("status", "--socket", socket);
        Assert.True(exit == 1, output + error);
        Assert.Contains($"IN MEMORY ONLY since {since.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z: the outbox's file system turned read-only; at most 64.0 MiB kept", output, StringComparison.Ordinal);
        Assert.Contains("the outbox's file system turned read-only at", error, StringComparison.Ordinal);
        Assert.Contains("check dmesg, reboot to fsck it, or replace it", error, StringComparison.Ordinal);
        Assert.DoesNotContain("the disk fills first", error, StringComparison.Ordinal); // the disk is not written: its size bounds nothing now

        (exit, output, _) = await InProcessCli.RunAsync("status", "--socket", socket, "--json");
        Assert.Equal(1, exit);
        using (var doc = JsonDocument.Parse(output))
        {
            var box = doc.RootElement.GetProperty("outbox");
            Assert.Equal(64L << 20, box.GetProperty("memory_budget_bytes").GetInt64());
            Assert.Equal(1_796_451_146_156_001, box.GetProperty("first_seq_in_memory").GetInt64());
            Assert.Equal(JsonValueKind.Null, box.GetProperty("storage_failing_since").ValueKind);
        }

        storage = new OutboxStorageState(null, null, 0, 0, since, "Input/output error : '/var/lib/edgetwin/outbox-log.db'");
        (exit, output, error) = await InProcessCli.RunAsync("status", "--socket", socket);
        Assert.Equal(1, exit);
        Assert.Contains("WRITES FAIL since", output, StringComparison.Ordinal);
        Assert.Contains("the outbox cannot write since", error, StringComparison.Ordinal);
        Assert.Contains("Input/output error", error, StringComparison.Ordinal);
    }
}
