using System.Globalization;
using System.Text.Json;
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
    /// Writes <c>"clock":{"synchronized":…,"max_error_s":…,"error":…,"steps_since_start":…,"last_step":…}</c> from one
    /// adjtimex read and the agent's clock-step watcher (the last two only with one).
    /// </summary>
    public static void Write(Utf8JsonWriter writer, Func<ClockReading> read, ClockStepWatcher? steps = null)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(read);
        writer.WriteStartObject("clock");
        try
        {
            var clock = read();
            writer.WriteBoolean("synchronized", clock.Synchronized);
            writer.WriteNumber("max_error_s", clock.MaxErrorMicroseconds / 1e6);
            writer.WriteNull("error");
        }
        catch (IOException ex)
        {
            // The static unit's ProtectClock= denies even the read (EPERM): say so rather than guess.
            writer.WriteNull("synchronized");
            writer.WriteNull("max_error_s");
            writer.WriteString("error", ex.Message);
        }

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
        }

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
        var line = clock.GetProperty("synchronized").ValueKind switch
        {
            JsonValueKind.True => $"clock     synchronised (kernel max error {maxError})",
            JsonValueKind.False => $"clock     NOT synchronised (kernel max error {maxError}, its cap): no time daemon has set the clock, sample times may be wrong",
            _ => "clock     unknown: " + (clock.TryGetProperty("error", out var error) ? error.GetString() : "no reading"),
        };
        return StepLine(clock) is { } stepped ? line + "\n          " + stepped : line;
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
