using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Twin.Models;

/// <summary>Whether a model can be run.</summary>
public enum ModelState
{
    /// <summary>Verified and serving the manifest's version.</summary>
    Available,

    /// <summary>The manifest's version failed verification; the previously verified version keeps serving.</summary>
    ServingPrevious,

    /// <summary>No verified version: runners fall back (the streaming anomaly detector keeps working).</summary>
    Unavailable,
}

/// <summary>One row of <c>edgetwin models list</c>.</summary>
/// <param name="Name">Model name.</param>
/// <param name="Version">Version serving (or, when unavailable, the manifest's).</param>
/// <param name="State">Whether it can run.</param>
/// <param name="Error">Why the manifest's version is not serving, or null.</param>
public sealed record ModelStatus(string Name, string Version, ModelState State, string? Error, string File, string Sha256);

/// <summary>
/// The models of one directory, verified against its <c>manifest.json</c>. <see cref="Reload"/> swaps in models
/// only after they verify (a changed entry, or an unchanged one whose file was overwritten in place); a model that fails keeps its previous version serving or is marked unavailable, and
/// never stops the others. Thread-safe: runners read <see cref="Get"/> lock-free.
/// </summary>
public sealed class ModelCatalog : IDisposable
{
    private readonly ILogger _logger;
    private readonly ModelsMetrics? _metrics;
    private readonly Lock _reloadLock = new();
    private volatile Dictionary<string, LoadedModel> _loaded = new(StringComparer.Ordinal);
    private volatile ModelStatus[] _status = [];
    private bool _disposed;

    public ModelCatalog(string directory, ILogger<ModelCatalog>? logger = null, ModelsMetrics? metrics = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory = System.IO.Path.GetFullPath(directory);
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _metrics = metrics;
    }

    /// <summary>Raised after every reload (listeners compare <see cref="Status"/> to see what changed).</summary>
    public event EventHandler? Changed;

    public string Directory { get; }

    public string ManifestPath => System.IO.Path.Combine(Directory, ModelManifest.FileName);

    /// <summary>Problem with the manifest itself at the last reload (unreadable, invalid), or null.</summary>
    public string? ManifestError { get; private set; }

    /// <summary>Every model of the manifest (and any still serving from an earlier one), by name.</summary>
    public IReadOnlyList<ModelStatus> Status => _status;

    /// <summary>Number of completed reloads (tests wait on it).</summary>
    public int Generation { get; private set; }

    /// <summary>The verified model serving under <paramref name="name"/>, or null (fall back).</summary>
    public LoadedModel? Get(string name) => _loaded.GetValueOrDefault(name);

    /// <summary>
    /// Re-reads the manifest and verifies what changed. Never throws for a bad manifest or model: problems end up
    /// in <see cref="ManifestError"/> and <see cref="Status"/>, and are logged.
    /// </summary>
    public void Reload()
    {
        lock (_reloadLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ReloadLocked();
            Generation++;
        }

        Changed?.Invoke(this, EventArgs.Empty);
    }

    private void ReloadLocked()
    {
        if (!File.Exists(ManifestPath) && _loaded.Count == 0)
        {
            // No models deployed (yet): normal on a site without models; the streaming detectors run alone.
            ManifestError = $"{ManifestPath}: no manifest (no models deployed)";
            _status = [];
            ModelsLog.NoManifest(_logger, ManifestPath);
            return;
        }

        ModelManifest manifest;
        try
        {
            manifest = ModelManifest.Load(ManifestPath);
            ManifestError = null;
        }
        catch (ModelLoadException e)
        {
            // A missing or broken manifest keeps whatever serves: a half-written deploy must not unload models.
            ManifestError = e.Message;
            ModelsLog.ManifestFailed(_logger, ManifestPath, e.Message);
            _metrics?.LoadFailures.Add(1);
            return;
        }

        var old = _loaded;
        var next = new Dictionary<string, LoadedModel>(StringComparer.Ordinal);
        var status = new List<ModelStatus>();
        var retire = new List<LoadedModel>();
        foreach (var entry in manifest.Models)
        {
            old.TryGetValue(entry.Name, out var current);
            var fileChanged = false;
            if (current is not null && string.Equals(current.Entry.RawJson, entry.RawJson, StringComparison.Ordinal))
            {
                // Unchanged entry and file: keep the verified session (a reload must not re-hash every model on every touch).
                if (ModelFileStamp.Of(current.Path) == current.Stamp)
                {
                    next[entry.Name] = current;
                    status.Add(new ModelStatus(entry.Name, entry.Version, ModelState.Available, null, current.Path, entry.Sha256));
                    continue;
                }

                // The file was overwritten in place: verify it again; the session serving keeps the old bytes until then.
                fileChanged = true;
            }

            try
            {
                var loaded = LoadedModel.Load(entry, Directory, ManifestPath);
                next[entry.Name] = loaded;
                if (current is not null)
                {
                    retire.Add(current);
                }

                status.Add(new ModelStatus(entry.Name, entry.Version, ModelState.Available, null, loaded.Path, entry.Sha256));
                if (fileChanged)
                {
                    ModelsLog.FileChangedReloaded(_logger, loaded.Path, entry.Name, entry.Version);
                }
                else
                {
                    ModelsLog.Loaded(_logger, entry.Name, entry.Version, loaded.Path);
                }

                _metrics?.Loads.Add(1);
            }
            catch (ModelLoadException e)
            {
                _metrics?.LoadFailures.Add(1);
                if (current is not null)
                {
                    next[entry.Name] = current;
                    status.Add(new ModelStatus(entry.Name, current.Entry.Version, ModelState.ServingPrevious, e.Message, current.Path, current.Entry.Sha256));
                    if (fileChanged)
                    {
                        ModelsLog.FileChangedRejected(_logger, current.Path, entry.Name, entry.Version, e.Message);
                    }
                    else
                    {
                        ModelsLog.KeptPrevious(_logger, entry.Name, entry.Version, current.Entry.Version, e.Message);
                    }
                }
                else
                {
                    status.Add(new ModelStatus(entry.Name, entry.Version, ModelState.Unavailable, e.Message, System.IO.Path.Combine(Directory, entry.File), entry.Sha256));
                    ModelsLog.Unavailable(_logger, entry.Name, entry.Version, e.Message);
                }
            }
        }

        foreach (var (name, model) in old)
        {
            if (!next.ContainsKey(name))
            {
                retire.Add(model);
                ModelsLog.Removed(_logger, name);
            }
        }

        _loaded = next;
        _status = [.. status];
        foreach (var model in retire)
        {
            model.Retire();
        }
    }

    public void Dispose()
    {
        lock (_reloadLock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (var model in _loaded.Values)
            {
                model.Retire();
            }

            _loaded = new(StringComparer.Ordinal);
        }
    }
}
