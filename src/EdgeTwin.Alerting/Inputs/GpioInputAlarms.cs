using System.Device.Gpio;
using System.Diagnostics;
using EdgeTwin.Alerting.Gpio;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Core.Profiles;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Alerting.Inputs;

/// <summary>
/// Leak, smoke and door contacts (<c>alerts.inputs</c>) as alarms straight from the pin's edge interrupt
/// (<see cref="GpioController.RegisterCallbackForPinValueChangedEvent"/>), never from a poll loop. Debounce is
/// leading-edge: the first edge counts at once (the relay must not wait), edges within <c>debounce</c> of an accepted
/// change are ignored, and the level is read again when the window ends so the final state always wins.
/// </summary>
public sealed partial class GpioInputAlarms : IDisposable
{
    private readonly RuleEngine _engine;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly List<Input> _inputs = [];
    private GpioController? _controller;
    private Func<GpioController>? _open;
    private ITimer? _retry;

    public GpioInputAlarms(RuleEngine engine, IEnumerable<AlertRule> rules, TimeProvider? time = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(rules);
        _engine = engine;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        foreach (var rule in rules.Where(r => r.Kind == RuleKind.Input))
        {
            _inputs.Add(new Input(rule));
        }
    }

    public int Count => _inputs.Count;

    /// <summary>Opens the input pins, registers the edge callbacks and raises inputs already active at start.</summary>
    public void Start(GpioController controller)
    {
        ArgumentNullException.ThrowIfNull(controller);
        Start(() => controller);
    }

    /// <summary>
    /// As <see cref="Start(GpioController)"/>, for a controller that may not open. An input whose line cannot be
    /// opened (held by another process, no GPIO chip) is logged once and tried again every
    /// <see cref="GpioSink.ReopenInterval"/>; the others work meanwhile. Before, the exception left the alerting's
    /// start and the agent did not start at all.
    /// </summary>
    public void Start(Func<GpioController> open)
    {
        ArgumentNullException.ThrowIfNull(open);
        _open = open;
        if (!TryOpenAll())
        {
            _retry = _time.CreateTimer(_ => Retry(), null, GpioSink.ReopenInterval, GpioSink.ReopenInterval);
        }
    }

    private bool TryOpenAll()
    {
        GpioController controller;
        try
        {
            controller = _controller ??= _open!();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // The board driver probe throws a variety of types (no gpiochip, no libgpiod, unknown board).
            foreach (var input in _inputs)
            {
                Problem(input, "no GPIO controller: " + ex.Message);
            }

            return false;
        }

        var all = true;
        foreach (var input in _inputs)
        {
            lock (input)
            {
                if (input.Handler is not null)
                {
                    continue;
                }

                var rule = input.Rule;
                try
                {
                    controller.OpenPin(rule.Pin, rule.Pull switch
                    {
                        PullMode.Up => PinMode.InputPullUp,
                        PullMode.Down => PinMode.InputPullDown,
                        _ => PinMode.Input,
                    });

                    PinChangeEventHandler handler = (_, _) => OnEdge(input);
                    controller.RegisterCallbackForPinValueChangedEvent(rule.Pin, PinEventTypes.Rising | PinEventTypes.Falling, handler);
                    input.Handler = handler;
                }
                catch (Exception ex) when (GpioLineOpenFailure.Is(ex))
                {
                    Problem(input, $"cannot open GPIO {rule.Pin}: {ex.Message} {GpioLineOpenFailure.Hint}");
                    all = false;
                    continue;
                }

                if (input.Problem is not null)
                {
                    LogInputOpened(rule.Name, rule.Pin);
                    input.Problem = null;
                }

                var active = IsActive(input);
                input.State = active;
                if (active)
                {
                    LogInput(rule.Name, rule.Pin, true);
                    _engine.SetInput(rule, true, Stopwatch.GetTimestamp());
                }
            }
        }

        return all;
    }

    private void Problem(Input input, string problem)
    {
        lock (input)
        {
            if (input.Problem != problem)
            {
                LogInputFailed(input.Rule.Name, input.Rule.Pin, problem, GpioSink.ReopenInterval.TotalSeconds);
            }

            input.Problem = problem;
        }
    }

    private void Retry()
    {
        lock (_inputs)
        {
            try
            {
                if (_open is null || !TryOpenAll())
                {
                    return;
                }
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
            {
                // Reading the level of a line just opened failed, or the controller closed for shutdown: next round.
                return;
            }

            _retry?.Dispose();
            _retry = null;
        }
    }

    private bool IsActive(Input input) => (_controller!.Read(input.Rule.Pin) == PinValue.Low) == input.Rule.ActiveLow;

    private void OnEdge(Input input)
    {
        var cause = Stopwatch.GetTimestamp();
        lock (input)
        {
            var active = IsActive(input);
            if (active == input.State)
            {
                return;
            }

            var since = input.Changed ? _time.GetElapsedTime(input.LastChange) : TimeSpan.MaxValue;
            if (since < input.Rule.Debounce)
            {
                // Bouncing: look again when the window has passed.
                input.Recheck ??= _time.CreateTimer(_ => Recheck(input), null, input.Rule.Debounce - since, Timeout.InfiniteTimeSpan);
                return;
            }

            Accept(input, active, cause);
        }
    }

    private void Recheck(Input input)
    {
        lock (input)
        {
            input.Recheck?.Dispose();
            input.Recheck = null;
            if (_controller is null)
            {
                return;
            }

            var active = IsActive(input);
            if (active != input.State)
            {
                Accept(input, active, Stopwatch.GetTimestamp());
            }
        }
    }

    private void Accept(Input input, bool active, long cause)
    {
        input.State = active;
        input.LastChange = _time.GetTimestamp();
        input.Changed = true;
        LogInput(input.Rule.Name, input.Rule.Pin, active);
        _engine.SetInput(input.Rule, active, cause);
    }

    public void Dispose()
    {
        lock (_inputs)
        {
            _open = null;
            _retry?.Dispose();
            _retry = null;
        }

        if (_controller is not { } controller)
        {
            return;
        }

        foreach (var input in _inputs)
        {
            lock (input)
            {
                input.Recheck?.Dispose();
                input.Recheck = null;
                if (input.Handler is not null)
                {
                    controller.UnregisterCallbackForPinValueChangedEvent(input.Rule.Pin, input.Handler);
                }
            }
        }

        _controller = null;
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "alarm input {Name} (pin {Pin}): {Problem}; it cannot raise its alarm until then, tried again every {Seconds} s")]
    private partial void LogInputFailed(string name, int pin, string problem, double seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "alarm input {Name} (pin {Pin}) open now")]
    private partial void LogInputOpened(string name, int pin);

    [LoggerMessage(Level = LogLevel.Information, Message = "alarm input {Name} (pin {Pin}) active: {Active}")]
    private partial void LogInput(string name, int pin, bool active);

    private sealed class Input(AlertRule rule)
    {
        public AlertRule Rule { get; } = rule;

        public bool State { get; set; }

        public long LastChange { get; set; }

        public bool Changed { get; set; }

        public ITimer? Recheck { get; set; }

        public PinChangeEventHandler? Handler { get; set; }

        public string? Problem { get; set; }
    }
}
