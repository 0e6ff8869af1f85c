using EdgeTwin.Core.Pipeline;
using Microsoft.Extensions.DependencyInjection;

namespace EdgeTwin.Agent.Hosting;

/// <summary>A sample stage to add to the agent's pipeline, resolved from DI when the agent starts.</summary>
public sealed record SampleStageRegistration(Func<IServiceProvider, ISampleStage> Create, StageOptions Options);

/// <summary>An event stage to add to the agent's event hub.</summary>
public sealed record EventStageRegistration(Func<IServiceProvider, IEventStage> Create, int Capacity = 1024);

public static class StageServiceCollectionExtensions
{
    /// <summary>
    /// Adds a stage behind the sources (twin models, alerting, summaries → outbox). This is how the other parts of
    /// EdgeTwin plug into the agent: their <c>AddX()</c> extension calls this.
    /// </summary>
    public static IServiceCollection AddSampleStage<T>(this IServiceCollection services, StageOptions? options = null)
        where T : class, ISampleStage
    {
        services.AddSingleton<T>();
        services.AddSingleton(new SampleStageRegistration(sp => sp.GetRequiredService<T>(), options ?? StageOptions.Default));
        return services;
    }

    public static IServiceCollection AddSampleStage(this IServiceCollection services, ISampleStage stage, StageOptions? options = null)
    {
        services.AddSingleton(new SampleStageRegistration(_ => stage, options ?? StageOptions.Default));
        return services;
    }

    public static IServiceCollection AddEventStage<T>(this IServiceCollection services, int capacity = 1024)
        where T : class, IEventStage
    {
        services.AddSingleton<T>();
        services.AddSingleton(new EventStageRegistration(sp => sp.GetRequiredService<T>(), capacity));
        return services;
    }

    public static IServiceCollection AddEventStage(this IServiceCollection services, IEventStage stage, int capacity = 1024)
    {
        services.AddSingleton(new EventStageRegistration(_ => stage, capacity));
        return services;
    }
}
