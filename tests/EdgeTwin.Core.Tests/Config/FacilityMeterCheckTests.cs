using EdgeTwin.Core.Config;

namespace EdgeTwin.Core.Tests.Config;

/// <summary><c>site.power.facility_meter</c>: the meter whose total power is the PUE's facility power.</summary>
public sealed class FacilityMeterCheckTests
{
    private static readonly SiteConfigLoadOptions Options = new() { ProfilesDir = TestFiles.ProfilesDir };

    private static string Site(string meterProfile, string facilityMeter, string upsProfile = "ietf-ups-mib") => $$"""
        site:
          id: s1
          gateway_id: g1
          power:
            ups:
              - { id: ups1, device: ups1, capacity_kw: 40 }
            facility_meter: {{facilityMeter}}
        devices:
          - { id: ups1, profile: {{upsProfile}}, address: "udp:127.0.0.1:16101", credentials: c }
          - { id: main, profile: {{meterProfile}}, address: "tcp:127.0.0.1:502" }
        credentials:
          c: { version: 2c, community: public }
        """;

    [Fact]
    public void A_utility_meter_reading_total_power_is_accepted_and_kept()
    {
        using var dir = new TempDir();
        var path = dir.Write("site.yaml", Site("eastron-sdm630", "main"));
        var report = ConfigCheck.Run(path, Options);

        Assert.Equal(0, report.ExitCode);
        var config = SiteConfigLoader.LoadOrThrow(path, Options);
        Assert.Equal("main", config.Site.Power.FacilityMeter);
    }

    [Fact]
    public void An_unknown_facility_meter_is_named_with_its_key()
    {
        using var dir = new TempDir();
        var path = dir.Write("site.yaml", Site("eastron-sdm630", "mian"));
        var report = ConfigCheck.Run(path, Options);
        var text = new StringWriter();
        ConfigCheck.WriteText(report, text);

        Assert.Equal(1, report.ExitCode);
        Assert.Contains($"{path}:7:21: site.power.facility_meter: unknown device 'mian'", text.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_facility_meter_whose_profile_reads_no_total_power_is_refused()
    {
        // A UPS named as the facility meter: no meter.power_total, so the PUE would never come, silently.
        using var dir = new TempDir();
        var path = dir.Write("site.yaml", Site("eastron-sdm630", "ups1"));
        var report = ConfigCheck.Run(path, Options);
        var text = new StringWriter();
        ConfigCheck.WriteText(report, text);

        Assert.Equal(1, report.ExitCode);
        Assert.Contains($"{path}:7:21: site.power.facility_meter: device 'ups1' (profile 'ietf-ups-mib') has no metric with role meter.power_total", text.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_chain_whose_it_power_is_not_read_whole_is_warned_about()
    {
        // apc-smart-ups reads its load in % only, and there is no PDU: the agent would start and never publish a PUE.
        using var dir = new TempDir();
        var path = dir.Write("site.yaml", Site("eastron-sdm630", "main", upsProfile: "apc-smart-ups"));
        var report = ConfigCheck.Run(path, Options);
        var text = new StringWriter();
        ConfigCheck.WriteText(report, text);

        Assert.Equal(0, report.ExitCode);
        Assert.Contains($"{path}:7:21: warning: site.power.facility_meter: no PUE will be computed: the IT power needs every UPS's output (ups1's device ups1 reads no ups.output_power) or every PDU's (none configured); a partial sum would overstate it", text.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void The_written_config_keeps_the_facility_meter()
    {
        using var dir = new TempDir();
        var config = SiteConfigLoader.LoadOrThrow(dir.Write("site.yaml", Site("eastron-sdm630", "main")), Options);
        var again = SiteConfigLoader.LoadOrThrow(dir.Write("again.yaml", SiteConfigWriter.ToYaml(config)), Options);

        Assert.Equal("main", again.Site.Power.FacilityMeter);
    }
}
