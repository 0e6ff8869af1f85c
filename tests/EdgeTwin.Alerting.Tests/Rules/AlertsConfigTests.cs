using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;

namespace EdgeTwin.Alerting.Tests.Rules;

/// <summary>The <c>alerts:</c> section: what it reads, and problems named with file, line and key.</summary>
public sealed class AlertsConfigTests
{
    [Fact]
    public void Reads_rules_sinks_inputs_and_settings()
    {
        var config = Yaml.Valid("""
            alerts:
              group_by: [room]
              group_interval: 30s
              connectivity: { probe_host: broker.lan, probe_port: 8883, offline_after: 4 }
              sinks:
                - { name: hook, type: webhook, url: "http://10.0.0.5:8080/alerts", secret: abc, retries: 5, timeout: 3s }
                - { name: log, type: syslog }
                - { name: local, type: mqtt, host: 127.0.0.1, port: 1884 }
                - name: panel
                  type: gpio
                  chip: simulated
                  outputs:
                    - { name: relay, pin: 17, active: low, critical: on, failsafe: on }
              inputs:
                - { name: leak, pin: 5, severity: critical, targets: [panel] }
              rules:
                - name: inlet-hot
                  type: threshold
                  match: { role: rack.inlet_temperature, tags: { position: top } }
                  above: 27
                  clear_below: 26
                  for: 30s
                  severity: critical
                  labels: { team: facilities }
                  targets: [hook, panel]
                  combine: any
                  per: zone
                  when_uplink: not_online
            """);
        var rule = Assert.Single(config.Rules, r => r.Name == "inlet-hot");
        Assert.Equal(RuleKind.Threshold, rule.Kind);
        Assert.Equal((27.0, 26.0), (rule.Limit, rule.Clear));
        Assert.Equal(TimeSpan.FromSeconds(30), rule.For);
        Assert.Equal(EventSeverity.Critical, rule.Severity);
        Assert.Equal(Scope.Room, rule.Per);
        Assert.Equal(Combine.Any, rule.Combine);
        Assert.Equal(UplinkGate.NotOnline, rule.WhenUplink);
        Assert.Equal(["hook", "panel"], rule.Targets);
        Assert.Equal("facilities", rule.Labels["team"]);
        Assert.Equal("top", rule.Match.Tags[0].Value);
        var leak = Assert.Single(config.Rules, r => r.Kind == RuleKind.Input);
        Assert.Equal(5, leak.Pin);
        Assert.Equal(4, config.Sinks.Count);
        var hook = Assert.IsType<WebhookSinkConfig>(config.Sinks[0]);
        Assert.Equal((5, TimeSpan.FromSeconds(3), "abc"), (hook.Retries, hook.Timeout, hook.Secret));
        Assert.Equal("/dev/log", Assert.IsType<SyslogSinkConfig>(config.Sinks[1]).Socket);
        Assert.Equal(1884, Assert.IsType<MqttSinkConfig>(config.Sinks[2]).Port);
        var gpio = Assert.IsType<GpioSinkConfig>(config.Sinks[3]);
        Assert.False(gpio.Outputs[0].ActiveHigh);
        Assert.True(gpio.Outputs[0].FailsafeActive);
        Assert.Equal(["room"], config.GroupBy);
        Assert.Equal(("broker.lan", 8883, 4), (config.Connectivity.ProbeHost, config.Connectivity.ProbePort, config.Connectivity.OfflineAfter));
    }

