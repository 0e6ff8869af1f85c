using System.Diagnostics.Metrics;
using EdgeTwin.Core.Config;
using EdgeTwin.Twin.Models;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Twin.Models;

public static class ModelsExtensions
{
    /// <summary>
    /// Adds the models directory of <c>models:</c> (catalog verified at start, reloaded when manifest.json changes).
    /// A missing directory or broken model is logged and the model marked unavailable: the agent and the streaming
    /// anomaly detector keep running without it.
    /// </summary>
    public static IServiceCollection AddModels(this IServiceCollection services)
    {
        services.AddSingleton(sp => ModelsConfig.From(sp.GetRequiredService<SiteConfig>()));
        services.AddSingleton(sp => new ModelsMetrics(sp.GetService<IMeterFactory>()));
        services.AddSingleton(sp => new ModelCatalog(
            sp.GetRequiredService<ModelsConfig>().Directory,
            sp.GetService<ILogger<ModelCatalog>>(),
            sp.GetRequiredService<ModelsMetrics>()));
        services.AddSingleton<ModelsService>();
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<ModelsService>());
        return services;
    }
}

/// <summary>
/// Loads the catalog before any service starts (so the uplink's first birth already lists the models: it listed none
/// and the centre saw a model-less gateway until the next one) and watches its manifest until stop. At start it warns for each model the configured
/// features need (<c>models.maintenance.machines</c>, <c>twin.multivariate</c> groups) that does not serve: without
/// it those features stay idle or fall back, and a missing models directory otherwise says so only at Information.
/// </summary>
public sealed partial class ModelsService(
    ModelCatalog catalog,
    ILogger<ModelDirectoryWatcher>? watcherLogger = null,
    ModelsConfig? config = null,
    Multivariate.MultivariateConfig? multivariate = null,
    ILogger<ModelsService>? logger = null) : IHostedLifecycleService, IDisposable
{
    private ModelDirectoryWatcher? _watcher;

    public ModelCatalog Catalog => catalog;

    /// <summary>Runs before every service's <c>StartAsync</c>, the uplinks' connect among them.</summary>
    public Task StartingAsync(CancellationToken cancellationToken) => StartAsync(cancellationToken);

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (_watcher is not null)
        {
            return Task.CompletedTask; // loaded in StartingAsync
        }

        // Watch first so a manifest deployed while the first load runs is not missed.
        _watcher = new ModelDirectoryWatcher(catalog, logger: watcherLogger);
        catalog.Reload();
        if (logger is not null)
        {
            foreach (var (model, users) in Needs(config, multivariate))
            {
                if (catalog.Get(model) is null)
                {
                    var status = catalog.Status.FirstOrDefault(s => s.Name == model);
                    LogNeededModelMissing(logger, model, users, catalog.Directory, status?.Error ?? catalog.ManifestError ?? "not in the manifest");
                }
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>The models the configuration uses, each with what uses it.</summary>
    internal static IEnumerable<(string Model, string Users)> Needs(ModelsConfig? config, Multivariate.MultivariateConfig? multivariate)
    {
        var needs = new List<(string Model, string User)>();
        if (config is { MaintenanceEnabled: true, Machines.Count: > 0 })
        {
            needs.Add((config.MaintenanceModel, $"models.maintenance ({config.Machines.Count} machines)"));
        }

        if (multivariate is { Enabled: true })
        {
            needs.AddRange(multivariate.Groups.Select(g => (g.Model, $"twin.multivariate group {g.Name}")));
        }

        return needs.GroupBy(n => n.Model, StringComparer.Ordinal).Select(g => (g.Key, string.Join(", ", g.Select(n => n.User))));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Model {Model} is needed by {Users} but does not serve from {Directory}: {Reason}. Until it does, maintenance predictions stay off and multivariate groups fall back to the streaming detector; set models.directory to a directory with a manifest.json (check it with edgetwin models verify --dir DIR)")]
    private static partial void LogNeededModelMissing(ILogger logger, string model, string users, string directory, string reason);

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _watcher?.Dispose();
        _watcher = null;
        return Task.CompletedTask;
    }

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose()
    {
        _watcher?.Dispose();
        catalog.Dispose();
    }
}
