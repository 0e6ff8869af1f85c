using System.Globalization;
using System.Text.RegularExpressions;

namespace EdgeTwin.Core.Config;

/// <summary>
/// Typed, validating access to one YAML mapping. Every getter records the key as known and reports a
/// problem (wrong type, out of range, missing) to the shared <see cref="ConfigDiagnostics"/> instead of
/// throwing, so loading goes on and all problems come out at once. Call <see cref="ReportUnknownKeys"/>
/// after reading to flag typos. Public so the owners of <c>uplinks</c>, <c>alerts</c> and <c>models</c>
/// validate their sections with the same messages.
/// </summary>
public sealed partial class ConfigReader
{
    private readonly HashSet<string> _known = new(StringComparer.Ordinal);

    /// <summary>Wraps <paramref name="mapping"/>.</summary>
    public ConfigReader(ConfigMapping mapping, ConfigDiagnostics diagnostics)
    {
        Mapping = mapping ?? throw new ArgumentNullException(nameof(mapping));
        Diagnostics = diagnostics ?? throw new ArgumentNullException(nameof(diagnostics));
    }

    /// <summary>The mapping read.</summary>
    public ConfigMapping Mapping { get; }

    /// <summary>Where problems go.</summary>
    public ConfigDiagnostics Diagnostics { get; }

    /// <summary>
    /// Wraps <paramref name="node"/> if it is a mapping; otherwise reports <c>expected a mapping</c> and returns null.
    /// </summary>
    public static ConfigReader? For(ConfigNode? node, ConfigDiagnostics diagnostics)
    {
        ArgumentNullException.ThrowIfNull(diagnostics);
        if (node is null || node is ConfigScalar { IsNull: true })
        {
            return null;
        }

        if (node is ConfigMapping m)
        {
            return new ConfigReader(m, diagnostics);
        }

        diagnostics.Add(node, "expected a mapping, got " + Describe(node));
        return null;
    }

    /// <summary>
    /// Reads one whole section with <paramref name="read"/> and throws <see cref="ConfigException"/> with every problem it
    /// reported (sorted by file and line); the entry point of the sections' <c>From</c> methods.
    /// </summary>
    public static T ReadOrThrow<T>(ConfigMapping section, Func<ConfigReader, T> read)
    {
        ArgumentNullException.ThrowIfNull(read);
        var diagnostics = new ConfigDiagnostics();
        var result = read(new ConfigReader(section, diagnostics));
        if (!diagnostics.IsEmpty)
        {
            throw new ConfigException(diagnostics.Sorted());
        }

        return result;
    }

    /// <summary>
    /// The directory of the file this mapping was read from, against which its relative paths resolve: what a section
    /// validator passes, so <c>check</c> reads the same secret and key files as the agent does.
    /// </summary>
    public string FileDirectory =>
        Mapping.Mark.File.Length > 0 && Path.GetDirectoryName(Path.GetFullPath(Mapping.Mark.File)) is { } dir ? dir : Directory.GetCurrentDirectory();

