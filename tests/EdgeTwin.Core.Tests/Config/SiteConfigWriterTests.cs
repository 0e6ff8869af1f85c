using EdgeTwin.Core.Config;

namespace EdgeTwin.Core.Tests.Config;

public sealed class SiteConfigWriterTests
{
    private static readonly SiteConfigLoadOptions Options = new() { ProfilesDir = TestFiles.ProfilesDir };

    public static TheoryData<string> ExampleFiles() => [.. TestFiles.Examples().Select(f => Path.GetFileName(f))];

    [Theory]
    [MemberData(nameof(ExampleFiles))]
    public void Example_round_trips_through_the_writer(string file)
    {
        var original = SiteConfigLoader.LoadOrThrow(Path.Combine(TestFiles.ExamplesDir, file), Options);
        using var dir = new TempDir();
        // The v3 example reads its passphrase from secrets/ops-auth relative to the config: keep it beside the copy.
        dir.Write("secrets/ops-auth", File.ReadAllText(Path.Combine(TestFiles.ExamplesDir, "secrets/ops-auth")));
        var path = Path.Combine(dir.Path, file);
        SiteConfigWriter.WriteFile(original, path);

        var reread = SiteConfigLoader.Load(path, Options);
        Assert.True(reread.IsValid, string.Join("\n", reread.Problems) + "\n" + File.ReadAllText(path));
        AssertSame(original, reread.Config!);
        // Writing is a fixed point: the second text equals the first.
        Assert.Equal(File.ReadAllText(path).Split('\n').Skip(1), SiteConfigWriter.ToYaml(reread.Config!).Split('\n').Skip(1));
    }

    [Fact]
    public void Regression_sim_config_out_wrote_its_inline_community_readable_by_every_user_so_check_warned()
    {
        // `edgetwin sim --config-out FILE` then `edgetwin check --config FILE`, as the READMEs say: the file was
        // written 0644 (the umask's default) with the simulator's community inline, and check warned about it.
        var b = new SiteConfigBuilder("sim", "gw-sim");
        b.Room("room1", volumeM3: 400).Row("A").Rack("A01", powerBudgetKw: 6, feeds: ["pdu-a01"], servers: 8);
        b.Pdu("pdu-a01", breakerA: 32, upstream: null, device: "pdu-a01");
        b.Device(new DeviceConfig("pdu-a01", "apc-rpdu2", DeviceAddress.Udp("127.0.0.1", 16101)) { Credentials = "public", Location = new(Rack: "A01") });
        b.Credentials(CredentialsConfig.V2c("public", "public"));
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "site.yaml");
        File.WriteAllText(path, "an older config, mode 0644\n");

