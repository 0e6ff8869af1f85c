using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Hosting;

/// <summary>
/// Outbox sequences stamped while the kernel clock was not synchronised (a gateway without RTC, booted from
/// fake-hwclock's saved time), from <paramref name="First"/> to <paramref name="Last"/>; Last null while the run that
/// stamps them goes on, or when its end could not be told (the outbox numbered lower after it: a new file).
/// </summary>
/// <param name="Boot">The boot they were stamped in (null: unknown).</param>
/// <param name="OffsetMs">The clock that stamped them: wall minus monotonic (ms), which only a step changes within a boot.</param>
public readonly record struct SequenceRange(long First, long? Last, string? Boot = null, long? OffsetMs = null)
{
    /// <summary><c>first-last</c>, or <c>first-</c> when the end is not known (the wire form of <c>earlier_seqs</c>).</summary>
    public override string ToString() => Last is { } last
        ? string.Create(CultureInfo.InvariantCulture, $"{First}-{last}")
        : string.Create(CultureInfo.InvariantCulture, $"{First}-");
}

/// <summary>
/// <c>clock-unsynced.json</c> in the agent's state directory (next to the outbox): the ranges of outbox sequences that
/// runs stamped while the clock was not synchronised and that no <c>clock_stepped</c> event has named yet, so that a
/// run that sees the sync names those of the runs before it too (a power cut or a restart before NTP synced used to
/// leave them unmarked). Written to a temporary file, flushed and renamed over the old one (a crash leaves one or the
/// other); a file that cannot be written (read-only or missing state directory) costs only the memory across a restart:
/// the agent runs on, with one error per cause. Thread-safe: the clock check and the outbox stage both use it.
/// </summary>
public sealed partial class UnsyncedRunsFile
{
    /// <summary>The file's name in the state directory.</summary>
    public const string FileName = "clock-unsynced.json";

    /// <summary>
    /// At most this many ranges are kept: a gateway restarted in a loop for days without NTP, each run numbering
    /// elsewhere (new files), would grow it without bound. The two oldest are then joined into the span of both.
    /// </summary>
    public const int MaxRanges = 32;

    private readonly Lock _lock = new();
    private readonly ILogger _logger;
    private readonly List<SequenceRange> _ranges = [];
    private string? _failure;

    /// <summary>Reads the file; a missing one is empty, an unreadable or damaged one is logged and taken as empty.</summary>
    public UnsyncedRunsFile(string path, ILogger logger)
    {
        Path = path;
        _logger = logger;
        try
        {
            _ranges.AddRange(Parse(File.ReadAllBytes(path)));
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            // nothing left open by an earlier run
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException or FormatException)
        {
            LogUnreadable(_logger, path, ex.Message);
        }
    }

    public string Path { get; }

    /// <summary>The ranges held, oldest first.</summary>
    public IReadOnlyList<SequenceRange> Ranges
    {
        get
        {
            lock (_lock)
            {
                return [.. _ranges];
            }
        }
    }

    /// <summary>
    /// At this run's start: an earlier run's range left open (it stopped before the sync, or was killed) ends just below
    /// <paramref name="runFirst"/>, this run's first sequence — the outbox goes on from its last sequence, so everything
    /// between was that run's. When the outbox numbers lower than the open range began (a new file under a clock set
    /// back), its end is not known and stays open. Writes only when something changed.
    /// </summary>
    public void CloseEarlier(long runFirst)
    {
        lock (_lock)
        {
            var changed = false;
            for (var i = 0; i < _ranges.Count; i++)
            {
                if (_ranges[i] is { Last: null } open && runFirst > open.First)
                {
                    _ranges[i] = open with { Last = runFirst - 1 };
                    changed = true;
                }
            }

            if (changed)
            {
                Merge();
                Save();
            }
        }
    }

    /// <summary>This run stamps from <paramref name="open"/>'s first on under an unsynchronised clock: recorded before it stamps more.</summary>
    public void Open(SequenceRange open)
    {
        lock (_lock)
        {
            _ranges.Add(open with { Last = null });
            Merge();
            Save();
        }
    }

    /// <summary>
    /// Replaces this run's open range (from <paramref name="openFirst"/>) by <paramref name="named"/>, the part of it an
    /// event not yet stored names (none: nothing to name), and opens <paramref name="nextOpen"/> when the clock is still
    /// not synchronised.
    /// </summary>
    public void Close(long? openFirst, SequenceRange? named, SequenceRange? nextOpen)
    {
        lock (_lock)
        {
            if (openFirst is { } f)
            {
                _ranges.RemoveAll(r => r.Last is null && r.First == f);
            }

            if (named is { } n)
            {
                _ranges.Add(n);
            }

            if (nextOpen is { } next)
            {
                _ranges.Add(next with { Last = null });
            }

            Save();
        }
    }

