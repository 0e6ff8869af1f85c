using System.Device.Gpio;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.State;
using EdgeTwin.Core.Events;

namespace EdgeTwin.Alerting.Sinks;

/// <summary>
/// Relay, buzzer and LED outputs that show the current alert state: each output takes the pattern (off, on, blink,
/// blink_fast) its config gives the most severe alert that is firing and targets this sink. Outputs with
/// <c>silence_on_ack</c> ignore acknowledged alerts (the buzzer stops, the lamp stays). A flapping alert counts as firing
/// until its flapping guard releases it (steady, not one chirp per flap). On shutdown every output is set to
/// its failsafe level (e.g. a normally-energised relay drops, so a dead gateway raises the alarm panel).
/// </summary>
public sealed class GpioSink : IAlertSink
{
    private readonly GpioSinkConfig _config;
    private readonly Func<GpioController> _open;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly Dictionary<long, AlertSnapshot> _active = [];
    private readonly OutputPattern[] _patterns;
    private readonly bool[] _quietedByAck;
    private GpioController? _controller;
    private ITimer? _blink;
    private int _phase;

    public GpioSink(GpioSinkConfig config, Func<GpioController> open, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _open = open;
        _time = time ?? TimeProvider.System;
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

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var controller = _open();
        foreach (var o in _config.Outputs)
        {
            controller.OpenPin(o.Pin, PinMode.Output);
            controller.Write(o.Pin, Level(o, false));
        }

        _controller = controller;

        // 8 Hz phase clock: blink_fast toggles every tick (4 Hz), blink every 4 ticks (1 Hz).
        _blink = _time.CreateTimer(_ => Blink(), null, TimeSpan.FromMilliseconds(125), TimeSpan.FromMilliseconds(125));
        return Task.CompletedTask;
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
        var controller = _controller ?? throw new InvalidOperationException($"GPIO sink {Name} is not started");
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
