using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.Twin.Setpoints;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Samples;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Twin.Thermal;

public static class ThermalTwinExtensions
{
    /// <summary>The live twin's state over restarts (<see cref="ThermalTwinOptions.StateFile"/>), in the outbox's directory.</summary>
    public const string StateFileName = "thermal-twin.json";

    /// <summary>
    /// Adds the live thermal twin behind the pipeline (<see cref="ThermalTwinStage"/>): built from the site config's rooms,
    /// racks and cooling units, fed by the samples their devices produce, publishing calibration, hot-spot and live
    /// <c>cooling_failure</c> events to the event hub (and so to the outbox, the uplinks and the alerting rules). A site
    /// without racks gets a stage that does nothing. Its queue drops the oldest batch when full: the twin only wants the
    /// latest readings and must never hold back polling.
    /// Configured by the site config's <c>thermal_twin:</c> section (<see cref="ThermalTwinConfig"/>; <paramref name="options"/>,
    /// when given, replaces its twin settings, as the demo does). Also adds the cooling optimiser and set-point control
    /// (<see cref="SetpointController"/>): advisory recommendations, and writes only when <c>setpoint_control.enabled</c>.
    /// With the outbox registered (<c>AddStoreAndForward</c>), the twin keeps its units seen running and the cooling
    /// failure in progress over restarts in <see cref="StateFileName"/> next to it (unless the options name a file).
    /// Registers <see cref="ThermalFailureConsequence"/>, so a cooling unit's maintenance prediction says what its failure
    /// would do to the room.
    /// </summary>
    public static IServiceCollection AddThermalTwin(this IServiceCollection services, ThermalTwinOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddSingleton(sp => ThermalTwinConfig.From(sp.GetRequiredService<AgentRuntime>().Config));
        services.AddSingleton(sp =>
        {
            var runtime = sp.GetRequiredService<AgentRuntime>();
            var twin = options ?? sp.GetRequiredService<ThermalTwinConfig>().Twin;
            if (twin.StateFile is null && sp.GetService<StoreAndForward.StoreAndForwardOptions>() is { } outbox)
            {
                // Kept next to the outbox (the agent's state directory), as the alert state is.
                twin = twin with { StateFile = Path.Combine(StoreAndForward.StoreAndForwardOptions.StateDirectory(runtime.Config, outbox), StateFileName) };
            }

            return new ThermalTwinStage(
                runtime.Config,
                runtime.Registry,
                new RuntimeEventSink(runtime),
                sp.GetRequiredService<ILogger<ThermalTwinStage>>(),
                twin,
                sp.GetService<System.Diagnostics.Metrics.IMeterFactory>());
        });
        services.AddSingleton(new SampleStageRegistration(
            sp => sp.GetRequiredService<ThermalTwinConfig>().Enabled ? sp.GetRequiredService<ThermalTwinStage>() : new DisabledStage(),
            new StageOptions(Capacity: 256, FullMode: QueueFullMode.DropOldest)));
        // Cooling units' maintenance predictions say what the unit's failure would do to its room (AddMaintenance asks).
        services.AddSingleton<EdgeTwin.Twin.Models.Maintenance.IFailureConsequenceModel>(sp => sp.GetRequiredService<ThermalTwinConfig>().Enabled
            ? new ThermalFailureConsequence(sp.GetRequiredService<ThermalTwinStage>(), sp.GetRequiredService<ILogger<ThermalFailureConsequence>>())
            : new NoConsequence());
        services.AddSingleton(sp => new SetpointMetrics(sp.GetService<System.Diagnostics.Metrics.IMeterFactory>()));
        services.AddSingleton(sp =>
        {
            var runtime = sp.GetRequiredService<AgentRuntime>();
            return new SetpointController(
                runtime,
                sp.GetRequiredService<ThermalTwinStage>(),
                sp.GetRequiredService<ThermalTwinConfig>(),
                new RuntimeEventSink(runtime),
                sp.GetRequiredService<ILoggerFactory>(),
                sp.GetRequiredService<SetpointMetrics>(),
                sp.GetService<Sources.Modbus.ModbusBusRegistry>());
        });
        services.AddSingleton<Microsoft.Extensions.Hosting.IHostedService>(sp => sp.GetRequiredService<ThermalTwinConfig>().Enabled ? sp.GetRequiredService<SetpointController>() : new DisabledService());
        return services;
    }

    // The event hub is created after the stages; publish through the runtime once it exists.
    private sealed class RuntimeEventSink(AgentRuntime runtime) : IEventSink
    {
        public ValueTask PublishAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken) =>
            runtime.Events is { } hub ? hub.PublishAsync(edgeEvent, cancellationToken) : ValueTask.CompletedTask;
    }

    /// <summary><c>thermal_twin.enabled: false</c>: the stage takes nothing.</summary>
    private sealed class DisabledStage : ISampleStage
    {
        public string Name => "thermal-twin (disabled)";

        public ValueTask ProcessAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;
    }

    /// <summary><c>thermal_twin.enabled: false</c>: no twin to ask, so a prediction carries no consequence.</summary>
    private sealed class NoConsequence : EdgeTwin.Twin.Models.Maintenance.IFailureConsequenceModel
    {
        public EdgeTwin.Twin.Models.Maintenance.FailureConsequence? IfFailed(string asset, TimeSpan outage) => null;
    }

    private sealed class DisabledService : Microsoft.Extensions.Hosting.BackgroundService
    {
        protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.CompletedTask;
    }
}
