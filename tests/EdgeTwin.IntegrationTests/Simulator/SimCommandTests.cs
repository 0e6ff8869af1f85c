using EdgeTwin.Agent.Twin.Models;
using EdgeTwin.Core.Config;

namespace EdgeTwin.IntegrationTests.Simulator;

/// <summary><c>edgetwin sim</c> end to end, in process: it serves, prints its ports and writes a config that loads.</summary>
public sealed class SimCommandTests
{
    [Fact]
    public async Task Sim_prints_its_devices_writes_a_valid_config_and_stops_after_its_duration()
    {
        var path = Path.Combine(Path.GetTempPath(), $"edgetwin-sim-cli-{Guid.NewGuid():N}.yaml");
        var output = new StringWriter();
        var error = new StringWriter();
        try
        {
            var exit = await InProcessCli.InvokeAsync(["sim", "--racks", "2", "--cooling-units", "1", "--machines", "1", "--seed", "3", "--profiles-dir", SimPaths.Profiles, "--config-out", path, "--duration", "2", "--fault", "cooling-stop:crac1@1s"], output, error);

            Assert.True(exit == 0, $"exit {exit}: {error}");
            var text = output.ToString();
            Assert.Matches(@"pdu-a01-a\s+apc-rpdu2\s+udp:127\.0\.0\.1:\d+", text);
            Assert.Matches(@"drive1\s+abb-acs580\s+tcp:127\.0\.0\.1:\d+", text);
            Assert.Contains("site config written to", text, StringComparison.Ordinal);
            Assert.Contains("crac1: cooling unit stopped", text, StringComparison.Ordinal);
            var result = SiteConfigLoader.Load(path);
            Assert.True(result.IsValid, string.Join(Environment.NewLine, result.Problems));
            Assert.Equal(4 + 2 + 1 + 1 + 1, result.Config!.Devices.Count);

            // Regression: the config had no models: section, so sim + run ran without models and no warning.
            var models = ModelsConfig.From(result.Config).Directory;
            Assert.True(File.Exists(Path.Combine(models, "manifest.json")), $"models.directory {models} has no manifest");
            Assert.Contains($"models directory {models}", text, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Sim_rejects_a_malformed_fault_with_exit_code_2()
    {
        var (exit, _, error) = await InProcessCli.RunAsync("sim", "--profiles-dir", SimPaths.Profiles, "--fault", "melt:crac1", "--duration", "1");

        Assert.Equal(2, exit);
        Assert.StartsWith("edgetwin sim: fault 'melt:crac1': unknown kind 'melt'", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sim_serves_the_chosen_ups_meter_and_rack_probe_profiles_and_writes_their_config()
    {
        var path = Path.Combine(Path.GetTempPath(), $"edgetwin-sim-cli-{Guid.NewGuid():N}.yaml");
        var output = new StringWriter();
        var error = new StringWriter();
        try
        {
            var exit = await InProcessCli.InvokeAsync(
                ["sim", "--racks", "2", "--cooling-units", "1", "--machines", "0", "--profiles-dir", SimPaths.Profiles, "--config-out", path, "--duration", "1",
                 "--ups-profile", "eaton-xups", "--ups-profile", "ietf-ups-mib", "--meter-profile", "siemens-pac3200", "--rack-probes", "apc-uio-probe"],
                output,
                error);

            Assert.True(exit == 0, $"exit {exit}: {error}");
            var text = output.ToString();
            Assert.Matches(@"ups1\s+eaton-xups\s+udp:127\.0\.0\.1:\d+\s+Ups ups1", text);
            Assert.Matches(@"ups2\s+ietf-ups-mib\s+udp:", text);
            Assert.Matches(@"meter1\s+siemens-pac3200\s+tcp:127\.0\.0\.1:\d+", text);
            Assert.Matches(@"probe-a01\s+apc-uio-probe\s+udp:127\.0\.0\.1:\d+\s+RackProbe A01", text);
            var result = SiteConfigLoader.Load(path);
            Assert.True(result.IsValid, string.Join(Environment.NewLine, result.Problems));
            var config = result.Config!;
            Assert.Equal("eaton-xups", config.FindDevice("ups1")!.Profile);
            Assert.Equal("siemens-pac3200", config.FindDevice("meter1")!.Profile);
            Assert.Equal("meter1", config.Site.Power.FacilityMeter);
            Assert.Equal(["A01", "A02"], config.Devices.Where(d => d.Profile == "apc-uio-probe").Select(d => d.Location.Rack));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Sim_rooms_serves_a_sub_meter_per_room_and_writes_rooms_with_their_racks_and_infrastructure_meters()
    {
        var path = Path.Combine(Path.GetTempPath(), $"edgetwin-sim-cli-{Guid.NewGuid():N}.yaml");
        var output = new StringWriter();
        var error = new StringWriter();
        try
        {
            var exit = await InProcessCli.InvokeAsync(
                ["sim", "--racks", "4", "--cooling-units", "2", "--machines", "0", "--rooms", "2", "--profiles-dir", SimPaths.Profiles, "--config-out", path, "--duration", "1"],
                output,
                error);

            Assert.True(exit == 0, $"exit {exit}: {error}");
            var text = output.ToString();
            Assert.Matches(@"meter-room1\s+eastron-sdm630\s+tcp:127\.0\.0\.1:\d+\s+RoomMeter room1", text);
            Assert.Matches(@"meter-room2\s+eastron-sdm630\s+tcp:127\.0\.0\.1:\d+\s+RoomMeter room2", text);
            Assert.Matches(@"room1 \d+\.\d °C IT \d+\.\d kW infrastructure \d+\.\d kW pPUE 1\.\d{3}, room2 .*; site PUE 1\.\d{3}", text);
            var result = SiteConfigLoader.Load(path);
            Assert.True(result.IsValid, string.Join(Environment.NewLine, result.Problems));
            Assert.Empty(result.Warnings);
            var site = result.Config!.Site;
            Assert.Equal("meter1", site.Power.FacilityMeter);
            Assert.Equal(
                ["room1: A01,A02 / crac1 / meter-room1", "room2: B01,B02 / crac2 / meter-room2"],
                site.Rooms.Select(r => $"{r.Id}: {string.Join(',', r.Rows.SelectMany(w => w.Racks).Select(k => k.Id))} / {string.Join(',', site.CoolingUnits.Where(u => u.Room == r.Id).Select(u => u.Id))} / {string.Join(',', r.InfrastructureMeters ?? [])}"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("3", "edgetwin sim: 3 rooms need at least as many racks (2) and cooling units (2): every room has racks and its own cooling")]
    [InlineData("0", "--rooms must be at least 1, got 0")]
    public async Task Sim_rejects_more_rooms_than_racks_or_units_and_a_room_count_below_1(string rooms, string message)
    {
        var (exit, output, error) = await InProcessCli.RunAsync("sim", "--racks", "2", "--cooling-units", "2", "--rooms", rooms, "--profiles-dir", SimPaths.Profiles, "--duration", "1");

        Assert.Equal(2, exit);
        Assert.Contains(message, error.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("udp:127.0.0.1", output.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--ups-profile", "eastron-sdm630", "edgetwin sim: --ups-profile: 'eastron-sdm630' is not a UPS profile (no ups.* role); known: ", "eaton-xups")]
    [InlineData("--ups-profile", "eaton-xups,nope", "edgetwin sim: --ups-profile: 'nope' is not a profile in ", "ietf-ups-mib")]
    [InlineData("--meter-profile", "apc-uio-probe", "edgetwin sim: --meter-profile: 'apc-uio-probe' is not a meter profile (no meter.* role); known: ", "siemens-pac3200")]
    [InlineData("--rack-probes", "apc-rpdu2", "edgetwin sim: --rack-probes: 'apc-rpdu2' is not a rack probe profile (it measures pdu.* too); known: ", "apc-uio-probe")]
    [InlineData("--ups-profile", "", "edgetwin sim: --ups-profile: is empty: name at least one UPS profile; known: ", "eaton-xups")] // said "known: (none)"
    [InlineData("--rack-probes", "siemens-pac3200", "edgetwin sim: --rack-probes: 'siemens-pac3200' is not a rack probe profile (no rack.* role); known: ", "apc-uio-probe")]
    public async Task Sim_rejects_an_unknown_or_wrong_kind_of_profile_with_exit_code_2_naming_the_option_and_the_choices(string option, string value, string start, string aChoice)
    {
        var (exit, output, error) = await InProcessCli.RunAsync("sim", "--racks", "1", "--profiles-dir", SimPaths.Profiles, option, value, "--duration", "1");

        Assert.Equal(2, exit);
        var line = error.ToString().TrimEnd();
        Assert.StartsWith(start, line, StringComparison.Ordinal);
        Assert.Contains(aChoice, line[line.LastIndexOf("known: ", StringComparison.Ordinal)..], StringComparison.Ordinal);
        Assert.DoesNotContain("udp:127.0.0.1", output.ToString(), StringComparison.Ordinal); // refused before serving
    }
}
