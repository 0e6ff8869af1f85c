using System.CommandLine;
using EdgeTwin.Agent.Twin.Requests;
using EdgeTwin.Agent.Twin.Thermal;
using EdgeTwin.Twin.Scenarios;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin simulate cooling-failure --unit CRAC-2 [--unit …] (--config FILE --history CSV | --demo-seed N) [--json]</c>:
/// per rack the predicted time to 27 °C, 32 °C and the shutdown inlet, the affected racks and servers, and a ranked
/// mitigation plan. A what-if on the twin: nothing is sent to any device. Exit codes: 0 done, 2 bad arguments or input.
/// </summary>
internal sealed class SimulateCoolingFailureCommand : ICliSubcommand
{
    public string Parent => "simulate";

    public Command Create()
    {
        var source = new TwinCliSource();
        var unit = new Option<string[]>("--unit") { Description = "Cooling unit that fails (repeat for several).", Required = true };
        var horizon = new Option<double>("--horizon-min") { Description = "Forecast horizon in minutes (1–10080).", DefaultValueFactory = _ => 120 }
            .Between(TwinScenarios.MinHorizonMin, TwinScenarios.MaxHorizonMin);
        var nonCritical = new Option<string[]>("--non-critical") { Description = "Racks whose load may be shed (repeat or comma-separate)." };
        var lead = new Option<Dictionary<string, double>>("--lead")
        {
            Description = "How long a mitigation takes from decision to effect here: ACTION=MINUTES (repeat or comma-separate; "
                + "actions " + string.Join(", ", CoolingFailureOptions.MeasureActions) + "; defaults 2, 5, 5, 15, 5, or the site's thermal_twin.mitigation_lead_times).",
            AllowMultipleArgumentsPerToken = false,
            CustomParser = ParseLeads,
        };
        var command = new Command("cooling-failure", "Predict which racks overheat, when, and what to do first if cooling units fail.");
        command.Options.Add(unit);
        command.Options.Add(horizon);
        command.Options.Add(nonCritical);
        command.Options.Add(lead);
        source.AddTo(command);
        command.SetAction((parse, ct) => PerZoneOutput.RunAsync(
            parse,
            source,
            "simulate cooling-failure",
            twin => TwinScenarios.CoolingFailure(twin, TwinScenarios.Ids(parse.GetValue(unit)), parse.GetValue(horizon), TwinScenarios.Ids(parse.GetValue(nonCritical)), parse.GetValue(lead)),
            WriteAsync));
        return command;
    }

    /// <summary><c>--lead open_containment=10 --lead cap_load=3,migrate_load=30</c>: each pair checked as a twin request's <c>lead_min</c>.</summary>
    private static Dictionary<string, double> ParseLeads(System.CommandLine.Parsing.ArgumentResult r)
    {
        var leads = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var pair in TwinScenarios.Ids(r.Tokens.Select(t => t.Value)))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0 || !double.TryParse(pair.AsSpan(eq + 1), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var minutes))
            {
                r.AddError($"--lead: expected ACTION=MINUTES (e.g. open_containment=10), got '{pair}'");
                continue;
            }

            var action = pair[..eq].Trim();
            if (TwinScenarios.LeadProblem(action, minutes) is { } problem)
            {
                r.AddError("--lead: " + problem);
                continue;
            }

            leads[action] = minutes;
        }

        return leads;
    }

    private static async Task WriteAsync(TextWriter output, CoolingFailureResult r)
    {
        await output.WriteLineAsync($"cooling_failure in {r.Zone}: {string.Join(", ", r.FailedUnits)} stopped (model fit {r.ModelFitRmseK:0.00} K rms)").ConfigureAwait(false);
        await output.WriteLineAsync($"time to thermal shutdown ({r.ShutdownInletC:0} °C inlet): {TwinCliSource.Minutes(r.TimeToThermalShutdownSeconds)}").ConfigureAwait(false);
        await output.WriteLineAsync($"affected racks (≥ 32 °C within {r.HorizonSeconds / 60:0} min): {(r.AffectedRacks.Count == 0 ? "none" : string.Join(", ", r.AffectedRacks))}").ConfigureAwait(false);
        if (r.AffectedServers.Count > 0)
        {
            await output.WriteLineAsync($"servers reaching shutdown: {string.Join(", ", r.AffectedServers.Select(kv => $"{kv.Key} ({kv.Value})"))}").ConfigureAwait(false);
        }

        await output.WriteLineAsync($"{"rack",-10} {"inlet now",9} {"to 27 °C",10} {"to 32 °C",10} {"to shutdown",12} {"peak",7}").ConfigureAwait(false);
        foreach (var rack in r.Racks.OrderBy(x => x.TimeTo32Seconds ?? double.MaxValue).ThenByDescending(x => x.PeakInletC))
        {
            await output.WriteLineAsync($"{rack.Rack,-10} {rack.InletNowC,9:0.0} {TwinCliSource.Minutes(rack.TimeTo27Seconds),10} {TwinCliSource.Minutes(rack.TimeTo32Seconds),10} {TwinCliSource.Minutes(rack.TimeToShutdownSeconds),12} {rack.PeakInletC,7:0.0}").ConfigureAwait(false);
        }

        await output.WriteLineAsync("mitigation plan (each step alone, and all together when none is enough; minutes gained before the first rack reaches 32 °C):").ConfigureAwait(false);
        foreach (var step in r.MitigationPlan)
        {
            await output.WriteLineAsync($"  {step.Rank}. {step.Description}: {(step.PreventsLimit ? "keeps every rack below the limit" + CoolingFailureScenario.Deadline(step) : $"+{step.MinutesGained:0.0} min")}").ConfigureAwait(false);
        }
    }
}

/// <summary>Text and JSON output shared by the per-zone cooling what-ifs (<c>cooling-failure</c>, <c>cooling-maintenance-window</c>).</summary>
internal static class PerZoneOutput
{
    /// <summary>
    /// Runs a per-zone what-if on the twin of <paramref name="source"/> and prints it: the JSON of <see cref="TwinScenarios.PerZoneJson"/>
    /// with <c>--json</c>, else <paramref name="write"/> per zone. Exit codes: 0 done, 2 when the twin cannot be loaded or
    /// the scenario refuses its arguments (the message says why).
    /// </summary>
    public static async Task<int> RunAsync<T>(ParseResult parse, TwinCliSource source, string command, Func<SiteTwin, IReadOnlyList<T>> scenario, Func<TextWriter, T, Task> write)
    {
        ArgumentNullException.ThrowIfNull(parse);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(scenario);
        ArgumentNullException.ThrowIfNull(write);
        var output = parse.InvocationConfiguration.Output;
        var error = parse.InvocationConfiguration.Error;
        var twin = source.Load(parse, error, command);
        if (twin is null)
        {
            return ExitCodes.InvalidConfig;
        }

        IReadOnlyList<T> results;
        try
        {
            results = scenario(twin);
        }
        catch (ArgumentException e)
        {
            await error.WriteLineAsync("simulate " + TwinScenarios.Reason(e)).ConfigureAwait(false);
            return ExitCodes.InvalidConfig;
        }

        if (parse.GetValue(source.JsonOutput))
        {
            await output.WriteLineAsync(TwinScenarios.PerZoneJson(results)).ConfigureAwait(false);
            return ExitCodes.Ok;
        }

        foreach (var r in results)
        {
            await write(output, r).ConfigureAwait(false);
        }

        return ExitCodes.Ok;
    }
}
