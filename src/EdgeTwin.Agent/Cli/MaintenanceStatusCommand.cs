using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using EdgeTwin.Agent.Alerting;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin maintenance status</c>: each watched machine of the running agent as of its last closed interval (over the
/// alert control socket, as <c>alerts list</c>): RUL in running hours, failure probability within the horizon, how much of
/// the model's window holds data, a frozen signal, the open prediction. Exit codes: 0 answered, 1 the agent unreachable or
/// without maintenance predictions, 2 bad config.
/// </summary>
internal sealed class MaintenanceStatusCommand : ICliSubcommand
{
    public string Parent => "maintenance";

    public Command Create()
    {
        var cli = new AlertsCli();
        var command = new Command(
            "status",
            "Each watched machine as of its last half-hour interval: RUL (running hours), failure probability within the "
            + "horizon, the history it rests on (the model reads 24 h: less is warming up), a frozen transmitter, the open "
            + "prediction and its estimated failure. A machine shows nothing before its first interval closes.");
        cli.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var (answer, exit) = await cli.SendAsync(parse, "maintenance", AlertsCli.Request(("op", "maintenance_status")), unreachableExit: 1, ct).ConfigureAwait(false);
            if (answer is null)
            {
                return exit;
            }

            using (answer)
            {
                var root = answer.RootElement;
                if (!root.GetProperty("ok").GetBoolean())
                {
                    await parse.InvocationConfiguration.Error.WriteLineAsync("edgetwin maintenance: " + root.GetProperty("error").GetString()).ConfigureAwait(false);
                    return 1;
                }

                var output = parse.InvocationConfiguration.Output;
                if (parse.GetValue(cli.Json))
                {
                    await output.WriteLineAsync(root.GetRawText()).ConfigureAwait(false);
                    return 0;
                }

                foreach (var line in Lines(root))
                {
                    await output.WriteLineAsync(line).ConfigureAwait(false);
                }

                return 0;
            }
        });
        return command;
    }

    /// <summary>The answer for people: one line per machine, saying what each figure rests on.</summary>
    internal static IEnumerable<string> Lines(JsonElement root)
    {
        var ic = CultureInfo.InvariantCulture;
        var horizon = root.GetProperty("horizon_hours").GetDouble();
        yield return string.Create(ic, $"model {root.GetProperty("model").GetString()}, failure probability within {horizon:0.#} h, RUL in running hours");
        foreach (var m in root.GetProperty("machines").EnumerateArray())
        {
            var id = m.GetProperty("machine").GetString();
            var history = m.GetProperty("history_hours").GetDouble();
            var window = m.GetProperty("window_hours").GetDouble();
            var rul = m.GetProperty("predicted_rul");
            var p = m.GetProperty("failure_probability");
            var missing = m.TryGetProperty("missing_signals", out var ms) ? ms.GetString() : null;
            var text = missing is not null
                ? $"cannot be predicted: no device located on it carries {missing} (the model needs all three; see the agent's log)"
                : rul.ValueKind != JsonValueKind.Number
                ? "no estimate yet (no half-hour interval of running data has closed since the start or the repair)"
                : p.ValueKind != JsonValueKind.Number
                ? string.Create(ic, $"RUL {rul.GetDouble():0.#} h; no probability (the horizon is longer than the model can answer: see the agent's log)")
                : string.Create(ic, $"RUL {rul.GetDouble():0.#} h, failure probability {p.GetDouble():P0}");
            if (rul.ValueKind == JsonValueKind.Number)
            {
                text += history < window
                    ? string.Create(ic, $", from {history:0.#} h of data of {window:0.#} h (warming up)")
                    : string.Create(ic, $", from {window:0.#} h of data");
                text += ", as of " + m.GetProperty("inputs_until").GetString();
            }

            if (m.GetProperty("frozen_signal").GetString() is { } frozen)
            {
                text += string.Create(ic, $"; {frozen} stuck at {m.GetProperty("frozen_value").GetDouble()} (left out: check the transmitter)");
            }

            text += m.GetProperty("prediction_id").GetString() is { } pid
                ? $"; prediction {pid} open, estimated failure {m.GetProperty("estimated_failure_time").GetString() ?? "not kept"}"
                : "; no prediction open";
            if (m.TryGetProperty("if_failed", out var ifFailed) && ifFailed.ValueKind == JsonValueKind.String)
            {
                text += "; " + ifFailed.GetString();
            }

            yield return $"{id}: {text}";
        }
    }
}
