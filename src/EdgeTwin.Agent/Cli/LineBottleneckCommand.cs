using System.Globalization;
using System.Text;
using System.Text.Json;
using EdgeTwin.Agent.Line;
using EdgeTwin.Twin.Line;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin line bottleneck --config FILE [--states CSV] [--json]</c>: the bottleneck by the active-period method
/// (mean active period per station, sole and shifting momentary-bottleneck shares), from a state log or a simulated shift.
/// Exit codes: 0 ok, 2 invalid config or log.
/// </summary>
internal sealed class LineBottleneckCommand() : LineShiftCommand("bottleneck", "Bottleneck by the active-period method (Roser).")
{
    protected override async Task WriteAsync(LineTwinConfig c, LineCli.ShiftRecord rec, bool json, TextWriter output, TextWriter error)
    {
        var r = rec.Bottleneck.Analyse(rec.EndSeconds);
        if (json)
        {
            await output.WriteLineAsync(JsonSerializer.Serialize(new { line = c.Id, source = rec.Source, bottleneck = r.Bottleneck, stations = r.Stations }, LineCli.JsonOptions)).ConfigureAwait(false);
            return;
        }
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(inv, $"line {c.Id}, {rec.Source}: bottleneck {r.Bottleneck ?? "(no data)"}");
        sb.AppendLine("station  mean active s  active  sole   shifting");
        foreach (var s in r.Stations.OrderByDescending(s => s.MeanActiveSeconds))
            sb.AppendLine(inv, $"{s.Station,-8} {s.MeanActiveSeconds,13:0} {s.ActiveShare,7:P0} {s.SoleShare,6:P0} {s.ShiftingShare,8:P0}");
        await output.WriteAsync(sb.ToString()).ConfigureAwait(false);
    }
}
