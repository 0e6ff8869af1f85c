using System.Device.Gpio;
using EdgeTwin.Alerting.Gpio;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.State;
using EdgeTwin.Core.Events;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Alerting.Sinks;

/// <summary>
/// Relay, buzzer and LED outputs that show the current alert state: each output takes the pattern (off, on, blink,
/// blink_fast) its config gives the most severe alert that is firing and targets this sink. Outputs with
/// <c>silence_on_ack</c> ignore acknowledged alerts (the buzzer stops, the lamp stays). A flapping alert counts as firing
/// until its flapping guard releases it (steady, not one chirp per flap). On shutdown every output is set to
/// its failsafe level (e.g. a normally-energised relay drops, so a dead gateway raises the alarm panel).
/// An output line that cannot be opened (another process holds it, no GPIO chip) does not stop the agent: the sink
/// logs it once, a delivery fails with the reason (the runner reports the sink down) and the lines are tried again
/// every <see cref="ReopenInterval"/>; once open they show the current state.
/// </summary>
public sealed partial class GpioSink : IAlertSink
{
    /// <summary>How often outputs that could not be opened are tried again.</summary>
    public static readonly TimeSpan ReopenInterval = TimeSpan.FromSeconds(5);

    private readonly GpioSinkConfig _config;
    private readonly Func<GpioController> _open;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly Dictionary<long, AlertSnapshot> _active = [];
    private readonly OutputPattern[] _patterns;
    private readonly bool[] _quietedByAck;
    private GpioController? _controller;
    private ITimer? _blink;
    private int _phase;
    private bool _started;
    private string? _openProblem;
    private long _lastOpenAttempt;

    public GpioSink(GpioSinkConfig config, Func<GpioController> open, TimeProvider? time = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _open = open;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _patterns = new OutputPattern[config.Outputs.Count];
        _quietedByAck = new bool[config.Outputs.Count];
    }

    public string Name => _config.Name;

    public bool FollowsState => true;

    /// <summary>The pattern each output shows now, in config order.</summary>
    public IReadOnlyList<OutputPattern> Patterns
    {
        get
        {
            lock (_gate)
            {
                return [.. _patterns];
            }
        }
    }

    /// <summary>
    /// Each output's name and pattern now, and whether an acknowledge is what keeps it quieter (a buzzer with
    /// <c>silence_on_ack</c>): <c>alerts list</c> shows them, as nobody on SSH can hear the buzzer.
    /// </summary>
    public IReadOnlyList<GpioOutputStatus> Outputs()
    {
        lock (_gate)
        {
            return [.. _config.Outputs.Select((o, i) => new GpioOutputStatus(o.Name, _patterns[i], _quietedByAck[i]))];
        }
    }

    /// <summary>Why the outputs are not open (null once they are): what a delivery fails with meanwhile.</summary>
    public string? OpenProblem
    {
        get
        {
            lock (_gate)
            {
                return _openProblem;
            }
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _started = true;
            TryOpen();
        }

        // 8 Hz phase clock: blink_fast toggles every tick (4 Hz), blink every 4 ticks (1 Hz); it also retries the open.
        _blink = _time.CreateTimer(_ => Blink(), null, TimeSpan.FromMilliseconds(125), TimeSpan.FromMilliseconds(125));
        return Task.CompletedTask;
    }

    /// <summary>
    /// Opens every output and shows the current state; false (and <see cref="OpenProblem"/> set, logged once) when a
    /// line cannot be opened. Before, the exception left the alerting's start, so a relay line held by another process
    /// (or a machine without a GPIO chip) kept the whole agent from starting. Called under the gate.
    /// </summary>
    private bool TryOpen()
    {
        _lastOpenAttempt = _time.GetTimestamp();
        GpioOutputConfig? current = null;
        try
        {
            GpioController controller;
            try
            {
                controller = _open();
            }
            catch (Exception ex) when (ex is not OutOfMemoryException and not IOException)
            {
                // The board driver probe throws a variety of types (no gpiochip, no libgpiod, unknown board).
                throw new IOException(ex.Message, ex);
            }

            foreach (var o in _config.Outputs)
            {
                current = o;
                controller.OpenPin(o.Pin, PinMode.Output); // idempotent: a retry after a partial open sets the mode again
                controller.Write(o.Pin, Level(o, false));
            }

            _controller = controller;
            Apply();
        }
        catch (Exception ex) when (GpioLineOpenFailure.Is(ex))
        {
            _controller = null;
            var problem = current is null
                ? $"no GPIO controller: {ex.Message}"
                : $"cannot open output '{current.Name}' on GPIO {current.Pin}: {ex.Message} {GpioLineOpenFailure.Hint}";
            if (_openProblem != problem)
            {
                LogOpenFailed(Name, problem, ReopenInterval.TotalSeconds);
            }

            _openProblem = problem;
            return false;
        }

        if (_openProblem is not null)
        {
            LogOpened(Name);
            _openProblem = null;
        }

        return true;
    }

