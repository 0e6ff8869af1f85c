using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;

namespace EdgeTwin.Agent.Hosting;

/// <summary>
/// Sends <c>READY=1</c> / <c>STOPPING=1</c> to <c>$NOTIFY_SOCKET</c> when the host did not detect systemd itself
/// (<c>SystemdLifetime</c> only activates when systemd is the parent process; wrappers such as <c>systemd-run --pipe</c>,
/// containers or a supervising test still pass a notify socket). READY=1 goes out on <c>ApplicationStarted</c>, i.e.
/// after every hosted service — and so every source — has started.
/// </summary>
internal sealed class ReadinessNotifier(IHostApplicationLifetime lifetime) : IHostedService
{
    private readonly List<CancellationTokenRegistration> _registrations = [];

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (SystemdHelpers.IsSystemdService())
        {
            return Task.CompletedTask; // SystemdLifetime notifies.
        }

        var notifier = new SystemdNotifier();
        if (!notifier.IsEnabled)
        {
            return Task.CompletedTask;
        }

        _registrations.Add(lifetime.ApplicationStarted.Register(() => notifier.Notify(ServiceState.Ready)));
        _registrations.Add(lifetime.ApplicationStopping.Register(() => notifier.Notify(ServiceState.Stopping)));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        foreach (var r in _registrations)
        {
            r.Dispose();
        }

        return Task.CompletedTask;
    }
}
