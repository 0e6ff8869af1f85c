using EdgeTwin.Core.Config;

namespace EdgeTwin.Agent.Twin.Multivariate;

/// <summary>One group of related series scored together by a multivariate model, in the model's feature order.</summary>
public sealed record MultivariateGroup(string Name, string Model, TimeSpan Interval, IReadOnlyList<string> Series);

/// <summary>
/// The <c>twin: multivariate:</c> section: <c>enabled</c>, <c>threshold</c> (score that opens an episode),
/// <c>quiet_windows</c> (windows below threshold/2 that close it), <c>max_batch</c>, and <c>groups</c>, each
/// <c>{ name, model (default mv-machine), interval (default 30s), series: [device/metric, …] }</c>.
/// Read by the same code for <c>edgetwin check</c> and at start, so problems carry file, line and key.
/// </summary>
public sealed record MultivariateConfig(bool Enabled, double Threshold, int QuietWindows, int MaxBatch, IReadOnlyList<MultivariateGroup> Groups)
{
    public const string DefaultModel = "mv-machine";

    public static MultivariateConfig Default { get; } = new(true, 0.5, 10, 64, []);

    /// <summary>Reads the <c>twin</c> section (null: no groups); throws <see cref="ConfigException"/> with every problem.</summary>
    public static MultivariateConfig From(ConfigMapping? twinSection) =>
        twinSection is null ? Default : ConfigReader.ReadOrThrow(twinSection, ReadTwin);

    /// <summary>Reads <c>multivariate</c> of the <c>twin</c> section; other keys belong to other twin models.</summary>
    internal static MultivariateConfig ReadTwin(ConfigReader twin) =>
        twin.Section("multivariate") is { } section ? Read(section) : Default;

    internal static MultivariateConfig Read(ConfigReader section)
    {
        var enabled = section.Bool("enabled") ?? true;
        var threshold = section.Double("threshold", min: 0.01, max: 1) ?? Default.Threshold;
        var quiet = section.Int("quiet_windows", min: 1, max: 100_000) ?? Default.QuietWindows;
        var maxBatch = section.Int("max_batch", min: 1, max: 4096) ?? Default.MaxBatch;
        var groups = new List<MultivariateGroup>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var seriesOwner = new Dictionary<string, string>(StringComparer.Ordinal);
        if (section.Sequence("groups") is { } list)
        {
            foreach (var item in list.Items)
            {
                if (ConfigReader.For(item, section.Diagnostics) is not { } g)
                {
                    continue;
                }

                var name = g.Id("name", required: true);
                var model = g.String("model") ?? DefaultModel;
                var interval = g.Duration("interval", min: TimeSpan.FromSeconds(1)) ?? TimeSpan.FromSeconds(30);
                var series = new List<string>();
                if (g.Sequence("series", required: true) is { } s)
                {
                    foreach (var node in s.Items)
                    {
                        if (node is not ConfigScalar { IsNull: false } scalar || scalar.Value.Length == 0 || !scalar.Value.Contains('/', StringComparison.Ordinal))
                        {
                            section.Diagnostics.Add(node, "expected a series key 'device/metric', got " + ConfigReader.Describe(node));
                        }
                        else if (series.Contains(scalar.Value))
                        {
                            section.Diagnostics.Add(node, $"series '{scalar.Value}' is listed twice in this group");
                        }
                        else if (seriesOwner.TryGetValue(scalar.Value, out var other))
                        {
                            section.Diagnostics.Add(node, $"series '{scalar.Value}' already belongs to group '{other}' (a series feeds one group)");
                        }
                        else
                        {
                            series.Add(scalar.Value);
                            seriesOwner[scalar.Value] = name ?? "?";
                        }
                    }

                    if (s.Items.Count == 0)
                    {
                        section.Diagnostics.Add(s, "a group needs at least one series");
                    }
                }

                g.ReportUnknownKeys();
                if (name is null)
                {
                    continue;
                }

                if (!names.Add(name))
                {
                    section.Diagnostics.Add(g.Node("name")!, $"duplicate group name '{name}'");
                    continue;
                }

                groups.Add(new MultivariateGroup(name, model, interval, series));
            }
        }

        section.ReportUnknownKeys();
        return new MultivariateConfig(enabled, threshold, quiet, maxBatch, groups);
    }
}

/// <summary>Validates <c>twin.multivariate</c> for <c>edgetwin check</c> and the agent's start.</summary>
public sealed class TwinMultivariateSectionValidator : IConfigSectionValidator
{
    public string Section => "twin";

    public void Validate(ConfigReader section)
    {
        ArgumentNullException.ThrowIfNull(section);
        MultivariateConfig.ReadTwin(section);
    }
}
