namespace EdgeTwin.Twin.Line;

/// <summary>
/// One machine (station) of a line. A station takes one part from each of its input buffers
/// (several inputs = an assembly merge; none = it is fed without limit), works it for its cycle
/// time and puts it into its output buffer (none = the part leaves the line and counts as output).
/// Parallel machines are stations that share their input and output buffers.
/// </summary>
/// <param name="Id">Station id, e.g. "S3".</param>
/// <param name="CycleTimeSeconds">Ideal (mean) cycle time per part.</param>
/// <param name="MtbfSeconds">Mean operating time between failures (operation-dependent failures); 0 or ∞ = never fails.</param>
/// <param name="MttrSeconds">Mean time to repair.</param>
/// <param name="Inputs">Ids of the buffers it takes parts from.</param>
/// <param name="Output">Id of the buffer it puts parts into, or null for the line's end.</param>
/// <param name="CycleTimeCv">Coefficient of variation of the cycle time (0 = deterministic).</param>
public sealed record StationSpec(
    string Id,
    double CycleTimeSeconds,
    double MtbfSeconds,
    double MttrSeconds,
    IReadOnlyList<string> Inputs,
    string? Output,
    double CycleTimeCv = 0);

/// <summary>A finite buffer between stations.</summary>
public sealed record BufferSpec(string Id, int Capacity, int InitialLevel = 0);

/// <summary>What a structural problem of a line is about.</summary>
public enum LineElement
{
    Line,
    Station,
    Buffer,
}

/// <summary>
/// A structural problem of a line, with where it is, so the config reader can report it at the offending key rather than
/// at the <c>line:</c> section.
/// </summary>
/// <param name="Message">What is wrong, naming the station or buffer.</param>
/// <param name="Element">The kind of element at fault.</param>
/// <param name="Index">Its index in <see cref="LineSpec.Stations"/> or <see cref="LineSpec.Buffers"/>; -1 for the line.</param>
/// <param name="Field">The <c>line:</c> section's key of the field at fault (<c>output</c>, <c>inputs</c>, <c>mttr</c>, …), or null for the element as a whole.</param>
public sealed record LineProblem(string Message, LineElement Element = LineElement.Line, int Index = -1, string? Field = null);

