using System.Reflection;
using System.Runtime.InteropServices;
using EdgeTwin.Core.Config;
using EdgeTwin.Twin.Models;
using EdgeTwin.Uplink.Payloads;

namespace EdgeTwin.Agent.Fleet;

/// <summary>
/// The fleet facts announced in every MQTT birth: the agent version (the same string as <c>edgetwin --version</c>),
/// the process architecture, the SHA-256 of the site config as read at start with its inline secrets redacted
/// (<see cref="SiteConfig.ConfigSha256"/>), and the models that serve, from the
/// <see cref="ModelCatalog"/> status (name, version serving, state, error). <see cref="Revision"/> moves when a reload
/// changes that list, so the uplink publishes the birth again.
/// </summary>
internal sealed class GatewayFactsSource : IDisposable
{
    private readonly string _configHash;
    private readonly ModelCatalog? _catalog;
    private IReadOnlyList<ModelFact> _models;
    private long _revision;

    /// <param name="catalog">The agent's models catalog; null when the agent runs no models (the list is then empty).</param>
    public GatewayFactsSource(SiteConfig config, ModelCatalog? catalog)
    {
        ArgumentNullException.ThrowIfNull(config);
        // Never a hash over the secrets: an unsalted one let anyone reading the status topic guess a weak community offline.
        _configHash = config.ConfigSha256;
        _catalog = catalog;
        _models = Models(catalog);
        if (catalog is not null)
        {
            catalog.Changed += OnCatalogChanged;
        }
    }

    public static string Version { get; } =
        typeof(GatewayFactsSource).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(GatewayFactsSource).Assembly.GetName().Version?.ToString() ?? "unknown";

    /// <summary>x64, arm64, … (lower case, as in the release RIDs).</summary>
    public static string Architecture { get; } = RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();

    /// <summary>Bumped each time the model list changes (for <see cref="EdgeTwin.Uplink.Mqtt.MqttUplinkOptions.FactsRevision"/>).</summary>
    public long Revision => Interlocked.Read(ref _revision);

    /// <summary>The facts now (for <see cref="EdgeTwin.Uplink.Mqtt.MqttUplinkOptions.Facts"/>).</summary>
    public GatewayFacts Current() => new(Version, Architecture, _configHash, Volatile.Read(ref _models)) { Instance = Instance };

    /// <summary>This agent process, new at every start (16 hex digits): tells two gateways with one identity apart at the centre.</summary>
    public static string Instance { get; } = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));

    /// <summary>
    /// One fact per model of the catalog's status. A manifest that cannot be used is one more entry named
    /// <c>manifest</c> (state <c>unusable</c>, the error), so the centre sees the gateway is misconfigured rather than
    /// model-less; a missing manifest (no models deployed) is an empty list.
    /// </summary>
    internal static IReadOnlyList<ModelFact> Models(ModelCatalog? catalog)
    {
        if (catalog is null)
        {
            return [];
        }

        var result = catalog.Status
            .Select(s => new ModelFact(s.Name, s.Version) { State = s.State.ToString().ToLowerInvariant(), Error = s.Error })
            .ToList();
        if (catalog.ManifestError is { } error && (result.Count > 0 || File.Exists(catalog.ManifestPath)))
        {
            result.Add(new ModelFact("manifest", "") { State = "unusable", Error = error });
        }

        return result;
    }

    private void OnCatalogChanged(object? sender, EventArgs e)
    {
        var models = Models(_catalog);
        if (!models.SequenceEqual(Volatile.Read(ref _models)))
        {
            Volatile.Write(ref _models, models);
            Interlocked.Increment(ref _revision);
        }
    }

    public void Dispose()
    {
        if (_catalog is not null)
        {
            _catalog.Changed -= OnCatalogChanged;
        }
    }
}
