using EdgeTwin.Core.Config;

namespace EdgeTwin.Core.Profiles;

/// <summary>
/// Finds profile files by id in an ordered list of directories (first match wins) and loads each once.
/// </summary>
public sealed class ProfileCatalog
{
    private readonly Dictionary<string, DeviceProfile?> _loaded = new(StringComparer.Ordinal);

    /// <summary>Searches <paramref name="directories"/> in order.</summary>
    public ProfileCatalog(IReadOnlyList<string> directories)
    {
        ArgumentNullException.ThrowIfNull(directories);
        Directories = directories;
    }

    /// <summary>The directories searched, in order.</summary>
    public IReadOnlyList<string> Directories { get; }

    /// <summary>
    /// The default search: <c>device-profiles</c> beside the executable, then <c>./device-profiles</c>.
    /// </summary>
    public static IReadOnlyList<string> DefaultDirectories()
    {
        var beside = Path.Combine(AppContext.BaseDirectory, "device-profiles");
        var cwd = Path.GetFullPath("device-profiles");
        return string.Equals(Path.GetFullPath(beside), cwd, StringComparison.Ordinal) ? [beside] : [beside, cwd];
    }

    /// <summary>The file that holds profile <paramref name="id"/>, or null when no directory has it.</summary>
    public string? FindFile(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        if (!ConfigReader.IsValidId(id))
        {
            return null;
        }

        foreach (var dir in Directories)
        {
            foreach (var ext in (string[])[".yaml", ".yml"])
            {
                var candidate = Path.Combine(dir, id + ext);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return null;
    }

    /// <summary>
    /// Loads profile <paramref name="id"/> (once; later calls return the same result without new problems).
    /// Returns null when it is missing or invalid; problems go to <paramref name="diagnostics"/> the first time.
    /// </summary>
    public DeviceProfile? Get(string id, ConfigDiagnostics diagnostics, out bool found)
    {
        ArgumentNullException.ThrowIfNull(diagnostics);
        var file = FindFile(id);
        found = file is not null;
        if (_loaded.TryGetValue(id, out var cached))
        {
            return cached;
        }

        var profile = file is null ? null : DeviceProfileLoader.LoadFile(file, diagnostics);
        _loaded[id] = profile;
        return profile;
    }

    /// <summary>Loads every <c>*.yaml</c> profile in the catalog's directories (first directory wins per id).</summary>
    public IReadOnlyList<DeviceProfile> LoadAll(ConfigDiagnostics diagnostics)
    {
        ArgumentNullException.ThrowIfNull(diagnostics);
        var ids = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var dir in Directories.Where(Directory.Exists))
        {
            foreach (var f in Directory.EnumerateFiles(dir, "*.yaml").Concat(Directory.EnumerateFiles(dir, "*.yml")))
            {
                ids.Add(Path.GetFileNameWithoutExtension(f));
            }
        }

        var list = new List<DeviceProfile>();
        foreach (var id in ids)
        {
            var p = Get(id, diagnostics, out _);
            if (p is not null)
            {
                list.Add(p);
            }
        }

        return list;
    }
}