    /// <summary>
    /// Drops <paramref name="named"/> (the ranges an event named, exactly as held: <see cref="Close"/> does not join them
    /// with others), now stored in the outbox; a range of this run opened since stays. Deletes the file when nothing is left.
    /// </summary>
    public void Remove(IReadOnlyCollection<SequenceRange> named)
    {
        lock (_lock)
        {
            if (_ranges.RemoveAll(named.Contains) > 0)
            {
                Save();
            }
        }
    }

    // Under _lock: closed ranges that touch (one run went on where the one before stopped, the usual case in one outbox
    // file) and were stamped by one clock (same boot and offset: restarts without a step between) become one; then at
    // most MaxRanges.
    private void Merge()
    {
        for (var i = _ranges.Count - 1; i > 0; i--)
        {
            if (_ranges[i - 1] is { Last: { } last } before && _ranges[i] is { Last: not null } after && after.First == last + 1
                && before.Boot == after.Boot && (before.OffsetMs, after.OffsetMs) is var (x, y) && (x is null ? y is null : y is { } yy && Math.Abs(x.Value - yy) <= ClockStepWatcher.ThresholdMs))
            {
                _ranges[i - 1] = before with { Last = after.Last };
                _ranges.RemoveAt(i);
            }
        }

        while (_ranges.Count > MaxRanges && _ranges[0].Last is { } a && _ranges[1].Last is { } b)
        {
            _ranges[0] = new SequenceRange(Math.Min(_ranges[0].First, _ranges[1].First), Math.Max(a, b));
            _ranges.RemoveAt(1);
        }
    }

    // Under _lock.
    private void Save()
    {
        try
        {
            if (_ranges.Count == 0)
            {
                File.Delete(Path);
            }
            else
            {
                Twin.AtomicStateFile.Write(Path, Format(_ranges));
            }

            if (_failure is not null)
            {
                _failure = null;
                LogWritable(_logger, Path);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            if (_failure != ex.Message)
            {
                _failure = ex.Message;
                LogNotSaved(_logger, Path, ex.Message);
            }
        }
    }

    internal static byte[] Format(IEnumerable<SequenceRange> ranges)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("v", 1);
            json.WriteStartArray("ranges");
            foreach (var r in ranges)
            {
                json.WriteStartObject();
                json.WriteNumber("first", r.First);
                if (r.Last is { } last)
                {
                    json.WriteNumber("last", last);
                }

                if (r.Boot is { } boot)
                {
                    json.WriteString("boot", boot);
                }

                if (r.OffsetMs is { } offset)
                {
                    json.WriteNumber("offset_ms", offset);
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    internal static List<SequenceRange> Parse(byte[] bytes)
    {
        using var doc = JsonDocument.Parse(bytes);
        var root = doc.RootElement;
        if (!root.TryGetProperty("v", out var v) || v.GetInt32() != 1 || !root.TryGetProperty("ranges", out var ranges))
        {
            throw new FormatException("not a version 1 file with 'ranges'");
        }

        var list = new List<SequenceRange>();
        foreach (var r in ranges.EnumerateArray())
        {
            var first = r.GetProperty("first").GetInt64();
            long? last = r.TryGetProperty("last", out var l) ? l.GetInt64() : null;
            var boot = r.TryGetProperty("boot", out var b) ? b.GetString() : null;
            long? offset = r.TryGetProperty("offset_ms", out var o) ? o.GetInt64() : null;
            if (first <= 0 || last < first)
            {
                throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"range {first}-{last} is not a range of sequences"));
            }

            list.Add(new SequenceRange(first, last, boot, offset));
        }

        return list;
    }

    [LoggerMessage(EventId = 2033, Level = LogLevel.Error, Message = "{Path} cannot be read ({Reason}): outbox entries earlier runs stamped before the clock was synchronised are not named when it is (it is replaced by this run's)")]
    private static partial void LogUnreadable(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 2034, Level = LogLevel.Error, Message = "{Path} cannot be written ({Reason}): the outbox entries stamped before the clock is synchronised are kept in memory; those of this run are not named if the agent stops before the sync")]
    private static partial void LogNotSaved(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 2035, Level = LogLevel.Information, Message = "{Path} written again")]
    private static partial void LogWritable(ILogger logger, string path);
}
