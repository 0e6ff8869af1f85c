using System.CommandLine;
using System.Globalization;
using EdgeTwin.Agent.Line;
using EdgeTwin.Twin.Line;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin simulate cycle-time-change --config FILE --station S3 --cycle-s SECONDS [--elapsed MIN] [--buffer B1=12 …] [--json]</c>:
/// the rest of the shift's output with the station at another ideal cycle time against the line as configured, from
/// paired replications, and what the difference is worth at the margin per unit. Exit codes: 0 ok, 2 invalid config or arguments.
/// </summary>
internal sealed class SimulateCycleTimeChangeCommand() : LineWhatIfCommand("cycle-time-change", "Output gained or lost if a line station had another cycle time.")
{
    // The MQTT request's bound: a cycle of more than a day is a typo, not a what-if.
    private const double MaxCycleSeconds = 86_400;

    private readonly Option<string> _station = StationOption();
    private readonly Option<double> _cycle = new("--cycle-s") { Description = "The station's new ideal cycle time in seconds (> 0).", Required = true };

    protected override IEnumerable<Option> OwnOptions => [_station, _cycle];

    protected override async Task<WhatIf?> CheckAsync(ParseResult parse, LineTwinConfig c, double gone, TextWriter error)
    {
        var id = parse.GetValue(_station)!;
        int index = await StationIndexAsync(c, id, error).ConfigureAwait(false);
        if (index < 0) return null;
        double seconds = parse.GetValue(_cycle);
        if (!(seconds > 0) || seconds > MaxCycleSeconds || gone < 0 || gone * 60 >= c.ShiftLength.TotalSeconds)
        {
            await error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{Prefix}: --cycle-s must be > 0 and at most {MaxCycleSeconds} (got {seconds}), --elapsed >= 0 and inside the {c.ShiftLength.TotalMinutes:0.#} min shift")).ConfigureAwait(false);
            return null;
        }
        return new WhatIf((scenarios, at) =>
        {
            var r = scenarios.CycleTimeChange(at.Now, id, seconds);
            var head = string.Create(CultureInfo.InvariantCulture, $"{id} cycle {c.Spec.Stations[index].CycleTimeSeconds:0.###} s -> {seconds:0.###} s in line {c.Id}");
            return new WhatIfReport(() => LineScenarioJson.CycleTimeChange(c.Id, gone, id, seconds, r, c.MarginPerUnit, at.Buffers), [.. LineCli.DescribeChange(head, r, c.MarginPerUnit)], []);
        });
    }
}
