using System.Diagnostics.Metrics;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Samples;
using EdgeTwin.Outbox;
using EdgeTwin.Outbox.Summaries;
using EdgeTwin.Twin.Models;
using EdgeTwin.Uplink;
using EdgeTwin.Uplink.Kafka;
using EdgeTwin.Uplink.Mqtt;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.StoreAndForward;

/// <summary>Settings of the store-and-forward part that the site config does not carry.</summary>
public sealed record StoreAndForwardOptions
{
    /// <summary>Overrides <c>outbox.summary_window</c> (count, min, max, mean, last, stddev per series).</summary>
    public TimeSpan? SummaryWindow { get; init; }

    /// <summary>How often finished windows are closed and pending raw points sent.</summary>
    public TimeSpan FlushInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Overrides <c>outbox.path</c> (the demo and tests keep their outbox in a temporary directory).</summary>
    public string? OutboxPath { get; init; }

    /// <summary>Overrides the <c>uplinks:</c> section (the demo points MQTT at its embedded broker).</summary>
    public UplinksConfig? Uplinks { get; init; }

    /// <summary>At stop, how long the uplinks may deliver what the last flush appended (within the host's stop window).</summary>
    public TimeSpan StopDrain { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The agent's state directory: the outbox's directory (<see cref="OutboxPath"/> when given, else <c>outbox.path</c>),
    /// where the alert store, the thermal twin's state, the uplinks' session files and the SNMP rows are kept too. One
    /// derivation, so no part can keep its state beside a different outbox than the one in use.
    /// </summary>
    public static string StateDirectory(SiteConfig config, StoreAndForwardOptions? options)
    {
        ArgumentNullException.ThrowIfNull(config);
        return Path.GetDirectoryName(Path.GetFullPath(options?.OutboxPath ?? config.Outbox.Path)) ?? ".";
    }
}

/// <summary>
/// Owns the outbox and the uplinks for the agent's lifetime. It is a lifecycle service so that the outbox opens before
/// any hosted service starts (the pipeline's stages write into it) and closes only after every hosted service has
/// stopped (the agent's drain flushes the last summaries into it first); then the uplinks get the rest of the stop
/// window to deliver what is in flight, and the file is closed cleanly.
/// </summary>
public sealed partial class StoreAndForwardService : IHostedLifecycleService, IAsyncDisposable
{
    private readonly SiteConfig _config;
    private readonly StoreAndForwardOptions _options;
    private readonly SeriesRegistry _registry;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggers;
    private readonly IMeterFactory _meters;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly CancellationTokenSource _stoppingFeeder = new();
    private readonly List<(string Name, Task Run)> _running = [];
    private LiteDbOutbox? _outbox;
    private OutboxFeeder? _feeder;
    private readonly ModelCatalog? _catalog;
    private readonly EdgeTwin.Agent.Hosting.ClockStepWatcher? _clockSteps;
    private MqttUplink? _mqtt;
    private KafkaUplink? _kafka;
    private Fleet.GatewayFactsSource? _facts;
    private OutboxStatus? _status;
    private ITimer? _statusTimer;

    public StoreAndForwardService(
        SiteConfig config,
        StoreAndForwardOptions options,
        SeriesRegistry registry,
        TimeProvider time,
        ILoggerFactory loggers,
        IMeterFactory meters,
        ModelCatalog? catalog = null,
        EdgeTwin.Agent.Hosting.ClockStepWatcher? clockSteps = null)
    {
        _clockSteps = clockSteps;
        _catalog = catalog;
        _config = config;
        _options = options;
        _registry = registry;
        _time = time;
        _loggers = loggers;
        _meters = meters;
        _logger = loggers.CreateLogger<StoreAndForwardService>();
    }

    /// <summary>The pipeline's way into the outbox; available once the host has begun starting.</summary>
    public OutboxFeeder Feeder => _feeder ?? throw new InvalidOperationException("The outbox is not open yet: the host has not started.");

