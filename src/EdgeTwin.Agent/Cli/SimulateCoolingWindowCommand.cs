using System.CommandLine;
using EdgeTwin.Agent.Twin.Requests;
using EdgeTwin.Agent.Twin.Thermal;
using EdgeTwin.Twin.Scenarios;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin simulate cooling-maintenance-window --unit crac1 --minutes 240 [--step-min 30] [--within-h 24]
/// [--non-critical R1,R2] [--precool-min 60] (--config FILE --history CSV | --demo-seed N) [--json]</c>: when over the next day to stop
/// cooling units for a planned repair with the most margin, every start on a grid run through the twin with the load's
/// daily profile; when no start holds, what would (a shorter stop, measures for the whole stop). A what-if on the twin:
/// nothing is sent to any device. Exit codes: 0 done, 2 bad arguments or input.
/// </summary>
internal sealed class SimulateCoolingWindowCommand : ICliSubcommand
{
    public string Parent => "simulate";

    public Command Create()
    {
        var source = new TwinCliSource();
        var unit = new Option<string[]>("--unit") { Description = "Cooling unit to stop (repeat for several stopped together).", Required = true };
        var minutes = new Option<double>("--minutes") { Description = "How long the units stay stopped (1–1440).", Required = true }
            .Between(1, CoolingWindowOptions.MaxOutage.TotalMinutes);
        var step = new Option<double>("--step-min") { Description = "Minutes between the start times tried (5–1440).", DefaultValueFactory = _ => 30 }
            .Between(TwinScenarios.MinWindowStepMin, 24 * 60);
        var within = new Option<double>("--within-h") { Description = "Latest start tried, in hours from now (0–48).", DefaultValueFactory = _ => 24 }
            .Between(0, CoolingWindowOptions.MaxWithin.TotalHours);
        var nonCritical = new Option<string[]>("--non-critical") { Description = "Racks whose load may be shut down for the stop (a measure tried when no start holds; repeat or comma-separate)." };
        var precool = new Option<double>("--precool-min") { Description = "Minutes before the stop that the precool measure raises the remaining units' fans and lowers their set points (0: not tried; up to 360).", DefaultValueFactory = _ => CoolingWindowOptions.DefaultPrecoolLead.TotalMinutes }
            .Between(0, CoolingWindowOptions.MaxPrecoolLead.TotalMinutes);
        var command = new Command("cooling-maintenance-window", "Best time over the next day to stop cooling units for a repair, and how the room holds.");
        command.Options.Add(unit);
        command.Options.Add(minutes);
        command.Options.Add(step);
        command.Options.Add(within);
        command.Options.Add(nonCritical);
        command.Options.Add(precool);
        source.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            if (TwinScenarios.TooManyStarts(parse.GetValue(step), parse.GetValue(within)) is { } tooMany)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync("simulate cooling-maintenance-window: --step-min " + tooMany).ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }

            return await PerZoneOutput.RunAsync(
                parse,
                source,
                "simulate cooling-maintenance-window",
                twin => TwinScenarios.CoolingWindow(twin, TwinScenarios.Ids(parse.GetValue(unit)), parse.GetValue(minutes), parse.GetValue(step), parse.GetValue(within), TwinScenarios.Ids(parse.GetValue(nonCritical)), parse.GetValue(precool)),
                WriteAsync).ConfigureAwait(false);
        });
        return command;
    }

    private static async Task WriteAsync(TextWriter output, CoolingWindowResult r)
    {
        await output.WriteLineAsync($"cooling_maintenance_window in {r.Zone} (model fit {r.ModelFitRmseK:0.00} K rms{(r.LoadProfile ? string.Empty : "; no daily load profile calibrated: the present load is held, so the starts differ little")}{(r.ModelBasis == "defaults" ? "; GUESS from typical figures" : string.Empty)})").ConfigureAwait(false);
        await output.WriteLineAsync(CoolingMaintenanceWindow.Describe(r)).ConfigureAwait(false);
        await output.WriteLineAsync($"{"start in",9} {"zone kW",8} {"peak",6} {"hottest",-10} {"to 32 °C",10} {"to shutdown",12} racks at 32 °C").ConfigureAwait(false);
        foreach (var c in r.Candidates)
        {
            var mark = ReferenceEquals(c, r.Best) ? "  <- best" : string.Empty;
            await output.WriteLineAsync($"{c.StartInSeconds / 3600,7:0.0} h {c.ZoneLoadKw,8:0.0} {c.PeakInletC,6:0.0} {c.HottestRack,-10} {TwinCliSource.Minutes(c.TimeTo32Seconds),10} {TwinCliSource.Minutes(c.TimeToShutdownSeconds),12} {Racks(c.RacksAt32C)}{mark}").ConfigureAwait(false);
        }

        if (r.Remedies is { } remedies)
        {
            await output.WriteLineAsync(remedies.LongestHoldingOutageSeconds is { } longest
                ? $"shorter stop: at most {CoolingMaintenanceWindow.Duration(longest)} holds, starting in {remedies.LongestHoldingStartInSeconds / 3600:0.0} h"
                : $"shorter stop: not even {CoolingMaintenanceWindow.ShorterStopStep.TotalMinutes:0} min holds").ConfigureAwait(false);
            await output.WriteLineAsync(remedies.HeatToRemoveKw is { } kw
                ? $"heat to remove for the whole stop at that start: about {kw:0.#} kW (portable cooling, or load moved out of the room)"
                : "heat to remove: the room does not hold even without its IT load").ConfigureAwait(false);
            if (remedies.Measures.Count > 0)
            {
                await output.WriteLineAsync($"measures kept through the stop, taken when the units stop (precool: before), each tried at {remedies.Measures[0].StartsTried} of the starts:").ConfigureAwait(false);
                await output.WriteLineAsync($"{"rank",4} {"action",-26} {"hold",7} {"best in",8} {"peak",6} {"to 32 °C",10} description").ConfigureAwait(false);
                foreach (var m in remedies.Measures)
                {
                    await output.WriteLineAsync($"{m.Rank,4} {m.Action,-26} {$"{m.StartsHolding}/{m.StartsTried}",7} {m.Best.StartInSeconds / 3600,6:0.0} h {m.Best.PeakInletC,6:0.0} {TwinCliSource.Minutes(m.Best.TimeTo32Seconds),10} {m.Description}").ConfigureAwait(false);
                }
            }
        }

        foreach (var a in r.Assumptions)
        {
            await output.WriteLineAsync("assumed: " + a).ConfigureAwait(false);
        }
    }

    private static string Racks(IReadOnlyList<string> racks) =>
        racks.Count == 0 ? "none" : string.Join(",", racks.Take(5)) + (racks.Count > 5 ? $" +{racks.Count - 5} more" : string.Empty);
}
