using EdgeTwin.Core.Config;
using EdgeTwin.Twin.Models;
using EdgeTwin.Twin.Models.Maintenance;
using EdgeTwin.Twin.Models.Rul;

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
///     model: bearing-rul                    # machine-health RUL model in the manifest
///     enabled: true                         # false: no maintenance stage
///     rearm_below: 0.3                      # a machine raises again after its probability fell below this
///     currency: EUR                         # ISO 4217 code of cost_per_hour, carried with each prediction's cost
///     machines:                             # the assets watched: ids of site.lines[].machines or site.cooling_units (its blower)
///       m1: { downtime_hours: 6, cost_per_hour: 1200, action: "replace drive-end bearing" }
/// </code>
/// A key <c>anomaly</c> is an error: the streaming anomaly detector reads <c>twin.anomaly</c>, and nothing reads it here.
/// </summary>
public sealed record ModelsConfig(string Directory, double Threshold, TimeSpan Horizon, IReadOnlyDictionary<string, MachineCostFigures> Machines)
{
    /// <summary>Manifest name of the machine-health RUL model.</summary>
    public string MaintenanceModel { get; init; } = MaintenanceDefaults.Model;

    /// <summary>False when <c>models.maintenance.enabled: false</c>.</summary>
    public bool MaintenanceEnabled { get; init; } = true;

    /// <summary>Hysteresis of predictions.</summary>
    public double RearmBelow { get; init; } = 0.3;

    /// <summary>ISO 4217 code of the cost figures, or null when the config does not say.</summary>
    public string? Currency { get; init; }

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

