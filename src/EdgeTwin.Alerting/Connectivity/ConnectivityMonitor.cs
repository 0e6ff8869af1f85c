using System.Net.Sockets;
using EdgeTwin.Alerting.Rules;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Alerting.Connectivity;

/// <summary>One change of the uplink's reachability.</summary>
public sealed record ConnectivityChange(UplinkState State, DateTimeOffset Since, string Reason);

/// <summary>
/// Whether the centre can see us: an active probe (a TCP connect to the broker, every <c>interval</c>, with its own
/// timeout) combined with what the uplink client reports. A check fails when the probe fails or when the uplink reports
/// that it delivers nothing (a broker that accepts TCP but refuses the client: credentials, TLS, ACL); one failed check is
/// <c>degraded</c>, <c>offline_after</c> in a row <c>offline</c>, and only a good probe with a delivering uplink is
/// <c>online</c> again (not the moment the broker's port answers while the uplink still waits out its backoff).
/// Every change is kept with its time.
/// </summary>
public sealed partial class ConnectivityMonitor
{
    private const int HistorySize = 100;

    private readonly ConnectivityConfig _config;
    private readonly Func<bool?> _uplinkHealthy;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly Queue<ConnectivityChange> _history = new();
    private int _failures;
    private UplinkState _state = UplinkState.Online;
    private DateTimeOffset _since;
    private bool _reported;
    private bool _monitored;
    private bool _lastProbeFailed;

    /// <param name="config">Probe target and thresholds.</param>
    /// <param name="uplinkHealthy">The uplink client's own view: true healthy, false failing, null unknown (no uplink).</param>
    public ConnectivityMonitor(ConnectivityConfig config, Func<bool?>? uplinkHealthy = null, TimeProvider? time = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _uplinkHealthy = uplinkHealthy ?? (() => null);
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _since = _time.GetUtcNow();
    }

    /// <summary>
    /// Starts from the state saved before a restart, so an outage that outlives the restart keeps its real start (and
    /// is offline at the first failed check instead of degraded again). The first check still reports, and a good one
    /// is online at once.
    /// </summary>
    public void Seed(UplinkState state, DateTimeOffset since)
    {
        lock (_gate)
        {
            _state = state;
            _since = since;
            _failures = state switch
            {
                UplinkState.Offline => _config.OfflineAfter,
                UplinkState.Degraded => 1,
                _ => 0,
            };
        }
    }

    /// <summary>Raised outside the lock on every change.</summary>
    public event Action<ConnectivityChange>? Changed;

    /// <summary>
    /// Raised (outside the lock) when a probe connects after one that failed: the probe target is reachable again. The
    /// agent uses it to end the uplink's reconnect backoff early; only the edge counts, so a broker that accepts TCP but
    /// refuses the client is not retried once per probe.
    /// </summary>
    public event Action? ProbeRecovered;

    public UplinkState State
    {
        get
        {
            lock (_gate)
            {
                return _state;
            }
        }
    }

    public DateTimeOffset Since
    {
        get
        {
            lock (_gate)
            {
                return _since;
            }
        }
    }

    public IReadOnlyList<ConnectivityChange> History()
    {
        lock (_gate)
        {
            return [.. _history];
        }
    }

    /// <summary>
    /// False until <see cref="RunAsync"/> starts or a check is observed: with neither a probe target nor an uplink nothing watches the uplink, and
    /// <see cref="State"/>'s <c>online</c> is only the starting value (<c>edgetwin alerts list</c> says "not monitored").
    /// </summary>
    public bool Monitored => Volatile.Read(ref _monitored);

    /// <summary>Probes every interval until stopped.</summary>
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        Volatile.Write(ref _monitored, true);
        using var timer = new PeriodicTimer(_config.Interval, _time);
        do
        {
            var ok = _config.ProbeHost is null || await ProbeAsync(stoppingToken).ConfigureAwait(false);
            Observe(ok, _uplinkHealthy());
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    /// <summary>One TCP connect to the probe target (then to each further one, until one answers), each bounded by the probe timeout.</summary>
    public async Task<bool> ProbeAsync(CancellationToken cancellationToken)
    {
        if (_config.ProbeHost is not { } host)
        {
            return true;
        }

        if (await ProbeAsync(host, _config.ProbePort, cancellationToken).ConfigureAwait(false))
        {
            return true;
        }

        // An HA broker pair: the uplink fails over to the next broker, so the centre is reachable while any answers.
        foreach (var (other, port) in _config.AlsoProbe)
        {
            if (await ProbeAsync(other, port, cancellationToken).ConfigureAwait(false))
            {
                return true;
            }
        }

        return false;
    }

    private async Task<bool> ProbeAsync(string host, int port, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_config.Timeout);
        using var client = new TcpClient();
        try
        {
            await client.ConnectAsync(host, port, timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Feeds one probe result and the uplink's view; returns the state after it.</summary>
    public UplinkState Observe(bool probeOk, bool? uplinkHealthy)
    {
        var (state, recovered) = Update(probeOk, uplinkHealthy);
        if (recovered)
        {
            ProbeRecovered?.Invoke();
        }

        return state;
    }

    private (UplinkState State, bool ProbeRecovered) Update(bool probeOk, bool? uplinkHealthy)
    {
        ConnectivityChange? change = null;
        var first = false;
        bool recovered;
        Volatile.Write(ref _monitored, true);
        lock (_gate)
        {
            recovered = probeOk && _lastProbeFailed;
            _lastProbeFailed = !probeOk;
            var delivering = uplinkHealthy != false;
            _failures = probeOk && delivering ? 0 : _failures + 1;
            var next = _failures >= _config.OfflineAfter ? UplinkState.Offline
                : _failures > 0 ? UplinkState.Degraded
                : UplinkState.Online;
            // No probe host: only the uplink's own health is watched (the text named ":0" then, and threw once bracketed).
            var probe = _config.ProbeHost is { } host
                ? EdgeTwin.Core.Config.EndpointText.Of(host, _config.ProbePort) + (_config.AlsoProbe.Count == 0 ? "" : $" and {string.Join(", ", _config.AlsoProbe.Select(p => EdgeTwin.Core.Config.EndpointText.Of(p.Host, p.Port)))}")
                : null;
            var reason = !probeOk
                ? $"{_failures} failed probe{(_failures == 1 ? "" : "s")} of {probe ?? "the uplink's peer"}"
                : delivering
                    ? probe is null ? "the uplink delivers" : "probe connects and the uplink delivers"
                    : $"{(probe is null ? "the uplink" : probe + " answers but the uplink")} has delivered nothing for {_failures} check{(_failures == 1 ? "" : "s")} (refused login, TLS or ACL? see the uplink's log)";
            if (next != _state)
            {
                _state = next;
                _since = _time.GetUtcNow();
                change = new ConnectivityChange(next, _since, reason);
                _history.Enqueue(change);
                while (_history.Count > HistorySize)
                {
                    _history.Dequeue();
                }
            }

            if (change is null)
            {
                if (_reported)
                {
                    return (_state, recovered);
                }

                // The first result is told even without a change: an uplink alert restored firing from before a
                // restart must clear when the uplink turns out to be fine.
                // A failed first check of an outage that outlived a restart gives its reason, as the uplink alert shows it.
                first = true;
                change = new ConnectivityChange(_state, _since, _failures > 0 ? reason : "first probe");
            }

            _reported = true;
        }

        if (!first)
        {
            LogChanged(change.State.ToWireName(), change.Reason);
        }

        Changed?.Invoke(change);
        return (change.State, recovered);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "uplink connectivity: {State} ({Reason})")]
    private partial void LogChanged(string state, string reason);
}
