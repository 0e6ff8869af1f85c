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

    /// <summary>Channel <c>temperature</c>. A 12-bit conversion takes 750 ms inside the kernel read, within the default 2 s timeout.</summary>
    public SeriesSpec Temperature => Spec("temperature", DefaultTemperature);
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
    private readonly Sample[] _buffer = new Sample[1];
    private SeriesId _series = SeriesId.None;

    public Ds18b20Source(Ds18b20Options options, ILogger<Ds18b20Source>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _io = new BlockingIo(options.DeviceId, "w1", options.SensorId);
    }

    public string DeviceId => _options.DeviceId;

    public string SlavePath => Path.Combine(_options.SysfsRoot, _options.SensorId, "w1_slave");

    public void RegisterSeries(SeriesRegistry registry) =>
        _series = registry.GetOrAdd(_options.Temperature.Describe(_options.DeviceId));

    public async ValueTask PollAsync(ISampleSink sink, long acquiredAtUnixMs, CancellationToken cancellationToken)
    {
        if (_series.IsNone)
        {
            throw new InvalidOperationException("RegisterSeries must be called before PollAsync.");
        }

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
                _buffer[0] = new Sample(_series, acquiredAtUnixMs, reading.Celsius, _options.Temperature.Grade(reading.Celsius));
                break;
            case W1SlaveStatus.PowerOnReset:
                // The sensor answered, so the device is up, but 85 °C is not a measurement: publish it flagged.
                SensorInstruments.Error(DeviceId, Driver);
                Log.SensorWarning(_logger, DeviceId, reading.Detail);
                _buffer[0] = new Sample(_series, acquiredAtUnixMs, reading.Celsius, SampleQuality.DeviceError);
                break;
            default:
                Fail(reading.Detail);
                throw new SensorException(DeviceId, "w1", _options.SensorId, $"{reading.Detail} in {SlavePath}");
        }

        await sink.WriteAsync(_buffer, cancellationToken).ConfigureAwait(false);
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
        Log.ReadFailed(_logger, DeviceId, Driver, reason);
    }
}
