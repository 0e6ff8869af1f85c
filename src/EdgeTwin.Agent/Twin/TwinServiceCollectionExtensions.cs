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
            services.TryAddSingleton(sp => AnomalyConfig.From(sp.GetRequiredService<SiteConfig>().Sections.GetValueOrDefault("twin")));
        }

        services.AddSampleStage<AnomalyStage>(new StageOptions(Capacity: 256, FullMode: QueueFullMode.DropOldest));
        return services;
    }
}
