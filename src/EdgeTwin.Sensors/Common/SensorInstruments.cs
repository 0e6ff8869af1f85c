using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace EdgeTwin.Sensors.Common;

/// <summary>Counters of the local sensors (meter <c>EdgeTwin.Sensors</c>), tagged with the device id and driver.</summary>
internal static class SensorInstruments
{
    public const string MeterName = "EdgeTwin.Sensors";

    private static readonly Meter Meter = new(MeterName);

    public static readonly Counter<long> Reads = Meter.CreateCounter<long>("edgetwin.sensors.reads", "{read}", "Sensor reads that returned a value.");

    public static readonly Counter<long> Errors = Meter.CreateCounter<long>("edgetwin.sensors.errors", "{error}", "Sensor reads that failed (CRC, NACK, timeout, missing device).");

    public static readonly Counter<long> Edges = Meter.CreateCounter<long>("edgetwin.sensors.input_changes", "{change}", "Debounced digital input changes.");

    public static readonly Counter<long> Chatter = Meter.CreateCounter<long>("edgetwin.sensors.input_chatter", "{episode}", "Digital inputs that started chattering or flashing (their changes then publish samples, not events).");

    public static readonly Counter<long> Pulses = Meter.CreateCounter<long>("edgetwin.sensors.pulses", "{pulse}", "S0 pulses counted.");

    public static readonly Counter<long> PulsesRejected = Meter.CreateCounter<long>("edgetwin.sensors.pulses_rejected", "{edge}", "Pulse edges dropped as bounce (closer than the minimum gap to the edge before); growing with the pulses, it is contact bounce, with the pulses flat, pulses faster than the gap.");

    public static void Read(string deviceId, string driver) => Reads.Add(1, Tags(deviceId, driver));

    public static void Error(string deviceId, string driver) => Errors.Add(1, Tags(deviceId, driver));

    public static TagList Tags(string deviceId, string driver) => new()
    {
        { "device", deviceId },
        { "driver", driver },
    };
}
