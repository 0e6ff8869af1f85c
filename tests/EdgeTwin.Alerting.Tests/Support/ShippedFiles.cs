namespace EdgeTwin.Alerting.Tests.Support;

/// <summary>The repository's shipped profiles and rule sets, as the tests read them.</summary>
internal static class ShippedFiles
{
    /// <summary>The directory above the test binary that holds <c>device-profiles</c>.</summary>
    public static string Repo()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !Directory.Exists(Path.Combine(dir, "device-profiles")))
        {
            dir = Path.GetDirectoryName(dir);
        }

        return dir ?? throw new DirectoryNotFoundException("device-profiles not found above " + AppContext.BaseDirectory);
    }

    /// <summary>The lines of one rule of a shipped rule set (<c>datacenter</c>, <c>machine-line</c>, …), without its <c>targets:</c>.</summary>
    public static IEnumerable<string> Rule(string ruleSet, string name) =>
        File.ReadAllLines(Path.Combine(Repo(), "device-profiles", "examples", "alert-rules", ruleSet + ".yaml"))
            .SkipWhile(l => !l.Trim().StartsWith("- name: " + name, StringComparison.Ordinal))
            .TakeWhile((l, i) => i == 0 || !l.TrimStart().StartsWith("- name:", StringComparison.Ordinal))
            .Where(l => !l.TrimStart().StartsWith("targets:", StringComparison.Ordinal));
}
