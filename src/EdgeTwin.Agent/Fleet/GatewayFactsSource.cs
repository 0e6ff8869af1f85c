using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;
using EdgeTwin.Core.Config;
using EdgeTwin.Uplink.Payloads;

namespace EdgeTwin.Agent.Fleet;

/// <summary>
/// The fleet facts announced in every MQTT birth: the agent version (the same string as <c>edgetwin --version</c>),
/// the process architecture, the SHA-256 of the site config file as read at start, and the models named in the models
/// directory's <c>manifest.json</c> (re-read at each birth: models are hot-reloaded without a restart).
/// </summary>
internal static class GatewayFactsSource
{
    public static string Version { get; } =
        typeof(GatewayFactsSource).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(GatewayFactsSource).Assembly.GetName().Version?.ToString() ?? "unknown";

    /// <summary>x64, arm64, … (lower case, as in the release RIDs).</summary>
    public static string Architecture { get; } = RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();

    /// <summary>A provider for <see cref="EdgeTwin.Uplink.Mqtt.MqttUplinkOptions.Facts"/>.</summary>
    public static Func<GatewayFacts> For(SiteConfig config)
    {
        var configHash = config.SourcePath is { } path && File.Exists(path) ? Sha256OfFile(path) : "";
        var manifest = Path.Combine(ModelsDirectory(config), "manifest.json");
        return () => new GatewayFacts(Version, Architecture, configHash, ReadModels(manifest));
    }

    internal static string Sha256OfFile(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary><c>models.directory</c> (relative to the config file), else <c>models/</c> beside the binary, else ./models.</summary>
    internal static string ModelsDirectory(SiteConfig config)
    {
        if (config.Models?["directory"] is ConfigScalar { IsNull: false, Value.Length: > 0 } dir)
        {
            return Path.GetFullPath(dir.Value, config.ConfigDirectory());
        }

        var beside = Path.Combine(AppContext.BaseDirectory, "models");
        return Directory.Exists(beside) ? beside : Path.GetFullPath("models");
    }

    /// <summary>
    /// name/version of each entry of <c>{"models":[{"name":…,"version":…},…]}</c> (a top-level array is accepted too).
    /// A missing manifest means no models; an unreadable one is reported as a single <c>manifest</c> entry saying so,
    /// so the centre sees the gateway is misconfigured rather than model-less.
    /// </summary>
    internal static IReadOnlyList<ModelFact> ReadModels(string manifestPath)
    {
        if (!File.Exists(manifestPath))
        {
            return [];
        }

        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(manifestPath));
            var list = doc.RootElement.ValueKind == JsonValueKind.Array ? doc.RootElement
                : doc.RootElement.TryGetProperty("models", out var m) && m.ValueKind == JsonValueKind.Array ? m
                : throw new JsonException("no \"models\" array");
            var result = new List<ModelFact>();
            foreach (var model in list.EnumerateArray())
            {
                result.Add(new ModelFact(Text(model, "name"), Text(model, "version")));
            }

            return result;
        }
        catch (Exception ex) when (ex is JsonException or IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            return [new ModelFact("manifest", $"unreadable: {ex.Message}")];
        }
    }

    private static string Text(JsonElement model, string key) =>
        model.TryGetProperty(key, out var v) ? v.ValueKind == JsonValueKind.String ? v.GetString() ?? "" : v.GetRawText() : "";
}