    /// <summary>The open outbox (stats for the demo view and tests).</summary>
    public LiteDbOutbox Outbox => _outbox ?? throw new InvalidOperationException("The outbox is not open yet: the host has not started.");

    /// <summary>The agent's writable state directory: the outbox's (set when the host begins starting).</summary>
    public string? StateDirectory { get; private set; }

    /// <summary>The outbox part of <c>edgetwin status</c> (the alert control socket's <c>status</c> op).</summary>
    public void WriteStatus(System.Text.Json.Utf8JsonWriter writer, ICollection<string> problems)
    {
        if (_status is { } status)
        {
            status.Write(writer, problems);
        }
        else
        {
            new OutboxStatus(() => null, 0, TimeSpan.Zero, _time).Write(writer, problems);
        }

        ClockStatus.Write(writer, EdgeTwin.Sensors.Host.KernelClock.Read, _clockSteps);
    }

    /// <summary>
    /// Ends the uplinks' reconnect backoff now (no effect on a connected one): the alerting's connectivity probe calls
    /// it when its target answers again after failing, so the site is back on the centre within a probe interval of its
    /// broker's return instead of after the rest of a backoff.
    /// </summary>
    public void WakeUplinks()
    {
        _mqtt?.WakeReconnect();
        _kafka?.WakeReconnect();
    }

    /// <summary>Acknowledged positions of the running uplinks, by name.</summary>
    public IReadOnlyDictionary<string, long> UplinkPositions => PerUplink(m => m.Position, k => k.Position);

    /// <summary>What each running uplink's peer refused for good since start, by name (for <c>edgetwin status</c>).</summary>
    public IReadOnlyDictionary<string, EdgeTwin.Uplink.Delivery.UplinkRejections> UplinkRejections => PerUplink(m => m.Rejections, k => k.Rejections);

    /// <summary>How often the MQTT broker gave this gateway's client id to another connection since start (a second gateway with this identity).</summary>
    public IReadOnlyDictionary<string, EdgeTwin.Uplink.Delivery.UplinkTakeovers> UplinkTakeovers => PerUplink(m => m.Takeovers, kafka: null);

    /// <summary>The Sparkplug primary host each running MQTT uplink waits for (with since when, while it waits); none without <c>sparkplug_primary_host_id</c>.</summary>
    public IReadOnlyDictionary<string, EdgeTwin.Uplink.Sparkplug.PrimaryHostWait> UplinkPrimaryHosts =>
        PerUplink(m => m.PrimaryHost, kafka: null).Where(p => p.Value is not null).ToDictionary(p => p.Key, p => p.Value!, StringComparer.Ordinal);

    /// <summary>The broker each running MQTT uplink has a session with now (<c>host:port</c>, one of <c>hosts:</c>), null while it has none.</summary>
    public IReadOnlyDictionary<string, string?> UplinkServers => PerUplink(m => m.Server, kafka: null);

    /// <summary>Bytes each running uplink sent since start, per kind, and its byte budget (for <c>edgetwin status</c>).</summary>
    public IReadOnlyDictionary<string, EdgeTwin.Uplink.Delivery.UplinkTrafficSnapshot> UplinkTraffic => PerUplink(m => m.Traffic, k => k.Traffic);

    /// <summary>One figure per running uplink, by its name (<c>mqtt</c>, <c>kafka</c>); a null reader leaves that uplink out.</summary>
    private Dictionary<string, T> PerUplink<T>(Func<MqttUplink, T> mqtt, Func<KafkaUplink, T>? kafka)
    {
        var figures = new Dictionary<string, T>(StringComparer.Ordinal);
        if (_mqtt is not null)
        {
            figures["mqtt"] = mqtt(_mqtt);
        }

        if (_kafka is not null && kafka is not null)
        {
            figures["kafka"] = kafka(_kafka);
        }

        return figures;
    }

    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        var path = Path.GetFullPath(_options.OutboxPath ?? _config.Outbox.Path);
        var stateDirectory = StoreAndForwardOptions.StateDirectory(_config, _options);
        StateDirectory = stateDirectory;
        var uplinks = _options.Uplinks ?? UplinksConfig.From(_config, stateDirectory);
        var identity = new Outbox.Summaries.UplinkIdentity(_config.Site.GatewayId, _config.Site.Id);
        var summaryWindow = _options.SummaryWindow ?? _config.Outbox.SummaryWindow;

