using EdgeTwin.Core.Sources;

namespace EdgeTwin.Sensors.Common;

/// <summary>
/// A local sensor could not be read. The message always names the bus and the address on it
/// (<c>i2c-1 0x76</c>, <c>w1 28-0316a2791aff</c>, <c>gpio 17</c>) so a person can find the wire.
/// </summary>
public sealed class SensorException : DeviceException
{
    public SensorException(string deviceId, string bus, string address, string message, Exception? inner = null)
        : base(deviceId, $"{bus} {address}: {message}", inner)
    {
        Bus = bus;
        Address = address;
    }

    public string Bus { get; }

    public string Address { get; }
}
