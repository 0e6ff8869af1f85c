using System.Globalization;
using System.Text;
using System.Text.Json;

namespace EdgeTwin.Twin.Nab;

/// <summary>One NAB data file read into memory: timestamps (Unix ms), values, and its windows as row indices.</summary>
public sealed record NabDataFile(string Category, string Name, string RelativePath, long[] Timestamps, string[] RawTimestamps, double[] Values, NabWindow[] Windows);

/// <summary>
/// Reads NAB's layout: <c>DATA/&lt;category&gt;/&lt;name&gt;.csv</c> with <c>timestamp,value</c> rows, and a windows file in the format of
/// <c>combined_windows.json</c> (<c>{"category/name.csv": [[start, end], …]}</c>). Errors name the file and line.
/// </summary>
public static class NabCorpus
{
    /// <summary>First line of every NAB data file.</summary>
    public const string Header = "timestamp,value";

    private static readonly string[] TimestampFormats = ["yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd HH:mm:ss.ffffff", "yyyy-MM-dd HH:mm:ss.fff", "yyyy-MM-ddTHH:mm:ss", "yyyy-MM-ddTHH:mm:ss.ffffff"];

    public static long ParseTimestamp(string text, string where)
    {
        if (!DateTime.TryParseExact(text.Trim(), TimestampFormats, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var t))
        {
            throw new FormatException($"{where}: '{text}' is not a timestamp in the form YYYY-MM-DD HH:MM:SS");
        }

        return new DateTimeOffset(t, TimeSpan.Zero).ToUnixTimeMilliseconds();
    }

