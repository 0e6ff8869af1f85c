using System.CommandLine;
using System.Globalization;
using EdgeTwin.Agent.Line;
using EdgeTwin.Twin.Line;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin simulate buffer-change --config FILE --buffer B1 --capacity N [--elapsed MIN] [--buffer B2=LEVEL …] [--json]</c>:
/// the rest of the shift's output with the buffer at another capacity against the line as configured, from paired
/// replications, and what the difference is worth at the margin per unit. Exit codes: 0 ok, 2 invalid config or arguments.
/// </summary>
internal sealed class SimulateBufferChangeCommand : LineWhatIfCommand
{
    // The config loader's bound for a buffer capacity (and the MQTT request's).
    private const int MaxCapacity = 1_000_000;

    private readonly Option<int> _capacity = new("--capacity") { Description = "The buffer's new capacity in parts (>= 1).", Required = true };

    public SimulateBufferChangeCommand()
        : base("buffer-change", "Output gained or lost if a line buffer had another capacity.")
    {
        // One --buffer option in two forms, so the starting levels are given as in every other what-if:
        // BUFFER names the buffer to change, BUFFER=LEVEL a level at the start.
        Cli.Buffers.Description = "The buffer to change, e.g. --buffer B1; BUFFER=LEVEL (repeatable) gives parts in a buffer now, default half full as the live twin assumes.";
    }

    protected override IEnumerable<Option> OwnOptions => [_capacity];

    protected override async Task<WhatIf?> CheckAsync(ParseResult parse, LineTwinConfig c, double gone, TextWriter error)
    {
        var values = parse.GetValue(Cli.Buffers) ?? [];
        var targets = values.Where(v => !v.Contains('=', StringComparison.Ordinal)).Select(v => v.Trim()).ToArray();
        var known = string.Join(", ", c.Spec.Buffers.Select(b => b.Id));
        if (targets.Length != 1)
        {
            await error.WriteLineAsync($"{Prefix}: name the buffer to change once, e.g. --buffer B1 (line {c.Id} has {(known.Length == 0 ? "no buffers" : known)}); --buffer B1=N gives a level at the start").ConfigureAwait(false);
            return null;
        }
        var id = targets[0];
        int index = c.Spec.Buffers.ToList().FindIndex(b => b.Id == id);
        if (index < 0)
        {
            await error.WriteLineAsync($"{Prefix}: buffer '{id}' is not in line {c.Id} ({known})").ConfigureAwait(false);
            return null;
        }
        int cap = parse.GetValue(_capacity);
        // The line model needs room for at least one part (LineSpec.Validate).
        if (cap < 1 || cap > MaxCapacity || gone < 0 || gone * 60 >= c.ShiftLength.TotalSeconds)
        {
            await error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{Prefix}: --capacity must be 1..{MaxCapacity} parts (got {cap}), --elapsed >= 0 and inside the {c.ShiftLength.TotalMinutes:0.#} min shift")).ConfigureAwait(false);
            return null;
        }
        return new WhatIf((scenarios, at) =>
        {
            var r = scenarios.BufferChange(at.Now, id, cap);
            var from = c.Spec.Buffers[index].Capacity;
            var before = LineCli.DescribeChange(string.Create(CultureInfo.InvariantCulture, $"{id} capacity {from} -> {cap} in line {c.Id}"), r, c.MarginPerUnit).ToList();
            // The simulator clamps a level above the new capacity: say so rather than let parts vanish unseen.
            if (at.Buffers[index].Level > cap)
                before.Add(string.Create(CultureInfo.InvariantCulture, $"{id} holds {at.Buffers[index].Level} parts at the start, more than {cap}: the scenario starts it full"));
            return new WhatIfReport(() => LineScenarioJson.BufferChange(c.Id, gone, id, cap, r, c.MarginPerUnit, at.Buffers), before, []);
        })
        {
            Levels = values.Where(v => v.Contains('=', StringComparison.Ordinal)),
        };
    }
}
