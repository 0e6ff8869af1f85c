namespace EdgeTwin.Simulator.Tests;

internal static class RepoPaths
{
    /// <summary>The repository root (where EdgeTwin.sln is), found from the test binary's folder.</summary>
    public static string Root { get; } = Find();

    public static string Profiles => Path.Combine(Root, "device-profiles");

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "EdgeTwin.sln")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException($"no EdgeTwin.sln above {AppContext.BaseDirectory}");
    }
}
