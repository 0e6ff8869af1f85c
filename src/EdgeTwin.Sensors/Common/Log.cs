using Microsoft.Extensions.Logging;

namespace EdgeTwin.Sensors.Common;

internal static partial class Log
{
    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "Sensor {DeviceId} ({Driver}) read failed: {Reason}; repeats are logged at Debug until it reads again")]
    public static partial void ReadFailed(ILogger logger, string deviceId, string driver, string reason);

    [LoggerMessage(EventId = 4008, Level = LogLevel.Debug, Message = "Sensor {DeviceId} ({Driver}) read failed ({Failures} in a row): {Reason}")]
    public static partial void ReadStillFailing(ILogger logger, string deviceId, string driver, long failures, string reason);

    [LoggerMessage(EventId = 4009, Level = LogLevel.Information, Message = "Sensor {DeviceId} ({Driver}) reads again after {Failures} failed reads")]
    public static partial void ReadRecovered(ILogger logger, string deviceId, string driver, long failures);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Information, Message = "Input {DeviceId} changed to {State} ({Label})")]
    public static partial void InputChanged(ILogger logger, string deviceId, int state, string label);

    [LoggerMessage(EventId = 4006, Level = LogLevel.Warning, Message = "Input {DeviceId} is {What}: {Changes} changes in {WindowSeconds} s; its changes publish state samples only until it is steady for {WindowSeconds} s")]
    public static partial void InputChattering(ILogger logger, string deviceId, string what, int changes, double windowSeconds);

    [LoggerMessage(EventId = 4007, Level = LogLevel.Information, Message = "Input {DeviceId} steady again at {State} ({Label}) after {Changes} changes")]
    public static partial void InputSteady(ILogger logger, string deviceId, int state, string label, long changes);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Warning, Message = "Pulse counter {DeviceId}: state file {Path} unreadable, starting from 0: {Reason}")]
    public static partial void CounterStateUnreadable(ILogger logger, string deviceId, string path, string reason);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Warning, Message = "Pulse counter {DeviceId}: could not save state to {Path}: {Reason}")]
    public static partial void CounterStateSaveFailed(ILogger logger, string deviceId, string path, string reason);

    [LoggerMessage(EventId = 4005, Level = LogLevel.Warning, Message = "Sensor {DeviceId}: {What}")]
    public static partial void SensorWarning(ILogger logger, string deviceId, string what);
}
