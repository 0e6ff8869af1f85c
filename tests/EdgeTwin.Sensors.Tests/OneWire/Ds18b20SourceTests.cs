using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Sensors.Common;
using EdgeTwin.Sensors.OneWire;
using EdgeTwin.Sensors.Tests.Fakes;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Sensors.Tests.OneWire;

public sealed class Ds18b20SourceTests : IDisposable
{
    private const string Id = "28-0316a2791aff";
    private readonly FakeW1Bus _bus = new();
    private readonly SeriesRegistry _registry = new();
    private readonly CollectingSampleSink _sink = new();

    public void Dispose() => _bus.Dispose();

    private Ds18b20Source Create(string sensorId = Id, string deviceId = "rack-a01-inlet")
    {
        var source = new Ds18b20Source(new Ds18b20Options { DeviceId = deviceId, SensorId = sensorId, SysfsRoot = _bus.Root });
        source.RegisterSeries(_registry);
        return source;
    }

    [Fact]
    public async Task Reads_temperature_from_w1_slave_with_good_quality()
    {
        _bus.SetCelsius(Id, 24.5);
        await using var source = Create();

        await source.PollAsync(_sink, 1_700_000_000_000, TestContext.Current.CancellationToken);

        var s = Assert.Single(_sink.All);
        Assert.Equal(24.5, s.Value);
        Assert.Equal(SampleQuality.Good, s.Quality);
        Assert.Equal(1_700_000_000_000, s.TimestampUnixMs);
        var d = _registry[s.Series];
        Assert.Equal("rack-a01-inlet/temperature", d.Key);
        Assert.Equal("Cel", d.Unit);
    }

