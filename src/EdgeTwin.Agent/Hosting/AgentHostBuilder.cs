using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Scheduling;
using EdgeTwin.Core.Sources;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Hosting;

/// <summary>
/// Builds the agent as a Generic Host from a validated <see cref="SiteConfig"/>. <c>edgetwin run</c>, the demo and the
/// integration tests all use this, so they run the same agent; hooks in <see cref="AgentHostOptions"/> let them watch
/// samples and events or add stages. <c>host.Services.GetRequiredService&lt;AgentRuntime&gt;()</c> gives the live state.
/// </summary>
public static class AgentHostBuilder
{
    public static IHost Build(SiteConfig config, AgentHostOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        options ??= new AgentHostOptions();
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { ApplicationName = "edgetwin" });

        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(options.MinimumLogLevel);
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
            o.UseUtcTimestamp = true;
        });
        options.ConfigureLogging?.Invoke(builder.Logging);

        AddAgent(builder.Services, config, options);
        if (options.UseSystemd)
        {
            // Type=notify readiness (sent when every hosted service has started) and journald log format under systemd.
            builder.Services.AddSystemd();
            builder.Services.AddHostedService<ReadinessNotifier>();
            builder.Services.AddHostedService<WatchdogNotifier>();
        }

        options.ConfigureServices?.Invoke(builder.Services);
        return builder.Build();
    }

    /// <summary>Registers the agent's services on an existing collection (for hosts that compose more than the agent).</summary>
    public static IServiceCollection AddAgent(IServiceCollection services, SiteConfig config, AgentHostOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddMetrics();
        services.Configure<HostOptions>(h =>
        {
            h.ShutdownTimeout = options.ShutdownTimeout;
            h.BackgroundServiceExceptionBehavior = BackgroundServiceExceptionBehavior.StopHost;
        });
        services.AddSingleton(options);
        services.AddSingleton(config);
        services.AddSingleton(options.TimeProvider);
        services.TryAddSingleton<SeriesRegistry>();
        services.AddSingleton(sp => new AgentRuntime(config, sp.GetRequiredService<SeriesRegistry>(), options.TimeProvider));
        services.AddSingleton(sp => new PipelineMetrics(sp.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>()));
        services.AddSingleton(sp => new SchedulerMetrics(sp.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>()));
        services.AddSingleton<AgentMetrics>();
        services.AddSingleton<ProcessMetrics>();
        services.AddSingleton<PrometheusEndpointService>();
        services.TryAddSingleton<SourceFactories>();
        if (options.DiscoverSourceFactories)
        {
            AddDiscoveredSourceFactories(services);
        }

        // First, so a SIGHUP while the sources start is already handled (and it is stopped last).
        services.AddHostedService<SighupHandler>();
        // Before the sources and stages: their first measurements are counted, and a port in use fails the start early.
        services.AddHostedService(sp => sp.GetRequiredService<PrometheusEndpointService>());
        services.AddHostedService<AgentService>();
        // After the agent: it needs the event hub, and stops first, before the hub takes no more events.
        services.AddSingleton(sp => new ClockStepWatcher(options.TimeProvider, sp.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), sp.GetRequiredService<ILogger<ClockStepWatcher>>(), config.Site.GatewayId, options.KernelClock ?? EdgeTwin.Sensors.Host.KernelClock.Read, options.BootId ?? BootId.Read, options.TimesyncDirectory ?? ClockStepWatcher.TimesyncDirectory,
            new EdgeTwin.Sensors.Host.ChronyCommandClient(options.ChronyCommand ?? EdgeTwin.Sensors.Host.ChronyCommandClient.DefaultEndPoint, EdgeTwin.Sensors.Host.ChronyCommandClient.DefaultTimeout)));
        services.AddHostedService<ClockStepService>();
        return services;
    }

    /// <summary>
    /// Registers every concrete <see cref="ISourceFactory"/> in the agent assembly and the EdgeTwin assemblies it
    /// references, so a protocol plugs in by adding a class (constructor parameters come from DI).
    /// </summary>
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "EdgeTwin assemblies are rooted in the agent.")]
    [UnconditionalSuppressMessage("Trimming", "IL2072", Justification = "EdgeTwin assemblies are rooted in the agent.")]
    public static IServiceCollection AddDiscoveredSourceFactories(IServiceCollection services)
    {
        foreach (var type in DiscoverSourceFactoryTypes())
        {
            services.TryAddEnumerable(ServiceDescriptor.Singleton(typeof(ISourceFactory), type));
        }

        services.TryAddSingleton<SourceFactories>();
        services.TryAddSingleton<Sources.Modbus.ModbusBusRegistry>();
        return services;
    }

    /// <summary>
    /// The EdgeTwin libraries the agent ships with. Named here because the compiler drops references to assemblies the
    /// agent's own code never touches (a library that only contributes a factory would otherwise be invisible).
    /// </summary>
    private static readonly string[] Libraries =
        ["EdgeTwin.Core", "EdgeTwin.Snmp", "EdgeTwin.Modbus", "EdgeTwin.Sensors", "EdgeTwin.Twin", "EdgeTwin.Outbox", "EdgeTwin.Uplink", "EdgeTwin.Simulator"];

    [RequiresUnreferencedCode("Scans assemblies for source factories.")]
    internal static IReadOnlyList<Type> DiscoverSourceFactoryTypes()
    {
        var assemblies = new List<Assembly> { typeof(AgentHostBuilder).Assembly };
        foreach (var name in Libraries)
        {
            try
            {
                assemblies.Add(Assembly.Load(new AssemblyName(name)));
            }
            catch (FileNotFoundException)
            {
                // A trimmed or partial build without that library: it contributes no factory.
            }
        }

        return
        [
            .. assemblies
                .SelectMany(a => a.GetTypes())
                .Where(t => t is { IsClass: true, IsAbstract: false, ContainsGenericParameters: false } && typeof(ISourceFactory).IsAssignableFrom(t))
                .OrderBy(t => t.FullName, StringComparer.Ordinal),
        ];
    }
}
