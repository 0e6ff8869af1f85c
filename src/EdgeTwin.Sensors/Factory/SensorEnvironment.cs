using System.Device.Gpio;
using System.Device.I2c;

namespace EdgeTwin.Sensors.Factory;

/// <summary>
/// Where the local buses are. The defaults are the real Linux paths and devices; tests (and a simulated gateway)
/// point them at fakes.
/// </summary>
public sealed record SensorEnvironment
{
    /// <summary>The w1 bus directory (<c>/sys/bus/w1/devices</c>).</summary>
    public string W1Root { get; init; } = "/sys/bus/w1/devices";

    /// <summary>
    /// Replaces the <c>/sys/class/thermal</c> prefix of <c>cpu:</c> addresses (null: use the address as written).
    /// </summary>
    public string? ThermalRoot { get; init; }

    /// <summary>procfs for the host driver (<c>/proc</c>); tests point it at captured files.</summary>
    public string ProcRoot { get; init; } = "/proc";

    /// <summary>The kernel clock state for the host driver (adjtimex); tests replace it to break the read.</summary>
    public Func<EdgeTwin.Sensors.Host.ClockReading> ReadClock { get; init; } = EdgeTwin.Sensors.Host.KernelClock.Read;

    /// <summary>Opens an I2C device (<c>/dev/i2c-N</c>).</summary>
    public Func<I2cConnectionSettings, I2cDevice> OpenI2c { get; init; } = I2cDevice.Create;

    /// <summary>Creates the gateway's one GPIO controller, on first use.</summary>
    public Func<GpioController> OpenGpio { get; init; } = () => new GpioController();

    /// <summary>
    /// Where pulse counters keep their counts. Null: next to the outbox file of the site config, or in memory only
    /// when there is no site.
    /// </summary>
    public string? StateDirectory { get; init; }
}
