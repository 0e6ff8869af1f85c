using System.Text;
using EdgeTwin.Agent.Twin;

namespace EdgeTwin.Agent.Sources.Snmp;

/// <summary>
/// The table rows an SNMP device had a series for, kept across restarts in <c>snmp-rows/&lt;device&gt;.txt</c> in the
/// agent's state directory (next to the outbox): a row that vanished while the agent was down, or shortly before a
/// restart, is registered again at start, so its <c>missing</c> rules watch it; before, it was never registered and
/// the rack inlet it measured went unwatched without a word. Text, one row a line, newest first:
/// <c>metric|index</c>, then its tags as <c>name=value</c>, tab-separated (tab, newline, CR and backslash escaped).
/// </summary>
internal static class SnmpRowsFile
{
    public const string DirectoryName = "snmp-rows";

    private const string Magic = "edgetwin-snmp-rows 1";

    /// <summary>Rows read at most: the file holds the rows of one device, bounded by its max_series.</summary>
    public const int MaxRows = 65_536;

    /// <summary>A larger file is not one this agent wrote (65,536 rows of a few hundred bytes).</summary>
    private const long MaxBytes = 32L << 20;

    /// <summary>Device ids are letters, digits, '_', '.', '-' starting with a letter or digit: a file name as they are.</summary>
    public static string PathOf(string stateDirectory, string deviceId) => Path.Combine(stateDirectory, DirectoryName, deviceId + ".txt");

    /// <summary>A remembered row: its key in the source (<c>metric|index</c>) and its series' tags.</summary>
    public sealed record Row(string Key, IReadOnlyList<KeyValuePair<string, string>> Tags)
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
        if (lines[0] != $"{Magic} {deviceId}")
        {
            return ([], lines[0].StartsWith(Magic + " ", StringComparison.Ordinal)
                ? $"it is the file of device '{lines[0][(Magic.Length + 1)..]}', not of '{deviceId}'"
                : $"not an SNMP rows file (its first line is not '{Magic} {deviceId}')");
        }
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
            if (bar <= 0 || bar == fields[0].Length - 1 || fields.Length < 2 || !keys.Add(fields[0]))
            {
                return ([], $"line {i + 1} is not 'metric|index' and its tags, or repeats a row");
            }
            var tags = new List<KeyValuePair<string, string>>(fields.Length - 1);
            for (var f = 1; f < fields.Length; f++)
            {
                var eq = fields[f].IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0 || Unescape(fields[f][(eq + 1)..]) is not { } value)
                {
                    return ([], $"line {i + 1}: tag {f} is not 'name=value'");
                }
                tags.Add(new(fields[f][..eq], value));
            }
            rows.Add(new Row(fields[0], tags));
        }
        return (rows, null);
    }

    /// <summary>Writes the rows (newest first) whole: temp file flushed to disk, renamed over the old one.</summary>
    public static Task WriteAsync(string path, string deviceId, IEnumerable<Row> rows, CancellationToken cancellationToken)
    {
        var text = new StringBuilder().Append(Magic).Append(' ').Append(deviceId).Append('\n');
        var count = 0;
        foreach (var row in rows)
        {
            if (count++ == MaxRows)
            {
                break;
            }
            text.Append(row.Key);
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
