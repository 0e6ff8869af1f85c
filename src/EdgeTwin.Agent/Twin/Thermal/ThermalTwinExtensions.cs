using EdgeTwin.Agent.Hosting;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Pipeline;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Twin.Thermal;

public static class ThermalTwinExtensions
{
    /// <summary>
    /// Adds the live thermal twin behind the pipeline (<see cref="ThermalTwinStage"/>): built from the site config's rooms,
    /// racks and cooling units, fed by the samples their devices produce, publishing calibration, hot-spot and live
    /// <c>cooling_failure</c> events to the event hub (and so to the outbox, the uplinks and the alerting rules). A site
    /// without racks gets a stage that does nothing. Its queue drops the oldest batch when full: the twin only wants the
    /// latest readings and must never hold back polling.
    /// </summary>
    public static IServiceCollection AddThermalTwin(this IServiceCollection services, ThermalTwinOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddSingleton(sp =>
        {
            var runtime = sp.GetRequiredService<AgentRuntime>();
            return new ThermalTwinStage(
                runtime.Config,
                runtime.Registry,
                new RuntimeEventSink(runtime),
                sp.GetRequiredService<ILogger<ThermalTwinStage>>(),
                options,
                sp.GetService<System.Diagnostics.Metrics.IMeterFactory>());
        });
        services.AddSingleton(new SampleStageRegistration(sp => sp.GetRequiredService<ThermalTwinStage>(), new StageOptions(Capacity: 256, FullMode: QueueFullMode.DropOldest)));
        return services;
    }

    // The event hub is created after the stages; publish through the runtime once it exists.
    private sealed class RuntimeEventSink(AgentRuntime runtime) : IEventSink
    {
        public ValueTask PublishAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken) =>
            runtime.Events is { } hub ? hub.PublishAsync(edgeEvent, cancellationToken) : ValueTask.CompletedTask;
    }
}
