using EdgeTwin.Simulator.Physics;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Simulator.Tests;

public sealed class SiteRunnerTests
{
    [Fact]
    public void Simulated_time_follows_the_time_provider_times_the_scale()
    {
        var site = Physics.TestSites.Generated();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero));
        var runner = new SiteRunner(site, time, timeScale: 60);

        time.Advance(TimeSpan.FromSeconds(10));
        runner.Sync();

        Assert.Equal(site.Spec.Start + TimeSpan.FromMinutes(10), site.Now);
    }

    [Fact]
    public async Task The_loop_keeps_the_site_moving_until_cancelled()
    {
        var site = Physics.TestSites.Generated();
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        var runner = new SiteRunner(site, time, tick: TimeSpan.FromSeconds(1));
        using var cts = new CancellationTokenSource();
        var loop = runner.RunAsync(cts.Token);

        for (var i = 0; i < 5; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
        }

        // The loop syncs after each tick; wait (without sleeping a fixed time) until it has caught up.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (site.Now < site.Spec.Start + TimeSpan.FromSeconds(4) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }

        await cts.CancelAsync();
        await loop.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        Assert.True(site.Now >= site.Spec.Start + TimeSpan.FromSeconds(4), $"site at {site.Elapsed}");
        Assert.True(site.Now <= site.Spec.Start + TimeSpan.FromSeconds(5));
    }
}
