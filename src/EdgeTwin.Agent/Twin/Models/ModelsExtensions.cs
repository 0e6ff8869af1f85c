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

/// <summary>Loads the catalog at start and watches its manifest until stop.</summary>
public sealed class ModelsService(ModelCatalog catalog, ILogger<ModelDirectoryWatcher>? watcherLogger = null) : IHostedService, IDisposable
{
    private ModelDirectoryWatcher? _watcher;

    public ModelCatalog Catalog => catalog;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // Watch first so a manifest deployed while the first load runs is not missed.
        _watcher = new ModelDirectoryWatcher(catalog, logger: watcherLogger);
        catalog.Reload();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _watcher?.Dispose();
        _watcher = null;
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _watcher?.Dispose();
        catalog.Dispose();
    }
}
