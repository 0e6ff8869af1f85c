using EdgeTwin.Agent.Hosting;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Twin.Line;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Line;

public static class LineTwinExtensions
{
    /// <summary>
    /// Adds the line twin stage when the site config has a <c>line:</c> section (read from the config file, since the
    /// loader keeps only the sections it knows). Its twin-state messages go to the agent's event hub (and so to the
    /// outbox and uplinks). Without a section nothing is registered. Call from <c>ConfigureServices</c>.
    /// </summary>
    public static IServiceCollection AddLineTwin(this IServiceCollection services, SiteConfig config, TimeSpan? publishEvery = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(config);
        if (config.SourcePath is not { } path || !File.Exists(path)) return services;
        var d = new ConfigDiagnostics();
        var root = ConfigReader.For(YamlTree.Parse(File.ReadAllText(path), path, d), d);
        if (root?.Mapping["line"] is not ConfigMapping section) return services;
        var line = LineTwinConfig.Read(new ConfigReader(section, d));
        if (!d.IsEmpty || line is null) throw new ConfigException(d.Sorted());
        services.AddSingleton(line);
        services.AddSingleton(new SampleStageRegistration(
            sp =>
            {
                var runtime = sp.GetRequiredService<AgentRuntime>();
                return new LineTwinStage(line, runtime.Registry, new RuntimeEventSink(runtime), sp.GetRequiredService<ILogger<LineTwinStage>>(), publishEvery);
            },
            new StageOptions(Capacity: 256, FullMode: QueueFullMode.DropOldest)));
        return services;
    }

    // The event hub is created after the stages; publish through the runtime once it exists.
    private sealed class RuntimeEventSink(AgentRuntime runtime) : IEventSink
    {
        public ValueTask PublishAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken) =>
            runtime.Events is { } hub ? hub.PublishAsync(edgeEvent, cancellationToken) : ValueTask.CompletedTask;
    }
}
