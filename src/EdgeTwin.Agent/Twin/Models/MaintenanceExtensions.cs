using EdgeTwin.Agent.Hosting;
using EdgeTwin.Twin.Models.Maintenance;
using Microsoft.Extensions.DependencyInjection;

namespace EdgeTwin.Agent.Twin.Models;

public static class MaintenanceExtensions
{
    /// <summary>
    /// Adds the maintenance stage (<c>models.maintenance</c>). Needs <see cref="ModelsExtensions.AddModels"/>; uses the
    /// <see cref="IUnplannedFailureCostModel"/> registered in DI (the line twin), if any, for downtime and cost, and the
    /// <see cref="IFailureConsequenceModel"/> (the thermal twin), if any, for what a cooling unit's failure would do. With the
    /// outbox registered, each machine's history is kept over restarts in <see cref="MaintenanceStage.StateFileName"/> next to it.
    /// </summary>
    public static IServiceCollection AddMaintenance(this IServiceCollection services)
    {
        services.AddSingleton(sp => new MaintenanceStage(
            sp.GetRequiredService<AgentRuntime>(),
            sp.GetRequiredService<ModelsConfig>(),
            sp.GetRequiredService<EdgeTwin.Twin.Models.ModelCatalog>(),
            sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<MaintenanceStage>>(),
            sp.GetService<IUnplannedFailureCostModel>(),
            sp.GetService<System.Diagnostics.Metrics.IMeterFactory>(),
            StatePath(sp),
            sp.GetService<IFailureConsequenceModel>()));
        services.AddSingleton(new SampleStageRegistration(sp => sp.GetRequiredService<MaintenanceStage>(), EdgeTwin.Core.Pipeline.StageOptions.Default));
        return services;
    }

    /// <summary>Next to the outbox (the agent's state directory), as the alert and anomaly state are; none without an outbox.</summary>
    private static string? StatePath(IServiceProvider sp) => StateFileLocation.Resolve(sp, null, MaintenanceStage.StateFileName);
}
