using System.Buffers;
using System.Globalization;
using System.Text.Json;
using EdgeTwin.Alerting.State;
using EdgeTwin.Core.Events;

namespace EdgeTwin.Alerting.Sinks;

/// <summary>
/// The body of <c>POST /api/v2/alerts</c> for Prometheus Alertmanager (<c>format: alertmanager</c>): a JSON array of
/// <c>{"labels":{…},"annotations":{…},"startsAt":…[,"endsAt":…]}</c>, one per alert.
/// Labels are the alert's identity in Alertmanager (its fingerprint, what routes, inhibitions and silences match):
/// <c>alertname</c> (the rule), <c>site</c>, <c>gateway</c>, <c>severity</c>, <c>key</c> (the series or scope) and the
/// alert's own labels (device, rack, room, the rule's <c>labels:</c>), names made valid for Alertmanager
/// (<c>[a-zA-Z_][a-zA-Z0-9_]*</c>: <c>rack.row</c> is <c>rack_row</c>; on a clash the first in name order is kept, and
/// EdgeTwin's own five win). Nothing that changes within an episode is a label — acknowledged, flapping, the value and
/// the peak are annotations — or Alertmanager would see a new alert and page again.
/// A firing alert has no <c>endsAt</c>: Alertmanager ends it <c>resolve_timeout</c> after the last post on its own clock,
/// so a gateway clock that is off does not end it early; the sink re-sends it (<see cref="SinkRunner"/>). A resolved
/// alert's <c>endsAt</c> is its <c>resolved_at</c> (never before <c>startsAt</c>, which Alertmanager refuses with 400).
/// No <c>generatorURL</c>: the gateway has no page to link to.
/// </summary>
public static class AlertmanagerJson
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = WireJsonEncoder.Instance };

    public static byte[] Encode(string site, string gateway, IReadOnlyList<AlertSnapshot> alerts)
    {
        ArgumentNullException.ThrowIfNull(alerts);
        var buffer = new ArrayBufferWriter<byte>(64 + (alerts.Count * 512));
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartArray();
            foreach (var a in alerts)
            {
                Write(w, site, gateway, a);
            }

            w.WriteEndArray();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>A label name Alertmanager accepts: every character outside <c>[a-zA-Z0-9_]</c> becomes <c>_</c>, and a leading digit gets a <c>_</c> before it.</summary>
    public static string LabelName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length > 0 && !char.IsAsciiDigit(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
        {
            return name;
        }

        var chars = name.Select(c => char.IsAsciiLetterOrDigit(c) || c == '_' ? c : '_');
        var fixedName = new string([.. chars]);
        return fixedName.Length == 0 || char.IsAsciiDigit(fixedName[0]) ? "_" + fixedName : fixedName;
    }

    private static void Write(Utf8JsonWriter w, string site, string gateway, AlertSnapshot a)
    {
        var labels = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in a.Labels.OrderBy(l => l.Key, StringComparer.Ordinal))
        {
            // An empty value is no label in Alertmanager (as in Prometheus): leaving it out keeps the fingerprint the same.
            if (v.Length > 0)
            {
                labels.TryAdd(LabelName(k), v);
            }
        }

        labels["alertname"] = a.Rule;
        labels["site"] = site;
        labels["gateway"] = gateway;
        labels["severity"] = AlertManager.SeverityName(a.Severity);
        labels["key"] = a.Key;
        foreach (var k in labels.Where(l => l.Value.Length == 0).Select(l => l.Key).ToList())
        {
            labels.Remove(k);
        }

        var starts = a.FiredAt ?? a.Time;
        w.WriteStartObject();
        w.WriteStartObject("labels");
        foreach (var (k, v) in labels)
        {
            w.WriteString(k, v);
        }

        w.WriteEndObject();
        w.WriteStartObject("annotations");
        w.WriteString("summary", a.Summary);
        if (double.IsFinite(a.Value))
        {
            // Read by people in Alertmanager's UI, Grafana and pager texts, like "peak": "110.313 % of breaker", not "110.31249999999999".
            w.WriteString("value", a.ValueText ?? WireNumber.Format(a.Value));
        }

        if (a.PeakText is { } peak)
        {
            w.WriteString("peak", peak);
        }

        w.WriteString("description", Description(site, gateway, a, starts));

        // The names Alertmanager's and Grafana's templates and PagerDuty's integration look for (runbook_url); the
        // first action also ends the description, which most default notification templates show.
        if (a.Action is { } action)
        {
            w.WriteString("action", action);
        }

        if (a.RunbookUrl is { } runbook)
        {
            w.WriteString("runbook_url", runbook);
        }

        w.WriteString("status", AlertJson.StatusName(a.Status));
        if (a.AckedAt is { } acked)
        {
            w.WriteString("acknowledged_at", WireTime.Instant(acked));
        }

        if (a.Flapping)
        {
            w.WriteString("flapping", "true");
        }

        w.WriteString("edgetwin_id", a.Id.ToString(CultureInfo.InvariantCulture));
        w.WriteEndObject();
        w.WriteString("startsAt", WireTime.Instant(starts));
        if (a.Status == AlertStatus.Resolved)
        {
            var ends = a.ResolvedAt ?? a.Time;
            w.WriteString("endsAt", WireTime.Instant(ends < starts ? starts : ends));
        }

        w.WriteEndObject();
    }

    /// <summary>The longer text: which gateway, which rule on what, since when, how bad it got, acknowledged or flapping.</summary>
    private static string Description(string site, string gateway, AlertSnapshot a, DateTimeOffset starts)
    {
        var text = $"EdgeTwin gateway {gateway} (site {site}), rule {a.Rule} on {a.Key}: {AlertJson.StatusName(a.Status)}, fired {WireTime.Instant(starts)}";
        if (a.Status == AlertStatus.Resolved && a.ResolvedAt is { } resolved)
        {
            text += ", resolved " + WireTime.Instant(resolved);
        }

        if (a.PeakText is { } peak)
        {
            text += "; peak " + peak;
        }

        if (a.AckedAt is { } acked && a.Status != AlertStatus.Resolved)
        {
            text += "; acknowledged " + WireTime.Instant(acked) + " on the gateway, still firing (silence it in Alertmanager to stop paging)";
        }

        if (a.Flapping)
        {
            text += "; flapping: its changes are held back until it settles";
        }

        if (a.Action is { } action)
        {
            text += ". First action: " + action;
        }

        if (a.RunbookUrl is { } runbook)
        {
            text += (a.Action is null ? ". " : "; ") + "runbook: " + runbook;
        }

        return text;
    }
}