/// <summary>A line: stations, buffers and the simulation tick.</summary>
/// <param name="TickSeconds">Time step of the simulation; cycle times are rounded to whole ticks.</param>
public sealed record LineSpec(IReadOnlyList<StationSpec> Stations, IReadOnlyList<BufferSpec> Buffers, double TickSeconds = 1.0)
{
    /// <summary>A serial line S1 → B1 → S2 → … with the given buffer capacities (one fewer than stations).</summary>
    public static LineSpec Serial(IReadOnlyList<(string Id, double CycleTime, double Mtbf, double Mttr)> stations, IReadOnlyList<int> bufferCapacities, double tickSeconds = 1.0, double cycleTimeCv = 0)
    {
        ArgumentNullException.ThrowIfNull(stations);
        ArgumentNullException.ThrowIfNull(bufferCapacities);
        if (bufferCapacities.Count != stations.Count - 1)
            throw new ArgumentException($"a serial line of {stations.Count} stations needs {stations.Count - 1} buffers, got {bufferCapacities.Count}", nameof(bufferCapacities));
        var st = new List<StationSpec>(stations.Count);
        var bf = new List<BufferSpec>(bufferCapacities.Count);
        for (int i = 0; i < stations.Count; i++)
        {
            string? input = i == 0 ? null : "B" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            string? output = i == stations.Count - 1 ? null : "B" + (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
            st.Add(new StationSpec(stations[i].Id, stations[i].CycleTime, stations[i].Mtbf, stations[i].Mttr,
                input is null ? [] : [input], output, cycleTimeCv));
            if (output is not null) bf.Add(new BufferSpec(output, bufferCapacities[i]));
        }
        return new LineSpec(st, bf, tickSeconds);
    }

    /// <summary>Every structural problem, empty when the line is valid.</summary>
    public IReadOnlyList<string> Validate() => [.. Problems().Select(p => p.Message)];

    /// <summary>Every structural problem with the station, buffer and field it concerns; empty when the line is valid.</summary>
    public IReadOnlyList<LineProblem> Problems()
    {
        var errors = new List<LineProblem>();
        if (Stations.Count == 0) errors.Add(new("line has no stations", Field: "stations"));
        if (!(TickSeconds > 0)) errors.Add(new($"tick {TickSeconds} s must be > 0", Field: "tick"));
        var bufferIds = new HashSet<string>(StringComparer.Ordinal);
        for (int bi = 0; bi < Buffers.Count; bi++)
        {
            var b = Buffers[bi];
            if (!bufferIds.Add(b.Id)) errors.Add(new($"buffer '{b.Id}' defined twice", LineElement.Buffer, bi, "id"));
            if (b.Capacity < 1) errors.Add(new($"buffer '{b.Id}': capacity {b.Capacity} must be >= 1", LineElement.Buffer, bi, "capacity"));
            if (b.InitialLevel < 0 || b.InitialLevel > b.Capacity) errors.Add(new($"buffer '{b.Id}': initial level {b.InitialLevel} outside 0..{b.Capacity}", LineElement.Buffer, bi, "initial"));
        }
        var stationIds = new HashSet<string>(StringComparer.Ordinal);
        var produced = new HashSet<string>(StringComparer.Ordinal);
        var consumed = new HashSet<string>(StringComparer.Ordinal);
        for (int si = 0; si < Stations.Count; si++)
        {
            var s = Stations[si];
            LineProblem At(string message, string field) => new(message, LineElement.Station, si, field);
            if (!stationIds.Add(s.Id)) errors.Add(At($"station '{s.Id}' defined twice", "id"));
            if (!(s.CycleTimeSeconds > 0)) errors.Add(At($"station '{s.Id}': cycle time {s.CycleTimeSeconds} s must be > 0", "ideal_cycle_time"));
            if (s.MtbfSeconds < 0 || double.IsNaN(s.MtbfSeconds)) errors.Add(At($"station '{s.Id}': mtbf must be >= 0", "mtbf"));
            if (s.MtbfSeconds > 0 && !double.IsPositiveInfinity(s.MtbfSeconds) && !(s.MttrSeconds > 0)) errors.Add(At($"station '{s.Id}': mttr must be > 0 when it can fail", "mttr"));
            if (s.CycleTimeCv < 0 || s.CycleTimeCv > 1) errors.Add(At($"station '{s.Id}': cycle time cv {s.CycleTimeCv} outside 0..1", "cycle_time_cv"));
            foreach (var i in s.Inputs)
            {
                if (!bufferIds.Contains(i)) errors.Add(At($"station '{s.Id}': input buffer '{i}' is not defined", "inputs"));
                consumed.Add(i);
            }
            if (s.Output is not null)
            {
                if (!bufferIds.Contains(s.Output)) errors.Add(At($"station '{s.Id}': output buffer '{s.Output}' is not defined", "output"));
                if (s.Inputs.Contains(s.Output)) errors.Add(At($"station '{s.Id}': output buffer '{s.Output}' is also its input", "output"));
                produced.Add(s.Output);
            }
        }
        for (int bi = 0; bi < Buffers.Count; bi++)
        {
            var b = Buffers[bi];
            if (!produced.Contains(b.Id)) errors.Add(new($"buffer '{b.Id}' has no station feeding it", LineElement.Buffer, bi, "id"));
            if (!consumed.Contains(b.Id)) errors.Add(new($"buffer '{b.Id}' has no station taking from it", LineElement.Buffer, bi, "id"));
        }
        if (errors.Count == 0 && FindCycle() is { } cycle)
            errors.Add(new($"line has a cycle (a part could return to a station it passed): {cycle.Path} ({Stations[cycle.Station].Id}'s output {Stations[cycle.Station].Output} feeds {cycle.Back} again)", LineElement.Station, cycle.Station, "output"));
        if (errors.Count == 0 && !Stations.Any(s => s.Output is null)) errors.Add(new("line has no final station (one without an output buffer)", Field: "stations"));
        return errors;
    }

    /// <summary>
    /// One cycle of the station graph as "S2 -> B2 -> S3 -> B3 -> S2", and the station whose output closes it (feeds a
    /// station listed no later than itself: the back edge in the order the config writes the line), or null when there is none.
    /// </summary>
    private (string Path, int Station, string Back)? FindCycle()
    {
        // Kahn's algorithm on the station graph (edge: producer of a buffer -> its consumers).
        var indeg = Stations.ToDictionary(s => s.Id, _ => 0, StringComparer.Ordinal);
        var consumers = Buffers.ToDictionary(b => b.Id, b => Stations.Where(s => s.Inputs.Contains(b.Id)).Select(s => s.Id).ToList(), StringComparer.Ordinal);
        foreach (var s in Stations)
            if (s.Output is not null)
                foreach (var c in consumers[s.Output]) indeg[c]++;
        var queue = new Queue<string>(indeg.Where(kv => kv.Value == 0).Select(kv => kv.Key));
        int seen = 0;
        var byId = Stations.ToDictionary(s => s.Id, StringComparer.Ordinal);
        while (queue.Count > 0)
        {
            var id = queue.Dequeue();
            seen++;
            var o = byId[id].Output;
            if (o is null) continue;
            foreach (var c in consumers[o])
                if (--indeg[c] == 0) queue.Enqueue(c);
        }
        if (seen == Stations.Count) return null;

        // Stations Kahn could not remove each take input from another one left: walking such inputs upstream must
        // come back to a station already visited.
        var producers = Stations.Where(s => s.Output is not null).ToLookup(s => s.Output!, s => s.Id, StringComparer.Ordinal); // merges: several
        var path = new List<string> { indeg.First(kv => kv.Value > 0).Key };
        while (true)
        {
            var station = byId[path[^1]];
            var upstream = station.Inputs.SelectMany(b => producers[b]).First(p => indeg[p] > 0);
            var at = path.IndexOf(upstream);
            path.Add(upstream);
            if (at < 0) continue;

            var loop = path.Skip(at).Reverse().ToList(); // downstream order, first station repeated at the end
            var parts = new List<string>();
            int closing = -1;
            string back = "";
            for (int i = 0; i < loop.Count - 1; i++)
            {
                parts.Add(loop[i] + " -> " + byId[loop[i]].Output);
                // Positions cannot rise all the way round a loop, so some edge goes back (or to itself).
                int from = StationIndex(loop[i]), to = StationIndex(loop[i + 1]);
                if (closing >= 0 || to > from) continue;
                closing = from;
                back = loop[i + 1];
            }
            return (string.Join(" -> ", parts) + " -> " + loop[^1], closing, back);
        }
    }

    public int StationIndex(string id)
    {
        for (int i = 0; i < Stations.Count; i++)
            if (string.Equals(Stations[i].Id, id, StringComparison.Ordinal)) return i;
        throw new ArgumentException($"station '{id}' is not in the line", nameof(id));
    }

    public int BufferIndex(string id)
    {
        for (int i = 0; i < Buffers.Count; i++)
            if (string.Equals(Buffers[i].Id, id, StringComparison.Ordinal)) return i;
        throw new ArgumentException($"buffer '{id}' is not in the line", nameof(id));
    }
}
