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
    /// oldest batch when full: detection must never hold back polling or the outbox. With the outbox registered
    /// (<c>AddStoreAndForward</c>) the detectors' learned state is kept over restarts in <see cref="AnomalyStateFile.FileName"/>
    /// next to it, unless <c>twin.anomaly.state</c> names another file or turns it off.
    /// </summary>
    public static IServiceCollection AddTwinModels(this IServiceCollection services, AnomalyConfig? anomaly = null)
    {
        services.AddTwinSectionConfig(anomaly, AnomalyConfig.From);
        services.TryAddSingleton(sp =>
        {
            var state = sp.GetRequiredService<AnomalyConfig>().State;
            return new AnomalyStateLocation(state.Enabled ? StateFileLocation.Resolve(sp, state.File, AnomalyStateFile.FileName) : null);
        });
        services.AddSampleStage<AnomalyStage>(new StageOptions(Capacity: 256, FullMode: QueueFullMode.DropOldest));
        return services;
    }

    /// <summary>Registers <paramref name="given"/>, else (once) the config <paramref name="from"/> reads from the site config's <c>twin</c> section.</summary>
    internal static void AddTwinSectionConfig<T>(this IServiceCollection services, T? given, Func<ConfigMapping?, T> from)
        where T : class
    {
        if (given is not null)
        {
            services.AddSingleton(given);
        }
        else
        {
            services.TryAddSingleton(sp => from(sp.GetRequiredService<SiteConfig>().Sections.GetValueOrDefault("twin")));
        }
    }
}
