using EdgeTwin.Core.Config;

namespace EdgeTwin.Agent.Twin.Models;

/// <summary>Downtime and cost figures of one machine, for maintenance predictions.</summary>
/// <param name="DowntimeHours">Expected hours out of service for the repair.</param>
/// <param name="CostPerHour">Cost of one hour of downtime (site currency).</param>
/// <param name="Action">Recommended action text for this machine.</param>
public sealed record MachineCostFigures(double DowntimeHours, double CostPerHour, string Action);

/// <summary>
/// The <c>models:</c> section: where the models directory is and how maintenance predictions are made.
/// <code>
/// models:
///   directory: /var/lib/edgetwin/models     # default: models/ beside the binary, then ./models
///   maintenance:
///     threshold: 0.7                        # failure probability that raises a prediction
///     horizon: 48h                          # probability of failing within this time
///     machines:
///       m1: { downtime_hours: 6, cost_per_hour: 1200, action: "replace drive-end bearing" }
/// </code>
/// The key <c>anomaly</c> belongs to the streaming anomaly detector and is not read here.
/// </summary>
public sealed record ModelsConfig(string Directory, double Threshold, TimeSpan Horizon, IReadOnlyDictionary<string, MachineCostFigures> Machines)
{
    public const double DefaultThreshold = 0.7;
    public static readonly TimeSpan DefaultHorizon = TimeSpan.FromHours(48);

    /// <summary>Where the models directory is looked for when the config does not say.</summary>
    public static IReadOnlyList<string> DefaultDirectories() =>
        [Path.Combine(AppContext.BaseDirectory, "models"), Path.Combine(System.IO.Directory.GetCurrentDirectory(), "models")];

    /// <summary>The default directory: the first that has a manifest, else the first candidate.</summary>
    public static string DefaultDirectory() =>
        DefaultDirectories().FirstOrDefault(d => File.Exists(Path.Combine(d, "manifest.json"))) ?? DefaultDirectories()[0];

    /// <summary>Reads the section of a loaded config; throws <see cref="ConfigException"/> with every problem.</summary>
    public static ModelsConfig From(SiteConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Models is null)
        {
            return new ModelsConfig(DefaultDirectory(), DefaultThreshold, DefaultHorizon, new Dictionary<string, MachineCostFigures>(StringComparer.Ordinal));
        }

        var diagnostics = new ConfigDiagnostics();
        var configDir = config.SourcePath is { } p ? Path.GetDirectoryName(Path.GetFullPath(p)) ?? "." : System.IO.Directory.GetCurrentDirectory();
        var result = Read(new ConfigReader(config.Models, diagnostics), configDir);
        if (!diagnostics.IsEmpty)
        {
            throw new ConfigException(diagnostics.Sorted());
        }

        return result;
    }

    internal static ModelsConfig Read(ConfigReader section, string configDirectory)
    {
        var dir = section.String("directory");
        section.Node("anomaly"); // owned by the streaming anomaly detector
        var threshold = DefaultThreshold;
        var horizon = DefaultHorizon;
        var machines = new Dictionary<string, MachineCostFigures>(StringComparer.Ordinal);
        if (section.Section("maintenance") is { } m)
        {
            threshold = m.Double("threshold", min: 0.01, max: 0.999) ?? DefaultThreshold;
            horizon = m.Duration("horizon", min: TimeSpan.FromMinutes(1)) ?? DefaultHorizon;
            if (m.Section("machines") is { } ms)
            {
                foreach (var id in ms.Mapping.Entries.Select(e => e.Key).ToList())
                {
                    if (!ConfigReader.IsValidId(id))
                    {
                        ms.Diagnostics.Add(ms.Mapping.KeyMark(id), ms.ChildPath(id), $"'{id}' is not a valid machine id");
                        continue;
                    }

                    if (ms.Section(id) is { } one)
                    {
                        machines[id] = new MachineCostFigures(
                            one.Double("downtime_hours", required: true, min: 0) ?? 0,
                            one.Double("cost_per_hour", required: true, min: 0) ?? 0,
                            one.String("action") ?? "inspect and replace the bearing before failure");
                        one.ReportUnknownKeys();
                    }
                }
            }

            m.ReportUnknownKeys();
        }

        section.ReportUnknownKeys();
        var directory = dir is null ? DefaultDirectory() : Path.GetFullPath(Path.Combine(configDirectory, dir));
        return new ModelsConfig(directory, threshold, horizon, machines);
    }
}

/// <summary>Validates <c>models:</c> for <c>edgetwin check</c> and the agent's start.</summary>
public sealed class ModelsSectionValidator : IConfigSectionValidator
{
    public string Section => "models";

    public void Validate(ConfigReader section)
    {
        ArgumentNullException.ThrowIfNull(section);
        ModelsConfig.Read(section, System.IO.Directory.GetCurrentDirectory());
    }
}
