using System.Device.Gpio;
using System.Globalization;
using System.Text.Json;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Sensors.Common;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Sensors.Gpio;

public enum PulseMeterKind
{
    /// <summary>Electricity meter: total in kWh, rate in kW.</summary>
    Energy,
    /// <summary>Water/gas meter: total in m³, rate in m³/h.</summary>
    Flow,
}

public sealed record PulseCounterOptions : GpioSensorOptions
{
    public PulseMeterKind Kind { get; init; } = PulseMeterKind.Energy;

    /// <summary>Pulses per kWh or per m³, as printed on the meter (e.g. 1000 imp/kWh, 100 imp/m³).</summary>
    public required double PulsesPerUnit { get; init; }

    /// <summary>The counted edge. S0 outputs (EN 62053-31) close an opto-transistor to ground: falling with pull-up.</summary>
    public PinEventTypes Edge { get; init; } = PinEventTypes.Falling;

    /// <summary>
    /// A counted edge needs the line quiet (no edge either way) for this long before it; closer edges are bounce
    /// (S0 pulses and pauses are ≥ 30 ms long).
    /// </summary>
    public TimeSpan MinPulseGap { get; init; } = TimeSpan.FromMilliseconds(20);

    /// <summary>How often the total and the rate are published.</summary>
    public TimeSpan ReportInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// File holding the pulse count across restarts; null keeps it in memory only. Written atomically (temp file,
    /// fsync, rename) every <see cref="PersistInterval"/> and on shutdown.
    /// </summary>
    public string? StatePath { get; init; }

    public TimeSpan PersistInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Channels: <c>count</c> (raw pulses) and <c>total</c> (pulses / pulses per unit); either can be published as a
    /// per-second rate. Defaults: the total (kWh or m³) and its rate scaled to kW or m³/h.
    /// </summary>
    public IReadOnlyList<SensorOutput> DefaultOutputs => Kind == PulseMeterKind.Energy
        ? [new("total", new SeriesSpec("energy", "kW.h", MetricKind.Counter, Min: 0)), new("total", new SeriesSpec("power", "kW", Min: 0) { Scale = 3600 }, Rate: true)]
        : [new("total", new SeriesSpec("volume", "m3", MetricKind.Counter, Min: 0)), new("total", new SeriesSpec("flow", "m3/h", Min: 0) { Scale = 3600 }, Rate: true)];
}

/// <summary>
/// An S0 pulse counter (energy or water meter) on a GPIO edge interrupt. Every <see cref="PulseCounterOptions.ReportInterval"/>
/// it publishes the meter total (counter) and the mean rate over the interval. The pulse count survives restarts
/// through a small state file; see <see cref="PulseCounterOptions.StatePath"/> and the README for the trade-off.
/// </summary>
public sealed class PulseCounterSource : IPushSource
{
    private const string Driver = "pulse";
    private readonly PulseCounterOptions _options;
    private readonly ILogger _logger;
    private readonly OutputSet _outputs;
    private readonly long _minGapTicks;
    private long _pulses;
    private long _lastEdgeTimestamp;
    private long _rejected;

