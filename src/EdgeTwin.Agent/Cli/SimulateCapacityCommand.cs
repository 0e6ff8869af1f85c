using System.CommandLine;
using EdgeTwin.Agent.Twin.Requests;
using EdgeTwin.Agent.Twin.Thermal;
using EdgeTwin.Twin.Capacity;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin simulate capacity (--config FILE --history CSV | --demo-seed N) [--confidence 0.9] [--json]</c>: per zone,
/// power and cooling days to exhaustion from the recorded load trend (daily and weekly cycles removed), with an interval.
/// Exit codes: 0 done, 2 bad arguments or input (including too short a history).
/// </summary>
internal sealed class SimulateCapacityCommand : ICliSubcommand
{
    public string Parent => "simulate";

    public Command Create()
    {
        var source = new TwinCliSource();
        var confidence = new Option<double>("--confidence") { Description = "Confidence of the interval (0.5–0.99).", DefaultValueFactory = _ => 0.9 };
        var command = new Command("capacity", "Power and cooling days to exhaustion per zone from the load trend, with an interval.");
        command.Options.Add(confidence);
        source.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var level = parse.GetValue(confidence);
            if (level is < 0.5 or > 0.99)
            {
                await error.WriteLineAsync($"simulate capacity: --confidence {level} is outside 0.5–0.99").ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }

            var twin = source.Load(parse, error, "simulate capacity");
            if (twin is null)
            {
                return ExitCodes.InvalidConfig;
            }

            IReadOnlyList<ZoneCapacity> result;
            try
            {
                result = TwinScenarios.Capacity(twin, source.LastFrames, level);
            }
            catch (ArgumentException e)
            {
                await error.WriteLineAsync("simulate capacity: " + TwinScenarios.Reason(e)).ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }

            if (parse.GetValue(source.JsonOutput))
            {
                await output.WriteLineAsync(TwinScenarios.Json(result)).ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            foreach (var z in result)
            {
                await output.WriteLineAsync($"capacity of {z.Zone} ({z.HistoryDays:0.#} days of history, {z.Samples} samples):").ConfigureAwait(false);
                foreach (var e in new[] { z.Power, z.Cooling })
                {
                    var days = e.DaysToExhaustion is { } d ? $"{d:0.#} days ({(e.DaysLower is { } lo ? lo.ToString("0.#", System.Globalization.CultureInfo.InvariantCulture) : "?")}–{(e.DaysUpper is { } hi ? hi.ToString("0.#", System.Globalization.CultureInfo.InvariantCulture) : "not certain")}, {e.Confidence:P0})" : "not on the present trend";
                    await output.WriteLineAsync($"  {e.Resource,-8} limit {e.LimitKw:0.0} kW{(e.LimitedBy is { } by ? $" ({by})" : "")}, level {e.LevelKw:0.0} kW + seasonal peak {e.SeasonalPeakKw:0.0} kW, trend {e.TrendKwPerDay:+0.000;-0.000} kW/day: exhausted in {days}").ConfigureAwait(false);
                }
            }

            // The power limit rests on the present rack loads: say which were not measured.
            foreach (var assumption in twin.Readings.Assumptions)
            {
                await output.WriteLineAsync($"  assumed: {assumption}").ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });
        return command;
    }
}
