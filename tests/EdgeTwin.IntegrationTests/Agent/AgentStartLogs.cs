using System.Collections.Concurrent;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Core.Config;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Agent;

/// <summary>What the agent logs while it starts on a config (the host built as <c>run</c> builds it), then stops.</summary>
internal static class AgentStartLogs
{
    public static async Task<IReadOnlyList<(LogLevel Level, string Message)>> CaptureAsync(SiteConfig config, Action<IServiceCollection>? configureServices = null)
    {
        var ct = TestContext.Current.CancellationToken;
        var logs = new ConcurrentQueue<(LogLevel Level, string Message)>();
        using var host = AgentHostBuilder.Build(config, new AgentHostOptions
        {
            UseSystemd = false,
            StatusLogInterval = null,
            ConfigureServices = configureServices,
            ConfigureLogging = b => b.AddProvider(new ListLoggerProvider(logs)),
        });
        await host.StartAsync(ct);
        try
        {
            await host.Services.GetRequiredService<AgentRuntime>().Started.WaitAsync(TimeSpan.FromSeconds(30), ct);
        }
        finally
        {
            await host.StopAsync(ct);
        }

        return [.. logs];
    }
}
