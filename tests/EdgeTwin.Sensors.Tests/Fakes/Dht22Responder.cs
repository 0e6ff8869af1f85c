using System.Device.Gpio;
using System.Diagnostics;
using EdgeTwin.Alerting.Gpio;

namespace EdgeTwin.Sensors.Tests.Fakes;

/// <summary>Puts a simulated DHT22 on a line of the simulated chip.</summary>
internal static class SimulatedDht22
{
    public static Dht22Responder AttachDht22(this SimulatedGpioDriver driver, int pin)
    {
        var responder = new Dht22Responder();
        driver.Attach(pin, responder);
        return responder;
    }
}

/// <summary>
/// A DHT22 on the data line (AM2302 datasheet §7): after the host holds the line low ≥ 1 ms and releases it, the
/// sensor answers 80 µs low, 80 µs high, then 40 bits, each 50 µs low followed by 26–28 µs high for 0 or 70 µs high
/// for 1: humidity ×10 (16 bits), temperature ×10 (15 bits + sign bit), checksum = sum of the four bytes.
/// The high time is made real (a spin on the stopwatch) because the host measures it; everything else is
/// sequenced by the host's reads, so the frame does not depend on scheduling except for the 0/1 decision.
/// </summary>
internal sealed class Dht22Responder : ISimulatedGpioDevice
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
