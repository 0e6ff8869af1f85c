using System.Globalization;
using System.Text;
using EdgeTwin.Agent.Twin;

namespace EdgeTwin.Agent.Sources.Snmp;

/// <summary>
/// The table rows an SNMP device had a series for, kept across restarts in <c>snmp-rows/&lt;device&gt;.txt</c> in the
/// agent's state directory (next to the outbox): a row that vanished while the agent was down, or shortly before a
/// restart, is registered again at start, so its <c>missing</c> rules watch it; before, it was never registered and
/// the rack inlet it measured went unwatched without a word. Text, one row a line, newest first:
/// <c>metric|index</c>, how long the row has been absent while the agent ran (milliseconds, 0 when the last complete
/// poll listed it), then its tags as <c>name=value</c>, tab-separated (tab, newline, CR and backslash escaped).
/// Version 1 files (no absent field) are still read, as rows absent 0.
/// </summary>
internal static class SnmpRowsFile
{
    public const string DirectoryName = "snmp-rows";

    private const string Magic = "edgetwin-snmp-rows";

    /// <summary>Written: 2 adds the absent time; 1 (no absent field) is still read.</summary>
    private const int Version = 2;

    /// <summary>Rows read at most: the file holds the rows of one device, bounded by its max_series.</summary>
    public const int MaxRows = 65_536;

    /// <summary>A larger file is not one this agent wrote (65,536 rows of a few hundred bytes).</summary>
    private const long MaxBytes = 32L << 20;

    /// <summary>Device ids are letters, digits, '_', '.', '-' starting with a letter or digit: a file name as they are.</summary>
    public static string PathOf(string stateDirectory, string deviceId) => Path.Combine(stateDirectory, DirectoryName, deviceId + ".txt");

    /// <summary>
    /// A remembered row: its key in the source (<c>metric|index</c>), its series' tags, and how long it had been absent
    /// from complete polls while the agent ran (zero when the last one listed it; whole milliseconds in the file).
    /// </summary>
    public sealed record Row(string Key, IReadOnlyList<KeyValuePair<string, string>> Tags, TimeSpan Absent = default)
    {
        public string Metric => Key[..Key.IndexOf('|', StringComparison.Ordinal)];
    }

    /// <summary>
    /// The rows of <paramref name="deviceId"/> (none when there is no file yet), or none and what is wrong with the file:
    /// a file that cannot be read whole and as written is not used in part.
    /// </summary>
    public static (IReadOnlyList<Row> Rows, string? Problem) Read(string path, string deviceId)
    {
        string text;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                return ([], null);
            }
            if (info.Length > MaxBytes)
            {
                return ([], $"{info.Length} bytes, more than the {MaxBytes >> 20} MiB such a file can be");
            }
            text = File.ReadAllText(path, new UTF8Encoding(false, throwOnInvalidBytes: true));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or DecoderFallbackException)
        {
            return ([], ex.Message);
        }

        var lines = text.Split('\n');
        var header = lines[0].Split(' ', 3);
        if (header.Length < 3 || header[0] != Magic || header[1] is not ("1" or "2"))
        {
            return ([], header.Length == 3 && header[0] == Magic
                ? $"format version {header[1]}, not one this agent reads (1 or {Version})"
                : $"not an SNMP rows file (its first line is not '{Magic} {Version} {deviceId}')");
        }
        if (header[2] != deviceId)
        {
            return ([], $"it is the file of device '{header[2]}', not of '{deviceId}'");
        }
        var absentField = header[1] == "1" ? 0 : 1; // fields before the tags after the key
        var rows = new List<Row>();
        var keys = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 1; i < lines.Length; i++)
        {
            if (i == lines.Length - 1 && lines[i].Length == 0)
            {
                break; // the newline that ends the last line
            }
            if (rows.Count == MaxRows)
            {
                return ([], $"more than {MaxRows} rows");
            }
            var fields = lines[i].Split('\t');
            var bar = fields[0].IndexOf('|', StringComparison.Ordinal);
            if (bar <= 0 || bar == fields[0].Length - 1 || fields.Length < 2 + absentField || !keys.Add(fields[0]))
            {
                return ([], absentField == 0
                    ? $"line {i + 1} is not 'metric|index' and its tags, or repeats a row"
                    : $"line {i + 1} is not 'metric|index', its absent milliseconds and its tags, or repeats a row");
            }
            var absentMs = 0L;
            if (absentField == 1 && !long.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out absentMs))
            {
                return ([], $"line {i + 1}: the absent time '{fields[1]}' is not a count of milliseconds");
            }
            var tags = new List<KeyValuePair<string, string>>(fields.Length - 1 - absentField);
            for (var f = 1 + absentField; f < fields.Length; f++)
            {
                var eq = fields[f].IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0 || Unescape(fields[f][(eq + 1)..]) is not { } value)
                {
                    return ([], $"line {i + 1}: tag {f - absentField} is not 'name=value'");
                }
                tags.Add(new(fields[f][..eq], value));
            }
            // Past TimeSpan's range only by hand: such a row was absent for longer than any row_retention anyway.
            rows.Add(new Row(fields[0], tags, absentMs >= (long)TimeSpan.MaxValue.TotalMilliseconds ? TimeSpan.MaxValue : TimeSpan.FromMilliseconds(absentMs)));
        }
        return (rows, null);
    }

    /// <summary>Writes the rows (newest first) whole: temp file flushed to disk, renamed over the old one.</summary>
    public static Task WriteAsync(string path, string deviceId, IEnumerable<Row> rows, CancellationToken cancellationToken)
    {
        var text = new StringBuilder().Append(Magic).Append(' ').Append(Version).Append(' ').Append(deviceId).Append('\n');
        var count = 0;
        foreach (var row in rows)
        {
            if (count++ == MaxRows)
            {
                break;
            }
            text.Append(row.Key).Append('\t').Append((long)row.Absent.TotalMilliseconds);
            foreach (var (name, value) in row.Tags)
            {
                text.Append('\t').Append(name).Append('=');
                Escape(text, value);
            }
            text.Append('\n');
        }
        return AtomicStateFile.WriteAsync(path, Encoding.UTF8.GetBytes(text.ToString()), cancellationToken);
    }

    private static void Escape(StringBuilder to, string value)
    {
        foreach (var c in value)
        {
            _ = c switch
            {
                '\\' => to.Append(@"\\"),
                '\t' => to.Append(@"\t"),
                '\n' => to.Append(@"\n"),
                '\r' => to.Append(@"\r"),
                _ => to.Append(c),
            };
        }
    }

    private static string? Unescape(string value)
    {
        if (!value.Contains('\\', StringComparison.Ordinal))
        {
            return value;
        }
        var to = new StringBuilder(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] != '\\')
            {
                to.Append(value[i]);
                continue;
            }
            if (++i == value.Length)
            {
                return null;
            }
            switch (value[i])
            {
                case '\\': to.Append('\\'); break;
                case 't': to.Append('\t'); break;
                case 'n': to.Append('\n'); break;
                case 'r': to.Append('\r'); break;
                default: return null;
            }
        }
        return to.ToString();
    }
}
