using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Uplink.Sparkplug;

/// <summary>
/// Keeps the Sparkplug birth/death sequence (bdSeq, 0–255) across restarts in a one-line state file, so a host can
/// match every NBIRTH to the NDEATH (the will) registered with the same connection even after a power cut.
/// Written to a temporary file, flushed to disk and renamed over the old one: a crash leaves the old or the new value.
/// </summary>
internal sealed partial class BdSeqStore(string path, ILogger? logger = null)
{
    // The last value handed out in this process: the file may not hold it (it could not be written).
    private long _last = -1;
    private string? _failure;

    public string Path => path;

    /// <summary>
    /// The bdSeq for a new connection: one more than the last one used (mod 256), persisted before use. A file that
    /// cannot be written (storage turned read-only, a full disk) does not stop the connection: the value is kept in
    /// memory and goes on from there, with one error per cause; only its continuity across a restart is lost. Before, the
    /// write's exception failed every connect: a Sparkplug uplink on a failed SD card delivered nothing although the
    /// broker was up and the outbox went on in memory.
    /// </summary>
    public long Next()
    {
        var last = Read();
        if (_last >= 0 && last != _last)
        {
            last = _last; // the file kept an older value: it could not be written
        }

        var next = (last + 1) & 0xFF;
        _last = next;
        try
        {
            Write(next);
            _failure = null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            if (_failure != ex.Message)
            {
                _failure = ex.Message;
                LogNotPersisted(logger ?? NullLogger.Instance, path, next, ex.Message);
            }
        }

        return next;
    }

    [LoggerMessage(EventId = 72, Level = LogLevel.Error, Message = "Sparkplug bdSeq {Value} could not be saved to {Path} ({Reason}); the connection goes on with it, kept in memory (after a restart the host may see bdSeq start over)")]
    private static partial void LogNotPersisted(ILogger logger, string path, long value, string reason);

    /// <summary>The last bdSeq used, or -1 when there is none (or the file is unreadable: start over at 0).</summary>
    public long Read()
    {
        try
        {
            var text = File.ReadAllText(path, Encoding.ASCII).Trim();
            return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v is >= 0 and <= 255 ? v : -1;
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return -1;
        }
    }

    private void Write(long value)
    {
        var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        var tmp = path + ".tmp";
        using (var stream = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(Encoding.ASCII.GetBytes(value.ToString(CultureInfo.InvariantCulture) + "\n"));
            stream.Flush(flushToDisk: true);
        }

        File.Move(tmp, path, overwrite: true);
    }
}