    /// <summary><paramref name="path"/> made absolute against <paramref name="baseDirectory"/> (null stays null).</summary>
    public static string? ResolvePath(string? path, string baseDirectory) =>
        path is null ? null : Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(baseDirectory, path));

    /// <summary>
    /// A secret given inline (<c>KEY</c>) or, better, in a file (<c>KEY_file</c>, relative to
    /// <paramref name="configDirectory"/>, read now and trimmed); the file wins when both are given, unless
    /// <paramref name="bothIsError"/> (keys added since, where no deployed config has both). An unreadable file
    /// is reported; an empty one too when <paramref name="emptyFileIsError"/>; a file other users can read or change is
    /// warned about (<see cref="ConfigSecrets.CheckFile"/>), and an inline value is recorded as a secret of the config.
    /// </summary>
    public string? Secret(string key, string configDirectory, bool emptyFileIsError, bool bothIsError = false)
    {
        var inline = String(key);
        var fileNode = Node(key + "_file");
        var file = String(key + "_file");
        Diagnostics.Secrets.AddInline(Node(key));
        if (file is null || fileNode is null)
        {
            return inline;
        }

        if (bothIsError && inline is not null)
        {
            Diagnostics.Add(fileNode, $"give either '{key}' or '{key}_file', not both");
            return null;
        }

        var path = ResolvePath(file, configDirectory)!;
        try
        {
            var text = File.ReadAllText(path).Trim();
            Diagnostics.Secrets.CheckFile(path, fileNode);
            if (emptyFileIsError && text.Length == 0)
            {
                Diagnostics.Add(fileNode, $"secret file '{path}' is empty");
            }

            return text;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Diagnostics.Add(fileNode, $"cannot read secret file '{path}': {ex.Message}");
            return null;
        }
    }

    /// <summary>
    /// The path of a private-key file (<paramref name="key"/>, relative to <paramref name="configDirectory"/>), with a
    /// warning when other users can read or change it (<see cref="ConfigSecrets.CheckFile"/>); whether it exists and
    /// holds a key is left to its reader.
    /// </summary>
    public string? PrivateKeyFile(string key, string configDirectory)
    {
        var path = ResolvePath(String(key), configDirectory);
        if (path is not null && Node(key) is { } node)
        {
            Diagnostics.Secrets.CheckFile(path, node);
        }

        return path;
    }

    /// <summary>How a node is named in messages: <c>'text'</c>, <c>a list</c>, <c>a mapping</c>.</summary>
    public static string Describe(ConfigNode node) => node switch
    {
        ConfigScalar { IsNull: true } => "nothing",
        ConfigScalar s => "'" + s.Value + "'",
        ConfigSequence => "a list",
        _ => "a mapping",
    };

    /// <summary>True when the mapping has a non-null value for <paramref name="key"/> (marks the key known).</summary>
    public bool Has(string key) => Node(key) is not null;

    /// <summary>The raw node under <paramref name="key"/>, null when absent or YAML null. Marks the key known.</summary>
    public ConfigNode? Node(string key)
    {
        _known.Add(key);
        var n = Mapping[key];
        return n is ConfigScalar { IsNull: true } ? null : n;
    }

    /// <summary>Reports <paramref name="key"/> as missing.</summary>
    public void ReportMissing(string key) =>
        Diagnostics.Add(Mapping.Mark, ChildPath(key), $"missing required key '{key}'");

    /// <summary>The dotted path of a child key.</summary>
    public string ChildPath(string key) => Mapping.Path.Length == 0 ? key : Mapping.Path + "." + key;

    /// <summary>A string (any scalar's text).</summary>
    public string? String(string key, bool required = false)
    {
        var s = Scalar(key, required, "a string");
        return s?.Value;
    }

    /// <summary>
    /// An identifier: letters, digits, <c>_ . -</c>, starting with a letter or digit (ids become MQTT topic
    /// levels and series keys, so no <c>/ + #</c> or spaces).
    /// </summary>
    public string? Id(string key, bool required = false)
    {
        var s = Scalar(key, required, "an id");
        if (s is null)
        {
            return null;
        }

        if (!IdPattern().IsMatch(s.Value))
        {
            Diagnostics.Add(s, $"'{s.Value}' is not a valid id (letters, digits, '_', '.', '-'; starting with a letter or digit)");
            return null;
        }

        return s.Value;
    }

    /// <summary>True when <paramref name="value"/> is a valid id.</summary>
    public static bool IsValidId(string value) => IdPattern().IsMatch(value);

    /// <summary>A number in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public double? Double(string key, bool required = false, double min = double.NegativeInfinity, double max = double.PositiveInfinity, bool positive = false)
    {
        var s = Scalar(key, required, "a number");
        if (s is null)
        {
            return null;
        }

        var d = s.AsDouble();
        if (d is null || !double.IsFinite(d.Value))
        {
            Diagnostics.Add(s, $"expected a number, got {Describe(s)}");
            return null;
        }

        return CheckRange(s, d.Value, min, max, positive) ? d : null;
    }

    /// <summary>An integer in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public long? Int64(string key, bool required = false, long min = long.MinValue, long max = long.MaxValue)
    {
        var s = Scalar(key, required, "an integer");
        if (s is null)
        {
            return null;
        }

        long? v = s.AsInt64();
        if (v is null && !s.IsQuoted && s.Value.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            && long.TryParse(s.Value.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var hex))
        {
            v = hex;
        }

        if (v is null)
        {
            Diagnostics.Add(s, $"expected an integer, got {Describe(s)}");
            return null;
        }

        return CheckRange(s, v.Value, min, max, false) ? v : null;
    }

    /// <summary>An integer in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public int? Int(string key, bool required = false, int min = int.MinValue, int max = int.MaxValue) =>
        (int?)Int64(key, required, min, max);

    /// <summary><c>true</c> or <c>false</c>.</summary>
    public bool? Bool(string key, bool required = false)
    {
        var s = Scalar(key, required, "true or false");
        if (s is null)
        {
            return null;
        }

        var b = s.AsBoolean();
        if (b is null)
        {
            Diagnostics.Add(s, $"expected true or false, got {Describe(s)}");
        }

        return b;
    }

    /// <summary>A duration (<c>500ms</c>, <c>10s</c>, <c>5m</c>, <c>1h</c>, <c>7d</c>) of at least <paramref name="min"/>.</summary>
    public TimeSpan? Duration(string key, bool required = false, TimeSpan? min = null)
    {
        var s = Scalar(key, required, "a duration");
        if (s is null)
        {
            return null;
        }

        var t = s.AsDuration();
        if (t is null)
        {
            Diagnostics.Add(s, $"expected a duration like 500ms, 10s, 5m, 1h or 7d, got {Describe(s)}");
            return null;
        }

        if (min is not null && t.Value < min.Value)
        {
            Diagnostics.Add(s, $"must be at least {Durations.Format(min.Value)}, got '{s.Value}'");
            return null;
        }

        return t;
    }

    /// <summary>
    /// One of the names in <paramref name="names"/>, matched exactly; a name in another case is still accepted (site files
    /// written that way keep loading) with a warning, because the JSON Schemas, and the editors and CI that use them,
    /// accept only the exact spelling.
    /// </summary>
    /// <param name="aliases">Names other documents use for a value, by their lower-case spelling, with what to write
    /// instead ("float" → "float32: IEEE 754 in 2 registers"): still an error, but one that says which name is meant where
    /// edit distance finds none.</param>
    public T? Enum<T>(string key, IReadOnlyDictionary<string, T> names, bool required = false, IReadOnlyDictionary<string, string>? aliases = null)
        where T : struct
    {
        ArgumentNullException.ThrowIfNull(names);
        var s = Scalar(key, required, "a name");
        if (s is null)
        {
            return null;
        }

        if (names.TryGetValue(s.Value, out var v))
        {
            return v;
        }

        foreach (var (name, value) in names)
        {
            if (string.Equals(name, s.Value, StringComparison.OrdinalIgnoreCase))
            {
                Diagnostics.AddWarning(s, $"'{s.Value}' is accepted as '{name}'; write '{name}' (the schema and editors accept only that spelling)");
                return value;
            }
        }

        // As for unknown keys: 'in16' in a list of ten types is found faster with the one it is closest to. Not for one or
        // two letters (parity 'X' is not a typo of 'E').
        // net-snmp's tools take protocols with or without dashes (AES256C, SHA256): the name that differs only in its
        // dashes is the one meant, where edit distance ties it with a shorter neighbour (AES256C is 2 from AES-256 too).
        if (aliases is not null && aliases.TryGetValue(s.Value.ToLowerInvariant(), out var meant))
        {
            Diagnostics.Add(s, $"expected one of {string.Join(", ", names.Keys)}, got {Describe(s)} (the name other documents use; write {meant})");
            return null;
        }

        var close = s.Value.Length < 3 ? null
            : names.Keys.FirstOrDefault(k => string.Equals(WithoutDashes(k), WithoutDashes(s.Value), StringComparison.OrdinalIgnoreCase))
              ?? Closest(s.Value, names.Keys);
        var hint = close is null ? "" : $" (did you mean '{close}'?)";
        Diagnostics.Add(s, $"expected one of {string.Join(", ", names.Keys)}, got {Describe(s)}{hint}");
        return null;
    }

    private static string WithoutDashes(string value) => value.Replace("-", "", StringComparison.Ordinal).Replace("_", "", StringComparison.Ordinal);

    /// <summary>
    /// The texts of a list of scalars, one per item in order; an item that is no scalar is reported ("expected
    /// <paramref name="expected"/>, got …") and stands as "" so that later indexes still name the right item.
    /// </summary>
    public List<string> ScalarTexts(ConfigSequence sequence, string expected)
    {
        ArgumentNullException.ThrowIfNull(sequence);
        var texts = new List<string>(sequence.Items.Count);
        foreach (var item in sequence.Items)
        {
            if (item is ConfigScalar { IsNull: false } entry)
            {
                texts.Add(entry.Value);
            }
            else
            {
                Diagnostics.Add(item, $"expected {expected}, got {Describe(item)}");
                texts.Add("");
            }
        }

        return texts;
    }

    /// <summary>A list; null (with a problem) when the value is not a list.</summary>
    public ConfigSequence? Sequence(string key, bool required = false)
    {
        var n = Node(key);
        if (n is null)
        {
            if (required)
            {
                ReportMissing(key);
            }

            return null;
        }

        if (n is ConfigSequence q)
        {
            return q;
        }

        Diagnostics.Add(n, "expected a list, got " + Describe(n));
        return null;
    }

    /// <summary>A nested mapping as a reader; null (with a problem) when the value is not a mapping.</summary>
    public ConfigReader? Section(string key, bool required = false)
    {
        var n = Node(key);
        if (n is null)
        {
            if (required)
            {
                ReportMissing(key);
            }

            return null;
        }

        return For(n, Diagnostics);
    }

    /// <summary>A list of ids; each item is checked. Returns the valid ones with their nodes.</summary>
    public IReadOnlyList<(string Value, ConfigNode Node)>? IdList(string key, bool required = false)
    {
        var q = Sequence(key, required);
        if (q is null)
        {
            return null;
        }

        var list = new List<(string, ConfigNode)>(q.Items.Count);
        foreach (var item in q.Items)
        {
            if (item is not ConfigScalar s || s.IsNull)
            {
                Diagnostics.Add(item, "expected an id, got " + Describe(item));
            }
            else if (!IdPattern().IsMatch(s.Value))
            {
                Diagnostics.Add(s, $"'{s.Value}' is not a valid id (letters, digits, '_', '.', '-'; starting with a letter or digit)");
            }
            else
            {
                list.Add((s.Value, s));
            }
        }

        return list;
    }

    /// <summary>Reports every key not read through this reader (typos, misplaced keys).</summary>
    public void ReportUnknownKeys()
    {
        foreach (var (key, value) in Mapping.Entries)
        {
            if (_known.Contains(key))
            {
                continue;
            }

            var suggestion = Closest(key, _known);
            var known = string.Join(", ", _known.Order(StringComparer.Ordinal));
            var message = suggestion is not null
                ? $"unknown key '{key}' (did you mean '{suggestion}'?)"
                : $"unknown key '{key}' (known keys: {known})";
            Diagnostics.Add(Mapping.KeyMark(key), value.Path, message);
        }
    }

    private ConfigScalar? Scalar(string key, bool required, string expected)
    {
        var n = Node(key);
        if (n is null)
        {
            if (required)
            {
                ReportMissing(key);
            }

            return null;
        }

        if (n is ConfigScalar s)
        {
            return s;
        }

        Diagnostics.Add(n, $"expected {expected}, got {Describe(n)}");
        return null;
    }

    private bool CheckRange(ConfigScalar s, double v, double min, double max, bool positive)
    {
        if (positive && v <= 0)
        {
            Diagnostics.Add(s, $"must be greater than 0, got {s.Value}");
            return false;
        }

        if (v < min)
        {
            Diagnostics.Add(s, string.Create(CultureInfo.InvariantCulture, $"must be at least {min}, got {s.Value}"));
            return false;
        }

        if (v > max)
        {
            Diagnostics.Add(s, string.Create(CultureInfo.InvariantCulture, $"must be at most {max}, got {s.Value}"));
            return false;
        }

        return true;
    }

    /// <summary>The candidate closest to <paramref name="value"/> within a typo's edit distance, or null.</summary>
    internal static string? Closest(string value, IEnumerable<string> candidates) =>
        candidates
            .Select(k => (k, d: EditDistance(k, value)))
            .Where(x => x.d <= Math.Max(1, Math.Min(2, value.Length / 3)))
            .OrderBy(x => x.d)
            .ThenBy(x => x.k, StringComparer.Ordinal)
            .Select(x => x.k)
            .FirstOrDefault();

    /// <summary>
    /// Optimal string alignment distance: Levenshtein plus adjacent transpositions (hots → host is 1). The config's key
    /// suggestions and the command line's "did you mean" both use it.
    /// </summary>
    public static int EditDistance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }

        for (var j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
                }
            }
        }

        return d[a.Length, b.Length];
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    private static partial Regex IdPattern();
}
