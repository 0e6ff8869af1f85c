using Microsoft.Extensions.Logging;

namespace EdgeTwin.Twin.Models;

internal static partial class ModelsLog
{
    [LoggerMessage(EventId = 4700, Level = LogLevel.Information, Message = "Model {Name} {Version} loaded from {Path}")]
    public static partial void Loaded(ILogger logger, string name, string version, string path);

    [LoggerMessage(EventId = 4701, Level = LogLevel.Error, Message = "Model {Name} {Version} is unavailable (runners fall back): {Problem}")]
    public static partial void Unavailable(ILogger logger, string name, string version, string problem);

    [LoggerMessage(EventId = 4702, Level = LogLevel.Error, Message = "Model {Name} {Version} failed verification; {Previous} keeps serving: {Problem}")]
    public static partial void KeptPrevious(ILogger logger, string name, string version, string previous, string problem);

    [LoggerMessage(EventId = 4703, Level = LogLevel.Error, Message = "Models manifest {Path} is not usable; loaded models keep serving: {Problem}")]
    public static partial void ManifestFailed(ILogger logger, string path, string problem);

    [LoggerMessage(EventId = 4704, Level = LogLevel.Information, Message = "Model {Name} removed from the manifest; unloaded")]
    public static partial void Removed(ILogger logger, string name);

    [LoggerMessage(EventId = 4705, Level = LogLevel.Information, Message = "Models manifest {Path} changed; reloading")]
    public static partial void ManifestChanged(ILogger logger, string path);

    [LoggerMessage(EventId = 4706, Level = LogLevel.Warning, Message = "Watching {Directory} for model changes failed; restart the agent to pick up new models")]
    public static partial void WatchFailed(ILogger logger, string directory, Exception exception);

    [LoggerMessage(EventId = 4708, Level = LogLevel.Information, Message = "No models manifest at {Path}; running without models")]
    public static partial void NoManifest(ILogger logger, string path);

    [LoggerMessage(EventId = 4709, Level = LogLevel.Information, Message = "Models directory {Directory} does not exist; not watching it (create it and restart to deploy models)")]
    public static partial void NotWatching(ILogger logger, string directory);

    [LoggerMessage(EventId = 4710, Level = LogLevel.Warning, Message = "Model file {Path} of {Name} {Version} changed on disk and no longer verifies; the loaded version keeps serving (from the bytes read before): {Problem}")]
    public static partial void FileChangedRejected(ILogger logger, string path, string name, string version, string problem);

    [LoggerMessage(EventId = 4711, Level = LogLevel.Information, Message = "Model file {Path} of {Name} {Version} changed on disk and still matches the manifest; reloaded")]
    public static partial void FileChangedReloaded(ILogger logger, string path, string name, string version);

    [LoggerMessage(EventId = 4712, Level = LogLevel.Information, Message = "Model file {Path} changed; re-verifying")]
    public static partial void ModelFileChanged(ILogger logger, string path);

    [LoggerMessage(EventId = 4707, Level = LogLevel.Error, Message = "Inference with model {Name} failed")]
    public static partial void InferenceFailed(ILogger logger, string name, Exception exception);
}
