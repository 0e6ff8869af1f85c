using EdgeTwin.Core.Config;
using Microsoft.Extensions.DependencyInjection;

namespace EdgeTwin.Agent.Twin;

/// <summary>Where the stages keep their learned state: the agent's state directory, the outbox's (writable under the unit; /etc is not).</summary>
internal static class StateFileLocation
{
    /// <summary>
    /// The state file: <paramref name="file"/> taken from the outbox's directory when relative (a directory, or a name
    /// ending in '/', gets <paramref name="defaultName"/> inside), else <paramref name="defaultName"/> next to the outbox; null without an
    /// outbox and without a file named (a test host, the demo's in-memory parts).
    /// </summary>
    public static string? Resolve(IServiceProvider services, string? file, string defaultName)
    {
        var outbox = services.GetService<StoreAndForward.StoreAndForwardOptions>();
        if (outbox is null && file is null)
        {
            return null;
        }

        var site = services.GetService<SiteConfig>() ?? services.GetRequiredService<Hosting.AgentRuntime>().Config;
        var directory = Path.GetDirectoryName(Path.GetFullPath(outbox?.OutboxPath ?? site.Outbox.Path)) ?? ".";
        if (file is not null)
        {
            // A name ending in '/' is a directory even before it exists (it is created with the first write).
            var path = Path.GetFullPath(file, directory);
            return Directory.Exists(path) || Path.EndsInDirectorySeparator(file) ? Path.Combine(path, defaultName) : path;
        }

        return outbox is not null ? Path.Combine(directory, defaultName) : null;
    }
}
