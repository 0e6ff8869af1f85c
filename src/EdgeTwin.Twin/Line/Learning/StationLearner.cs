using EdgeTwin.Twin.Line.Oee;

namespace EdgeTwin.Twin.Line.Learning;

/// <summary>The figures the forecast runs on for one station, and how many events they rest on.</summary>
/// <param name="MtbfSeconds">Mean operating (running) time between breakdowns; 0 = no failures known.</param>
/// <param name="MttrSeconds">Mean repair time.</param>
/// <param name="CycleSeconds">Mean effective cycle: running, micro-stop and setup time per part made.</param>
/// <param name="CycleCv">Coefficient of variation of the cycle time.</param>
/// <param name="Breakdowns">Breakdowns seen (faults of at least the micro-stop limit, ended).</param>
/// <param name="Parts">Parts seen (good + reject).</param>
public sealed record LearnedFigures(double MtbfSeconds, double MttrSeconds, double CycleSeconds, double CycleCv, int Breakdowns, long Parts, double RunningSeconds);

/// <summary>
/// Learns a station's failure, repair and cycle-time distributions online from its machine states and part counts,
/// with the configured figures as a prior that the observations outweigh as they accumulate:
/// <list type="bullet">
/// <item>MTBF: breakdowns are operation-dependent with an exponential up time, so the rate has a conjugate gamma
/// prior worth <see cref="PriorEvents"/> breakdowns at the configured MTBF: MTBF = (k·MTBF₀ + running time) / (k + n).
/// Without a configured MTBF the estimate is running time / n once a breakdown has been seen.</item>
/// <item>MTTR: the mean of the repair times (faults of at least the micro-stop limit), with the configured MTTR
/// counted as k pseudo-repairs.</item>
/// <item>Cycle: (running + micro-stop + setup time) per part made, with the ideal cycle as <see cref="PriorParts"/>
/// pseudo-parts; micro-stops and setups go into the cycle because the forecast's simulation does not model them apart.</item>
/// <item>Cycle-time CV: from the intervals between single-part counter steps while the station ran without a break
/// (Welford), with the configured CV as <see cref="PriorParts"/> pseudo-observations. Polling jitter inflates it a little.</item>
/// </list>
/// Updates are O(1) and allocation-free. Not thread-safe: fed by one stage.
/// </summary>
public sealed class StationLearner
{
    /// <summary>Weight of the configured MTBF/MTTR, in breakdowns.</summary>
    public const double PriorEvents = 1;

    /// <summary>Weight of the configured cycle time and CV, in parts.</summary>
    public const double PriorParts = 20;

    private readonly double _mtbf0;
    private readonly double _mttr0;
    private readonly double _cycle0;
    private readonly double _cv0;
    private readonly double _microStopMs;
    private MachineState _state = MachineState.Unknown;
    private long _since;
    private double _running;
    private double _cycleTime;
    private int _breakdowns;
    private double _repairs;
    private long _parts;
    private long _lastPartMs = -1;
    private bool _unbroken;
    private long _intervals;
    private double _faultOpen;
    private double _mean;
    private double _m2;
    // Inspection results while the reject counter reports (apart from _parts, which counts good parts without it too).
    private long _inspected;
    private long _rejected;

    public StationLearner(StationSpec configured, double microStopSeconds)
    {
        ArgumentNullException.ThrowIfNull(configured);
        _mtbf0 = configured.MtbfSeconds is > 0 and < double.PositiveInfinity ? configured.MtbfSeconds : 0;
        _mttr0 = configured.MttrSeconds;
        _cycle0 = configured.CycleTimeSeconds;
        _cv0 = configured.CycleTimeCv;
        _microStopMs = microStopSeconds * 1000;
    }

    /// <summary>How long a state is held without a reading before the time is not booked (the OEE books' staleAfter).</summary>
    public const long DefaultStaleMs = (long)(OeeTracker.DefaultStaleAfterSeconds * 1000);

    /// <summary>A state reading; a gap longer than <paramref name="staleMs"/> is not booked (and ends a fault), as the OEE books leave it unknown.</summary>
    public void OnState(long ms, MachineState state, long staleMs = DefaultStaleMs)
    {
        // Equal times matter: a change stamped like the keep-alive before it still ends the fault.
        if (_state != MachineState.Unknown && ms >= _since)
        {
            var gap = ms - _since;
            Book(_state, gap > staleMs ? 0 : gap, ended: state != _state || gap > staleMs);
        }

        if (state != _state) _unbroken = false;
        _state = state;
        _since = ms;
    }

    private void Book(MachineState state, long ms, bool ended)
    {
        var s = ms / 1000.0;
        switch (state)
        {
            case MachineState.Running:
                _running += s;
                _cycleTime += s;
                break;
            case MachineState.Setup:
                _cycleTime += s;
                break;
            case MachineState.Faulted:
                _faultOpen += s;
                if (ended)
                {
                    // A fault shorter than the micro-stop limit is a micro-stop: part of the effective cycle, not a breakdown.
                    if (_faultOpen * 1000 >= _microStopMs)
                    {
                        _breakdowns++;
                        _repairs += _faultOpen;
                    }
                    else
                    {
                        _cycleTime += _faultOpen;
                    }

                    _faultOpen = 0;
                }

                break;
        }
    }

