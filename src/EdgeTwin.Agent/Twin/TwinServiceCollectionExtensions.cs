using EdgeTwin.Agent.Hosting;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Pipeline;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace EdgeTwin.Agent.Twin;

public static class TwinServiceCollectionExtensions
{
    /// <summary>
    /// Adds the twin models behind the pipeline: the streaming anomaly detector on every numeric series, configured by the
    /// site config's <c>twin: anomaly:</c> section (or <paramref name="anomaly"/> when given). The stage's queue drops the
    /// oldest batch when full: detection must never hold back polling or the outbox.
    /// </summary>
    public static IServiceCollection AddTwinModels(this IServiceCollection services, AnomalyConfig? anomaly = null)
    {
        if (anomaly is not null)
        {
            services.AddSingleton(anomaly);
        }
        else
        {
            services.TryAddSingleton(sp => AnomalyConfig.From(TwinSection(sp.GetRequiredService<SiteConfig>())));
        }

        services.AddSampleStage<AnomalyStage>(new StageOptions(Capacity: 256, FullMode: QueueFullMode.DropOldest));
        return services;
    }

    /// <summary>
    /// The <c>twin:</c> mapping of the config file. SiteConfig does not carry it yet, so it is read again from the file
    /// the config came from (the loader has already validated it through <see cref="TwinAnomalySectionValidator"/>).
    /// </summary>
    private static ConfigMapping? TwinSection(SiteConfig config)
    {
        if (config.SourcePath is not { } path || !File.Exists(path))
        {
            return null;
        }

        var diagnostics = new ConfigDiagnostics();
        return YamlTree.Parse(File.ReadAllText(path), path, diagnostics) is ConfigMapping root && root["twin"] is ConfigMapping twin ? twin : null;
    }
}
