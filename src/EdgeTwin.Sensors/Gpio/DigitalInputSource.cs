using System.Device.Gpio;
using System.Globalization;
using System.Threading.Channels;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Sensors.Common;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Sensors.Gpio;

/// <summary>What a contact input means; sets labels and how urgent a change to active is.</summary>
public enum DigitalInputKind
{
    Generic,
    Leak,
    Door,
    Smoke,
}

public sealed record DigitalInputOptions : GpioSensorOptions
{
    public static readonly SeriesSpec DefaultState = new("state", "1", MetricKind.State, Min: 0, Max: 1);

    /// <summary>Channel <c>changes</c>: accepted changes since start (a counter; not published unless asked for).</summary>
    public static readonly SeriesSpec DefaultChanges = new("changes", "1", MetricKind.Counter, Min: 0);

    public DigitalInputKind Kind { get; init; } = DigitalInputKind.Generic;

    /// <summary>True when the active condition pulls the line low (contact to ground with pull-up): the usual wiring.</summary>
    public bool ActiveLow { get; init; } = true;

    /// <summary>The level must stay unchanged this long after the last edge before a change is accepted.</summary>
    public TimeSpan Debounce { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>The state is also published at this period without a change, so summaries and stale detection have data.</summary>
    public TimeSpan StateInterval { get; init; } = TimeSpan.FromSeconds(60);

    public (string Active, string Inactive) Labels => Kind switch
    {
        DigitalInputKind.Leak => ("leak detected", "dry"),
        DigitalInputKind.Door => ("open", "closed"),
        DigitalInputKind.Smoke => ("smoke detected", "clear"),
        _ => ("active", "inactive"),
    };

    public EventSeverity ActiveSeverity => Kind switch
    {
        DigitalInputKind.Leak or DigitalInputKind.Smoke => EventSeverity.Critical,
        DigitalInputKind.Door => EventSeverity.Warning,
        _ => EventSeverity.Info,
    };
}

/// <summary>
/// A dry-contact input (leak rope, door switch, smoke detector relay) driven by GPIO edge interrupts. Edges only wake
/// the source; a change is accepted when the line has been quiet for <see cref="DigitalInputOptions.Debounce"/> and
/// the settled level differs from the last reported state, so contact bounce gives exactly one event. Each accepted
/// change publishes an <see cref="EdgeEventKind.InputChanged"/> event (stamped with the first edge of the burst) and
/// a state sample (1 = active).
/// </summary>
public sealed class DigitalInputSource : IPushSource
{
    private const string Driver = "digital";
    private readonly DigitalInputOptions _options;
    private readonly ILogger _logger;
    private readonly OutputSet _outputs;
    private readonly Channel<long> _edges = Channel.CreateBounded<long>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest });
    private long _changes;
    private GpioController? _controller;
    private long _lastEdgeTimestamp;
    private long _firstEdgeTimestamp;
    private int _edgesInBurst;

    public DigitalInputSource(DigitalInputOptions options, ILogger<DigitalInputSource>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _outputs = new OutputSet(options.DeviceId, options.Resolve(Driver, ["state", "changes"], [new("state", DigitalInputOptions.DefaultState)], []));
    }

    public string Name => _options.DeviceId;

    /// <summary>The last accepted state (true = active), or null before the first read.</summary>
    public bool? CurrentState { get; private set; }

    /// <summary>Accepted changes since start.</summary>
    public long Changes => Interlocked.Read(ref _changes);

    public void RegisterSeries(SeriesRegistry registry) => _outputs.Register(registry);

    public async Task RunAsync(ISampleSink samples, IEventSink events, CancellationToken cancellationToken)
    {
        _outputs.EnsureRegistered();

        GpioController controller;
        var time = _options.Time;
        try
        {
            controller = _options.Controller();
            _controller = controller;
            controller.OpenPin(_options.Pin, _options.InputMode);
            controller.RegisterCallbackForPinValueChangedEvent(_options.Pin, PinEventTypes.Rising | PinEventTypes.Falling, OnEdge);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or UnauthorizedAccessException or ArgumentException or PlatformNotSupportedException or NotSupportedException)
        {
            throw new SensorException(_options.DeviceId, "gpio", _options.PinText, "cannot open the line for edge events: " + ex.Message, ex);
        }

        try
        {
            var active = ReadActive();
            CurrentState = active;
            await PublishStateAsync(samples, active, cancellationToken).ConfigureAwait(false);
            if (active)
            {
                // An alarm already present at start-up must not wait for an edge that will never come.
                await PublishChangeAsync(events, active, time.GetUtcNow(), 0, initial: true, cancellationToken).ConfigureAwait(false);
            }

            var nextHeartbeat = time.GetTimestamp() + ToTicks(_options.StateInterval);
            Task<bool>? pendingEdge = null;
            while (!cancellationToken.IsCancellationRequested)
            {
                pendingEdge ??= _edges.Reader.WaitToReadAsync(cancellationToken).AsTask();
                var untilHeartbeat = time.GetElapsedTime(time.GetTimestamp(), nextHeartbeat);
                Task woke;
                using (var heartbeat = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
                {
                    var delay = Task.Delay(untilHeartbeat > TimeSpan.Zero ? untilHeartbeat : TimeSpan.Zero, time, heartbeat.Token);
                    woke = await Task.WhenAny(pendingEdge, delay).ConfigureAwait(false);
                    await heartbeat.CancelAsync().ConfigureAwait(false); // drop the timer when an edge won
                }

                cancellationToken.ThrowIfCancellationRequested();
                if (woke == pendingEdge)
                {
                    pendingEdge = null;
                    await SettleAsync(samples, events, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    nextHeartbeat = time.GetTimestamp() + ToTicks(_options.StateInterval);
                    await PublishStateAsync(samples, CurrentState ?? ReadActive(), cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // normal shutdown
        }
        finally
        {
            controller.UnregisterCallbackForPinValueChangedEvent(_options.Pin, OnEdge);
            if (controller.IsPinOpen(_options.Pin))
            {
                controller.ClosePin(_options.Pin);
            }
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private async Task SettleAsync(ISampleSink samples, IEventSink events, CancellationToken cancellationToken)
    {
        var time = _options.Time;
        while (true)
        {
            var quiet = time.GetElapsedTime(Volatile.Read(ref _lastEdgeTimestamp));
            if (quiet >= _options.Debounce)
            {
                break;
            }

            await Task.Delay(_options.Debounce - quiet, time, cancellationToken).ConfigureAwait(false);
        }

        while (_edges.Reader.TryRead(out _))
        {
            // consumed: the level is read below
        }

        var edges = Interlocked.Exchange(ref _edgesInBurst, 0);
        var firstEdge = Interlocked.Exchange(ref _firstEdgeTimestamp, 0);
        var active = ReadActive();
        if (active == CurrentState)
        {
            return; // a glitch that returned to the old level
        }

        CurrentState = active;
        Interlocked.Increment(ref _changes);
        var elapsedSinceFirst = firstEdge == 0 ? TimeSpan.Zero : time.GetElapsedTime(firstEdge);
        await PublishChangeAsync(events, active, time.GetUtcNow() - elapsedSinceFirst, edges, initial: false, cancellationToken).ConfigureAwait(false);
        await PublishStateAsync(samples, active, cancellationToken).ConfigureAwait(false);
    }

    private void OnEdge(object sender, PinValueChangedEventArgs e)
    {
        // Runs on the driver's event thread: record and wake, nothing else.
        var now = _options.Time.GetTimestamp();
        Interlocked.CompareExchange(ref _firstEdgeTimestamp, now, 0);
        Volatile.Write(ref _lastEdgeTimestamp, now);
        Interlocked.Increment(ref _edgesInBurst);
        _edges.Writer.TryWrite(now);
    }

    private bool ReadActive()
    {
        try
        {
            var level = _controller!.Read(_options.Pin);
            return (level == PinValue.Low) == _options.ActiveLow;
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException)
        {
            throw new SensorException(_options.DeviceId, "gpio", _options.PinText, "read failed: " + ex.Message, ex);
        }
    }

    private ValueTask PublishStateAsync(ISampleSink samples, bool active, CancellationToken cancellationToken)
    {
        SensorInstruments.Read(_options.DeviceId, Driver);
        var changes = Changes;
        return _outputs.WriteAsync(samples, _options.Time.GetUtcNow().ToUnixTimeMilliseconds(), c => c == "state" ? (active ? 1 : 0) : changes, null, cancellationToken);
    }

    private ValueTask PublishChangeAsync(IEventSink events, bool active, DateTimeOffset when, int edges, bool initial, CancellationToken cancellationToken)
    {
        var (activeLabel, inactiveLabel) = _options.Labels;
        var label = active ? activeLabel : inactiveLabel;
        SensorInstruments.Edges.Add(1, SensorInstruments.Tags(_options.DeviceId, Driver));
        Log.InputChanged(_logger, _options.DeviceId, active ? 1 : 0, label);
        var attributes = new Dictionary<string, string>
        {
            ["state"] = active ? "1" : "0",
            ["label"] = label,
            ["pin"] = _options.PinText,
            ["kind"] = _options.Kind.ToString().ToLowerInvariant(),
            ["edges"] = edges.ToString(CultureInfo.InvariantCulture),
        };
        if (initial)
        {
            attributes["initial"] = "true";
        }

        return events.PublishAsync(
            new EdgeEvent(EdgeEventKind.InputChanged, _options.DeviceId, when, active ? _options.ActiveSeverity : EventSeverity.Info, $"{_options.DeviceId}: {label}", attributes),
            cancellationToken);
    }

    private long ToTicks(TimeSpan span) => (long)(span.TotalSeconds * _options.Time.TimestampFrequency);
}
