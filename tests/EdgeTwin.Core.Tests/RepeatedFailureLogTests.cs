using EdgeTwin.Core;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Core.Tests;

/// <summary>
/// The shared rate limit as the state-file stages use it (first line only, then a summary per 5 min or none); the
/// uplinks' use (five lines first) is tested in EdgeTwin.Uplink.Tests (RepeatedFailureLogTests).
/// </summary>
public sealed class RepeatedFailureLogTests
{
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 12, 5, 8, 0, 0, TimeSpan.Zero));

    [Fact]
    public void A_failure_every_10_s_for_an_hour_gives_the_first_line_and_one_summary_per_5_min()
    {
        var log = new RepeatedFailureLog(_clock, logFirst: 1, every: TimeSpan.FromMinutes(5));
        var lines = new List<FailureLine>();
        for (var i = 0; i < 360; i++)
        {
            lines.Add(log.Failed("Read-only file system"));
            _clock.Advance(TimeSpan.FromSeconds(10));
        }

        var logged = lines.Where(l => l.Kind == FailureLineKind.Log).ToList();
        Assert.Equal(12, logged.Count); // the first and one at 5, 10, …, 55 min
        Assert.True(logged[0].NewReason);
        Assert.All(logged.Skip(1), l => Assert.False(l.NewReason));
        Assert.Equal(331, logged[^1].Failures);
        Assert.Equal(29, logged[^1].Unlogged);
        Assert.Equal(TimeSpan.FromMinutes(55), logged[^1].Down);
        Assert.Equal(new DateTimeOffset(2026, 12, 5, 8, 0, 0, TimeSpan.Zero), log.Since); // the first line's time, for the summaries

        Assert.Equal((360, TimeSpan.FromHours(1)), log.Succeeded());
        Assert.Null(log.Succeeded());
        Assert.True(log.Failed("Read-only file system").NewReason);
    }

    [Fact]
    public void A_new_cause_is_a_full_line_at_once_and_its_stack_is_given_once()
    {
        var log = new RepeatedFailureLog(_clock, logFirst: 1, every: TimeSpan.MaxValue);
        var readOnly = new IOException("Read-only file system", StorageErrors.ReadOnlyFileSystem);
        var full = new IOException("No space left on device", StorageErrors.NoSpace);

        Assert.Equal(FailureLineKind.Log, log.Failed("Read-only file system").Kind);
        Assert.Same(readOnly, log.StackOnce(readOnly));
        _clock.Advance(TimeSpan.FromDays(1));
        Assert.NotEqual(FailureLineKind.Log, log.Failed("Read-only file system").Kind); // no summaries with MaxValue
        var other = log.Failed("No space left on device");
        Assert.Equal(FailureLineKind.Log, other.Kind);
        Assert.True(other.NewReason);
        Assert.Same(full, log.StackOnce(full));
        Assert.True(log.Failed("Read-only file system").NewReason);
        Assert.Null(log.StackOnce(readOnly));
    }
}
