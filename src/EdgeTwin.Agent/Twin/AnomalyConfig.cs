using System.Text.RegularExpressions;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Samples;
using EdgeTwin.Twin.Anomaly;

namespace EdgeTwin.Agent.Twin;

/// <summary>One <c>twin.anomaly.overrides</c> entry: a series-key glob (<c>*</c>, <c>?</c>) and the options for matching series.</summary>
public sealed record AnomalyOverride(string Glob, AnomalyDetectorOptions Options)
{
    private readonly Regex _regex = new("^" + Regex.Escape(Glob).Replace("\\*", ".*", StringComparison.Ordinal).Replace("\\?", ".", StringComparison.Ordinal) + "$",
        RegexOptions.CultureInvariant | RegexOptions.Singleline, TimeSpan.FromSeconds(1));

    public bool Matches(string seriesKey) => _regex.IsMatch(seriesKey);

    /// <summary>
    /// Whether some key starting with <paramref name="prefix"/> would match: for series not registered yet (an SNMP table's
    /// rows appear with their first walk as <c>device/metric{index=…}</c>). Runs the glob as an automaton over the prefix;
    /// any state left can still match a suffix.
    /// </summary>
    public bool CouldMatchKeyStartingWith(string prefix)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        var states = Closure([0]);
        foreach (var c in prefix)
        {
            var next = new HashSet<int>();
            foreach (var s in states)
            {
                if (s < Glob.Length && Glob[s] == '*')
                {
                    next.Add(s);
                }
                else if (s < Glob.Length && (Glob[s] == '?' || Glob[s] == c))
                {
                    next.Add(s + 1);
                }
            }

            states = Closure(next);
            if (states.Count == 0)
            {
                return false;
            }
        }

        return true;
    }

    private HashSet<int> Closure(IEnumerable<int> states)
    {
        var result = new HashSet<int>();
        foreach (var s in states)
        {
            for (var i = s; result.Add(i) && i < Glob.Length && Glob[i] == '*'; i++)
            {
            }
        }

        return result;
    }
}

/// <summary>
/// The <c>twin: anomaly:</c> section: <c>enabled</c>, <c>threshold</c>, <c>max_series</c>, any detector option by its key
/// (<see cref="AnomalyDetectorOptions.Keys"/>) and <c>overrides: { "series-glob": { key: value, … } }</c>; the first matching
/// glob wins. Read by the same code for <c>edgetwin check</c> and at start, so problems carry file, line and key.
/// </summary>
public sealed record AnomalyConfig(bool Enabled, AnomalyDetectorOptions Defaults, IReadOnlyList<AnomalyOverride> Overrides, int MaxSeries, int QuietSamplesToClose)
{
    public static AnomalyConfig Default { get; } = new(true, AnomalyDetectorOptions.Default, [], 65_536, 30);

    /// <summary><c>state:</c> keeping what the detectors learned over restarts.</summary>
    public AnomalyStateConfig State { get; init; } = AnomalyStateConfig.Default;

    /// <summary>Options for one series: the first matching override, else the defaults; counters are differenced.</summary>
    public AnomalyDetectorOptions OptionsFor(SeriesDescriptor series)
    {
        ArgumentNullException.ThrowIfNull(series);
        var options = Defaults;
        foreach (var o in Overrides)
        {
            if (o.Matches(series.Key))
            {
                options = o.Options;
                break;
            }
        }

        return series.Kind == MetricKind.Counter && !options.IsCounter ? options with { IsCounter = true } : options;
    }

    /// <summary>
    /// The overrides that match none of <paramref name="seriesKeys"/> and could match no key starting with one of
    /// <paramref name="lateKeyPrefixes"/> (series registered later, e.g. <c>device/metric{</c> of an SNMP table column):
    /// a typo in a glob would otherwise silently leave the defaults in force.
    /// </summary>
    public IReadOnlyList<AnomalyOverride> UnmatchedOverrides(IReadOnlyCollection<string> seriesKeys, IReadOnlyCollection<string> lateKeyPrefixes)
    {
        ArgumentNullException.ThrowIfNull(seriesKeys);
        ArgumentNullException.ThrowIfNull(lateKeyPrefixes);
        return [.. Overrides.Where(o => !seriesKeys.Any(o.Matches) && !lateKeyPrefixes.Any(o.CouldMatchKeyStartingWith))];
    }

    /// <summary>Reads the <c>twin</c> section (null: defaults); throws <see cref="ConfigException"/> with every problem.</summary>
    public static AnomalyConfig From(ConfigMapping? twinSection) =>
        twinSection is null ? Default : ConfigReader.ReadOrThrow(twinSection, ReadTwin);

    /// <summary>Reads the <c>twin</c> section; problems go to the reader's diagnostics. Keys other than <c>anomaly</c> belong to other twin models.</summary>
    internal static AnomalyConfig ReadTwin(ConfigReader twin) =>
        twin.Section("anomaly") is { } anomaly ? Read(anomaly) : Default;

