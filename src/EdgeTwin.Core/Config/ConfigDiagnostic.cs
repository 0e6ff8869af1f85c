using System.Globalization;
using System.Text;

namespace EdgeTwin.Core.Config;

/// <summary>
/// One problem in a config or profile file, printed as <c>FILE:LINE:COL: key.path: message</c>; a warning (the file
/// loads, but something is probably not what was meant) as <c>FILE:LINE:COL: warning: key.path: message</c>.
/// </summary>
/// <param name="File">The file as named by the user (or the profile's path).</param>
/// <param name="Line">1-based line (0 when the whole file is concerned).</param>
/// <param name="Column">1-based column.</param>
/// <param name="Path">Dotted key path, e.g. <c>devices[2].address</c>; empty for the document itself.</param>
/// <param name="Message">What is wrong, in words a person can act on.</param>
public sealed record ConfigDiagnostic(string File, int Line, int Column, string Path, string Message)
{
    /// <summary>True for a warning: reported by <c>check</c> and logged at start, but the file still loads.</summary>
    public bool IsWarning { get; init; }

    /// <inheritdoc />
    /// <remarks>A problem with the whole file (line 0: missing, unreadable) is <c>FILE: message</c>; "FILE:0:0: (document):"
    /// pointed at a position that does not exist.</remarks>
    public override string ToString() => Line == 0
        ? $"{File}: {(IsWarning ? "warning: " : "")}{(Path.Length == 0 ? "" : Path + ": ")}{Message}"
        : string.Create(
            CultureInfo.InvariantCulture,
            $"{File}:{Line}:{Column}: {(IsWarning ? "warning: " : "")}{(Path.Length == 0 ? "(document)" : Path)}: {Message}");
}

/// <summary>
/// Collects every problem found while loading, so all of them are reported at once. Warnings are kept apart: loaders
/// decide "invalid" by <see cref="Items"/> alone, so a warning never makes a file fail.
/// </summary>
public sealed class ConfigDiagnostics
{
    private readonly List<ConfigDiagnostic> _items = [];
    private readonly List<ConfigDiagnostic> _warnings = [];
    private ConfigSecrets? _secrets;

    /// <summary>The secrets met while loading (inline ones, checked files), for the mode warnings and the redacted hash.</summary>
    public ConfigSecrets Secrets => _secrets ??= new ConfigSecrets(this);

    /// <summary>Problems so far, in the order found (warnings not included).</summary>
    public IReadOnlyList<ConfigDiagnostic> Items => _items;

    /// <summary>Warnings so far, in the order found.</summary>
    public IReadOnlyList<ConfigDiagnostic> Warnings => _warnings;

    /// <summary>True when no problem was found (warnings do not count).</summary>
    public bool IsEmpty => _items.Count == 0;

    /// <summary>Adds a warning at a node.</summary>
    public void AddWarning(ConfigNode node, string message)
    {
        ArgumentNullException.ThrowIfNull(node);
        AddWarning(node.Mark, node.Path, message);
    }

    /// <summary>Adds a warning at a position; the same warning at the same place is kept once (a section read twice warns once).</summary>
    public void AddWarning(SourceMark mark, string path, string message)
    {
        var w = new ConfigDiagnostic(mark.File, mark.Line, mark.Column, path, message) { IsWarning = true };
        if (!_warnings.Contains(w))
        {
            _warnings.Add(w);
        }
    }

    /// <summary>Adds the problems and the warnings of <paramref name="other"/>.</summary>
    public void AddAll(ConfigDiagnostics other)
    {
        ArgumentNullException.ThrowIfNull(other);
        _items.AddRange(other._items);
        foreach (var w in other._warnings)
        {
            if (!_warnings.Contains(w))
            {
                _warnings.Add(w);
            }
        }
    }

    /// <summary>Warnings sorted by file, line and column (stable for equal positions).</summary>
    public IReadOnlyList<ConfigDiagnostic> SortedWarnings() => SortByPosition(_warnings);

    /// <summary>Adds a problem at a node.</summary>
    public void Add(ConfigNode node, string message)
    {
        ArgumentNullException.ThrowIfNull(node);
        Add(node.Mark, node.Path, message);
    }

    /// <summary>Adds a problem at a position.</summary>
    public void Add(SourceMark mark, string path, string message) =>
        _items.Add(new ConfigDiagnostic(mark.File, mark.Line, mark.Column, path, message));

    /// <summary>Adds problems found elsewhere (a warning among them goes to <see cref="Warnings"/>).</summary>
    public void AddRange(IEnumerable<ConfigDiagnostic> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        foreach (var d in items)
        {
            if (!d.IsWarning)
            {
                _items.Add(d);
            }
            else if (!_warnings.Contains(d))
            {
                _warnings.Add(d);
            }
        }
    }

    /// <summary>Problems sorted by file, line and column (stable for equal positions).</summary>
    public IReadOnlyList<ConfigDiagnostic> Sorted() => SortByPosition(_items);

    /// <summary><paramref name="items"/> sorted by file, line and column (stable for equal positions).</summary>
    public static IReadOnlyList<ConfigDiagnostic> SortByPosition(IEnumerable<ConfigDiagnostic> items) =>
        [.. items.Select((d, i) => (d, i))
            .OrderBy(x => x.d.File, StringComparer.Ordinal)
            .ThenBy(x => x.d.Line)
            .ThenBy(x => x.d.Column)
            .ThenBy(x => x.i)
            .Select(x => x.d)];
}

/// <summary>The config (or a profile) is invalid; <see cref="Problems"/> lists every problem found.</summary>
public sealed class ConfigException : Exception
{
    /// <summary>Creates the exception from the problems found.</summary>
    public ConfigException(IReadOnlyList<ConfigDiagnostic> problems)
        : base(BuildMessage(problems))
    {
        Problems = problems;
    }

    /// <summary>Creates an exception with a single message.</summary>
    public ConfigException(string message)
        : base(message)
    {
        Problems = [];
    }

    /// <summary>Creates an exception with a single message and cause.</summary>
    public ConfigException(string message, Exception innerException)
        : base(message, innerException)
    {
        Problems = [];
    }

    /// <summary>Creates an empty exception.</summary>
    public ConfigException()
        : this("invalid configuration")
    {
    }

    /// <summary>Every problem, in file order.</summary>
    public IReadOnlyList<ConfigDiagnostic> Problems { get; }

    private static string BuildMessage(IReadOnlyList<ConfigDiagnostic> problems)
    {
        ArgumentNullException.ThrowIfNull(problems);
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"invalid configuration: {problems.Count} problem{(problems.Count == 1 ? "" : "s")}");
        foreach (var p in problems)
        {
            sb.Append('\n').Append(p);
        }

        return sb.ToString();
    }
}
