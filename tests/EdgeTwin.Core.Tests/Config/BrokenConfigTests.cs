using EdgeTwin.Core.Config;
using EdgeTwin.Tests.Shared;

namespace EdgeTwin.Core.Tests.Config;

/// <summary>Each broken config asserts the exact message: file, line, column, key path and text.</summary>
public sealed class BrokenConfigTests : IDisposable
{
    // Line numbers in the expectations refer to this text (line 1 = "site:"); columns are 1-based and were checked by counting.
    private const string Valid = """
        site:
          id: dc1
          gateway_id: gw1
          rooms:
            - id: room1
              rows:
                - id: A
                  racks:
                    - { id: A01, position: 1, power_budget_kw: 8, feeds: [pdu1] }
          cooling_units:
            - { id: crac1, room: room1, capacity_kw: 30, serves: [A01], device: crac1 }
          power:
            ups: [ { id: ups1, device: ups1, capacity_kw: 40 } ]
            pdus: [ { id: pdu1, device: pdu1, upstream: ups1, breaker_a: 32 } ]
        devices:
          - { id: pdu1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: v2 }
          - { id: ups1, profile: ietf-ups-mib, address: "udp:127.0.0.1:16101", credentials: v2 }
          - { id: crac1, profile: liebert-gp-crac, address: "udp:127.0.0.1:16102", credentials: v2 }
        credentials:
          v2: { version: 2c, community: public }
        """;

    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private IReadOnlyList<string> Problems(string yaml)
    {
        var path = _dir.Write("site.yaml", yaml);
        var result = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir });
        Assert.Null(result.Config);
        return [.. result.Problems.Select(p => p.ToString().Replace(_dir.Path + "/", "", StringComparison.Ordinal))];
    }

    private static string Replace(string from, string to)
    {
        Assert.Contains(from, Valid, StringComparison.Ordinal);
        return Valid.Replace(from, to, StringComparison.Ordinal);
    }

    [Fact]
    public void The_base_text_is_valid()
    {
        var path = _dir.Write("site.yaml", Valid);
        var result = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir });
        Assert.True(result.IsValid, string.Join("\n", result.Problems));
        Assert.Equal(3, result.Config!.Devices.Count);
    }

    [Fact]
    public void Unknown_key_names_the_closest_known_key()
    {
        var problems = Problems(Replace("credentials: v2 }\n  - { id: ups1", "credentials: v2, intervall: 10s }\n  - { id: ups1"));
        Assert.Equal(["site.yaml:16:86: devices[0].intervall: unknown key 'intervall' (did you mean 'interval'?)"], problems);
    }

    [Fact]
    public void Unknown_top_level_key_lists_the_known_keys()
    {
        var problems = Problems(Valid + "\nuplink: {}\n");
        Assert.Equal(["site.yaml:21:1: uplink: unknown key 'uplink' (did you mean 'uplinks'?)"], problems);
    }

    [Fact]
    public void Duration_without_unit_is_rejected()
    {
        var problems = Problems(Replace("credentials: v2 }\n  - { id: crac1", "credentials: v2, interval: 10 }\n  - { id: crac1"));
        Assert.Equal(["site.yaml:17:99: devices[1].interval: expected a duration like 500ms, 10s, 5m, 1h or 7d, got '10'"], problems);
    }

    [Fact]
    public void Missing_profile_is_reported_at_the_device()
    {
        var problems = Problems(Replace("{ id: ups1, profile: ietf-ups-mib, ", "{ id: ups1, "));
        Assert.Equal(["site.yaml:17:5: devices[1].profile: missing required key 'profile'"], problems);
    }

    [Fact]
    public void Regression_a_mistyped_profiles_dir_option_was_an_unknown_profile_at_every_device()
    {
        var path = _dir.Write("site.yaml", Valid);
        var missing = Path.Combine(_dir.Path, "no-such-profiles");

        var result = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { ProfilesDir = missing });

        // Before: three (on a site, hundreds of) "unknown profile 'X' (no X.yaml in …)", one per device.
        Assert.Equal([$"{path}: --profiles-dir: directory '{missing}' does not exist"], result.Problems.Select(p => p.ToString()));
    }

    [Fact]
    public void Unknown_profile_names_where_it_looked()
    {
        var problems = Problems(Replace("profile: apc-rpdu2", "profile: apc-rpdu3"));
        Assert.Equal([$"site.yaml:16:26: devices[0].profile: unknown profile 'apc-rpdu3' (no apc-rpdu3.yaml in {TestFiles.ProfilesDir})"], problems);
    }

    [Fact]
    public void Duplicate_device_id_points_at_the_first()
    {
        var problems = Problems(Replace("{ id: crac1, profile", "{ id: ups1, profile"));
        Assert.Equal(
        [
            "site.yaml:11:73: site.cooling_units[0].device: unknown device 'crac1' (defined: pdu1, ups1)",
            "site.yaml:18:11: devices[2].id: duplicate device id 'ups1' (first defined at line 17)",
        ], problems);
    }

    [Fact]
    public void Regression_a_device_named_by_two_cooling_units_passed_check_and_was_bound_to_one_of_them()
    {
        const string Unit = "- { id: crac1, room: room1, capacity_kw: 30, serves: [A01], device: crac1 }";
        var problems = Problems(Replace(Unit, Unit + "\n    - { id: crac2, room: room1, capacity_kw: 30, serves: [A01], device: crac1 }"));
        Assert.Equal(
        [
            "site.yaml:12:73: site.cooling_units[1].device: device 'crac1' is already the device of cooling unit 'crac1': a device reports one cooling unit; read each unit as a device of its own (a BMS gateway serving several: one device entry per unit, e.g. per unit id)",
        ], problems);
    }

    [Fact]
    public void Regression_a_device_at_one_cooling_unit_and_named_by_another_got_set_point_channels_for_both()
    {
        const string Unit = "- { id: crac1, room: room1, capacity_kw: 30, serves: [A01], device: crac1 }";
        var problems = Problems(Replace(Unit, Unit + "\n    - { id: crac2, room: room1, capacity_kw: 30, serves: [A01] }")
            .Replace("16102\", credentials: v2 }", "16102\", credentials: v2, location: { cooling_unit: crac2 } }", StringComparison.Ordinal));
        Assert.Equal(
        [
            "site.yaml:19:119: devices[2].location.cooling_unit: device 'crac1' is at cooling unit 'crac2', but cooling unit 'crac1' names it as its device: a device reports one cooling unit; drop one of the two",
        ], problems);
    }

    [Fact]
    public void Unknown_rack_and_pdu_references()
    {
        var problems = Problems(Replace("serves: [A01]", "serves: [A01, A09]").Replace("feeds: [pdu1]", "feeds: [pdu1, pdu2]", StringComparison.Ordinal));
        Assert.Equal(
        [
            "site.yaml:9:73: site.rooms[0].rows[0].racks[0].feeds[1]: unknown PDU 'pdu2' (defined: pdu1)",
            "site.yaml:11:64: site.cooling_units[0].serves[1]: unknown rack 'A09' (defined: A01)",
        ], problems);
    }

    [Fact]
    public void Unknown_upstream_ups_and_cooling_room()
    {
        var problems = Problems(Replace("upstream: ups1", "upstream: ups9").Replace("room: room1, capacity_kw", "room: room2, capacity_kw", StringComparison.Ordinal));
        Assert.Equal(
        [
            "site.yaml:11:26: site.cooling_units[0].room: unknown room 'room2' (defined: room1)",
            "site.yaml:14:49: site.power.pdus[0].upstream: unknown UPS 'ups9' (defined: ups1)",
        ], problems);
    }

    [Fact]
    public void Snmp_device_without_credentials()
    {
        var problems = Problems(Replace("\"udp:127.0.0.1:16100\", credentials: v2 }", "\"udp:127.0.0.1:16100\" }"));
        Assert.Equal(["site.yaml:16:5: devices[0].credentials: missing required key 'credentials' (SNMP devices need credentials)"], problems);
    }

    [Fact]
    public void Unknown_credentials_lists_the_defined_ones()
    {
        var problems = Problems(Replace("\"udp:127.0.0.1:16100\", credentials: v2 }", "\"udp:127.0.0.1:16100\", credentials: v3 }"));
        Assert.Equal(["site.yaml:16:82: devices[0].credentials: unknown credentials 'v3' (defined: v2)"], problems);
    }

    [Theory]
    [InlineData("linux-host", "cpu", "driver host reads the gateway itself: its address is 'host', not 'cpu'")]
    [InlineData("linux-cpu-temperature", "host", "'host' is the address of the host driver's profiles (linux-host); driver cpu_temp reads cpu or cpu:/sys/class/thermal/thermal_zoneN/temp")]
    public void The_two_system_profiles_each_take_only_their_own_address(string profile, string address, string problem)
    {
        var yaml = Valid.Replace("devices:\n", $"devices:\n  - {{ id: gw-self, profile: {profile}, address: {address} }}\n", StringComparison.Ordinal);
        Assert.NotEqual(Valid, yaml);

        Assert.Contains(Problems(yaml), p => p.EndsWith("devices[0].address: " + problem, StringComparison.Ordinal));
    }

    [Fact]
    public void Address_scheme_must_fit_the_profile_protocol()
    {
        var problems = Problems(Replace("\"udp:127.0.0.1:16100\"", "\"tcp:127.0.0.1:502\""));
        Assert.Equal(["site.yaml:16:46: devices[0].address: address scheme 'tcp' does not fit profile 'apc-rpdu2' (protocol snmp needs udp: or udp6:)"], problems);
    }

    [Fact]
    public void Malformed_address_says_why()
    {
        var problems = Problems(Replace("\"udp:127.0.0.1:16100\"", "\"udp:127.0.0.1:99999\""));
        Assert.Equal(["site.yaml:16:46: devices[0].address: udp: '99999' is not a port (1-65535)"], problems);
    }

    [Fact]
    public void Wrong_type_names_the_value()
    {
        var problems = Problems(Replace("power_budget_kw: 8", "power_budget_kw: lots"));
        Assert.Equal(["site.yaml:9:56: site.rooms[0].rows[0].racks[0].power_budget_kw: expected a number, got 'lots'"], problems);
    }

    [Fact]
    public void Regression_a_non_standard_baud_rate_passed_check_without_a_word()
    {
        // 9601 opens the port fine; every poll then times out on a line that talks at another speed.
        var path = _dir.Write("site.yaml", Valid.Replace(
            "credentials:\n",
            "  - { id: meter1, profile: eastron-sdm630, address: \"rtu:/dev/ttyUSB0\", unit_id: 1, serial: { baud: 9601, parity: none } }\n  - { id: meter2, profile: eastron-sdm630, address: \"rtu:/dev/ttyUSB1\", unit_id: 1, serial: { baud: 19200, parity: none } }\ncredentials:\n",
            StringComparison.Ordinal));
        var result = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir });
        Assert.True(result.IsValid, string.Join("\n", result.Problems));
        Assert.Equal(
            ["site.yaml:19:101: warning: devices[3].serial.baud: 9601 is not a standard baud rate (Modbus devices use 1200, 2400, 4800, 9600, 19200, 38400, 57600 or 115200); check the device's setting"],
            result.Warnings.Where(w => w.Path.StartsWith("devices", StringComparison.Ordinal)).Select(w => w.ToString().Replace(_dir.Path + "/", "", StringComparison.Ordinal)));
    }

    [Fact]
    public void Regression_two_devices_at_one_unit_id_on_one_rs485_line_passed_check()
    {
        // Two VFDs left at the factory unit id 1 on one line (both answer every request and garble each other), a PLC
        // at the meter's id with no unit_id key (the default 1), and a drive at another's id behind one serial gateway:
        // another profile was not even a warning, the same profile only "polled twice". Another port, another gateway,
        // a disabled device or a TCP device at the same id are fine.
        var path = _dir.Write("site.yaml", Valid.Replace(
            "credentials:\n",
            "  - { id: meter1, profile: eastron-sdm630, address: \"rtu:/dev/ttyUSB0\", unit_id: 1, serial: { baud: 9600, parity: none } }\n"
            + "  - { id: vfd1, profile: abb-acs580, address: \"rtu:/dev/ttyUSB0\", unit_id: 2, serial: { baud: 9600, parity: none } }\n"
            + "  - { id: vfd2, profile: abb-acs580, address: \"rtu:/dev/ttyUSB0\", unit_id: 2, serial: { baud: 9600, parity: none } }\n"
            + "  - { id: plc1, profile: generic-packml-plc, address: \"rtu:/dev/ttyUSB0\", serial: { baud: 9600, parity: none } }\n"
            + "  - { id: meter2, profile: eastron-sdm630, address: \"rtu:/dev/ttyUSB1\", unit_id: 1 }\n"
            + "  - { id: spare, profile: abb-acs580, address: \"rtu:/dev/ttyUSB0\", unit_id: 1, serial: { baud: 9600, parity: none }, enabled: false }\n"
            + "  - { id: gw-vfd1, profile: abb-acs580, address: \"rtutcp:127.0.0.1:4001\", unit_id: 5 }\n"
            + "  - { id: gw-vfd2, profile: abb-acs580, address: \"rtutcp:127.0.0.1:4002\", unit_id: 5 }\n"
            + "  - { id: gw-meter, profile: eastron-sdm630, address: \"rtutcp:127.0.0.1:4001\", unit_id: 5 }\n"
            + "  - { id: tcp-meter, profile: eastron-sdm630, address: \"tcp:127.0.0.1:5020\", unit_id: 1 }\n"
            + "  - { id: tcp-feeder, profile: schneider-pm5300, address: \"tcp:127.0.0.1:5020\", unit_id: 1 }\n"
            + "credentials:\n",
            StringComparison.Ordinal));
        var result = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir });
        Assert.Equal(
            [
                "site.yaml:21:76: devices[5].unit_id: device 'vfd2': unit_id 2 is already used by device 'vfd1' (line 20) on the same serial line /dev/ttyUSB0; each device on one RS-485 line needs its own unit id (two slaves at one id both answer and garble each other's answers)",
                "site.yaml:22:55: devices[6].address: device 'plc1': unit_id 1 (the default: no unit_id key) is already used by device 'meter1' (line 19) on the same serial line /dev/ttyUSB0; each device on one RS-485 line needs its own unit id (two slaves at one id both answer and garble each other's answers)",
                "site.yaml:27:89: devices[11].unit_id: device 'gw-meter': unit_id 5 is already used by device 'gw-vfd1' (line 25) on the same serial gateway rtutcp:127.0.0.1:4001; each device on one RS-485 line needs its own unit id (two slaves at one id both answer and garble each other's answers)",
            ],
            result.Problems.Select(p => p.ToString().Replace(_dir.Path + "/", "", StringComparison.Ordinal)));
        Assert.DoesNotContain(result.Warnings, w => w.Message.Contains("reads the same unit", StringComparison.Ordinal));
    }

    [Fact]
    public void Regression_line_to_line_voltage_on_a_three_phase_feed_overstated_its_rating()
    {
        // "16 A 400 V 3-phase" is how the feed is labelled; voltage_v is line-to-neutral (231 V). Written as 400 the
        // power twin rated it 16 × 400 × 3 × 0.95 = 18.24 kW instead of 16 × 230.9 × 3 × 0.95 = 10.53 kW.
        var path = _dir.Write("site.yaml", Replace("breaker_a: 32 }", "breaker_a: 16, phases: 3, voltage_v: 400 }"));
        var result = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir });
        Assert.True(result.IsValid, string.Join("\n", result.Problems));
        var warning = Assert.Single(result.Warnings, w => w.Path.StartsWith("site.power", StringComparison.Ordinal));
        Assert.Equal("site.power.pdus[0].voltage_v", warning.Path);
        Assert.EndsWith("400 V is a line-to-line voltage, but voltage_v of a 3-phase feed is line-to-neutral (231 V here); as written the feed is rated 18.2 kW instead of 10.5 kW (√3 too high)", warning.ToString(), StringComparison.Ordinal);

        // 230 V line-to-neutral on 3 phases (the example site's feeds) and 400 V on one phase say nothing.
        path = _dir.Write("site.yaml", Replace("breaker_a: 32 }", "breaker_a: 16, phases: 3, voltage_v: 230 }"));
        Assert.DoesNotContain(SiteConfigLoader.Load(path, new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir }).Warnings, w => w.Path.StartsWith("site.power", StringComparison.Ordinal));
    }

    [Fact]
    public void Regression_an_interval_of_days_passed_check_and_polled_nothing_for_days()
    {
        // 10d for 10s was accepted; past 49.7 days the scheduler's timer then refused the wait and the device's loop died.
        var problems = Problems(Replace("credentials: v2 }\n  - { id: ups1", "credentials: v2, interval: 10d }\n  - { id: ups1"));
        Assert.Equal(["site.yaml:16:96: devices[0].interval: must be at most 1d, got '10d' (d is days; s is seconds, m minutes)"], problems);

        // One mistake, one problem: the timeout is not also compared with the refused interval.
        problems = Problems(Replace("credentials: v2 }\n  - { id: ups1", "credentials: v2, interval: 31d, timeout: 30d }\n  - { id: ups1"));
        Assert.Equal(["site.yaml:16:96: devices[0].interval: must be at most 1d, got '31d' (d is days; s is seconds, m minutes)"], problems);
    }

    [Fact]
    public void Regression_two_devices_on_one_gpio_pin_passed_check()
    {
        // The second open of the line failed at start (or both read one contact under two meanings); a disabled one is free.
        var problems = Problems(Valid.Replace(
            "credentials:\n",
            "  - { id: leak1, profile: generic-leak-detector, address: \"gpio:17\" }\n"
            + "  - { id: door-old, profile: generic-door-contact, address: \"gpio:17\", enabled: false }\n"
            + "  - { id: door1, profile: generic-door-contact, address: \"gpio:17\" }\n"
            + "credentials:\n",
            StringComparison.Ordinal));
        Assert.Equal(["site.yaml:21:58: devices[5].address: GPIO pin 17 is already read by device 'leak1' (line 19); each GPIO device needs a pin of its own"], problems);
    }

    [Fact]
    public void Regression_an_outbox_path_naming_a_directory_passed_check_and_the_start_crashed_with_access_denied()
    {
        // The start threw "Access to the path is denied" with a stack trace, exit 1, and systemd restarted it in a loop.
        _dir.Write("not-a-dir", "x");
        // Problems() shows paths in the directory relative to it.
        Assert.Equal(
            [$"site.yaml:21:17: outbox.path: '{_dir.Path}' is a directory; give the outbox's file, e.g. outbox.db"],
            Problems(Valid + $"\noutbox: {{ path: {_dir.Path} }}\n"));
        Assert.Equal(
            ["site.yaml:21:17: outbox.path: 'not-a-dir' is a file, not a directory: the outbox's file cannot go in it"],
            Problems(Valid + $"\noutbox: {{ path: {_dir.Path}/not-a-dir/outbox.db }}\n"));
        // A file further up passed check, and the start failed creating the directories below it.
        Assert.Equal(
            ["site.yaml:21:17: outbox.path: 'not-a-dir' is a file, not a directory: the outbox's file cannot go in it"],
            Problems(Valid + $"\noutbox: {{ path: {_dir.Path}/not-a-dir/state/edgetwin/outbox.db }}\n"));
        Assert.Equal(["site.yaml:21:17: outbox.path: expected the outbox's file, e.g. /var/lib/edgetwin/outbox.db"], Problems(Valid + "\noutbox: { path: \"\" }\n"));
    }

    [Fact]
    public void Regression_an_outbox_path_on_a_pseudo_file_system_passed_check_and_the_start_failed_naming_only_the_directory()
    {
        // `run` logged the host's stack trace and "fatal: FileNotFoundException: Could not find file '/proc/edgetwin'".
        Assert.Equal(
            ["site.yaml:21:17: outbox.path: '/proc' is on the kernel's proc file system, where the outbox cannot be created; give a path on the gateway's disk, e.g. /var/lib/edgetwin/outbox.db"],
            Problems(Valid + "\noutbox: { path: /proc/edgetwin/outbox.db }\n"));
        Assert.Equal(
            ["site.yaml:21:17: outbox.path: '/sys' is on the kernel's sysfs file system, where the outbox cannot be created; give a path on the gateway's disk, e.g. /var/lib/edgetwin/outbox.db"],
            Problems(Valid + "\noutbox: { path: /sys/edgetwin/outbox.db }\n"));
    }

    [Fact]
    public void Regression_an_outbox_on_a_read_only_mount_passed_check()
    {
        // Gateways with a read-only root (overlayroot) have /var/lib read-only unless it is a mount of its own.
        using var mount = ReadOnlyBindMount.Create(_dir.Path);
        var type = new DriveInfo(mount.Dir).DriveFormat;
        Assert.Equal(
            [$"site.yaml:21:17: outbox.path: 'ro' is on a file system mounted read-only ({type}), where the outbox cannot be written; give a path on a writable disk, e.g. /var/lib/edgetwin/outbox.db"],
            Problems(Valid + $"\noutbox: {{ path: {mount.Dir}/edgetwin/outbox.db }}\n"));
    }

    [Fact]
    public void Regression_a_restart_on_storage_turned_read_only_was_refused_as_invalid_config()
    {
        // The outbox was written there, so the card failed since: exit 2, which systemd does not restart, left the site
        // unwatched. The agent goes on in memory and raises the alarm; check says what happened instead.
        using var mount = ReadOnlyBindMount.Create(_dir.Path, source => File.WriteAllText(Path.Combine(source, "outbox.db"), ""));
        var type = new DriveInfo(mount.Dir).DriveFormat;
        var path = _dir.Write("site.yaml", Valid + $"\noutbox: {{ path: {mount.Dir}/outbox.db }}\n");
        var result = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir });
        Assert.True(result.IsValid, string.Join("\n", result.Problems));
        Assert.Equal(
            [$"{path}:21:17: warning: outbox.path: '{mount.Dir}' is on a file system mounted read-only ({type}) although the outbox was written there: the storage failed (or was remounted read-only by hand). The agent goes on in memory (outbox.memory_budget_mb) and raises gateway-storage-failed; check dmesg, reboot to fsck it, or replace it"],
            result.Warnings.Select(w => w.ToString()).Where(w => w.Contains("outbox.path", StringComparison.Ordinal)));
    }

    [Fact]
    public void Regression_an_outbox_in_ram_passed_check_without_a_word()
    {
        // tmpfs (/run, /dev/shm, a tmpfs /tmp): the backlog of an outage was gone after the power cut that often ends it.
        Assert.SkipUnless(Directory.Exists("/dev/shm") && new DriveInfo("/dev/shm").DriveFormat == "tmpfs", "/dev/shm is not a tmpfs here");
        var shm = Directory.CreateDirectory($"/dev/shm/edgetwin-test-{Guid.NewGuid():N}").FullName;
        try
        {
            var path = _dir.Write("site.yaml", Valid + $"\noutbox: {{ path: {shm}/outbox.db }}\n");
            var result = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir });
            Assert.True(result.IsValid, string.Join("\n", result.Problems));
            Assert.Equal(
                [$"{path}:21:17: warning: outbox.path: '{shm}' is on tmpfs, in RAM: what the outbox holds while the uplink is down is lost when the gateway loses power or reboots; give a path on the disk, e.g. /var/lib/edgetwin/outbox.db"],
                result.Warnings.Select(w => w.ToString()).Where(w => w.Contains("outbox.path", StringComparison.Ordinal)));
        }
        finally
        {
            Directory.Delete(shm, recursive: true);
        }
    }

    [Fact]
    public void Regression_a_device_line_copied_without_changing_its_address_passed_check_without_a_word()
    {
        // The PDU was polled twice and its series stored under both ids; another profile or other credentials are meant.
        var path = _dir.Write("site.yaml", Valid.Replace(
            "credentials:\n",
            "  - { id: pdu2, profile: apc-rpdu2, address: \"udp:127.0.0.1:16100\", credentials: v2 }\n"
            + "  - { id: ups1-std, profile: ietf-ups-mib, address: \"udp:127.0.0.1:16100\", credentials: v2 }\n"
            + "  - { id: pdu1-v3, profile: apc-rpdu2, address: \"udp:127.0.0.1:16100\", credentials: v3 }\n"
            + "credentials:\n  v3: { version: 3, user: ops, level: authNoPriv, auth: SHA, auth_password: ops-passphrase }\n",
            StringComparison.Ordinal));
        var result = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir });
        Assert.True(result.IsValid, string.Join("\n", result.Problems));
        Assert.Equal(
            ["site.yaml:19:46: warning: devices[3].address: device 'pdu2' reads the same unit as device 'pdu1' (line 16): same address udp:127.0.0.1:16100 and profile apc-rpdu2; it is polled twice and stored under both ids (a copied line whose address was not changed?)"],
            result.Warnings.Where(w => w.Path.StartsWith("devices", StringComparison.Ordinal)).Select(w => w.ToString().Replace(_dir.Path + "/", "", StringComparison.Ordinal)));
    }

    [Fact]
    public void Regression_a_latin1_file_was_read_with_its_umlauts_silently_replaced()
    {
        // Saved as Latin-1, "Rösrath" became "R\uFFFDsrath" and an inline community with an umlaut another community.
        var path = _dir.Write("site.yaml", "");
        File.WriteAllBytes(path, System.Text.Encoding.Latin1.GetBytes(Valid.Replace("v2: { version: 2c, community: public }", "v2: { version: 2c, community: pöblic }", StringComparison.Ordinal)));
        var result = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir });
        Assert.Equal(
            ["site.yaml:20:34: (document): the file is not UTF-8: byte 0xF6 here (saved as Latin-1 or Windows-1252?); save it as UTF-8"],
            result.Problems.Select(p => p.ToString().Replace(_dir.Path + "/", "", StringComparison.Ordinal)));

        // The same text as UTF-8 loads, umlaut and all; so does a secret file, which gets the same check.
        File.WriteAllText(path, Valid.Replace("v2: { version: 2c, community: public }", "v2: { version: 2c, community_file: community }", StringComparison.Ordinal));
        File.WriteAllBytes(Path.Combine(_dir.Path, "community"), System.Text.Encoding.Latin1.GetBytes("pöblic\n"));
        var secret = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir });
        Assert.Equal(
            [$"site.yaml:20:38: credentials.v2.community_file: '{_dir.Path}/community' line 1: the file is not UTF-8: byte 0xF6 here (saved as Latin-1 or Windows-1252?); save it as UTF-8"],
            secret.Problems.Select(p => p.ToString().Replace(_dir.Path + "/site.yaml", "site.yaml", StringComparison.Ordinal)));
        File.WriteAllText(Path.Combine(_dir.Path, "community"), "pöblic\n");
        Assert.True(SiteConfigLoader.Load(path, new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir }).IsValid);
    }

    [Fact]
    public void Timeout_must_be_shorter_than_interval()
    {
        var problems = Problems(Replace("credentials: v2 }\n  - { id: ups1", "credentials: v2, interval: 2s, timeout: 2s }\n  - { id: ups1"));
        Assert.Equal(["site.yaml:16:109: devices[0].timeout: timeout (2s) must be shorter than the interval (2s)"], problems);
    }

    [Theory]
    [InlineData("0", "must be at least 1, got 0")]
    [InlineData("-5", "must be at least 1, got -5")]
    [InlineData("2000000", "must be at most 1000000, got 2000000")]
    [InlineData("lots", "expected an integer, got 'lots'")]
    public void Max_series_out_of_range_or_not_a_number_names_file_and_key(string value, string message)
    {
        var problems = Problems(Replace("credentials: v2 }\n  - { id: ups1", $"credentials: v2, max_series: {value} }}\n  - {{ id: ups1"));
        Assert.Equal([$"site.yaml:16:98: devices[0].max_series: {message}"], problems);
    }

    [Fact]
    public void Max_series_is_read_per_device_and_defaults_to_the_budget_default()
    {
        var path = _dir.Write("site.yaml", Replace("credentials: v2 }\n  - { id: ups1", "credentials: v2, max_series: 50 }\n  - { id: ups1"));
        var result = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir });
        Assert.True(result.IsValid, string.Join("\n", result.Problems));
        Assert.Equal(50, result.Config!.FindDevice("pdu1")!.MaxSeries);
        Assert.Equal(EdgeTwin.Core.Samples.DeviceSeriesBudget.DefaultMaxSeries, result.Config.FindDevice("ups1")!.MaxSeries);
        Assert.Contains("max_series: 50", SiteConfigWriter.ToYaml(result.Config), StringComparison.Ordinal);
        Assert.DoesNotContain("max_series: 2000", SiteConfigWriter.ToYaml(result.Config), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("500ms", "must be at least 1s, got '500ms'")]
    [InlineData("soon", "expected a duration")]
    public void Row_retention_too_short_or_not_a_duration_names_file_and_key(string value, string message)
    {
        var problems = Problems(Replace("credentials: v2 }\n  - { id: ups1", $"credentials: v2, row_retention: {value} }}\n  - {{ id: ups1"));
        var problem = Assert.Single(problems);
        Assert.StartsWith("site.yaml:16:101: devices[0].row_retention: " + message, problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Row_retention_is_read_per_device_defaults_to_a_day_and_is_written_back()
    {
        var path = _dir.Write("site.yaml", Replace("credentials: v2 }\n  - { id: ups1", "credentials: v2, row_retention: 2h }\n  - { id: ups1"));
        var result = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir });
        Assert.True(result.IsValid, string.Join("\n", result.Problems));
        Assert.Equal(TimeSpan.FromHours(2), result.Config!.FindDevice("pdu1")!.RowRetention);
        Assert.Equal(TimeSpan.FromDays(1), result.Config.FindDevice("ups1")!.RowRetention);
        var yaml = SiteConfigWriter.ToYaml(result.Config);
        Assert.Single(yaml.Split('\n'), l => l.Contains("row_retention", StringComparison.Ordinal));
        Assert.Contains("row_retention: 2h", yaml, StringComparison.Ordinal);
    }

    [Fact]
    public void Unreadable_password_file_is_reported_with_its_path()
    {
        var yaml = Valid + "\n  v3: { version: 3, user: ops, level: authNoPriv, auth: SHA, auth_password_file: secrets/missing }\n";
        var problems = Problems(yaml);
        // The message carries the full path; Problems() strips the temp directory prefix.
        Assert.Equal(["site.yaml:21:82: credentials.v3.auth_password_file: cannot read 'secrets/missing': no such file"], problems);
    }

    [Fact]
    public void Short_passphrase_and_missing_priv_are_both_reported()
    {
        var yaml = Valid + "\n  v3: { version: 3, user: ops, level: authPriv, auth: SHA, auth_password: short }\n";
        var problems = Problems(yaml);
        Assert.Equal(
        [
            "site.yaml:21:7: credentials.v3.priv: missing required key 'priv' (level authPriv needs it)",
            "site.yaml:21:7: credentials.v3.priv_password: missing required key 'priv_password' or 'priv_password_file' (level authPriv needs it)",
            "site.yaml:21:75: credentials.v3.auth_password: the passphrase is shorter than 8 characters (RFC 3414 requires at least 8)",
        ], problems);
    }

    [Theory]
    [InlineData("auth: SHA-257, auth_password: longenough1", "auth")]
    [InlineData("auth: SHA, auth_password: longenough1, priv: AES-512, priv_password: longenough2", "priv")]
    public void Regression_an_unknown_auth_or_priv_protocol_crashed_the_loader(string usm, string key)
    {
        var yaml = Valid + "\n  v3: { version: 3, user: ops, " + usm + " }\n";
        var problem = Assert.Single(Problems(yaml));
        Assert.StartsWith("site.yaml:21:", problem, StringComparison.Ordinal);
        Assert.Contains($"credentials.v3.{key}: ", problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("AES-256-C", SnmpPrivProtocol.Aes256Reeder)]
    [InlineData("AES-192-C", SnmpPrivProtocol.Aes192Reeder)]
    [InlineData("AES-256", SnmpPrivProtocol.Aes256)]
    public void Cisco_aes_c_privacy_protocols_load_and_are_written_back(string name, SnmpPrivProtocol priv)
    {
        var path = _dir.Write("site.yaml", Valid + $"\n  v3: {{ version: 3, user: ops, level: authPriv, auth: SHA, auth_password: longenough1, priv: {name}, priv_password: longenough2 }}\n");
        var result = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir });
        Assert.True(result.IsValid, string.Join("\n", result.Problems));
        Assert.Equal(priv, result.Config!.Credentials["v3"].Priv);
        Assert.Contains($"priv: {name}", SiteConfigWriter.ToYaml(result.Config), StringComparison.Ordinal);
    }

    [Theory]
    // net-snmp also takes AES256C: edit distance alone ties it with AES-256 (2 each), which is the wrong variant for Cisco.
    [InlineData("AES256C", "AES-256-C")]
    [InlineData("aes192c", "AES-192-C")]
    [InlineData("AES256", "AES-256")]
    public void A_net_snmp_spelling_of_a_priv_protocol_names_ours(string given, string meant)
    {
        var problem = Assert.Single(Problems(Valid + $"\n  v3: {{ version: 3, user: ops, level: authPriv, auth: SHA, auth_password: longenough1, priv: {given}, priv_password: longenough2 }}\n"));
        Assert.EndsWith($"credentials.v3.priv: expected one of DES, AES, AES-128, AES-192, AES-256, AES-192-C, AES-256-C, got '{given}' (did you mean '{meant}'?)", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Duplicate_yaml_key_is_reported()
    {
        var problems = Problems(Replace("  gateway_id: gw1\n", "  gateway_id: gw1\n  id: dc2\n"));
        Assert.Equal(["site.yaml:4:3: site.id: duplicate key 'id' (first defined at line 2)"], problems);
    }

    [Fact]
    public void Syntax_error_reports_the_position()
    {
        var problems = Problems("site:\n  id: dc1\n  rooms: [ { id: r1 \n");
        Assert.Single(problems);
        Assert.StartsWith("site.yaml:4:1: (document): YAML syntax error: ", problems[0], StringComparison.Ordinal);
    }

    [Fact]
    public void Regression_a_tab_in_the_indentation_was_reported_on_the_line_before_it()
    {
        var problems = Problems("site:\n  id: dc1\n\tgateway_id: gw1\n");
        Assert.Equal(["site.yaml:3:1: (document): YAML syntax error: a tab in the indentation (YAML indents with spaces only)"], problems);
    }

    [Fact]
    public void Location_with_unknown_machine_and_two_places()
    {
        var problems = Problems(Replace("credentials: v2 }\n  - { id: ups1", "credentials: v2, location: { machine: m1, rack: A01 } }\n  - { id: ups1"));
        Assert.Equal(
        [
            "site.yaml:16:96: devices[0].location: give one of rack, cooling_unit, machine or room",
            "site.yaml:16:107: devices[0].location.machine: unknown machine 'm1' (none defined)",
        ], problems);
    }

    [Fact]
    public void Every_problem_is_reported_at_once_in_file_order()
    {
        var broken = Valid
            .Replace("id: dc1", "id: dc/1", StringComparison.Ordinal)
            .Replace("capacity_kw: 40", "capacity_kw: -40", StringComparison.Ordinal)
            .Replace("profile: liebert-gp-crac", "profile: nope", StringComparison.Ordinal)
            .Replace("community: public", "communty: public", StringComparison.Ordinal);
        var problems = Problems(broken);
        Assert.Equal(
        [
            "site.yaml:2:7: site.id: 'dc/1' is not a valid id (letters, digits, '_', '.', '-'; starting with a letter or digit)",
            "site.yaml:13:51: site.power.ups[0].capacity_kw: must be greater than 0, got -40",
            $"site.yaml:18:27: devices[2].profile: unknown profile 'nope' (no nope.yaml in {TestFiles.ProfilesDir})",
            "site.yaml:20:7: credentials.v2.community: missing required key 'community' or 'community_file'",
            "site.yaml:20:22: credentials.v2.communty: unknown key 'communty' (did you mean 'community'?)",
        ], problems);
    }

    [Fact]
    public void LoadOrThrow_lists_every_problem_in_the_exception()
    {
        var path = _dir.Write("site.yaml", Replace("profile: apc-rpdu2", "profile: apc-rpdu3").Replace("power_budget_kw: 8", "power_budget_kw: x", StringComparison.Ordinal));
        var ex = Assert.Throws<ConfigException>(() => SiteConfigLoader.LoadOrThrow(path, new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir }));
        Assert.Equal(2, ex.Problems.Count);
        Assert.StartsWith("invalid configuration: 2 problems\n", ex.Message, StringComparison.Ordinal);
        Assert.Contains(path + ":9:56: site.rooms[0].rows[0].racks[0].power_budget_kw: expected a number, got 'x'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_file_is_one_problem_without_a_line_that_does_not_exist()
    {
        // It said "absent.yaml:0:0: (document): cannot read config: …", a position no editor can go to.
        var path = Path.Combine(_dir.Path, "absent.yaml");
        var result = SiteConfigLoader.Load(path);
        Assert.Equal([$"{path}: cannot read config: no such file"], result.Problems.Select(p => p.ToString()));
    }
}
