using System.Diagnostics.Metrics;

namespace EdgeTwin.Modbus.Transport;

/// <summary>Counters of the Modbus library (meter "EdgeTwin.Modbus"); tagged with the endpoint.</summary>
public static class ModbusMetrics
{
    public const string MeterName = "EdgeTwin.Modbus";

    private static readonly Meter Meter = new(MeterName, "1.0");

    /// <summary>Requests by outcome: ok, exception (device exception response), timeout, protocol, io.</summary>
    public static readonly Counter<long> Requests = Meter.CreateCounter<long>("modbus.client.requests", "{request}", "Modbus requests sent, by outcome");

    public static readonly Histogram<double> Duration = Meter.CreateHistogram<double>("modbus.client.request.duration", "s", "Time from send to answer");

    /// <summary>Responses thrown away: stale (late answer to a request we gave up on), mismatched (wrong unit or function).</summary>
    public static readonly Counter<long> Discarded = Meter.CreateCounter<long>("modbus.client.responses.discarded", "{response}", "Responses discarded as stale or mismatched");

    /// <summary>
    /// Runs of junk on a TCP stream (bytes no request was owed, mostly behind an answer), by outcome: skipped (the reader
    /// resynchronised on the next frame) or reset (past the bounds, the connection was rebuilt). Its warning is
    /// rate-limited; this counts every run.
    /// </summary>
    public static readonly Counter<long> JunkAfterAnswer = Meter.CreateCounter<long>("modbus.client.junk_after_answer", "{occurrence}", "Runs of junk on the stream, by outcome: skipped or reset");

    /// <summary>Bytes of junk skipped (or reset on) on TCP streams.</summary>
    public static readonly Counter<long> JunkBytes = Meter.CreateCounter<long>("modbus.client.junk_bytes", "By", "Bytes of junk skipped on the stream");

    /// <summary>
    /// RTU: exchanges of a unit that met a frame error, by kind: crc (a whole frame whose CRC failed), noise (bytes that
    /// start no frame), cut_short (an answer that stopped short). Tagged with the unit asked, so one bad drop on a
    /// line (a loose terminal, a unit at another baud rate) shows as that unit's count.
    /// </summary>
    public static readonly Counter<long> FrameErrors = Meter.CreateCounter<long>("modbus.client.frame_errors", "{exchange}", "RTU exchanges that met a frame error, by unit and kind: crc, noise, cut_short");

    public static readonly Counter<long> Connects = Meter.CreateCounter<long>("modbus.client.connects", "{connect}", "Connection attempts, by outcome");

    public static readonly Counter<long> ServerRequests = Meter.CreateCounter<long>("modbus.server.requests", "{request}", "Requests served, by outcome");
}
