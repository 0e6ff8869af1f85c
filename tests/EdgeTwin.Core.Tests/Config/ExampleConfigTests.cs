using EdgeTwin.Core.Config;

namespace EdgeTwin.Core.Tests.Config;

public sealed class ExampleConfigTests
{
    public static TheoryData<string> ExampleFiles() => [.. TestFiles.Examples().Select(f => Path.GetFileName(f))];

    [Theory]
    [MemberData(nameof(ExampleFiles))]
    public void Example_loads_without_problems(string file)
    {
        // Installed as the Ansible role does (0640): from the checkout (0644) the inline community is rightly warned about.
        using var dir = new TempDir();
        var result = SiteConfigLoader.Load(Path.Combine(Modes.InstalledExamples(dir), file), new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir });

        Assert.True(result.IsValid, string.Join("\n", result.Problems));
        Assert.True(result.Warnings.Count == 0, string.Join("\n", result.Warnings));
        Assert.NotEmpty(result.Config!.Devices);
        Assert.All(result.Config.Devices, d => Assert.True(result.Config.Profiles.ContainsKey(d.Profile)));
    }

    [Fact]
    public void Small_dc_room_has_the_expected_topology()
    {
        var config = SiteConfigLoader.LoadOrThrow(Path.Combine(TestFiles.ExamplesDir, "small-dc-room.yaml"), new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir });

        Assert.Equal("dc1", config.Site.Id);
        Assert.Equal(["A01", "A02", "A03", "A04"], config.Site.AllRacks.Select(r => r.Id));
        Assert.Equal(["A01", "A02"], config.Site.CoolingUnits[0].Serves);
        Assert.Equal("ups1", config.Site.Power.Pdus[0].Upstream);
        var ups = config.FindDevice("ups1")!;
        Assert.Equal(DeviceAddress.Parse("udp:127.0.0.1:16101"), ups.Address);
        var v3 = config.Credentials["snmp-v3-ops"];
        Assert.Equal(SnmpSecurityLevel.AuthPriv, v3.Level);
        Assert.Equal(SnmpAuthProtocol.Sha256, v3.Auth);
        Assert.Equal("example-auth-passphrase", v3.AuthPassword); // read from secrets/ops-auth, newline dropped
        Assert.Equal("secrets/ops-auth", v3.AuthPasswordFile);
        Assert.Equal(TimeSpan.FromSeconds(3), config.FindDevice("crac1")!.Timeout);
        Assert.Equal(TimeSpan.FromDays(7), config.Outbox.MaxAge);
    }
}
