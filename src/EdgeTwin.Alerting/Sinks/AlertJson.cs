using System.Buffers;
using System.Text.Json;
using EdgeTwin.Alerting.State;
using EdgeTwin.Core.Events;

namespace EdgeTwin.Alerting.Sinks;

/// <summary>
/// The JSON body of a message (webhook, MQTT), version 1:
/// <c>{"v":1,"site":…,"gateway":…,"group":…,"time":…,"severity":…,"alerts":[{"id","rule","key","status","severity","value","peak","summary","fired_at","resolved_at","acked_at","flapping","labels":{…}}]}</c>.
/// <c>peak</c> is the worst value while the alert was active, null for kinds without a limit (state, stuck, missing, …).
/// <c>action</c> (not for a resolved alert) and <c>runbook_url</c> follow <c>summary</c> when the rule has them, else are absent.
/// Every time is <see cref="WireTime.Instant(DateTimeOffset)"/> (<c>2026-12-02T09:40:25.123Z</c>), like the outbox's
/// alert events: the body had <c>+00:00</c> in <c>time</c> and an escaped <c>\u002B00:00</c> in <c>fired_at</c>.
/// </summary>
public static class AlertJson
{
    // Printable ASCII as it is ("> 27", "+01:00"), like the uplink's bodies: the default encoder wrote \u003E and \u002B.
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = WireJsonEncoder.Instance };

    public static byte[] Encode(string site, string gateway, AlertNotification notification, IReadOnlyList<AlertSnapshot> alerts)
    {
        ArgumentNullException.ThrowIfNull(notification);
        ArgumentNullException.ThrowIfNull(alerts);
        var buffer = new ArrayBufferWriter<byte>(256 + (alerts.Count * 256));
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteNumber("v", 1);
            w.WriteString("site", site);
            w.WriteString("gateway", gateway);
            w.WriteString("group", notification.Group);
            w.WriteString("time", WireTime.Instant(notification.Time));
            w.WriteString("severity", AlertManager.SeverityName(alerts.Count == 0 ? Core.Events.EventSeverity.Info : alerts.Max(a => a.Severity)));
            w.WriteStartArray("alerts");
            foreach (var a in alerts)
            {
                w.WriteStartObject();
                w.WriteNumber("id", a.Id);
                w.WriteString("rule", a.Rule);
                w.WriteString("key", a.Key);
                w.WriteString("status", StatusName(a.Status));
                w.WriteString("severity", AlertManager.SeverityName(a.Severity));
                // 12 significant digits, as the outbox events: the shortest round-trip form wrote 110.31249999999999.
                if (double.IsFinite(a.Value))
                {
                    w.WritePropertyName("value");
                    w.WriteRawValue(WireNumber.Format(a.Value), skipInputValidation: true);
                }

                if (a.Peak is { } peak && double.IsFinite(peak))
                {
                    w.WritePropertyName("peak");
                    w.WriteRawValue(WireNumber.Format(peak), skipInputValidation: true);
                }
                else
                {
                    w.WriteNull("peak");
                }

                w.WriteString("summary", a.Summary);

                // Only when the rule has them, so a message of rules without them is the same bytes as before.
                if (a.Action is { } action)
                {
                    w.WriteString("action", action);
                }

                if (a.RunbookUrl is { } runbook)
                {
                    w.WriteString("runbook_url", runbook);
                }

                Time(w, "fired_at", a.FiredAt);
                Time(w, "resolved_at", a.ResolvedAt);
                Time(w, "acked_at", a.AckedAt);
                w.WriteBoolean("flapping", a.Flapping);
                w.WriteStartObject("labels");
                foreach (var (k, v) in a.Labels.OrderBy(l => l.Key, StringComparer.Ordinal))
                {
                    w.WriteString(k, v);
                }

                w.WriteEndObject();
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    public static string StatusName(AlertStatus status) => status switch
    {
        AlertStatus.Firing => "firing",
        AlertStatus.Resolved => "resolved",
        AlertStatus.Acknowledged => "acknowledged",
        _ => "flapping",
    };

    private static void Time(Utf8JsonWriter w, string name, DateTimeOffset? t)
    {
        if (t is { } v)
        {
            w.WriteString(name, WireTime.Instant(v));
        }
        else
        {
            w.WriteNull(name);
        }
    }
}
