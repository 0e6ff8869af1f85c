using EdgeTwin.Agent.Hosting;
using EdgeTwin.Core.Pipeline;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace EdgeTwin.Agent.StoreAndForward;

public static class StoreAndForwardExtensions
{
    /// <summary>
    /// Adds summaries, the LiteDB outbox (<c>outbox:</c>) and the uplinks (<c>uplinks:</c>) behind the pipeline.
    /// The outbox stage waits when its queue is full rather than dropping: nothing accepted may be lost, and the
    /// pipeline's own backpressure then shows up as queue depth, not as gaps.
    /// </summary>
    public static IServiceCollection AddStoreAndForward(this IServiceCollection services, StoreAndForwardOptions? options = null)
    {
        services.AddSingleton(options ?? new StoreAndForwardOptions());
        services.AddSingleton<StoreAndForwardService>();
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<StoreAndForwardService>());
        services.AddSingleton<OutboxStage>();
        services.AddSingleton(new SampleStageRegistration(sp => sp.GetRequiredService<OutboxStage>(), new StageOptions(Capacity: 1024, FullMode: QueueFullMode.Wait)));
        services.AddSingleton(new EventStageRegistration(sp => sp.GetRequiredService<OutboxStage>(), 4096));
        return services;
    }
}
