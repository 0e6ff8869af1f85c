using EdgeTwin.Core;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Tests.Support;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Delivery;

public sealed class RepeatedFailureLogTests
{
    [Fact]
    public void The_first_five_failures_are_logged_then_one_line_per_five_minutes_with_the_count_held_back()
    {
        var time = new FakeTimeProvider();
        var log = new RepeatedFailureLog(time);
        var kinds = new List<FailureLineKind>();
        for (var i = 0; i < 7; i++)
        {
            kinds.Add(log.Failed("connection refused").Kind);
            time.Advance(TimeSpan.FromSeconds(15));
        }

        Assert.Equal([.. Enumerable.Repeat(FailureLineKind.Log, 5), FailureLineKind.QuietFromNow, FailureLineKind.None], kinds);

        // Last line at the 5th failure (60 s); 5 minutes after it the next one carries what was held back.
        time.Advance(TimeSpan.FromSeconds(255));
        var line = log.Failed("connection refused");
        Assert.Equal(FailureLineKind.Log, line.Kind);
        Assert.Equal(8, line.Failures);
        Assert.Equal(2, line.Unlogged);
        Assert.Equal(TimeSpan.FromSeconds(360), line.Down);
        Assert.Equal(FailureLineKind.None, log.Failed("connection refused").Kind); // the quiet notice is said once an outage
    }

    [Fact]
    public void A_new_reason_is_logged_at_once()
    {
        var time = new FakeTimeProvider();
        var log = new RepeatedFailureLog(time);
        for (var i = 0; i < 8; i++)
        {
            log.Failed("connection refused");
        }

        var line = log.Failed("the broker certificate expired");
        Assert.Equal(FailureLineKind.Log, line.Kind);
        Assert.Equal(3, line.Unlogged); // the 6th to 8th
    }

    [Fact]
    public void A_success_ends_the_outage_and_the_next_one_is_logged_from_its_first_failure()
    {
        var time = new FakeTimeProvider();
        var log = new RepeatedFailureLog(time);
        Assert.Null(log.Succeeded());
        for (var i = 0; i < 9; i++)
        {
            log.Failed("connection refused");
            time.Advance(TimeSpan.FromSeconds(10));
        }

        Assert.Equal((9, TimeSpan.FromSeconds(90)), log.Succeeded());
        Assert.Null(log.Succeeded());
        Assert.Equal(FailureLineKind.Log, log.Failed("connection refused").Kind);
        Assert.Equal(1, log.Failures);
    }

    [Fact]
    public async Task Regression_a_broker_down_for_days_wrote_a_warning_per_retry()
    {
        // Four warnings a minute per uplink for as long as the broker was gone. Here a clock 600 times faster than real
        // time: the pump retries every 15 "s" as in production, and 5 "min" pass in half a second.
        await using var outbox = new TestOutbox();
        var log = new RecordingLogger();
        await using var broker = await Mosquitto.StartAsync();
        await broker.StopAsync(); // its port refuses connections until it is back
        var port = broker.Port;
        var time = new FastTime(600);
        var uplink = new MqttUplink(Options(port), outbox, log, time: time);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var run = uplink.RunAsync(cts.Token);

        await Until(() => log.Lines.Any(l => l.Message.Contains("still cannot connect", StringComparison.Ordinal)), "a rate-limited line");
        var upToIt = log.Lines.TakeWhile(l => !l.Message.Contains("still cannot connect", StringComparison.Ordinal)).ToList();
        Assert.Equal(5, upToIt.Count(l => l.Level == LogLevel.Warning && l.Message.Contains("could not connect", StringComparison.Ordinal)));
        Assert.Single(upToIt, l => l.Level == LogLevel.Information && l.Message.Contains("are logged once every", StringComparison.Ordinal));
        var still = log.Lines.First(l => l.Message.Contains("still cannot connect", StringComparison.Ordinal));
        // At 600× a scheduling delay of 0.1 s is a fake minute: on a loaded CI machine the line came at "down 6m …". Not
        // before the 5 minutes between lines, whenever after.
        var stillMatch = System.Text.RegularExpressions.Regex.Match(still.Message.ToLowerInvariant(), @"\(attempt \d+, down (?:(\d+)m \d+s|\d+h \d+m), \d+ failed attempts not logged since the last line\): connection refused");
        Assert.True(stillMatch.Success, still.Message);
        Assert.True(!stillMatch.Groups[1].Success || int.Parse(stillMatch.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= 5, still.Message);

        // The broker comes up on that port: one line says how long the uplink was down.
        await broker.StartAsync();
        await Until(() => log.Lines.Any(l => l.Message.Contains("again after", StringComparison.Ordinal)), "the reconnect line");
        Assert.Matches(@"reached mqtt://127\.0\.0\.1:\d+ again after \d+ failed connects over ", log.Lines.First(l => l.Message.Contains("again after", StringComparison.Ordinal)).Message);
        await cts.CancelAsync();
        await run;
    }

    private static async Task Until(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(40);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for " + what);
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
    }

    /// <summary>The system clock, <paramref name="factor"/> times faster: timestamps run ahead and timers fire early.</summary>
    private sealed class FastTime(double factor) : TimeProvider
    {
        private readonly long _origin = System.GetTimestamp();

        public override long GetTimestamp() => _origin + (long)((System.GetTimestamp() - _origin) * factor);

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            System.CreateTimer(callback, state, Scale(dueTime), Scale(period));

        private TimeSpan Scale(TimeSpan span) => span == Timeout.InfiniteTimeSpan ? span : span / factor;
    }
}
