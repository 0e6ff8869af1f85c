using System.Device.I2c;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Sensors.Common;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Sensors.I2c;

/// <summary>
/// Sensirion SHT30/31/35 on I2C. The chip is soft-reset through Iot.Device.Sht3x when it is first opened, but the
/// measurement is done here: the binding's <c>ReadTempAndHumidity</c> silently keeps the previous value when a CRC
/// fails (and blocks the thread for 20 ms), so a corrupt frame would be published as a fresh good reading. Here a
/// CRC mismatch is an error naming the frame, and the conversion wait is an async delay.
/// </summary>
public sealed class Sht3xSource : IPolledSource
{
    public static readonly SeriesSpec DefaultTemperature = new("temperature", "Cel", Min: -40, Max: 125);
    public static readonly SeriesSpec DefaultHumidity = new("humidity", "%", Min: 0, Max: 100);

    private const string Driver = "sht3x";
    private readonly I2cSensorOptions _options;
    private readonly ILogger _logger;
    private readonly BlockingIo _io;
    private readonly OutputSet _outputs;
    private readonly ReadFailureLog _failureLog;
    private I2cDevice? _device;

    public Sht3xSource(I2cSensorOptions options, ILogger<Sht3xSource>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _failureLog = new ReadFailureLog(_logger, options.DeviceId, Driver);
        _io = new BlockingIo(options.DeviceId, options.BusName, options.AddressText);
        _outputs = new OutputSet(options.DeviceId, options.Resolve(Driver, ["temperature", "humidity"], [new("temperature", DefaultTemperature), new("humidity", DefaultHumidity)], []));
    }

    public string DeviceId => _options.DeviceId;

    public void RegisterSeries(SeriesRegistry registry) => _outputs.Register(registry);

    public async ValueTask PollAsync(ISampleSink sink, long acquiredAtUnixMs, CancellationToken cancellationToken)
    {
        _outputs.EnsureRegistered();

        double t, h;
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(_options.Timeout);
            await _io.RunAsync(StartMeasurement, _options.Timeout, cancellationToken).ConfigureAwait(false);
            await Task.Delay(Sht3xProtocol.SingleShot(_options.Repeatability).Duration, deadline.Token).ConfigureAwait(false);
            var frame = await _io.RunAsync(ReadFrame, _options.Timeout, cancellationToken).ConfigureAwait(false);
            if (!Sht3xProtocol.TryDecode(frame, out t, out h, out var error))
            {
                throw new SensorException(DeviceId, _options.BusName, _options.AddressText, error);
            }
        }
        catch (SensorException ex)
        {
            SensorInstruments.Error(DeviceId, Driver);
            _failureLog.Failed(ex.Message);
            throw;
        }

        SensorInstruments.Read(DeviceId, Driver);
        _failureLog.Succeeded();
        await _outputs.WriteAsync(sink, acquiredAtUnixMs, c => c == "temperature" ? t : h, null, cancellationToken).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync()
    {
        _device?.Dispose();
        _device = null;
        return ValueTask.CompletedTask;
    }

    private bool StartMeasurement()
    {
        try
        {
            if (_device is null)
            {
                // Kept before the reset so a chip that NACKs it has its handle closed below.
                _device = _options.Open();
                // The binding's constructor soft-resets the chip (0x30A2) and waits for it; we keep the device, not the binding.
                _ = new Iot.Device.Sht3x.Sht3x(_device);
            }

            Span<byte> command = stackalloc byte[2];
            Sht3xProtocol.WriteCommand(command, Sht3xProtocol.SingleShot(_options.Repeatability).Command);
            _device.Write(command);
            return true;
        }
        catch (IOException ex) when (_options.Nack(ex, "an SHT3x is at 0x44 with ADDR to GND, 0x45 with ADDR to VDD") is { } nack)
        {
            _device?.Dispose();
            _device = null;
            throw nack;
        }
        catch
        {
            _device?.Dispose();
            _device = null;
            throw;
        }
    }

    private byte[] ReadFrame()
    {
        var device = _device ?? throw new SensorException(DeviceId, _options.BusName, _options.AddressText, "device closed during measurement");
        var frame = new byte[6];
        try
        {
            device.Read(frame);
        }
        catch (IOException ex)
        {
            // Without clock stretching the chip NACKs a read while it is still converting.
            throw new SensorException(DeviceId, _options.BusName, _options.AddressText, "no measurement ready (NACK on read)", ex);
        }

        return frame;
    }
}
