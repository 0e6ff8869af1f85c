using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace EdgeTwin.IntegrationTests.Deployment;

/// <summary>
/// The Ansible role in ansible/: <c>ansible-lint --profile production</c> clean, the site playbook parses, and the unit
/// the role renders for a site passes the same systemd checks as the reference unit.
/// </summary>
public sealed partial class AnsibleRoleTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

    /// <summary>A <c>bin/udevadm</c> under <paramref name="dir"/> that appends its arguments to the returned log.</summary>
    private static async Task<(string Bin, string Log)> FakeUdevadmAsync(string dir)
    {
        var bin = Directory.CreateDirectory(Path.Combine(dir, "bin")).FullName;
        var log = Path.Combine(dir, "udevadm.log");
        var udevadm = Path.Combine(bin, "udevadm");
        await File.WriteAllTextAsync(udevadm, $"#!/bin/sh\necho \"$*\" >> '{log}'\n", Ct);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(udevadm, (UnixFileMode)0b111_101_101);
        }

        return (bin, log);
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string AnsibleDir => Path.Combine(Tool.RepoRoot(), "ansible");

    [Fact]
    public async Task Ansible_lint_production_profile_is_clean()
    {
        var lint = Tool.Require("ansible-lint", "ansible-lint");
        var result = await Tool.RunAsync(
            lint,
            ["--profile", "production", "--offline", "--nocolor", "site.yml", "roles/edgetwin"],
            Timeout,
            Ct,
            AnsibleDir,
            new Dictionary<string, string> { ["ANSIBLE_LOCAL_TEMP"] = Path.GetTempPath(), ["NO_COLOR"] = "1" });
        output.WriteLine(result.All);
        Assert.Equal(0, result.ExitCode);
        Assert.Matches(PassedLine(), result.All);
        // .ansible-lint-ignore lets bookworm's ansible-lint 6.13 pass meta/main.yml listing trixie, which its schema
        // predates: that must stay the only violation it lets through (any other in that file would hide behind it).
        var ignored = result.All.Split('\n').Where(l => l.TrimEnd().EndsWith("# ignored", StringComparison.Ordinal)).ToList();
        Assert.All(ignored, l => Assert.Matches(IgnoredTrixieMeta(), l));
    }

    [Fact]
    public async Task Site_playbook_passes_syntax_check_with_the_example_inventory()
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        // The example vault's password from outside the repository, as the README says (no password file is committed).
        using var dir = new TempDir();
        var password = Path.Combine(dir.Path, "vault-password");
        await File.WriteAllTextAsync(password, "example-vault-password-change-me\n", Ct);
        var result = await Tool.RunAsync(
            playbook,
            ["--syntax-check", "site.yml"],
            Timeout,
            Ct,
            AnsibleDir,
            new Dictionary<string, string> { ["ANSIBLE_VAULT_PASSWORD_FILE"] = password });
        output.WriteLine(result.All);
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("playbook: site.yml", result.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rendered_unit_for_a_serial_only_site_allows_only_serial_devices_and_stays_within_exposure()
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        var analyze = Tool.Require("systemd-analyze", "systemd");
        using var dir = new TempDir();
        var (play, unit) = await UnitRenderPlayAsync(dir);

        // Extra vars: they outrank the defaults loaded through vars_files.
        var extra = $$"""{"edgetwin_buses": ["serial"], "edgetwin_current": "{{dir.Path}}"}""";
        var settings = await RenderUnitAsync(playbook, play, unit, extra, dir);
        Assert.Equal(["dialout"], settings["SupplementaryGroups"]);
        Assert.Equal(["char-ttyS rw", "char-ttyUSB rw", "char-ttyACM rw", "char-ttyAMA rw"], settings["DeviceAllow"]);
        // Modbus RTU leaves a UUCP lock file in /run/lock, which ProtectSystem=strict makes read-only.
        Assert.Equal(["-/run/lock"], settings["ReadWritePaths"]);
        Assert.Equal([$"{dir.Path}/edgetwin run --config /etc/edgetwin/edgetwin.yaml"], settings["ExecStart"]);
        // A memory runaway is the unit's to stop (and Restart= to undo), not the kernel OOM killer's choice of process.
        Assert.Equal(["512M"], settings["MemoryHigh"]);
        Assert.Equal(["768M"], settings["MemoryMax"]);
        Assert.Equal(["65536"], settings["LimitNOFILE"]); // one descriptor per Modbus TCP meter; soft = hard
        await VerifyUnitAsync(analyze, unit, dir);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task The_unit_lets_the_agent_read_the_clock_state_only_for_a_site_with_a_host_device(bool hostDevice)
    {
        // The linux-host device reads adjtimex (modes 0), which ProtectClock= denies with EPERM (systemd issue 26413):
        // the role renders ProtectClock=no for such a site only; without CAP_SYS_TIME the kernel still refuses a change.
        // (Until now only the site without one was rendered by a test.)
        var playbook = Tool.Require("ansible-playbook", "ansible");
        var analyze = Tool.Require("systemd-analyze", "systemd");
        using var dir = new TempDir();
        var (play, unit) = await UnitRenderPlayAsync(dir);
        var devices = hostDevice
            ? """[{"id": "gw", "profile": "linux-host", "address": "host"}, {"id": "pdu1", "profile": "apc-rpdu2", "address": "udp:10.0.0.5:161"}]"""
            : """[{"id": "pdu1", "profile": "apc-rpdu2", "address": "udp:10.0.0.5:161"}]""";
        var settings = await RenderUnitAsync(playbook, play, unit, $$"""{"edgetwin_current": "{{dir.Path}}", "edgetwin_devices": {{devices}}}""", dir);

        Assert.Equal([hostDevice ? "no" : "yes"], settings["ProtectClock"]);
        Assert.Equal([""], settings["CapabilityBoundingSet"]); // no CAP_SYS_TIME either way
        await VerifyUnitAsync(analyze, unit, dir);
    }

    [Theory]
    [InlineData(null)] // this machine's systemd, as the role reads it (Debian 12: 252)
    [InlineData(252)]  // bookworm
    [InlineData(257)]  // trixie
    public async Task Regression_five_runtime_failures_in_ten_minutes_left_the_agent_dead_until_someone_intervened(int? systemd)
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        var analyze = Tool.Require("systemd-analyze", "systemd");
        var local = await SystemdVersionAsync(analyze);
        using var dir = new TempDir();
        var (play, unit) = await UnitRenderPlayAsync(dir);
        var version = systemd ?? local;
        var extra = systemd is null
            ? $$"""{"edgetwin_current": "{{dir.Path}}"}"""
            : $$"""{"edgetwin_current": "{{dir.Path}}", "edgetwin_systemd_version": {{systemd}}}""";
        var settings = await RenderUnitAsync(playbook, play, unit, extra, dir);

        // No start limit: before, StartLimitIntervalSec=600/StartLimitBurst=5 left the unit failed after 5 failures in
        // 10 minutes (a crash, kills at MemoryMax in a burst) and nothing started it again; the role's rollback never
        // relied on it (edgetwin-ready follows the unit's state and restarts).
        var unitSection = SystemdUnitTests.ReadService(await File.ReadAllLinesAsync(unit, Ct), "[Unit]");
        Assert.Equal(["0"], unitSection["StartLimitIntervalSec"]);
        Assert.False(unitSection.ContainsKey("StartLimitBurst"));
        Assert.Equal(["on-failure"], settings["Restart"]);
        Assert.Equal(["2"], settings["RestartPreventExitStatus"]); // an invalid config is still not restarted
        if (version >= 254)
        {
            // The backoff: 5 s, then growing over 5 steps to one start every 2 min.
            Assert.Equal(["5s"], settings["RestartSec"]);
            Assert.Equal(["5"], settings["RestartSteps"]);
            Assert.Equal(["2min"], settings["RestartMaxDelaySec"]);
        }
        else
        {
            Assert.Equal(["15s"], settings["RestartSec"]);
            Assert.False(settings.ContainsKey("RestartSteps"));
            Assert.False(settings.ContainsKey("RestartMaxDelaySec"));
        }

        if (version <= local)
        {
            await VerifyUnitAsync(analyze, unit, dir);
            return;
        }

        // A systemd older than the unit's target cannot verify it silently: it does not know the backoff keys, which is
        // why the role renders them only for 254 and later. (The trixie root's own systemd-analyze verifies this
        // variant in AnsibleChrootTests.Role_converges_in_a_debian_13_trixie_chroot_….)
        var verify = await Tool.RunAsync(analyze, ["verify", "--man=no", unit], Timeout, Ct, dir.Path);
        output.WriteLine(verify.All);
        if (local < 254)
        {
            Assert.Contains("Unknown key 'RestartSteps' in section [Service], ignoring.", verify.All, StringComparison.Ordinal);
        }
    }

    /// <summary>The major version of the systemd that <paramref name="analyze"/> belongs to (252 on Debian 12).</summary>
    private static async Task<int> SystemdVersionAsync(string analyze)
    {
        var result = await Tool.RunAsync(analyze, ["--version"], Timeout, Ct);
        var match = Regex.Match(result.StdOut, @"^systemd (\d+)");
        Assert.True(match.Success, result.All);
        return int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>A play that renders only the role's unit template with its defaults, and a stand-in binary it may name.</summary>
    private static async Task<(string Play, string Unit)> UnitRenderPlayAsync(TempDir dir)
    {
        var binary = Path.Combine(dir.Path, "edgetwin");
        await File.WriteAllTextAsync(binary, "#!/bin/sh\nexit 0\n", Ct);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(binary, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite);
        }

        var play = Path.Combine(dir.Path, "render.yml");
        var unit = Path.Combine(dir.Path, "edgetwin.service");
        await File.WriteAllTextAsync(play, $$"""
            - hosts: localhost
              gather_facts: false
              vars_files: [{{AnsibleDir}}/roles/edgetwin/defaults/main.yml]
              tasks:
                # The role's own detection of this machine's systemd (an extra var edgetwin_systemd_version outranks it).
                - ansible.builtin.import_tasks: {{AnsibleDir}}/roles/edgetwin/tasks/systemd_version.yml
                - ansible.builtin.template:
                    src: {{AnsibleDir}}/roles/edgetwin/templates/edgetwin.service.j2
                    dest: {{unit}}
                    mode: "0644"
            """, Ct);
        return (play, unit);
    }

    private async Task<Dictionary<string, List<string>>> RenderUnitAsync(string playbook, string play, string unit, string extraVars, TempDir dir)
    {
        var render = await Tool.RunAsync(playbook, ["-i", "localhost,", "-c", "local", "-e", extraVars, play], Timeout, Ct, dir.Path);
        output.WriteLine(render.All);
        Assert.Equal(0, render.ExitCode);
        return SystemdUnitTests.ReadService(await File.ReadAllLinesAsync(unit, Ct));
    }

    /// <summary><c>systemd-analyze verify</c> says nothing, and the exposure score stays within 2.5.</summary>
    private async Task VerifyUnitAsync(string analyze, string unit, TempDir dir)
    {
        var verify = await Tool.RunAsync(analyze, ["verify", "--man=no", unit], Timeout, Ct, dir.Path);
        output.WriteLine(verify.All);
        Assert.Equal(0, verify.ExitCode);
        Assert.Equal("", verify.All.Trim());
        var security = await Tool.RunAsync(analyze, ["security", "--offline=true", "--threshold=25", "--no-pager", unit], Timeout, Ct, dir.Path);
        output.WriteLine(security.All);
        Assert.Equal(0, security.ExitCode);
    }

    [Fact]
    public async Task Buses_groups_and_udev_rules_follow_the_device_addresses_by_default()
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        using var dir = new TempDir();
        var rules = Path.Combine(dir.Path, "60-edgetwin.rules");
        var play = Path.Combine(dir.Path, "render.yml");
        await File.WriteAllTextAsync(play, $$$"""
            - hosts: localhost
              gather_facts: false
              vars_files: [{{{AnsibleDir}}}/roles/edgetwin/defaults/main.yml]
              tasks:
                - ansible.builtin.template:
                    src: {{{AnsibleDir}}}/roles/edgetwin/templates/60-edgetwin.rules.j2
                    dest: {{{rules}}}
                    mode: "0644"
                - ansible.builtin.debug:
                    msg: "buses={{ edgetwin_buses | join(',') }} groups={{ edgetwin_buses | map('extract', edgetwin_bus_groups) | join(',') }}"
            """, Ct);
        // Devices as in the example inventory plus a Modbus RTU line; SNMP and CPU need no bus.
        var extra = """
            {"edgetwin_devices": [
              {"id": "ups1", "profile": "ietf-ups-mib", "address": "udp:192.0.2.50:161"},
              {"id": "env", "profile": "bosch-bme280", "address": "i2c:1:0x76"},
              {"id": "leak", "profile": "generic-leak-detector", "address": "gpio:17"},
              {"id": "meter", "profile": "eastron-sdm630", "address": "rtu:/dev/ttyUSB0"},
              {"id": "cpu", "profile": "linux-cpu-temperature", "address": "cpu"}]}
            """;
        var result = await Tool.RunAsync(playbook, ["-i", "localhost,", "-c", "local", "-e", extra, play], Timeout, Ct, dir.Path);
        output.WriteLine(result.All);
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("buses=gpio,i2c,serial groups=gpio,i2c,dialout", result.StdOut, StringComparison.Ordinal);
        var text = await File.ReadAllTextAsync(rules, Ct);
        Assert.Contains("KERNEL==\"gpiochip*\", GROUP=\"gpio\"", text, StringComparison.Ordinal);
        Assert.Contains("KERNEL==\"i2c-[0-9]*\", GROUP=\"i2c\"", text, StringComparison.Ordinal);
        Assert.Contains("GROUP=\"dialout\"", text, StringComparison.Ordinal);

        // A site with network devices only gets no bus groups and no device rules at all.
        var none = await Tool.RunAsync(playbook, ["-i", "localhost,", "-c", "local", "-e", """{"edgetwin_devices": [{"id": "u", "profile": "ietf-ups-mib", "address": "udp:192.0.2.50:161"}]}""", play], Timeout, Ct, dir.Path);
        Assert.Equal(0, none.ExitCode);
        Assert.Contains("buses= groups=", none.StdOut, StringComparison.Ordinal);
        Assert.DoesNotContain("SUBSYSTEM", await File.ReadAllTextAsync(rules, Ct), StringComparison.Ordinal);
    }

    /// <summary>
    /// Regression: the unit's capability bounding set is empty, so an <c>snmp_traps</c> listener on its default port 162
    /// (below 1024) failed to bind with permission denied and was retried with backoff for ever, and the README said the
    /// unit granted the capability. Now the unit keeps CAP_NET_BIND_SERVICE, and only it, when the site listens below
    /// 1024 (traps, the metrics endpoint), and none otherwise.
    /// </summary>
    [Fact]
    public async Task Regression_snmp_traps_on_port_162_could_not_bind_under_the_units_empty_capability_set()
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        var analyze = Tool.Require("systemd-analyze", "systemd");
        using var dir = new TempDir();
        var (play, unit) = await UnitRenderPlayAsync(dir);

        async Task<(List<string> Bounding, List<string> Ambient)> Render(string vars)
        {
            var settings = await RenderUnitAsync(playbook, play, unit, $$$"""{"edgetwin_buses": [], "edgetwin_current": "{{{dir.Path}}}", {{{vars}}}}""", dir);
            return (settings["CapabilityBoundingSet"], settings["AmbientCapabilities"]);
        }

        string[] bind = ["CAP_NET_BIND_SERVICE"];
        string[] none = [""];
        var traps = await Render("""
            "edgetwin_site_extra": {"snmp_traps": {"credentials": ["traps"]}}
            """);
        Assert.Equal(bind, traps.Bounding);
        Assert.Equal(bind, traps.Ambient);
        await VerifyUnitAsync(analyze, unit, dir);

        Assert.Equal(bind, (await Render("""
            "edgetwin_metrics_listen": "127.0.0.1:99", "edgetwin_site_extra": {"snmp_traps": {"port": 10162}}
            """)).Ambient);
        foreach (var unprivileged in new[]
                 {
                     """ "edgetwin_site_extra": {} """,
                     """ "edgetwin_site_extra": {"snmp_traps": {"port": 10162}}, "edgetwin_metrics_listen": "127.0.0.1:9464" """,
                     """ "edgetwin_site_extra": {"snmp_traps": {"port": 0}} """,
                 })
        {
            var rendered = await Render(unprivileged);
            Assert.Equal(none, rendered.Bounding);
            Assert.Equal(none, rendered.Ambient);
        }
    }

    [Fact]
    public async Task Unit_makes_an_outbox_directory_outside_the_state_directory_writable()
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        var analyze = Tool.Require("systemd-analyze", "systemd");
        using var dir = new TempDir();
        var (play, unit) = await UnitRenderPlayAsync(dir);

        Task<Dictionary<string, List<string>>> Render(string outbox) =>
            RenderUnitAsync(playbook, play, unit, $$$"""{"edgetwin_buses": [], "edgetwin_current": "{{{dir.Path}}}", "edgetwin_outbox": {"path": "{{{outbox}}}"}}""", dir);

        // Outside /var/lib/edgetwin: ProtectSystem=strict would leave it read-only without ReadWritePaths=.
        var outside = await Render("/data/edgetwin/outbox.db");
        Assert.Equal(["/data/edgetwin"], outside["ReadWritePaths"]);
        await VerifyUnitAsync(analyze, unit, dir);

        // In the state directory (or below it, or relative to it): StateDirectory= already makes it writable.
        foreach (var inside in new[] { "/var/lib/edgetwin/outbox.db", "/var/lib/edgetwin/spool/outbox.db", "outbox.db" })
        {
            Assert.False((await Render(inside)).ContainsKey("ReadWritePaths"), inside);
        }

        // A sibling whose name only starts like the state directory is outside it.
        Assert.Equal(["/var/lib/edgetwin-data"], (await Render("/var/lib/edgetwin-data/outbox.db"))["ReadWritePaths"]);
    }

    /// <summary>A play whose one changed task (printing <paramref name="message"/>) notifies the role's handlers <paramref name="notify"/>.</summary>
    private static async Task<string> HandlerPlayAsync(string dir, string message, string notify)
    {
        var play = Path.Combine(dir, "handlers.yml");
        await File.WriteAllTextAsync(play, $$"""
            - hosts: localhost
              gather_facts: false
              vars_files: [{{AnsibleDir}}/roles/edgetwin/defaults/main.yml]
              tasks:
                - name: The rules changed
                  ansible.builtin.debug: { msg: {{message}} }
                  changed_when: true
                  notify: {{notify}}
              handlers:
                - name: The role's handlers
                  ansible.builtin.import_tasks: {{AnsibleDir}}/roles/edgetwin/handlers/main.yml
            """, Ct);
        return play;
    }

    [Fact]
    public async Task Udev_handler_reloads_and_triggers_the_buses_subsystems_only_where_udevd_runs()
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        using var dir = new TempDir();
        var (bin, log) = await FakeUdevadmAsync(dir.Path);

        var control = Path.Combine(dir.Path, "control");
        var play = await HandlerPlayAsync(dir.Path, "rules", "Reload udev rules");
        var env = new Dictionary<string, string> { ["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH") };

        async Task<string> Run(bool manage, bool udevd)
        {
            File.Delete(log);
            if (udevd) { await File.WriteAllTextAsync(control, "", Ct); } else { File.Delete(control); }
            var extra = $$"""{"edgetwin_buses": ["gpio", "i2c", "serial"], "edgetwin_manage_service": {{(manage ? "true" : "false")}}, "edgetwin_udev_control": "{{control}}"}""";
            var result = await Tool.RunAsync(playbook, ["-i", "localhost,", "-c", "local", "-e", extra, play], Timeout, Ct, dir.Path, env);
            output.WriteLine(result.All);
            Assert.Equal(0, result.ExitCode);
            return File.Exists(log) ? await File.ReadAllTextAsync(log, Ct) : "";
        }

        // A gateway: rules reloaded, then existing devices of the three buses replayed so they get the new group/mode.
        Assert.Equal(
            "control --reload-rules\ntrigger --action=change --subsystem-match=gpio --subsystem-match=i2c-dev --subsystem-match=tty\nsettle --timeout=30\n",
            await Run(manage: true, udevd: true));
        // No udevd (chroot, container, image build): nothing is run, and the play does not fail.
        Assert.Equal("", await Run(manage: true, udevd: false));
        // Provisioning a root without managing the service: the host's udevd (a bind-mounted /run) is left alone.
        Assert.Equal("", await Run(manage: false, udevd: true));
    }

    [Fact]
    public async Task Example_site_variables_render_to_a_config_the_agent_accepts()
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        using var dir = new TempDir();
        var play = Path.Combine(dir.Path, "render.yml");
        var rendered = Path.Combine(dir.Path, "edgetwin.yaml");
        await File.WriteAllTextAsync(play, $$"""
            - hosts: all
              gather_facts: false
              vars_files: [{{AnsibleDir}}/roles/edgetwin/defaults/main.yml, "{{"{{"}} site_vars {{"}}"}}"]
              tasks:
                - ansible.builtin.template:
                    src: {{AnsibleDir}}/roles/edgetwin/templates/edgetwin.yaml.j2
                    dest: {{rendered}}
                    mode: "0600"
            """, Ct);
        var agent = Path.Combine(AppContext.BaseDirectory, "edgetwin.dll");
        var profiles = Path.Combine(Tool.RepoRoot(), "device-profiles");

        async Task<Tool.Result> RenderAndCheck(string siteVars)
        {
            // The vault's variables as plain extra vars; edgetwin_tarball_sum is set by release.yml in a real run.
            var extra = $$"""{"site_vars": "{{siteVars}}", "edgetwin_tarball_sum": "0", "vault_edgetwin_mqtt_password": "pw", "vault_edgetwin_snmp_community": "c"}""";
            var render = await Tool.RunAsync(playbook, ["-i", "gw-dc1-01,", "-c", "local", "-e", extra, play], Timeout, Ct, dir.Path);
            output.WriteLine(render.All);
            Assert.Equal(0, render.ExitCode);
            output.WriteLine(await File.ReadAllTextAsync(rendered, Ct));
            var check = await Tool.RunAsync("dotnet", [agent, "check", "--config", rendered, "--profiles-dir", profiles], Timeout, Ct, dir.Path);
            output.WriteLine(check.All);
            return check;
        }

        // The README's example (ansible/examples/dc-room.vars.yml): topology, alerts and thermal twin via edgetwin_site_extra.
        var example = await RenderAndCheck(Path.Combine(AnsibleDir, "examples", "dc-room.vars.yml"));
        Assert.Equal(0, example.ExitCode);
        Assert.Contains("1 room, 2 racks, 2 cooling units, 1 UPS, 2 PDUs", example.StdOut, StringComparison.Ordinal);
        var text = await File.ReadAllTextAsync(rendered, Ct);
        Assert.Contains("\nalerts:\n", text, StringComparison.Ordinal);
        Assert.Contains("\nthermal_twin:\n", text, StringComparison.Ordinal);
        Assert.Contains("- name: water-leak", text, StringComparison.Ordinal);   // room1-leak is read: its water must raise an alarm
        Assert.Contains("- name: ups-output-off", text, StringComparison.Ordinal); // a UPS whose battery ran out keeps the alarm on
        Assert.Contains("\ntwin:\n  anomaly:\n    threshold_interval: 5m\n    outlier_z: 20\n", text, StringComparison.Ordinal);
        Assert.Contains("  gateway_id: gw-dc1-01\n", text, StringComparison.Ordinal);
        // Its UPS and cooling units are read too: an outage or a stopped unit must raise an alarm (check warned before).
        Assert.DoesNotContain("no rule watches it", example.All, StringComparison.Ordinal);

        // The example inventory's group_vars too (they deploy as they are).
        var inventory = await RenderAndCheck(Path.Combine(AnsibleDir, "inventory", "example", "group_vars", "all", "main.yml"));
        Assert.Equal(0, inventory.ExitCode);
        Assert.DoesNotContain("no rule watches it", inventory.All, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Site_extra_may_not_override_the_keys_the_role_sets()
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        using var dir = new TempDir();
        var play = Path.Combine(dir.Path, "config.yml");
        await File.WriteAllTextAsync(play, $$"""
            - hosts: localhost
              gather_facts: false
              tasks:
                - ansible.builtin.import_role:
                    name: edgetwin
                    tasks_from: config.yml
            """, Ct);
        var env = new Dictionary<string, string> { ["ANSIBLE_ROLES_PATH"] = Path.Combine(AnsibleDir, "roles") };
        foreach (var extra in new[] { """{"devices": []}""", """{"site": {"id": "x"}}""", """{"models": {"directory": "/tmp"}}""" })
        {
            // The check is the config tasks' first: nothing on this machine is touched.
            var result = await Tool.RunAsync(playbook, ["-i", "localhost,", "-c", "local", "--check", "-e", $$$"""{"edgetwin_site_extra": {{{extra}}}}""", play], Timeout, Ct, dir.Path, env);
            output.WriteLine(result.All);
            Assert.NotEqual(0, result.ExitCode);
            Assert.Contains("edgetwin_site_extra may not set", result.All, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// Regression: ansible/README.md named neither edgetwin_version nor edgetwin_release_src (the variables an upgrade
    /// and a rollback are made with) nor half the other defaults. Every variable of defaults/main.yml is named there
    /// (in backquotes), and the README has the upgrade and rollback procedure.
    /// </summary>
    [Fact]
    public void Regression_the_README_did_not_document_edgetwin_version_and_half_the_role_defaults()
    {
        var defaults = File.ReadAllLines(Path.Combine(AnsibleDir, "roles", "edgetwin", "defaults", "main.yml"));
        var names = defaults.Select(l => DefaultsKey().Match(l)).Where(m => m.Success).Select(m => m.Groups[1].Value).ToList();
        Assert.Contains("edgetwin_version", names);
        Assert.True(names.Count > 30, $"only {names.Count} variables found in defaults/main.yml");
        var readme = File.ReadAllText(Path.Combine(AnsibleDir, "README.md"));
        var missing = names.Where(n => !readme.Contains($"`{n}`", StringComparison.Ordinal)).ToList();
        Assert.True(missing.Count == 0, "not in ansible/README.md: " + string.Join(", ", missing));
        Assert.Contains("## Upgrade and rollback", readme, StringComparison.Ordinal);
        Assert.Contains("journalctl -u edgetwin", readme, StringComparison.Ordinal);
    }

    /// <summary>
    /// Regression: <c>--check --diff</c> on a gateway that already runs EdgeTwin failed with "Group gpio does not exist"
    /// when the site gained a bus (GPIO relays added): check mode creates no group, and the <c>user</c> module refuses
    /// to put an existing user in one that is not there. The whole role in check mode on this machine (nothing is
    /// changed), the service user an existing one (<c>nobody</c>), the gpio group one that does not exist.
    /// </summary>
    [Fact]
    public async Task Regression_check_mode_failed_with_group_does_not_exist_when_an_installed_gateway_gained_a_bus()
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        using var dir = new TempDir();
        var missingGroup = "et-missing-" + Guid.NewGuid().ToString("N")[..8];
        var run = await CheckModeRoleRunAsync(playbook, dir, $$"""
            {"edgetwin_bus_groups": {"gpio": "{{missingGroup}}", "i2c": "i2c", "serial": "dialout"},
             "edgetwin_devices": [{"id": "relay1", "profile": "generic-leak-detector", "address": "gpio:17"}]}
            """);
        Assert.True(run.ExitCode == 0, run.Explained);
        Assert.DoesNotContain("does not exist", run.All, StringComparison.Ordinal);
        Assert.Contains($"check mode: nobody would be created or put in {NoGroup}, {missingGroup}; {missingGroup} would be created first", run.All, StringComparison.Ordinal);
        Assert.Matches(@"TASK \[edgetwin : Report the service user's groups[^\n]*\nchanged: \[gw7\]", run.All);
        Assert.DoesNotContain(missingGroup, await File.ReadAllTextAsync("/etc/group", Ct), StringComparison.Ordinal);
    }

    /// <summary>
    /// Regression: <c>edgetwin_user</c> naming an account people log in with (pi, admin) had a converge set its shell to
    /// nologin, its home to /var/lib/edgetwin and its groups to the service and bus groups only (its sudo group gone),
    /// and a purge delete it: the engineer was locked out of the gateway. The role now refuses such an account before
    /// changing anything, for an install and a purge alike; a service account (nologin, as <c>nobody</c> in the other
    /// tests here) is still taken. The whole role in check mode on this machine, with its <c>root</c> account.
    /// </summary>
    [Fact]
    public async Task Regression_edgetwin_user_naming_a_login_account_locked_it_out_of_the_gateway()
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        using var dir = new TempDir();
        var rootShell = File.ReadAllLines("/etc/passwd").Select(l => l.Split(':')).First(f => f[0] == "root")[6];
        foreach (var vars in new[]
                 {
                     """{"edgetwin_user": "root", "edgetwin_buses": []}""",
                     """{"edgetwin_user": "root", "edgetwin_state": "absent", "edgetwin_purge_data": true, "edgetwin_purge_unsent": true}""",
                 })
        {
            var run = await CheckModeRoleRunAsync(playbook, dir, vars);
            AssertRefusedBeforeAnyChange(run, $"gw7: edgetwin_user is root, an account people log in with (shell {rootShell}, home /root): the role makes the agent's user a service account");
            Assert.Contains("which would lock root out of this gateway. Leave edgetwin_user at edgetwin (the role makes it)", run.All, StringComparison.Ordinal);
            Assert.Matches(@"gw7\s*:\s*ok=\d+\s+changed=0\s+unreachable=0\s+failed=1", run.All);
            Assert.DoesNotContain("TASK [edgetwin : Remove the service user]", run.All, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// Regression: a purge (<c>edgetwin_purge_data</c>) deleted <c>edgetwin_group</c> whatever it was: named after a
    /// group of the system (dialout, another account's own group), it went from under its other members. It now stays
    /// while another account has it as its group or as a member, or when it is a bus group, and the run says why; the
    /// service user's own group still goes. The whole role in check mode on this machine (nothing is changed).
    /// </summary>
    [Fact]
    public async Task Regression_a_purge_deleted_a_service_group_other_accounts_use()
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        using var dir = new TempDir();
        const string Purge = """ "edgetwin_state": "absent", "edgetwin_purge_data": true, "edgetwin_purge_unsent": true """;
        const string Removed = @"TASK \[edgetwin : Remove the service group\][^\n]*\n(changed|ok): \[gw7\]";

        // nobody's group, nogroup, is also the group of other system accounts (sync, _apt on Debian).
        var passwd = File.ReadAllLines("/etc/passwd").Select(l => l.Split(':')).ToList();
        var nogroupId = passwd.First(f => f[0] == "nobody")[3];
        var others = passwd.Where(f => f[3] == nogroupId && f[0] != "nobody").Select(f => f[0]).Order(StringComparer.Ordinal).ToList();
        Assert.NotEmpty(others);
        var shared = await CheckModeRoleRunAsync(playbook, dir, $$"""{ {{Purge}} }""");
        Assert.True(shared.ExitCode == 0, shared.Explained);
        Assert.Contains($"The group {NoGroup} stays on gw7: other accounts use it ({string.Join(", ", others)})", shared.All, StringComparison.Ordinal);
        Assert.DoesNotMatch(Removed, shared.All);

        var busGroup = await CheckModeRoleRunAsync(playbook, dir, $$"""{ {{Purge}}, "edgetwin_group": "dialout" }""");
        Assert.True(busGroup.ExitCode == 0, busGroup.Explained);
        Assert.Contains("The group dialout stays on gw7: it is the group of the serial bus devices", busGroup.All, StringComparison.Ordinal);
        Assert.DoesNotMatch(Removed, busGroup.All);

        // www-data's own group is no other account's: it goes with the account.
        var ownGroup = await CheckModeRoleRunAsync(playbook, dir, $$"""{ {{Purge}}, "edgetwin_user": "www-data", "edgetwin_group": "www-data" }""");
        Assert.True(ownGroup.ExitCode == 0, ownGroup.Explained);
        Assert.Matches(@"TASK \[edgetwin : Remove the service group\][^\n]*\nchanged: \[gw7\]", ownGroup.All);
        Assert.DoesNotContain("stays on gw7", ownGroup.All, StringComparison.Ordinal);
        Assert.Contains("\nwww-data:", await File.ReadAllTextAsync("/etc/group", Ct), StringComparison.Ordinal);
    }

    /// <summary>
    /// Regression: <c>--check --diff</c> of a first install on a gateway with systemd (the preview before a rollout)
    /// failed in the restart handler, "Could not find the requested service edgetwin.service: host": check mode writes
    /// no unit, so systemd does not know it. A stand-in <c>systemctl</c> answers as systemd does without the unit.
    /// </summary>
    [Fact]
    public async Task Regression_check_mode_preview_of_a_first_install_failed_in_the_restart_handler()
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        using var dir = new TempDir();
        var run = await CheckModeRoleRunAsync(playbook, dir, """{"edgetwin_buses": []}""");
        Assert.True(run.ExitCode == 0, run.Explained);
        Assert.DoesNotContain("Could not find the requested service", run.All, StringComparison.Ordinal);
        Assert.Matches(@"TASK \[edgetwin : Write the site config[^\n]*\nchanged: \[gw7\]", run.All);
        var log = Path.Combine(dir.Path, "systemctl.log");
        var calls = File.Exists(log) ? await File.ReadAllTextAsync(log, Ct) : "";
        Assert.DoesNotContain("restart", calls, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "opt")), "a check run created the install root");
    }

    /// <summary>
    /// Regression: <c>-e edgetwin_manage_service=false</c> (key=value: the string "false") for an image build still
    /// managed the service: the readiness check defaulted to <c>unit</c> (systemd probed, the release rolled back) and
    /// the udev handler reloaded and triggered the host's udevd, because the variable was used without <c>| bool</c>.
    /// </summary>
    [Fact]
    public async Task Regression_manage_service_false_given_on_the_command_line_still_probed_systemd_and_reloaded_udev()
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        using var dir = new TempDir();
        var (bin, log) = await FakeUdevadmAsync(dir.Path);

        var control = Path.Combine(dir.Path, "control");
        await File.WriteAllTextAsync(control, "", Ct); // udevd "runs"
        var play = await HandlerPlayAsync(dir.Path, "\"readiness={{ edgetwin_readiness }}\"", "[Reload udev rules, Restart edgetwin]");
        var env = new Dictionary<string, string> { ["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH"), ["ANSIBLE_NOCOLOR"] = "1" };
        var result = await Tool.RunAsync(
            playbook,
            ["-i", "localhost,", "-c", "local", "-e", "edgetwin_manage_service=false", "-e", $"edgetwin_udev_control={control}",
             "-e", """{"edgetwin_buses": ["gpio", "serial"]}""", play],
            Timeout, Ct, dir.Path, env);
        output.WriteLine(result.All);
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("readiness=none", result.StdOut, StringComparison.Ordinal);
        Assert.Matches(@"RUNNING HANDLER \[Restart edgetwin\][^\n]*\nskipping: \[localhost\]", result.StdOut);
        Assert.False(File.Exists(log), "udevadm ran: " + (File.Exists(log) ? await File.ReadAllTextAsync(log, Ct) : ""));
    }

    /// <summary>
    /// Regression: the release was chosen from <c>ansible_facts.architecture</c> alone, so a gateway with a 32-bit
    /// userland on a 64-bit kernel (Raspberry Pi OS 32-bit boots its 64-bit kernel on a Pi 4/5: "aarch64") was given
    /// the linux-arm64 release, which cannot run there. The facts come from a fact cache, as from such a gateway; a
    /// 64-bit one gets the arm64 tarball picked by the same facts.
    /// </summary>
    [Fact]
    public async Task Regression_a_32_bit_userland_on_an_arm64_kernel_was_given_the_arm64_release()
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        using var dir = new TempDir();
        var armhf = await CheckModeRoleRunAsync(playbook, dir, "{}", new() { ["ansible_architecture"] = "aarch64", ["ansible_machine"] = "aarch64", ["ansible_userspace_bits"] = "32" });
        AssertRefusedBeforeAnyChange(armhf, "gw7: the kernel is aarch64 but the userland is 32-bit");
        Assert.Contains("the linux-arm64 release cannot run there", armhf.All, StringComparison.Ordinal);

        var arm64 = await CheckModeRoleRunAsync(playbook, dir, "{}", new() { ["ansible_architecture"] = "aarch64", ["ansible_machine"] = "aarch64", ["ansible_userspace_bits"] = "64" });
        Assert.True(arm64.ExitCode == 0, arm64.Explained);
        Assert.Contains("check mode: edgetwin-9.9.9-linux-arm64.tar.gz would be unpacked", arm64.All, StringComparison.Ordinal);

        var armv7 = await CheckModeRoleRunAsync(playbook, dir, "{}", new() { ["ansible_architecture"] = "armv7l", ["ansible_machine"] = "armv7l", ["ansible_userspace_bits"] = "32" });
        Assert.NotEqual(0, armv7.ExitCode);
        Assert.Contains("gw7: architecture armv7l has no EdgeTwin release (edgetwin_rid_by_arch knows x86_64, aarch64)", armv7.All, StringComparison.Ordinal);
    }

    /// <summary>
    /// Regression: the role's variables were not checked up front. A device without an address or an unknown bus
    /// stopped the play with "'dict object' has no attribute ..." (no variable, no device named) after the service
    /// user and udev rules had been changed; <c>edgetwin_keep_releases: two</c> became 0 (every older release pruned);
    /// a mistyped readiness mode failed only after the switch (and rolled back); <c>MemoryMax=768MB</c> was written and
    /// systemd ignored it. Now meta/argument_specs.yml and tasks/preflight.yml refuse each before the first change,
    /// naming the variable (and the host, where the role words the message).
    /// </summary>
    [Fact]
    public async Task Regression_bad_role_variables_failed_late_with_dict_object_has_no_attribute()
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        using var dir = new TempDir();
        var cases = new (string Vars, string Message)[]
        {
            ("""{"edgetwin_devices": [{"id": "relay1", "profile": "generic-leak-detector", "adress": "gpio:17"}, {"id": "cpu", "profile": "linux-cpu-temperature", "address": "cpu"}]}""",
             "gw7: edgetwin_devices has no address for relay1 ("),
            ("""{"edgetwin_buses": ["gpios"]}""", "gw7: edgetwin_buses names gpios, which the role does not know"),
            ("""{"edgetwin_buses": "gpio"}""", """gw7: edgetwin_buses is the string \"gpio\", not a list"""),
            ("""{"edgetwin_keep_releases": "two"}""", "argument 'edgetwin_keep_releases' is of type <class 'str'> and we were unable to convert to int"),
            ("""{"edgetwin_readiness": "exe"}""", "value of edgetwin_readiness must be one of: unit, exec, none, got: exe"),
            ("""{"edgetwin_memory_max": "768MB"}""", "gw7: edgetwin_memory_high (512M) and edgetwin_memory_max (768MB) must be systemd sizes"),
            ("""{"edgetwin_version": 0.1}""", "gw7: edgetwin_version is 0.1: quote it in YAML"),
        };
        foreach (var (vars, message) in cases)
        {
            var run = await CheckModeRoleRunAsync(playbook, dir, vars);
            AssertRefusedBeforeAnyChange(run, message);
            Assert.DoesNotContain("has no attribute", run.All, StringComparison.Ordinal);
        }
    }

    /// <summary>The run failed with <paramref name="message"/> before the first task that changes anything.</summary>
    private static void AssertRefusedBeforeAnyChange(Tool.Result run, string message)
    {
        Assert.True(run.ExitCode != 0, run.All);
        Assert.Contains(message, run.All, StringComparison.Ordinal);
        Assert.DoesNotContain("TASK [edgetwin : Create the service group]", run.All, StringComparison.Ordinal);
    }

    /// <summary>
    /// Regression: a gateway whose architecture's tarball was not on the controller (only linux-x64 built, an arm64
    /// gateway next) failed with "lookup_plugin.pipe(sha256sum …) returned 1" inside a templating error. The message
    /// now names the host, its architecture and RID, the tarball and edgetwin_release_src; nothing is switched.
    /// </summary>
    [Fact]
    public async Task Regression_a_missing_tarball_for_the_gateways_architecture_failed_with_lookup_plugin_pipe_returned_1()
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        using var dir = new TempDir();
        var run = await CheckModeRoleRunAsync(playbook, dir, """{"edgetwin_version": "9.9.8"}""");
        Assert.NotEqual(0, run.ExitCode);
        Assert.DoesNotContain("lookup_plugin.pipe", run.All, StringComparison.Ordinal);
        Assert.Matches(@"gw7 \((x86_64|aarch64), linux-(x64|arm64)\) needs edgetwin-9\.9\.8-linux-(x64|arm64)\.tar\.gz: it is not in edgetwin_release_src \(", run.All);
        Assert.Contains("the gateway downloads nothing", run.All, StringComparison.Ordinal);
    }

    /// <summary>
    /// Regression: <c>--check --diff</c> never ran <c>edgetwin check</c> (check mode skips the config template's
    /// <c>validate:</c>), so a preview said nothing about whether the config is valid. Now, with the release being
    /// deployed on the gateway, the rendered config (site profiles included) is checked in a temporary directory that
    /// is removed again, and a rejection fails the preview with the agent's diagnostics; with only an older release
    /// installed its verdict is reported; with none the preview says the config is not checked. The secrets stay out.
    /// </summary>
    [Fact]
    public async Task Regression_check_mode_said_nothing_about_whether_edgetwin_check_accepts_the_config()
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        using var dir = new TempDir();
        const string community = "s3cret-community-7f";
        var siteProfile = (await File.ReadAllTextAsync(Path.Combine(Tool.RepoRoot(), "device-profiles", "ietf-ups-mib.yaml"), Ct))
            .Replace("profile: ietf-ups-mib", "profile: site-ups", StringComparison.Ordinal);
        string Vars(string version, params string[] profiles) => JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["edgetwin_version"] = version,
            ["edgetwin_buses"] = Array.Empty<string>(),
            ["edgetwin_credentials"] = new Dictionary<string, object> { ["pub"] = new Dictionary<string, string> { ["version"] = "2c", ["community"] = community } },
            ["edgetwin_devices"] = profiles.Select((p, i) => new Dictionary<string, string> { ["id"] = $"ups{i + 1}", ["profile"] = p, ["address"] = $"udp:192.0.2.{50 + i}:161", ["credentials"] = "pub" }).ToArray(),
            ["edgetwin_extra_profiles"] = new Dictionary<string, string> { ["site-ups"] = siteProfile },
        });
        var gatewayTmp = Path.Combine(dir.Path, "gateway-tmp");

        // No release on the gateway yet: said so, the preview passes.
        var fresh = await CheckModeRoleRunAsync(playbook, dir, Vars("9.9.9", "ietf-ups-mib"));
        Assert.True(fresh.ExitCode == 0, fresh.Explained);
        Assert.Contains("check mode: the config is not checked: there is no edgetwin on gw7 yet (edgetwin-9.9.9-", fresh.All, StringComparison.Ordinal);

        // The release being deployed is installed: it checks the config, with the release's and the site's profiles.
        var root = Path.Combine(dir.Path, "opt");
        await InstallReleaseAsync(dir, root, "9.9.9");
        var good = await CheckModeRoleRunAsync(playbook, dir, Vars("9.9.9", "ietf-ups-mib", "site-ups"));
        Assert.True(good.ExitCode == 0, good.Explained);
        Assert.Contains("check mode: edgetwin check of 9.9.9 accepts the config", good.All, StringComparison.Ordinal);
        // Its scratch files are not changes the preview reports (an unchanged gateway stays changed=0 under --check).
        Assert.Equal(5, Regex.Count(good.All, @"TASK \[edgetwin : (Create a temporary directory for|Copy the release's device profiles for|Add the site-specific device profiles for|Render the config into the temporary directory for|Remove the temporary directory of) the config check[^\n]*\n(ok|changed)"));
        Assert.DoesNotMatch(@"TASK \[edgetwin : [^\]]*(for|of) the config check[^\n]*\nchanged", good.All);

        var bad = await CheckModeRoleRunAsync(playbook, dir, Vars("9.9.9", "ietf-ups-mib", "no-such-profile"));
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("check mode: edgetwin check of 9.9.9 rejects the config (exit 1)", bad.All, StringComparison.Ordinal);
        Assert.Contains("no-such-profile", bad.All, StringComparison.Ordinal);
        Assert.Contains("check mode, nothing was changed; a real run would end with: nothing had been switched", bad.All, StringComparison.Ordinal);

        // An upgrade preview to a release not on the gateway yet: the installed 9.9.9's verdict is reported, not fatal.
        await AddReleaseAsync(dir, "9.9.8");
        var upgrade = await CheckModeRoleRunAsync(playbook, dir, Vars("9.9.8", "ietf-ups-mib", "no-such-profile"));
        Assert.True(upgrade.ExitCode == 0, upgrade.Explained);
        Assert.Contains("check mode: edgetwin check of the installed release 9.9.9 (9.9.8 is not on the gateway yet) rejects the config; a real run checks it with 9.9.8 first", upgrade.All, StringComparison.Ordinal);

        foreach (var run in new[] { fresh, good, bad, upgrade })
        {
            Assert.DoesNotContain(community, run.All, StringComparison.Ordinal);
        }

        Assert.Empty(Directory.GetFileSystemEntries(gatewayTmp));
        Assert.False(File.Exists(Path.Combine(dir.Path, "etc", "edgetwin.yaml")), "a check run wrote the config");
    }

    /// <summary>
    /// Regression: a service stopped by hand for maintenance (<c>systemctl stop edgetwin</c>) stayed stopped after a
    /// converge run with no changes: the role only enabled the unit and restarted it on a change. Now every run
    /// leaves it in <c>edgetwin_service_state</c> (started): the start is probed like a restart; a start that fails,
    /// or a started unit that does not become ready, is reported naming the unit and <c>journalctl -u</c>, with
    /// nothing rolled back (nothing had changed); a second run changes nothing; <c>stopped</c> keeps it stopped, also
    /// through a change. The whole role for real on this machine, in a private mount namespace over a copy of /etc
    /// (the unit, udev rules and service user land there), with a stand-in <c>systemctl</c> keeping the unit's state.
    /// </summary>
    [Fact]
    public async Task Regression_a_converge_run_left_a_service_stopped_by_hand_stopped()
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        var unshare = Tool.Require("unshare", "util-linux");
        if (Environment.UserName != "root")
        {
            Console.WriteLine("SKIP: not root (the role runs for real in a private mount namespace over a copy of /etc)");
            Assert.Skip("not root");
        }

        using var dir = new TempDir();
        await AddReleaseAsync(dir, "9.9.9");
        var etc = Path.Combine(dir.Path, "etc-copy");
        var cp = await Tool.RunAsync("cp", ["-a", "/etc", etc], Timeout, Ct);
        Assert.True(cp.ExitCode == 0, cp.Explained);
        var unitState = Directory.CreateDirectory(Path.Combine(dir.Path, "unit")).FullName;
        var bin = Directory.CreateDirectory(Path.Combine(dir.Path, "bin")).FullName;
        // systemd as the systemd module and edgetwin-ready see it: loaded once the unit file exists, the state kept in
        // files; `fail-start` makes a start fail as systemd reports it, `fail-ready` makes the started unit fail at once.
        await File.WriteAllTextAsync(Path.Combine(bin, "systemctl"), $$"""
            #!/bin/sh
            d='{{unitState}}'
            echo "$*" >> "$d/log"
            state=$(cat "$d/state" 2>/dev/null || echo inactive)
            case "$1" in
              show)
                load=not-found; [ -f /etc/systemd/system/edgetwin.service ] && load=loaded
                sub=dead; pid=0; [ "$state" = active ] && { sub=running; pid=$(cat "$d/pid"); }
                printf 'Id=edgetwin.service\nLoadState=%s\nActiveState=%s\nSubState=%s\nMainPID=%s\nNRestarts=0\n' "$load" "$state" "$sub" "$pid"
                exit 0;;
              is-enabled) if [ -f "$d/enabled" ]; then echo enabled; exit 0; fi; echo disabled; exit 1;;
              enable) touch "$d/enabled";;
              disable) rm -f "$d/enabled";;
              start|restart)
                if [ -f "$d/fail-start" ]; then
                  echo failed > "$d/state"
                  echo 'Job for edgetwin.service failed because the control process exited with error code.' >&2
                  exit 1
                fi
                if [ -f "$d/fail-ready" ]; then echo failed > "$d/state"; exit 0; fi
                echo active > "$d/state"; echo $$ > "$d/pid";;
              stop) echo inactive > "$d/state";;
            esac
            exit 0
            """.Replace("\r", "", StringComparison.Ordinal) + "\n", Ct);
        await File.WriteAllTextAsync(Path.Combine(bin, "journalctl"), "#!/bin/sh\necho 'Config: uplinks.mqtt: broker unreachable (the stand-in journal)'\n", Ct);
        foreach (var tool in new[] { "systemctl", "journalctl" })
        {
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(Path.Combine(bin, tool), (UnixFileMode)0b111_101_101);
            }
        }

        var play = Path.Combine(dir.Path, "role.yml");
        await File.WriteAllTextAsync(play, "- hosts: all\n  gather_facts: true\n  roles:\n    - role: edgetwin\n", Ct);
        var root = Path.Combine(dir.Path, "opt");
        var vars = Path.Combine(dir.Path, "vars.json");
        await File.WriteAllTextAsync(vars, JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["edgetwin_version"] = "9.9.9",
            ["edgetwin_release_src"] = Path.Combine(dir.Path, "release-src"),
            ["edgetwin_root"] = root,
            ["edgetwin_config_dir"] = Path.Combine(dir.Path, "etc-edgetwin"),
            // The role makes its own service user (edgetwin) in the copy of /etc. With the existing nobody, a process
            // of another test running as nobody made `usermod -d` refuse ("user nobody is currently used by process").
            ["edgetwin_udev_control"] = Path.Combine(dir.Path, "no-udevd"),
            ["edgetwin_buses"] = Array.Empty<string>(),
            ["edgetwin_ready_timeout"] = 20,
            ["edgetwin_ready_settle"] = 1,
            ["edgetwin_credentials"] = new Dictionary<string, object> { ["pub"] = new Dictionary<string, string> { ["version"] = "2c", ["community"] = "public" } },
            ["edgetwin_devices"] = new[] { new Dictionary<string, string> { ["id"] = "ups1", ["profile"] = "ietf-ups-mib", ["address"] = "udp:192.0.2.50:161", ["credentials"] = "pub" } },
        }), Ct);
        var env = new Dictionary<string, string>
        {
            ["ANSIBLE_ROLES_PATH"] = Path.Combine(AnsibleDir, "roles"),
            ["ANSIBLE_NOCOLOR"] = "1",
            ["ANSIBLE_RETRY_FILES_ENABLED"] = "0",
            ["ANSIBLE_GATHER_SUBSET"] = "min",
            ["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH"),
        };

        var log = Path.Combine(unitState, "log");
        async Task<(Tool.Result Result, int Changed, string Calls)> Converge(params string[] extra)
        {
            File.Delete(log);
            var args = new List<string> { "-m", "--propagation", "private", "--", "/bin/sh", "-c", "mount --bind \"$0\" /etc && exec \"$@\"", etc,
                                          playbook, "-i", "gw7,", "-c", "local", "-e", "@" + vars };
            foreach (var e in extra)
            {
                args.AddRange(["-e", e]);
            }

            args.Add(play);
            var result = await Tool.RunAsync(unshare, args, Timeout, Ct, dir.Path, env);
            output.WriteLine(result.All);
            var recap = Regex.Match(result.StdOut, @"gw7\s*:\s*ok=\d+\s+changed=(\d+)");
            Assert.True(recap.Success, "no PLAY RECAP for gw7:\n" + result.All);
            return (result, int.Parse(recap.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture),
                    File.Exists(log) ? await File.ReadAllTextAsync(log, Ct) : "");
        }

        string State() => File.ReadAllText(Path.Combine(unitState, "state")).Trim();
        var current = Path.Combine(root, "current");
        const string ReadinessRan = @"TASK \[edgetwin : Wait until the new release is ready[^\n]*\nok: \[gw7\]";

        var install = await Converge();
        Assert.True(install.Result.ExitCode == 0, install.Result.Explained);
        // The restart handler (the systemd module starts a unit that is not running).
        Assert.Matches(@"(?m)^start edgetwin.service$", install.Calls);
        Assert.Matches(ReadinessRan, install.Result.All);
        Assert.Equal("active", State());
        Assert.True(File.Exists(Path.Combine(etc, "systemd", "system", "edgetwin.service")), "the unit was not written into the copy of /etc");

        // systemctl stop edgetwin (maintenance), then a converge with no changes: started again, and probed.
        await File.WriteAllTextAsync(Path.Combine(unitState, "state"), "inactive", Ct);
        var restarted = await Converge();
        Assert.True(restarted.Result.ExitCode == 0, restarted.Result.Explained);
        Assert.Equal(1, restarted.Changed);
        Assert.Matches(@"TASK \[edgetwin : Keep edgetwin.service in edgetwin_service_state[^\n]*\nchanged: \[gw7\]", restarted.Result.All);
        Assert.Matches(ReadinessRan, restarted.Result.All);
        Assert.Contains("start edgetwin.service", restarted.Calls, StringComparison.Ordinal);
        Assert.DoesNotContain("restart", restarted.Calls, StringComparison.Ordinal);
        Assert.Equal("active", State());

        // Running and unchanged: nothing to do, nothing probed.
        var idle = await Converge();
        Assert.True(idle.Result.ExitCode == 0, idle.Result.Explained);
        Assert.Equal(0, idle.Changed);
        Assert.DoesNotMatch(@"(?m)^(re)?start ", idle.Calls);
        Assert.Matches(@"TASK \[edgetwin : Wait until the new release is ready[^\n]*\nskipping: \[gw7\]", idle.Result.All);

        var target = new FileInfo(current).LinkTarget;
        // Stopped, and the start fails: named with the unit and the journal, nothing rolled back.
        await File.WriteAllTextAsync(Path.Combine(unitState, "state"), "inactive", Ct);
        await File.WriteAllTextAsync(Path.Combine(unitState, "fail-start"), "", Ct);
        var failedStart = await Converge();
        Assert.NotEqual(0, failedStart.Result.ExitCode);
        Assert.Contains("Unable to start service edgetwin.service: Job for edgetwin.service failed", failedStart.Result.All, StringComparison.Ordinal);
        Assert.Contains($"edgetwin.service was not running and did not start (see journalctl -u edgetwin.service on the gateway); nothing else had changed, so nothing was rolled back: current is still {target} with its config", failedStart.Result.All, StringComparison.Ordinal);
        Assert.DoesNotContain("rolled back: current is back", failedStart.Result.All, StringComparison.Ordinal);
        Assert.DoesNotContain("restart", failedStart.Calls, StringComparison.Ordinal);
        Assert.Equal(target, new FileInfo(current).LinkTarget);

        // Stopped, started, but not ready: the readiness check's journal lines, and again nothing rolled back.
        File.Delete(Path.Combine(unitState, "fail-start"));
        await File.WriteAllTextAsync(Path.Combine(unitState, "state"), "inactive", Ct);
        await File.WriteAllTextAsync(Path.Combine(unitState, "fail-ready"), "", Ct);
        var notReady = await Converge();
        Assert.NotEqual(0, notReady.Result.ExitCode);
        Assert.Contains("edgetwin-ready: NOT READY: edgetwin.service failed", notReady.Result.All, StringComparison.Ordinal);
        Assert.Contains("broker unreachable (the stand-in journal)", notReady.Result.All, StringComparison.Ordinal);
        Assert.Contains("edgetwin.service was not running and this run started it, but it did not become ready (see journalctl -u edgetwin.service on the gateway); nothing else had changed, so nothing was rolled back", notReady.Result.All, StringComparison.Ordinal);
        Assert.DoesNotContain("restart", notReady.Calls, StringComparison.Ordinal);
        Assert.Equal(target, new FileInfo(current).LinkTarget);

        // edgetwin_service_state: stopped keeps it stopped, also through a change that would restart it.
        File.Delete(Path.Combine(unitState, "fail-ready"));
        await File.WriteAllTextAsync(Path.Combine(unitState, "state"), "active", Ct);
        var kept = await Converge("edgetwin_service_state=stopped", "edgetwin_site_id=site2");
        Assert.True(kept.Result.ExitCode == 0, kept.Result.Explained);
        Assert.Equal("inactive", State());
        Assert.Contains("stop edgetwin.service", kept.Calls, StringComparison.Ordinal);
        Assert.DoesNotMatch(@"(?m)^(re)?start ", kept.Calls);
        Assert.Contains("id: site2", await File.ReadAllTextAsync(Path.Combine(dir.Path, "etc-edgetwin", "edgetwin.yaml"), Ct), StringComparison.Ordinal);
    }

    // Debian's primary group of nobody.
    private static string NoGroup => File.ReadAllText("/etc/group").Contains("\nnogroup:", StringComparison.Ordinal) ? "nogroup" : "nobody";

    /// <summary>
    /// The whole role (entry point main: meta/argument_specs.yml, the preflight, the install) applied in check mode to
    /// this machine as host gw7 over a local connection: nothing is changed. Its paths are under <paramref name="dir"/>,
    /// the service user is the existing <c>nobody</c>, the release source holds fake 9.9.9 tarballs for both RIDs (check
    /// mode does not unpack) with their SHA256SUMS, a stand-in <c>systemctl</c> answers as systemd without the unit
    /// (calls logged in systemctl.log), and udevd is absent. With <paramref name="facts"/> the facts come from a fact
    /// cache instead of this machine.
    /// </summary>
    private async Task<Tool.Result> CheckModeRoleRunAsync(string playbook, TempDir dir, string extraVarsJson, Dictionary<string, string>? facts = null)
    {
        var src = Path.Combine(dir.Path, "release-src");
        if (!Directory.Exists(src))
        {
            await AddReleaseAsync(dir, "9.9.9");
            // The gateway's temporary directory (TMPDIR of the modules): what a check run leaves there is seen.
            Directory.CreateDirectory(Path.Combine(dir.Path, "gateway-tmp"));
            var bin = Directory.CreateDirectory(Path.Combine(dir.Path, "bin")).FullName;
            var systemctl = Path.Combine(bin, "systemctl");
            await File.WriteAllTextAsync(systemctl, $$"""
                #!/bin/sh
                echo "$*" >> '{{dir.Path}}/systemctl.log'
                case "$1" in
                  show) printf 'Id=%s\nLoadState=not-found\nActiveState=inactive\nSubState=dead\n' "$2"; exit 0;;
                  is-enabled|list-unit-files) exit 1;;
                esac
                exit 0
                """.Replace("\r", "", StringComparison.Ordinal) + "\n", Ct);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(systemctl, (UnixFileMode)0b111_101_101);
            }

            foreach (var (file, gather) in new[] { ("role.yml", "true"), ("role-cached-facts.yml", "false") })
            {
                await File.WriteAllTextAsync(Path.Combine(dir.Path, file), $"""
                    - hosts: all
                      gather_facts: {gather}
                      roles:
                        - role: edgetwin
                    """, Ct);
            }
            await File.WriteAllTextAsync(Path.Combine(dir.Path, "base.json"), JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["edgetwin_version"] = "9.9.9",
                ["edgetwin_release_src"] = src,
                ["edgetwin_root"] = Path.Combine(dir.Path, "opt"),
                ["edgetwin_config_dir"] = Path.Combine(dir.Path, "etc"),
                ["edgetwin_user"] = "nobody",
                ["edgetwin_group"] = NoGroup,
                ["edgetwin_udev_control"] = Path.Combine(dir.Path, "no-udevd"),
            }), Ct);
        }

        var env = new Dictionary<string, string>
        {
            ["ANSIBLE_ROLES_PATH"] = Path.Combine(AnsibleDir, "roles"),
            ["ANSIBLE_NOCOLOR"] = "1",
            ["ANSIBLE_RETRY_FILES_ENABLED"] = "0",
            ["ANSIBLE_GATHER_SUBSET"] = "min",
            ["PATH"] = Path.Combine(dir.Path, "bin") + ":" + Environment.GetEnvironmentVariable("PATH"),
            ["TMPDIR"] = Path.Combine(dir.Path, "gateway-tmp"),
        };
        var args = new List<string> { "-i", "gw7,", "-c", "local", "--check", "--diff", "-e", "@" + Path.Combine(dir.Path, "base.json"), "-e", extraVarsJson };
        if (facts is not null)
        {
            var cache = Directory.CreateDirectory(Path.Combine(dir.Path, "facts-" + Guid.NewGuid().ToString("N")[..8])).FullName;
            await File.WriteAllTextAsync(Path.Combine(cache, "gw7"), JsonSerializer.Serialize(facts), Ct);
            env["ANSIBLE_CACHE_PLUGIN"] = "jsonfile";
            env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = cache;
        }

        args.Add(Path.Combine(dir.Path, facts is null ? "role.yml" : "role-cached-facts.yml"));
        var result = await Tool.RunAsync(playbook, args, Timeout, Ct, dir.Path, env);
        output.WriteLine(result.All);
        return result;
    }

    /// <summary>The release RID the role picks for this machine (ansible_facts.architecture).</summary>
    private static string ThisRid => RuntimeInformation.OSArchitecture == Architecture.Arm64 ? "linux-arm64" : "linux-x64";

    /// <summary>
    /// Release tarballs of <paramref name="version"/> for both RIDs in <c>release-src</c> under <paramref name="dir"/>,
    /// listed in its SHA256SUMS: an <c>edgetwin</c> that is this build's agent (so <c>edgetwin check</c> is the real
    /// one) and the repository's device profiles.
    /// </summary>
    private static async Task AddReleaseAsync(TempDir dir, string version)
    {
        var src = Directory.CreateDirectory(Path.Combine(dir.Path, "release-src")).FullName;
        var agent = Path.Combine(AppContext.BaseDirectory, "edgetwin.dll");
        // Not Environment.ProcessPath: under tests/run.sh the tests run as their own apphost, which took the agent's
        // dll path as an option of the test platform ("unknown option: …/edgetwin.dll").
        var dotnet = Tool.Find("dotnet") ?? "dotnet";
        foreach (var rid in new[] { "linux-arm64", "linux-x64" })
        {
            var name = $"edgetwin-{version}-{rid}";
            var stage = Directory.CreateDirectory(Path.Combine(dir.Path, "stage", name)).FullName;
            await File.WriteAllTextAsync(Path.Combine(stage, "VERSION"), version + "\n", Ct);
            var edgetwin = Path.Combine(stage, "edgetwin");
            await File.WriteAllTextAsync(edgetwin, $"#!/bin/sh\nexec '{dotnet}' '{agent}' \"$@\"\n", Ct);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(edgetwin, (UnixFileMode)0b111_101_101);
            }

            var profiles = Directory.CreateDirectory(Path.Combine(stage, "device-profiles")).FullName;
            foreach (var profile in Directory.GetFiles(Path.Combine(Tool.RepoRoot(), "device-profiles"), "*.yaml"))
            {
                File.Copy(profile, Path.Combine(profiles, Path.GetFileName(profile)));
            }

            var tarball = Path.Combine(src, name + ".tar.gz");
            var tar = await Tool.RunAsync("tar", ["-C", Path.Combine(dir.Path, "stage"), "-czf", tarball, name], Timeout, Ct);
            Assert.True(tar.ExitCode == 0, tar.Explained);
            await File.AppendAllLinesAsync(Path.Combine(src, "SHA256SUMS"), [$"{Tool.Sha256(tarball)}  {name}.tar.gz"], Ct);
        }
    }

    /// <summary>
    /// <paramref name="version"/> unpacked under <paramref name="root"/>/releases as the role leaves it (this machine's
    /// tarball, its marker holding the tarball's sha256) and made <c>current</c>.
    /// </summary>
    private static async Task InstallReleaseAsync(TempDir dir, string root, string version)
    {
        var name = $"edgetwin-{version}-{ThisRid}";
        var tarball = Path.Combine(dir.Path, "release-src", name + ".tar.gz");
        var release = Directory.CreateDirectory(Path.Combine(root, "releases", version)).FullName;
        var tar = await Tool.RunAsync("tar", ["-C", release, "--strip-components=1", "-xzf", tarball], Timeout, Ct);
        Assert.True(tar.ExitCode == 0, tar.Explained);
        await File.WriteAllTextAsync(Path.Combine(release, ".edgetwin-unpacked"), Tool.Sha256(tarball), Ct);
        File.CreateSymbolicLink(Path.Combine(root, "current"), release);
    }

    [GeneratedRegex(@"^(edgetwin_[a-z0-9_]+):")]
    private static partial Regex DefaultsKey();

    [GeneratedRegex("Passed with production profile: 0 failure")]
    private static partial Regex PassedLine();

    [GeneratedRegex(@"^schema\[meta\]: \{'name': 'Debian', 'versions': \['bookworm', 'trixie'\]\} is not valid under any of the given schemas # ignored$")]
    private static partial Regex IgnoredTrixieMeta();
}
