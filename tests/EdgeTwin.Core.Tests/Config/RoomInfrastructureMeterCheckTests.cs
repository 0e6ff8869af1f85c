using EdgeTwin.Core.Config;

namespace EdgeTwin.Core.Tests.Config;

/// <summary><c>rooms[].power.infrastructure_meters</c>: the sub-meters of a room's non-IT loads, for its partial PUE.</summary>
public sealed class RoomInfrastructureMeterCheckTests
{
    private static readonly SiteConfigLoadOptions Options = new() { ProfilesDir = TestFiles.ProfilesDir };

    private static string Site(string hallA = "[crah-a, light-a]", string hallB = "[crah-b]", string pduB2Device = "pdu-b2", string facility = "main") => $$"""
        site:
          id: s1
          gateway_id: g1
          rooms:
            - id: hall-a
              power:
                infrastructure_meters: {{hallA}}
              rows:
                - id: A
                  racks:
                    - { id: A01, power_budget_kw: 10, feeds: [pdu-a1] }
            - id: hall-b
              power: { infrastructure_meters: {{hallB}} }
              rows:
                - id: B
                  racks:
                    - { id: B01, power_budget_kw: 10, feeds: [pdu-b1, pdu-b2] }
          power:
            ups:
              - { id: ups1, device: ups1, capacity_kw: 40 }
            pdus:
              - { id: pdu-a1, device: pdu-a1, upstream: ups1, breaker_a: 32 }
              - { id: pdu-b1, device: pdu-b1, upstream: ups1, breaker_a: 32 }
              - { id: pdu-b2, device: {{pduB2Device}}, upstream: ups1, breaker_a: 32 }
            facility_meter: {{facility}}
        devices:
          - { id: ups1, profile: ietf-ups-mib, address: "udp:127.0.0.1:16101", credentials: c }
          - { id: pdu-a1, profile: apc-rpdu2, address: "udp:127.0.0.1:16102", credentials: c }
          - { id: pdu-b1, profile: apc-rpdu2, address: "udp:127.0.0.1:16103", credentials: c }
          - { id: pdu-b2, profile: apc-rpdu2, address: "udp:127.0.0.1:16104", credentials: c }
          - { id: main, profile: eastron-sdm630, address: "tcp:127.0.0.1:1502" }
          - { id: crah-a, profile: eastron-sdm630, address: "tcp:127.0.0.1:1503" }
          - { id: light-a, profile: eastron-sdm630, address: "tcp:127.0.0.1:1504" }
          - { id: crah-b, profile: eastron-sdm630, address: "tcp:127.0.0.1:1505" }
        credentials:
          c: { version: 2c, community: public }
        """;

    private static (ConfigCheckReport Report, string Text, string Path) Check(TempDir dir, string yaml)
    {
        var path = dir.Write("site.yaml", yaml);
        var report = ConfigCheck.Run(path, Options);
        var text = new StringWriter();
        ConfigCheck.WriteText(report, text);
        return (report, text.ToString(), path);
    }

    [Fact]
    public void Sub_meters_reading_total_power_are_accepted_kept_and_written_back()
    {
        using var dir = new TempDir();
        var (report, text, path) = Check(dir, Site());

        Assert.True(report.ExitCode == 0, text);
        Assert.DoesNotContain("partial PUE", text, StringComparison.Ordinal);
        var config = SiteConfigLoader.LoadOrThrow(path, Options);
        Assert.Equal(["crah-a", "light-a"], config.Site.Rooms[0].InfrastructureMeters);
        Assert.Equal(["crah-b"], config.Site.Rooms[1].InfrastructureMeters);
        Assert.Equal(["pdu-b1", "pdu-b2"], config.Site.RoomItPower(config.Site.Rooms[1], id => config.ProfileOf(config.Devices.Single(d => d.Id == id))).Devices);
        Assert.Equal("main", config.Site.Power.FacilityMeter); // the site PUE's meter is untouched

        var again = SiteConfigLoader.LoadOrThrow(dir.Write("again.yaml", SiteConfigWriter.ToYaml(config)), Options);
        Assert.Equal(["crah-a", "light-a"], again.Site.Rooms[0].InfrastructureMeters);
        Assert.Equal(["crah-b"], again.Site.Rooms[1].InfrastructureMeters);
    }

