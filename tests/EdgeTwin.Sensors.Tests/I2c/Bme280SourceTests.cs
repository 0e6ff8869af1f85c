using EdgeTwin.Core.Samples;
using EdgeTwin.Sensors.Common;
using EdgeTwin.Sensors.I2c;
using EdgeTwin.Sensors.Tests.Fakes;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Iot.Device.Bmxx80;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Sensors.Tests.I2c;

public sealed class Bme280SourceTests
{
    private readonly SeriesRegistry _registry = new();
    private readonly CollectingSampleSink _sink = new();

    private (Bme280Source Source, List<SimulatedBme280> Opened) Create(Func<SimulatedBme280> chip, TimeSpan? timeout = null)
    {
        var opened = new List<SimulatedBme280>();
        var source = new Bme280Source(new I2cSensorOptions
        {
            DeviceId = "room1-climate",
            BusId = 1,
            Address = 0x76,
            Timeout = timeout ?? TimeSpan.FromSeconds(5),
            OpenDevice = settings =>
            {
                Assert.Equal(1, settings.BusId);
                Assert.Equal(0x76, settings.DeviceAddress);
                var c = chip();
                opened.Add(c);
                return c;
            },
        });
        source.RegisterSeries(_registry);
        return (source, opened);
    }

    private double ValueOf(string metric) =>
        _sink.All.Last(s => _registry[s.Series].Metric == metric).Value;

    [Fact]
    public void Binding_reproduces_the_datasheet_compensation_example_from_simulated_registers()
    {
        // BMP280 datasheet §8.2: adc_T = 519888 → 25.08 °C; adc_P = 415148 → 100653.27 Pa (double precision).
        var chip = new SimulatedBme280();
        using var bme = new Bme280(chip);
        chip.SetAdc(519888, 415148, 0x8000);

        Assert.True(bme.TryReadTemperature(out var t));
        Assert.True(bme.TryReadPressure(out var p));

        Assert.Equal(25.08, t.DegreesCelsius, 0.005);
        Assert.Equal(100653.27, p.Pascals, 0.01);
        Assert.Equal(25.08, SimulatedBme280.Bosch.Temperature(chip.Cal, 519888), 0.005);
    }

    [Fact]
    public async Task Reads_temperature_humidity_and_pressure_in_forced_mode()
    {
        var chip = new SimulatedBme280 { Celsius = 23.4, RelativeHumidity = 48.2, Pascals = 98_765 };
        var (source, _) = Create(() => chip);
        await using var _ = source;

        await source.PollAsync(_sink, 42, TestContext.Current.CancellationToken);

        Assert.Equal(3, _sink.All.Count);
        Assert.All(_sink.All, s => Assert.Equal(SampleQuality.Good, s.Quality));
        Assert.All(_sink.All, s => Assert.Equal(42, s.TimestampUnixMs));
        Assert.Equal(23.4, ValueOf("temperature"), 0.01);
        Assert.Equal(48.2, ValueOf("humidity"), 0.05);
        Assert.Equal(987.65, ValueOf("pressure"), 0.02);
        Assert.Equal("hPa", _registry.Snapshot().Single(x => x.Descriptor.Metric == "pressure").Descriptor.Unit);
        Assert.Equal(1, chip.Conversions);
        Assert.Equal(0x00, chip.Register(0xF4) & 0x03); // back to sleep between polls
        Assert.Equal(0b011, chip.Register(0xF2)); // humidity oversampling x4 (Sampling.Standard)
    }

