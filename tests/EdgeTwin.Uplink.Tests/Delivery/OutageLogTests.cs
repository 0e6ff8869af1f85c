using System.Text.RegularExpressions;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Tests.Support;
using Microsoft.Extensions.Logging;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Delivery;

/// <summary>Keeps every log line with its level and exception.</summary>
internal sealed class RecordingLogger : ILogger
{
    private readonly Lock _gate = new();
    private readonly List<(LogLevel Level, string Message, Exception? Exception)> _lines = [];

    public IReadOnlyList<(LogLevel Level, string Message, Exception? Exception)> Lines
    {
        get
        {
            lock (_gate)
            {
                return [.. _lines];
            }
        }
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_gate)
        {
            _lines.Add((logLevel, formatter(state, exception), exception));
        }
    }
}

/// <summary>A peer whose connect fails with a bug, not with the network.</summary>
internal sealed class BrokenTransport : IUplinkTransport
{
    public string Name => "broken";

    public string Peer => "broken://peer";

    public Task<IUplinkSession> ConnectAsync(CancellationToken cancellationToken) =>
        throw new InvalidOperationException("a bug in the transport");
}

public sealed partial class OutageLogTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(30);

    [GeneratedRegex(@"\d\d:\d\d:\d\d\.\d{7}")]
    private static partial Regex RawTimeSpan();

    private static async Task UntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Long;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for " + what);
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
    }

    [Fact]
    public async Task Regression_replaying_n_backlog_entries_counted_the_sequence_span_not_the_entries()
    {
        // The robustness audit: "Outbox … opened: 5731 entries held", then "replaying 12661 backlog entries" — the span
        // of sequences, with the condensed and dropped ones in it. Here every other entry is gone, as condensation leaves it.
        await using var broker = await Mosquitto.StartAsync();
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(1, 100).Select(i => Record("pdu1", i))], TestContext.Current.CancellationToken);
        outbox.Remove(e => e.Sequence % 2 == 0);
        var log = new RecordingLogger();
        var uplink = new MqttUplink(Options(broker.Port), outbox, log);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);

        await UntilAsync(() => log.Lines.Any(l => l.Message.Contains(" connected to ", StringComparison.Ordinal)), "the connect line");
        await cts.CancelAsync();
        await run;

        var connected = log.Lines.First(l => l.Message.Contains(" connected to ", StringComparison.Ordinal)).Message;
        Assert.EndsWith("; replaying its backlog after sequence 0 up to 99 (50 entries held in the outbox)", connected, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_refused_connect_logged_a_stack_trace_and_a_raw_TimeSpan_every_retry()
    {
        await using var outbox = new TestOutbox();
        var log = new RecordingLogger();
        var port = FreePort.Next(); // nobody listens: the broker of an outage, connection refused
        var uplink = new MqttUplink(Options(port), outbox, log);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);

        await UntilAsync(() => log.Lines.Count(l => l.Level == LogLevel.Warning) >= 2, "two failed connects");
        await cts.CancelAsync();
        await run;

        var warnings = log.Lines.Where(l => l.Level == LogLevel.Warning).ToList();
        Assert.All(warnings, w =>
        {
            Assert.Null(w.Exception); // no trace in the operator's log
            Assert.Contains("refused", w.Message, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotMatch(RawTimeSpan(), w.Message);
            Assert.Matches(@"retrying in \d+(\.\d)?(ms|s)$", w.Message);
        });

        // The full exception is still there for whoever turns Debug on.
        Assert.Contains(log.Lines, l => l.Level == LogLevel.Debug && l.Exception is not null);
    }

    [Fact]
    public async Task An_unexpected_connect_failure_keeps_its_stack_trace()
    {
        await using var outbox = new TestOutbox();
        var log = new RecordingLogger();
        var options = new DeliveryOptions { ReconnectInitialDelay = TimeSpan.FromMilliseconds(10), ReconnectMaxDelay = TimeSpan.FromMilliseconds(50) };
        var pump = new UplinkPump(outbox, new BrokenTransport(), options, TimeProvider.System, log, new UplinkMetrics(), new EdgeTwin.Uplink.Payloads.UplinkIdentity("site1", "gw1"));
        using var cts = new CancellationTokenSource();
        var run = pump.RunAsync(cts.Token);

        await UntilAsync(() => log.Lines.Any(l => l.Level == LogLevel.Warning), "the failed connect");
        await cts.CancelAsync();
        await run;

        var warning = log.Lines.First(l => l.Level == LogLevel.Warning);
        Assert.IsType<InvalidOperationException>(warning.Exception);
        Assert.DoesNotMatch(RawTimeSpan(), warning.Message);
    }
}
