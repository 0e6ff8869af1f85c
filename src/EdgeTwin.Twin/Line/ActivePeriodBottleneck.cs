namespace EdgeTwin.Twin.Line;

/// <summary>Bottleneck figures of one station.</summary>
/// <param name="MeanActiveSeconds">Average duration of its active periods (Roser's average active period method).</param>
/// <param name="SoleShare">Share of time it was the sole momentary bottleneck.</param>
/// <param name="ShiftingShare">Share of time it was a shifting momentary bottleneck (while the bottleneck passed to or from it).</param>
public sealed record BottleneckStation(string Station, double MeanActiveSeconds, double ActiveShare, int Periods, double SoleShare, double ShiftingShare);

/// <summary>Bottleneck ranking of a line.</summary>
public sealed record BottleneckReport(string? Bottleneck, IReadOnlyList<BottleneckStation> Stations, double WindowSeconds);

/// <summary>
/// Bottleneck detection by the active-period method (Roser, Nakano and Tanaka 2001, 2002): a station is
/// active while it works or is down for repair, setup or service, and inactive while it waits (starved,
/// blocked, idle, planned stop). The station with the longest uninterrupted active periods constrains the
/// line. The average method ranks stations by mean active-period duration; the momentary method marks at
/// each instant the station whose current active period is the longest as the bottleneck, and "shifting"
/// where its period overlaps the next bottleneck's. Feeding is O(1) per state change; periods are kept
/// (start, end) per station for the momentary analysis over a window.
/// </summary>
public sealed class ActivePeriodBottleneck
{
    private readonly string[] _stations;
    private readonly List<(double Start, double End)>[] _periods;
    private readonly double[] _openSince; // NaN when inactive
    private double _first = double.NaN;
    private double _last;

    public ActivePeriodBottleneck(IReadOnlyList<string> stations)
    {
        ArgumentNullException.ThrowIfNull(stations);
        _stations = stations.ToArray();
        _periods = _stations.Select(_ => new List<(double, double)>()).ToArray();
        _openSince = _stations.Select(_ => double.NaN).ToArray();
    }

    public static bool IsActive(StationState s) => s is StationState.Working or StationState.Down;

    public static bool IsActive(Oee.MachineState s) => s is Oee.MachineState.Running or Oee.MachineState.Faulted or Oee.MachineState.Setup;

    /// <summary>A station became active or inactive at the given time (seconds, any epoch, non-decreasing).</summary>
    public void OnState(int station, double timeSeconds, bool active)
    {
        if (double.IsNaN(_first)) _first = timeSeconds;
        _last = Math.Max(_last, timeSeconds);
        bool open = !double.IsNaN(_openSince[station]);
        if (active && !open) _openSince[station] = timeSeconds;
        else if (!active && open)
        {
            _periods[station].Add((_openSince[station], timeSeconds));
            _openSince[station] = double.NaN;
        }
    }

    /// <summary>Ranks the stations over everything seen up to <paramref name="nowSeconds"/> (open periods end now).</summary>
    public BottleneckReport Analyse(double nowSeconds)
    {
        int n = _stations.Length;
        var all = new List<(double Start, double End)>[n];
        for (int s = 0; s < n; s++)
        {
            all[s] = new List<(double, double)>(_periods[s]);
            if (!double.IsNaN(_openSince[s])) all[s].Add((_openSince[s], nowSeconds));
        }
        double window = double.IsNaN(_first) ? 0 : nowSeconds - _first;
        var (sole, shifting) = Momentary(all, window);
        var result = new BottleneckStation[n];
        for (int s = 0; s < n; s++)
        {
            double total = all[s].Sum(p => p.End - p.Start);
            double mean = all[s].Count > 0 ? total / all[s].Count : 0;
            result[s] = new BottleneckStation(_stations[s], mean, window > 0 ? total / window : 0, all[s].Count,
                window > 0 ? sole[s] / window : 0, window > 0 ? shifting[s] / window : 0);
        }
        string? bottleneck = result.Any(r => r.Periods > 0) ? result.MaxBy(r => r.MeanActiveSeconds)!.Station : null;
        return new BottleneckReport(bottleneck, result, window);
    }

    // Sweep over all period boundaries: in each elementary segment the station whose active period
    // (covering the segment) is the longest is the momentary bottleneck; the overlap of consecutive
    // bottlenecks' periods is shifting time for both.
    private (double[] Sole, double[] Shifting) Momentary(List<(double Start, double End)>[] all, double window)
    {
        int n = all.Length;
        var sole = new double[n];
        var shifting = new double[n];
        if (window <= 0) return (sole, shifting);
        var events = new List<(double T, int Station, int Index, bool Start)>();
        for (int s = 0; s < n; s++)
            for (int i = 0; i < all[s].Count; i++)
            {
                events.Add((all[s][i].Start, s, i, true));
                events.Add((all[s][i].End, s, i, false));
            }
        events.Sort((a, b) => a.T != b.T ? a.T.CompareTo(b.T) : a.Start.CompareTo(b.Start));
        var current = new int[n];
        Array.Fill(current, -1);
        var segments = new List<(double From, double To, int Station, int Period)>();
        double prevT = events.Count > 0 ? events[0].T : 0;
        foreach (var e in events)
        {
            if (e.T > prevT)
            {
                int best = -1;
                double bestLen = -1;
                for (int s = 0; s < n; s++)
                {
                    if (current[s] < 0) continue;
                    var p = all[s][current[s]];
                    if (p.End - p.Start > bestLen) { bestLen = p.End - p.Start; best = s; }
                }
                if (best >= 0)
                {
                    if (segments.Count > 0 && segments[^1].Station == best && segments[^1].Period == current[best] && segments[^1].To == prevT)
                        segments[^1] = (segments[^1].From, e.T, best, current[best]);
                    else
                        segments.Add((prevT, e.T, best, current[best]));
                }
                prevT = e.T;
            }
            if (e.Start) current[e.Station] = e.Index;
            else if (current[e.Station] == e.Index) current[e.Station] = -1;
        }
        for (int i = 0; i < segments.Count; i++) sole[segments[i].Station] += segments[i].To - segments[i].From;
        for (int i = 1; i < segments.Count; i++)
        {
            var a = segments[i - 1];
            var b = segments[i];
            if (a.Station == b.Station) continue;
            var pa = all[a.Station][a.Period];
            var pb = all[b.Station][b.Period];
            double overlap = Math.Min(pa.End, pb.End) - Math.Max(pa.Start, pb.Start);
            if (overlap <= 0) continue;
            // The overlap of the two periods is shifting time for both, and no longer sole time.
            double fromA = Math.Min(overlap, a.To - a.From);
            double fromB = Math.Min(overlap, b.To - b.From);
            sole[a.Station] -= Math.Min(fromA, sole[a.Station]);
            sole[b.Station] -= Math.Min(fromB, sole[b.Station]);
            shifting[a.Station] += overlap;
            shifting[b.Station] += overlap;
        }
        return (sole, shifting);
    }

    /// <summary>Adapter: feeds the detector from a <see cref="LineSimulator"/> run.</summary>
    public IStationStateObserver ObserverFor(double tickSeconds) => new SimObserver(this, tickSeconds);

    private sealed class SimObserver(ActivePeriodBottleneck owner, double tick) : IStationStateObserver
    {
        public void OnStateChange(long tick1, int station, StationState state) => owner.OnState(station, tick1 * tick, IsActive(state));
    }
}
