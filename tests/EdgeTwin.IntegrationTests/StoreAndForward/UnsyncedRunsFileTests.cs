using EdgeTwin.Agent.Hosting;
using EdgeTwin.Tests.Shared;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.StoreAndForward;

/// <summary><c>clock-unsynced.json</c>: what a run leaves for the next about the entries it stamped before the sync.</summary>
public sealed class UnsyncedRunsFileTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("edgetwin-unsynced-");
    private readonly ListLogger _log = new();

    private string FilePath => Path.Combine(_dir.FullName, UnsyncedRunsFile.FileName);

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public void A_run_left_open_is_read_back_and_ended_below_the_next_runs_first_sequence()
    {
        new UnsyncedRunsFile(FilePath, _log).Open(new SequenceRange(1001, null, "boot-1", -18_000_000));

        var next = new UnsyncedRunsFile(FilePath, _log);
        Assert.Equal([new SequenceRange(1001, null, "boot-1", -18_000_000)], next.Ranges);
        next.CloseEarlier(1051);
        Assert.Equal([new SequenceRange(1001, 1050, "boot-1", -18_000_000)], new UnsyncedRunsFile(FilePath, _log).Ranges);
    }

    [Fact]
    public void Ranges_of_one_clock_that_touch_become_one_and_those_of_two_boots_stay_apart()
    {
        var file = new UnsyncedRunsFile(FilePath, _log);
        file.Open(new SequenceRange(1001, null, "boot-1", -18_000_000));
        file.CloseEarlier(1051);
        file.Open(new SequenceRange(1051, null, "boot-1", -18_000_400)); // a restart: same clock (within 2 s)
        file.CloseEarlier(1101);
        file.Open(new SequenceRange(1101, null, "boot-2", -30_000_000)); // a power cut: fake-hwclock's time again
        file.CloseEarlier(1151);

        Assert.Equal([new SequenceRange(1001, 1100, "boot-1", -18_000_000), new SequenceRange(1101, 1150, "boot-2", -30_000_000)], file.Ranges);
    }

    [Fact]
    public void A_new_file_numbered_lower_leaves_the_earlier_runs_end_unknown()
    {
        var file = new UnsyncedRunsFile(FilePath, _log);
        file.Open(new SequenceRange(5001, null, "boot-1", 0));
        file.CloseEarlier(2001); // the outbox file was replaced and numbered from a clock set back

        Assert.Equal("5001-", Assert.Single(file.Ranges).ToString());
    }

    [Fact]
    public void Beyond_the_limit_the_two_oldest_ranges_are_joined_and_their_clock_forgotten()
    {
        var file = new UnsyncedRunsFile(FilePath, _log);
        for (var run = 0; run <= UnsyncedRunsFile.MaxRanges; run++)
        {
            var first = 1_000_000L * (run + 1);
            file.Open(new SequenceRange(first, null, $"boot-{run}", run));
            file.CloseEarlier(first + 10);
        }

        var ranges = file.Ranges;
        Assert.Equal(UnsyncedRunsFile.MaxRanges, ranges.Count);
        Assert.Equal(new SequenceRange(1_000_000, 2_000_009), ranges[0]);
        Assert.Equal(new SequenceRange(3_000_000, 3_000_009, "boot-2", 2), ranges[1]);
    }

    [Fact]
    public void A_damaged_file_is_logged_taken_as_empty_and_replaced()
    {
        File.WriteAllText(FilePath, "{\"v\":1,\"ranges\":[{\"first\":"); // a torn write of an older build
        var file = new UnsyncedRunsFile(FilePath, _log);

        Assert.Empty(file.Ranges);
        Assert.Contains(_log.At(LogLevel.Error), m => m.Contains("cannot be read", StringComparison.Ordinal));
        file.Open(new SequenceRange(7001, null, "boot-1", 0));
        Assert.Equal([new SequenceRange(7001, null, "boot-1", 0)], new UnsyncedRunsFile(FilePath, _log).Ranges);
    }

    [Fact]
    public void The_named_ranges_leave_the_file_and_it_goes_when_nothing_is_left()
    {
        var file = new UnsyncedRunsFile(FilePath, _log);
        file.Open(new SequenceRange(1001, null, "boot-1", 0));
        file.CloseEarlier(1051);
        file.Open(new SequenceRange(1051, null, "boot-2", 5));
        var earlier = file.Ranges[0];
        file.Close(1051, new SequenceRange(1051, 1090, "boot-2", 5), nextOpen: null); // the step named this run's entries

        file.Remove([earlier, new SequenceRange(1051, 1090, "boot-2", 5)]);

        Assert.Empty(file.Ranges);
        Assert.False(File.Exists(FilePath));
    }
}