    [Fact]
    public void Every_problem_is_reported_with_file_line_and_key()
    {
        var (_, problems) = Yaml.Alerts("""
            alerts:
              sinks:
                - { name: hook, type: webhok, url: "ftp://x" }
              rules:
                - name: a
                  type: threshold
                  match: { role: rack.inlet_temperature }
                  above: 27
                  clear_below: 28
                  fro: 30s
                  targets: [nowhere]
                - { name: b, type: threshold, match: { metric: x }, above: 1, below: 0 }
                - { name: c, type: rate, rise_per_min: 2 }
                - { name: a, type: missing, match: { device: d }, after: 1m }
                - { name: e, type: threshold, match: { metric: x }, above: 1, combine: all, per: series }
                - { name: f, type: stuck, match: { metric: x } }
            """);
        var text = string.Join("\n", problems);
        Assert.Contains("site.yaml:3:", text, StringComparison.Ordinal);
        Assert.Contains("expected one of gpio, syslog, mqtt, webhook, smtp, got 'webhok'", text, StringComparison.Ordinal);
        Assert.Contains("site.yaml:9:", text, StringComparison.Ordinal);
        Assert.Contains("alerts.rules[0].clear_below: must be at most 'above' (27)", text.Replace("alerts.rules.0", "alerts.rules[0]", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.Contains("unknown key 'fro' (did you mean 'for'?)", text, StringComparison.Ordinal);
        Assert.Contains("no sink named 'nowhere'", text, StringComparison.Ordinal);
        Assert.Contains("give exactly one of 'above' or 'below'", text, StringComparison.Ordinal);
        Assert.Contains("missing required key 'match'", text, StringComparison.Ordinal);
        Assert.Contains("duplicate rule name 'a'", text, StringComparison.Ordinal);
        Assert.Contains("a combination needs a scope wider than one series", text, StringComparison.Ordinal);
        Assert.Contains("missing required key 'after'", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Regression_check_accepted_alert_references_that_can_never_fire()
    {
        // Pasted into small-dc-room.yaml as the rule set's comment says, the shipped rules are valid there...
        var examples = Path.Combine(ShippedFiles.Repo(), "device-profiles", "examples");
        var site = File.ReadAllText(Path.Combine(examples, "small-dc-room.yaml"));
        var rules = File.ReadAllText(Path.Combine(examples, "alert-rules", "datacenter.yaml"));
        Assert.Empty(CheckSite(site + "\n" + rules, examples));

        // ...and each of these passed check before, then bound nothing or fought a sensor for its pin.
        var broken = rules
            .Replace("match: { role: rack.inlet_humidity }", "match: { role: rack.inlet_humidty }", StringComparison.Ordinal)
            .Replace("states: [battery, onBattery]", "states: [battery, onBatery]", StringComparison.Ordinal)
            .Replace("pin: 24,", "pin: 17,", StringComparison.Ordinal)
            + "    - { name: crac9-down, type: device_down, device: crac9 }\n"
            + "    - { name: crac1-fan, type: threshold, match: { device: crac-1, metric: fan_capacity }, below: 10 }\n";
        var problems = CheckSite(site + "\n" + broken, examples);
        Assert.Equal(5, problems.Count);
        Assert.Contains(problems, p => p.Contains("alerts.rules[6].match.role: unknown role 'rack.inlet_humidty': no device profile has it (did you mean 'rack.inlet_humidity'?)", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("alerts.rules[11].states[1]: unknown state 'onBatery' (did you mean 'onBattery'?)", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("alerts.sinks[0].outputs[0].pin: GPIO pin 17 is already read by device 'room1-leak' (address gpio:17); an alarm output needs a pin of its own", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("device: unknown device 'crac9' (did you mean 'crac1'?)", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("match.device: unknown device 'crac-1' (did you mean 'crac1'?)", StringComparison.Ordinal));
    }

    [Fact]
    public void The_shipped_pue_rule_passes_check_though_no_profile_has_role_site_pue()
    {
        // site.pue is derived by the agent (facility meter / IT power), not read from a device: before it was a known
        // role, check refused the rule as "unknown role 'site.pue': no device profile has it".
        var examples = Path.Combine(ShippedFiles.Repo(), "device-profiles", "examples");
        var site = File.ReadAllText(Path.Combine(examples, "small-dc-room.yaml"));
        var rules = File.ReadAllText(Path.Combine(examples, "alert-rules", "datacenter.yaml"));
        var uncommented = UncommentRule(rules, "pue-high");
        Assert.Contains("    - name: pue-high", uncommented, StringComparison.Ordinal);
        Assert.Contains("      match: { role: site.pue }", uncommented, StringComparison.Ordinal);

        Assert.Empty(CheckSite(site + "\n" + uncommented, examples));
        Assert.Contains(CheckSite(site + "\n" + uncommented.Replace("role: site.pue", "role: site.peu", StringComparison.Ordinal), examples), p => p.Contains("unknown role 'site.peu': no device profile has it (did you mean 'site.pue'?)", StringComparison.Ordinal));
    }

    [Fact]
    public void The_shipped_room_ppue_rule_passes_check_though_no_profile_has_role_room_ppue()
    {
        // room.ppue is derived by the agent (a room's infrastructure meters and its PDUs), like site.pue.
        var examples = Path.Combine(ShippedFiles.Repo(), "device-profiles", "examples");
        var site = File.ReadAllText(Path.Combine(examples, "small-dc-room.yaml"));
        var uncommented = UncommentRule(File.ReadAllText(Path.Combine(examples, "alert-rules", "datacenter.yaml")), "room-ppue-high");
        Assert.Contains("      match: { role: room.ppue }", uncommented, StringComparison.Ordinal);
        Assert.Empty(CheckSite(site + "\n" + uncommented, examples));
    }

    /// <summary>
    /// Regression: uncommenting the pue-high example took every commented rule line ("    #   ") of the file, so the
    /// room-ppue-high example added after it was uncommented without its name line and the rules no longer parsed.
    /// Only the named rule's block is uncommented.
    /// </summary>
    private static string UncommentRule(string rules, string name)
    {
        var lines = rules.Split('\n');
        var start = Array.FindIndex(lines, l => l == $"    # - name: {name}");
        Assert.True(start >= 0, $"no commented rule {name}");
        for (var i = start; i < lines.Length && (i == start || lines[i].StartsWith("    #   ", StringComparison.Ordinal)); i++)
        {
            lines[i] = "    " + lines[i][6..];
        }

        return string.Join('\n', lines);
    }

    [Fact]
    public void Regression_check_accepted_an_alarm_input_on_the_relay_pin_and_two_sinks_driving_one_pin()
    {
        // Each sink checked only its own outputs and the inputs only each other: a contact wired to the relay's pin, or a
        // second panel's strobe on the lamp's pin, passed check and then fought over the line at start.
        var examples = Path.Combine(ShippedFiles.Repo(), "device-profiles", "examples");
        var site = File.ReadAllText(Path.Combine(examples, "small-dc-room.yaml"));
        var rules = File.ReadAllText(Path.Combine(examples, "alert-rules", "datacenter.yaml"))
            .Replace("{ name: door-open, pin: 13,", "{ name: door-open, pin: 24,", StringComparison.Ordinal)
            .Replace("    - { name: journal, type: syslog,", "    - { name: panel2, type: gpio, chip: auto, outputs: [ { name: strobe, pin: 23, critical: on } ] }\n    - { name: journal, type: syslog,", StringComparison.Ordinal);
        var problems = CheckSite(site + "\n" + rules, examples);
        Assert.Equal(2, problems.Count);
        Assert.Contains(problems, p => p.Contains("alerts.inputs[2].pin: GPIO pin 24 is driven by output 'relay' of sink 'panel'; an alarm input needs a pin of its own", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("alerts.sinks[1].outputs[0].pin: GPIO pin 23 is already driven by output 'lamp' of sink 'panel'; each output needs a pin of its own", StringComparison.Ordinal));
    }

    [Fact]
    public void Regression_check_accepted_a_relay_on_the_i2c_clock_line()
    {
        // "Relay on pin 5" meant as header pin 5 is BCM 3, SCL of I2C bus 1: the relay took the bus's line and the room's
        // BME280 failed. check warned for a GPIO device there, not for an alarm output.
        var examples = Path.Combine(ShippedFiles.Repo(), "device-profiles", "examples");
        var site = File.ReadAllText(Path.Combine(examples, "small-dc-room.yaml"));
        var rules = File.ReadAllText(Path.Combine(examples, "alert-rules", "datacenter.yaml"))
            .Replace("{ name: relay, pin: 24,", "{ name: relay, pin: 3,", StringComparison.Ordinal);
        var result = EdgeTwin.Core.Config.SiteConfigLoader.Parse(site + "\n" + rules, Path.Combine(examples, "site.yaml"), new EdgeTwin.Core.Config.SiteConfigLoadOptions
        {
            ProfilesDir = Path.Combine(ShippedFiles.Repo(), "device-profiles"),
            SectionValidators = [new AlertsSectionValidator()],
        });
        Assert.Empty(result.Problems);
        var problem = Assert.Single(result.Warnings, w => w.Message.Contains("GPIO 3", StringComparison.Ordinal)).ToString();
        Assert.Contains("warning: alerts.sinks[0].outputs[0].pin: GPIO 3 is SCL of I2C bus 1 (header pin 5), which device 'room1-env' uses: an alarm output there takes the bus's line", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Regression_check_accepted_a_misspelt_match_metric_that_never_fires()
    {
        // The series' metric is the profile's metric name, matched exactly: a typo bound nothing and the rule stayed quiet.
        var (text, _, report) = Check("""
            alerts:
              rules:
                - { name: ups-runtime-low, type: threshold, match: { device: ups1, metric: runtime_remainin }, below: 10 }
                - { name: any-runtime-low, type: threshold, match: { metric: runtime_remainig }, below: 10 }
                - { name: ups-runtime-ok, type: threshold, match: { device: ups1, metric: runtime_remaining }, below: 10 }
                - { name: pdu-any, type: threshold, match: { device: "pdu-*", metric: "out*" }, above: 10 }
            """);
        Assert.Equal(1, report.ExitCode);
        Assert.Equal(2, report.Problems.Count);
        var first = report.Problems[0];
        Assert.Contains(
            $"{report.File}:{first.Line}:{first.Column}: alerts.rules[0].match.metric: unknown metric 'runtime_remainin': device 'ups1' (profile apc-smart-ups) has no such metric (did you mean 'runtime_remaining'?)",
            text,
            StringComparison.Ordinal);
        Assert.Contains("alerts.rules[1].match.metric: unknown metric 'runtime_remainig': no device profile has it (did you mean 'runtime_remaining'?)", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Regression_check_echoed_the_webhook_urls_password_and_token()
    {
        // check's output reaches Ansible (validate:) and CI logs: the URL is shown redacted, in text and in JSON.
        var (text, json, report) = Check("""
            alerts:
              sinks:
                - { name: noc, type: webhook, url: "htp://u:URLPW-S3CRET@h/x?token=URLTOKEN-S3CRET#frag" }
            """);
        Assert.Equal(1, report.ExitCode);
        Assert.Contains($"{report.File}:{report.Problems[0].Line}:40: alerts.sinks[0].url: 'htp://***@h/x?token=***' is not an http or https URL", text, StringComparison.Ordinal);
        Assert.DoesNotContain("S3CRET", text, StringComparison.Ordinal);
        Assert.DoesNotContain("S3CRET", json, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_names_an_unknown_webhook_format_with_the_closest_one()
    {
        var (text, _, report) = Check("""
            alerts:
              sinks:
                - { name: pager, type: webhook, format: slak, url: "http://10.0.0.9:9093" }
            """);
        Assert.Equal(1, report.ExitCode);
        Assert.Contains($"{report.File}:{report.Problems[0].Line}:45: alerts.sinks[0].format: expected one of edgetwin, alertmanager, slack, got 'slak' (did you mean 'slack'?)", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_prints_the_webhooks_plain_http_warnings_and_still_passes()
    {
        var (text, json, report) = Check("""
            alerts:
              sinks:
                - { name: lan, type: webhook, url: "http://u:PW-S3CRET@192.168.1.20/hook?token=T-S3CRET" }
            """);
        Assert.Equal(0, report.ExitCode);
        var lines = text.TrimEnd().Split(Environment.NewLine);
        Assert.Equal(2, lines.Length);
        Assert.Equal(
            $"{report.File}:{report.Warnings[0].Line}:40: warning: alerts.sinks[0].url: the url's user:password (Basic auth is only base64) goes over plain http to 192.168.1.20: anyone on the path can read and reuse it; use https",
            lines[0]);
        Assert.StartsWith("OK: ", lines[1], StringComparison.Ordinal);
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        Assert.Equal("alerts.sinks[0].url", Assert.Single(doc.RootElement.GetProperty("warnings").EnumerateArray()).GetProperty("path").GetString());
        Assert.DoesNotContain("S3CRET", text + json, StringComparison.Ordinal);
    }

    [Fact]
    public void Regression_check_read_the_webhooks_relative_secret_files_from_the_working_directory()
    {
        // The agent reads them beside the config file; check looked in its working directory and failed a good config.
        var (text, _, report) = Check(
            """
            alerts:
              sinks:
                - { name: noc, type: webhook, url: "https://10.0.0.5/hook", secret_file: hook.secret, bearer_token_file: hook.token }
            """,
            ("hook.secret", "s3cret\n"),
            ("hook.token", "t0ken\n"));
        Assert.True(report.Ok, text);
        Assert.NotEqual(Path.GetDirectoryName(report.File), Directory.GetCurrentDirectory());
    }

    /// <summary>
    /// <c>edgetwin check</c> on the shipped small site with <paramref name="alerts"/> appended, in a directory of its own
    /// with <paramref name="files"/> beside it: its text and JSON output.
    /// </summary>
    private static (string Text, string Json, EdgeTwin.Core.Config.ConfigCheckReport Report) Check(string alerts, params (string Name, string Content)[] files)
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-check-").FullName;
        try
        {
            var examples = Path.Combine(ShippedFiles.Repo(), "device-profiles", "examples");
            var site = File.ReadAllText(Path.Combine(examples, "small-dc-room.yaml"));
            Directory.CreateDirectory(Path.Combine(dir, "secrets"));
            File.Copy(Path.Combine(examples, "secrets", "ops-auth"), Path.Combine(dir, "secrets", "ops-auth"));
            foreach (var (name, content) in files)
            {
                File.WriteAllText(Path.Combine(dir, name), content);
            }

            var path = Path.Combine(dir, "site.yaml");
            File.WriteAllText(path, site + "\n" + alerts + "\n");
            // Modes as the role installs them, so the files' own mode warnings stay out of what these tests assert.
            if (!OperatingSystem.IsWindows())
            {
                foreach (var file in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories))
                {
                    File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
                }
            }

            var report = EdgeTwin.Core.Config.ConfigCheck.Run(path, new EdgeTwin.Core.Config.SiteConfigLoadOptions
            {
                ProfilesDir = Path.Combine(ShippedFiles.Repo(), "device-profiles"),
                SectionValidators = [new AlertsSectionValidator()],
            });
            var text = new StringWriter();
            EdgeTwin.Core.Config.ConfigCheck.WriteText(report, text);
            using var json = new MemoryStream();
            EdgeTwin.Core.Config.ConfigCheck.WriteJson(report, json);
            return (text.ToString(), System.Text.Encoding.UTF8.GetString(json.ToArray()), report);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static readonly string Examples = Path.Combine(ShippedFiles.Repo(), "device-profiles", "examples");

    /// <summary>A rule on a role the table leaves alone: the site has rules, none on the role under test.</summary>
    private const string Unrelated = "alerts:\n  rules:\n    - { name: humid, type: threshold, match: { role: rack.inlet_humidity }, above: 80 }\n";

    private static string DcRoom(string alerts) => File.ReadAllText(Path.Combine(Examples, "small-dc-room.yaml")) + "\n" + alerts;

    private static string MachineLine(string alerts) => File.ReadAllText(Path.Combine(Examples, "machine-line.yaml")) + "\n" + alerts;

    private static string Shipped(string file) => File.ReadAllText(Path.Combine(Examples, "alert-rules", file));

    [Fact]
    public void Regression_check_passed_a_site_whose_leak_sensor_no_rule_watched()
    {
        // small-dc-room reads its under-floor cable as device room1-leak (room.leak); with the shipped rule set as it was
        // (no rule on room.leak) water raised no local alarm, and check said nothing.
        var warning = Assert.Single(UnwatchedWarningsOf(DcRoom(Unrelated), "room1-leak"));
        Assert.EndsWith(
            "alerts.rules: device 'room1-leak' (profile generic-leak-detector) reads a leak sensor (leak, role room.leak) and no rule watches it: water would raise no local alarm; add a state rule matching role room.leak, e.g. the shipped water-leak in device-profiles/examples/alert-rules/datacenter.yaml",
            warning,
            StringComparison.Ordinal);

        // A rule on the role, on the device, or the shipped set: nothing to say.
        Assert.Empty(UnwatchedWarningsOf(DcRoom(Unrelated + "    - { name: wet, type: state, match: { role: room.leak }, states: [leak] }\n"), "room1-leak"));
        Assert.Empty(UnwatchedWarningsOf(DcRoom(Unrelated + "    - { name: wet, type: state, match: { device: \"room1-*\", metric: leak }, states: [leak] }\n"), "room1-leak"));
        Assert.Empty(UnwatchedWarningsOf(DcRoom(Shipped("datacenter.yaml")), "room1-leak"));
    }

    [Fact]
    public void Regression_check_passed_a_site_whose_ups_on_battery_no_rule_watched()
    {
        // Both UPS readings of small-dc-room (APC's own MIB and UPS-MIB): one warning each, naming the profile.
        var warnings = UnwatchedWarningsOf(DcRoom(Unrelated), "ups1", "ups1-std");
        Assert.Equal(2, warnings.Count);
        Assert.Contains(warnings, w => w.EndsWith(
            "alerts.rules: device 'ups1' (profile apc-smart-ups) reads a UPS's output source (output_status, role ups.output_source) and no rule watches it: a UPS on battery would raise no local alarm and its battery would run out unseen; add a state rule matching role ups.output_source, e.g. the shipped ups-on-battery in device-profiles/examples/alert-rules/datacenter.yaml",
            StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("device 'ups1-std' (profile ietf-ups-mib) reads a UPS's output source (output_source, role ups.output_source)", StringComparison.Ordinal));
        // A stuck rule alarms when the reading freezes, not on battery: it does not count.
        Assert.Equal(2, UnwatchedWarningsOf(DcRoom(Unrelated + "    - { name: frozen, type: stuck, match: { role: ups.output_source }, after: 10m }\n"), "ups1", "ups1-std").Count);
    }

    [Fact]
    public void Regression_check_passed_a_site_whose_rack_inlet_temperature_no_rule_watched()
    {
        // Four PDUs' inlet probes: one warning per PDU, each naming its own profile.
        var warnings = UnwatchedWarningsOf(DcRoom(Unrelated), "pdu-a01-a", "pdu-a01-b", "pdu-a02-a", "pdu-a02-b");
        Assert.Equal(4, warnings.Count);
        Assert.Contains(warnings, w => w.EndsWith(
            "alerts.rules: device 'pdu-a01-b' (profile raritan-px2) reads a rack inlet temperature (inlet_temperature, role rack.inlet_temperature) and no rule watches it: a hot rack or cabinet would raise no local alarm until its equipment shuts itself down or trips; add a threshold rule matching role rack.inlet_temperature, e.g. the shipped rack-inlet-above-allowable in device-profiles/examples/alert-rules/datacenter.yaml",
            StringComparison.Ordinal));
        // A rule on one PDU's metric leaves the other three.
        Assert.Equal(3, UnwatchedWarningsOf(DcRoom(Unrelated + "    - { name: hot, type: threshold, match: { device: pdu-a01-a, metric: inlet_temperature }, above: 32 }\n"), "pdu-a01-a", "pdu-a01-b", "pdu-a02-a", "pdu-a02-b").Count);
    }

    [Fact]
    public void Regression_check_passed_a_site_whose_cooling_unit_state_no_rule_watched()
    {
        // crac1 and crac2 read unit and fan state; neither a state rule nor the twin's cooling-unit-failed: one warning per unit.
        var warnings = UnwatchedWarningsOf(DcRoom(Unrelated), "crac1", "crac2");
        Assert.Equal(2, warnings.Count);
        Assert.Contains(warnings, w => w.EndsWith(
            "alerts.rules: device 'crac1' (profile liebert-gp-crac) reads a cooling unit's state (system_state, role crac.running; fan_state, role crac.fan_running) and no rule watches it: a cooling unit that stops would raise no local alarm until its racks overheat; add a state rule matching role crac.running, or with the unit in site.cooling_units an event rule on the thermal twin's cooling_failure prediction, e.g. the shipped cooling-unit-failed in device-profiles/examples/alert-rules/datacenter.yaml",
            StringComparison.Ordinal));

        // The thermal twin's cooling_failure prediction covers the units in site.cooling_units (the shipped rule, by its
        // attribute); one state rule on either state of a unit covers it too.
        const string TwinRule = "    - { name: failed, type: event, event: prediction, attribute: failed_unit_count, above: 0.5, severity: critical }\n";
        Assert.Empty(UnwatchedWarningsOf(DcRoom(Unrelated + TwinRule), "crac1", "crac2"));
        Assert.Empty(UnwatchedWarningsOf(DcRoom(Unrelated + "    - { name: stopped, type: state, match: { role: crac.fan_running }, states: [\"off\"] }\n"), "crac1", "crac2"));
        // ... but not with the twin switched off, nor for a source that is not a cooling failure.
        Assert.Equal(2, UnwatchedWarningsOf(DcRoom(Unrelated + TwinRule + "thermal_twin: { enabled: false }\n"), "crac1", "crac2").Count);
        Assert.Equal(2, UnwatchedWarningsOf(DcRoom(Unrelated + TwinRule.Replace("severity: critical", "source: \"*/thermal_twin\", severity: critical", StringComparison.Ordinal)), "crac1", "crac2").Count);
    }

    [Fact]
    public void Regression_check_passed_a_site_whose_drive_fault_no_rule_watched()
    {
        var warnings = UnwatchedWarningsOf(MachineLine(Unrelated), "drive-m1", "drive-m2", "drive-m3");
        Assert.Equal(3, warnings.Count);
        Assert.Contains(warnings, w => w.EndsWith(
            "alerts.rules: device 'drive-m2' (profile abb-acs580) reads a drive fault (tripped, role machine.fault) and no rule watches it: a tripped drive would raise no local alarm; add a threshold rule matching role machine.fault, e.g. the shipped drive-fault in device-profiles/examples/alert-rules/machine-line.yaml",
            StringComparison.Ordinal));
    }

    [Fact]
    public void Regression_check_passed_the_machine_line_whose_cabinet_temperature_no_rule_watched()
    {
        // machine-line.yaml's cabinet-climate (sensirion-sht3x, read as rack.inlet_temperature) had no rule in the shipped
        // machine-line rule set; cabinet-hot watches it now.
        Assert.Single(UnwatchedWarningsOf(MachineLine(Shipped("machine-line.yaml").Replace("role: rack.inlet_temperature", "role: rack.inlet_humidity", StringComparison.Ordinal)), "cabinet-climate"));
        Assert.Empty(UnwatchedWarningsOf(MachineLine(Shipped("machine-line.yaml")), "cabinet-climate"));
    }

    [Fact]
    public void The_shipped_rule_sets_watch_every_dangerous_role_of_their_example_sites()
    {
        Assert.Empty(UnwatchedWarningsOf(DcRoom(Shipped("datacenter.yaml"))));
        Assert.Empty(UnwatchedWarningsOf(MachineLine(Shipped("machine-line.yaml"))));
    }

    [Fact]
    public void A_matching_rule_silences_the_unwatched_role_warning()
    {
        var before = UnwatchedWarningsOf(DcRoom(Unrelated));
        Assert.Equal(9, before.Count);   // 2 UPS, 4 PDU inlets, 2 cooling units, 1 leak sensor
        // One rule per row, by role, by device glob or by metric name: each takes exactly its devices' warnings away.
        var after = UnwatchedWarningsOf(DcRoom(Unrelated
            + "    - { name: battery, type: state, match: { role: ups.output_source }, states: [battery, onBattery] }\n"
            + "    - { name: hot, type: threshold, match: { device: \"pdu-*\", metric: inlet_temperature }, above: 32 }\n"));
        Assert.Equal(3, after.Count);
        Assert.All(after, w => Assert.DoesNotContain("UPS", w, StringComparison.Ordinal));
        Assert.All(after, w => Assert.DoesNotContain("(profile apc-smart-ups)", w, StringComparison.Ordinal));
        Assert.All(after, w => Assert.DoesNotContain("rack inlet temperature", w, StringComparison.Ordinal));
    }

    [Fact]
    public void A_site_without_rules_gets_no_unwatched_role_warning()
    {
        // Alerting centrally: sinks but no rules: (and no alerts: at all) say nothing about unwatched roles.
        Assert.Empty(UnwatchedWarningsOf(DcRoom("alerts:\n  sinks:\n    - { name: journal, type: syslog }\n")));
        Assert.Empty(UnwatchedWarningsOf(DcRoom("")));
        Assert.Empty(UnwatchedWarningsOf(DcRoom("alerts:\n  rules: []\n")));
    }

    /// <summary>The warnings about unwatched roles (of <paramref name="devices"/>, or all), the example's others left out.</summary>
    private static List<string> UnwatchedWarningsOf(string yaml, params string[] devices)
    {
        var result = EdgeTwin.Core.Config.SiteConfigLoader.Parse(yaml, Path.Combine(Examples, "site.yaml"), new EdgeTwin.Core.Config.SiteConfigLoadOptions
        {
            ProfilesDir = Path.Combine(ShippedFiles.Repo(), "device-profiles"),
            SectionValidators = [new AlertsSectionValidator(), new ThermalTwinSection()],
        });
        Assert.Empty(result.Problems);
        return [.. result.Warnings.Select(p => p.ToString())
            .Where(w => w.Contains("and no rule watches it", StringComparison.Ordinal))
            .Where(w => devices.Length == 0 || devices.Any(d => w.Contains($"device '{d}' ", StringComparison.Ordinal)))];
    }

    /// <summary>Claims <c>thermal_twin:</c> as the agent's validator does (this project does not reference the agent).</summary>
    private sealed class ThermalTwinSection : EdgeTwin.Core.Config.IConfigSectionValidator
    {
        public string Section => "thermal_twin";

        public void Validate(EdgeTwin.Core.Config.ConfigReader section)
        {
        }
    }

    private static List<string> CheckSite(string yaml, string directory)
    {
        var result = EdgeTwin.Core.Config.SiteConfigLoader.Parse(yaml, Path.Combine(directory, "site.yaml"), new EdgeTwin.Core.Config.SiteConfigLoadOptions
        {
            ProfilesDir = Path.Combine(ShippedFiles.Repo(), "device-profiles"),
            SectionValidators = [new AlertsSectionValidator()],
        });
        return [.. result.Problems.Select(p => p.ToString())];
    }


    [Theory]
    [InlineData("datacenter.yaml")]
    [InlineData("machine-line.yaml")]
    [InlineData("gateway-host.yaml")]
    public void Shipped_default_rule_sets_are_valid(string file)
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !Directory.Exists(Path.Combine(dir, "device-profiles")))
        {
            dir = Path.GetDirectoryName(dir);
        }

        Assert.NotNull(dir);
        var path = Path.Combine(dir, "device-profiles", "examples", "alert-rules", file);
        var (config, problems) = Yaml.Alerts(File.ReadAllText(path), path);
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        Assert.True(config.Rules.Count >= 5);
    }
}
