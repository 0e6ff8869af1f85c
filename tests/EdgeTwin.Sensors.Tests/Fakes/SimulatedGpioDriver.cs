using System.Collections.Concurrent;
using System.Device.Gpio;
using System.Diagnostics;

namespace EdgeTwin.Sensors.Tests.Fakes;

/// <summary>
/// A GPIO chip for tests. Tests drive the external level of a line with <see cref="Drive"/>; a level change fires
/// the registered edge callbacks on the calling thread, as the kernel's event thread would. A line can carry a
/// simulated DHT22 (<see cref="AttachDht22"/>) that answers the host's start pulse with a timed 40-bit frame.
/// </summary>
internal sealed class SimulatedGpioDriver : GpioDriver
{
    private readonly ConcurrentDictionary<int, Line> _lines = new();

    protected override int PinCount => 64;

    public int OpenCount => _lines.Values.Count(l => l.Open);

    public bool IsOpen(int pin) => _lines.TryGetValue(pin, out var l) && l.Open;

    public int CallbackCount(int pin) => _lines.TryGetValue(pin, out var l) ? l.Callbacks.Count : 0;

    /// <summary>Sets the level the outside world puts on the line; fires edge callbacks when it changes.</summary>
    public void Drive(int pin, PinValue level)
    {
        var line = Get(pin);
        (PinEventTypes Types, PinChangeEventHandler Handler)[] targets;
        lock (line)
        {
            if (line.External == level)
            {
                return;
            }

            line.External = level;
            targets = line.Callbacks.ToArray();
        }

        var edge = level == PinValue.High ? PinEventTypes.Rising : PinEventTypes.Falling;
        foreach (var (types, handler) in targets)
        {
            if ((types & edge) != 0)
            {
                handler(this, new PinValueChangedEventArgs(edge, pin));
            }
        }
    }

    /// <summary>Contact bounce: <paramref name="transitions"/> alternating edges ending at <paramref name="final"/>.</summary>
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

    public Dht22Responder AttachDht22(int pin)
    {
        var responder = new Dht22Responder();
        Get(pin).Dht = responder;
        return responder;
    }

    protected override void OpenPin(int pinNumber) => Get(pinNumber).Open = true;

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
        line.Dht?.OnModeChanged(mode);
    }

    protected override PinMode GetPinMode(int pinNumber) => Get(pinNumber).Mode;

    protected override bool IsPinModeSupported(int pinNumber, PinMode mode) => true;

    protected override PinValue Read(int pinNumber)
    {
        var line = Get(pinNumber);
        if (line.Dht is { } dht && line.Mode != PinMode.Output)
        {
            return dht.Read();
        }

        return line.Mode == PinMode.Output ? line.Output : line.External;
    }

    protected override void Write(int pinNumber, PinValue value)
    {
        var line = Get(pinNumber);
        line.Output = value;
        line.Dht?.OnHostWrite(value);
    }

    protected override WaitForEventResult WaitForEvent(int pinNumber, PinEventTypes eventTypes, CancellationToken cancellationToken)
    {
        var line = Get(pinNumber);
        var start = line.External;
        while (!cancellationToken.IsCancellationRequested)
        {
            var now = line.External;
            if (now != start)
            {
                var type = now == PinValue.High ? PinEventTypes.Rising : PinEventTypes.Falling;
                if ((type & eventTypes) != 0)
                {
                    return new WaitForEventResult { EventTypes = type, TimedOut = false };
                }

                start = now;
            }

            Thread.Sleep(1);
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
        public bool Open;
        public PinMode Mode = PinMode.Input;
        public PinValue External = PinValue.High; // pulled up, contact open
        public PinValue Output = PinValue.Low;
        public Dht22Responder? Dht;
        public readonly List<(PinEventTypes Types, PinChangeEventHandler Handler)> Callbacks = [];
    }
}

/// <summary>
/// A DHT22 on the data line (AM2302 datasheet §7): after the host holds the line low ≥ 1 ms and releases it, the
/// sensor answers 80 µs low, 80 µs high, then 40 bits, each 50 µs low followed by 26–28 µs high for 0 or 70 µs high
/// for 1: humidity ×10 (16 bits), temperature ×10 (15 bits + sign bit), checksum = sum of the four bytes.
/// The high time is made real (a spin on the stopwatch) because the host measures it; everything else is
/// sequenced by the host's reads, so the frame does not depend on scheduling except for the 0/1 decision.
/// </summary>
internal sealed class Dht22Responder
{
    private readonly Lock _gate = new();
    private (PinValue Level, int HoldMicros)[] _script = [];
    private int _next;
    private long _lastTransition;
    private bool _sawStartPulse;

    public double Celsius { get; set; } = 21.3;

    public double RelativeHumidity { get; set; } = 52.7;

    /// <summary>Adds this to the checksum byte of the next frame only.</summary>
    public byte CorruptChecksumBy { get; set; }

    /// <summary>The sensor does not answer (unplugged, dead).</summary>
    public bool Silent { get; set; }

    public int Frames { get; private set; }

    public static byte[] Encode(double celsius, double rh)
    {
        var h = (ushort)Math.Round(rh * 10);
        var tAbs = (ushort)Math.Round(Math.Abs(celsius) * 10);
        var t = (ushort)(tAbs | (celsius < 0 ? 0x8000 : 0));
        byte[] frame = [(byte)(h >> 8), (byte)h, (byte)(t >> 8), (byte)t, 0];
        frame[4] = (byte)(frame[0] + frame[1] + frame[2] + frame[3]);
        return frame;
    }

    public void OnHostWrite(PinValue value)
    {
        lock (_gate)
        {
            if (value == PinValue.Low)
            {
                _sawStartPulse = true;
            }
        }
    }

    public void OnModeChanged(PinMode mode)
    {
        lock (_gate)
        {
            if (mode == PinMode.Output || !_sawStartPulse)
            {
                return;
            }

            _sawStartPulse = false;
            _next = 0;
            if (Silent)
            {
                _script = [];
                return;
            }

            var frame = Encode(Celsius, RelativeHumidity);
            frame[4] += CorruptChecksumBy;
            CorruptChecksumBy = 0;
            Frames++;
            var script = new List<(PinValue, int)>
            {
                (PinValue.Low, 0), (PinValue.High, 0), // response: low ~80 µs, then high ~80 µs
                (PinValue.High, 0), (PinValue.Low, 0),
            };
            for (var i = 0; i < 40; i++)
            {
                var one = (frame[i / 8] & (0x80 >> (i % 8))) != 0;
                script.Add((PinValue.High, 0));                 // end of the 50 µs low: the bit's high starts
                script.Add((PinValue.Low, one ? 75 : 0));       // high lasts 70 µs for 1, ~0 for 0
            }

            _script = script.ToArray();
            _lastTransition = Stopwatch.GetTimestamp();
        }
    }

    public PinValue Read()
    {
        lock (_gate)
        {
            if (_next >= _script.Length)
            {
                return PinValue.High; // idle, pulled up
            }

            var (level, hold) = _script[_next++];
            if (hold > 0)
            {
                while (Stopwatch.GetElapsedTime(_lastTransition).TotalMicroseconds < hold)
                {
                    Thread.SpinWait(10);
                }
            }

            _lastTransition = Stopwatch.GetTimestamp();
            return level;
        }
    }
}