    /// <summary>Moves the reading times by <paramref name="ms"/> after a wall-clock step (see <see cref="Oee.OeeTracker.Shift"/>).</summary>
    public void Shift(long ms)
    {
        _since += ms;
        if (_lastPartMs >= 0) _lastPartMs = Math.Max(0, _lastPartMs + ms);
    }

    /// <summary>
    /// Most parts of earlier shifts that a shift's own reject share is weighed against (a beta prior of this strength at
    /// the share since the agent started): early in a shift one reject in ten parts is not a 10 % rate to the shift's end.
    /// </summary>
    public const double RejectHistoryParts = 500;

    /// <summary>Inspection results since the agent started: parts counted while the station's reject counter reports.</summary>
    public long Inspected => _inspected;

    /// <summary>Of <see cref="Inspected"/>, rejects.</summary>
    public long Rejected => _rejected;

    /// <summary>Parts the counters give as inspected: good ones (while the reject counter reports) or rejects.</summary>
    public void OnInspected(long parts, bool rejected)
    {
        if (parts <= 0) return;
        _inspected += parts;
        if (rejected) _rejected += parts;
    }

    /// <summary>Weight of a configured reject rate (<c>reject_rate</c>), in parts.</summary>
    public const double PriorRejectParts = 100;

    /// <summary>
    /// The reject rate expected for the rest of a shift that has inspected <paramref name="made"/> parts with
    /// <paramref name="rejects"/> rejects: its share, weighed with up to <see cref="RejectHistoryParts"/> parts of the
    /// earlier shifts at theirs and <see cref="PriorRejectParts"/> pseudo-parts at the <paramref name="configured"/> rate
    /// ((r + k·p + k₀·p₀) / (n + k + k₀)); the shift's share alone with neither, 0 without any parts.
    /// </summary>
    public double RejectRate(long made, long rejects, double? configured = null)
    {
        double before = _inspected - made, rejectedBefore = Math.Max(0, _rejected - rejects);
        double k = Math.Min(Math.Max(0, before), RejectHistoryParts);
        double earlier = k > 0 ? Math.Clamp(rejectedBefore / before, 0, 1) : 0;
        double k0 = configured is not null ? PriorRejectParts : 0, p0 = configured ?? 0;
        double weight = made + k + k0;
        return weight > 0 ? (rejects + (k * earlier) + (k0 * p0)) / weight : 0;
    }

    /// <summary>Parts made since the last count (good + reject increments of the robust counters).</summary>
    public void OnParts(long ms, long parts)
    {
        if (parts <= 0) return;
        _parts += parts;
        // A cycle-time observation: exactly one part since the last one, the station running all the while.
        // (Never across a part stamped later than this one: a negative cycle would poison the mean and the spread.)
        if (parts == 1 && _unbroken && _lastPartMs >= 0 && ms > _lastPartMs && _state == MachineState.Running)
        {
            var x = (ms - _lastPartMs) / 1000.0;
            _intervals++;
            var d = x - _mean;
            _mean += d / _intervals;
            _m2 += d * (x - _mean);
        }

        _lastPartMs = ms;
        _unbroken = _state == MachineState.Running;
    }

    /// <summary>The figures now (the open interval up to <paramref name="nowMs"/> included in the running time).</summary>
    public LearnedFigures Figures(long nowMs)
    {
        double running = _running, cycleTime = _cycleTime;
        if (_state is MachineState.Running && nowMs > _since)
        {
            // As OnState books it: a state without a reading for longer than the stale limit is not known to have lasted.
            var open = nowMs - _since > DefaultStaleMs ? 0 : (nowMs - _since) / 1000.0;
            running += open;
            cycleTime += open;
        }

        double mtbf = _mtbf0 > 0 ? ((PriorEvents * _mtbf0) + running) / (PriorEvents + _breakdowns)
            : _breakdowns > 0 ? running / _breakdowns : 0;
        double mttr = _mttr0 > 0 ? ((PriorEvents * _mttr0) + _repairs) / (PriorEvents + _breakdowns)
            : _breakdowns > 0 ? _repairs / _breakdowns : 0;
        double cycle = ((PriorParts * _cycle0) + cycleTime) / (PriorParts + _parts);
        double cv = _cv0;
        if (_intervals >= 2 && _mean > 0)
        {
            var observed = Math.Sqrt(_m2 / (_intervals - 1)) / _mean;
            cv = ((PriorParts * _cv0) + (_intervals * observed)) / (PriorParts + _intervals);
        }

        return new LearnedFigures(mtbf, mttr, cycle, Math.Clamp(cv, 0, 1), _breakdowns, _parts, running);
    }

    /// <summary>The station with the learned figures in place of the configured ones.</summary>
    public StationSpec Apply(StationSpec configured, long nowMs)
    {
        ArgumentNullException.ThrowIfNull(configured);
        var f = Figures(nowMs);
        return configured with
        {
            CycleTimeSeconds = f.CycleSeconds,
            MtbfSeconds = f.MtbfSeconds,
            MttrSeconds = f.MtbfSeconds > 0 ? f.MttrSeconds : 0,
            CycleTimeCv = f.CycleCv,
        };
    }
}