    /// <summary>Reads the windows file: relative file path → list of (start, end) Unix ms. Errors name the file (and line for bad JSON).</summary>
    public static Dictionary<string, List<(long Start, long End)>> ReadWindows(string path)
    {
        const string Expected = "expected an object mapping 'category/file.csv' to a list of [start, end] windows";
        var text = File.ReadAllText(path);
        if (text.Trim().Length == 0)
        {
            throw new FormatException($"{path}: empty; {Expected}");
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(text);
        }
        catch (JsonException e)
        {
            // System.Text.Json counts lines from 0 and appends its own position; say it once, 1-based.
            throw new FormatException($"{path}:{(e.LineNumber ?? 0) + 1}: not valid JSON: {JsonReason(e.Message)}", e);
        }

        using (doc)
        {
            var result = new Dictionary<string, List<(long, long)>>(StringComparer.Ordinal);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new FormatException($"{path}: {Expected}");
            }

            foreach (var file in doc.RootElement.EnumerateObject())
            {
                if (file.Value.ValueKind != JsonValueKind.Array)
                {
                    throw new FormatException($"{path}: key '{file.Name}': expected a list of [start, end] windows, found {file.Value.ValueKind}");
                }

                var list = new List<(long, long)>();
                foreach (var w in file.Value.EnumerateArray())
                {
                    if (w.ValueKind != JsonValueKind.Array || w.GetArrayLength() != 2 || w[0].ValueKind != JsonValueKind.String || w[1].ValueKind != JsonValueKind.String)
                    {
                        throw new FormatException($"{path}: key '{file.Name}': each window must be [\"start\", \"end\"] (two timestamp strings)");
                    }

                    list.Add((ParseTimestamp(w[0].GetString()!, $"{path}: key '{file.Name}'"), ParseTimestamp(w[1].GetString()!, $"{path}: key '{file.Name}'")));
                }

                result[file.Name] = list;
            }

            return result;
        }
    }

    /// <summary>System.Text.Json's message without its trailing " Path: … | LineNumber: … | BytePositionInLine: …".</summary>
    private static string JsonReason(string message)
    {
        var cut = message.IndexOf(" Path: ", StringComparison.Ordinal);
        if (cut < 0)
        {
            cut = message.IndexOf(" LineNumber: ", StringComparison.Ordinal);
        }

        return cut < 0 ? message : message[..cut];
    }

    /// <summary>
    /// Reads every <c>*.csv</c> one directory below <paramref name="dataDir"/>; files without an entry in the windows have none
    /// (their relative paths are added to <paramref name="unlabelled"/> when given, so the caller can say so).
    /// </summary>
    public static List<NabDataFile> Load(string dataDir, string windowsPath, List<string>? unlabelled = null)
    {
        var windows = ReadWindows(windowsPath);
        var files = new List<NabDataFile>();
        foreach (var categoryDir in Directory.GetDirectories(dataDir).Order(StringComparer.Ordinal))
        {
            foreach (var csv in Directory.GetFiles(categoryDir, "*.csv").Order(StringComparer.Ordinal))
            {
                var category = Path.GetFileName(categoryDir);
                var rel = category + "/" + Path.GetFileName(csv);
                if (!windows.TryGetValue(rel, out var fileWindows))
                {
                    unlabelled?.Add(rel);
                }

                files.Add(ReadFile(csv, category, rel, fileWindows ?? []));
            }
        }

        return files;
    }

    public static NabDataFile ReadFile(string csvPath, string category, string relativePath, IReadOnlyList<(long Start, long End)> windows)
    {
        var ts = new List<long>();
        var raw = new List<string>();
        var values = new List<double>();
        var lineNo = 0;
        foreach (var line in File.ReadLines(csvPath))
        {
            lineNo++;
            if (lineNo == 1)
            {
                // NAB's files all start with this header; anything else is another format (e.g. ';'-separated).
                var header = line.TrimStart('\uFEFF').Trim();
                if (!header.Equals(Header, StringComparison.OrdinalIgnoreCase))
                {
                    throw new FormatException($"{csvPath}:1: header '{header}' is not '{Header}'");
                }

                continue;
            }

            if (line.Trim().Length == 0)
            {
                continue;
            }

            var comma = line.IndexOf(',', StringComparison.Ordinal);
            if (comma < 0)
            {
                throw new FormatException($"{csvPath}:{lineNo}: expected 'timestamp,value', found '{line.Trim()}'");
            }

            var t = line[..comma];
            var valueText = line[(comma + 1)..].Trim();
            if (!double.TryParse(valueText, NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
            {
                throw new FormatException($"{csvPath}:{lineNo}: value '{valueText}' is not a number");
            }

            ts.Add(ParseTimestamp(t, $"{csvPath}:{lineNo}"));
            raw.Add(t);
            values.Add(v);
        }

        if (values.Count == 0)
        {
            // NAB's corpus has no empty file: one here is a broken copy, and a score over fewer files is not NAB's.
            throw new FormatException(lineNo == 0
                ? $"{csvPath}: empty file (expected the header '{Header}' and data rows)"
                : $"{csvPath}: no data rows after the header");
        }

        var tsArr = ts.ToArray();
        var ws = new List<NabWindow>();
        foreach (var (start, end) in windows)
        {
            var left = Array.FindIndex(tsArr, x => x >= start);
            var right = Array.FindLastIndex(tsArr, x => x <= end);
            if (left < 0 || right < left)
            {
                throw new FormatException($"{csvPath}: window [{start}, {end}] holds no row of the file");
            }

            ws.Add(new NabWindow(left, right));
        }

        ws.Sort((a, b) => a.Left.CompareTo(b.Left));
        return new NabDataFile(category, Path.GetFileNameWithoutExtension(csvPath), relativePath, tsArr, raw.ToArray(), values.ToArray(), ws.ToArray());
    }

    /// <summary>Writes NAB's results file: <c>timestamp,value,anomaly_score,label</c>.</summary>
    public static void WriteResults(string path, NabDataFile file, IReadOnlyList<double> scores)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var sb = new StringBuilder(file.Values.Length * 48);
        sb.Append("timestamp,value,anomaly_score,label\n");
        var w = 0;
        for (var i = 0; i < file.Values.Length; i++)
        {
            while (w < file.Windows.Length && file.Windows[w].Right < i)
            {
                w++;
            }

            var label = w < file.Windows.Length && file.Windows[w].Left <= i ? 1 : 0;
            sb.Append(file.RawTimestamps[i]).Append(',')
              .Append(file.Values[i].ToString("R", CultureInfo.InvariantCulture)).Append(',')
              .Append(scores[i].ToString("R", CultureInfo.InvariantCulture)).Append(',')
              .Append(label).Append('\n');
        }

        File.WriteAllText(path, sb.ToString());
    }
}