        var configDir = config.ConfigDirectory();
        return ConfigReader.ReadOrThrow(config.Models, r =>
        {
            var result = Read(r, configDir);
            CheckMachines(config, r.Diagnostics);
            return result;
        });
    }

    /// <summary>
    /// Watched assets must be machines or cooling units of the site when the site lists any (a typo would watch nothing):
    /// a cooling unit is watched through the bearing signals of the devices located on it (its blower).
    /// </summary>
    internal static void CheckMachines(SiteConfig config, ConfigDiagnostics diagnostics)
    {
        var machineIds = config.Site.AllMachines.Select(m => m.Id).ToList();
        var unitIds = config.Site.CoolingUnits.Select(u => u.Id).ToList();
        var known = machineIds.Concat(unitIds).ToHashSet(StringComparer.Ordinal);
        if (known.Count == 0 || config.Models is not ConfigMapping section
            || section["maintenance"] is not ConfigMapping maintenance || maintenance["machines"] is not ConfigMapping machines)
        {
            return;
        }

        foreach (var (id, _) in machines.Entries)
        {
            if (ConfigReader.IsValidId(id) && !known.Contains(id))
            {
                diagnostics.Add(machines.KeyMark(id), "models.maintenance.machines." + id,
                    $"'{id}' is not a machine or cooling unit of the site (machines: {Listed(machineIds)}; cooling units: {Listed(unitIds)})");
            }
        }
    }

    private static string Listed(IEnumerable<string> ids) => ids.Order(StringComparer.Ordinal).ToList() is { Count: > 0 } list ? string.Join(", ", list) : "none";

    internal static ModelsConfig Read(ConfigReader section, string configDirectory)
    {
        var dir = section.String("directory");
        if (section.Node("anomaly") is not null)
        {
            // Nothing reads models.anomaly: the detector's settings are twin.anomaly. Accepted here before, it passed check
            // and the agent ran with the detector's defaults.
            section.Diagnostics.Add(section.Mapping.KeyMark("anomaly"), section.ChildPath("anomaly"), "the streaming anomaly detector is configured under twin.anomaly, not models.anomaly; move this section there (nothing reads it here)");
        }

        var threshold = DefaultThreshold;
        var horizon = DefaultHorizon;
        var machines = new Dictionary<string, MachineCostFigures>(StringComparer.Ordinal);
        var model = MaintenanceDefaults.Model;
        var enabled = true;
        var rearm = 0.3;
        string? currency = null;
        if (section.Section("maintenance") is { } m)
        {
            threshold = m.Double("threshold", min: 0.01, max: 0.999) ?? DefaultThreshold;
            horizon = m.Duration("horizon", min: TimeSpan.FromMinutes(1)) ?? DefaultHorizon;
            model = m.String("model") is { } name ? CheckModelName(m, name) : model;
            enabled = m.Bool("enabled") ?? true;
            if (m.String("currency") is { } c)
            {
                if (c.Length != 3 || !c.All(char.IsAsciiLetterUpper))
                {
                    m.Diagnostics.Add(m.Mapping.KeyMark("currency"), m.ChildPath("currency"), $"'{c}' is not an ISO 4217 currency code (three capital letters, e.g. EUR)");
                }

                currency = c;
            }

            if (m.Double("rearm_below", min: 0, max: 0.999) is { } r)
            {
                if (r >= threshold)
                {
                    m.Diagnostics.Add(m.Mapping.KeyMark("rearm_below"), m.ChildPath("rearm_below"), $"must be below the threshold ({threshold.ToString(System.Globalization.CultureInfo.InvariantCulture)})");
                }

                rearm = r;
            }
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
        if (enabled && machines.Count > 0)
        {
            CheckHorizonAgainstModel(section, directory, model, horizon);
        }

        return new ModelsConfig(directory, threshold, horizon, machines) { MaintenanceModel = model, MaintenanceEnabled = enabled, RearmBelow = rearm, Currency = currency };
    }

    /// <summary>
    /// The horizon must be one the machine-health model can answer: its RUL is capped (120 h for <c>bearing-rul</c>), a
    /// healthy machine reads the cap, so a horizon near or past it (a week, to plan next week's work) made every healthy
    /// machine's failure probability 100 %. Judged when the models directory's manifest can be read and lists the model
    /// (the agent checks again per inference, for a model deployed later); a missing or broken manifest is the models
    /// service's to report.
    /// </summary>
    private static void CheckHorizonAgainstModel(ConfigReader section, string directory, string model, TimeSpan horizon)
    {
        var manifest = Path.Combine(directory, "manifest.json");
        if (!File.Exists(manifest))
        {
            return;
        }

        try
        {
            if (ModelManifest.Load(manifest).Find(model) is not { } entry || entry.Outputs.Count == 0 || entry.Outputs[0].Cap is not { } cap)
            {
                return;
            }

            var longest = MaintenancePredictor.LongestHorizon(cap, RulUncertainty.FromEntry(entry, manifest));
            var hours = horizon / MaintenanceRulUnit;
            if (hours > longest)
            {
                var ic = System.Globalization.CultureInfo.InvariantCulture;
                var maintenance = (ConfigMapping)section.Mapping["maintenance"]!;
                var mark = maintenance["horizon"] is not null ? maintenance.KeyMark("horizon") : section.Mapping.KeyMark("maintenance");
                section.Diagnostics.Add(mark, section.ChildPath("maintenance") + ".horizon",
                    string.Create(ic, $"{hours:0.#} h is longer than model '{model}' can answer: its RUL is capped at {cap:0.#} h ({manifest}), so every healthy machine would read a failure within it; at most {Math.Floor(longest):0} h"));
            }
        }
        catch (ModelLoadException)
        {
            // Reported by the models service at start, with the file and JSON path.
        }
    }

    /// <summary>Real time per unit of the machine-health model's RUL (running hours).</summary>
    internal static readonly TimeSpan MaintenanceRulUnit = TimeSpan.FromHours(1);

    private static string CheckModelName(ConfigReader m, string name)
    {
        if (name.Length == 0 || name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
        {
            m.Diagnostics.Add(m.Mapping.KeyMark("model"), m.ChildPath("model"), $"'{name}' is not a model name (letters, digits, '-', '_', '.')");
        }

        return name;
    }
}

/// <summary>Validates <c>models:</c> for <c>edgetwin check</c> and the agent's start.</summary>
public sealed class ModelsSectionValidator : IConfigSectionValidator
{
    public string Section => "models";

    public void Validate(ConfigReader section)
    {
        ArgumentNullException.ThrowIfNull(section);
        // Relative to the config file, as the agent resolves models.directory (the manifest is read for the horizon check).
        ModelsConfig.Read(section, section.FileDirectory);
    }

    /// <summary>Watched machines must exist: only the agent's start checked them before, so <c>edgetwin check</c> passed a typo.</summary>
    public void ValidateReferences(ConfigReader section, SiteReferences site)
    {
        ArgumentNullException.ThrowIfNull(section);
        ArgumentNullException.ThrowIfNull(site);
        ModelsConfig.CheckMachines(site.Config, section.Diagnostics);
    }

    /// <summary>The maintenance stage's history, next to the outbox (no key moves it).</summary>
    public IEnumerable<StateFileSetting> StateFiles(ConfigReader? section) => [StateFileSetting.Fixed("models.maintenance", MaintenanceStage.StateFileName)];
}
