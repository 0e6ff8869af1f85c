using System.Reflection;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;

namespace EdgeTwin.Alerting.Tests.State;

/// <summary>
/// The harness's fake clock ran the service's tick on whichever thread read the time first: a thread that read it under
/// the manager's lock while <see cref="Harness.Advance"/> was moving the time took the tick over and deadlocked with the
/// next <see cref="Harness.Feed"/> (see <see cref="AdvancedClock"/>). Fills of a few thousand changes hung, no CPU.
/// </summary>
public sealed class FakeClockTickRegressionTests(ITestOutputHelper output)
{
    private const string Rules = """
        alerts:
          group_by: [rack]
          group_interval: 0s
          rules:
            - { name: inlet-hot, type: threshold, match: { metric: inlet }, above: 30, clear_below: 29, severity: critical }
            - { name: humid, type: threshold, match: { metric: humidity }, above: 90, severity: warning }
        """;

    [Fact]
    public async Task Regression_a_clock_read_under_the_managers_lock_took_the_tick_over_and_the_next_feed_deadlocked()
    {
        const int Racks = 5000;
        var h = await Harness.StartAsync(Rules);
        var stuck = false;
        try
        {
            // A thread that reads the clock under the manager's lock, as a sink's thread does when it marks an alert notified
            // (MarkNotified saves the alert's change times, read against the clock); here as often as it can.
            var gate = (Lock)typeof(AlertManager).GetField("_gate", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(h.Manager)!;
            using var stop = new CancellationTokenSource();
            var reads = 0L;
            var reader = Task.Run(
                () =>
                {
                    while (!stop.IsCancellationRequested)
                    {
                        lock (gate)
                        {
                            _ = h.Timers.GetTimestamp();
                        }

                        Interlocked.Increment(ref reads);
                        Thread.Yield();
                    }
                },
                CancellationToken.None);
            while (Interlocked.Read(ref reads) < 100)
            {
                await Task.Delay(1, TestContext.Current.CancellationToken);
            }

            var fill = Task.Run(
                () =>
                {
                    for (var i = 0; i < Racks; i++)
                    {
                        var s = h.Series($"rack-x{i:D4}", "inlet");
                        h.Feed(s, 35.5);
                        h.Advance(TimeSpan.FromSeconds(1));
                        h.Feed(s, 21.25);
                        h.Advance(TimeSpan.FromSeconds(1));
                    }
                },
                CancellationToken.None);
            try
            {
                await fill.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
            }
            catch (TimeoutException)
            {
                stuck = true;
                Assert.Fail($"{Racks * 2} raise/clear changes fed next to {reads} reads did not finish within 30 s: deadlocked");
            }
            finally
            {
                await stop.CancelAsync();
            }

            await reader.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
            output.WriteLine($"{Racks * 2} changes next to {reads} reads");
            Assert.Equal(Racks * 2, h.Manager.History(Racks * 4).Count(e => e.Rule == "inlet-hot"));
        }
        finally
        {
            // A deadlocked service cannot stop: left to the process (its threads are background threads).
            if (!stuck)
            {
                await h.DisposeAsync();
            }
        }
    }
}
