using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Twin.Models;

/// <summary>
/// Reloads a <see cref="ModelCatalog"/> when its <c>manifest.json</c> is written, created or renamed into place
/// (deploy writes it last, atomically by rename), or when a model file the manifest names is written, replaced or
/// deleted (the reload re-hashes it: a file that no longer matches is rejected and the loaded version keeps serving).
/// Events are debounced: editors and copies fire several per write.
/// </summary>
public sealed class ModelDirectoryWatcher : IDisposable
{
    private readonly ModelCatalog _catalog;
    private readonly ILogger _logger;
    private readonly TimeSpan _debounce;
    private readonly Timer _timer;
    private readonly FileSystemWatcher? _watcher;
    private volatile string? _trigger; // full path of the last file that changed, for the log
    private int _disposed;

    public ModelDirectoryWatcher(ModelCatalog catalog, TimeSpan? debounce = null, ILogger<ModelDirectoryWatcher>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        _catalog = catalog;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _debounce = debounce ?? TimeSpan.FromMilliseconds(500);
        _timer = new Timer(_ => Fire(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        if (!Directory.Exists(catalog.Directory))
        {
            ModelsLog.NotWatching(_logger, catalog.Directory);
            return;
        }

        try
        {
            _watcher = new FileSystemWatcher(catalog.Directory)
            {
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
                IncludeSubdirectories = false,
            };
            _watcher.Changed += OnEvent;
            _watcher.Created += OnEvent;
            _watcher.Renamed += OnEvent;
            _watcher.Deleted += OnEvent;
            _watcher.Error += (_, e) => ModelsLog.WatchFailed(_logger, catalog.Directory, e.GetException());
            _watcher.EnableRaisingEvents = true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            ModelsLog.WatchFailed(_logger, catalog.Directory, e);
            _watcher?.Dispose();
            _watcher = null;
        }
    }

    /// <summary>True when the directory is being watched.</summary>
    public bool IsWatching => _watcher is not null;

    private void OnEvent(object sender, FileSystemEventArgs e)
    {
        var name = e is RenamedEventArgs r ? r.Name : e.Name;
        if (name is null || Volatile.Read(ref _disposed) != 0)
        {
            return;
        }

        // Model files are those the last reload saw in the manifest; other files (a deploy's .tmp) are ignored.
        if (string.Equals(name, ModelManifest.FileName, StringComparison.Ordinal)
            || _catalog.Status.Any(s => string.Equals(Path.GetFileName(s.File), name, StringComparison.Ordinal)))
        {
            _trigger = e.FullPath;

            // Restarting the timer on every event is the debounce: reload once writes have settled.
            _timer.Change(_debounce, Timeout.InfiniteTimeSpan);
        }
    }

    private void Fire()
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return;
        }

        var trigger = _trigger;
        if (trigger is null || string.Equals(Path.GetFileName(trigger), ModelManifest.FileName, StringComparison.Ordinal))
        {
            ModelsLog.ManifestChanged(_logger, _catalog.ManifestPath);
        }
        else
        {
            ModelsLog.ModelFileChanged(_logger, trigger);
        }

        try
        {
            _catalog.Reload();
        }
        catch (ObjectDisposedException)
        {
            // The catalog went away during shutdown.
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _watcher?.Dispose();
        _timer.Dispose();
    }
}
