using System.Globalization;
using System.Text;
using System.Text.Json;
using EdgeTwin.Agent.Line;
using EdgeTwin.Twin.Line;
using EdgeTwin.Twin.Line.Oee;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin line oee --config FILE [--states CSV] [--json]</c>: OEE per machine and for the line (ISO 22400-2:
/// availability, effectiveness, quality rate) with the loss breakdown, from a state log
/// (time_s,station,state[,good_count,reject_count]) or, without one, from a simulated shift.
/// Exit codes: 0 ok, 2 invalid config or log.
/// </summary>
internal sealed class LineOeeCommand() : LineShiftCommand("oee", "OEE per machine and line with the loss breakdown (ISO 22400-2).")
{
    protected override async Task WriteAsync(LineTwinConfig c, LineCli.ShiftRecord rec, bool json, TextWriter output, TextWriter error)
    {
        long now = (long)(rec.EndSeconds * 1000);
        // A station that never appears in the log has no figures (0/0 is no data, not 0 %); the line is seen at its
        // output station, so without that station's counts the line's OEE is no data too.
        var silent = rec.Stations.Where((_, i) => !rec.Oee[i].HasReadings).ToArray();
        var outputId = c.OutputStation!;
        bool lineData = rec.LineOee.HasCounts;
        foreach (var id in silent) await error.WriteLineAsync($"line oee: warning: station {id} has no readings in {rec.Source}: its figures are no data").ConfigureAwait(false);
        if (!lineData) await error.WriteLineAsync($"line oee: warning: the output station {outputId} gave no part counts: the line's OEE, performance and quality are no data").ConfigureAwait(false);
        // Rejects never read are no data, not 0: quality is "n/a" with the reason, and where every part was counted the
        // OEE left is A × P, marked (ISO 22400-2's quality rate needs the scrap quantity). The line's quality is its output station's.
        var why = rec.Stations.Select((_, i) => i < rec.RejectsNotMeasured.Count ? rec.RejectsNotMeasured[i] : null).Append(lineData ? rec.RejectsNotMeasured.ElementAtOrDefault(c.Spec.StationIndex(outputId)) : null).ToArray();
        var lineReport = rec.LineOee.Report(now);
        var rows = rec.Stations.Select((id, i) => (id, r: rec.Oee[i].Report(now))).Append(("LINE", lineData ? lineReport : lineReport.WithoutQuantities()))
            .Select((x, i) => (x.Item1, why[i] is { } w ? w.Apply(x.Item2) : x.Item2)).ToArray();
        string Basis(int i) => why[i] is { AllPartsCounted: true } ? "A*P" : "A*P*Q";
        if (json)
        {
            await output.WriteLineAsync(JsonSerializer.Serialize(new
            {
                line = c.Id,
                source = rec.Source,
                no_data = silent,
                line_no_data = lineData ? null : $"output station {outputId} gave no part counts",
                machines = rows.Select((x, i) => new { id = x.Item1, x.Item2.Availability, x.Item2.Effectiveness, x.Item2.QualityRate, quality_no_data = why[i]?.Reason, x.Item2.Oee, oee_basis = Basis(i), x.Item2.PlannedBusyTime, x.Item2.ActualProductionTime, x.Item2.UnknownTime, x.Item2.GoodQuantity, x.Item2.RejectQuantity, losses_s = x.Item2.Losses }),
            }, LineCli.JsonOptions)).ConfigureAwait(false);
            return;
        }
        var inv = CultureInfo.InvariantCulture;
        string P(double? v) => v is { } x ? x.ToString("P1", inv) : "—";
        string M(double? seconds) => seconds is { } x ? (x / 60).ToString("0.#", inv) : "—";
        var sb = new StringBuilder();
        sb.AppendLine(inv, $"line {c.Id}, {rec.Source}, {rec.EndSeconds / 3600:0.##} h");
        sb.AppendLine("machine   avail.  perf.   quality  OEE      good   reject | losses (min): breakdown setup waiting micro speed reject");
        for (int i = 0; i < rows.Length; i++)
        {
            var (id, r) = rows[i];
            var l = r.Losses;
            // A station whose rejects are not known has a count of parts, not of good parts, and no reject count.
            string quality = why[i] is null ? P(r.QualityRate) : "n/a", oee = P(r.Oee) + (why[i] is { AllPartsCounted: true } && r.Oee is not null ? "*" : " ");
            string good = why[i] is { AllPartsCounted: true } ? $"{r.GoodQuantity}†" : r.GoodQuantity.ToString(inv), reject = why[i] is null ? r.RejectQuantity.ToString(inv) : "n/a";
            sb.AppendLine(inv, $"{id,-8} {P(r.Availability),6} {P(r.Effectiveness),6} {quality,7} {oee,7} {good,6} {reject,6} | {l.Breakdowns / 60,9:0.#} {l.Setups / 60,5:0.#} {l.Waiting / 60,7:0.#} {l.MicroStops / 60,5:0.#} {M(l.SpeedLoss),5} {M(l.Rejects),6}");
        }
        if (silent.Length > 0 || !lineData) sb.AppendLine("— = no data (no readings, or no part counts)");
        foreach (var g in rows.Select((x, i) => (x.Item1, W: why[i])).Where(x => x.W is not null).GroupBy(x => x.W!))
        {
            var ids = string.Join(", ", g.Select(x => x.Item1));
            sb.AppendLine(g.Key.AllPartsCounted
                ? $"quality n/a ({g.Key.Reason}): {ids}; no reject count, † counts every part made, * OEE = A × P without quality (ISO 22400-2's quality rate needs the scrap quantity)"
                : $"quality n/a ({g.Key.Reason}): {ids}; performance is no data too (the good count leaves out an unknown number of rejects), OEE = ideal cycle × good / planned busy time");
        }
        // Unknown time is outside the books (neither running nor down): said, or an availability of 100 % hides it.
        var unread = rows.SkipLast(1).Where(x => x.Item2.UnknownTime >= 60 && !silent.Contains(x.Item1)).Select(x => string.Create(inv, $"{x.Item1} {x.Item2.UnknownTime / 60:0.#} min")).ToArray();
        if (unread.Length > 0) sb.AppendLine(inv, $"no readings (unknown, outside the books): {string.Join(", ", unread)}");
        await output.WriteAsync(sb.ToString()).ConfigureAwait(false);
    }
}
