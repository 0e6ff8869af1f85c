using Microsoft.Extensions.Logging;

namespace EdgeTwin.Core.Scheduling;

internal static partial class SchedulerLog
{
    [LoggerMessage(EventId = 1100, Level = LogLevel.Information, Message = "Scheduler started: {Devices} devices, at most {Concurrency} polls at once")]
    public static partial void Started(ILogger logger, int devices, int concurrency);

    [LoggerMessage(EventId = 1101, Level = LogLevel.Debug, Message = "Device {Device}: poll failed ({Reason}, {Failures} in a row): {Error}")]
    public static partial void PollFailed(ILogger logger, string device, string reason, int failures, string error);

    [LoggerMessage(EventId = 1109, Level = LogLevel.Warning, Message = "Device {Device}: first poll failed ({Reason}); it has not answered since start: {Error}")]
    public static partial void FirstPollFailed(ILogger logger, string device, string reason, string error);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Warning, Message = "Device {Device} is down after {Failures} failed polls; next try in {Backoff}: {Error}")]
    public static partial void DeviceDown(ILogger logger, string device, int failures, string backoff, string error);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Information, Message = "Device {Device} is up again after {Failures} failed polls")]
    public static partial void DeviceUp(ILogger logger, string device, int failures);

    [LoggerMessage(EventId = 1104, Level = LogLevel.Warning, Message = "Device {Device}: poll still running {Elapsed} after it timed out; skipping its polls until it returns")]
    public static partial void StillInFlight(ILogger logger, string device, string elapsed);

    [LoggerMessage(EventId = 1105, Level = LogLevel.Error, Message = "Device {Device}: unexpected {ExceptionType} from the source; treated as a failed poll")]
    public static partial void UnexpectedException(ILogger logger, string device, string exceptionType, Exception exception);

    [LoggerMessage(EventId = 1106, Level = LogLevel.Information, Message = "Scheduler stopped; {InFlight} polls were still in flight")]
    public static partial void Stopped(ILogger logger, int inFlight);

    [LoggerMessage(EventId = 1108, Level = LogLevel.Trace, Message = "Device {Device}: poll returned {Samples} samples in {Milliseconds:F1} ms")]
    public static partial void Polled(ILogger logger, string device, int samples, double milliseconds);

    [LoggerMessage(EventId = 1107, Level = LogLevel.Error, Message = "Device {Device}: poll loop crashed")]
    public static partial void LoopCrashed(ILogger logger, string device, Exception exception);
}
