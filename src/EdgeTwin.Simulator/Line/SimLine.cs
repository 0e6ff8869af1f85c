using EdgeTwin.Simulator.Physics;

namespace EdgeTwin.Simulator.Line;

/// <summary>What a simulated station is doing (finer than PackML: starved and blocked share PackML Suspended).</summary>
public enum SimStationState : byte
{
    Running,
    Starved,
    Blocked,
    Breakdown,
    Jam,
    Setup,
    /// <summary>The site machine that drives the station has failed (bearing wear).</summary>
    DriveDown,
}

/// <summary>Exact accounting of one station since the line started (the ground truth the twin is checked against).</summary>
/// <param name="Seconds">Seconds in each <see cref="SimStationState"/>, indexed by the state.</param>
public sealed record SimStationTruth(string Id, double IdealCycleSeconds, IReadOnlyList<double> Seconds, long Good, long Reject, int Breakdowns, double RepairSeconds)
{
    public double In(SimStationState state) => Seconds[(int)state];
}

/// <summary>A snapshot of the line's exact accounting at line time <paramref name="Seconds"/>.</summary>
public sealed record SimLineTruth(double Seconds, IReadOnlyList<SimStationTruth> Stations)
{
    /// <summary>
    /// OEE (ISO 22400-2: ideal cycle × good quantity / planned busy time; the simulated line has no planned stops)
    /// of <paramref name="station"/> between <paramref name="from"/> and this snapshot.
    /// </summary>
    public double Oee(SimLineTruth from, int station, double? idealCycleSeconds = null)
    {
        ArgumentNullException.ThrowIfNull(from);
        var dt = Seconds - from.Seconds;
        var good = Stations[station].Good - from.Stations[station].Good;
        return dt > 0 ? (idealCycleSeconds ?? Stations[station].IdealCycleSeconds) * good / dt : 0;
    }

    /// <summary>Availability (running + micro-stops) / planned busy time between <paramref name="from"/> and this snapshot.</summary>
    public double Availability(SimLineTruth from, int station)
    {
        ArgumentNullException.ThrowIfNull(from);
        var dt = Seconds - from.Seconds;
        var a = Stations[station];
        var b = from.Stations[station];
        var apt = a.In(SimStationState.Running) - b.In(SimStationState.Running) + a.In(SimStationState.Jam) - b.In(SimStationState.Jam);
        return dt > 0 ? apt / dt : 0;
    }

    /// <summary>Line OEE: the constraint station's (longest ideal cycle) time base and the last station's good parts.</summary>
    public double LineOee(SimLineTruth from) =>
        Oee(from, Stations.Count - 1, Stations.Max(s => s.IdealCycleSeconds));
}

/// <summary>
/// A serial packaging line in the simulated site: stations with finite buffers between them, actual cycle times
/// with speed loss and lognormal noise, operation-dependent breakdowns (exponential up times; repairs of at least
/// the micro-stop limit, mean MTTR), jams (micro-stops shorter than the limit), tool wear that drifts a process
/// value (sealing temperature) and with it the reject probability, tool changes (setups), and stations that stop
/// when the site machine driving them fails. Stepped by <see cref="SimulatedSite"/> in sub-steps of ≤ 50 ms;
/// parts are counted when a station completes them. Read under the site's lock.
/// </summary>
public sealed class SimLine
{
    /// <summary>Mean jam length as a share of the micro-stop limit (jams last 20–90 % of it).</summary>
    public const double MeanJamShare = 0.55;

    private const double SubStep = 0.05;
    private readonly SimRandom _random;
    private readonly Func<string, bool> _machineFailed;
    private readonly Station[] _stations;
    private readonly int[] _level;
    private double _seconds;

    public SimLine(SimLineSpec spec, SimRandom random, Func<string, bool>? machineFailed = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(random);
        if (spec.Stations.Count < 1 || spec.BufferCapacities.Count != spec.Stations.Count - 1)
        {
            throw new ArgumentException($"line '{spec.Id}': {spec.Stations.Count} stations need {spec.Stations.Count - 1} buffers, got {spec.BufferCapacities.Count}", nameof(spec));
        }

        Spec = spec;
        _random = random;
        _machineFailed = machineFailed ?? (_ => false);
        _stations = [.. spec.Stations.Select(s => new Station(s, this))];
        _level = new int[spec.BufferCapacities.Count];
    }

    public SimLineSpec Spec { get; }

