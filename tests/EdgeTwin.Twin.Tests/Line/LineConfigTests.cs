using EdgeTwin.Core.Config;
using EdgeTwin.Twin.Line;
using EdgeTwin.Twin.Line.Oee;

namespace EdgeTwin.Twin.Tests.Line;

public sealed class LineConfigTests
{
    // The shipped example, found from the test binary up to the repository.
    private static string Example
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                var p = Path.Combine(dir.FullName, "src", "EdgeTwin.Twin", "Line", "examples", "line1.yaml");
                if (File.Exists(p)) return File.ReadAllText(p);
            }
            throw new FileNotFoundException("src/EdgeTwin.Twin/Line/examples/line1.yaml not found above " + AppContext.BaseDirectory);
        }
    }

    private static (LineTwinConfig? Config, IReadOnlyList<ConfigDiagnostic> Problems) Parse(string yaml)
    {
        var d = new ConfigDiagnostics();
        var c = LineTwinConfig.Parse(yaml, "site.yaml", d);
        return (c, d.Sorted());
    }

    [Fact]
    public void The_example_line_parses()
    {
        var (c, problems) = Parse(Example);
        Assert.Empty(problems);
        Assert.NotNull(c);
        Assert.Equal("line1", c.Id);
        Assert.Equal(4, c.Spec.Stations.Count);
        Assert.Equal(36, c.Spec.Stations[2].CycleTimeSeconds);
        Assert.Equal(2 * 3600, c.Spec.Stations[2].MtbfSeconds);
        Assert.Equal(15, c.Spec.Buffers[1].Capacity);
        Assert.Equal("S4", c.OutputStation);
        Assert.Equal(MachineState.Faulted, c.Stations[0].State!.StateMap![4]);
        Assert.Equal("m3-green", c.Stations[2].StackLight!.Green);
        Assert.Equal(3, c.ShiftStarts.Count);
        Assert.Equal(new DateTime(2026, 11, 30, 14, 0, 0), c.ShiftStart(new DateTimeOffset(2026, 11, 30, 17, 5, 0, TimeSpan.Zero), TimeZoneInfo.Utc));
        Assert.Equal(new DateTime(2026, 11, 29, 22, 0, 0), c.ShiftStart(new DateTimeOffset(2026, 11, 30, 3, 0, 0, TimeSpan.Zero), TimeZoneInfo.Utc));
        Assert.Empty(c.Spec.Validate());
    }

    [Fact]
    public void Planned_stops_are_placed_in_the_shift_they_fall_in()
    {
        const string yaml = """
            line:
              id: line1
              shift: { length: 8h, starts: ["06:00", "14:00", "22:00"] }
              planned_stops:
                - { start: "10:00", duration: 15m, reason: break }
                - { start: "02:00", duration: 30m, reason: meal }
                - { start: "13:50", duration: 20m, station: S2, reason: changeover }
              buffers: [{ id: B1, capacity: 5 }]
              stations:
                - { id: S1, ideal_cycle_time: 30s, output: B1 }
                - { id: S2, ideal_cycle_time: 30s, inputs: [B1] }
            """;
        var (c, problems) = Parse(yaml);
        Assert.Empty(problems);

        Assert.Equal(
            [new PlannedWindow(-1, 4 * 3600, 4 * 3600 + 900, "break"), new PlannedWindow(1, 7 * 3600 + 50 * 60, 8 * 3600, "changeover")],
            c!.PlannedWindows(TimeSpan.FromHours(6))); // the changeover is cut at the shift's end
        Assert.Equal([new PlannedWindow(-1, 4 * 3600, 4 * 3600 + 1800, "meal")], c.PlannedWindows(TimeSpan.FromHours(22))); // past midnight
        Assert.Empty(c.PlannedWindows(TimeSpan.FromHours(14)));
    }

    [Fact]
    public void Malformed_lines_are_rejected_with_file_line_and_key()
    {
        const string yaml = """
            line:
              id: line1
              margin_per_unit: lots
              buffers:
                - { id: B1, capacity: 0 }
                - { id: B2, capacity: 5, initial: 9 }
              stations:
                - { id: S1, ideal_cycle_time: 30s, output: B9, reject_rate: 3 }
                - { id: S2, ideal_cycle_time: fast, inputs: [B1], mtbf: 2h }
                - id: S3
                  ideal_cycle_time: 20s
                  inputs: [B2]
                  signals:
                    state: { device: plc, metric: st, map: { 1: running, 2: dancing } }
                  colour: red
              planned_stops:
                - { start: "25:00", duration: 10m }
            """;
        var (c, problems) = Parse(yaml);
        Assert.Null(c);
        string all = string.Join("\n", problems);
        Assert.All(problems, p => Assert.Equal("site.yaml", p.File));
        Assert.Contains(problems, p => p.Line == 3 && p.Path == "line.margin_per_unit");
        Assert.Contains(problems, p => p.Line == 5 && p.Path.EndsWith("capacity", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Line == 6 && p.Message.Contains("exceeds the capacity", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Line == 8 && p.Message.Contains("'B9' is not defined", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Line == 8 && p.Path == "line.stations[0].reject_rate");
        Assert.Contains(problems, p => p.Line == 9 && p.Path.EndsWith("ideal_cycle_time", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Line == 9 && p.Message.Contains("mttr is required", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Line == 14 && p.Message.Contains("'dancing'", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Line == 15 && p.Message.Contains("unknown key 'colour'", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Line == 17 && p.Message.Contains("time of day", StringComparison.Ordinal));
        Assert.True(problems.Count >= 9, all);
    }

    // Structural problems of the line graph were all reported at `line:` (line 1), leaving the reader to find the element.

    [Fact]
    public void Regression_a_buffer_no_station_takes_from_was_reported_at_the_line_key()
    {
        var (c, problems) = Parse("""
            line:
              id: line1
              buffers:
                - { id: B1, capacity: 5 }
              stations:
                - { id: S1, ideal_cycle_time: 30s, output: B1 }
                - { id: S2, ideal_cycle_time: 30s, output: B1 }
            """);
        Assert.Null(c);
        Assert.Equal("site.yaml:4:13: line.buffers[0].id: buffer 'B1' has no station taking from it", Assert.Single(problems).ToString());
    }

    [Fact]
    public void Regression_a_buffer_no_station_feeds_was_reported_at_the_line_key()
    {
        var (c, problems) = Parse("""
            line:
              id: line1
              buffers:
                - { id: B1, capacity: 5 }
                - id: B2
                  capacity: 5
              stations:
                - { id: S1, ideal_cycle_time: 30s, output: B1 }
                - { id: S2, ideal_cycle_time: 30s, inputs: [B1, B2] }
            """);
        Assert.Null(c);
        Assert.Equal("site.yaml:5:11: line.buffers[1].id: buffer 'B2' has no station feeding it", Assert.Single(problems).ToString());
    }

    [Fact]
    public void Regression_a_stations_output_that_is_also_its_input_was_reported_at_the_line_key()
    {
        var (c, problems) = Parse("""
            line:
              id: line1
              buffers: [{ id: B1, capacity: 5 }, { id: B2, capacity: 5 }]
              stations:
                - { id: S1, ideal_cycle_time: 30s, output: B1 }
                - { id: S2, ideal_cycle_time: 30s, inputs: [B1], output: B1 }
                - { id: S3, ideal_cycle_time: 30s, inputs: [B2] }
            """);
        Assert.Null(c);
        Assert.Contains("site.yaml:6:62: line.stations[1].output: station 'S2': output buffer 'B1' is also its input", problems.Select(p => p.ToString()));
        Assert.DoesNotContain(problems, p => p.Path == "line");
    }

    [Fact]
    public void Regression_a_cycle_in_the_line_was_reported_at_the_line_key()
    {
        // S3 sends its parts back to S2 through B3: the output that closes the loop is the key to fix.
        var (c, problems) = Parse("""
            line:
              id: line1
              buffers: [{ id: B1, capacity: 5 }, { id: B2, capacity: 5 }, { id: B3, capacity: 5 }]
              stations:
                - { id: S1, ideal_cycle_time: 30s, output: B1 }
                - { id: S2, ideal_cycle_time: 30s, inputs: [B1, B3], output: B2 }
                - { id: S3, ideal_cycle_time: 30s, inputs: [B2], output: B3 }
                - { id: S4, ideal_cycle_time: 30s, inputs: [B2] }
            """);
        Assert.Null(c);
        Assert.Equal(
            "site.yaml:7:62: line.stations[2].output: line has a cycle (a part could return to a station it passed): S2 -> B2 -> S3 -> B3 -> S2 (S3's output B3 feeds S2 again)",
            Assert.Single(problems).ToString());
    }

    [Fact]
    public void Regression_a_zero_mttr_on_a_station_that_fails_was_reported_at_the_line_key()
    {
        var (c, problems) = Parse("""
            line:
              id: line1
              buffers: [{ id: B1, capacity: 5 }]
              stations:
                - { id: S1, ideal_cycle_time: 30s, output: B1 }
                - id: S2
                  ideal_cycle_time: 30s
                  mtbf: 2h
                  mttr: 0s
                  inputs: [B1]
            """);
        Assert.Null(c);
        Assert.Equal("site.yaml:9:13: line.stations[1].mttr: station 'S2': mttr must be > 0 when it can fail", Assert.Single(problems).ToString());
    }

    [Fact]
    public void Missing_section_and_missing_stations_are_reported()
    {
        Assert.Contains(Parse("site: { id: x }\n").Problems, p => p.Message.Contains("line", StringComparison.Ordinal));
        var (c, problems) = Parse("line:\n  id: l1\n  buffers: []\n");
        Assert.Null(c);
        Assert.Contains(problems, p => p.Message.Contains("stations", StringComparison.Ordinal));
    }

    [Fact]
    public void Regression_line_signals_naming_devices_or_metrics_that_do_not_exist_passed_check()
    {
        // Each of these passed `check` and `run` before and turned its station into one that never reports.
        const string site = """
            site:
              id: plant1
              gateway_id: gw1
              rooms: [{ id: hall1 }]
            devices:
              - { id: plc-s1, profile: generic-packml-plc, address: "tcp:127.0.0.1:15021", unit_id: 1, location: { room: hall1 } }
              - { id: s2-red, profile: generic-stack-light, address: "gpio:20", location: { room: hall1 } }
            outbox: { path: /tmp/edgetwin-line-refs.db }
            line:
              id: line1
              buffers:
                - { id: B1, capacity: 20, level: { device: plc-s1, metric: infeed_levl } }
              stations:
                - id: S1
                  ideal_cycle_time: 30s
                  output: B1
                  signals:
                    state: { device: plc-s9, metric: machine_state, map: { 6: running } }
                    good: { device: plc-s1, metric: goods_parts }
                - id: S2
                  ideal_cycle_time: 30s
                  inputs: [B1]
                  signals: { stack_light: { red: s2-red, green: plc-s1 } }
            """;
        var problems = CheckSite(site);
        Assert.Equal(
        [
            "site.yaml:12:64: line.buffers[0].level.metric: device 'plc-s1' (profile generic-packml-plc) has no metric 'infeed_levl' (did you mean 'infeed_level'?)",
            "site.yaml:18:26: line.stations[0].signals.state.device: unknown device 'plc-s9' (did you mean 'plc-s1'?)",
            "site.yaml:19:41: line.stations[0].signals.good.metric: device 'plc-s1' (profile generic-packml-plc) has no metric 'goods_parts' (did you mean 'good_parts'?)",
            "site.yaml:23:53: line.stations[1].signals.stack_light.green: device 'plc-s1' (profile generic-packml-plc) has no metric 'lamp': a stack-light lamp is a generic-stack-light device",
        ], problems);

        // The same site with the names right is valid.
        var fixedSite = site.Replace("plc-s9", "plc-s1", StringComparison.Ordinal).Replace("goods_parts", "good_parts", StringComparison.Ordinal)
            .Replace("infeed_levl", "infeed_level", StringComparison.Ordinal).Replace("green: plc-s1", "green: s2-red", StringComparison.Ordinal);
        Assert.Empty(CheckSite(fixedSite));

        // A machine polled less often than the books hold its state would have no OEE: said at its device key.
        var slow = fixedSite.Replace("location: { room: hall1 } }\n  - { id: s2-red", "location: { room: hall1 }, interval: 10m }\n  - { id: s2-red", StringComparison.Ordinal);
        Assert.NotEqual(fixedSite, slow);
        const string Why = "device 'plc-s1' is polled every 10m: the line twin holds a machine's state for at most 5m between readings (a longer gap is unknown time and its parts unseen), so this station would have no OEE; poll it at least every 5m";
        Assert.Equal(
            [$"site.yaml:18:26: line.stations[0].signals.state.device: {Why}", $"site.yaml:19:25: line.stations[0].signals.good.device: {Why}"],
            CheckSite(slow));
    }

    private static List<string> CheckSite(string yaml)
    {
        string repo = AppContext.BaseDirectory;
        while (!Directory.Exists(Path.Combine(repo, "device-profiles"))) repo = Path.GetDirectoryName(repo)!;
        var result = SiteConfigLoader.Parse(yaml, Path.Combine(Path.GetTempPath(), "site.yaml"), new SiteConfigLoadOptions
        {
            ProfilesDir = Path.Combine(repo, "device-profiles"),
            SectionValidators = [new LineSectionValidator()],
        });
        return [.. result.Problems.Select(p => (p with { File = Path.GetFileName(p.File) }).ToString())];
    }

    [Fact]
    public void Regression_a_line_state_file_on_the_outbox_passed_check()
    {
        // The agent refuses such a file at start and keeps no state that run; check said OK. A relative file is taken
        // from the outbox's directory.
        static List<string> Check(string state, string outbox = "/var/lib/edgetwin/outbox.db") => CheckSite($$"""
            site: { id: plant1, gateway_id: gw1 }
            devices: []
            outbox: { path: {{outbox}} }
            line:
              id: line1
              buffers: [{ id: B1, capacity: 10 }]
              stations:
                - { id: S1, ideal_cycle_time: 30s, output: B1 }
                - { id: S2, ideal_cycle_time: 30s, inputs: [B1] }
              state: {{state}}
            """);
        const string Own = "name a file of its own (default line-state.bin next to the outbox)";
        Assert.Equal([$"site.yaml:10:18: line.state.file: line.state.file resolves to /var/lib/edgetwin/outbox.db, the outbox itself: {Own}"], Check("{ file: /var/lib/edgetwin/outbox.db }"));
        Assert.Equal([$"site.yaml:10:18: line.state.file: line.state.file resolves to /var/lib/edgetwin/outbox.db, the outbox itself: {Own}"], Check("{ file: outbox.db }"));
        Assert.Equal([$"site.yaml:10:18: line.state.file: line.state.file resolves to /var/lib/edgetwin/outbox.db.lock, the outbox's lock file: {Own}"], Check("{ file: ./outbox.db.lock }"));

        // A directory gets line-state.bin inside; a state kept off names no file the agent opens.
        Assert.Empty(Check("{ file: ./ }"));
        Assert.Empty(Check("{ enabled: false, file: outbox.db }"));

        // An outbox named like the line state's default file is said at outbox.path.
        Assert.Equal(
            ["site.yaml:3:17: outbox.path: the outbox would be /srv/edgetwin/line-state.bin, the file line.state keeps its state in by default: name the outbox otherwise, or give line.state.file"],
            Check("{ checkpoint_interval: 1m }", outbox: "/srv/edgetwin/line-state.bin"));
    }

    [Fact]
    public void Regression_check_accepted_overlapping_shifts()
    {
        var (config, problems) = Parse("""
            line:
              id: l1
              shift: { length: 10h, starts: ["06:00", "14:00", "22:00"] }
              buffers: [{ id: B1, capacity: 10 }]
              stations:
                - { id: S1, ideal_cycle_time: 30s, output: B1 }
                - { id: S2, ideal_cycle_time: 30s, inputs: [B1] }
            """);
        Assert.Null(config);
        var p = Assert.Single(problems);
        Assert.Equal("site.yaml:3:20: line.shift.length: shift length 10 h exceeds the 8 h between the starts 06:00 and 14:00: shifts would overlap", p.ToString());
    }

    [Fact]
    public void Validator_is_discoverable_for_edgetwin_check()
    {
        var v = ConfigSectionValidators.Discover(typeof(LineSectionValidator).Assembly);
        Assert.Contains(v, x => x.Section == "line");
    }
    [Fact]
    public void A_shift_time_zone_is_read_and_an_unknown_one_is_named_with_its_line_and_key()
    {
        const string line = """
            line:
              id: l1
              shift: { length: 8h, starts: ["06:00"], time_zone: TIME_ZONE }
              buffers: [{ id: B1, capacity: 10 }]
              stations:
                - { id: S1, ideal_cycle_time: 30s, output: B1 }
                - { id: S2, ideal_cycle_time: 30s, inputs: [B1] }
            """;
        var (c, problems) = Parse(line.Replace("TIME_ZONE", "America/Chicago", StringComparison.Ordinal));
        Assert.Empty(problems);
        Assert.Equal(("America/Chicago", TimeZoneInfo.FindSystemTimeZoneById("America/Chicago")), (c!.TimeZoneId, c.TimeZone));

        var (_, bad) = Parse(line.Replace("TIME_ZONE", "Europe/Berlim", StringComparison.Ordinal));
        var problem = Assert.Single(bad);
        Assert.Equal((3, "line.shift.time_zone"), (problem.Line, problem.Path));
        Assert.StartsWith("unknown time zone 'Europe/Berlim': give an IANA name such as Europe/Berlin", problem.Message, StringComparison.Ordinal);

        // Without the key: the host's zone, as before.
        var (host, _) = Parse(line.Replace(", time_zone: TIME_ZONE", "", StringComparison.Ordinal));
        Assert.Equal((null, TimeZoneInfo.Local), (host!.TimeZoneId, host.TimeZone));
    }

    /// <summary>
    /// Site engineer, Europe/Berlin: a shift start or break at 02:30 is valid config, but that time does not occur the
    /// night the clocks go forward and occurs twice the night they go back; <c>check</c> says so and how the twin takes it.
    /// </summary>
    [Fact]
    public void Check_names_calendar_times_the_clocks_skip_or_show_twice_and_how_they_are_taken()
    {
        LineTwinConfig Line(string zone, string stop)
        {
            var d = new ConfigDiagnostics();
            var c = LineTwinConfig.Parse($$"""
                line:
                  id: l1
                  shift: { length: 8h, starts: ["02:30", "10:30", "18:30"], time_zone: {{zone}} }
                  planned_stops: [{ start: "{{stop}}", duration: 15m, reason: break }]
                  buffers: [{ id: B1, capacity: 10 }]
                  stations:
                    - { id: S1, ideal_cycle_time: 30s, output: B1 }
                    - { id: S2, ideal_cycle_time: 30s, inputs: [B1] }
                """, "site.yaml", d);
            Assert.Empty(d.Items);
            return c!;
        }

        Assert.Equal(
            "in Europe/Berlin the shift start 02:30 is skipped on 2026-03-29 (then 03:30:00+02:00) and shown twice on 2026-10-25 (then the second, 02:30:00+01:00)",
            LineSectionValidator.ClockChangeNote(Line("Europe/Berlin", "12:00"), new DateTime(2026, 1, 1)));
        Assert.Equal(
            "in Europe/Berlin the shift start 02:30 is skipped on 2027-03-28 (then 03:30:00+02:00) and shown twice on 2026-10-25 (then the second, 02:30:00+01:00); "
            + "the planned stop 02:15 is skipped on 2027-03-28 (then 03:15:00+02:00) and shown twice on 2026-10-25 (then the second, 02:15:00+01:00)",
            LineSectionValidator.ClockChangeNote(Line("Europe/Berlin", "02:15"), new DateTime(2026, 4, 1)));
        Assert.Null(LineSectionValidator.ClockChangeNote(Line("UTC", "02:15"), new DateTime(2026, 1, 1)));
    }
}
