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
            throw new SensorException(DeviceId, "w1", _options.SensorId, $"sensor not on the bus ({SlavePath} missing{OnTheBus()})");
        }

        return File.ReadAllText(SlavePath);
    }

    /// <summary>
    /// What the bus holds instead, so the message tells a replaced sensor (a new id: "unplugged, wrong id or broken
    /// wire" sent the technician to check the wiring of a sensor that was fine) from an empty bus and from the noise
    /// ids a missing pull-up gives.
    /// </summary>
    private string OnTheBus()
    {
        string[] ids;
        try
        {
            ids = [.. Directory.EnumerateDirectories(_options.SysfsRoot).Select(Path.GetFileName).OfType<string>()
                .Where(n => !n.StartsWith("w1_bus_master", StringComparison.Ordinal) && n.Length > 3 && n[2] == '-')
                .Order(StringComparer.Ordinal)];
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return ": unplugged, wrong id or broken wire";
        }

        string[] thermometers = [.. ids.Where(n => n[..2] is "28" or "22" or "3b" or "42")];
        if (thermometers.Length > 0)
        {
            var list = string.Join(", ", thermometers.Take(8)) + (thermometers.Length > 8 ? ", …" : "");
            return $"; thermometers on the bus now: {list} — a replaced sensor has a new id: give the one no other device uses in address: w1:…";
        }

        if (ids.Length > 0 && ids.All(n => n.StartsWith("00-", StringComparison.Ordinal)))
        {
            return $"; only noise ids on the bus ({string.Join(", ", ids.Take(3))}): the 4.7 kΩ pull-up from DQ to 3.3 V is missing or DQ is not connected";
        }

        return "; no thermometer on the bus at all: unplugged or broken wire (DQ, 3.3 V, GND) or the pull-up missing";
    }

    private void Fail(string reason)
    {
        SensorInstruments.Error(DeviceId, Driver);
        _failureLog.Failed(reason);
    }
}
