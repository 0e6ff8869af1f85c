using EdgeTwin.Simulator.Physics;

namespace EdgeTwin.Simulator;

/// <summary>
/// Drives a <see cref="SimulatedSite"/> from a <see cref="TimeProvider"/>: simulated time is the site's
/// start plus the elapsed wall time multiplied by <see cref="TimeScale"/>. Readers may call
/// <see cref="Sync"/> before reading so values are never older than their own request; the background
/// loop keeps the site moving when nobody reads.
/// </summary>
public sealed class SiteRunner
{
    private readonly TimeProvider _time;
    private readonly DateTimeOffset _wallStart;
    private readonly TimeSpan _tick;

    public SiteRunner(SimulatedSite site, TimeProvider time, double timeScale = 1, TimeSpan? tick = null)
    {
        ArgumentNullException.ThrowIfNull(site);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(timeScale);
        Site = site;
        _time = time;
        TimeScale = timeScale;
        _tick = tick ?? TimeSpan.FromMilliseconds(250);
        _wallStart = time.GetUtcNow();
    }

    public SimulatedSite Site { get; }

    /// <summary>Simulated seconds per wall-clock second.</summary>
    public double TimeScale { get; }

    /// <summary>The simulated time that corresponds to the provider's present time.</summary>
    public DateTimeOffset SimulatedNow => Site.Spec.Start + ((_time.GetUtcNow() - _wallStart) * TimeScale);

    /// <summary>Brings the site up to the present.</summary>
    public void Sync() => Site.AdvanceTo(SimulatedNow);

    /// <summary>Keeps the site up to the present until cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            Sync();
            try
            {
                await Task.Delay(_tick, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
