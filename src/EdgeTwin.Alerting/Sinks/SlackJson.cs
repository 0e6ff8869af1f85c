using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using EdgeTwin.Alerting.State;
using EdgeTwin.Core.Events;

namespace EdgeTwin.Alerting.Sinks;

/// <summary>
/// The body for a Slack-compatible incoming webhook (<c>format: slack</c>; Slack, Mattermost and Rocket.Chat take it):
/// <c>{"text":"…"[,"username":…][,"channel":…]}</c>, one line per alert of the message:
/// <c>FIRING critical inlet-hot: rack A02 (…): inlet_temperature 32.3 °C above 32 °C since 09:37:19 UTC (site sim, gateway gw1; since 2026-12-02 09:37:19 UTC)</c>.
/// A resolved alert says RESOLVED and when, an acknowledged one ACKNOWLEDGED and when, a flapping one FLAPPING.
/// A rule's <c>action</c> and <c>runbook_url</c> follow on an indented line (<c>    first action: … | runbook: https://…</c>),
/// once for consecutive alerts that share them; a resolved alert has no action, only the runbook.
/// <c>&amp;</c>, <c>&lt;</c> and <c>&gt;</c> are written as HTML entities, as Slack requires (Mattermost and Rocket.Chat
/// show them as the characters); nothing else is markup.
/// </summary>
public static class SlackJson
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = WireJsonEncoder.Instance };

    public static byte[] Encode(string site, string gateway, IReadOnlyList<AlertSnapshot> alerts, string? username = null, string? channel = null)
    {
        ArgumentNullException.ThrowIfNull(alerts);
        var buffer = new ArrayBufferWriter<byte>(64 + (alerts.Count * 256));
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("text", Text(site, gateway, alerts));
            if (username is { Length: > 0 })
            {
                w.WriteString("username", username);
            }

            if (channel is { Length: > 0 })
            {
                w.WriteString("channel", channel);
            }

            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The message text: one line per alert.</summary>
    public static string Text(string site, string gateway, IReadOnlyList<AlertSnapshot> alerts)
    {
        ArgumentNullException.ThrowIfNull(alerts);
        var text = new StringBuilder(alerts.Count * 160);
        string? action = null, runbook = null;
        foreach (var a in alerts)
        {
            // What to do first and where the procedure is, under the alerts it belongs to: once after a run of alerts
            // that share them (a room's racks of one rule in one message) rather than the same line twenty times.
            if (a.Action != action || a.RunbookUrl != runbook)
            {
                ActionLine(text, action, runbook);
                action = a.Action;
                runbook = a.RunbookUrl;
            }

            if (text.Length > 0)
            {
                text.Append('\n');
            }

            text.Append(a.Status switch
            {
                AlertStatus.Firing => "FIRING",
                AlertStatus.Resolved => "RESOLVED",
                AlertStatus.Acknowledged => "ACKNOWLEDGED",
                _ => "FLAPPING",
            });
            text.Append(' ').Append(AlertManager.SeverityName(a.Severity)).Append(' ').Append(Escape(a.Rule)).Append(": ")
                .Append(Escape(a.Summary.ReplaceLineEndings(" ")))
                .Append(" (site ").Append(Escape(site)).Append(", gateway ").Append(Escape(gateway)).Append("; ");
            var fired = a.FiredAt ?? a.Time;
            switch (a.Status)
            {
                case AlertStatus.Resolved:
                    text.Append("fired ").Append(Time(fired)).Append(", resolved ").Append(Time(a.ResolvedAt ?? a.Time));
                    break;
                case AlertStatus.Acknowledged:
                    text.Append("since ").Append(Time(fired)).Append(", acknowledged ").Append(Time(a.AckedAt ?? a.Time));
                    break;
                case AlertStatus.Flapping:
                    text.Append("since ").Append(Time(fired)).Append(", changes held back until it settles");
                    break;
                default:
                    text.Append("since ").Append(Time(fired));
                    break;
            }

            text.Append(')');
        }

        ActionLine(text, action, runbook);
        return text.ToString();
    }

    /// <summary><c>\n    first action: … | runbook: https://…</c> when there is either.</summary>
    private static void ActionLine(StringBuilder text, string? action, string? runbook)
    {
        if (action is null && runbook is null)
        {
            return;
        }

        text.Append("\n    ");
        if (action is not null)
        {
            text.Append("first action: ").Append(Escape(action));
        }

        if (runbook is not null)
        {
            // A bare URL: Slack, Mattermost and Rocket.Chat all make it a link (their <url|text> forms differ).
            text.Append(action is null ? "" : " | ").Append("runbook: ").Append(Escape(runbook));
        }
    }

    private static string Time(DateTimeOffset t) =>
        t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + " UTC";

    private static string Escape(string s) =>
        s.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal).Replace(">", "&gt;", StringComparison.Ordinal);
}
