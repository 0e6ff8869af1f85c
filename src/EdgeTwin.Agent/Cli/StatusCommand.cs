using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using EdgeTwin.Agent.Alerting;
using EdgeTwin.Core.Config;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin status [--config FILE | --socket PATH] [--json] [--timeout 10s]</c>: the running agent at a glance, for
/// the operator on the gateway during an outage and for scripts. Exit 0 healthy, 1 problems (each named), 2 bad
/// usage or config, 3 the agent cannot be asked.
/// </summary>
internal sealed class StatusCommand : ICliCommand
{
    public const int Unreachable = 3;

    public Command Create()
    {
        var cli = new AlertsCli();
        var command = new Command(
            "status",
            "The running agent at a glance: the uplink and since when, what waits in the outbox (entries, bytes, oldest "
            + "unsent), how fast it grows and when the disk budget starts condensing and dropping, alerts firing, alert sinks "
            + "down. Exit 0 healthy, 1 problems (listed, and on stderr), 2 bad usage or config, 3 the agent cannot be asked "
            + "(not running, permission denied, no answer within --timeout, busy). Plain text, never colours; --json for scripts.");
        cli.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var (answer, exit) = await cli.SendAsync(parse, "status", AlertsCli.Request(("op", "status")), Unreachable, ct).ConfigureAwait(false);
            if (answer is null)
            {
                return exit;
            }

            using (answer)
            {
                var root = answer.RootElement;
                var error = parse.InvocationConfiguration.Error;
                if (!root.GetProperty("ok").GetBoolean() || !root.TryGetProperty("problems", out var problems))
                {
                    // An agent from before `status` answers "unknown op 'status'".
                    await error.WriteLineAsync("edgetwin status: " + AlertsCli.Str(root, "error")).ConfigureAwait(false);
                    return Unreachable;
                }

                if (parse.GetValue(cli.Json))
                {
                    await parse.InvocationConfiguration.Output.WriteLineAsync(root.GetRawText()).ConfigureAwait(false);
                }
                else
                {
                    await PrintAsync(root, parse.InvocationConfiguration.Output).ConfigureAwait(false);
                }

                if (problems.GetArrayLength() == 0)
                {
                    return 0;
                }

                await error.WriteLineAsync("edgetwin status: " + string.Join("; ", problems.EnumerateArray().Select(p => p.GetString()))).ConfigureAwait(false);
                return 1;
            }
        });
        return command;
    }

    /// <summary>
    /// <c>sent 1.2 MiB since the agent started (live ~41.0 MiB/day): summary 1.0 MiB, raw 180.0 KiB, event 2.1 KiB, prediction 0 B;
    /// replay 0 B; max_rate 64 kbit/s, the replay held back 0s</c>; null for an agent from before these fields.
    /// </summary>
    internal static string? Traffic(JsonElement u)
    {
        if (!u.TryGetProperty("bytes_since_start", out var total) || total.ValueKind != JsonValueKind.Number)
        {
            return null;
        }

        var perDay = u.GetProperty("live_bytes_per_day") is { ValueKind: JsonValueKind.Number } d ? $" (live ~{Size(d.GetInt64())}/day)" : "";
        var kinds = string.Join(", ", u.GetProperty("bytes_by_kind").EnumerateObject().Select(k => $"{k.Name} {Size(k.Value.GetInt64())}"));
        var budget = u.GetProperty("max_rate_bytes_per_s") is { ValueKind: JsonValueKind.Number } rate
            ? string.Create(CultureInfo.InvariantCulture, $"max_rate {rate.GetDouble() * 8 / 1000:0.###} kbit/s, the replay held back {Durations.Approximate(TimeSpan.FromSeconds(u.GetProperty("replay_held_by_max_rate_s").GetDouble()))}")
            : "no max_rate";
        return $"sent {Size(total.GetInt64())} since the agent started{perDay}: {kinds}; replay {Size(u.GetProperty("replay_bytes_since_start").GetInt64())}; {budget}";
    }

    /// <summary>
    /// <c>write-back to the file failing: CAUSE (since T, next try in 2 min)</c> while in memory and a write-back failed
    /// for more than the read-only file system; null otherwise (or from an agent before these fields).
    /// </summary>
    internal static string? WriteBackLine(JsonElement box)
    {
        if (!box.TryGetProperty("write_back_failed_at", out var at) || at.ValueKind != JsonValueKind.String)
        {
            return null;
        }

        var next = box.TryGetProperty("write_back_next_in_s", out var n) && n.ValueKind == JsonValueKind.Number && n.GetDouble() >= 1
            ? "next try in " + Durations.Approximate(TimeSpan.FromSeconds(n.GetDouble()))
            : "trying again now";
        return $"          write-back to the file failing: {AlertsCli.Str(box, "write_back_failure")} (last at {AlertsCli.Short(at.GetString()!)}, {next})";
    }

    private static async Task PrintAsync(JsonElement root, TextWriter o)
    {
        var uplink = root.GetProperty("uplink");
        await o.WriteLineAsync($"uplink    {AlertsCli.Str(uplink, "state")} since {AlertsCli.Short(AlertsCli.Str(uplink, "since"))} ({Ago(uplink, "for_s")})").ConfigureAwait(false);

        if (root.TryGetProperty("outbox", out var box) && box.ValueKind == JsonValueKind.Object)
        {
            var oldest = box.GetProperty("oldest_unsent").ValueKind == JsonValueKind.Null
                ? "nothing unsent"
                : $"oldest unsent {AlertsCli.Short(AlertsCli.Str(box, "oldest_unsent"))} ({Ago(box, "oldest_unsent_age_s")} ago)";
            await o.WriteLineAsync($"outbox    {AlertsCli.Str(box, "entries")} entries, {Size(box.GetProperty("entry_bytes").GetInt64())} of a {Size(box.GetProperty("budget_bytes").GetInt64())} budget ({box.GetProperty("budget_used").GetDouble() * 100:0.#} %); {oldest}").ConfigureAwait(false);
            if (box.TryGetProperty("memory_only_since", out var memory) && memory.ValueKind == JsonValueKind.String)
            {
                await o.WriteLineAsync($"          IN MEMORY ONLY since {AlertsCli.Short(memory.GetString()!)}: the outbox's file system turned read-only; at most {Size(box.GetProperty("memory_budget_bytes").GetInt64())} kept, lost if the agent stops or the power fails").ConfigureAwait(false);
                if (WriteBackLine(box) is { } writeBack)
                {
                    await o.WriteLineAsync(writeBack).ConfigureAwait(false);
                }
            }

            if (box.TryGetProperty("storage_failing_since", out var failing) && failing.ValueKind == JsonValueKind.String)
            {
                await o.WriteLineAsync($"          WRITES FAIL since {AlertsCli.Short(failing.GetString()!)}: {AlertsCli.Str(box, "storage_failure")}").ConfigureAwait(false);
            }

            foreach (var u in box.GetProperty("uplinks").EnumerateObject())
            {
                // An agent from before rejected_since_start does not send it: the line stays as it was.
                var refused = u.Value.TryGetProperty("rejected_since_start", out var r) && r.ValueKind == JsonValueKind.Number ? r.GetInt64() : 0;
                var last = refused > 0 && u.Value.TryGetProperty("last_rejected", out var l) && l.ValueKind == JsonValueKind.Object
                    ? $" (last: entry {AlertsCli.Str(l, "seq")} at {AlertsCli.Short(AlertsCli.Str(l, "time"))}: {AlertsCli.Str(l, "reason")})"
                    : "";
                await o.WriteLineAsync($"          uplink {u.Name}: {AlertsCli.Str(u.Value, "behind")} entries behind, {refused} refused for good by the peer since the agent started{last}").ConfigureAwait(false);
                if (Traffic(u.Value) is { } traffic)
                {
                    await o.WriteLineAsync($"          uplink {u.Name}: {traffic}").ConfigureAwait(false);
                }
            }

            var rate = box.GetProperty("growth_bytes_per_s");
            var condenseIn = box.GetProperty("condense_in_s");
            var growth = rate.ValueKind == JsonValueKind.Number ? $"growing {Size((long)rate.GetDouble())}/s" : "not growing (or under a minute of history)";
            var when = condenseIn.ValueKind != JsonValueKind.Number ? "" : condenseIn.GetDouble() <= 0
                ? "; at 90 % of the budget now"
                : $"; 90 % of the budget in ~{Durations.Approximate(TimeSpan.FromSeconds(condenseIn.GetDouble()))}";
            await o.WriteLineAsync($"          {growth}{when}").ConfigureAwait(false);
            await o.WriteLineAsync($"          at the budget: {AlertsCli.Str(box, "at_budget")}").ConfigureAwait(false);
            if (box.TryGetProperty("disk_free_bytes", out var free) && free.ValueKind == JsonValueKind.Number)
            {
                var binds = box.TryGetProperty("disk_smaller_than_budget", out var b) && b.ValueKind == JsonValueKind.True;
                await o.WriteLineAsync($"          disk: {Size(free.GetInt64())} free on the outbox's filesystem{(binds ? ", less than the budget still allows: the disk fills first" : "")}").ConfigureAwait(false);
            }

            var maxAge = Durations.Format(TimeSpan.FromSeconds(box.GetProperty("max_age_s").GetDouble()));
            var dropIn = box.GetProperty("max_age_drop_in_s");
            await o.WriteLineAsync(dropIn.ValueKind == JsonValueKind.Number
                ? $"          max_age {maxAge}: entries older are dropped (events and predictions kept); the oldest in {Durations.Approximate(TimeSpan.FromSeconds(dropIn.GetDouble()))}"
                : $"          max_age {maxAge}: entries older are dropped (events and predictions kept)").ConfigureAwait(false);
            await o.WriteLineAsync($"          condensed {AlertsCli.Str(box, "condensed")}, dropped {AlertsCli.Str(box, "dropped")} (lifetime), dropped since the agent started {AlertsCli.Str(box, "dropped_since_start")}").ConfigureAwait(false);
        }

        if (StoreAndForward.ClockStatus.Line(root) is { } clock)
        {
            await o.WriteLineAsync(clock).ConfigureAwait(false);
        }

        var alerts = root.GetProperty("alerts");
        await o.WriteLineAsync($"alerts    {AlertsCli.Str(alerts, "firing")} firing ({AlertsCli.Str(alerts, "critical")} critical, {AlertsCli.Str(alerts, "unacknowledged")} unacknowledged), {AlertsCli.Str(alerts, "pending")} pending, {AlertsCli.Str(alerts, "silenced_rules")} {(AlertsCli.Str(alerts, "silenced_rules") == "1" ? "rule" : "rules")} silenced").ConfigureAwait(false);
        foreach (var s in root.GetProperty("sinks_down").EnumerateArray())
        {
            await o.WriteLineAsync($"sink      {AlertsCli.Str(s, "name")}: DOWN since {AlertsCli.Short(AlertsCli.Str(s, "since"))}: {AlertsCli.Str(s, "reason")}").ConfigureAwait(false);
        }

        var problems = root.GetProperty("problems");
        if (problems.GetArrayLength() == 0)
        {
            await o.WriteLineAsync("health    OK").ConfigureAwait(false);
            return;
        }

        await o.WriteLineAsync($"health    {problems.GetArrayLength()} problem{(problems.GetArrayLength() == 1 ? "" : "s")}:").ConfigureAwait(false);
        foreach (var p in problems.EnumerateArray())
        {
            await o.WriteLineAsync("  - " + p.GetString()).ConfigureAwait(false);
        }
    }

    private static string Ago(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number
            ? v.GetDouble() < 1 ? "0s" : Durations.Approximate(TimeSpan.FromSeconds(v.GetDouble()))
            : "-";

    private static string Size(long bytes) => bytes >= 1L << 30
        ? (bytes / 1073741824.0).ToString("0.0", CultureInfo.InvariantCulture) + " GiB"
        : bytes >= 1024 * 1024
        ? (bytes / 1048576.0).ToString("0.0", CultureInfo.InvariantCulture) + " MiB"
        : (bytes / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " KiB";
}
