using System.Globalization;
using Microsoft.Win32.SafeHandles;

namespace EdgeTwin.Sensors.Host;

/// <summary>Parsers of the /proc files the host driver reads, on the bytes as read (no strings on the hot path).</summary>
public static class ProcText
{
    /// <summary><c>MemTotal</c> and <c>MemAvailable</c> of /proc/meminfo, in bytes (the file says kB, meaning KiB).</summary>
    public static bool TryMemInfo(ReadOnlySpan<byte> text, out double totalBytes, out double availableBytes)
    {
        availableBytes = double.NaN;
        return TryField(text, "MemTotal:"u8, out totalBytes) && TryField(text, "MemAvailable:"u8, out availableBytes);

        static bool TryField(ReadOnlySpan<byte> text, ReadOnlySpan<byte> name, out double bytes)
        {
            bytes = double.NaN;
            // A field name starts a line (MemAvailable must not match inside another name).
            var at = text.StartsWith(name) ? 0 : -1;
            for (var from = 0; at < 0;)
            {
                var i = text[from..].IndexOf(name);
                if (i < 0)
                {
                    return false;
                }

                at = text[from + i - 1] == (byte)'\n' ? from + i : -1;
                from += i + 1;
            }

            var rest = text[(at + name.Length)..];
            var end = rest.IndexOf((byte)'\n');
            var field = (end < 0 ? rest : rest[..end]).Trim((byte)' ');
            if (!field.EndsWith(" kB"u8) || !long.TryParse(field[..^3].TrimEnd((byte)' '), NumberStyles.None, CultureInfo.InvariantCulture, out var kib))
            {
                return false;
            }

            bytes = kib * 1024.0;
            return true;
        }
    }

    /// <summary>The 1 and 5 minute load averages of /proc/loadavg (<c>0.81 0.45 0.20 4/179 29059</c>).</summary>
    public static bool TryLoadAvg(ReadOnlySpan<byte> text, out double load1, out double load5)
    {
        load5 = double.NaN;
        return TryWord(ref text, out load1) && TryWord(ref text, out load5);
    }

    /// <summary>Seconds since boot, the first figure of /proc/uptime (<c>37017.60 36745.89</c>).</summary>
    public static bool TryUptime(ReadOnlySpan<byte> text, out double seconds) => TryWord(ref text, out seconds);

    /// <summary>The online CPUs: the <c>cpuN</c> lines of /proc/stat (the <c>cpu</c> total line not counted).</summary>
    public static int CountCpus(ReadOnlySpan<byte> text)
    {
        var count = 0;
        while (!text.IsEmpty)
        {
            if (text.Length > 3 && text.StartsWith("cpu"u8) && char.IsAsciiDigit((char)text[3]))
            {
                count++;
            }

            var end = text.IndexOf((byte)'\n');
            text = end < 0 ? default : text[(end + 1)..];
        }

        return count;
    }

    private static bool TryWord(ref ReadOnlySpan<byte> text, out double value)
    {
        text = text.TrimStart((byte)' ');
        var end = text.IndexOfAny((byte)' ', (byte)'\n');
        var word = end < 0 ? text : text[..end];
        text = end < 0 ? default : text[end..];
        return double.TryParse(word, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out value);
    }
}

/// <summary>
/// Reads a small kernel file whole into a buffer it keeps (grown when a file is larger), so a poll allocates no
/// strings. Not thread-safe: each read of the host driver has its own, and its gate runs one read at a time.
/// </summary>
internal sealed class ProcFile(string path)
{
    private byte[] _buffer = new byte[4096];

    public string Path { get; } = path;

    /// <summary>The file's content, valid until the next call.</summary>
    public ReadOnlySpan<byte> Read()
    {
        using SafeFileHandle handle = File.OpenHandle(Path);
        var length = 0;
        while (true)
        {
            // procfs files report size 0: read until a read returns nothing.
            var n = RandomAccess.Read(handle, _buffer.AsSpan(length), length);
            if (n == 0)
            {
                return _buffer.AsSpan(0, length);
            }

            length += n;
            if (length == _buffer.Length)
            {
                Array.Resize(ref _buffer, _buffer.Length * 2);
            }
        }
    }
}
