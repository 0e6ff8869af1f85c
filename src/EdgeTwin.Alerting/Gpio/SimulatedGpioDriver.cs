using System.Collections.Concurrent;
using System.Device.Gpio;

namespace EdgeTwin.Alerting.Gpio;

/// <summary>
/// A GPIO chip in memory, for the demo, tests and benchmarks (<c>chip: simulated</c>). <see cref="Drive"/> sets the level
/// the outside world puts on an input and fires its edge callbacks on the calling thread, as the kernel's event thread
/// would; writes to outputs are recorded and announced through <see cref="OutputChanged"/>. A line can carry a device
/// that answers the host (<see cref="Attach"/>), such as a DHT22 on its one-wire data line.
/// </summary>
public sealed class SimulatedGpioDriver : GpioDriver
{
    private readonly ConcurrentDictionary<int, Line> _lines = new();

    /// <summary>Raised on every write that changes an output's level: pin, new level.</summary>
    public event Action<int, PinValue>? OutputChanged;

    protected override int PinCount => 1024;

    public bool IsOpen(int pin) => _lines.TryGetValue(pin, out var l) && l.Open;

    /// <summary>The mode the host set on a line (its pull resistor for an input).</summary>
    public PinMode ModeOf(int pin) => Get(pin).Mode;

    /// <summary>How many edge callbacks are registered on a line (a source has subscribed once it is above 0).</summary>
    public int CallbackCount(int pin)
    {
        if (!_lines.TryGetValue(pin, out var line))
        {
            return 0;
        }

        lock (line)
        {
            return line.Callbacks.Count;
        }
    }

    /// <summary>The level last written to an output pin.</summary>
    public PinValue Output(int pin) => Get(pin).Output;

    /// <summary>How many times an output changed level (blink patterns toggle).</summary>
    public int Toggles(int pin) => Get(pin).Toggles;

    /// <summary>Sets the level the outside world puts on an input line; fires edge callbacks when it changes.</summary>
    public void Drive(int pin, PinValue level) => SetExternal(pin, driven: true, level);

    /// <summary>
    /// Nothing drives the line any more (an open contact, an unplugged cable): it reads what the pin's pull resistor
    /// gives, high with a pull-up or no pull, low with a pull-down; fires edge callbacks when that changes the level.
    /// </summary>
    public void Release(int pin) => SetExternal(pin, driven: false, PinValue.High);

    private void SetExternal(int pin, bool driven, PinValue level)
    {
        var line = Get(pin);
        (PinEventTypes Types, PinChangeEventHandler Handler)[] targets;
        PinValue now;
        lock (line)
        {
            var before = line.Level;
            line.Driven = driven;
            line.External = level;
            now = line.Level;
            if (before == now)
            {
                return;
            }

            targets = [.. line.Callbacks];
        }

        var edge = now == PinValue.High ? PinEventTypes.Rising : PinEventTypes.Falling;
        foreach (var (types, handler) in targets)
        {
            if ((types & edge) != 0)
            {
                handler(this, new PinValueChangedEventArgs(edge, pin));
            }
        }
    }

    /// <summary>Contact bounce: <paramref name="transitions"/> alternating edges, then the line settles at <paramref name="final"/>.</summary>
    public void Bounce(int pin, PinValue final, int transitions)
    {
        var level = final;
        for (var i = 0; i < transitions; i++)
        {
            level = level == PinValue.High ? PinValue.Low : PinValue.High;
            Drive(pin, level);
        }

        Drive(pin, final);
    }

    /// <summary>Puts a device on the line: it sees the host's mode changes and writes, and gives the level read while the line is an input.</summary>
    public void Attach(int pin, ISimulatedGpioDevice device) => Get(pin).Device = device;

    /// <summary>
    /// Another process (or a kernel driver) holds the line: opening it fails as libgpiod's request does (EBUSY) until
    /// <paramref name="held"/> is false again.
    /// </summary>
    public void Hold(int pin, bool held = true) => Get(pin).Held = held;

