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

    /// <summary>Bytes behind an answer that no request asked for (each resets the connection); its warning is rate-limited, this counts every one.</summary>
    public static readonly Counter<long> JunkAfterAnswer = Meter.CreateCounter<long>("modbus.client.junk_after_answer", "{occurrence}", "Junk behind an answer, each resetting the connection");

    public static readonly Counter<long> Connects = Meter.CreateCounter<long>("modbus.client.connects", "{connect}", "Connection attempts, by outcome");

    public static readonly Counter<long> ServerRequests = Meter.CreateCounter<long>("modbus.server.requests", "{request}", "Requests served, by outcome");
}