    internal static AnomalyConfig Read(ConfigReader section)
    {
        var enabled = section.Bool("enabled") ?? true;
        var maxSeries = section.Int("max_series", min: 1, max: 1_000_000) ?? Default.MaxSeries;
        var quiet = section.Int("quiet_samples", min: 1, max: 100_000) ?? Default.QuietSamplesToClose;
        var defaults = ReadOptions(section, AnomalyDetectorOptions.Default);
        var overrides = new List<AnomalyOverride>();
        if (section.Section("overrides") is { } o)
        {
            foreach (var (glob, node) in o.Mapping.Entries)
            {
                if (ConfigReader.For(o.Node(glob), section.Diagnostics) is { } entry)
                {
                    overrides.Add(new AnomalyOverride(glob, ReadOptions(entry, defaults)));
                    entry.ReportUnknownKeys();
                }
                else
                {
                    section.Diagnostics.Add(node, $"override '{glob}' must be a mapping of detector options");
                }
            }
        }

        var state = AnomalyStateConfig.Default;
        if (section.Section("state") is { } st)
        {
            var (file, interval) = StateSection.Read(st, AnomalyStateFile.FileName, state.CheckpointInterval, TimeSpan.FromDays(1), "a power cut loses what was learned since the last checkpoint");
            state = new AnomalyStateConfig(st.Bool("enabled") ?? state.Enabled, file, interval, st.Duration("max_age", min: TimeSpan.FromMinutes(1)) ?? state.MaxAge);
            st.ReportUnknownKeys();
        }

        section.ReportUnknownKeys();
        return new AnomalyConfig(enabled, defaults, overrides, maxSeries, quiet) { State = state };
    }

    private static AnomalyDetectorOptions ReadOptions(ConfigReader r, AnomalyDetectorOptions start)
    {
        var options = start;
        var set = new Dictionary<string, ConfigNode>(StringComparer.Ordinal);
        foreach (var key in AnomalyDetectorOptions.Keys)
        {
            if (r.Node(key) is not { } node)
            {
                continue;
            }

            if (node is not ConfigScalar scalar)
            {
                r.Diagnostics.Add(node, $"'{key}' must be a scalar");
                continue;
            }

            try
            {
                options = options.With(key, scalar.Value);
                set[key] = node;
            }
            catch (FormatException e)
            {
                r.Diagnostics.Add(node, e.Message);
            }
        }

        foreach (var problem in options.Problems())
        {
            // Point at the offending key this mapping set (its line, column and path). A value inherited from the
            // defaults (or kept because this mapping's value did not parse) is not this mapping's error: it is
            // reported once, where it was set.
            if (problem.Keys.Select(k => set.GetValueOrDefault(k)).FirstOrDefault(n => n is not null) is { } node)
            {
                r.Diagnostics.Add(node, problem.Message);
            }
            else if (ReferenceEquals(start, AnomalyDetectorOptions.Default))
            {
                r.Diagnostics.Add(r.Mapping, problem.Message);
            }
        }

        return options;
    }
}

/// <summary>
/// <c>twin.anomaly.state</c>: the detectors' learned state is saved every <c>checkpoint_interval</c> (default 1h) and at
/// stop to <c>file</c> (default <c>anomaly-state.bin</c> next to the outbox; a relative path is taken from the outbox's
/// directory, the agent's writable state directory; a directory gets <c>anomaly-state.bin</c> inside), and read back at
/// start so that a restart does not send every series back through warm-up; series saved longer ago than <c>max_age</c>
/// (default 7d) learn anew.
/// </summary>
public sealed record AnomalyStateConfig(bool Enabled, string? File, TimeSpan CheckpointInterval, TimeSpan MaxAge)
{
    public static AnomalyStateConfig Default { get; } = new(true, null, TimeSpan.FromHours(1), TimeSpan.FromDays(7));
}

/// <summary>Where the anomaly stage keeps its detectors' state (null: not kept).</summary>
public sealed record AnomalyStateLocation(string? Path);

/// <summary>Validates <c>twin.anomaly</c> for <c>edgetwin check</c> and the agent's start.</summary>
public sealed class TwinAnomalySectionValidator : IConfigSectionValidator
{
    public string Section => "twin";

    public void Validate(ConfigReader section)
    {
        ArgumentNullException.ThrowIfNull(section);
        AnomalyConfig.ReadTwin(section);
    }

    /// <summary><c>twin.anomaly.state.file</c> when the detectors keep their state: by default, also without a <c>twin</c> section.</summary>
    public IEnumerable<StateFileSetting> StateFiles(ConfigReader? section)
    {
        var config = section is null ? AnomalyConfig.Default : AnomalyConfig.ReadTwin(section);
        return config is { Enabled: true, State.Enabled: true }
            ? [StateFileSetting.Of(section?.Mapping["anomaly"] as ConfigMapping, "twin.anomaly.state", config.State.File, AnomalyStateFile.FileName)]
            : [];
    }
}