    protected override void OpenPin(int pinNumber)
    {
        var line = Get(pinNumber);
        if (line.Held)
        {
            throw new IOException($"Error 16 (Device or resource busy) requesting GPIO line {pinNumber}");
        }

        line.Open = true;
    }

    protected override void ClosePin(int pinNumber)
    {
        var line = Get(pinNumber);
        line.Open = false;
        lock (line)
        {
            line.Callbacks.Clear();
        }
    }

    protected override void SetPinMode(int pinNumber, PinMode mode)
    {
        var line = Get(pinNumber);
        line.Mode = mode;
        line.Device?.OnModeChanged(mode);
    }

    protected override PinMode GetPinMode(int pinNumber) => Get(pinNumber).Mode;

    protected override bool IsPinModeSupported(int pinNumber, PinMode mode) => true;

    protected override PinValue Read(int pinNumber)
    {
        var line = Get(pinNumber);
        if (line.Device is { } device && line.Mode != PinMode.Output)
        {
            return device.Read();
        }

        return line.Mode == PinMode.Output ? line.Output : line.Level;
    }

    protected override void Write(int pinNumber, PinValue value)
    {
        var line = Get(pinNumber);
        // A device on the line sees every write, a repeated level included: it follows the host's protocol, not the edges.
        line.Device?.OnHostWrite(value);
        if (line.Output == value)
        {
            return;
        }

        line.Output = value;
        line.Toggles++;
        OutputChanged?.Invoke(pinNumber, value);
    }

    protected override WaitForEventResult WaitForEvent(int pinNumber, PinEventTypes eventTypes, CancellationToken cancellationToken)
    {
        var line = Get(pinNumber);
        var start = line.Level;
        while (!cancellationToken.IsCancellationRequested)
        {
            var now = line.Level;
            if (now != start)
            {
                var type = now == PinValue.High ? PinEventTypes.Rising : PinEventTypes.Falling;
                if ((type & eventTypes) != 0)
                {
                    return new WaitForEventResult { EventTypes = type, TimedOut = false };
                }

                start = now;
            }

            cancellationToken.WaitHandle.WaitOne(1);
        }

        return new WaitForEventResult { EventTypes = PinEventTypes.None, TimedOut = true };
    }

    protected override void AddCallbackForPinValueChangedEvent(int pinNumber, PinEventTypes eventTypes, PinChangeEventHandler callback)
    {
        var line = Get(pinNumber);
        lock (line)
        {
            line.Callbacks.Add((eventTypes, callback));
        }
    }

    protected override void RemoveCallbackForPinValueChangedEvent(int pinNumber, PinChangeEventHandler callback)
    {
        var line = Get(pinNumber);
        lock (line)
        {
            line.Callbacks.RemoveAll(c => c.Handler == callback);
        }
    }

    private Line Get(int pin) => _lines.GetOrAdd(pin, _ => new Line());

    private sealed class Line
    {
        public volatile bool Open;
        public volatile bool Held;
        public PinMode Mode = PinMode.Input;
        public PinValue External = PinValue.High; // pulled up: contact open
        public bool Driven = true;

        /// <summary>The input's level: what drives it, else what its pull gives.</summary>
        public PinValue Level => Driven ? External : Mode == PinMode.InputPullDown ? PinValue.Low : PinValue.High;
        public PinValue Output = PinValue.Low;
        public int Toggles;
        public ISimulatedGpioDevice? Device;
        public readonly List<(PinEventTypes Types, PinChangeEventHandler Handler)> Callbacks = [];
    }
}

/// <summary>
/// A device wired to a line of <see cref="SimulatedGpioDriver"/> that answers the host: it sees the host's mode changes
/// and writes, and while the line is an input the host reads the level it gives.
/// </summary>
public interface ISimulatedGpioDevice
{
    void OnModeChanged(PinMode mode);

    void OnHostWrite(PinValue value);

    PinValue Read();
}
