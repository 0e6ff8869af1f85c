using System.Globalization;
using System.Text;

namespace EdgeTwin.Uplink.Sparkplug;

/// <summary>
/// Keeps the Sparkplug birth/death sequence (bdSeq, 0–255) across restarts in a one-line state file, so a host can
/// match every NBIRTH to the NDEATH (the will) registered with the same connection even after a power cut.
/// Written to a temporary file, flushed to disk and renamed over the old one: a crash leaves the old or the new value.
/// </summary>
internal sealed class BdSeqStore(string path)
{
    public string Path => path;

    /// <summary>The bdSeq for a new connection: one more than the last one used (mod 256), persisted before use.</summary>
    public long Next()
    {
        var next = (Read() + 1) & 0xFF;
        Write(next);
        return next;
    }

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
