using System.Globalization;
using System.Text.Json;
using EdgeTwin.Agent.Alerting;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Sensors.Host;

namespace EdgeTwin.Agent.StoreAndForward;

/// <summary>
/// The clock part of <c>edgetwin status</c>: whether a time daemon disciplines the system clock, which stamps every
/// sample and outbox entry. Informational, not a health problem: alert rule <c>gateway-clock-unsynchronized</c> on the
/// <c>linux-host</c> device is what raises it, after its boot allowance.
/// </summary>
public static class ClockStatus
{
    /// <summary>
    /// Writes <c>"clock":{"synchronized":…,"synchronized_by":…,"max_error_s":…,"error":…,"chronyd":…,"steps_since_start":…,"last_step":…,"unsynchronized":…}</c>
    /// from one adjtimex read and the agent's clock-step watcher (the last three only with one). When adjtimex is denied,
    /// the watcher's last check (systemd-timesyncd's marker, else chronyd's tracking report) tells the state, or it stays
    /// unknown; <c>chronyd</c> is its report or why there is none when it was asked, else null.
    /// </summary>
    public static void Write(Utf8JsonWriter writer, Func<ClockReading> read, ClockStepWatcher? steps = null)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(read);
        writer.WriteStartObject("clock");
        bool? now = null;
        ClockSyncState? asked = null;
        try
        {
            var clock = read();
            now = clock.Synchronized;
            writer.WriteBoolean("synchronized", clock.Synchronized);
            writer.WriteString("synchronized_by", "adjtimex");
            writer.WriteNumber("max_error_s", clock.MaxErrorMicroseconds / 1e6);
            writer.WriteNull("error");
        }
        catch (IOException ex)
        {
            // The static unit's ProtectClock= denies even the read (EPERM): timesyncd's marker or chronyd's report, as the
            // watcher last saw them, or unknown (ntpd, no client, chronyd not answering) rather than a guess.
            asked = steps?.SyncState;
            if (asked is { Synchronized: { } marker, By: { } by })
            {
                now = marker;
                writer.WriteBoolean("synchronized", marker);
                writer.WriteString("synchronized_by", by);
            }
            else
            {
                writer.WriteNull("synchronized");
                writer.WriteNull("synchronized_by");
            }

            writer.WriteNull("max_error_s");
            writer.WriteString("error", ex.Message);
        }

        WriteChrony(writer, asked);

        if (steps is not null)
        {
            writer.WriteNumber("steps_since_start", steps.Steps);
            if (steps.LastStep is { } step)
            {
                writer.WriteStartObject("last_step");
                writer.WriteString("at", WireTime.Instant(step.SeenAt));
                writer.WriteNumber("step_ms", step.StepMs);
                WriteOrNull(writer, "first_seq", step.FirstSequence);
                WriteOrNull(writer, "last_seq", step.LastSequence);
                writer.WriteEndObject();
            }
            else
            {
                writer.WriteNull("last_step");
            }

            WriteUnsynchronized(writer, steps, now);
        }

