using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Core.Sources;

/// <summary>
/// A device read on a schedule (SNMP, Modbus, I2C, 1-Wire). The scheduler owns timing, timeouts and
/// backoff; a source only reads once per call. A read that fails throws <see cref="DeviceException"/>
/// (or a subclass) naming the device; the scheduler turns it into quality flags and up/down events.
/// </summary>
public interface IPolledSource : IAsyncDisposable
{
    string DeviceId { get; }

    /// <summary>Registers the series this source will produce (called once, before the first poll).</summary>
    void RegisterSeries(SeriesRegistry registry);

    /// <summary>Reads the device once and writes its samples, all stamped with <paramref name="acquiredAtUnixMs"/>.</summary>
    ValueTask PollAsync(ISampleSink sink, long acquiredAtUnixMs, CancellationToken cancellationToken);

    /// <summary>
    /// What the scheduler calls. A source whose device shares a line with others (RS-485 units) overrides it and tells
    /// <paramref name="deadline"/> when it waits for the line and when it has it, so the device's timeout covers its own
    /// exchanges, not the queue in front of them. By default the deadline runs from the start of the poll.
    /// </summary>
    ValueTask PollAsync(ISampleSink sink, long acquiredAtUnixMs, PollDeadline deadline, CancellationToken cancellationToken) =>
        PollAsync(sink, acquiredAtUnixMs, cancellationToken);
}

/// <summary>
/// A source that pushes by itself (trap listener, GPIO edge interrupts, pulse counters). Runs until cancelled.
/// </summary>
public interface IPushSource : IAsyncDisposable
{
    string Name { get; }

    void RegisterSeries(SeriesRegistry registry);

    Task RunAsync(ISampleSink samples, IEventSink events, CancellationToken cancellationToken);
}

/// <summary>A device could not be read: unreachable, timed out, refused, or answered with garbage.</summary>
public class DeviceException : Exception
{
    public DeviceException(string deviceId, string message, Exception? inner = null)
        : base($"device '{deviceId}': {message}", inner)
    {
        DeviceId = deviceId;
    }

    public string DeviceId { get; }
}