    [Fact]
    public void An_unknown_meter_is_named_with_its_key()
    {
        using var dir = new TempDir();
        var (report, text, path) = Check(dir, Site(hallA: "[crah-a, lihgt-a]"));

        Assert.Equal(1, report.ExitCode);
        Assert.Contains($"{path}:7:41: site.rooms[0].power.infrastructure_meters[1]: unknown device 'lihgt-a'", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_meter_whose_profile_reads_no_total_power_is_refused()
    {
        // A PDU named as the room's cooling meter: no meter.power_total, so the pPUE would never come, silently.
        using var dir = new TempDir();
        var (report, text, path) = Check(dir, Site(hallB: "[crah-b, pdu-b1]"));

        Assert.Equal(1, report.ExitCode);
        Assert.Contains($"{path}:13:48: site.rooms[1].power.infrastructure_meters[1]: device 'pdu-b1' (profile 'apc-rpdu2') has no metric with role meter.power_total: the room's partial PUE needs the total real power of the room's non-IT loads", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_meter_counted_twice_in_two_rooms_or_as_the_facility_meter_is_refused()
    {
        using var dir = new TempDir();
        var (twoRooms, text, path) = Check(dir, Site(hallB: "[crah-a]"));
        Assert.Equal(1, twoRooms.ExitCode);
        Assert.Contains($"{path}:13:40: site.rooms[1].power.infrastructure_meters[0]: 'crah-a' is already an infrastructure meter of room hall-a", text, StringComparison.Ordinal);

        var (twice, text2, path2) = Check(dir, Site(hallA: "[crah-a, crah-a]"));
        Assert.Equal(1, twice.ExitCode);
        Assert.Contains($"{path2}:7:41: site.rooms[0].power.infrastructure_meters[1]: 'crah-a' is listed twice", text2, StringComparison.Ordinal);

        var (facility, text3, path3) = Check(dir, Site(hallB: "[main]"));
        Assert.Equal(1, facility.ExitCode);
        Assert.Contains($"{path3}:13:40: site.rooms[1].power.infrastructure_meters[0]: 'main' is the site's facility_meter", text3, StringComparison.Ordinal);
    }

    [Fact]
    public void A_room_whose_it_power_cannot_be_summed_is_warned_about_naming_the_pdu()
    {
        // pdu-b2 is not monitored: B01's power would be pdu-b1's half only, and hall-b's pPUE too high.
        using var dir = new TempDir();
        var (report, text, path) = Check(dir, Site(pduB2Device: "null"));

        Assert.Equal(0, report.ExitCode);
        Assert.Contains($"{path}:13:39: warning: site.rooms[1].power.infrastructure_meters: no partial PUE will be computed for room hall-b: its IT power needs every PDU feeding its racks to read pdu.power (pdu-b2 has no device); a partial sum would overstate it", text, StringComparison.Ordinal);
        Assert.DoesNotContain("room hall-a", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_pdu_feeding_racks_of_two_rooms_is_not_counted_as_either_rooms()
    {
        using var dir = new TempDir();
        var yaml = Site().Replace("feeds: [pdu-b1, pdu-b2]", "feeds: [pdu-b1, pdu-a1]", StringComparison.Ordinal);
        var (report, text, _) = Check(dir, yaml);

        Assert.Equal(0, report.ExitCode);
        Assert.Contains("no partial PUE will be computed for room hall-a: its IT power needs every PDU feeding its racks to read pdu.power (pdu-a1 also feeds rack B01 in room hall-b)", text, StringComparison.Ordinal);
        Assert.Contains("no partial PUE will be computed for room hall-b: its IT power needs every PDU feeding its racks to read pdu.power (pdu-a1 also feeds rack A01 in room hall-a)", text, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_key_under_a_rooms_power_is_reported()
    {
        using var dir = new TempDir();
        var (report, text, _) = Check(dir, Site().Replace("power: { infrastructure_meters:", "power: { infrastructure_meter:", StringComparison.Ordinal));

        Assert.Equal(1, report.ExitCode);
        Assert.Contains("site.rooms[1].power.infrastructure_meter", text, StringComparison.Ordinal);
    }
}
