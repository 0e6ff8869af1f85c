using System.CommandLine;
using System.Globalization;
using EdgeTwin.Agent.Twin.Requests;
using EdgeTwin.Agent.Twin.Thermal;
using EdgeTwin.Twin.Scenarios;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin simulate add-rack --kw 12 [--zone Z] [--row R] [--next-to RACK] [--feeds PDU,PDU] (--config FILE --history CSV | --demo-seed N) [--json]</c>:
/// thermal impact, power headroom and cooling sufficiency of a new rack, with a verdict and its binding constraint; without
/// a place it proposes the best one. Exit codes: 0 verdict ok, 1 verdict not_ok, 2 bad arguments or input.
/// </summary>
internal sealed class SimulateAddRackCommand : ICliSubcommand
{
    public string Parent => "simulate";

    public Command Create()
    {
        var source = new TwinCliSource();
        var kw = new Option<double>("--kw") { Description = "IT power of the new rack (kW, above 0, at most 1000).", Required = true };
        var zone = new Option<string?>("--zone") { Description = "Zone (room) to place it in; default: search every zone." };
        var row = new Option<string?>("--row") { Description = "Row to place it in (with --zone when row ids repeat across rooms); default: any row." };
        var nextTo = new Option<string?>("--next-to") { Description = "Place it next to this rack." };
        var feeds = new Option<string?>("--feeds") { Description = "Existing PDUs to feed it from (comma-separated); default: new PDUs like its neighbour's." };
        var command = new Command("add-rack", "What adding a rack does to inlet temperatures, power headroom and cooling capacity.");
        command.Options.Add(kw);
        command.Options.Add(zone);
        command.Options.Add(row);
        command.Options.Add(nextTo);
        command.Options.Add(feeds);
        source.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            if (parse.GetValue(kw) <= 0)
            {
                await error.WriteLineAsync("simulate add-rack: --kw must be > 0").ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }

            if (parse.GetValue(kw) > TwinScenarios.MaxRackKw)
            {
                await error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"simulate add-rack: --kw must be at most {TwinScenarios.MaxRackKw} kW, got {parse.GetValue(kw)}")).ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }

            var feedList = parse.GetValue(feeds)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            return await CapacityOutput.RunAsync(parse, source, "simulate add-rack", twin => CapacityScenarios.AddRack(twin, parse.GetValue(kw), parse.GetValue(zone), parse.GetValue(nextTo), feedList, row: parse.GetValue(row))).ConfigureAwait(false);
        });
        return command;
    }
}

/// <summary>Text and JSON output shared by the capacity what-ifs.</summary>
internal static class CapacityOutput
{
    /// <summary>
    /// Runs a capacity what-if on the twin of <paramref name="source"/> and prints it. Exit codes: 0 verdict ok, 1 not_ok,
    /// 2 when the twin cannot be loaded or the scenario refuses its arguments (the message says why).
    /// </summary>
    public static async Task<int> RunAsync(ParseResult parse, TwinCliSource source, string command, Func<SiteTwin, CapacityScenarioResult> scenario)
    {
        ArgumentNullException.ThrowIfNull(parse);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(scenario);
        var error = parse.InvocationConfiguration.Error;
        var twin = source.Load(parse, error, command);
        if (twin is null)
        {
            return ExitCodes.InvalidConfig;
        }

        CapacityScenarioResult result;
        try
        {
            result = scenario(twin);
        }
        catch (ArgumentException e)
        {
            await error.WriteLineAsync(TwinScenarios.Reason(e)).ConfigureAwait(false);
            return ExitCodes.InvalidConfig;
        }

        await WriteAsync(parse.InvocationConfiguration.Output, result, parse.GetValue(source.JsonOutput)).ConfigureAwait(false);
        return result.Verdict == "ok" ? ExitCodes.Ok : ExitCodes.Failure;
    }

    public static async Task WriteAsync(TextWriter output, CapacityScenarioResult r, bool json)
    {
        if (json)
        {
            await output.WriteLineAsync(TwinScenarios.Json(r)).ConfigureAwait(false);
            return;
        }

        await output.WriteLineAsync($"{r.Scenario}: {r.Verdict}").ConfigureAwait(false);
        await output.WriteLineAsync($"binding constraint: {r.BindingConstraint}").ConfigureAwait(false);
        if (r.Placement is { } p)
        {
            await output.WriteLineAsync($"placement: zone {p.Zone}, row {p.Row}, next to {p.NextTo}, feeds {string.Join(", ", p.Feeds)}").ConfigureAwait(false);
        }

        var t = r.ThermalImpact;
        await output.WriteLineAsync($"thermal impact ({t.Zone}): hottest inlet {t.MaxInletBeforeC:0.0} → {t.MaxInletAfterC:0.0} °C ({t.HottestRackAfter})").ConfigureAwait(false);
        foreach (var rack in t.Racks)
        {
            await output.WriteLineAsync($"  {rack.Rack,-10} {(double.IsNaN(rack.InletBeforeC) ? "   new" : rack.InletBeforeC.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture)),6} → {rack.InletAfterC:0.0} °C").ConfigureAwait(false);
        }

        var h = r.PowerHeadroom;
        await output.WriteLineAsync($"power headroom: {h.HeadroomKw:0.0} kW ({h.BindingElement}), with redundancy {h.HeadroomRedundantKw:0.0} kW ({h.BindingElementRedundant})").ConfigureAwait(false);
        if (h.UnpoweredRacks.Count > 0)
        {
            await output.WriteLineAsync($"racks without power: {string.Join(", ", h.UnpoweredRacks)}").ConfigureAwait(false);
        }

        var c = r.CoolingSufficient;
        await output.WriteLineAsync($"cooling: load {c.HeatLoadKw:0.0} kW, capacity {c.CapacityKw:0} kW, N+1 {c.CapacityNPlus1Kw:0} kW → {(c.SufficientNPlus1 ? "sufficient with N+1" : c.Sufficient ? "sufficient only without N+1" : "insufficient")}").ConfigureAwait(false);
        if (r.Alternatives.Count > 0)
        {
            await output.WriteLineAsync($"next best places: {string.Join("; ", r.Alternatives.Select(a => $"{a.Zone}/{a.Row} next to {a.NextTo}"))}").ConfigureAwait(false);
        }

        // What the power figures rest on: the method always, and every rack load that is not a fresh measurement.
        await output.WriteLineAsync($"power data: {r.PowerData}").ConfigureAwait(false);
        foreach (var assumption in r.Assumptions)
        {
            await output.WriteLineAsync($"  assumed: {assumption}").ConfigureAwait(false);
        }
    }
}