        writer.WriteEndObject();
    }

    /// <summary>
    /// <c>"chronyd":{"reference":…,"stratum":…,"leap":…,"correction_s":…,"error":…}</c> when the watcher asked chronyd
    /// (adjtimex denied, no timesyncd): its report, or why there is none (<c>error</c>); else null.
    /// </summary>
    private static void WriteChrony(Utf8JsonWriter writer, ClockSyncState? state)
    {
        if (state is null || (state.Chrony is null && state.ChronyError is null))
        {
            writer.WriteNull("chronyd");
            return;
        }

        writer.WriteStartObject("chronyd");
        if (state.Chrony is { } t)
        {
            writer.WriteString("reference", t.RefId == 0 ? null : t.Reference);
            writer.WriteNumber("stratum", t.Stratum);
            writer.WriteString("leap", t.Leap switch
            {
                ChronyLeap.Normal => "normal",
                ChronyLeap.InsertSecond => "insert_second",
                ChronyLeap.DeleteSecond => "delete_second",
                _ => "unsynchronized",
            });
            writer.WriteNumber("correction_s", t.CorrectionSeconds);
            writer.WriteNull("error");
        }
        else
        {
            writer.WriteNull("reference");
            writer.WriteNull("stratum");
            writer.WriteNull("leap");
            writer.WriteNull("correction_s");
            writer.WriteString("error", state.ChronyError);
        }

        writer.WriteEndObject();
    }

    /// <summary>
    /// <c>"unsynchronized":{"since":…,"since_start":…,"from_seq":…,"earlier_seqs":["first-last",…]}</c>: the clock is not
    /// synchronised now (since when, and from which outbox entry on this run's entries are stamped by it), and the ranges
    /// earlier runs stamped so that no <c>clock_stepped</c> event has named yet; null when there is neither.
    /// </summary>
    private static void WriteUnsynchronized(Utf8JsonWriter writer, ClockStepWatcher steps, bool? now)
    {
        // This read wins over the watcher's last check (up to 5 s old): synchronised since, its next check names the ranges.
        var state = now == true ? null : steps.SyncState;
        var earlier = steps.PendingEarlierRanges();
        if (state?.Synchronized != false && earlier.Count == 0)
        {
            writer.WriteNull("unsynchronized");
            return;
        }

        writer.WriteStartObject("unsynchronized");
        if (state is { Synchronized: false, UnsynchronizedSince: { } since })
        {
            writer.WriteString("since", WireTime.Instant(since));
            writer.WriteBoolean("since_start", state.SinceStart);
        }
        else
        {
            writer.WriteNull("since");
            writer.WriteBoolean("since_start", false);
        }

        WriteOrNull(writer, "from_seq", state?.Synchronized == false ? state.OpenFrom : null);
        writer.WriteStartArray("earlier_seqs");
        foreach (var range in earlier)
        {
            writer.WriteStringValue(range.ToString());
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    /// <summary>The status line for the <c>clock</c> object, or null when the agent sent none (an older agent).</summary>
    public static string? Line(JsonElement root)
    {
        if (!root.TryGetProperty("clock", out var clock) || clock.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        var maxError = clock.TryGetProperty("max_error_s", out var e) && e.ValueKind == JsonValueKind.Number
            ? e.GetDouble().ToString("0.######", CultureInfo.InvariantCulture) + " s"
            : "?";
        var denied = clock.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.String ? error.GetString() : null;
        var by = clock.TryGetProperty("synchronized_by", out var b) && b.ValueKind == JsonValueKind.String ? b.GetString() : null;
        var chronyd = clock.TryGetProperty("chronyd", out var c) && c.ValueKind == JsonValueKind.Object ? c : (JsonElement?)null;
        var line = clock.GetProperty("synchronized").ValueKind switch
        {
            JsonValueKind.True when by == "timesyncd" => $"clock     synchronised (systemd-timesyncd says so; the kernel's state cannot be read: {denied})",
            JsonValueKind.True when by == "chronyd" => $"clock     synchronised (chronyd says so: {ChronyText(chronyd)}; the kernel's state cannot be read: {denied})",
            JsonValueKind.True => $"clock     synchronised (kernel max error {maxError})",
            JsonValueKind.False when by == "timesyncd" => $"clock     NOT synchronised (systemd-timesyncd has not synchronised it; the kernel's state cannot be read: {denied}): sample times may be wrong",
            JsonValueKind.False when by == "chronyd" => $"clock     NOT synchronised (chronyd has not synchronised it: {ChronyText(chronyd)}; the kernel's state cannot be read: {denied}): sample times may be wrong",
            JsonValueKind.False => $"clock     NOT synchronised (kernel max error {maxError}, its cap): no time daemon has set the clock, sample times may be wrong",
            _ => "clock     unknown: " + (denied ?? "no reading")
                + (chronyd is { } u && u.TryGetProperty("error", out var e2) && e2.ValueKind == JsonValueKind.String ? "; " + e2.GetString() : ""),
        };
        foreach (var more in new[] { UnsynchronizedLine(clock), StepLine(clock) })
        {
            if (more is not null)
            {
                line += "\n          " + more;
            }
        }

        return line;
    }

    /// <summary>
    /// <c>NOT SYNCHRONISED since the agent started: entries from 1796000000000001 on, and 2 earlier runs' ranges
    /// (…), will be reported to the centre (a clock_stepped event) when the clock syncs</c>; null when the <c>unsynchronized</c> object is (or is missing).
    /// </summary>
    private static string? UnsynchronizedLine(JsonElement clock)
    {
        if (!clock.TryGetProperty("unsynchronized", out var u) || u.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        var ranges = u.GetProperty("earlier_seqs").EnumerateArray().Select(r => r.GetString()).ToList();
        var shown = string.Join(", ", ranges.Take(3)) + (ranges.Count > 3 ? ", …" : "");
        var earlier = ranges.Count == 0 ? null : string.Create(CultureInfo.InvariantCulture,
            $"{ranges.Count} earlier run{(ranges.Count == 1 ? "'s range" : "s' ranges")} ({shown})");
        if (u.GetProperty("since") is not { ValueKind: JsonValueKind.String } since)
        {
            // Synchronised (the event naming them is on its way) or unknown (nothing is named until it is seen synchronised).
            return $"{earlier} stamped by an unsynchronised clock wait to be reported to the centre (a clock_stepped event, once this run sees the clock synchronised)";
        }

        var from = u.TryGetProperty("from_seq", out var f) && f.ValueKind == JsonValueKind.Number
            ? string.Create(CultureInfo.InvariantCulture, $"entries from {f.GetInt64()} on")
            : null;
        var when = u.TryGetProperty("since_start", out var s) && s.ValueKind == JsonValueKind.True ? "the agent started" : AlertsCli.Short(since.GetString()!);
        var what = (from, earlier) switch
        {
            (null, null) => "",
            ({ } a, null) => $": {a} will be reported to the centre (a clock_stepped event) when the clock syncs",
            (null, { } b) => $": {b} will be reported to the centre (a clock_stepped event) when the clock syncs",
            ({ } a, { } b) => $": {a}, and {b}, will be reported to the centre (a clock_stepped event) when the clock syncs",
        };
        return $"NOT SYNCHRONISED since {when}{what}";
    }

    /// <summary><c>reference 192.0.2.1, stratum 3, 0.000012 s slow of NTP time</c>, from the <c>chronyd</c> object (chronyc's words: a positive correction is slow).</summary>
    private static string ChronyText(JsonElement? chronyd)
    {
        if (chronyd is not { } c || c.GetProperty("stratum").ValueKind != JsonValueKind.Number)
        {
            return "no report";
        }

        var reference = c.GetProperty("reference") is { ValueKind: JsonValueKind.String } r ? "reference " + r.GetString() : "no reference";
        var correction = c.GetProperty("correction_s").GetDouble();
        return string.Create(CultureInfo.InvariantCulture,
            $"{reference}, stratum {c.GetProperty("stratum").GetInt32()}, {Math.Abs(correction):0.000000} s {(correction > 0 ? "slow" : "fast")} of NTP time");
    }

    /// <summary>The second line, for the last wall-clock step since the agent started; null when there was none.</summary>
    private static string? StepLine(JsonElement clock)
    {
        if (!clock.TryGetProperty("last_step", out var step) || step.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        var ms = step.GetProperty("step_ms").GetInt64();
        var count = clock.TryGetProperty("steps_since_start", out var c) && c.ValueKind == JsonValueKind.Number ? c.GetInt32() : 1;
        var at = step.GetProperty("at").GetString();
        var range = step.TryGetProperty("first_seq", out var first) && first.ValueKind == JsonValueKind.Number
            ? string.Create(CultureInfo.InvariantCulture, $"outbox entries {first.GetInt64()} to {step.GetProperty("last_seq").GetInt64()} were stamped by the old clock (a clock_stepped event tells the centre)")
            : "no entry of this run was stamped by the old clock";
        return string.Create(CultureInfo.InvariantCulture,
            $"stepped {(ms < 0 ? "back" : "forward")} by {Durations.Approximate(TimeSpan.FromMilliseconds(ms))} at {at} ({count} step{(count == 1 ? "" : "s")} since the agent started): {range}");
    }

    private static void WriteOrNull(Utf8JsonWriter writer, string name, long? value)
    {
        if (value is { } v)
        {
            writer.WriteNumber(name, v);
        }
        else
        {
            writer.WriteNull(name);
        }
    }
}
