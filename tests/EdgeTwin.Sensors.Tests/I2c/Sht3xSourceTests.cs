using EdgeTwin.Core.Samples;
using EdgeTwin.Sensors.Common;
using EdgeTwin.Sensors.I2c;
using EdgeTwin.Sensors.Tests.Fakes;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace EdgeTwin.Sensors.Tests.I2c;

public sealed class Sht3xProtocolTests
{
    [Fact]
    public void Crc8_matches_the_datasheet_example() =>
        Assert.Equal(0x92, Sht3xProtocol.Crc8([0xBE, 0xEF])); // SHT3x-DIS table 19

    [Fact]
    public void Decodes_a_fixed_frame()
    {
        // T word 0x6666, RH word 0x8000 with their CRCs.
        byte[] frame = [0x66, 0x66, 0x93, 0x80, 0x00, 0xA2];
        Assert.Equal(0x93, Sht3xProtocol.Crc8(frame.AsSpan(0, 2)));
        Assert.Equal(0xA2, Sht3xProtocol.Crc8(frame.AsSpan(3, 2)));

        Assert.True(Sht3xProtocol.TryDecode(frame, out var t, out var h, out _));
        Assert.Equal(-45 + (175.0 * 0x6666 / 65535), t, 1e-9);
        Assert.Equal(100.0 * 0x8000 / 65535, h, 1e-9);
    }

    [Fact]
    public void Encodes_to_the_same_fixed_frame()
    {
        var frame = new byte[6];
        Sht3xProtocol.Encode(frame, -45 + (175.0 * 0x6666 / 65535), 100.0 * 0x8000 / 65535);
        Assert.Equal([0x66, 0x66, 0x93, 0x80, 0x00, 0xA2], frame);
    }

    [Fact]
    public void Corrupt_temperature_word_names_the_frame()
    {
        byte[] frame = [0x66, 0x67, 0x93, 0x80, 0x00, 0xA2];
        Assert.False(Sht3xProtocol.TryDecode(frame, out _, out _, out var error));
        Assert.StartsWith("temperature CRC mismatch: got 0x93", error, StringComparison.Ordinal);
        Assert.Contains("666793800", error, StringComparison.Ordinal);
    }

    [Property]
    public bool Encode_then_decode_round_trips(ushort st, ushort srh)
    {
        var t = -45 + (175.0 * st / 65535);
        var h = 100.0 * srh / 65535;
        var frame = new byte[6];
        Sht3xProtocol.Encode(frame, t, h);
        return Sht3xProtocol.TryDecode(frame, out var t2, out var h2, out _) && Math.Abs(t2 - t) < 1e-9 && Math.Abs(h2 - h) < 1e-9;
    }

    [Property]
    public bool Any_single_bit_flip_is_caught(ushort st, ushort srh, byte bitSeed)
    {
        var frame = new byte[6];
        Sht3xProtocol.Encode(frame, -45 + (175.0 * st / 65535), 100.0 * srh / 65535);
        var bit = bitSeed % 48;
        frame[bit / 8] ^= (byte)(1 << (bit % 8));
        return !Sht3xProtocol.TryDecode(frame, out _, out _, out _);
    }
}

public sealed class Sht3xSourceTests
{
    private readonly SeriesRegistry _registry = new();
    private readonly CollectingSampleSink _sink = new();

    private Sht3xSource Create(SimulatedSht3x chip)
    {
        var source = new Sht3xSource(new I2cSensorOptions { DeviceId = "cold-aisle-a", BusId = 3, Address = 0x44, OpenDevice = _ => chip });
        source.RegisterSeries(_registry);
        return source;
    }

    [Fact]
    public async Task Resets_the_chip_once_then_reads_temperature_and_humidity()
    {
        var chip = new SimulatedSht3x(bus: 3) { Celsius = 18.25, RelativeHumidity = 55.5 };
        await using var source = Create(chip);

        await source.PollAsync(_sink, 7, TestContext.Current.CancellationToken);
        await source.PollAsync(_sink, 8, TestContext.Current.CancellationToken);

        Assert.Equal(1, chip.Resets);
        Assert.Equal(2, chip.Measurements);
        Assert.Equal(4, _sink.All.Count);
        var t = _sink.All.First(s => _registry[s.Series].Metric == "temperature");
        var h = _sink.All.First(s => _registry[s.Series].Metric == "humidity");
        Assert.Equal(18.25, t.Value, 0.01);
        Assert.Equal(55.5, h.Value, 0.01);
        Assert.Equal(SampleQuality.Good, t.Quality);
    }

    [Fact]
    public async Task Crc_error_is_a_device_exception_not_a_stale_value()
    {
        var chip = new SimulatedSht3x(bus: 3) { Celsius = 20 };
        await using var source = Create(chip);
        await source.PollAsync(_sink, 1, TestContext.Current.CancellationToken);

        chip.Celsius = 30;
        chip.CorruptNextFrame = true;
        var ex = await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 2, TestContext.Current.CancellationToken).AsTask());

        Assert.Contains("i2c-3 0x44: temperature CRC mismatch", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(_sink.All, s => s.TimestampUnixMs == 2);
    }

    [Fact]
    public void Regression_binding_keeps_the_previous_value_when_the_crc_fails()
    {
        // Why Sht3xSource decodes frames itself: Iot.Device.Sht3x 4.2.0 ignores a CRC failure and returns the last value.
        var chip = new SimulatedSht3x { Celsius = 20 };
        using var binding = new Iot.Device.Sht3x.Sht3x(chip);
        Assert.Equal(20, binding.Temperature.DegreesCelsius, 0.1);

        chip.Celsius = 30;
        chip.CorruptNextFrame = true;

        Assert.Equal(20, binding.Temperature.DegreesCelsius, 0.1);
    }

    [Fact]
    public async Task Absent_chip_is_reported_with_bus_and_address()
    {
        var chip = new SimulatedSht3x(bus: 3) { Absent = true };
        await using var source = Create(chip);

        var ex = await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 0, TestContext.Current.CancellationToken).AsTask());

        Assert.Equal("cold-aisle-a", ex.DeviceId);
        Assert.Contains("i2c-3 0x44", ex.Message, StringComparison.Ordinal);
        Assert.Contains("no answer at 0x44 on /dev/i2c-3 (NACK): sensor unplugged or unpowered, wrong address (an SHT3x is at 0x44 with ADDR to GND, 0x45 with ADDR to VDD)", ex.Message, StringComparison.Ordinal);
        Assert.True(chip.Disposed); // the handle opened for the reset the chip did not answer is closed
    }

    [Theory]
    [InlineData(0xFF, "FFFFFFFFFFFF")]
    [InlineData(0x00, "000000000000")]
    public async Task A_data_line_stuck_high_or_low_fails_the_crc_and_publishes_nothing(byte stuck, string frame)
    {
        // Evidence for the README's fault table: CRC-8 of 0xFFFF is 0xAC and of 0x0000 is 0x81, so a floating or
        // shorted SDA never passes as a reading.
        var chip = new SimulatedSht3x { ReadsAs = stuck };
        await using var source = Create(chip);

        var ex = await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 0, TestContext.Current.CancellationToken).AsTask());

        Assert.Contains($"i2c-3 0x44: temperature CRC mismatch", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"(frame {frame})", ex.Message, StringComparison.Ordinal);
        Assert.Empty(_sink.All);
    }
}