        try
        {
            Directory.CreateDirectory(stateDirectory);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // .NET's own text named only the directory ("Could not find file '/proc/edgetwin'"), not the key to fix.
            var where = _options.OutboxPath is null ? $"outbox.path{(_config.SourcePath is { } file ? " in " + file : "")}" : "the outbox path given";
            throw new IOException($"cannot create the outbox's directory {stateDirectory} ({where}): {ex.Message}", ex);
        }

        _outbox = await LiteDbOutbox.OpenAsync(
            new LiteDbOutboxOptions
            {
                Path = path,
                DiskBudgetBytes = (long)_config.Outbox.DiskBudgetMb * 1024 * 1024,
                MemoryBudgetBytes = (long)_config.Outbox.MemoryBudgetMb * 1024 * 1024,
                MaxAge = _config.Outbox.MaxAge,
                Identity = identity,
                CondenseWindow = summaryWindow,
                // Acknowledgements ride on the samples' commits instead of each fsyncing its own (flash wear).
                AckCommitInterval = LiteDbOutboxOptions.AckCommitIntervalFor(_config.Outbox.CommitInterval),
            },
            _loggers.CreateLogger<LiteDbOutbox>(),
            _meters,
            _time,
            cancellationToken).ConfigureAwait(false);

        var opened = _outbox;
        _status = new OutboxStatus(() => Volatile.Read(ref _outbox) is null ? null : opened.GetStats(), (long)_config.Outbox.DiskBudgetMb * 1024 * 1024, _config.Outbox.MaxAge, _time, diskFree: () => OutboxStatus.FreeBytes(path), rejections: () => UplinkRejections, takeovers: () => UplinkTakeovers, traffic: () => UplinkTraffic, primaryHosts: () => UplinkPrimaryHosts, servers: () => UplinkServers);
        _status.Record();

        var summarizer = new SeriesSummarizer(_registry, identity, new SummaryOptions { Window = summaryWindow, StartedAtMs = _time.GetUtcNow().ToUnixTimeMilliseconds() }, RawPolicyOf);
        _feeder = new OutboxFeeder(_outbox, summarizer, _registry, identity, _time, _loggers.CreateLogger<OutboxFeeder>(), checkpointInterval: _config.Outbox.CheckpointInterval, commitInterval: _config.Outbox.CommitInterval);

        // Before any sample: what a killed run had summarised in windows it never closed goes out first.
        await _feeder.RecoverAsync(cancellationToken).ConfigureAwait(false);

        // An uplink removed from the config would otherwise hold every entry back forever.
        var configured = new[] { uplinks.Mqtt?.Name, uplinks.Kafka?.Name };
        foreach (var stale in _outbox.GetStats().UplinkPositions.Keys.Where(k => !configured.Contains(k)).ToList())
        {
            await _outbox.RemoveUplinkAsync(stale, cancellationToken).ConfigureAwait(false);
            LogUplinkRemoved(stale);
        }

        var metrics = new UplinkMetrics();
        if (uplinks.Mqtt is { } mqtt)
        {
            _outbox.RegisterUplink(mqtt.Name);
            _facts ??= new Fleet.GatewayFactsSource(_config, _catalog);
            _mqtt = new MqttUplink(mqtt with { Facts = _facts.Current, FactsRevision = () => _facts.Revision, SparkplugSeries = SparkplugSeries, SparkplugDevices = SparkplugDevices }, _outbox, _loggers.CreateLogger<MqttUplink>(), metrics, _time);
        }

