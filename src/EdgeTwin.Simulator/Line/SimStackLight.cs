using EdgeTwin.Simulator.Physics;

namespace EdgeTwin.Simulator.Line;

/// <summary>A lamp of a simulated stack light.</summary>
public enum SimLamp : byte
{
    Red = 0,
    Amber = 1,
    Green = 2,
}

/// <summary>
/// The stack light (signal tower) a station's PLC drives from its true state, as real towers behave: green steady =
/// running, amber steady = waiting (starved or blocked), amber blinking = tool change, red blinking = jam (operator
/// call), red steady = breakdown or drive fault. The PLC switches the old lamps off first and the new ones on
/// <c>changeGap</c> later (so the tower is briefly dark or shows nothing new), blinks at <c>blinkHz</c>, and every lamp
/// edge reaches the input with a few bounces of the contact (a burst of opposite levels, ending at the new one).
/// Not thread-safe: one caller steps it, with the line time of the state it passes.
/// </summary>
public sealed class SimStackLight
{
    private readonly SimRandom _random;
    private readonly double _halfPeriod;
    private readonly double _changeGap;
    private readonly int _maxBounces;
    private readonly bool[] _level = new bool[3];
    private (bool Red, bool Amber, bool Green, bool Blink) _pattern;
    private double _patternSince;
    private bool _started;

    /// <param name="random">Bounce counts come from it (same seed, same edges).</param>
    /// <param name="blinkHz">Blink frequency (IEC 60073 normal flashing is 1.4–2.8 Hz, slow 0.4–0.8 Hz).</param>
    /// <param name="changeGap">Seconds between the old lamps going off and the new ones lighting.</param>
    /// <param name="maxBounces">Extra opposite-level pulses per edge (0 = clean contacts).</param>
    public SimStackLight(SimRandom random, double blinkHz = 1, double changeGap = 0.15, int maxBounces = 3)
    {
        ArgumentNullException.ThrowIfNull(random);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blinkHz);
        ArgumentOutOfRangeException.ThrowIfNegative(changeGap);
        ArgumentOutOfRangeException.ThrowIfNegative(maxBounces);
        _random = random;
        _halfPeriod = 0.5 / blinkHz;
        _changeGap = changeGap;
        _maxBounces = maxBounces;
    }

    /// <summary>Edges driven so far, bounces included.</summary>
    public long Edges { get; private set; }

    /// <summary>The level of a lamp now (after the last <see cref="Update"/>).</summary>
    public bool IsLit(SimLamp lamp) => _level[(int)lamp];

    /// <summary>The lamps a state shows: which are lit, and whether they blink.</summary>
    public static (bool Red, bool Amber, bool Green, bool Blink) Pattern(SimStationState state) => state switch
    {
        SimStationState.Running => (false, false, true, false),
        SimStationState.Starved or SimStationState.Blocked => (false, true, false, false),
        SimStationState.Setup => (false, true, false, true),
        SimStationState.Jam => (true, false, false, true),
        _ => (true, false, false, false), // breakdown, drive down
    };

    /// <summary>
    /// Brings the lamps to what the PLC shows at line time <paramref name="seconds"/> for <paramref name="state"/>,
    /// calling <paramref name="drive"/> for every level the input sees (bounces included), in order.
    /// </summary>
    public void Update(double seconds, SimStationState state, Action<SimLamp, bool> drive)
    {
        ArgumentNullException.ThrowIfNull(drive);
        var pattern = Pattern(state);
        if (!_started || pattern != _pattern)
        {
            _pattern = pattern;
            _patternSince = _started ? seconds : seconds - _changeGap; // the first pattern shows at once
            _started = true;
        }

        var age = seconds - _patternSince;
        var on = !_pattern.Blink || ((long)Math.Floor(Math.Max(0, age - _changeGap) / _halfPeriod) % 2 == 0);
        for (var i = 0; i < 3; i++)
        {
            var wanted = i switch { 0 => _pattern.Red, 1 => _pattern.Amber, _ => _pattern.Green };
            // Old lamps go off at once; new ones light after the change gap.
            var target = wanted && on && age >= _changeGap;
            if (target == _level[i])
            {
                continue;
            }

            var bounces = _maxBounces == 0 ? 0 : _random.Next(0, _maxBounces + 1);
            for (var b = 0; b < bounces; b++)
            {
                drive((SimLamp)i, target);
                drive((SimLamp)i, !target);
                Edges += 2;
            }

            drive((SimLamp)i, target);
            Edges++;
            _level[i] = target;
        }
    }
}

