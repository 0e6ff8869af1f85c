using EdgeTwin.Core.Profiles;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Simulator.Serving;

namespace EdgeTwin.IntegrationTests.Simulator;

internal static class SimPaths
{
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

    public static IReadOnlyDictionary<string, DeviceProfile> LoadProfiles() => SimulatedSiteHost.LoadProfiles(Profiles);

    /// <summary>A small served site. The test drives time itself (no background loop), so values hold still while read.</summary>
    public static Task<SimulatedSiteHost> StartAsync(int racks = 2, int units = 2, int machines = 1, int seed = 5) =>
        SimulatedSiteHost.StartAsync(
            new SimulatedSite(SiteGenerator.Generate(new SiteGenerationOptions { Racks = racks, CoolingUnits = units, Machines = machines, Seed = seed })),
            LoadProfiles(),
            new SiteHostOptions(),
            TestContext.Current.CancellationToken);
}
