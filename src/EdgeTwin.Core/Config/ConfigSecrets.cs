using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace EdgeTwin.Core.Config;

/// <summary>
/// What a load learned about secrets: which scalars of the config hold one inline (for the config file's own mode check
/// and the redacted <see cref="SiteConfig.ConfigSha256"/>), and a warning for each secret or private-key file, and for
/// a config with inline secrets, that other users can read or change. Only the mode is checked, not the owner: .NET has
/// no owner API, and a <c>stat</c> binding would hard-code each architecture's struct layout; the mode is what exposes a
/// file to every user, the owner only matters once the mode is right. Warnings, not errors: deployed sites keep starting.
/// </summary>
public sealed class ConfigSecrets
{
    /// <summary>What replaces each inline secret, as written (quotes included), in the text <see cref="RedactedSha256"/> hashes.</summary>
    public const string Marker = "<secret>";

    private const string Fix = "chmod 0640 and chown root:edgetwin";

    private readonly ConfigDiagnostics _diagnostics;
    private readonly List<ConfigScalar> _inline = [];

    // Once per file: one secret file may serve several keys, and sections are read more than once.
    private readonly HashSet<string> _checkedFiles = new(StringComparer.Ordinal);

    internal ConfigSecrets(ConfigDiagnostics diagnostics) => _diagnostics = diagnostics;

    /// <summary>The scalars read as inline secrets so far (each once), in the order read.</summary>
    public IReadOnlyList<ConfigScalar> Inline => _inline;

    /// <summary>Records <paramref name="node"/> as a secret written inline in the config (null and YAML null are ignored).</summary>
    public void AddInline(ConfigNode? node)
    {
        if (node is ConfigScalar { IsNull: false } s && !_inline.Contains(s))
        {
            _inline.Add(s);
        }
    }

    /// <summary>
    /// Warns, at <paramref name="node"/> (the <c>*_file</c> key), when the secret or private-key file at <paramref name="path"/>
    /// is readable by every user, or writable by its group or every user; once per file. A file that cannot be
    /// examined is left to whoever reads it.
    /// </summary>
    public void CheckFile(string path, ConfigNode node)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(node);
        if (!_checkedFiles.Add(Path.GetFullPath(path)) || ModeOf(path) is not { } mode || Exposure(mode) is not { } exposure)
        {
            return;
        }

        _diagnostics.AddWarning(node, $"{path} is {exposure} (mode {Octal(mode)}); {Fix}");
    }

    /// <summary>
    /// Warns when the config at <paramref name="path"/> holds inline secrets and other users can read or change it, naming
    /// the keys (never the values), at the first of them; once per file.
    /// </summary>
    public void CheckConfigFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (_inline.Count == 0 || !_checkedFiles.Add(Path.GetFullPath(path)) || ModeOf(path) is not { } mode || Exposure(mode) is not { } exposure)
        {
            return;
        }

        var keys = _inline.OrderBy(s => s.Mark.Line).ThenBy(s => s.Mark.Column).ToList();
        var list = string.Join(", ", keys.Select(s => $"{s.Path} (line {s.Mark.Line.ToString(CultureInfo.InvariantCulture)})").Distinct(StringComparer.Ordinal));
        // The line already starts with the file's name.
        _diagnostics.AddWarning(keys[0], $"this file is {exposure} (mode {Octal(mode)}) and holds inline secrets: {list}; {Fix}");
    }

    /// <summary>
    /// SHA-256 (lower-case hex) of <paramref name="yaml"/> with the text of each of <paramref name="secrets"/> (as written,
    /// with its quotes) replaced by <see cref="Marker"/>, as UTF-8: the same config gives the same hash whatever its
    /// inline secrets are, so the hash tells which config runs without being a hash over a guessable secret. Without
    /// inline secrets it is the SHA-256 of the text itself.
    /// </summary>
    public static string RedactedSha256(string yaml, IEnumerable<ConfigScalar> secrets)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        ArgumentNullException.ThrowIfNull(secrets);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Redact(yaml, secrets))));
    }

    /// <summary><paramref name="yaml"/> with each secret scalar's text replaced by <see cref="Marker"/>.</summary>
    public static string Redact(string yaml, IEnumerable<ConfigScalar> secrets)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        ArgumentNullException.ThrowIfNull(secrets);
        var starts = secrets.Select(s => (s.Mark.Line, s.Mark.Column)).ToHashSet();
        if (starts.Count == 0)
        {
            return yaml;
        }

        // The tree keeps where a scalar starts, not where it ends: the parser's events give both, as offsets in the text.
        var spans = new List<(int Start, int End)>();
        var parser = new Parser(new StringReader(yaml));
        while (parser.MoveNext())
        {
            if (parser.Current is Scalar scalar && starts.Contains(((int)scalar.Start.Line, (int)scalar.Start.Column)) && scalar.End.Index > scalar.Start.Index)
            {
                spans.Add(((int)scalar.Start.Index, (int)scalar.End.Index));
            }
        }

        var sb = new StringBuilder(yaml.Length);
        var at = 0;
        foreach (var (start, end) in spans.Distinct().OrderBy(s => s.Start))
        {
            if (start < at)
            {
                continue;
            }

            sb.Append(yaml, at, start - at).Append(Marker);
            at = end;
        }

        return sb.Append(yaml, at, yaml.Length - at).ToString();
    }

    /// <summary>What the mode lets others do that they should not, or null when it is fine (0640, 0600, 0400, …).</summary>
    internal static string? Exposure(UnixFileMode mode)
    {
        var worldRead = mode.HasFlag(UnixFileMode.OtherRead);
        var worldWrite = mode.HasFlag(UnixFileMode.OtherWrite);
        var groupWrite = mode.HasFlag(UnixFileMode.GroupWrite);
        var world = (worldRead, worldWrite) switch
        {
            (true, true) => "readable and writable by every user",
            (true, false) => "readable by every user",
            (false, true) => "writable by every user",
            _ => null,
        };
        var group = groupWrite && !worldWrite ? "writable by its group" : null;
        return (world, group) switch
        {
            (null, null) => null,
            (not null, not null) => world + " and " + group,
            _ => world ?? group,
        };
    }

    internal static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode & 0x1FF, 8).PadLeft(3, '0');

    private static UnixFileMode? ModeOf(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return null;
        }

        try
        {
            return File.GetUnixFileMode(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