    /// <summary>Line time (seconds since the line was built, warm-up included).</summary>
    public double Seconds => _seconds;

    public int StationIndex(string id)
    {
        for (var i = 0; i < _stations.Length; i++)
        {
            if (string.Equals(_stations[i].Spec.Id, id, StringComparison.Ordinal))
            {
                return i;
            }
        }

        throw new KeyNotFoundException($"line '{Spec.Id}' has no station '{id}' (known: {string.Join(", ", _stations.Select(s => s.Spec.Id))})");
    }

    public SimStationState State(int station) => _stations[station].State;

    public long Good(int station) => _stations[station].Good;

    public long Reject(int station) => _stations[station].Reject;

    public int BufferLevel(int buffer) => _level[buffer];

    /// <summary>PackML StateCurrent: 6 Execute, 5 Suspended (starved or blocked), 11 Held (jam), 9 Aborted (breakdown, drive fault), 15 Resetting (tool change).</summary>
    public int PackMlState(int station) => _stations[station].State switch
    {
        SimStationState.Running => 6,
        SimStationState.Starved or SimStationState.Blocked => 5,
        SimStationState.Jam => 11,
        SimStationState.Setup => 15,
        _ => 9,
    };

    /// <summary>PackTags StopReason: 0 none, 1 starved, 2 blocked, 3 breakdown, 4 jam, 5 tool change, 6 drive fault.</summary>
    public int StopReason(int station) => _stations[station].State switch
    {
        SimStationState.Running => 0,
        SimStationState.Starved => 1,
        SimStationState.Blocked => 2,
        SimStationState.Breakdown => 3,
        SimStationState.Jam => 4,
        SimStationState.Setup => 5,
        _ => 6,
    };

    public double LastCycleSeconds(int station) => _stations[station].LastCycle;

    /// <summary>Sealing/process temperature (°C): nominal 180, rising with tool wear (the drift behind rejects).</summary>
    public double ProcessTemperature(int station) => _stations[station].Temperature;

    /// <summary>Process pressure (bar), noisy around 6 bar, a little lower while stopped.</summary>
    public double ProcessPressure(int station) => _stations[station].Pressure;

    /// <summary>Spindle/drive load (%): 0 when not working, else 45 % plus tool wear.</summary>
    public double SpindleLoad(int station) => _stations[station].State == SimStationState.Running ? 45 + (20 * _stations[station].WearShare) : 0;

    /// <summary>The exact accounting now.</summary>
    public SimLineTruth Truth() => new(_seconds, [.. _stations.Select(s => new SimStationTruth(s.Spec.Id, s.Spec.IdealCycleSeconds, [.. s.Time], s.Good, s.Reject, s.Breakdowns, s.RepairSeconds))]);

    /// <summary>Advances the line by <paramref name="dt"/> seconds (sub-steps of at most 50 ms).</summary>
    public void Step(double dt)
    {
        if (!(dt > 0))
        {
            return;
        }

        var n = (int)Math.Ceiling(dt / SubStep);
        var h = dt / n;
        for (var k = 0; k < n; k++)
        {
            // Downstream first: a part leaves a buffer before the upstream station tries to put one in.
            for (var i = _stations.Length - 1; i >= 0; i--)
            {
                _stations[i].Step(i, h);
            }

            _seconds += h;
        }
    }

    private bool TryTake(int station)
    {
        if (station == 0)
        {
            return true; // the first station is fed without limit
        }

        if (_level[station - 1] == 0)
        {
            return false;
        }

        _level[station - 1]--;
        return true;
    }

    private bool TryPut(int station)
    {
        if (station == _stations.Length - 1)
        {
            return true; // the last station's parts leave the line
        }

        if (_level[station] >= Spec.BufferCapacities[station])
        {
            return false;
        }

        _level[station]++;
        return true;
    }

    private double Exponential(double mean) => -mean * Math.Log(1 - _random.NextDouble());

    private sealed class Station(SimStationSpec spec, SimLine line)
    {
        private bool _hasPart;
        private bool _finished;
        private double _remaining;
        private double _cycle;
        private double _stopLeft;
        private double _untilBreakdown = spec.MtbfSeconds > 0 ? line.Exponential(spec.MtbfSeconds) : double.PositiveInfinity;
        private double _untilJam = spec.JamEverySeconds > 0 ? line.Exponential(spec.JamEverySeconds) : double.PositiveInfinity;
        private int _wear;

        public SimStationSpec Spec { get; } = spec;