    [Property(MaxTest = 60)]
    public bool Any_physical_state_in_range_reads_back_within_resolution(byte tSeed, byte hSeed, ushort pSeed)
    {
        var celsius = -40 + (tSeed / 255.0 * 125);
        var rh = 1 + (hSeed / 255.0 * 98);
        var pa = 30_000 + (pSeed / 65535.0 * 80_000);
        var chip = new SimulatedBme280 { Celsius = celsius, RelativeHumidity = rh, Pascals = pa };
        var (source, _) = Create(() => chip);
        source.PollAsync(_sink, 0, CancellationToken.None).AsTask().GetAwaiter().GetResult();
        return Math.Abs(ValueOf("temperature") - celsius) < 0.01
            && Math.Abs(ValueOf("humidity") - rh) < 0.1
            && Math.Abs(ValueOf("pressure") - (pa / 100)) < 0.05;
    }

    [Fact]
    public async Task A_bmp280_at_the_address_is_reported_by_its_chip_id()
    {
        var (source, opened) = Create(() => new SimulatedBme280(chipId: 0x58));

        var ex = await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 0, TestContext.Current.CancellationToken).AsTask());

        Assert.Equal("device 'room1-climate': i2c-1 0x76: chip id 0x58 is a BMP280 (no humidity), not a BME280 (0x60)", ex.Message);
        Assert.True(opened.Single().Disposed);
    }

    [Fact]
    public async Task Absent_chip_is_a_device_exception_naming_bus_and_address()
    {
        var (source, _) = Create(() => new SimulatedBme280 { Absent = true });

        var ex = await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 0, TestContext.Current.CancellationToken).AsTask());

        Assert.Equal("i2c-1", ex.Bus);
        Assert.Equal("0x76", ex.Address);
        Assert.Contains("Error 121", ex.Message, StringComparison.Ordinal);
        Assert.Empty(_sink.All);
    }

    [Fact]
    public async Task Regression_a_wrong_i2c_address_was_reported_as_error_121_performing_i2c_data_transfer()
    {
        // Configured at 0x76 while the breakout's SDO is tied to VDD (0x77): nothing answers at 0x76. The message was the
        // binding's errno text, which names neither the likely cause nor how to find the address.
        var (source, opened) = Create(() => new SimulatedBme280 { Absent = true });

        var ex = await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 0, TestContext.Current.CancellationToken).AsTask());

        Assert.Equal(
            "device 'room1-climate': i2c-1 0x76: no answer at 0x76 on /dev/i2c-1 (NACK): sensor unplugged or unpowered, wrong address (a BME280 is at 0x76 with SDO to GND, 0x77 with SDO to VDD) or SDA/SCL swapped; `i2cdetect -y 1` lists the addresses that answer (Error 121 performing I2C data transfer)",
            ex.Message);
        Assert.True(opened.Single().Disposed);
    }

    [Fact]
    public async Task Brown_out_between_polls_is_detected_and_the_chip_reconfigured()
    {
        var chip = new SimulatedBme280 { Celsius = 21 };
        var (source, opened) = Create(() => (SimulatedBme280)chip.Reopen());
        await source.PollAsync(_sink, 1, TestContext.Current.CancellationToken);

        chip.PowerOnReset(); // supply dip: oversampling settings lost, data registers at 0x80000
        var ex = await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 2, TestContext.Current.CancellationToken).AsTask());
        Assert.Contains("reset value 0x80000", ex.Message, StringComparison.Ordinal);

        chip.Celsius = 22;
        await source.PollAsync(_sink, 3, TestContext.Current.CancellationToken);
        Assert.Equal(22, ValueOf("temperature"), 0.01);
        Assert.Equal(2, opened.Count); // calibration read and configuration written again
        Assert.Equal(6, _sink.All.Count);
    }

    [Fact]
    public async Task Hung_bus_times_out_and_a_second_poll_fails_fast_until_the_bus_frees()
    {
        using var hang = new ManualResetEventSlim(false);
        var chip = new SimulatedBme280();
        var (source, _) = Create(() => chip, TimeSpan.FromMilliseconds(300));
        await source.PollAsync(_sink, 1, TestContext.Current.CancellationToken);
        chip.Hang = hang;

        var timeout = await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 2, TestContext.Current.CancellationToken).AsTask());
        Assert.Contains("no answer within 300 ms", timeout.Message, StringComparison.Ordinal);
        var busy = await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 3, TestContext.Current.CancellationToken).AsTask());
        Assert.Contains("has not returned", busy.Message, StringComparison.Ordinal);

        chip.Hang = null;
        hang.Set();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            try
            {
                await source.PollAsync(_sink, 4, TestContext.Current.CancellationToken);
                break;
            }
            catch (SensorException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50, TestContext.Current.CancellationToken); // the stuck transfer is still unwinding
            }
        }

        Assert.Contains(_sink.All, s => s.TimestampUnixMs == 4);
    }

    [Fact]
    public async Task Regression_a_bus_that_does_not_exist_was_reported_as_a_bare_errno()
    {
        // The real I2cDevice.Create on a bus number this machine does not have (no /dev/i2c-250 here or on a gateway).
        Assert.False(File.Exists("/dev/i2c-250"));
        var source = new Bme280Source(new I2cSensorOptions { DeviceId = "cabinet", BusId = 250, Address = 0x76 });
        source.RegisterSeries(_registry);

        var ex = await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 0, TestContext.Current.CancellationToken).AsTask());

        Assert.Equal("i2c-250", ex.Bus);
        Assert.Contains("no I2C bus /dev/i2c-250", ex.Message, StringComparison.Ordinal);
        Assert.Contains("ls /dev/i2c-*", ex.Message, StringComparison.Ordinal);
        Assert.Empty(_sink.All);
    }

    [Fact]
    public async Task Regression_an_absent_chip_logged_a_warning_at_every_poll()
    {
        var logger = new ListLogger<Bme280Source>();
        var chip = new SimulatedBme280 { Celsius = 20, Absent = true };
        await using var source = new Bme280Source(new I2cSensorOptions { DeviceId = "cabinet", BusId = 1, Address = 0x76, OpenDevice = _ => chip.Reopen() }, logger);
        source.RegisterSeries(_registry);

        for (var i = 0; i < 4; i++)
        {
            await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, i, TestContext.Current.CancellationToken).AsTask());
        }

        var warning = Assert.Single(logger.At(LogLevel.Warning));
        Assert.Contains("cabinet", warning, StringComparison.Ordinal);
        Assert.Contains("i2c-1 0x76", warning, StringComparison.Ordinal);
        Assert.Empty(_sink.All);

        chip.Absent = false; // plugged back in
        await source.PollAsync(_sink, 10, TestContext.Current.CancellationToken);

        Assert.Equal("Sensor cabinet (bme280) reads again after 4 failed reads", Assert.Single(logger.At(LogLevel.Information)));
        Assert.Equal(20, ValueOf("temperature"), 0.01);
    }

    [Theory]
    [InlineData(0xFF)]
    [InlineData(0x00)]
    public async Task Regression_a_data_line_stuck_high_or_low_published_a_plausible_humidity(byte stuck)
    {
        // All 0xFF: the binding computed ~187 °C (flagged), but humidity clamped to 100 % and a pressure, both Good.
        var chip = new SimulatedBme280 { Celsius = 21, RelativeHumidity = 40 };
        var (source, _) = Create(() => (SimulatedBme280)chip.Reopen());
        await source.PollAsync(_sink, 1, TestContext.Current.CancellationToken);
        var good = _sink.All.Count;

        chip.ReadsAs = stuck;
        var ex = await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 2, TestContext.Current.CancellationToken).AsTask());

        Assert.Contains($"i2c-1 0x76: every data register reads 0x{stuck:x2}", ex.Message, StringComparison.Ordinal);
        Assert.Equal(good, _sink.All.Count); // nothing published from the garbage

        chip.ReadsAs = null;
        await source.PollAsync(_sink, 3, TestContext.Current.CancellationToken);
        Assert.Equal(40, ValueOf("humidity"), 0.1);
    }
}
