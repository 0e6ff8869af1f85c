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

        // The rule the config check resolves by too, so that it rejects what would land on the outbox's files.
        return StateSection.ResolvePath(file, outbox?.OutboxPath ?? site.Outbox.Path, defaultName);
    }
}
