using Microsoft.Extensions.Logging;

namespace EdgeTwin.Core.Pipeline;

internal static partial class PipelineLog
{
    [LoggerMessage(EventId = 1200, Level = LogLevel.Error, Message = "Stage {Stage} failed on a batch of {Count} samples; the batch is skipped")]
    public static partial void StageFailed(ILogger logger, string stage, int count, Exception exception);

    [LoggerMessage(EventId = 1201, Level = LogLevel.Error, Message = "Stage {Stage} failed on event {Kind} from {Source}; the event is skipped for this stage")]
    public static partial void EventStageFailed(ILogger logger, string stage, string kind, string source, Exception exception);

    [LoggerMessage(EventId = 1202, Level = LogLevel.Error, Message = "Stage {Stage} failed to flush at shutdown")]
    public static partial void FlushFailed(ILogger logger, string stage, Exception exception);

    [LoggerMessage(EventId = 1203, Level = LogLevel.Warning, Message = "Stage {Stage} queue is full ({Capacity} batches); dropping ({Mode})")]
    public static partial void Dropping(ILogger logger, string stage, int capacity, string mode);

    [LoggerMessage(EventId = 1204, Level = LogLevel.Information, Message = "Pipeline drained: {Batches} batches over {Stages} stages")]
    public static partial void Drained(ILogger logger, long batches, int stages);
}
