using System.Globalization;
using System.Text.Json;
using EdgeTwin.Sensors.Host;

namespace EdgeTwin.Agent.StoreAndForward;

/// <summary>
/// The clock part of <c>edgetwin status</c>: whether a time daemon disciplines the system clock, which stamps every
/// sample and outbox entry. Informational, not a health problem: alert rule <c>gateway-clock-unsynchronized</c> on the
/// <c>linux-host</c> device is what raises it, after its boot allowance.
/// </summary>
public static class ClockStatus
{
    /// <summary>Writes <c>"clock":{"synchronized":…,"max_error_s":…,"error":…}</c> from one adjtimex read.</summary>
    public static void Write(Utf8JsonWriter writer, Func<ClockReading> read)
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
        return clock.GetProperty("synchronized").ValueKind switch
        {
            JsonValueKind.True => $"clock     synchronised (kernel max error {maxError})",
            JsonValueKind.False => $"clock     NOT synchronised (kernel max error {maxError}, its cap): no time daemon has set the clock, sample times may be wrong",
            _ => "clock     unknown: " + (clock.TryGetProperty("error", out var error) ? error.GetString() : "no reading"),
        };
    }
}
