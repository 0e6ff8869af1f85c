using System.Text;
using EdgeTwin.Sensors.Host;

namespace EdgeTwin.Sensors.Tests.Host;

public sealed class ProcTextTests
{
    [Fact]
    public void Meminfo_fields_are_found_only_at_the_start_of_a_line()
    {
        var text = "MemTotal:        948304 kB\nMemFree:          41260 kB\nXMemAvailable:  1 kB\nMemAvailable:     412560 kB\n"u8;

        Assert.True(ProcText.TryMemInfo(text, out var total, out var available));

        Assert.Equal(948304 * 1024.0, total);
        Assert.Equal(412560 * 1024.0, available);
    }

    [Fact]
    public void Meminfo_without_MemAvailable_is_not_read()
    {
        Assert.False(ProcText.TryMemInfo("MemTotal:  948304 kB\nMemFree:  41260 kB\n"u8, out _, out _));
    }

    [Theory]
    [InlineData("0.00 0.01 0.05 1/123 456\n", 0.0, 0.01)]
    [InlineData("12.50 7.25 3.00 9/400 31337\n", 12.5, 7.25)]
    public void Loadavg_gives_the_1_and_5_minute_figures(string text, double load1, double load5)
    {
        Assert.True(ProcText.TryLoadAvg(Encoding.ASCII.GetBytes(text), out var l1, out var l5));
        Assert.Equal((load1, load5), (l1, l5));
    }

    [Fact]
    public void Stat_counts_the_numbered_cpu_lines_only()
    {
        Assert.Equal(4, ProcText.CountCpus("cpu  1 2 3\ncpu0 1\ncpu1 1\ncpu2 1\ncpu3 1\nintr 5\nctxt 9\n"u8));
    }

    [Fact]
    public void Space_without_an_inode_table_counts_as_all_inodes_free()
    {
        // btrfs reports f_files = 0: inodes are allocated from metadata space and cannot run out on their own.
        var space = FileSystemSpace.From(4096, 1000, 250, 0, 0);

        Assert.Equal((250 * 4096.0, 25.0, 0.0, 100.0), (space.FreeBytes, space.FreePercent, space.FreeInodes, space.FreeInodesPercent));
    }
}
