using EdgeTwin.Agent.Hosting;
using EdgeTwin.Twin.Models.Maintenance;
using Microsoft.Extensions.DependencyInjection;

namespace EdgeTwin.Agent.Twin.Models;

public static class MaintenanceExtensions
{
    /// <summary>
    /// Adds the maintenance stage (<c>models.maintenance</c>). Needs <see cref="ModelsExtensions.AddModels"/>; uses the
    /// <see cref="IUnplannedFailureCostModel"/> registered in DI (the line twin), if any, for downtime and cost.
    /// </summary>
    public static IServiceCollection AddMaintenance(this IServiceCollection services)
    {
        services.AddSingleton(sp => new MaintenanceStage(
            sp.GetRequiredService<AgentRuntime>(),
            sp.GetRequiredService<ModelsConfig>(),
            sp.GetRequiredService<EdgeTwin.Twin.Models.ModelCatalog>(),
            sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<MaintenanceStage>>(),
            sp.GetService<IUnplannedFailureCostModel>(),
            sp.GetService<System.Diagnostics.Metrics.IMeterFactory>()));
        services.AddSingleton(new SampleStageRegistration(sp => sp.GetRequiredService<MaintenanceStage>(), EdgeTwin.Core.Pipeline.StageOptions.Default));
        return services;
    }
}
