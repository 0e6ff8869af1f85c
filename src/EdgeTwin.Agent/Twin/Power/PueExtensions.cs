using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.Twin.Power;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Samples;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

// In EdgeTwin.Agent.Twin (beside AddTwinModels) so the hosts wire it with one line and no new using.
namespace EdgeTwin.Agent.Twin;

public static class PueExtensions
{
    /// <summary>
    /// Adds the live PUE (<see cref="PueStage"/>): when <c>site.power.facility_meter</c> names a meter and every UPS (or,
    /// failing that, every PDU) reads its output power, the series <c>{site}/pue</c> is written back into the pipeline; and
    /// <c>{site}/ppue{room=…}</c> for every room with <c>power.infrastructure_meters</c> whose PDUs all read their power.
    /// Its queue drops the oldest batch when full: the PUE only wants the latest readings.
    /// </summary>
    public static IServiceCollection AddPue(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddSingleton(sp =>
        {
            var runtime = sp.GetRequiredService<AgentRuntime>();
            return new PueStage(runtime.Config, runtime.Registry, sp.GetRequiredService<ILogger<PueStage>>(), sp.GetService<System.Diagnostics.Metrics.IMeterFactory>());
        });
        services.AddSingleton(new SampleStageRegistration(sp => sp.GetRequiredService<PueStage>(), new StageOptions(Capacity: 64, FullMode: QueueFullMode.DropOldest)));
        services.AddSingleton<IHostedService>(sp => new Publisher(sp.GetRequiredService<PueStage>(), sp.GetRequiredService<AgentRuntime>()));
        return services;
    }

    private sealed class Publisher(PueStage stage, AgentRuntime runtime) : BackgroundService
    {
        protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
            !stage.Publishes ? Task.CompletedTask : stage.PublishAsync(new RuntimeSink(runtime), stoppingToken);
    }

    // The pipeline is created after the stages; the stage only produces once the pipeline feeds it, so it exists by then.
    private sealed class RuntimeSink(AgentRuntime runtime) : ISampleSink
    {
        public ValueTask WriteAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken) =>
            runtime.Pipeline is { } pipeline ? pipeline.WriteAsync(samples, cancellationToken) : ValueTask.CompletedTask;
    }
}
