using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Sensors.Common;
using Iot.Device.DHTxx;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Sensors.Gpio;

public sealed record Dht22Options : GpioSensorOptions
{
    public static readonly SeriesSpec DefaultTemperature = new("temperature", "Cel", Min: -40, Max: 80);
    public static readonly SeriesSpec DefaultHumidity = new("humidity", "%", Min: 0, Max: 100);

    public Dht22Options()
    {
        // The binding sleeps 1 s when first opened and bit-bangs ~45 ms per frame.
        Timeout = TimeSpan.FromSeconds(4);
    }
}

/// <summary>
/// DHT22 / AM2302 on one GPIO line through Iot.Device.DHTxx, which bit-bangs the single-wire protocol (start pulse,
/// 40 bits timed by pulse width, 8-bit sum checksum) on the <see cref="System.Device.Gpio.GpioController"/>. The
/// binding's timing loop blocks a thread for ~45 ms, so it runs behind <see cref="BlockingIo"/>. A bad checksum or a
/// missing answer is a <see cref="SensorException"/>; the scheduler's next poll is the retry (the sensor needs 2 s
/// between reads anyway).
/// </summary>
public sealed class Dht22Source : IPolledSource
{
    private const string Driver = "dht22";
    private readonly Dht22Options _options;
    private readonly ILogger _logger;
    private readonly BlockingIo _io;
    private readonly OutputSet _outputs;
    private readonly ReadFailureLog _failureLog;
    private Dht22? _sensor;

    public Dht22Source(Dht22Options options, ILogger<Dht22Source>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _failureLog = new ReadFailureLog(_logger, options.DeviceId, Driver);
        _io = new BlockingIo(options.DeviceId, "gpio", options.PinText);
        _outputs = new OutputSet(options.DeviceId, options.Resolve(Driver, ["temperature", "humidity"], [new("temperature", Dht22Options.DefaultTemperature), new("humidity", Dht22Options.DefaultHumidity)], []));
    }

    public string DeviceId => _options.DeviceId;

    public void RegisterSeries(SeriesRegistry registry) => _outputs.Register(registry);

    public async ValueTask PollAsync(ISampleSink sink, long acquiredAtUnixMs, CancellationToken cancellationToken)
    {
        _outputs.EnsureRegistered();

        (double T, double H) r;
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
        await _outputs.WriteAsync(sink, acquiredAtUnixMs, c => c == "temperature" ? r.T : r.H, null, cancellationToken).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync()
    {
        // shouldDispose: false → closes only our pin, never the shared controller.
        _sensor?.Dispose();
        _sensor = null;
        return ValueTask.CompletedTask;
    }

    private (double T, double H) ReadOnce()
    {
        // Cached frames are reused for MinTimeBetweenReads; the binding compares against its Milliseconds component
        // (2.5 s → 500 ms), which is still long enough for the humidity call to reuse the temperature call's frame.
        _sensor ??= new Dht22(_options.Pin, _options.Controller(), shouldDispose: false) { MinTimeBetweenReads = TimeSpan.FromSeconds(2.5) };
        if (_sensor.TryReadTemperature(out var t) && _sensor.TryReadHumidity(out var h))
        {
            return (t.DegreesCelsius, h.Percent);
        }

        // Iot.Device.DHTxx 4.2.0 skips every read while Environment.TickCount is negative (uptime 24.9–49.7 days),
        // because it compares against a last-read time that starts at 0: say so instead of blaming the wiring.
        var reason = Environment.TickCount < 0
            ? "no frame: Iot.Device.DHTxx skips reads while Environment.TickCount is negative (host uptime 24.9–49.7 days)"
            : "no valid frame (checksum mismatch, or no answer to the start pulse: sensor missing or line not pulled up)";
        throw new SensorException(DeviceId, "gpio", _options.PinText, reason);
    }
}