        SiteConfigWriter.WriteFile(b.Build(), path);

        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        }

        var report = ConfigCheck.Run(path, Options);
        Assert.True(report.Ok, string.Join("\n", report.Problems));
        Assert.Contains("community", File.ReadAllText(path), StringComparison.Ordinal);
        Assert.Empty(report.Warnings);
    }

    [Fact]
    public void Config_built_in_code_validates_like_a_file()
    {
        var b = new SiteConfigBuilder("sim", "gw-sim");
        var row = b.Room("room1", volumeM3: 400).Row("A");
        for (var i = 1; i <= 3; i++)
        {
            row.Rack($"A{i:00}", powerBudgetKw: 6, feeds: [$"pdu-a{i:00}"], servers: 8);
            b.Pdu($"pdu-a{i:00}", breakerA: 32, upstream: "ups1", device: $"pdu-a{i:00}");
            b.Device(new DeviceConfig($"pdu-a{i:00}", "apc-rpdu2", DeviceAddress.Udp("127.0.0.1", 16100 + i)) { Credentials = "public", Location = new(Rack: $"A{i:00}") });
        }

        b.Ups("ups1", capacityKw: 40, device: "ups1");
        b.CoolingUnit("crac1", room: "room1", capacityKw: 30, serves: ["A01", "A02", "A03"], device: "crac1");
        b.Line("line1").Machine("m1", device: "drive1");
        b.Credentials(CredentialsConfig.V2c("public", "public"));
        b.Device(new DeviceConfig("ups1", "ietf-ups-mib", DeviceAddress.Udp("127.0.0.1", 16200)) { Credentials = "public", Interval = TimeSpan.FromSeconds(5), Timeout = TimeSpan.FromMilliseconds(1500) });
        b.Device(new DeviceConfig("crac1", "liebert-gp-crac", DeviceAddress.Udp("::1", 16300)) { Credentials = "public", Location = new(CoolingUnit: "crac1") });
        b.Device(new DeviceConfig("drive1", "abb-acs580", DeviceAddress.Tcp("127.0.0.1", 15020)) { UnitId = 1, Location = new(Machine: "m1"), Enabled = false });

        var result = SiteConfigLoader.Validate(b.Build(), Options);

        Assert.True(result.IsValid, string.Join("\n", result.Problems));
        var c = result.Config!;
        Assert.Equal(6, c.Devices.Count);
        Assert.Equal(["A01", "A02", "A03"], c.Site.AllRacks.Select(r => r.Id));
        Assert.Equal(AddressScheme.Udp6, c.FindDevice("crac1")!.Address.Scheme);
        Assert.Equal("udp6:[::1]:16300", c.FindDevice("crac1")!.Address.ToString());
        Assert.False(c.FindDevice("drive1")!.Enabled);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), c.FindDevice("ups1")!.Timeout);
        Assert.Equal("abb-acs580", c.ProfileOf(c.FindDevice("drive1")!).Id);
    }

    [Fact]
    public void Config_built_in_code_with_a_dangling_reference_is_rejected()
    {
        var b = new SiteConfigBuilder("sim", "gw-sim");
        b.Room("room1").Row("A").Rack("A01", powerBudgetKw: 6, feeds: ["pdu-missing"]);
        var result = SiteConfigLoader.Validate(b.Build(), Options);
        Assert.Equal(["site.rooms[0].rows[0].racks[0].feeds[0]: unknown PDU 'pdu-missing' (none defined)"], result.Problems.Select(p => p.Path + ": " + p.Message));
    }

    [Fact]
    public void Secrets_from_files_are_written_as_file_references()
    {
        var c = new SiteConfigBuilder("s", "g")
            .Credentials(new CredentialsConfig("v3", SnmpVersion.V3)
            {
                User = "ops",
                Level = SnmpSecurityLevel.AuthPriv,
                Auth = SnmpAuthProtocol.Sha512,
                AuthPassword = "secret-from-file",
                AuthPasswordFile = "/etc/edgetwin/secrets/auth",
                Priv = SnmpPrivProtocol.Aes256,
                PrivPassword = "inline-priv-pass",
            })
            .Build();
        var yaml = SiteConfigWriter.ToYaml(c);
        Assert.DoesNotContain("secret-from-file", yaml, StringComparison.Ordinal);
        Assert.Contains("auth_password_file: /etc/edgetwin/secrets/auth", yaml, StringComparison.Ordinal);
        Assert.Contains("priv_password: \"inline-priv-pass\"", yaml, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", c.Credentials["v3"].ToString(), StringComparison.Ordinal);
    }

    private static void AssertSame(SiteConfig a, SiteConfig b)
    {
        Assert.Equal(a.Site.Id, b.Site.Id);
        Assert.Equal(a.Site.GatewayId, b.Site.GatewayId);
        Assert.Equal(Describe(a.Site.AllRacks), Describe(b.Site.AllRacks));
        Assert.Equal(a.Site.Rooms.Select(r => (r.Id, r.VolumeM3)), b.Site.Rooms.Select(r => (r.Id, r.VolumeM3)));
        Assert.Equal(a.Site.CoolingUnits.Select(c => $"{c.Id}/{c.Room}/{c.CapacityKw}/{string.Join(',', c.Serves)}/{c.Device}"), b.Site.CoolingUnits.Select(c => $"{c.Id}/{c.Room}/{c.CapacityKw}/{string.Join(',', c.Serves)}/{c.Device}"));
        Assert.Equal(a.Site.Power.Ups, b.Site.Power.Ups);
        Assert.Equal(a.Site.Power.Pdus, b.Site.Power.Pdus);
        Assert.Equal(a.Site.AllMachines, b.Site.AllMachines);
        Assert.Equal(a.Devices, b.Devices); // DeviceConfig has no collections, so record equality is deep
        Assert.Equal(a.Credentials.OrderBy(k => k.Key), b.Credentials.OrderBy(k => k.Key));
        Assert.Equal(a.Outbox, b.Outbox);
        Assert.Equal(a.Profiles.Keys.Order(), b.Profiles.Keys.Order());
    }

    private static IEnumerable<string> Describe(IEnumerable<RackConfig> racks) =>
        racks.Select(r => $"{r.Id}/{r.Position}/{r.PowerBudgetKw}/{string.Join(',', r.Feeds)}/{r.Servers}");
}