    [Fact]
    public async Task Crc_failure_throws_device_exception_naming_bus_and_sensor()
    {
        _bus.SetRaw(Id, 392, corruptCrc: true);
        await using var source = Create();

        var ex = await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 0, TestContext.Current.CancellationToken).AsTask());

        Assert.IsAssignableFrom<DeviceException>(ex);
        Assert.Equal("rack-a01-inlet", ex.DeviceId);
        Assert.Contains("w1 28-0316a2791aff", ex.Message, StringComparison.Ordinal);
        Assert.Contains("CRC", ex.Message, StringComparison.Ordinal);
        Assert.Empty(_sink.All);
    }

    [Fact]
    public async Task Power_on_reset_value_is_published_with_device_error_quality()
    {
        _bus.SetRaw(Id, 0x0550);
        await using var source = Create();

        await source.PollAsync(_sink, 5, TestContext.Current.CancellationToken);

        var s = Assert.Single(_sink.All);
        Assert.Equal(85.0, s.Value);
        Assert.Equal(SampleQuality.DeviceError, s.Quality);
    }

    [Fact]
    public async Task Missing_device_names_the_path()
    {
        _bus.SetCelsius(Id, 20);
        await using var source = Create("28-00000000dead");

        var ex = await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 0, TestContext.Current.CancellationToken).AsTask());

        Assert.Contains("w1 28-00000000dead", ex.Message, StringComparison.Ordinal);
        Assert.Contains("not on the bus", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_bus_says_so()
    {
        var source = new Ds18b20Source(new Ds18b20Options { DeviceId = "x", SensorId = Id, SysfsRoot = Path.Combine(_bus.Root, "nope") });
        source.RegisterSeries(_registry);

        var ex = await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 0, TestContext.Current.CancellationToken).AsTask());

        Assert.Contains("no 1-Wire bus", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sensor_unplugged_between_polls_fails_then_recovers_when_replugged()
    {
        _bus.SetCelsius(Id, 21);
        await using var source = Create();
        await source.PollAsync(_sink, 1, TestContext.Current.CancellationToken);

        _bus.Unplug(Id);
        await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 2, TestContext.Current.CancellationToken).AsTask());

        _bus.SetCelsius(Id, 22);
        await source.PollAsync(_sink, 3, TestContext.Current.CancellationToken);

        Assert.Equal([21.0, 22.0], _sink.All.Select(s => s.Value));
    }

    [Fact]
    public async Task Value_outside_the_configured_range_is_flagged_out_of_range()
    {
        _bus.SetCelsius(Id, 60);
        var source = new Ds18b20Source(new Ds18b20Options
        {
            DeviceId = "inlet",
            SensorId = Id,
            SysfsRoot = _bus.Root,
            Outputs = [new("temperature", new SeriesSpec("inlet_temperature", "Cel", Role: "rack.inlet_temperature", Min: 5, Max: 45))],
        });
        source.RegisterSeries(_registry);

        await source.PollAsync(_sink, 0, TestContext.Current.CancellationToken);

        Assert.Equal(SampleQuality.OutOfRange, Assert.Single(_sink.All).Quality);
    }

    [Fact]
    public async Task One_failing_sensor_does_not_stop_the_others_on_the_same_bus()
    {
        _bus.SetCelsius("28-000000000001", 19.5);
        _bus.SetRaw("28-000000000002", 100, corruptCrc: true);
        _bus.SetCelsius("28-000000000003", 27.25);
        var sources = new[] { Create("28-000000000001", "t1"), Create("28-000000000002", "t2"), Create("28-000000000003", "t3") };

        var results = await Task.WhenAll(sources.Select(async s =>
        {
            try
            {
                await s.PollAsync(_sink, 0, TestContext.Current.CancellationToken);
                return null;
            }
            catch (DeviceException ex)
            {
                return ex.DeviceId;
            }
        }));

        Assert.Equal([null, "t2", null], results);
        Assert.Equal([19.5, 27.25], _sink.All.Select(s => s.Value).Order());
    }

    [Fact]
    public async Task Regression_an_unplugged_sensor_logged_a_warning_at_every_poll()
    {
        // Before: "Sensor ... read failed" at Warning on every poll of a vanished slave directory (8,640 lines a day
        // at 10 s) and nothing when it came back. Now one Warning naming device, bus and id, Debug repeats, one
        // Information line on recovery.
        var logger = new ListLogger<Ds18b20Source>();
        _bus.SetCelsius(Id, 21);
        await using var source = new Ds18b20Source(new Ds18b20Options { DeviceId = "inlet", SensorId = Id, SysfsRoot = _bus.Root }, logger);
        source.RegisterSeries(_registry);
        await source.PollAsync(_sink, 1, TestContext.Current.CancellationToken);

        _bus.Unplug(Id);
        for (var i = 0; i < 5; i++)
        {
            await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 2 + i, TestContext.Current.CancellationToken).AsTask());
        }

        var warning = Assert.Single(logger.At(LogLevel.Warning));
        Assert.Contains("inlet", warning, StringComparison.Ordinal);
        Assert.Contains("w1 " + Id, warning, StringComparison.Ordinal);
        Assert.Contains("not on the bus", warning, StringComparison.Ordinal);
        Assert.Equal(4, logger.At(LogLevel.Debug).Count());
        Assert.Empty(logger.At(LogLevel.Information));

        _bus.SetCelsius(Id, 22);
        await source.PollAsync(_sink, 10, TestContext.Current.CancellationToken);

        Assert.Equal("Sensor inlet (ds18b20) reads again after 5 failed reads", Assert.Single(logger.At(LogLevel.Information)));
        Assert.Equal([21.0, 22.0], _sink.All.Select(s => s.Value));

        // A second outage is a new one: its first failure is a Warning again.
        _bus.SetRaw(Id, 100, corruptCrc: true);
        await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 11, TestContext.Current.CancellationToken).AsTask());
        Assert.Equal(2, logger.At(LogLevel.Warning).Count());
        Assert.Contains("CRC", logger.At(LogLevel.Warning).Last(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_the_85C_power_on_value_logged_a_warning_at_every_poll()
    {
        var logger = new ListLogger<Ds18b20Source>();
        _bus.SetRaw(Id, 0x0550);
        await using var source = new Ds18b20Source(new Ds18b20Options { DeviceId = "inlet", SensorId = Id, SysfsRoot = _bus.Root }, logger);
        source.RegisterSeries(_registry);

        for (var i = 0; i < 3; i++)
        {
            await source.PollAsync(_sink, i, TestContext.Current.CancellationToken);
        }

        Assert.All(_sink.All, s => Assert.Equal(SampleQuality.DeviceError, s.Quality));
        var warning = Assert.Single(logger.At(LogLevel.Warning));
        Assert.Contains("w1 " + Id + ": 85 °C power-on reset value", warning, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_a_replaced_sensor_was_reported_as_unplugged_or_a_broken_wire()
    {
        _bus.SetCelsius(Id, 21);
        _bus.SetCelsius("28-0316a27aa1ff", 23); // a neighbour that is configured as another device
        await using var source = Create();
        await source.PollAsync(_sink, 1, TestContext.Current.CancellationToken);

        // The technician swaps the sensor: the kernel drops the old id and adds the new one.
        _bus.Unplug(Id);
        _bus.SetCelsius("28-04172b9e33ff", 22);
        var ex = await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 2, TestContext.Current.CancellationToken).AsTask());
        Assert.Contains("thermometers on the bus now: 28-0316a27aa1ff, 28-04172b9e33ff", ex.Message, StringComparison.Ordinal);
        Assert.Contains("a replaced sensor has a new id", ex.Message, StringComparison.Ordinal);

        // Every thermometer gone and only the noise ids a floating DQ line gives: the pull-up, not the id.
        _bus.Unplug("28-0316a27aa1ff");
        _bus.Unplug("28-04172b9e33ff");
        Directory.CreateDirectory(Path.Combine(_bus.Root, "00-800000000000"));
        ex = await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 3, TestContext.Current.CancellationToken).AsTask());
        Assert.Contains("only noise ids on the bus (00-800000000000): the 4.7 kΩ pull-up", ex.Message, StringComparison.Ordinal);

        Directory.Delete(Path.Combine(_bus.Root, "00-800000000000"));
        ex = await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 4, TestContext.Current.CancellationToken).AsTask());
        Assert.Contains("no thermometer on the bus at all", ex.Message, StringComparison.Ordinal);
    }
}
