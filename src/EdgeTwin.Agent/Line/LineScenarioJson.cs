using System.Text.Json.Nodes;
using EdgeTwin.Twin.Line.Scenarios;

namespace EdgeTwin.Agent.Line;

/// <summary>
/// The JSON of the line what-ifs, shared by <c>edgetwin simulate machine-down|maintenance-window|buffer-change|cycle-time-change --json</c> and the MQTT
/// twin request server, so a central twin gets exactly what a script gets for the same line and state.
/// </summary>
internal static class LineScenarioJson
{
    public static string MachineDown(string line, double elapsedMinutes, string station, double minutes, double startInMinutes, ScenarioResult r, double marginPerUnit, IReadOnlyList<LineCli.BufferStart>? buffers = null, double? costedMinutes = null)
    {
        var o = Head("machine_down", line, elapsedMinutes, buffers);
        o["station"] = station;
        o["minutes"] = minutes;
        o["start_in_minutes"] = startInMinutes;
        // The part of the stop inside the shift: the rest is not simulated, so not in the loss.
        if (costedMinutes is { } costed) o["costed_minutes"] = costed;
        return Finish(o, r, marginPerUnit);
    }

    public static string BufferChange(string line, double elapsedMinutes, string buffer, int capacity, ScenarioResult r, double marginPerUnit, IReadOnlyList<LineCli.BufferStart>? buffers = null)
    {
        var o = Head("buffer_change", line, elapsedMinutes, buffers);
        o["buffer"] = buffer;
        o["capacity"] = capacity;
        return Finish(o, r, marginPerUnit);
    }

    public static string CycleTimeChange(string line, double elapsedMinutes, string station, double cycleSeconds, ScenarioResult r, double marginPerUnit, IReadOnlyList<LineCli.BufferStart>? buffers = null)
    {
        var o = Head("cycle_time_change", line, elapsedMinutes, buffers);
        o["station"] = station;
        o["cycle_s"] = cycleSeconds;
        return Finish(o, r, marginPerUnit);
    }

    public static string MaintenanceWindow(string line, double elapsedMinutes, double minutes, MaintenanceWindowResult r, double marginPerUnit, IReadOnlyList<LineCli.BufferStart>? buffers = null)
    {
        var o = Head("maintenance_window", line, elapsedMinutes, buffers);
        o["station"] = r.Station;
        o["minutes"] = minutes;
        o["best_start_minute"] = r.Best.StartSeconds / 60;
        o["best_lost_output"] = Interval(r.Best.LostOutput);
        o["best_cost"] = r.Best.LostOutput.Mean * marginPerUnit;
        o["margin_per_unit"] = marginPerUnit;
        var candidates = new JsonArray();
        foreach (var c in r.Candidates)
        {
            candidates.Add(new JsonObject { ["start_minute"] = c.StartSeconds / 60, ["lost_output"] = c.LostOutput.Mean, ["low"] = c.LostOutput.Low, ["high"] = c.LostOutput.High, ["level"] = c.LostOutput.Level });
        }

        o["candidates"] = candidates;
        o["replications"] = r.Replications;
        return o.ToJsonString(LineCli.JsonOptions);
    }

    private static JsonObject Head(string scenario, string line, double elapsedMinutes, IReadOnlyList<LineCli.BufferStart>? buffers = null)
    {
        var o = new JsonObject { ["scenario"] = scenario, ["line"] = line, ["elapsed_minutes"] = elapsedMinutes };
        if (buffers is null) return o;
        // The levels the replications start from: the answer depends on them, so a script sees what was assumed.
        var levels = new JsonObject();
        foreach (var b in buffers) levels[b.Id] = new JsonObject { ["level"] = b.Level, ["capacity"] = b.Capacity, ["source"] = b.Given ? "given" : "assumed" };
        o["buffer_levels"] = levels;
        return o;
    }

    private static string Finish(JsonObject o, ScenarioResult r, double marginPerUnit)
    {
        o["baseline_output"] = r.BaselineOutput;
        o["scenario_output"] = r.ScenarioOutput;
        o["lost_output"] = Interval(r.LostOutput);
        var cost = Interval(r.Cost);
        cost["margin_per_unit"] = marginPerUnit;
        o["cost"] = cost;
        o["replications"] = r.Replications;
        return o.ToJsonString(LineCli.JsonOptions);
    }

    // The level goes with every low/high: a script must not have to know the engine's default to read them.
    private static JsonObject Interval(Estimate e) => new() { ["mean"] = e.Mean, ["low"] = e.Low, ["high"] = e.High, ["level"] = e.Level };
}
