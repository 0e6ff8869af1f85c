using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Alerting.Tests.Rules;

/// <summary>The shipped gateway rules (alert-rules/gateway-host.yaml) on the series the shipped linux-host profile publishes.</summary>
public sealed class GatewayHostShippedRuleTests
{
    private static readonly string Rules = File.ReadAllText(Path.Combine(ShippedFiles.Repo(), "device-profiles", "examples", "alert-rules", "gateway-host.yaml"));

    private static SeriesId Series(Harness h, string metric, params KeyValuePair<string, string>[] tags) => ProfileSeries(h, "linux-host", metric, tags);

    /// <summary>A series of a gateway device as the shipped profile publishes it.</summary>
    private static SeriesId ProfileSeries(Harness h, string profile, string metric, params KeyValuePair<string, string>[] tags)
    {
        var m = DeviceProfileLoader.LoadFileOrThrow(Path.Combine(ShippedFiles.Repo(), "device-profiles", profile + ".yaml")).AllMetrics.Single(x => x.Name == metric);
        return h.Registry.GetOrAdd(new SeriesDescriptor("gw-host", m.Name, m.Unit, m.Kind, m.Role, tags.Length == 0 ? null : tags));
    }

    [Fact]
    public async Task A_filling_state_disk_warns_below_10_percent_and_is_critical_below_5()
    {
        await using var h = await Harness.StartAsync(Rules);
        var disk = Series(h, "disk_free_percent", KeyValuePair.Create("path", "/var/lib/edgetwin"));

        h.Feed(disk, 40);
        h.Advance(TimeSpan.FromMinutes(10));
        h.Feed(disk, 9);
        h.Advance(TimeSpan.FromMinutes(4));
        h.Feed(disk, 9);
        Assert.Equal(AlertState.Pending, h.StateOf("gateway-disk-low"));
        h.Advance(TimeSpan.FromMinutes(1.1));
        h.Feed(disk, 8);
        Assert.Equal((AlertState.Firing, EventSeverity.Warning), (h.StateOf("gateway-disk-low"), h.Active("gateway-disk-low")!.Severity));

        h.Feed(disk, 4);
        h.Advance(TimeSpan.FromMinutes(1.1));
        h.Feed(disk, 4);
        Assert.Equal((AlertState.Firing, EventSeverity.Critical), (h.StateOf("gateway-disk-full"), h.Active("gateway-disk-full")!.Severity));

        h.Feed(disk, 30); // logs rotated away
        Assert.Empty(h.Manager.Active());
    }

    [Fact]
    public async Task Exhausted_inodes_are_critical_with_space_to_spare()
    {
        await using var h = await Harness.StartAsync(Rules);
        var disk = Series(h, "disk_free_percent", KeyValuePair.Create("path", "/var/lib/edgetwin"));
        var inodes = Series(h, "inodes_free_percent", KeyValuePair.Create("path", "/var/lib/edgetwin"));

        h.Feed(disk, 70);
        h.Feed(inodes, 3);
        h.Advance(TimeSpan.FromMinutes(6));
        h.Feed(disk, 70);
        h.Feed(inodes, 3);

        Assert.Equal(AlertState.Firing, h.StateOf("gateway-inodes-low"));
        Assert.Equal(AlertState.Firing, h.StateOf("gateway-inodes-exhausted"));
        Assert.Equal(AlertState.Inactive, h.StateOf("gateway-disk-low"));
    }

    [Fact]
    public async Task An_unsynchronised_clock_warns_after_15_minutes_not_during_a_boot()
    {
        await using var h = await Harness.StartAsync(Rules);
        var clock = Series(h, "clock_synchronized");

        h.Feed(clock, 0); // booted without RTC, NTP not reached yet
        h.Advance(TimeSpan.FromMinutes(14));
        h.Feed(clock, 0);
        Assert.Equal(AlertState.Pending, h.StateOf("gateway-clock-unsynchronized"));
        h.Feed(clock, 1); // synchronised within the boot allowance: nothing raised
        Assert.Empty(h.Manager.Active());

        h.Feed(clock, 0); // the time server unreachable for good
        h.Advance(TimeSpan.FromMinutes(15.1));
        h.Feed(clock, 0);
        Assert.Equal((AlertState.Firing, EventSeverity.Warning), (h.StateOf("gateway-clock-unsynchronized"), h.Active("gateway-clock-unsynchronized")!.Severity));
        // It read "clock_synchronized 0 below 0.5": a flag's value and threshold, not what is wrong.
        Assert.Equal("the gateway's clock is not synchronised (gw-host/clock_synchronized): the times of its samples and events may be off", h.Active("gateway-clock-unsynchronized")!.Summary);
    }

    [Fact]
    public async Task Low_available_memory_warns()
    {
        await using var h = await Harness.StartAsync(Rules);
        var memory = Series(h, "memory_available_percent");

        h.Feed(memory, 9.5);
        h.Advance(TimeSpan.FromMinutes(5.1));
        h.Feed(memory, 9);

        Assert.Equal(AlertState.Firing, h.StateOf("gateway-memory-low"));
    }

    [Fact]
    public void The_rules_match_only_roles_the_gateway_profiles_publish()
    {
        var roles = ((string[])["linux-host.yaml", "linux-cpu-temperature.yaml"])
            .SelectMany(f => DeviceProfileLoader.LoadFileOrThrow(Path.Combine(ShippedFiles.Repo(), "device-profiles", f)).AllMetrics.Select(m => m.Role))
            .ToHashSet(StringComparer.Ordinal);
        var config = Yaml.Valid(Rules);

        Assert.Equal(7, config.Rules.Count);
        Assert.All(config.Rules, r => Assert.Contains(r.Match.Role!, roles));
    }

    [Fact]
    public async Task Regression_a_gateway_cpu_running_hot_raised_nothing_with_the_shipped_rules()
    {
        // linux-cpu-temperature publishes gateway.cpu_temperature; no shipped rule read it, so a gateway in a hot cabinet
        // throttled (slower polls, late alerts) without a word.
        await using var h = await Harness.StartAsync(Rules);
        var cpu = ProfileSeries(h, "linux-cpu-temperature", "cpu_temperature");

        h.Feed(cpu, 62);
        h.Advance(TimeSpan.FromMinutes(1));
        h.Feed(cpu, 83);
        h.Advance(TimeSpan.FromMinutes(4));
        h.Feed(cpu, 84);
        Assert.Equal(AlertState.Pending, h.StateOf("gateway-cpu-hot"));
        h.Advance(TimeSpan.FromMinutes(1.1));
        h.Feed(cpu, 84);
        Assert.Equal((AlertState.Firing, EventSeverity.Warning), (h.StateOf("gateway-cpu-hot"), h.Active("gateway-cpu-hot")!.Severity));
        h.Feed(cpu, 74);
        Assert.Empty(h.Manager.Active());
    }
}
