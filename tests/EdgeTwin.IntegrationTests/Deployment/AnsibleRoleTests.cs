using System.Text.RegularExpressions;

namespace EdgeTwin.IntegrationTests.Deployment;

/// <summary>
/// The Ansible role in ansible/: <c>ansible-lint --profile production</c> clean, the site playbook parses, and the unit
/// the role renders for a site passes the same systemd checks as the reference unit.
/// </summary>
public sealed partial class AnsibleRoleTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

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
        Assert.Equal([$"{dir.Path}/edgetwin run --config /etc/edgetwin/edgetwin.yaml"], settings["ExecStart"]);
        // A memory runaway is the unit's to stop (and Restart= to undo), not the kernel OOM killer's choice of process.
        Assert.Equal(["512M"], settings["MemoryHigh"]);
        Assert.Equal(["768M"], settings["MemoryMax"]);
        await VerifyUnitAsync(analyze, unit, dir);
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

    [Fact]
    public async Task Udev_handler_reloads_and_triggers_the_buses_subsystems_only_where_udevd_runs()
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        using var dir = new TempDir();
        var bin = Directory.CreateDirectory(Path.Combine(dir.Path, "bin")).FullName;
        var log = Path.Combine(dir.Path, "udevadm.log");
        var udevadm = Path.Combine(bin, "udevadm");
        await File.WriteAllTextAsync(udevadm, $"#!/bin/sh\necho \"$*\" >> '{log}'\n", Ct);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(udevadm, (UnixFileMode)0b111_101_101);
        }

        var control = Path.Combine(dir.Path, "control");
        var play = Path.Combine(dir.Path, "handlers.yml");
        await File.WriteAllTextAsync(play, $$"""
            - hosts: localhost
              gather_facts: false
              vars_files: [{{AnsibleDir}}/roles/edgetwin/defaults/main.yml]
              tasks:
                - name: The rules changed
                  ansible.builtin.debug: { msg: rules }
                  changed_when: true
                  notify: Reload udev rules
              handlers:
                - name: The role's handlers
                  ansible.builtin.import_tasks: {{AnsibleDir}}/roles/edgetwin/handlers/main.yml
            """, Ct);
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
        Assert.Contains("\ntwin:\n  anomaly:\n    threshold_interval: 5m\n    outlier_z: 20\n", text, StringComparison.Ordinal);
        Assert.Contains("  gateway_id: gw-dc1-01\n", text, StringComparison.Ordinal);

        // The example inventory's group_vars too (they deploy as they are).
        var inventory = await RenderAndCheck(Path.Combine(AnsibleDir, "inventory", "example", "group_vars", "all", "main.yml"));
        Assert.Equal(0, inventory.ExitCode);
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

    [GeneratedRegex(@"^(edgetwin_[a-z0-9_]+):")]
    private static partial Regex DefaultsKey();

    [GeneratedRegex("Passed with production profile: 0 failure")]
    private static partial Regex PassedLine();
}