    public PulseCounterSource(PulseCounterOptions options, ILogger<PulseCounterSource>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!(options.PulsesPerUnit > 0))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.PulsesPerUnit, "PulsesPerUnit must be positive.");
        }

        _options = options;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _outputs = new OutputSet(options.DeviceId, options.Resolve(Driver, ["count", "total"], options.DefaultOutputs, ["count", "total"]));
        _minGapTicks = (long)(options.MinPulseGap.TotalSeconds * options.Time.TimestampFrequency);
    }

    public string Name => _options.DeviceId;

    /// <summary>Pulses counted so far, including those restored from the state file.</summary>
    public long Pulses => Interlocked.Read(ref _pulses);

    /// <summary>Edges of the counted direction dropped as bounce.</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    public void RegisterSeries(SeriesRegistry registry) => _outputs.Register(registry);

    public async Task RunAsync(ISampleSink samples, IEventSink events, CancellationToken cancellationToken)
    {
        _outputs.EnsureRegistered();

        Interlocked.Exchange(ref _pulses, await LoadAsync(cancellationToken).ConfigureAwait(false));
        GpioController controller;
        var time = _options.Time;
        using var timer = new PeriodicTimer(_options.ReportInterval, time);
        var lastReport = time.GetTimestamp();
        var lastPulses = Pulses;
        var lastSave = lastReport;
        var savedPulses = lastPulses;
        try
        {
            controller = _options.Controller();
            controller.OpenPin(_options.Pin, _options.InputMode);
            // Both directions: the release's bounce is told apart by the edge just before it (see OnPulse).
            controller.RegisterCallbackForPinValueChangedEvent(_options.Pin, PinEventTypes.Rising | PinEventTypes.Falling, OnPulse);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or UnauthorizedAccessException or ArgumentException or PlatformNotSupportedException or NotSupportedException)
        {
            throw new SensorException(_options.DeviceId, "gpio", _options.PinText, "cannot open the line for edge events: " + ex.Message, ex);
        }

        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                var now = time.GetTimestamp();
                var pulses = Pulses;
                var seconds = time.GetElapsedTime(lastReport, now).TotalSeconds;
                var delta = pulses - lastPulses;
                var ppu = _options.PulsesPerUnit;
                var stamp = time.GetUtcNow().ToUnixTimeMilliseconds();
                await _outputs.WriteAsync(
                    samples,
                    stamp,
                    c => c == "count" ? pulses : pulses / ppu,
                    c => seconds <= 0 ? 0 : (c == "count" ? delta : delta / ppu) / seconds,
                    cancellationToken).ConfigureAwait(false);
                SensorInstruments.Read(_options.DeviceId, Driver);
                lastReport = now;
                lastPulses = pulses;

                if (pulses != savedPulses && time.GetElapsedTime(lastSave, now) >= _options.PersistInterval)
                {
                    await SaveAsync(pulses, cancellationToken).ConfigureAwait(false);
                    savedPulses = pulses;
                    lastSave = now;
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // normal shutdown
        }
        finally
        {
            controller.UnregisterCallbackForPinValueChangedEvent(_options.Pin, OnPulse);
            if (controller.IsPinOpen(_options.Pin))
            {
                controller.ClosePin(_options.Pin);
            }

            // Shutdown save gets its own short deadline: the host's token is already cancelled.
            using var saveDeadline = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await SaveAsync(Pulses, saveDeadline.Token).ConfigureAwait(false);
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private void OnPulse(object sender, PinValueChangedEventArgs e)
    {
        // Gap from the previous edge of either direction, not from the previous counted pulse: a reed contact bounces
        // when it opens as well, a pulse length (30 ms … seconds) after the counted edge, and those falling edges were
        // further than the gap from it and counted as pulses (a water meter read double).
        var now = _options.Time.GetTimestamp();
        var last = Interlocked.Exchange(ref _lastEdgeTimestamp, now);
        if ((e.ChangeType & _options.Edge) == 0)
        {
            return;
        }

        if (last != 0 && now - last < _minGapTicks)
        {
            Interlocked.Increment(ref _rejected);
            SensorInstruments.PulsesRejected.Add(1, SensorInstruments.Tags(_options.DeviceId, Driver));
            return;
        }

        Interlocked.Increment(ref _pulses);
        SensorInstruments.Pulses.Add(1, SensorInstruments.Tags(_options.DeviceId, Driver));
    }

    private async Task<long> LoadAsync(CancellationToken cancellationToken)
    {
        var path = _options.StatePath;
        if (path is null || !File.Exists(path))
        {
            return 0;
        }

        try
        {
            await using var stream = File.OpenRead(path);
            var state = await JsonSerializer.DeserializeAsync(stream, PulseStateJson.Default.PulseState, cancellationToken).ConfigureAwait(false);
            if (state is null || state.Pulses < 0)
            {
                throw new InvalidDataException("negative or missing pulse count");
            }

            if (Math.Abs(state.PulsesPerUnit - _options.PulsesPerUnit) > 1e-9)
            {
                Log.SensorWarning(_logger, _options.DeviceId, string.Create(CultureInfo.InvariantCulture,
                    $"pulses per unit changed from {state.PulsesPerUnit} to {_options.PulsesPerUnit}; the saved pulse count is kept and now reads as a different total"));
            }

            return state.Pulses;
        }
        catch (Exception ex) when (ex is IOException or JsonException or InvalidDataException or UnauthorizedAccessException)
        {
            // Starting from zero is a counter reset, which the twin's counter handling absorbs; refusing to start would lose all pulses.
            Log.CounterStateUnreadable(_logger, _options.DeviceId, path, ex.Message);
            return 0;
        }
    }

    private async Task SaveAsync(long pulses, CancellationToken cancellationToken)
    {
        var path = _options.StatePath;
        if (path is null)
        {
            return;
        }

        var temp = path + ".tmp";
        try
        {
            var state = new PulseState(pulses, _options.PulsesPerUnit, _options.Time.GetUtcNow());
            await using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 4096, FileOptions.Asynchronous))
            {
                await JsonSerializer.SerializeAsync(stream, state, PulseStateJson.Default.PulseState, cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or OperationCanceledException)
        {
            Log.CounterStateSaveFailed(_logger, _options.DeviceId, path, ex.Message);
        }
    }
}

internal sealed record PulseState(long Pulses, double PulsesPerUnit, DateTimeOffset SavedAt);

[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.SnakeCaseLower)]
[System.Text.Json.Serialization.JsonSerializable(typeof(PulseState))]
internal sealed partial class PulseStateJson : System.Text.Json.Serialization.JsonSerializerContext;
