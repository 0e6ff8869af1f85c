using System.Text.Json;
using System.Text.Json.Serialization;

namespace EdgeTwin.Agent.Twin.Thermal;

/// <summary>What the live twin keeps of a zone over a restart: the units seen running, and the cooling failure in progress.</summary>
internal sealed record PersistedZone
{
    [JsonPropertyName("seen_running")]
    public string[] SeenRunning { get; init; } = [];

    [JsonPropertyName("failed_units")]
    public string[] FailedUnits { get; init; } = [];

    /// <summary>Unix ms of the failure's start (or of the first reading that found it, when <see cref="FailureStartKnown"/> is false).</summary>
    [JsonPropertyName("failure_started_ms")]
    public long FailureStartedMs { get; init; }

    [JsonPropertyName("failure_start_known")]
    public bool FailureStartKnown { get; init; }
}

/// <summary>
/// <c>thermal-twin.json</c> (next to the outbox): per zone, the units the agent has seen running and the cooling failure in
/// progress, so that a restart while a unit is down continues that failure (same start, same age) instead of announcing
/// a new one, and a unit that ran before the restart is not taken for a standby. Small, rewritten whole (temp file and
/// rename) when a unit is first seen running and when a failure starts, changes or ends.
/// </summary>
internal static class ThermalTwinStateFile
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>The zones by id; empty when the file does not exist. Throws <see cref="IOException"/>, <see cref="JsonException"/> and the like.</summary>
    public static Dictionary<string, PersistedZone> Load(string path)
    {
        if (!File.Exists(path))
        {
            return new(StringComparer.Ordinal);
        }

        using var stream = File.OpenRead(path);
        return JsonSerializer.Deserialize<Dictionary<string, PersistedZone>>(stream, Json) is { } zones
            ? new(zones, StringComparer.Ordinal)
            : new(StringComparer.Ordinal);
    }

    public static void Save(string path, IReadOnlyDictionary<string, PersistedZone> zones)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir))
        {
            Directory.CreateDirectory(dir);
        }

        var temp = path + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(JsonSerializer.SerializeToUtf8Bytes(zones, Json));

            // On disk before the rename: after a power cut the file is the old state or the new one, never an empty one.
            stream.Flush(flushToDisk: true);
        }

        File.Move(temp, path, overwrite: true);
    }
}
