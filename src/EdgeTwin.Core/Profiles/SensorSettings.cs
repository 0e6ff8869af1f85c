namespace EdgeTwin.Core.Profiles;

/// <summary>Local sensor driver of a profile.</summary>
public enum SensorDriver
{
    /// <summary>DS18B20 1-Wire thermometer (w1-therm kernel driver).</summary>
    Ds18b20,
    /// <summary>Bosch BME280 temperature/humidity/pressure on I2C.</summary>
    Bme280,
    /// <summary>Sensirion SHT3x temperature/humidity on I2C.</summary>
    Sht3x,
    /// <summary>Aosong DHT22 (AM2302) on a single GPIO line.</summary>
    Dht22,
    /// <summary>Digital input (leak, door, smoke) with debounce and edge events.</summary>
    Digital,
    /// <summary>S0 pulse counter (energy, water, gas).</summary>
    Pulse,
    /// <summary>The gateway's CPU temperature from sysfs.</summary>
    CpuTemp,
    /// <summary>The gateway's own vitals: clock synchronisation, free disk and inodes, memory, load, uptime.</summary>
    Host,
}

/// <summary>Pull resistor of a GPIO input.</summary>
public enum PullMode
{
    /// <summary>No internal pull (external resistor).</summary>
    None,
    /// <summary>Internal pull-up.</summary>
    Up,
    /// <summary>Internal pull-down.</summary>
    Down,
}

/// <summary>The <c>sensor:</c> section of a local sensor profile.</summary>
/// <param name="Driver">Which driver reads it.</param>
public sealed record SensorSettings(SensorDriver Driver)
{
    /// <summary>GPIO inputs: contact bounce to ignore (default 50 ms for digital, 5 ms for pulse).</summary>
    public TimeSpan? Debounce { get; init; }

    /// <summary>GPIO inputs: the input reads low when active (closed contact to ground); the default unless <c>pull: down</c>.</summary>
    public bool ActiveLow { get; init; } = true;

    /// <summary>GPIO inputs: pull resistor (default up: contacts and S0 outputs switch to ground).</summary>
    public PullMode Pull { get; init; } = PullMode.Up;

    /// <summary>Pulse counters: pulses per unit of the counted quantity (e.g. 1000 imp/kWh).</summary>
    public double? PulsesPerUnit { get; init; }

    /// <summary>Driver-specific extras as written (e.g. <c>oversampling: 4</c>), values as text.</summary>
    public IReadOnlyDictionary<string, string> Parameters { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);
}
