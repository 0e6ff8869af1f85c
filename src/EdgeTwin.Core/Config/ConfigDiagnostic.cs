using System.Globalization;
using System.Text;

namespace EdgeTwin.Core.Config;

/// <summary>One problem in a config or profile file, printed as <c>FILE:LINE:COL: key.path: message</c>.</summary>
/// <param name="File">The file as named by the user (or the profile's path).</param>
/// <param name="Line">1-based line (0 when the whole file is concerned).</param>
/// <param name="Column">1-based column.</param>
/// <param name="Path">Dotted key path, e.g. <c>devices[2].address</c>; empty for the document itself.</param>
/// <param name="Message">What is wrong, in words a person can act on.</param>
public sealed record ConfigDiagnostic(string File, int Line, int Column, string Path, string Message)
{
    /// <summary>
    /// A warning: the config works but is risky (e.g. a password over plaintext); printed with <c>warning:</c> before
    /// the message, and neither <c>check</c> nor the start fails on it.
    /// </summary>
    public bool IsWarning { get; init; }

    /// <inheritdoc />
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"{File}:{Line}:{Column}: {(Path.Length == 0 ? "(document)" : Path)}: {(IsWarning ? "warning: " : "")}{Message}");
}

/// <summary>Collects every problem found while loading, so all of them are reported at once.</summary>
public sealed class ConfigDiagnostics
{
    private readonly List<ConfigDiagnostic> _items = [];
    private readonly List<ConfigDiagnostic> _warnings = [];

    /// <summary>Problems so far, in the order found.</summary>
    public IReadOnlyList<ConfigDiagnostic> Items => _items;

    /// <summary>True when no problem was found.</summary>
    public bool IsEmpty => _items.Count == 0;

    /// <summary>Adds a problem at a node.</summary>
    public void Add(ConfigNode node, string message)
    {
        ArgumentNullException.ThrowIfNull(node);
        Add(node.Mark, node.Path, message);
    }

    /// <summary>Adds a problem at a position.</summary>
    public void Add(SourceMark mark, string path, string message) =>
        _items.Add(new ConfigDiagnostic(mark.File, mark.Line, mark.Column, path, message));

    /// <summary>Adds a warning at a node: reported by <c>check</c> and at start, but the config stays valid.</summary>
    public void Warn(ConfigNode node, string message)
    {
        ArgumentNullException.ThrowIfNull(node);
        _warnings.Add(new ConfigDiagnostic(node.Mark.File, node.Mark.Line, node.Mark.Column, node.Path, message) { IsWarning = true });
    }

    /// <summary>Warnings so far, in the order found.</summary>
    public IReadOnlyList<ConfigDiagnostic> Warnings => _warnings;

    /// <summary>Warnings sorted by file, line and column (stable for equal positions).</summary>
    public IReadOnlyList<ConfigDiagnostic> SortedWarnings() => SortedOf(_warnings);

    /// <summary>Adds problems found elsewhere.</summary>
    public void AddRange(IEnumerable<ConfigDiagnostic> items) => _items.AddRange(items);

    /// <summary>Problems sorted by file, line and column (stable for equal positions).</summary>
    public IReadOnlyList<ConfigDiagnostic> Sorted() => SortedOf(_items);

    private static IReadOnlyList<ConfigDiagnostic> SortedOf(List<ConfigDiagnostic> items) =>
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
