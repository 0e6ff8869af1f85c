using System.Diagnostics.Metrics;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.Twin;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Twin.Line;
using EdgeTwin.Twin.Models.Maintenance;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Line;

public static class LineTwinExtensions
{
    /// <summary>
    /// Adds the line twin stage when the site config has a <c>line:</c> section (<see cref="SiteConfig.Sections"/>, or read
    /// from the config file when the loader did not keep it). Its twin-state messages go to the agent's event hub (and so
    /// to the outbox and uplinks). Registers the stage itself and the line's <see cref="IUnplannedFailureCostModel"/>, so
    /// the maintenance predictor takes downtime and cost of a failure from the line. Without a section nothing is
    /// registered. With the outbox registered (<c>AddStoreAndForward</c>) the shift's books and what the line learned are
    /// kept over restarts in <see cref="LineStateStage.FileName"/> next to it, unless <c>line.state</c> names another file
    /// or turns it off. Call from <c>ConfigureServices</c>.
    /// </summary>
    /// <param name="publishEvery">Twin-state period (default 1 min).</param>
    /// <param name="forecastEvery">End-of-shift forecast period (default 1 min).</param>
    public static IServiceCollection AddLineTwin(this IServiceCollection services, SiteConfig config, TimeSpan? publishEvery = null, TimeSpan? forecastEvery = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(config);
        var d = new ConfigDiagnostics();
        if (!config.Sections.TryGetValue("line", out var section))
        {
            if (config.SourcePath is not { } path || !File.Exists(path)) return services;
            var root = ConfigReader.For(YamlTree.Parse(File.ReadAllText(path), path, d), d);
            section = root?.Mapping["line"] as ConfigMapping;
        }

        if (section is null) return services;
        var line = LineTwinConfig.Read(new ConfigReader(section, d));
        if (!d.IsEmpty || line is null) throw new ConfigException(d.Sorted());
        services.AddSingleton(line);
        services.AddSingleton(sp =>
        {
            var runtime = sp.GetRequiredService<AgentRuntime>();
            return new LineTwinStage(line, runtime.Registry, new RuntimeEventSink(runtime), sp.GetRequiredService<ILogger<LineTwinStage>>(), publishEvery, forecastEvery);
        });
        services.AddSingleton<IUnplannedFailureCostModel>(sp =>
        {
            var stage = sp.GetRequiredService<LineTwinStage>();
            return new LineFailureCostModel(line, () => stage.LearnedLine);
        });
        services.AddSingleton(new SampleStageRegistration(
            sp =>
            {
                var stage = sp.GetRequiredService<LineTwinStage>();
                var logger = sp.GetRequiredService<ILogger<LineStateStage>>();
                if (!line.State.Enabled)
                {
                    LineStateStage.LogDisabled(logger, line.Id);
                }

                // With the outbox (the agent's state directory), the books and what the line learned are kept over restarts.
                var path = line.State.Enabled ? StateFileLocation.Resolve(sp, line.State.File, LineStateStage.FileName) : null;
                return path is null
                    ? stage
                    : new LineStateStage(stage, line.Id, path, line.State.CheckpointInterval, sp.GetRequiredService<AgentRuntime>().TimeProvider, logger, sp.GetService<IMeterFactory>());
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
