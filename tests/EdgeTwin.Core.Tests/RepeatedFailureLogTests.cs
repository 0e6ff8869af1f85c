using EdgeTwin.Core;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Core.Tests;

public sealed class RepeatedFailureLogTests
{
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 12, 5, 8, 0, 0, TimeSpan.Zero));

    [Fact]
    public void A_failure_every_10_s_for_an_hour_gives_the_first_line_and_one_summary_per_5_min()
    {
        var log = new RepeatedFailureLog(_clock, TimeSpan.FromMinutes(5));
        var verdicts = new List<FailureVerdict>();
        for (var i = 0; i < 360; i++)
        {
            verdicts.Add(log.Failed("Read-only file system"));
            _clock.Advance(TimeSpan.FromSeconds(10));
        }

        Assert.Equal(FailureVerdict.First, verdicts[0]);
        Assert.Equal(11, verdicts.Count(v => v == FailureVerdict.StillFailing));
        Assert.Equal(348, verdicts.Count(v => v == FailureVerdict.Quiet));
        Assert.Equal(360, log.Attempts);
        Assert.Equal(new DateTimeOffset(2026, 12, 5, 8, 0, 0, TimeSpan.Zero), log.Since);

        Assert.True(log.Succeeded(out var failedFor, out var attempts));
        Assert.Equal(TimeSpan.FromHours(1), failedFor);
        Assert.Equal(360, attempts);
        Assert.False(log.Succeeded(out _, out _));
        Assert.Equal(FailureVerdict.First, log.Failed("Read-only file system"));
    }

    [Fact]
    public void A_new_cause_is_logged_at_once_and_its_stack_once()
    {
        var log = new RepeatedFailureLog(_clock, TimeSpan.FromMinutes(5));
        var readOnly = new IOException("Read-only file system", StorageErrors.ReadOnlyFileSystem);
        var full = new IOException("No space left on device", StorageErrors.NoSpace);

        Assert.Equal(FailureVerdict.First, log.Failed("Read-only file system"));
        Assert.Same(readOnly, log.StackOnce(readOnly));
        _clock.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(FailureVerdict.Quiet, log.Failed("Read-only file system"));
        Assert.Equal(FailureVerdict.NewCause, log.Failed("No space left on device"));
        Assert.Same(full, log.StackOnce(full));
        Assert.Equal(FailureVerdict.NewCause, log.Failed("Read-only file system"));
        Assert.Null(log.StackOnce(readOnly));
        Assert.Equal(4, log.Attempts);
    }
}
