using System.Device.I2c;
using System.Globalization;
using EdgeTwin.Sensors.Common;

namespace EdgeTwin.Sensors.I2c;

/// <summary>Where an I2C sensor sits (<c>address: i2c:BUS:ADDR</c>) and how its bus device is opened.</summary>
public sealed record I2cSensorOptions : SensorOptions
{
    /// <summary>Linux bus number: <c>/dev/i2c-N</c>.</summary>
    public required int BusId { get; init; }

    /// <summary>7-bit device address (BME280 0x76/0x77, SHT3x 0x44/0x45).</summary>
    public required int Address { get; init; }

    /// <summary>Opens the bus device. Defaults to the real <c>/dev/i2c-N</c>; tests pass a simulated chip.</summary>
    public Func<I2cConnectionSettings, I2cDevice> OpenDevice { get; init; } = I2cDevice.Create;

    /// <summary>BME280 oversampling of every channel: 1, 2, 4, 8 or 16 (profile parameter <c>oversampling</c>).</summary>
    public int Oversampling { get; init; } = 4;

    /// <summary>SHT3x single-shot repeatability (profile parameter <c>repeatability</c>).</summary>
    public Sht3xRepeatability Repeatability { get; init; } = Sht3xRepeatability.High;

    public string BusName => "i2c-" + BusId.ToString(CultureInfo.InvariantCulture);

    public string AddressText => "0x" + Address.ToString("x2", CultureInfo.InvariantCulture);

    /// <summary>The bus's character device.</summary>
    public string BusDevicePath => "/dev/i2c-" + BusId.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// Opens the device; a bus that cannot be opened is reported as such. The binding's own text ("Error 2. Can not
    /// open I2C device file") says neither whether the bus number is wrong nor what to do about it.
    /// </summary>
    internal I2cDevice Open()
    {
        try
        {
            return OpenDevice(new I2cConnectionSettings(BusId, Address));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            var path = BusDevicePath;
            var why = !File.Exists(path)
                ? $"no I2C bus {path} (wrong bus number, or I2C not enabled: dtparam=i2c_arm=on in /boot/firmware/config.txt or raspi-config; `ls /dev/i2c-*` lists the buses)"
                : $"cannot open {path}: {ex.Message} (the agent's user needs read/write access: group i2c)";
            throw new SensorException(DeviceId, BusName, AddressText, why, ex);
        }
    }

    /// <summary>
    /// A transfer the chip did not acknowledge, told apart from other bus errors: the binding's "Error 121 performing I2C
    /// data transfer." (EREMOTEIO; ENXIO, 6, on some adapters) said nothing of a wrong address or an unplugged sensor,
    /// which is what it nearly always is. <paramref name="addresses"/> names where the chip can be.
    /// </summary>
    internal SensorException? Nack(Exception ex, string addresses)
    {
        if (ex is not IOException io || !(io.Message.StartsWith("Error 121 ", StringComparison.Ordinal) || io.Message.StartsWith("Error 6 ", StringComparison.Ordinal)))
        {
            return null;
        }

        return new SensorException(DeviceId, BusName, AddressText,
            $"no answer at {AddressText} on {BusDevicePath} (NACK): sensor unplugged or unpowered, wrong address ({addresses}) or SDA/SCL swapped; `i2cdetect -y {BusId.ToString(CultureInfo.InvariantCulture)}` lists the addresses that answer ({io.Message.TrimEnd('.')})", io);
    }
}
