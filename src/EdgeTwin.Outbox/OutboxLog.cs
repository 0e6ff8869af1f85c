using Microsoft.Extensions.Logging;

namespace EdgeTwin.Outbox;

internal static partial class OutboxLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Outbox {Path} opened: {Depth} entries held, last sequence {LastSequence}, uplinks {Uplinks}")]
    public static partial void Opened(ILogger logger, string path, long depth, long lastSequence, string uplinks);

    [LoggerMessage(EventId = 2, Level = LogLevel.Error, Message = "Outbox file {Path} is corrupt and was moved aside to {MovedTo}; a new, empty outbox was created (sequences continue from {Sequence}). Cause: {Cause}")]
    public static partial void CorruptMovedAside(ILogger logger, string path, string movedTo, long sequence, string cause);

    [LoggerMessage(EventId = 17, Level = LogLevel.Warning, Message = "Outbox: salvaged {Salvaged} readable entries (sequences {FirstSeq}..{LastSeq}) from the corrupt file {MovedTo} into the new outbox; {Lost} unreadable entries are lost{Bound}. Problems: {Problems}")]
    public static partial void Salvaged(ILogger logger, string movedTo, long salvaged, long firstSeq, long lastSeq, long lost, string bound, string problems);

    [LoggerMessage(EventId = 3, Level = LogLevel.Error, Message = "Outbox {Path}: write failed, {Records} records not stored (the callers keep them): {Cause}")]
    public static partial void WriteFailed(ILogger logger, string path, int records, string cause, Exception? exception);

    [LoggerMessage(EventId = 14, Level = LogLevel.Warning, Message = "Outbox {Path}: the disk is nearly full ({Available} bytes free, reserve {Reserve}, the outbox's files {Files} bytes): old raw data is condensed and old summaries dropped whenever the files would grow, and a data_gap event says so; free space on this filesystem")]
    public static partial void DiskPressure(ILogger logger, string path, long available, long reserve, long files);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Outbox {Path} near its disk budget ({Bytes} of {Budget} bytes, reason {Reason}): condensed {Condensed} raw entries, dropped {Dropped} summary/raw entries (sequences {FirstSeq}..{LastSeq}); a data_gap event was queued")]
    public static partial void BudgetEnforced(ILogger logger, string path, long bytes, long budget, string reason, long condensed, long dropped, long firstSeq, long lastSeq);

    [LoggerMessage(EventId = 24, Level = LogLevel.Warning, Message = "Outbox {Path}: dropped {Dropped} summary/raw entries held longer than max_age {MaxAge} (sequences {FirstSeq}..{LastSeq}); a data_gap event was queued")]
    public static partial void MaxAgeEnforced(ILogger logger, string path, string maxAge, long dropped, long firstSeq, long lastSeq);

    [LoggerMessage(EventId = 5, Level = LogLevel.Warning, Message = "Outbox {Path} holds {Bytes} bytes, over its {Budget} byte budget, and what is left are events and predictions, which are never dropped")]
    public static partial void OverBudgetWithProtected(ILogger logger, string path, long bytes, long budget);

    [LoggerMessage(EventId = 6, Level = LogLevel.Error, Message = "Outbox {Path}: reopening after a failure did not work: {Cause}")]
    public static partial void ReopenFailed(ILogger logger, string path, string cause, Exception? exception);

    [LoggerMessage(EventId = 35, Level = LogLevel.Warning, Message = "Outbox {Path} was not written here: {Why} (a restored backup, or another gateway's file moved in). Its held entries keep their sequences (up to {Last}) and are sent as usual; new entries start at {Sequence} (Unix ms × 1000): the file's own count may be behind what the centre already has from the original, which would discard them as duplicates")]
    public static partial void AdoptedCopy(ILogger logger, string path, string why, long last, long sequence);

    [LoggerMessage(EventId = 8, Level = LogLevel.Information, Message = "Outbox {Path} is a new file; its sequences start at {Sequence} (Unix ms × 1000), above anything an earlier file of this gateway sent")]
    public static partial void CreatedNew(ILogger logger, string path, long sequence);

    [LoggerMessage(EventId = 7, Level = LogLevel.Warning, Message = "Outbox {Path}: read for uplink {Uplink} failed: {Cause}")]
    public static partial void ReadFailed(ILogger logger, string path, string uplink, string cause, Exception exception);

    [LoggerMessage(EventId = 16, Level = LogLevel.Warning, Message = "Outbox {Path}: reading its {Name} record failed: {Cause}")]
    public static partial void BlobReadFailed(ILogger logger, string path, string name, string cause, Exception exception);

    [LoggerMessage(EventId = 30, Level = LogLevel.Debug, Message = "Outbox {Path}: an append of {Records} records ({Bytes} entry bytes) needs ~{Need} bytes of journal, {Room} bytes are free above the reserve: committed in {Pieces} transactions, acknowledged after the last")]
    public static partial void AppendInPieces(ILogger logger, string path, int records, long bytes, long need, long room, int pieces);

    [LoggerMessage(EventId = 31, Level = LogLevel.Warning, Message = "Outbox {Path}: removed {Count} entries (sequences {FirstSeq}..{LastSeq}) of an append that failed part-way; its caller was told it failed and keeps the records")]
    public static partial void PendingTailRemoved(ILogger logger, string path, long count, long firstSeq, long lastSeq);

    [LoggerMessage(EventId = 32, Level = LogLevel.Warning, Message = "Outbox: the corrupt file {MovedTo} held {Count} entries ({Bytes} bytes, above sequence {Last}) of an append that never completed (killed or failed part-way); not salvaged: the append was never accepted (its caller never heard \"stored\" and retries it; after a kill the open-window recovery accounts for it), so salvaged they would be sent twice")]
    public static partial void PendingPiecesNotSalvaged(ILogger logger, string movedTo, long count, long bytes, long last);

    [LoggerMessage(EventId = 33, Level = LogLevel.Information, Message = "Outbox {Path} (opened read-only): {Count} entries in pending pieces of an unfinished append ({Bytes} bytes, above sequence {Last}) are on disk; they are not entries to send and the agent's next open drops them")]
    public static partial void PendingPiecesLeft(ILogger logger, string path, long count, long bytes, long last);

    [LoggerMessage(EventId = 34, Level = LogLevel.Error, Message = "Outbox {Path} was written by a newer build (file format {Format}; this build reads format {Own}): kept untouched as {MovedTo} with its entries, which this build does not send; a new outbox starts at sequence {Sequence}. Upgrade again to send them (or read them with that build's `edgetwin outbox export --path`)")]
    public static partial void NewerFormatMovedAside(ILogger logger, string path, int format, int own, string movedTo, long sequence);

    [LoggerMessage(EventId = 36, Level = LogLevel.Error, Message = "Outbox {Path}: its file system is read-only ({Cause}): the outbox goes on in memory (at most {BudgetMb} MiB) and the uplinks keep delivering, but what is not delivered when the agent stops or the gateway loses power is lost. {Held} entries the file held were taken into memory; new entries are numbered from {Sequence}. The storage is failing: check dmesg, reboot to fsck it, or replace it")]
    public static partial void MemoryOnly(ILogger logger, string path, string cause, long held, long sequence, long budgetMb);

    [LoggerMessage(EventId = 37, Level = LogLevel.Warning, Message = "Outbox {Path}: reading what the file held for the memory outbox: {Lost} entries unreadable ({Problems})")]
    public static partial void MemoryOnlyUnreadable(ILogger logger, string path, long lost, string problems);

    [LoggerMessage(EventId = 38, Level = LogLevel.Error, Message = "Outbox {Path}: its file system is read-only and the memory outbox could not be started: {Cause}; appends fail and the callers keep their records")]
    public static partial void MemoryOnlyFailed(ILogger logger, string path, string cause, Exception exception);

    [LoggerMessage(EventId = 39, Level = LogLevel.Warning, Message = "Outbox {Path}: its file system is writable again: the {Held} entries held in memory since {Since:O} are on disk again with their sequences and each uplink's position, and new entries continue above {Last}; the outbox is back on its file (the memory copy took {CopyMs:0} ms, the write {WriteMs:0} ms on its own thread, the switch {SwitchMs:0} ms with {Added} entries that came in during the write). Check the storage (dmesg): it failed once")]
    public static partial void WrittenBack(ILogger logger, string path, DateTimeOffset since, long held, long last, double copyMs, double writeMs, double switchMs, int added);

    [LoggerMessage(EventId = 40, Level = LogLevel.Warning, Message = "Outbox {Path}: writing the memory outbox back to its file failed ({Cause}); it stays in memory and tries again in {RetryS:0} s (this cause is not logged again)")]
    public static partial void WriteBackFailed(ILogger logger, string path, string cause, double retryS);

    [LoggerMessage(EventId = 41, Level = LogLevel.Warning, Message = "Outbox {Path}: a write-back of the memory outbox was stopped after its file was complete; {Target} replaces the old file now")]
    public static partial void WriteBackCompletedAtOpen(ILogger logger, string path, string target);

    [LoggerMessage(EventId = 42, Level = LogLevel.Information, Message = "Outbox {Path}: removed {Target}, the partial file of a write-back that was stopped before it was complete; the old file is whole and used")]
    public static partial void WriteBackPartialRemoved(ILogger logger, string path, string target);
}
