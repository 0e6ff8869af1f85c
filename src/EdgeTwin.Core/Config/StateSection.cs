namespace EdgeTwin.Core.Config;

/// <summary>
/// The keys every learning stage's <c>state:</c> section shares (<c>twin.anomaly.state</c>, <c>line.state</c>): <c>file</c>
/// and <c>checkpoint_interval</c>, read and checked the same way, with the problem at the key.
/// </summary>
public static class StateSection
{
    /// <summary>
    /// <c>file</c> (null when left out; an empty one is an error) and <c>checkpoint_interval</c> (at least 10 s, at most
    /// <paramref name="maxInterval"/>, whose error says <paramref name="whyMax"/>; <paramref name="defaultInterval"/> when left out).
    /// </summary>
    public static (string? File, TimeSpan CheckpointInterval) Read(ConfigReader state, string defaultFileName, TimeSpan defaultInterval, TimeSpan maxInterval, string whyMax)
    {
        ArgumentNullException.ThrowIfNull(state);
        var file = state.String("file");
        if (file is not null && string.IsNullOrWhiteSpace(file))
        {
            state.Diagnostics.Add(state.Node("file")!, $"must name a file (or a directory to keep {defaultFileName} in); leave it out for the outbox's directory");
            file = null;
        }

        var interval = state.Duration("checkpoint_interval", min: TimeSpan.FromSeconds(10)) ?? defaultInterval;
        if (interval > maxInterval)
        {
            state.Diagnostics.Add(state.Node("checkpoint_interval")!, $"must be at most {Durations.Format(maxInterval)} ({whyMax}), got '{Durations.Format(interval)}'");
        }

        return (file, interval);
    }

    /// <summary>
    /// Where a stage keeps its state, as the agent resolves it: <paramref name="file"/> taken from the outbox's directory
    /// when relative (a directory, or a name ending in '/', gets <paramref name="defaultFileName"/> inside), else
    /// <paramref name="defaultFileName"/> next to the outbox.
    /// </summary>
    public static string ResolvePath(string? file, string outboxPath, string defaultFileName)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(outboxPath)) ?? ".";
        if (file is null)
        {
            return Path.Combine(directory, defaultFileName);
        }

        // A name ending in '/' is a directory even before it exists (it is created with the first write).
        var path = Path.GetFullPath(file, directory);
        return Directory.Exists(path) || Path.EndsInDirectorySeparator(file) ? Path.Combine(path, defaultFileName) : path;
    }

    /// <summary>
    /// Reports each state file that would land on one of the outbox's files (the database, its journal, its lock) or on
    /// another stage's state file: the agent would refuse it at start and keep no state that run, so check says it first.
    /// The problem is at the <c>file</c> key that names it; a stage's default that is the outbox means <c>outbox.path</c>
    /// took a state file's name, so the problem is there.
    /// </summary>
    public static void CheckFiles(IEnumerable<StateFileSetting> settings, string outboxPath, ConfigNode? outboxPathNode, ConfigDiagnostics diagnostics)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(outboxPath);
        ArgumentNullException.ThrowIfNull(diagnostics);
        var outbox = Path.GetFullPath(outboxPath);
        var outboxFiles = new (string Path, string What)[]
        {
            (outbox, "the outbox itself"),
            (OutboxSettings.JournalPath(outbox), "the outbox's journal"),
            (OutboxSettings.LockPath(outbox), "the outbox's lock file"),
        };
        var kept = new List<(string Path, StateFileSetting Setting)>();
        foreach (var setting in settings)
        {
            var path = ResolvePath(setting.File, outbox, setting.DefaultFileName);
            var outboxFile = Array.Find(outboxFiles, f => string.Equals(f.Path, path, StringComparison.Ordinal));
            if (outboxFile.What is not null)
            {
                if (setting.FileNode is { } node)
                {
                    diagnostics.Add(node, $"{setting.Section}.file resolves to {path}, {outboxFile.What}: {OwnFile(setting)}");
                }
                else if (outboxPathNode is not null)
                {
                    diagnostics.Add(outboxPathNode, setting.Configurable
                        ? $"the outbox would be {path}, the file {setting.Section} keeps its state in by default: name the outbox otherwise, or give {setting.Section}.file"
                        : $"the outbox would be {path}, the file {setting.Section} keeps its state in: name the outbox otherwise");
                }

                continue;
            }

            if (kept.Find(k => string.Equals(k.Path, path, StringComparison.Ordinal)).Setting is { } other)
            {
                // Said at the key that was written (the one checked second when both were); the other may be its stage's default.
                var (at, with) = setting.FileNode is not null ? (setting, other) : (other, setting);
                if (at.FileNode is { } node)
                {
                    var whose = with.FileNode is not null ? $"the file {with.Section}.file names too"
                        : with.Configurable ? $"where {with.Section} keeps its state by default" : $"where {with.Section} keeps its state";
                    diagnostics.Add(node, $"{at.Section}.file resolves to {path}, {whose}: {OwnFile(at)}");
                }

                continue;
            }

            kept.Add((path, setting));
        }
    }

    private static string OwnFile(StateFileSetting setting) => $"name a file of its own (default {setting.DefaultFileName} next to the outbox)";
}

/// <summary>
/// A state file a stage keeps when the agent runs (see <see cref="IConfigSectionValidator.StateFiles"/>): its section
/// (<c>line.state</c>), the <c>file</c> given and its node (both null when left out: <paramref name="DefaultFileName"/>
/// next to the outbox). A stage whose file no key can move (<paramref name="Configurable"/> false: the alert store, the
/// thermal twin's and the maintenance stage's state) is listed too, so that no configured file lands on it.
/// </summary>
public sealed record StateFileSetting(string Section, string? File, ConfigNode? FileNode, string DefaultFileName, bool Configurable = true)
{
    /// <summary>A state file no key can move: <paramref name="fileName"/> in <paramref name="directory"/>, else next to the outbox.</summary>
    public static StateFileSetting Fixed(string owner, string fileName, string? directory = null) =>
        new(owner, directory is null ? null : Path.Combine(directory, fileName), null, fileName, Configurable: false);

    /// <summary>The setting of the <c>state:</c> mapping <paramref name="owner"/> holds (null: left out), <paramref name="file"/> as read from it.</summary>
    public static StateFileSetting Of(ConfigMapping? owner, string section, string? file, string defaultFileName) =>
        new(section, file, file is null ? null : (owner?["state"] as ConfigMapping)?["file"], defaultFileName);
}