/// <summary>
/// Stack lights on some stations of a simulated site's line, kept in step with the line: every <c>period</c> it reads
/// each station's true state (under the site's lock) and drives its tower, handing each lamp level to
/// <c>drive(station, lamp, lit)</c> outside the lock (the caller puts it on a GPIO input).
/// </summary>
public sealed class SimStackLights
{
    private readonly SimulatedSite _site;
    private readonly (string Station, int Index, SimStackLight Tower)[] _towers;
    private readonly Action<string, SimLamp, bool> _drive;
    private readonly List<(string Station, SimLamp Lamp, bool Lit)> _pending = [];
    private readonly SimStationState[] _states;
    private double _lastSeconds = double.NaN;
    private double _longestStep;

    public SimStackLights(SimulatedSite site, IReadOnlyList<string> stations, Action<string, SimLamp, bool> drive, int seed = 1)
    {
        ArgumentNullException.ThrowIfNull(site);
        ArgumentNullException.ThrowIfNull(stations);
        ArgumentNullException.ThrowIfNull(drive);
        var line = site.Line ?? throw new ArgumentException("the simulated site has no line", nameof(site));
        var random = new SimRandom(seed ^ 0x57ac);
        _site = site;
        _drive = drive;
        _towers = [.. stations.Select(s => (s, line.StationIndex(s), new SimStackLight(new SimRandom(random.NextSeed()))))];
        _states = new SimStationState[_towers.Length];
    }

    public IReadOnlyList<string> Stations => [.. _towers.Select(t => t.Station)];

    /// <summary>Edges driven so far on every tower, bounces included.</summary>
    public long Edges => _towers.Sum(t => t.Tower.Edges);

    /// <summary>
    /// The most line time that passed between two steps since the last <see cref="ResetLongestStep"/>. The towers show
    /// only the state at each step: when the stepping process stalls and the line catches up at once, a state shorter
    /// than this may never have been shown, and a reader of the lamps cannot be expected to have seen it.
    /// </summary>
    public double LongestStepSeconds => Volatile.Read(ref _longestStep);

    /// <summary>Starts measuring <see cref="LongestStepSeconds"/> afresh from the next step.</summary>
    public void ResetLongestStep() => Volatile.Write(ref _longestStep, 0);

    /// <summary>One step: the lamps to the line's state now.</summary>
    public void Update()
    {
        double seconds;
        lock (_site.SyncRoot)
        {
            var line = _site.Line!;
            seconds = line.Seconds;
            for (var i = 0; i < _towers.Length; i++)
            {
                _states[i] = line.State(_towers[i].Index);
            }
        }

        if (!double.IsNaN(_lastSeconds) && seconds - _lastSeconds > Volatile.Read(ref _longestStep))
        {
            Volatile.Write(ref _longestStep, seconds - _lastSeconds);
        }

        _lastSeconds = seconds;
        _pending.Clear();
        for (var i = 0; i < _towers.Length; i++)
        {
            var station = _towers[i].Station;
            _towers[i].Tower.Update(seconds, _states[i], (lamp, lit) => _pending.Add((station, lamp, lit)));
        }

        foreach (var (station, lamp, lit) in _pending)
        {
            _drive(station, lamp, lit);
        }
    }

    /// <summary>Steps every <paramref name="period"/> until cancelled.</summary>
    public async Task RunAsync(TimeSpan period, TimeProvider time, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(time);
        while (!cancellationToken.IsCancellationRequested)
        {
            Update();
            try
            {
                await Task.Delay(period, time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
