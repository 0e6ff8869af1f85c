using System.Device.Gpio;
using EdgeTwin.Alerting.Gpio;
using EdgeTwin.Core.Samples;
using EdgeTwin.Sensors.Common;
using EdgeTwin.Sensors.Gpio;
using EdgeTwin.Sensors.Tests.Fakes;

namespace EdgeTwin.Sensors.Tests.Gpio;

/// <summary>
/// The real Iot.Device.DHTxx bit-banging loop against a simulated sensor on a simulated GPIO line. The binding decides
/// 0/1 by timing the high phase with a stopwatch, so a thread pre-empted for &gt; 30 µs in the middle of a 0 bit can
/// turn a frame bad on a loaded machine; like the scheduler in production, the good-path tests poll again.
/// </summary>
public sealed class Dht22SourceTests : IDisposable
{
    private const int Pin = 4;
    private readonly SimulatedGpioDriver _driver = new();
    private readonly GpioController _controller;
    private readonly SeriesRegistry _registry = new();
    private readonly CollectingSampleSink _sink = new();

    public Dht22SourceTests()
    {
        _controller = new GpioController(_driver);
    }

    public void Dispose() => _controller.Dispose();

    private Dht22Source Create()
    {
        var source = new Dht22Source(new Dht22Options { DeviceId = "cold-aisle-dht", Controller = () => _controller, Pin = Pin });
        source.RegisterSeries(_registry);
        return source;
    }

    private async Task PollWithRetriesAsync(Dht22Source source)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await source.PollAsync(_sink, attempt, TestContext.Current.CancellationToken);
                return;
            }
            catch (SensorException) when (attempt < 6)
            {
                await Task.Delay(700, TestContext.Current.CancellationToken); // past the binding's frame cache window
            }
        }
    }

    [Theory]
    [InlineData(21.3, 52.7)]
    [InlineData(-12.4, 88.1)]
    [InlineData(0.0, 0.1)]
    public async Task Binding_decodes_the_simulated_frame(double celsius, double rh)
    {
        var dht = _driver.AttachDht22(Pin);
        dht.Celsius = celsius;
        dht.RelativeHumidity = rh;
        await using var source = Create();

        await PollWithRetriesAsync(source);

        var t = _sink.All.Single(s => _registry[s.Series].Metric == "temperature");
        var h = _sink.All.Single(s => _registry[s.Series].Metric == "humidity");
        Assert.Equal(celsius, t.Value, 1e-9);
        Assert.Equal(rh, h.Value, 1e-9);
        Assert.Equal(SampleQuality.Good, t.Quality);
        Assert.True(dht.Frames >= 1);
    }

    [Fact]
    public void Frame_encoding_matches_the_datasheet_example()
    {
        // AM2302 datasheet: RH 65.2 %, T 35.1 °C → 0x028C 0x015F, checksum 0xEE; and -10.1 °C → 0x8065.
        Assert.Equal([0x02, 0x8C, 0x01, 0x5F, 0xEE], Dht22Responder.Encode(35.1, 65.2));
        Assert.Equal([0x80, 0x65], Dht22Responder.Encode(-10.1, 65.2)[2..4]);
    }

    [Fact]
    public async Task Checksum_mismatch_is_a_device_exception_and_publishes_nothing()
    {
        var dht = _driver.AttachDht22(Pin);
        dht.CorruptChecksumBy = 1;
        await using var source = Create();

        var ex = await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 1, TestContext.Current.CancellationToken).AsTask());

        Assert.Contains("gpio 4: no valid frame", ex.Message, StringComparison.Ordinal);
        Assert.Empty(_sink.All);
        Assert.Equal(1, dht.Frames);
    }

    [Fact]
    public async Task Missing_sensor_is_reported_on_its_pin()
    {
        var dht = _driver.AttachDht22(Pin);
        dht.Silent = true;
        await using var source = Create();

        var ex = await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 1, TestContext.Current.CancellationToken).AsTask());

        Assert.Equal("cold-aisle-dht", ex.DeviceId);
        Assert.Equal("gpio", ex.Bus);
        Assert.Equal("4", ex.Address);
    }
}
