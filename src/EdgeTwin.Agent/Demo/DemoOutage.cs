using System.Globalization;
using EdgeTwin.Alerting.Connectivity;
using EdgeTwin.Outbox;

namespace EdgeTwin.Agent.Demo;

/// <summary>
/// The demo's scripted uplink outage: at <see cref="At"/> on the view's clock the embedded broker stops (its port refuses,
/// the agent's MQTT client is disconnected), for <see cref="For"/>; then it starts again on the same port and the agent
/// reconnects and replays its outbox. Whether the replay is complete is read from the broker: every outbox sequence up to
/// the last one appended before the broker came back must have arrived. Without it the demo never showed what store and
/// forward is for: the broker never went away.
/// </summary>
internal sealed class DemoOutage(TimeSpan at, TimeSpan duration, EmbeddedBroker broker, Func<OutboxStats> outbox, Func<(UplinkState State, DateTimeOffset Since)?> agentUplink)
{
    /// <summary>After the broker is back, how long the replay may take before entries the uplink says it delivered but the
    /// broker never received count as lost.</summary>
    private static readonly TimeSpan LostAfter = TimeSpan.FromSeconds(10);

    private readonly Lock _gate = new();
    private readonly List<(TimeSpan At, string Text)> _notes = [];
    private Phase _phase;
    private TimeSpan _downAt;
    private TimeSpan _backAt;
    private long _lastAtStop;
    private long _lastAtRestart;
    private long _throughAtRestart;
    private long _waitingAtRestart;
    private long _peakWaiting;

    private enum Phase
    {
        Scheduled,
        Down,
        Replaying,
        Done,
    }

    public TimeSpan At { get; } = at;

    public TimeSpan For { get; } = duration;

    /// <summary>Before the broker stops.</summary>
    public bool Scheduled
    {
        get
        {
            lock (_gate)
            {
                return _phase == Phase.Scheduled;
            }
        }
    }

    /// <summary>Between the broker stopping and the replay's verdict.</summary>
    public bool InProgress
    {
        get
        {
            lock (_gate)
            {
                return _phase is Phase.Down or Phase.Replaying;
            }
        }
    }

    /// <summary>One line per change (broker stopped, back, replay complete), with when on the view's clock.</summary>
    public IReadOnlyList<(TimeSpan At, string Text)> Notes
    {
        get
        {
            lock (_gate)
            {
                return [.. _notes];
            }
        }
    }

    /// <summary>Runs the script on the view's clock until the replay is verified or <paramref name="stoppingToken"/> ends the demo.</summary>
    public async Task RunAsync(Func<TimeSpan> elapsed, CancellationToken stoppingToken)
    {
        try
        {
            await UntilAsync(() => elapsed() >= At, stoppingToken).ConfigureAwait(false);
            var atStop = outbox().LastSequence;
            await broker.StopAsync().ConfigureAwait(false);
            lock (_gate)
            {
                _lastAtStop = atStop;
                _phase = Phase.Down;
                _downAt = elapsed();
                _notes.Add((_downAt, Inv($"uplink: the broker went away (scripted outage for {For.TotalSeconds:0} s); the agent keeps what it cannot send in its outbox")));
            }

            await UntilAsync(() => { Peak(); return elapsed() >= At + For; }, stoppingToken).ConfigureAwait(false);
            var before = outbox();
            var through = broker.Sequences.ContiguousThrough;
            await broker.RestartAsync(TimeSpan.FromSeconds(30), stoppingToken).ConfigureAwait(false);
            lock (_gate)
            {
                _phase = Phase.Replaying;
                _backAt = elapsed();
                _lastAtRestart = before.LastSequence;
                _throughAtRestart = through;
                _waitingAtRestart = before.Depth;
                _notes.Add((_backAt, Inv($"uplink: the broker is back on 127.0.0.1:{broker.Port} after {(_backAt - _downAt).TotalSeconds:0} s with {before.Depth} entries waiting; the agent reconnects and replays them")));
            }

            await UntilAsync(Verified, stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // The demo ended first; DisposeAsync of the broker stops it either way.
        }
        catch (System.Net.Sockets.SocketException ex)
        {
            // Another process took the port while it was free: the demo goes on without its broker, and says so.
            lock (_gate)
            {
                _phase = Phase.Done;
                _notes.Add((elapsed(), Inv($"uplink: the broker could not start again on 127.0.0.1:{broker.Port}: {ex.Message}")));
            }
        }

        bool Verified()
        {
            var through = broker.Sequences.ContiguousThrough;
            var acked = outbox().UplinkPositions.Values.DefaultIfEmpty(0).Min();
            var now = elapsed();
            lock (_gate)
            {
                if (through >= _lastAtRestart)
                {
                    // "none lost" within the first 80 columns: the frame cuts the rest.
                    var replayed = _lastAtRestart - _throughAtRestart;
                    _notes.Add((now, Inv($"uplink back after {(_backAt - _downAt).TotalSeconds:0} s: {replayed} entries replayed in {Math.Max(0, (now - _backAt).TotalSeconds):0} s, none lost ({_lastAtRestart - _lastAtStop} appended while it was down; the broker has every outbox sequence, no gap)")));
                    _phase = Phase.Done;
                    return true;
                }

                if (acked >= _lastAtRestart && now - _backAt > LostAfter)
                {
                    // The uplink counts them delivered, the broker never saw them.
                    _notes.Add((now, Inv($"uplink back after {(_backAt - _downAt).TotalSeconds:0} s: {_lastAtRestart - through} entries LOST (acknowledged by the uplink, never received by the broker)")));
                    _phase = Phase.Done;
                    return true;
                }

                return false;
            }
        }
    }

    /// <summary>The outage's state in one line (under 80 columns where it counts): coming, down, replaying, how it ended.</summary>
    public string? Line(TimeSpan elapsed)
    {
        var stats = outbox();
        var agent = agentUplink() is { } u ? Inv($"agent: uplink {u.State.ToString().ToLowerInvariant()} {Math.Max(0, (DateTimeOffset.UtcNow - u.Since).TotalSeconds):0} s") : "agent: uplink not monitored";
        lock (_gate)
        {
            return _phase switch
            {
                Phase.Scheduled => Inv($"uplink outage: the broker stops in {Math.Max(0, (At - elapsed).TotalSeconds):0} s, for {For.TotalSeconds:0} s"),
                Phase.Down => Inv($"UPLINK DOWN {(elapsed - _downAt).TotalSeconds:0} s of {For.TotalSeconds:0}: outbox {stats.Depth} waiting | {agent}"),
                Phase.Replaying => Inv($"UPLINK BACK {(elapsed - _backAt).TotalSeconds:0} s: replaying, outbox {stats.Depth} waiting (was {Math.Max(_peakWaiting, _waitingAtRestart)}) | {agent}"),
                _ => _notes[^1].Text,
            };
        }
    }

    private void Peak()
    {
        var depth = outbox().Depth;
        lock (_gate)
        {
            _peakWaiting = Math.Max(_peakWaiting, depth);
        }
    }

    private static async Task UntilAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        while (!condition())
        {
            await Task.Delay(TimeSpan.FromMilliseconds(250), cancellationToken).ConfigureAwait(false);
        }
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
