using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Sensors.Common;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Sensors.OneWire;

public sealed record Ds18b20Options : SensorOptions
{
    public static readonly SeriesSpec DefaultTemperature = new("temperature", "Cel", Min: -55, Max: 125);

    /// <summary>The 1-Wire id, family 28 (e.g. <c>28-0316a2791aff</c>), from <c>address: w1:28-…</c>.</summary>
    public required string SensorId { get; init; }

    /// <summary>Where the w1 bus exposes its slaves. Injectable so tests can lay out a fake sysfs tree.</summary>
    public string SysfsRoot { get; init; } = "/sys/bus/w1/devices";

}

/// <summary>
/// DS18B20 through the Linux w1-gpio + w1_therm drivers. Iot.Device.OneWire reads the same <c>w1_slave</c> file,
/// but its sysfs path is a compile-time constant and it throws away the CRC/power-on detail, so this source reads
/// the file itself from an injectable root (same format, same kernel driver).
/// </summary>
public sealed class Ds18b20Source : IPolledSource
{
    private const string Driver = "ds18b20";
    private readonly Ds18b20Options _options;
    private readonly ILogger _logger;
    private readonly BlockingIo _io;
    private readonly OutputSet _outputs;
    private readonly ReadFailureLog _failureLog;

    public Ds18b20Source(Ds18b20Options options, ILogger<Ds18b20Source>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _io = new BlockingIo(options.DeviceId, "w1", options.SensorId);
        _failureLog = new ReadFailureLog(_logger, options.DeviceId, Driver);
        _outputs = new OutputSet(options.DeviceId, options.Resolve(Driver, ["temperature"], [new("temperature", Ds18b20Options.DefaultTemperature)], []));
    }

    public string DeviceId => _options.DeviceId;

    public string SlavePath => Path.Combine(_options.SysfsRoot, _options.SensorId, "w1_slave");

    public void RegisterSeries(SeriesRegistry registry) => _outputs.Register(registry);

    public async ValueTask PollAsync(ISampleSink sink, long acquiredAtUnixMs, CancellationToken cancellationToken)
    {
        _outputs.EnsureRegistered();

        W1SlaveReading reading;
        try
        {
            var text = await _io.RunAsync(ReadSlaveFile, _options.Timeout, cancellationToken).ConfigureAwait(false);
            reading = W1SlaveReading.Parse(text);
        }
        catch (SensorException ex)
        {
            Fail(ex.Message);
            throw;
        }

        switch (reading.Status)
        {
            case W1SlaveStatus.Ok:
                SensorInstruments.Read(DeviceId, Driver);
                _failureLog.Succeeded();
                await _outputs.WriteAsync(sink, acquiredAtUnixMs, _ => reading.Celsius, null, cancellationToken).ConfigureAwait(false);
                break;
            case W1SlaveStatus.PowerOnReset:
                // The sensor answered, so the device is up, but 85 °C is not a measurement: publish it flagged.
                SensorInstruments.Error(DeviceId, Driver);
                _failureLog.Failed(new SensorException(DeviceId, "w1", _options.SensorId, $"{reading.Detail}; published with DeviceError quality").Message);
                await _outputs.WriteAsync(sink, acquiredAtUnixMs, _ => reading.Celsius, null, cancellationToken, SampleQuality.DeviceError).ConfigureAwait(false);
                break;
            default:
                var error = new SensorException(DeviceId, "w1", _options.SensorId, $"{reading.Detail} in {SlavePath}");
                Fail(error.Message);
                throw error;
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private string ReadSlaveFile()
    {
        if (!Directory.Exists(_options.SysfsRoot))
        {
            throw new SensorException(DeviceId, "w1", _options.SensorId, $"no 1-Wire bus at {_options.SysfsRoot} (w1-gpio overlay not loaded?)");
        }

        if (!File.Exists(SlavePath))
        {
            throw new SensorException(DeviceId, "w1", _options.SensorId, $"sensor not on the bus ({SlavePath} missing: unplugged, wrong id or broken wire)");
        }

        return File.ReadAllText(SlavePath);
    }

    private void Fail(string reason)
    {
        SensorInstruments.Error(DeviceId, Driver);
        _failureLog.Failed(reason);
    }
}
