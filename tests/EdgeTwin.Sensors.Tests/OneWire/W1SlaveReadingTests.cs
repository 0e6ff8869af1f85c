using EdgeTwin.Sensors.OneWire;
using EdgeTwin.Sensors.Tests.Fakes;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace EdgeTwin.Sensors.Tests.OneWire;

public sealed class W1SlaveReadingTests
{
    // The widely published w1_therm output of a DS18B20 at 23.125 °C (its CRC byte 57 is checked below).
    private const string Captured23C = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n";

    [Fact]
    public void Captured_positive_reading_parses_to_the_scratchpad_value()
    {
        var r = W1SlaveReading.Parse(Captured23C);
        Assert.Equal(W1SlaveStatus.Ok, r.Status);
        Assert.Equal(23.125, r.Celsius);
    }

    [Fact]
    public void Fake_bus_crc_matches_the_captured_crc_byte()
    {
        byte[] scratch = [0x72, 0x01, 0x4b, 0x46, 0x7f, 0xff, 0x0e, 0x10];
        Assert.Equal(0x57, FakeW1Bus.DallasCrc8(scratch));
    }

    [Fact]
    public void Negative_temperature_is_twos_complement()
    {
        // -10.125 °C = 0xFF5E (datasheet table 1)
        const string text = "5e ff 4b 46 7f ff 02 10 d7 : crc=d7 YES\n5e ff 4b 46 7f ff 02 10 d7 t=-10125\n";
        var r = W1SlaveReading.Parse(text);
        Assert.Equal(W1SlaveStatus.Ok, r.Status);
        Assert.Equal(-10.125, r.Celsius);
    }

    [Fact]
    public void Crc_NO_line_is_a_crc_error()
    {
        const string text = "72 01 4b 46 7f ff 0e 10 57 : crc=12 NO\n72 01 4b 46 7f ff 0e 10 57 t=23125\n";
        var r = W1SlaveReading.Parse(text);
        Assert.Equal(W1SlaveStatus.CrcError, r.Status);
        Assert.True(double.IsNaN(r.Celsius));
    }

    [Fact]
    public void Power_on_reset_85C_is_recognised_from_the_scratchpad()
    {
        const string text = "50 05 4b 46 7f ff 0c 10 1c : crc=1c YES\n50 05 4b 46 7f ff 0c 10 1c t=85000\n";
        var r = W1SlaveReading.Parse(text);
        Assert.Equal(W1SlaveStatus.PowerOnReset, r.Status);
        Assert.Equal(85.0, r.Celsius);
    }

    [Fact]
    public void All_zero_scratchpad_passes_kernel_crc_but_is_no_response()
    {
        const string text = "00 00 00 00 00 00 00 00 00 : crc=00 YES\n00 00 00 00 00 00 00 00 00 t=0\n";
        Assert.Equal(W1SlaveStatus.NoResponse, W1SlaveReading.Parse(text).Status);
    }

    [Theory]
    [InlineData("")]
    [InlineData("72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n")]
    [InlineData("72 01 4b 46 7f ff 0e 10 57 : crc=57 MAYBE\n72 01 4b 46 7f ff 0e 10 57 t=23125\n")]
    [InlineData("72 01 4b 46 7f ff 0e 10 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 t=23125\n")]
    [InlineData("72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=\n")]
    [InlineData("72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=99000\n")]
    public void Malformed_files_are_rejected(string text) =>
        Assert.Equal(W1SlaveStatus.Malformed, W1SlaveReading.Parse(text).Status);

    [Property(MaxTest = 300)]
    public bool Every_raw_value_in_the_sensor_range_round_trips(short seed)
    {
        var raw = (short)(-55 * 16 + (Math.Abs((int)seed) % ((125 + 55) * 16 + 1)));
        if (raw == 0x0550)
        {
            return true; // 85 °C is the reset value, covered above
        }

        using var bus = new FakeW1Bus();
        bus.SetRaw("28-000000000001", raw);
        var text = File.ReadAllText(Path.Combine(bus.Root, "28-000000000001", "w1_slave"));
        var r = W1SlaveReading.Parse(text);
        return r.Status == W1SlaveStatus.Ok && r.Celsius == raw / 16.0;
    }

    [Property(MaxTest = 200)]
    public void Arbitrary_text_never_throws(string? text) => W1SlaveReading.Parse(text ?? string.Empty);
}
