using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.Twin.Requests;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.Agent.Twin.Thermal;
using EdgeTwin.Core.Events;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

// In EdgeTwin.Agent.Twin (beside AddTwinModels) so the hosts that already import it need no new using.
namespace EdgeTwin.Agent.Twin;

public static class TwinRequestsExtensions
{
    /// <summary>
    /// Adds the MQTT 5 request/response server for the central twins (<see cref="TwinRequestServer"/>): on the broker of
    /// <c>uplinks.mqtt</c> (or the store-and-forward override, as the demo's embedded broker), answering what-ifs on the
    /// live thermal twin (<c>AddThermalTwin()</c>) and line twin (<c>AddLineTwin()</c>, when the site has a line). Settings: the <c>twin_requests:</c> section. Off, with a log line,
    /// without an MQTT 5 uplink.
    /// </summary>
    public static IServiceCollection AddTwinRequests(this IServiceCollection services, TwinRequestsConfig? config = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddSingleton(sp =>
        {
            var runtime = sp.GetRequiredService<AgentRuntime>();
            var site = runtime.Config;
            var storeAndForward = sp.GetService<StoreAndForwardOptions>();
            var uplinks = storeAndForward?.Uplinks ?? UplinksConfig.From(site, StoreAndForwardOptions.StateDirectory(site, storeAndForward));
            return new TwinRequestServer(
                config ?? TwinRequestsConfig.From(site),
                uplinks.Mqtt,
                sp.GetService<ThermalTwinConfig>() is { Enabled: false } ? null : sp.GetService<ThermalTwinStage>(),
                new RuntimeEventSink(runtime),
                sp.GetRequiredService<ILogger<TwinRequestServer>>(),
                sp.GetService<System.Diagnostics.Metrics.IMeterFactory>(),
                sp.GetService<EdgeTwin.Twin.Line.LineTwinStage>());
        });
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<TwinRequestServer>());
        return services;
    }

    // The event hub is created after the services; publish through the runtime once it exists.
    private sealed class RuntimeEventSink(AgentRuntime runtime) : IEventSink
    {
        public ValueTask PublishAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken) =>
            runtime.Events is { } hub ? hub.PublishAsync(edgeEvent, cancellationToken) : ValueTask.CompletedTask;
    }
}
