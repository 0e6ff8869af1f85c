using System.Device.Gpio;
using System.Globalization;
using EdgeTwin.Sensors.Common;

namespace EdgeTwin.Sensors.Gpio;

/// <summary>A sensor on one GPIO line (<c>address: gpio:PIN</c>, logical/BCM numbering).</summary>
public abstract record GpioSensorOptions : SensorOptions
{
    /// <summary>
    /// Gives the controller the pin belongs to; called when the source starts using the line, not at construction
    /// (opening the GPIO chip is I/O). The caller owns the controller (one per gateway, disposed by whoever created
    /// it); a source opens and closes only its own pin.
    /// </summary>
    public required Func<GpioController> Controller { get; init; }

    public required int Pin { get; init; }

    /// <summary>Pull-up by default: dry contacts and S0 outputs switch the line to ground.</summary>
    public PinMode InputMode { get; init; } = PinMode.InputPullUp;

    /// <summary>Timers (debounce, reporting) run on this clock; tests pass a fake one.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    public string PinText => Pin.ToString(CultureInfo.InvariantCulture);
}
