using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using EdgeTwin.Agent.Line;
using EdgeTwin.Twin.Line;
using EdgeTwin.Twin.Line.Scenarios;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin line status --config FILE [--json]</c>: the configured line — stations with ideal cycle time, availability
/// e = MTBF/(MTBF+MTTR) and isolated rate, buffers — and the shift output expected from the simulation (mean and 90 %
/// prediction interval over replications). Exit codes: 0 ok, 2 invalid config.
/// </summary>
internal sealed class LineStatusCommand : ICliSubcommand
{
    public string Parent => "line";

    public Command Create()
    {
        var cli = new LineCli();
        var cmd = new Command("status", "The configured line and its expected output per shift.");
        cli.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var c = LineCli.Load(parse.GetValue(cli.Config)!, parse.InvocationConfiguration.Error);
            if (c is null || !cli.CheckReplications(parse, parse.InvocationConfiguration.Error)) return ExitCodes.InvalidConfig;
            if (cli.ShiftOf(parse, c, parse.InvocationConfiguration.Error) is not { } plan) return ExitCodes.InvalidConfig;
            (c, var stops) = (plan.Line, plan.Stops);
            var scenarios = LineCli.Scenarios(c, stops, parse.GetValue(cli.Replications), parse.GetValue(cli.Seed));
            var f = scenarios.ForecastEndOfShift(new LineNow(0, 0, null));
            var stations = c.Spec.Stations.Select(s =>
            {
                double e = LineStages.Availability(s);
                return new { id = s.Id, ideal_cycle_time_s = s.CycleTimeSeconds, availability = e, isolated_rate_per_h = 3600 * e / s.CycleTimeSeconds, inputs = s.Inputs, output = s.Output };
            }).ToArray();
            // Parallel machines (shared input and output buffers) are one stage: the slowest is a stage, not a machine.
            var slowestStage = LineStages.Slowest(c.Spec);
            var slowest = string.Join('+', slowestStage.Stations.Select(i => c.Spec.Stations[i].Id));
            if (parse.GetValue(cli.Json))
            {
                await output.WriteLineAsync(JsonSerializer.Serialize(new
                {
                    line = c.Id,
                    shift_hours = c.ShiftLength.TotalHours,
                    stations,
                    buffers = c.Spec.Buffers.Select(b => new { id = b.Id, capacity = b.Capacity }),
                    slowest_station = slowest,
                    slowest_stage = new { stations = slowestStage.Stations.Select(i => c.Spec.Stations[i].Id), ideal_cycle_time_s = slowestStage.IdealCycleSeconds, isolated_rate_per_h = slowestStage.IsolatedRatePerHour },
                    planned_stops = stops.Select(w => new { start_s = w.StartSeconds, end_s = w.EndSeconds, station = w.Station < 0 ? null : c.Spec.Stations[w.Station].Id, reason = w.Reason }),
                    shift_output = new { mean = f.Mean.Mean, p5 = f.Prediction.Low, p95 = f.Prediction.High, replications = f.Replications },
                }, LineCli.JsonOptions)).ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            var sb = new StringBuilder();
            var inv = CultureInfo.InvariantCulture;
            sb.AppendLine(inv, $"line {c.Id}: {stations.Length} stations, {c.Spec.Buffers.Count} buffers, shift {c.ShiftLength.TotalHours:0.#} h");
            sb.AppendLine("station  cycle s  avail.  parts/h alone  in -> out");
            foreach (var s in stations)
                sb.AppendLine(inv, $"{s.id,-8} {s.ideal_cycle_time_s,7:0.##}  {s.availability,6:P1}  {s.isolated_rate_per_h,13:0.#}  {string.Join("+", s.inputs)} -> {s.output ?? "(line out)"}");
            foreach (var b in c.Spec.Buffers) sb.AppendLine(inv, $"buffer {b.Id}: capacity {b.Capacity}");
            sb.AppendLine(slowestStage.Stations.Count == 1
                ? string.Create(inv, $"slowest station alone: {slowest} ({slowestStage.IsolatedRatePerHour:0.#} parts/h)")
                : string.Create(inv, $"slowest stage alone: {slowest} in parallel ({slowestStage.IsolatedRatePerHour:0.#} parts/h)"));
            foreach (var line in LineCli.Describe(c, stops)) sb.AppendLine(line);
            sb.AppendLine(inv, $"expected shift output: {f.Mean.Mean:0} parts ({LineCli.Level(f.Prediction)} of shifts {f.Prediction.Low:0}–{f.Prediction.High:0}; {f.Replications} replications)");
            await output.WriteAsync(sb.ToString()).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
