using System.Runtime.InteropServices;
using EdgeTwin.Core.Config;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Hosting;

/// <summary>
/// SIGHUP does not stop the agent. The agent has no config reload (its stages, sources and outbox are built once from
/// the validated config), and the default action of SIGHUP killed the process uncleanly (exit 129, no drain, no clean
/// outbox close); systemd counts a death by SIGHUP as a clean exit, so <c>Restart=on-failure</c> did not restart it and
/// the gateway stopped collecting. Now the signal is logged as not supported and the agent keeps running; a new config
/// takes a restart (<c>systemctl restart edgetwin</c>). Registered from start to stop of the host.
/// </summary>
internal sealed class SighupHandler(SiteConfig config, ILogger<SighupHandler> logger) : IHostedService, IDisposable
{
    private PosixSignalRegistration? _registration;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!OperatingSystem.IsWindows())
        {
            _registration = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
            {
                context.Cancel = true; // keep running: the default action would end the process
                AgentLog.SighupIgnored(logger, config.SourcePath ?? "(built in code)");
            });
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _registration?.Dispose();
        _registration = null;
    }
}