        if (uplinks.Kafka is { } kafka)
        {
            _outbox.RegisterUplink(kafka.Name);
            _facts ??= new Fleet.GatewayFactsSource(_config, _catalog);
            _kafka = new KafkaUplink(kafka with { Facts = _facts.Current, FactsRevision = () => _facts.Revision }, _outbox, _loggers.CreateLogger<KafkaUplink>(), metrics, _time);
        }

        var waiting = _outbox.GetStats().Depth;
        LogOpened(path, waiting, _mqtt is null ? "" : "mqtt ", _kafka is null ? "" : "kafka");
        if (_mqtt is null && _kafka is null)
        {
            LogNoUplinks(path);
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (_status is { } status)
        {
            _statusTimer = _time.CreateTimer(_ => status.Record(), null, OutboxStatus.SampleInterval, OutboxStatus.SampleInterval);
        }

        _running.Add(("summaries", Task.Run(() => Feeder.RunAsync(_options.FlushInterval, _stoppingFeeder.Token), CancellationToken.None)));
        if (_mqtt is { } mqtt)
        {
            _running.Add(("mqtt", Task.Run(() => mqtt.RunAsync(_stopping.Token), CancellationToken.None)));
        }

        if (_kafka is { } kafka)
        {
            _running.Add(("kafka", Task.Run(() => kafka.RunAsync(_stopping.Token), CancellationToken.None)));
        }

        return Task.CompletedTask;
    }

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    // The work stops in StoppedAsync, after the agent has drained its stages into the feeder.
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StoppedAsync(CancellationToken cancellationToken)
    {
        // The feeder's last flush appends the open windows; then the uplinks may deliver them before they are stopped
        // (cancelling both at once left a stop's last summaries in the file until the next start).
        await _stoppingFeeder.CancelAsync().ConfigureAwait(false);
        if (_running.Count > 0)
        {
            await StopPart(_running[0].Name, _running[0].Run, cancellationToken).ConfigureAwait(false);
            _running.RemoveAt(0);
        }

        await DrainUplinksAsync(cancellationToken).ConfigureAwait(false);
        await _stopping.CancelAsync().ConfigureAwait(false);
        foreach (var (name, run) in _running)
        {
            await StopPart(name, run, cancellationToken).ConfigureAwait(false);
        }

        _running.Clear();
        await DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Until every running uplink has acknowledged the outbox's last entry, at most <see cref="StoreAndForwardOptions.StopDrain"/>
    /// and within the host's stop window; an uplink that acknowledges nothing for a second is not waited for (it is down).
    /// </summary>
    private async Task DrainUplinksAsync(CancellationToken cancellationToken)
    {
        if (_outbox is null || (_mqtt is null && _kafka is null) || _options.StopDrain <= TimeSpan.Zero)
        {
            return;
        }

        // Real time, not the agent's clock: the host's stop window is real, and a test clock would never move here.
        var last = _outbox.GetStats().LastSequence;
        var elapsed = System.Diagnostics.Stopwatch.StartNew();
        var sinceMove = System.Diagnostics.Stopwatch.StartNew();
        var before = UplinkPositions.Values.Sum();
        while (!cancellationToken.IsCancellationRequested && elapsed.Elapsed < _options.StopDrain)
        {
            var positions = UplinkPositions.Values;
            if (positions.All(p => p >= last))
            {
                LogDrained(last, elapsed.Elapsed.TotalMilliseconds);
                return;
            }

            var now = positions.Sum();
            if (now != before)
            {
                before = now;
                sinceMove.Restart();
            }
            else if (sinceMove.Elapsed > TimeSpan.FromSeconds(1))
            {
                break;
            }

            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(20), cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        LogNotDrained(elapsed.Elapsed.TotalMilliseconds);
    }

    private async Task StopPart(string name, Task run, CancellationToken cancellationToken)
    {
        try
        {
            await run.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            LogStopCutShort(name);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogStopFailed(ex, name);
        }
        catch (OperationCanceledException)
        {
            // The loop ended through its own token: a normal stop.
        }
    }

    public async ValueTask DisposeAsync()
    {
        _statusTimer?.Dispose();
        _statusTimer = null;
        _feeder?.Dispose();
        _feeder = null;
        _facts?.Dispose();
        _facts = null;
        if (_outbox is { } outbox)
        {
            _outbox = null;
            var stats = outbox.GetStats();
            await outbox.DisposeAsync().ConfigureAwait(false);
            if (stats.Storage.MemoryOnlySince is { } since)
            {
                // "Closed cleanly … waiting" would promise them to the next start; in memory they end with the process.
                LogClosedInMemory(since, stats.Depth, stats.Storage.FirstSequenceInMemory);
            }
            else
            {
                LogClosed(stats.Depth);
            }
        }

        _stopping.Dispose();
        _stoppingFeeder.Dispose();
    }

    /// <summary>The series polled so far, for the Sparkplug DBIRTHs (Uplink README, "Sparkplug B", births).</summary>
    /// <summary>The devices of the config the agent runs and those its series registry has (any source), for the Sparkplug DDEATH of a dropped one.</summary>
    private IReadOnlyCollection<string> SparkplugDevices() =>
        [.. _config.Devices.Select(d => d.Id).Concat(_registry.Snapshot().Select(s => s.Descriptor.DeviceId)).Distinct(StringComparer.Ordinal)];

    private IReadOnlyList<EdgeTwin.Uplink.Sparkplug.SparkplugSeries> SparkplugSeries() =>
        [.. _registry.Snapshot().Select(s => new EdgeTwin.Uplink.Sparkplug.SparkplugSeries(s.Descriptor.DeviceId, s.Descriptor.Key, s.Descriptor.Unit, RawPolicyOf(s.Descriptor) is not null))];

    private RawPolicy? RawPolicyOf(SeriesDescriptor series)
    {
        if (_config.FindDevice(series.DeviceId) is not { } device)
        {
            return null;
        }

        var metric = _config.ProfileOf(device).AllMetrics.FirstOrDefault(m => string.Equals(m.Name, series.Metric, StringComparison.Ordinal));
        return metric is { Raw: true } ? new RawPolicy(metric.Deadband ?? 0) : null;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Outbox {Path} open with {Depth} entries waiting; uplinks: {Mqtt}{Kafka}")]
    private partial void LogOpened(string path, long depth, string mqtt, string kafka);

    [LoggerMessage(Level = LogLevel.Warning, Message = "No uplink is configured (uplinks: has neither mqtt nor kafka): nothing leaves this gateway; everything stays in {Path} until its disk budget condenses or drops it")]
    private partial void LogNoUplinks(string path);

        [LoggerMessage(Level = LogLevel.Warning, Message = "Uplink {Name} is no longer configured: the outbox stops keeping entries for it")]
    private partial void LogUplinkRemoved(string name);

    [LoggerMessage(Level = LogLevel.Information, Message = "Uplinks delivered the outbox up to its last entry {Sequence} before stopping ({Ms:F0} ms)")]
    private partial void LogDrained(long sequence, double ms);

    [LoggerMessage(Level = LogLevel.Information, Message = "Uplinks stopped after {Ms:F0} ms of delivering at stop; the rest stays in the outbox for the next start")]
    private partial void LogNotDrained(double ms);

    [LoggerMessage(Level = LogLevel.Information, Message = "Outbox closed cleanly with {Depth} entries waiting for the uplinks")]
    private partial void LogClosed(long depth);

    [LoggerMessage(Level = LogLevel.Error, Message = "Outbox closed while in memory only (its file system read-only since {Since:u}): {Depth} entries not delivered are lost with this stop; the file keeps what it held before (sequences below {FirstInMemory})")]
    private partial void LogClosedInMemory(DateTimeOffset since, long depth, long firstInMemory);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stop window ran out while {Part} was finishing; what it had not delivered stays in the outbox")]
    private partial void LogStopCutShort(string part);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Part} failed while stopping")]
    private partial void LogStopFailed(Exception exception, string part);
}
