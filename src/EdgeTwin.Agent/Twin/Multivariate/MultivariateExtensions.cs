using EdgeTwin.Agent.Hosting;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Agent.Twin.Multivariate;
using EdgeTwin.Twin.Models;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace EdgeTwin.Agent.Twin;

// In EdgeTwin.Agent.Twin (beside AddTwinModels) so the hosts wire it with one line and no new using.
public static class MultivariateExtensions
{
    /// <summary>
    /// Adds the multivariate anomaly stage for the groups of <c>twin: multivariate:</c> (or <paramref name="config"/>), using
    /// the models catalog of <c>AddModels()</c>. Like the streaming detector, its queue drops the oldest batch when full.
    /// </summary>
    public static IServiceCollection AddMultivariateAnomaly(this IServiceCollection services, MultivariateConfig? config = null)
    {
        services.AddTwinSectionConfig(config, MultivariateConfig.From);

        services.AddSingleton(sp => new MultivariateAnomalyStage(
            sp.GetRequiredService<AgentRuntime>(),
            sp.GetRequiredService<MultivariateConfig>(),
            sp.GetService<ModelCatalog>(),
            sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<MultivariateAnomalyStage>>(),
            sp.GetService<System.Diagnostics.Metrics.IMeterFactory>()));
        services.AddSingleton(new SampleStageRegistration(sp => sp.GetRequiredService<MultivariateAnomalyStage>(), new StageOptions(Capacity: 256, FullMode: QueueFullMode.DropOldest)));
        return services;
    }
}
