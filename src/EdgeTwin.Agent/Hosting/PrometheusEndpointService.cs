using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Prometheus;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Hosting;

/// <summary>
/// The <c>metrics.prometheus</c> endpoint of the running agent: started before the sources (so the first polls are
/// counted), bound at start (a port in use fails the start, naming the key, the address and the file), and from then on
/// nothing a client does reaches the agent. Off when the config has no <c>metrics.prometheus.listen</c>.
/// </summary>
public sealed class PrometheusEndpointService(
    SiteConfig config,
    AgentHostOptions options,
    IMeterFactory meterFactory,
    ProcessMetrics processMetrics,
    ILogger<PrometheusEndpointService> logger) : IHostedService, IAsyncDisposable
{
    private readonly HashSet<string> _reportedCallbackErrors = new(StringComparer.Ordinal);
    private PrometheusCollector? _collector;
    private PrometheusEndpoint? _endpoint;

    /// <summary>Where the endpoint listens (with the OS's port for port 0), or null when off or not started.</summary>
    public IPEndPoint? LocalEndpoint => _endpoint?.LocalEndpoint;

    /// <summary>The collector behind the endpoint (null when off), for in-process scrapes.</summary>
    public PrometheusCollector? Collector => _collector;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var metrics = options.Metrics ?? MetricsConfig.From(config);
        if (metrics.Listen is not { } listen)
        {
            return Task.CompletedTask;
        }

        GC.KeepAlive(processMetrics);
        var collector = new PrometheusCollector(new PrometheusCollectorOptions
        {
            MaxLabelSets = metrics.MaxLabelSets,
            Scope = meterFactory,
            OnCallbackError = CallbackFailed,
        });
        try
        {
            _endpoint = new PrometheusEndpoint(listen, collector.ScrapeAsync, logger);
        }
        catch (SocketException ex)
        {
            collector.Dispose();
            throw new IOException($"cannot listen on {listen} for the Prometheus endpoint ({MetricsConfig.ListenKey} in {config.SourcePath ?? "the site config"}): {Reason(ex, listen)}", ex);
        }

        _collector = collector;
        _endpoint.Start();
        var url = $"http://{_endpoint.LocalEndpoint}/metrics";
        var note = IPAddress.IsLoopback(listen.Address) ? "" : " (not loopback: no authentication, no TLS)";
        AgentLog.MetricsListening(logger, url, note);
        return Task.CompletedTask;
    }

    private static string Reason(SocketException ex, IPEndPoint listen) => ex.SocketErrorCode switch
    {
        SocketError.AddressAlreadyInUse => $"the address is already in use (another agent or exporter? `ss -ltnp 'sport = :{listen.Port}'` names the process)",
        SocketError.AddressNotAvailable => "no interface of this gateway has that address",
        SocketError.AccessDenied => "permission denied (a port below 1024 needs CAP_NET_BIND_SERVICE)",
        _ => ex.Message,
    };

    private void CallbackFailed(Exception ex)
    {
        var inner = ex is AggregateException { InnerExceptions.Count: > 0 } a ? a.InnerExceptions[0] : ex;
        var key = inner.GetType().Name + ": " + inner.Message;
        lock (_reportedCallbackErrors)
        {
            // Once per distinct failure: a broken callback fails every scrape, every 15 s.
            if (_reportedCallbackErrors.Count >= 100 || !_reportedCallbackErrors.Add(key))
            {
                return;
            }
        }

        AgentLog.MetricsCallbackFailed(logger, key, inner);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_endpoint is { } endpoint)
        {
            _endpoint = null;
            await endpoint.DisposeAsync().ConfigureAwait(false);
        }

        _collector?.Dispose();
        _collector = null;
    }

    public async ValueTask DisposeAsync() => await StopAsync(CancellationToken.None).ConfigureAwait(false);
}
