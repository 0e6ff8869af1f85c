using System.Device.I2c;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Sensors.Common;
using Iot.Device.Bmxx80;
using Iot.Device.Bmxx80.FilteringMode;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Sensors.I2c;

/// <summary>
/// Bosch BME280 (temperature, humidity, pressure) on I2C through Iot.Device.Bmxx80, in forced mode: one conversion
/// per poll, the chip sleeps in between (no self-heating). After every read the raw temperature register is checked
/// for its 0x80000 reset value: a chip that browned out since it was configured measures nothing, and the binding
/// would turn the reset value into a plausible-looking temperature. Any failure drops the binding so the next poll
/// re-reads the calibration and configures the chip again.
/// </summary>
public sealed class Bme280Source : IPolledSource
{
    public const byte ChipId = 0x60;
    public static readonly SeriesSpec DefaultTemperature = new("temperature", "Cel", Min: -40, Max: 85);
    public static readonly SeriesSpec DefaultHumidity = new("humidity", "%", Min: 0, Max: 100);
    public static readonly SeriesSpec DefaultPressure = new("pressure", "hPa", Min: 300, Max: 1100);

    private const string Driver = "bme280";
    private const byte RegisterChipId = 0xD0;
    private const byte RegisterDataStart = 0xF7; // press_msb … hum_lsb, 8 bytes

    private readonly I2cSensorOptions _options;
    private readonly ILogger _logger;
    private readonly BlockingIo _io;
    private readonly OutputSet _outputs;
    private readonly ReadFailureLog _failureLog;
    private I2cDevice? _device;
    private Bme280? _sensor;

    public Bme280Source(I2cSensorOptions options, ILogger<Bme280Source>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _failureLog = new ReadFailureLog(_logger, options.DeviceId, Driver);
        _io = new BlockingIo(options.DeviceId, options.BusName, options.AddressText);
        _outputs = new OutputSet(options.DeviceId, options.Resolve(Driver, ["temperature", "humidity", "pressure"], [new("temperature", DefaultTemperature), new("humidity", DefaultHumidity), new("pressure", DefaultPressure)], []));
    }

    public string DeviceId => _options.DeviceId;

    public void RegisterSeries(SeriesRegistry registry) => _outputs.Register(registry);

    public async ValueTask PollAsync(ISampleSink sink, long acquiredAtUnixMs, CancellationToken cancellationToken)
    {
        _outputs.EnsureRegistered();

        (double T, double H, double P) r;
        try
        {
            r = await _io.RunAsync(ReadOnce, _options.Timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (SensorException ex)
        {
            SensorInstruments.Error(DeviceId, Driver);
            _failureLog.Failed(ex.Message);
            throw;
        }

        SensorInstruments.Read(DeviceId, Driver);
        _failureLog.Succeeded();
        await _outputs.WriteAsync(sink, acquiredAtUnixMs, c => c switch { "temperature" => r.T, "humidity" => r.H, _ => r.P }, null, cancellationToken).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync()
    {
        Close();
        return ValueTask.CompletedTask;
    }

    private (double T, double H, double P) ReadOnce()
    {
        try
        {
            var sensor = _sensor ?? Open();
            var result = sensor.Read();
            if (_device is null)
            {
                throw Fail("device closed during the read");
            }

            if (DataRegisterProblem(_device) is { } problem)
            {
                throw Fail(problem);
            }

            if (result.Temperature is not { } t || result.Humidity is not { } h || result.Pressure is not { } p)
            {
                throw Fail("a channel was skipped (oversampling 0)");
            }

            return (t.DegreesCelsius, h.Percent, p.Hectopascals);
        }
        catch (IOException ex) when (_options.Nack(ex, "a BME280 is at 0x76 with SDO to GND, 0x77 with SDO to VDD") is { } nack)
        {
            Close();
            throw nack;
        }
        catch
        {
            Close();
            throw;
        }
    }

    private Bme280 Open()
    {
        var device = _options.Open();
        _device = device;
        device.WriteByte(RegisterChipId);
        var id = device.ReadByte();
        if (id != ChipId)
        {
            throw Fail(id == 0x58
                ? "chip id 0x58 is a BMP280 (no humidity), not a BME280 (0x60)"
                : $"chip id 0x{id:x2} is not a BME280 (expects 0x60)");
        }

        var sampling = _options.Oversampling switch
        {
            1 => Sampling.UltraLowPower,
            2 => Sampling.LowPower,
            4 => Sampling.Standard,
            8 => Sampling.HighResolution,
            16 => Sampling.UltraHighResolution,
            _ => throw Fail($"oversampling {_options.Oversampling} is not one of 1, 2, 4, 8, 16"),
        };
        _sensor = new Bme280(device)
        {
            TemperatureSampling = sampling,
            PressureSampling = sampling,
            HumiditySampling = sampling,
            FilterMode = Bmx280FilteringMode.Off,
        };
        return _sensor;
    }

    /// <summary>
    /// Raw data registers the binding would turn into plausible numbers: the temperature's reset value (a brown-out
    /// since configuration), or every byte 0xFF / 0x00 (a data line floating high or held low while the address still
    /// ACKs), which came out as humidity 100 % / 0 % with Good quality.
    /// </summary>
    private static string? DataRegisterProblem(I2cDevice device)
    {
        Span<byte> raw = stackalloc byte[8];
        device.WriteByte(RegisterDataStart);
        device.Read(raw);
        if (raw.IndexOfAnyExcept((byte)0xFF) < 0 || raw.IndexOfAnyExcept((byte)0x00) < 0)
        {
            return $"every data register reads 0x{raw[0]:x2} (SDA stuck {(raw[0] == 0 ? "low" : "high")}: check the wiring and the pull-ups); no value published";
        }

        return raw[3] == 0x80 && raw[4] == 0 && (raw[5] & 0xF0) == 0
            ? "temperature register holds its reset value 0x80000: the chip was reset since it was configured; re-initialising"
            : null;
    }

    private SensorException Fail(string message) => new(DeviceId, _options.BusName, _options.AddressText, message);

    private void Close()
    {
        // The binding owns and disposes the device once constructed; before that we do.
        if (_sensor is not null)
        {
            _sensor.Dispose();
        }
        else
        {
            _device?.Dispose();
        }

        _sensor = null;
        _device = null;
    }
}
