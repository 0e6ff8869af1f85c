using EdgeTwin.Core.Samples;
using EdgeTwin.Sensors.Common;
using EdgeTwin.Sensors.Tests.Fakes;
using EdgeTwin.Sensors.Thermal;

namespace EdgeTwin.Sensors.Tests.Thermal;

public sealed class CpuTemperatureSourceTests : IDisposable
{
    private readonly TempDir _root = new();
    private readonly SeriesRegistry _registry = new();
    private readonly CollectingSampleSink _sink = new();

    public void Dispose() => _root.Dispose();

    private void Zone(int n, string? type, string? temp)
    {
        var dir = _root.Combine($"thermal_zone{n}");
        Directory.CreateDirectory(dir);
        if (type is not null)
        {
            File.WriteAllText(Path.Combine(dir, "type"), type + "\n");
        }

        if (temp is not null)
        {
            File.WriteAllText(Path.Combine(dir, "temp"), temp + "\n");
        }
    }

    private CpuTemperatureSource Create(params string[] zones)
    {
        var source = new CpuTemperatureSource(new CpuTemperatureOptions { DeviceId = "gw1", ThermalRoot = _root.Path, Zones = zones });
        source.RegisterSeries(_registry);
        return source;
    }

    [Fact]
    public async Task Reads_every_zone_in_zone_number_order_tagged_by_type()
    {
        Zone(10, "iwlwifi_1", "41000");
        Zone(0, "acpitz", "27800");
        Zone(2, "x86_pkg_temp", "53250");
        Directory.CreateDirectory(_root.Combine("cooling_device0")); // not a zone
        await using var source = Create();

        await source.PollAsync(_sink, 9, TestContext.Current.CancellationToken);

        Assert.Equal(["acpitz", "x86_pkg_temp", "iwlwifi_1"], source.ZoneTypes);
        Assert.Equal([27.8, 53.25, 41.0], _sink.All.Select(s => s.Value));
        Assert.Equal("gw1/cpu_temperature{zone=x86_pkg_temp}", _registry[_sink.All[1].Series].Key);
        Assert.All(_sink.All, s => Assert.Equal(SampleQuality.Good, s.Quality));
    }

    [Fact]
    public async Task Zone_filter_keeps_only_the_named_types()
    {
        Zone(0, "cpu-thermal", "48312");
        Zone(1, "gpu-thermal", "47000");
        await using var source = Create("cpu-thermal");

        await source.PollAsync(_sink, 0, TestContext.Current.CancellationToken);

        Assert.Equal(48.312, Assert.Single(_sink.All).Value);
    }

    [Fact]
    public async Task A_failing_zone_is_flagged_while_the_others_are_read()
    {
        Zone(0, "cpu-thermal", "45000");
        Zone(1, "iwlwifi_1", null); // driver returns ENODATA while the radio is down: no readable temp
        await using var source = Create();

        await source.PollAsync(_sink, 0, TestContext.Current.CancellationToken);

        Assert.Equal(SampleQuality.Good, _sink.All[0].Quality);
        Assert.Equal(SampleQuality.DeviceError, _sink.All[1].Quality);
        Assert.True(double.IsNaN(_sink.All[1].Value));
    }

    [Fact]
    public async Task Every_zone_failing_is_a_device_exception()
    {
        Zone(0, "cpu-thermal", "garbage");
        await using var source = Create();

        var ex = await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 0, TestContext.Current.CancellationToken).AsTask());

        Assert.Contains("every zone failed", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'garbage' is not millidegrees", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task No_thermal_class_names_the_root()
    {
        var source = new CpuTemperatureSource(new CpuTemperatureOptions { DeviceId = "gw1", ThermalRoot = _root.Combine("missing") });
        source.RegisterSeries(_registry);

        var ex = await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 0, TestContext.Current.CancellationToken).AsTask());

        Assert.Contains("no thermal zones", ex.Message, StringComparison.Ordinal);
        Assert.Contains("missing", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Negative_and_high_values_are_graded()
    {
        Zone(0, "board", "-5500");
        Zone(1, "hot", "130000");
        await using var source = Create();

        await source.PollAsync(_sink, 0, TestContext.Current.CancellationToken);

        Assert.Equal(-5.5, _sink.All[0].Value);
        Assert.Equal(SampleQuality.Good, _sink.All[0].Quality);
        Assert.Equal(SampleQuality.OutOfRange, _sink.All[1].Quality);
    }

    [Fact]
    public async Task Reads_this_machines_thermal_class_when_it_has_one()
    {
        // Not a fake: the real /sys/class/thermal of the machine running the tests, if the kernel exposes zones.
        if (!Directory.Exists("/sys/class/thermal") || !Directory.EnumerateDirectories("/sys/class/thermal", "thermal_zone*").Any())
        {
            Assert.Skip("this machine exposes no /sys/class/thermal/thermal_zone*");
        }

        var source = new CpuTemperatureSource(new CpuTemperatureOptions { DeviceId = "self" });
        source.RegisterSeries(_registry);
        await source.PollAsync(_sink, 0, TestContext.Current.CancellationToken);
        Assert.NotEmpty(_sink.All);
    }
}