    public Task DeliverAsync(AlertNotification notification, IReadOnlyList<AlertSnapshot> alerts, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            foreach (var a in alerts)
            {
                if (a.Status == AlertStatus.Flapping)
                {
                    // Latched on for as long as the guard mutes it: the manager sends no raise or clear meanwhile, and
                    // the guard trips on a raise (change 7 of 6 allowed), so following the state before it left the
                    // relay off while the alert fired, for the whole flap window if it then stayed over the limit.
                    // The guard's release sends the settled state (firing or resolved).
                    _active[a.Id] = a;
                }
                else if (a.Status == AlertStatus.Resolved || a.State != AlertState.Firing)
                {
                    _active.Remove(a.Id);
                }
                else
                {
                    _active[a.Id] = a;
                }
            }

            Apply();
        }

        return Task.CompletedTask;
    }

    private void Apply()
    {
        if (_controller is null && (!_started || !TryOpen()))
        {
            throw new IOException(_started ? $"GPIO sink {Name}: {_openProblem}" : $"GPIO sink {Name} is not started");
        }

        var controller = _controller!;
        for (var i = 0; i < _config.Outputs.Count; i++)
        {
            var o = _config.Outputs[i];
            EventSeverity? most = null;
            EventSeverity? mostAcked = null;
            foreach (var a in _active.Values)
            {
                if (o.SilenceOnAck && a.AckedAt is not null)
                {
                    mostAcked = mostAcked is null || a.Severity > mostAcked ? a.Severity : mostAcked;
                    continue;
                }

                if (most is null || a.Severity > most)
                {
                    most = a.Severity;
                }
            }

            // The most severe alert decides (a critical lamp that is steady must not be outranked by a warning's blink).
            var pattern = most is { } sev ? o.Patterns.GetValueOrDefault(sev, OutputPattern.Off) : OutputPattern.Off;
            _patterns[i] = pattern;
            _quietedByAck[i] = mostAcked is { } acked && (most is null || acked > most) && o.Patterns.GetValueOrDefault(acked, OutputPattern.Off) != pattern;
            controller.Write(o.Pin, Level(o, On(pattern, _phase)));
        }
    }

    private void Blink()
    {
        lock (_gate)
        {
            if (_controller is not { } controller)
            {
                if (_started && _openProblem is not null && _time.GetElapsedTime(_lastOpenAttempt) >= ReopenInterval)
                {
                    try
                    {
                        TryOpen();
                    }
                    catch (ObjectDisposedException)
                    {
                        // The controller's owner closed it (shutdown): nothing left to open.
                        _started = false;
                    }
                }

                return;
            }

            _phase++;
            try
            {
                for (var i = 0; i < _patterns.Length; i++)
                {
                    if (_patterns[i] is OutputPattern.Blink or OutputPattern.BlinkFast)
                    {
                        var o = _config.Outputs[i];
                        controller.Write(o.Pin, Level(o, On(_patterns[i], _phase)));
                    }
                }
            }
            catch (ObjectDisposedException)
            {
                // The controller's owner closed it first (shutdown order): nothing left to blink.
                _controller = null;
                _started = false;
            }
        }
    }

    private static bool On(OutputPattern p, int phase) => p switch
    {
        OutputPattern.On => true,
        OutputPattern.BlinkFast => (phase & 1) == 0,
        OutputPattern.Blink => (phase & 4) == 0,
        _ => false,
    };

    private static PinValue Level(GpioOutputConfig o, bool on) => on == o.ActiveHigh ? PinValue.High : PinValue.Low;

    /// <summary>The highest severity an output shows, for status lines.</summary>
    public EventSeverity? Showing()
    {
        lock (_gate)
        {
            return _active.Count == 0 ? null : _active.Values.Max(a => a.Severity);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_blink is not null)
        {
            await _blink.DisposeAsync().ConfigureAwait(false);
        }

        lock (_gate)
        {
            _started = false;
            if (_controller is { } controller)
            {
                foreach (var o in _config.Outputs)
                {
                    controller.Write(o.Pin, Level(o, o.FailsafeActive));
                }

                // The controller belongs to whoever opened it (inputs may share it); only the levels are ours.
                _controller = null;
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "alert sink {Sink}: {Problem}; the agent runs on without these outputs and tries again every {Seconds} s")]
    private partial void LogOpenFailed(string sink, string problem, double seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "alert sink {Sink}: outputs open now, showing the current alerts")]
    private partial void LogOpened(string sink);
}

/// <summary>What one GPIO output shows now; <see cref="QuietedByAck"/> when only acknowledged alerts would make it louder.</summary>
public sealed record GpioOutputStatus(string Name, OutputPattern Pattern, bool QuietedByAck)
{
    /// <summary>The config's word for the pattern (<c>off</c>, <c>on</c>, <c>blink</c>, <c>blink_fast</c>).</summary>
    public string PatternName => Pattern switch
    {
        OutputPattern.On => "on",
        OutputPattern.Blink => "blink",
        OutputPattern.BlinkFast => "blink_fast",
        _ => "off",
    };
}
