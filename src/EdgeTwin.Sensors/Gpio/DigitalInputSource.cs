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

    /// <summary>A lamp of a stack light (signal tower): lit or dark, and flashing when it blinks.</summary>
    Lamp,
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

    /// <summary>
    /// This many accepted changes within <see cref="ChatterWindow"/> make the input chattering (a flashing lamp, a loose
    /// contact): one event says so and the changes after it publish state samples only, until the input has been
    /// steady for the window. 6 in 60 s is ISA-18.2's chattering alarm (three activations a minute); 0 = off.
    /// </summary>
    public int ChatterChanges { get; init; } = 6;

    /// <summary>The window of <see cref="ChatterChanges"/>, and how long the input must be steady to end chattering.</summary>
    public TimeSpan ChatterWindow { get; init; } = TimeSpan.FromSeconds(60);

    public (string Active, string Inactive) Labels => Kind switch
    {
        DigitalInputKind.Leak => ("leak detected", "dry"),
        DigitalInputKind.Door => ("open", "closed"),
        DigitalInputKind.Smoke => ("smoke detected", "clear"),
        DigitalInputKind.Lamp => ("lit", "dark"),
        _ => ("active", "inactive"),
    };

    /// <summary>What an input that keeps changing is called in its event.</summary>
    public string ChatterLabel => Kind == DigitalInputKind.Lamp ? "flashing" : "chattering";

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
/// a state sample (1 = active). An input that keeps changing (a flashing lamp, a loose contact) gets one event saying
/// so once <see cref="DigitalInputOptions.ChatterChanges"/> changes fall within the window, then state samples only
/// (consumers such as the line twin still see every change) and one event when it has been steady for the window.
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

    // Timestamps of the last ChatterChanges accepted changes (a ring), to see when they fall within the window.
    private readonly long[] _recentChanges;
    private int _recentNext;
    private int _recentCount;
    private bool _chattering;
    private long _lastChangeTimestamp;
    private DateTimeOffset _lastChangeTime;
    private DateTimeOffset _chatterStarted;
    private long _changesWhileChattering;
    private bool _noisy;

    public DigitalInputSource(DigitalInputOptions options, ILogger<DigitalInputSource>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _outputs = new OutputSet(options.DeviceId, options.Resolve(Driver, ["state", "changes"], [new("state", DigitalInputOptions.DefaultState)], []));
        if (options.ChatterChanges is < 0 or 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.ChatterChanges, $"{options.DeviceId}: chatter_changes must be 0 (off) or at least 2");
        }

        if (options.ChatterChanges > 0 && options.ChatterWindow <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.ChatterWindow, $"{options.DeviceId}: chatter_window must be positive");
        }

        _recentChanges = new long[options.ChatterChanges];
    }

    /// <summary>The options it runs with (as the factory resolved them from the profile).</summary>
    public DigitalInputOptions Options => _options;

    /// <summary>True while the input is chattering (or flashing): its changes publish samples, not events.</summary>
    public bool Chattering => Volatile.Read(ref _chattering);

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
                var wakeAt = _chattering ? Math.Min(nextHeartbeat, SteadyAt()) : nextHeartbeat;
                var untilWake = time.GetElapsedTime(time.GetTimestamp(), wakeAt);
                Task woke;
                using (var timer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
                {
                    var delay = Task.Delay(untilWake > TimeSpan.Zero ? untilWake : TimeSpan.Zero, time, timer.Token);
                    woke = await Task.WhenAny(pendingEdge, delay).ConfigureAwait(false);
                    await timer.CancelAsync().ConfigureAwait(false); // drop the timer when an edge won
                }

                cancellationToken.ThrowIfCancellationRequested();
                if (woke == pendingEdge)
                {
                    pendingEdge = null;
                    await SettleAsync(samples, events, cancellationToken).ConfigureAwait(false);

                    // On to the time checks: a line that never goes quiet keeps an edge pending, and the heartbeat
                    // must not wait for the noise to stop.
                }

                var now = time.GetTimestamp();
                if (_chattering && now >= SteadyAt())
                {
                    await EndChatterAsync(events, cancellationToken).ConfigureAwait(false);
                }

                if (now >= nextHeartbeat)
                {
                    nextHeartbeat = now + ToTicks(_options.StateInterval);
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

    /// <summary>The longest a change waits for the line to be quiet for the debounce: 20 debounce times, at least 1 s.</summary>
    public TimeSpan MaxSettle => _options.Debounce * 20 > TimeSpan.FromSeconds(1) ? _options.Debounce * 20 : TimeSpan.FromSeconds(1);

    private async Task SettleAsync(ISampleSink samples, IEventSink events, CancellationToken cancellationToken)
    {
        var time = _options.Time;
        var started = time.GetTimestamp();
        var maxSettle = MaxSettle;
        while (true)
        {
            var quiet = time.GetElapsedTime(Volatile.Read(ref _lastEdgeTimestamp));
            if (quiet >= _options.Debounce)
            {
                _noisy = false;
                break;
            }

            // A signal faster than the debounce (an AC-fed lamp through an opto-coupler, a vibrating contact) is never
            // quiet: the wait had no end, so nothing was published, not even the periodic state, and nothing said why.
            var waited = time.GetElapsedTime(started);
            if (waited >= maxSettle)
            {
                if (!_noisy)
                {
                    _noisy = true;
                    Log.SensorWarning(_logger, _options.DeviceId, string.Create(CultureInfo.InvariantCulture,
                        $"gpio {_options.PinText} is never quiet for the debounce of {_options.Debounce.TotalMilliseconds:0} ms ({Volatile.Read(ref _edgesInBurst)} edges in {maxSettle.TotalSeconds:0.#} s): a signal faster than the debounce (AC supply on the contact, vibrating contact, wrong pin); its level is taken every {maxSettle.TotalSeconds:0.#} s until it settles"));
                }

                break;
            }

            var wait = _options.Debounce - quiet;
            await Task.Delay(wait < maxSettle - waited ? wait : maxSettle - waited, time, cancellationToken).ConfigureAwait(false);
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
        SensorInstruments.Edges.Add(1, SensorInstruments.Tags(_options.DeviceId, Driver));
        var elapsedSinceFirst = firstEdge == 0 ? TimeSpan.Zero : time.GetElapsedTime(firstEdge);
        var when = time.GetUtcNow() - elapsedSinceFirst;
        var wasChattering = _chattering;
        var startsChattering = NoteChange(time.GetTimestamp(), when);
        if (startsChattering)
        {
            await PublishChatterAsync(events, active, when, edges, cancellationToken).ConfigureAwait(false);
        }
        else if (!wasChattering)
        {
            await PublishChangeAsync(events, active, when, edges, initial: false, cancellationToken).ConfigureAwait(false);
        }

        await PublishStateAsync(samples, active, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Records an accepted change; true when it is the one that makes the input chattering.</summary>
    private bool NoteChange(long timestamp, DateTimeOffset when)
    {
        _lastChangeTimestamp = timestamp;
        _lastChangeTime = when;
        if (_recentChanges.Length == 0)
        {
            return false;
        }

        if (_chattering)
        {
            _changesWhileChattering++;
            return false;
        }

        _recentChanges[_recentNext] = timestamp;
        _recentNext = (_recentNext + 1) % _recentChanges.Length;
        _recentCount = Math.Min(_recentCount + 1, _recentChanges.Length);
        var oldest = _recentChanges[_recentNext]; // the ring is full: the next slot to write holds the oldest
        if (_recentCount < _recentChanges.Length || timestamp - oldest > ToTicks(_options.ChatterWindow))
        {
            return false;
        }

        Volatile.Write(ref _chattering, true);
        _chatterStarted = when;
        _changesWhileChattering = _recentChanges.Length;
        _recentCount = 0;
        return true;
    }

    private long SteadyAt() => _lastChangeTimestamp + ToTicks(_options.ChatterWindow);

    private ValueTask PublishChatterAsync(IEventSink events, bool active, DateTimeOffset when, int edges, CancellationToken cancellationToken)
    {
        var what = _options.ChatterLabel;
        var window = _options.ChatterWindow.TotalSeconds;
        SensorInstruments.Chatter.Add(1, SensorInstruments.Tags(_options.DeviceId, Driver));
        Log.InputChattering(_logger, _options.DeviceId, what, _options.ChatterChanges, window);
        var attributes = Attributes(active, what, edges);
        attributes["chattering"] = "true";
        attributes["changes"] = _options.ChatterChanges.ToString(CultureInfo.InvariantCulture);
        attributes["window_s"] = window.ToString(CultureInfo.InvariantCulture);
        return events.PublishAsync(
            new EdgeEvent(
                EdgeEventKind.InputChanged,
                _options.DeviceId,
                when,
                _options.ActiveSeverity,
                string.Create(CultureInfo.InvariantCulture, $"{_options.DeviceId}: {what} ({_options.ChatterChanges} changes within {window:0.#} s; state samples only until steady for {window:0.#} s)"),
                attributes),
            cancellationToken);
    }

    private ValueTask EndChatterAsync(IEventSink events, CancellationToken cancellationToken)
    {
        Volatile.Write(ref _chattering, false);
        var active = CurrentState ?? false;
        var (activeLabel, inactiveLabel) = _options.Labels;
        var label = active ? activeLabel : inactiveLabel;
        var changes = _changesWhileChattering;
        var lasted = _lastChangeTime - _chatterStarted;
        Log.InputSteady(_logger, _options.DeviceId, active ? 1 : 0, label, changes);
        var attributes = Attributes(active, label, edges: 0);
        attributes["chattering"] = "false";
        attributes["changes"] = changes.ToString(CultureInfo.InvariantCulture);
        attributes["chattered_s"] = Math.Round(lasted.TotalSeconds, 1).ToString(CultureInfo.InvariantCulture);
        return events.PublishAsync(
            new EdgeEvent(
                EdgeEventKind.InputChanged,
                _options.DeviceId,
                _lastChangeTime,
                active ? _options.ActiveSeverity : EventSeverity.Info,
                string.Create(CultureInfo.InvariantCulture, $"{_options.DeviceId}: {label}, steady again after {_options.ChatterLabel} for {lasted.TotalSeconds:0} s ({changes} changes)"),
                attributes),
            cancellationToken);
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
        Log.InputChanged(_logger, _options.DeviceId, active ? 1 : 0, label);
        var attributes = Attributes(active, label, edges);
        if (initial)
        {
            attributes["initial"] = "true";
        }

        return events.PublishAsync(
            new EdgeEvent(EdgeEventKind.InputChanged, _options.DeviceId, when, active ? _options.ActiveSeverity : EventSeverity.Info, $"{_options.DeviceId}: {label}", attributes),
            cancellationToken);
    }

    private Dictionary<string, string> Attributes(bool active, string label, int edges) => new()
    {
        ["state"] = active ? "1" : "0",
        ["label"] = label,
        ["pin"] = _options.PinText,
        ["kind"] = _options.Kind.ToString().ToLowerInvariant(),
        ["edges"] = edges.ToString(CultureInfo.InvariantCulture),
    };

    private long ToTicks(TimeSpan span) => (long)(span.TotalSeconds * _options.Time.TimestampFrequency);
}