        public SimStationState State { get; private set; } = SimStationState.Starved;

        public double[] Time { get; } = new double[7];

        public long Good { get; private set; }

        public long Reject { get; private set; }

        public int Breakdowns { get; private set; }

        public double RepairSeconds { get; private set; }

        public double LastCycle { get; private set; } = spec.IdealCycleSeconds;

        public double Temperature { get; private set; } = 180;

        public double Pressure { get; private set; } = 6;

        public double WearShare => Spec.ToolLifeParts > 0 ? Math.Min(1, (double)_wear / Spec.ToolLifeParts) : 0;

        public void Step(int index, double h)
        {
            Update(index, h);
            Time[(int)State] += h;
            // Process values: first-order lag towards the wear-driven set point, with sensor noise.
            var target = 180 + (22 * WearShare * WearShare);
            Temperature += ((target - Temperature) * Math.Min(1, h / 5)) + (0.05 * line._random.Gaussian() * Math.Sqrt(h));
            Pressure = (State == SimStationState.Running ? 6.0 : 5.6) + (0.05 * line._random.Gaussian());
        }

        private void Update(int index, double h)
        {
            if (Spec.Machine is { } m && line._machineFailed(m))
            {
                State = SimStationState.DriveDown;
                return;
            }

            if (State == SimStationState.DriveDown)
            {
                State = _hasPart ? SimStationState.Running : SimStationState.Starved;
            }

            if (State is SimStationState.Breakdown or SimStationState.Jam or SimStationState.Setup)
            {
                _stopLeft -= h;
                if (_stopLeft > 0)
                {
                    return;
                }

                if (State == SimStationState.Setup)
                {
                    _wear = 0;
                }

                State = _hasPart ? SimStationState.Running : SimStationState.Starved;
                return;
            }

            if (_finished)
            {
                if (!line.TryPut(index))
                {
                    State = SimStationState.Blocked;
                    return;
                }

                _finished = false;
                if (Spec.ToolLifeParts > 0 && _wear >= Spec.ToolLifeParts)
                {
                    State = SimStationState.Setup;
                    _stopLeft = Spec.SetupSeconds;
                    return;
                }
            }

            if (!_hasPart)
            {
                if (!line.TryTake(index))
                {
                    State = SimStationState.Starved;
                    return;
                }

                _hasPart = true;
                _remaining = CycleTime();
            }

            State = SimStationState.Running;
            _remaining -= h;
            _untilBreakdown -= h;
            _untilJam -= h;
            if (_remaining <= 0)
            {
                Complete();
            }

            if (_untilBreakdown <= 0)
            {
                // Repairs last at least 10 % over the micro-stop limit, mean MTTR: a breakdown a reading or two off in time
                // (polls, lamp edges) must still be one to the twin, not a micro-stop.
                var shortest = SimStationSpec.ShortestRepair(line.Spec.MicroStopLimitSeconds);
                State = SimStationState.Breakdown;
                _stopLeft = shortest + (Spec.MttrSeconds > shortest ? line.Exponential(Spec.MttrSeconds - shortest) : 0);
                RepairSeconds += _stopLeft;
                Breakdowns++;
                _untilBreakdown = line.Exponential(Spec.MtbfSeconds);
            }
            else if (_untilJam <= 0)
            {
                State = SimStationState.Jam;
                _stopLeft = line.Spec.MicroStopLimitSeconds * (0.2 + (0.7 * line._random.NextDouble()));
                _untilJam = line.Exponential(Spec.JamEverySeconds);
            }
        }

        private void Complete()
        {
            _hasPart = false;
            _finished = true;
            LastCycle = Math.Round(_cycle, 1);
            // Reject probability rises steeply once the worn tool has pushed the temperature above ~192 °C.
            var p = Spec.RejectBase + (0.35 / (1 + Math.Exp(-(Temperature - 194) / 2.0)));
            if (line._random.NextDouble() < p)
            {
                Reject++;
            }
            else
            {
                Good++;
            }

            _wear++;
        }

        private double CycleTime()
        {
            // Lognormal with the station's mean actual cycle and coefficient of variation.
            var mean = Spec.IdealCycleSeconds * (1 + Spec.SpeedLoss);
            var s2 = Math.Log(1 + (Spec.CycleCv * Spec.CycleCv));
            _cycle = Math.Exp(Math.Log(mean) - (s2 / 2) + (Math.Sqrt(s2) * line._random.Gaussian()));
            return _cycle;
        }
    }
}
