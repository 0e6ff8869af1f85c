using System.Globalization;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Modbus.Transport;

internal static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Modbus connected to {Endpoint}")]
    public static partial void Connected(ILogger logger, string endpoint);

    [LoggerMessage(EventId = 16, Level = LogLevel.Debug, Message = "Modbus reconnected to {Endpoint} (the last connection ended as expected: {Why})")]
    public static partial void Reconnected(ILogger logger, string endpoint, string why);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Modbus connect to {Endpoint} failed; next attempt in {Backoff}: {Reason}")]
    public static partial void ConnectFailed(ILogger logger, string endpoint, string backoff, string reason);

    [LoggerMessage(EventId = 19, Level = LogLevel.Debug, Message = "Modbus connect to {Endpoint} failed again ({Count} times since {Since:u}): {Reason}; next attempt in {Backoff}")]
    public static partial void ConnectFailedAgain(ILogger logger, string endpoint, int count, DateTimeOffset since, string reason, string backoff);

    [LoggerMessage(EventId = 20, Level = LogLevel.Warning, Message = "Modbus connect to {Endpoint} still fails: {Count} failed attempts since {Since:u}, the last: {Reason}; next attempt in {Backoff}")]
    public static partial void ConnectStillFailing(ILogger logger, string endpoint, int count, DateTimeOffset since, string reason, string backoff);

    [LoggerMessage(EventId = 21, Level = LogLevel.Information, Message = "Modbus connected to {Endpoint} again after {Count} failed attempts since {Since:u}")]
    public static partial void ConnectedAgain(ILogger logger, string endpoint, int count, DateTimeOffset since);

    [LoggerMessage(EventId = 10, Level = LogLevel.Debug, Message = "Modbus connect to {Endpoint} failed")]
    public static partial void ConnectFailedDetail(ILogger logger, string endpoint, Exception exception);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "Modbus connection to {Endpoint} lost: {Reason}")]
    public static partial void ConnectionLost(ILogger logger, string endpoint, string reason);

    [LoggerMessage(EventId = 4, Level = LogLevel.Debug, Message = "Modbus {Endpoint}: discarded {Kind} response (transaction {TransactionId}, unit {UnitId})")]
    public static partial void Discarded(ILogger logger, string endpoint, string kind, int transactionId, byte unitId);

    // The message carries the reason and the bytes; a stack trace per garbled frame (Warning) said nothing about the device.
    [LoggerMessage(EventId = 5, Level = LogLevel.Warning, Message = "Modbus {Endpoint}: garbled frame: {Reason}; logged again at most every {Interval}")]
    public static partial void Garbled(ILogger logger, string endpoint, string reason, string interval);

    // A device that garbles every answer wrote a Warning (and over TCP an Information "connected" line) per request: 16 of
    // each per poll of a meter, on and on while it stayed down.
    [LoggerMessage(EventId = 22, Level = LogLevel.Warning, Message = "Modbus {Endpoint}: {Count} garbled frames in the last {Over} (the last: {Reason})")]
    public static partial void GarbledRepeated(ILogger logger, string endpoint, int count, string over, string reason);

    [LoggerMessage(EventId = 11, Level = LogLevel.Debug, Message = "Modbus {Endpoint}: skipped {Count} bytes of noise before unit {UnitId}'s answer ({Reason})")]
    public static partial void NoiseSkipped(ILogger logger, string endpoint, int count, byte unitId, string? reason);

    [LoggerMessage(EventId = 12, Level = LogLevel.Debug, Message = "Modbus {Endpoint} closed the connection; the next request reconnects")]
    public static partial void ClosedByPeer(ILogger logger, string endpoint);

    [LoggerMessage(EventId = 13, Level = LogLevel.Warning, Message = "Modbus {Endpoint}: skipped {Bytes} bytes of junk {Where}, resynchronised on the stream without a reset: {Junk}; logged again at most every {Interval}")]
    public static partial void JunkSkipped(ILogger logger, string endpoint, int bytes, string where, string junk, string interval);

    [LoggerMessage(EventId = 14, Level = LogLevel.Warning, Message = "Modbus {Endpoint}: junk skipped {Count} times in the last {Over}, each without a reset (the last: {Bytes} bytes {Where}: {Junk})")]
    public static partial void JunkSkippedRepeated(ILogger logger, string endpoint, int count, string over, int bytes, string where, string junk);

    [LoggerMessage(EventId = 17, Level = LogLevel.Warning, Message = "Modbus {Endpoint}: {Bytes} bytes of junk {Where} with no answer in them ({Why}), connection reset to resynchronise: {Junk}; logged again at most every {Interval}")]
    public static partial void JunkReset(ILogger logger, string endpoint, int bytes, string where, string why, string junk, string interval);

    [LoggerMessage(EventId = 18, Level = LogLevel.Warning, Message = "Modbus {Endpoint}: connection reset for junk {Count} times in the last {Over} (the last: {Bytes} bytes {Where}, {Why}: {Junk})")]
    public static partial void JunkResetRepeated(ILogger logger, string endpoint, int count, string over, int bytes, string where, string why, string junk);

    [LoggerMessage(EventId = 15, Level = LogLevel.Debug, Message = "Modbus {Endpoint}: connection reset after junk on the stream; the next request reconnects")]
    public static partial void ResetForJunk(ILogger logger, string endpoint);

    [LoggerMessage(EventId = 6, Level = LogLevel.Warning, Message = "Modbus bus {Bus}: device {Device} failed ({Failures} in a row), next poll in {Backoff}: {Reason}")]
    public static partial void DeviceBackoff(ILogger logger, string bus, string device, int failures, string backoff, string reason);

    [LoggerMessage(EventId = 7, Level = LogLevel.Information, Message = "Modbus bus {Bus}: device {Device} answers again")]
    public static partial void DeviceRecovered(ILogger logger, string bus, string device);

    [LoggerMessage(EventId = 8, Level = LogLevel.Information, Message = "Modbus server listening on {Endpoint}")]
    public static partial void ServerListening(ILogger logger, string endpoint);

    [LoggerMessage(EventId = 9, Level = LogLevel.Debug, Message = "Modbus server {Endpoint}: client session ended: {Reason}")]
    public static partial void ServerSessionEnded(ILogger logger, string endpoint, string reason);

    /// <summary>
    /// A backoff for people (<c>1.2s</c>, <c>2m 5s</c>), not a raw TimeSpan: the same text as EdgeTwin.Core's
    /// Durations.Approximate, which this project does not reference.
    /// </summary>
    public static string Human(TimeSpan value)
    {
        var t = value.Duration();
        return t.TotalHours >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{(int)t.TotalHours}h {t.Minutes}m")
            : t.TotalMinutes >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{(int)t.TotalMinutes}m {t.Seconds}s")
            : t.TotalSeconds >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{t.TotalSeconds:0.0}s")
            : string.Create(CultureInfo.InvariantCulture, $"{t.TotalMilliseconds:0}ms");
    }
}
