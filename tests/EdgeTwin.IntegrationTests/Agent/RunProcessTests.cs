namespace EdgeTwin.IntegrationTests.Agent;

/// <summary><c>edgetwin run</c> as systemd runs it: readiness on NOTIFY_SOCKET, SIGTERM → clean exit 0, bad config → 2.</summary>
public sealed class RunProcessTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Run_feeds_the_systemd_watchdog_while_the_poll_loop_progresses()
    {
        var config = AgentFiles.WriteConfig("""
              - { id: pdu-1, profile: apc-rpdu2, address: "udp:127.0.0.1:9", credentials: pub, interval: 1s, timeout: 200ms }
            """);
        await using var agent = AgentProcess.Start(new Dictionary<string, string> { ["WATCHDOG_USEC"] = "1000000" }, "run", "--config", config);

        Assert.Equal("READY=1", await agent.ReceiveNotifyAsync(StartTimeout, Ct));

        // A device that never answers still makes the loop progress (failed polls count): the pings keep coming.
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("WATCHDOG=1", await agent.ReceiveNotifyAsync(TimeSpan.FromSeconds(30), Ct));
        }

        await agent.TerminateAsync(Ct);
        Assert.Equal(0, await agent.WaitForExitAsync(StartTimeout, Ct));
    }

    [Fact]
    public async Task Run_notifies_ready_and_exits_0_after_a_drain_on_SIGTERM()
    {
        var config = AgentFiles.WriteConfig("""
              - { id: pdu-1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: pub, enabled: false }
            """);
        await using var agent = AgentProcess.Start("run", "--config", config);

        Assert.Equal("READY=1", await agent.ReceiveNotifyAsync(StartTimeout, Ct));
        await agent.TerminateAsync(Ct);
        Assert.Equal("STOPPING=1", await agent.ReceiveNotifyAsync(StartTimeout, Ct));
        var code = await agent.WaitForExitAsync(StartTimeout, Ct);

        Assert.True(code == 0, $"exit {code}; stdout:\n{agent.Stdout}\nstderr:\n{agent.Stderr}");
        Assert.Contains("EdgeTwin agent starting: site dc1, gateway gw-test, 0 devices enabled (1 disabled)", agent.Stdout);
        Assert.Contains("Pipeline drained", agent.Stdout);
        Assert.Contains("EdgeTwin agent stopped", agent.Stdout);
        Assert.Equal("", agent.Stderr);
    }

    [Fact]
    public async Task Regression_sighup_killed_the_agent()
    {
        // Before: SIGHUP's default action ended the process (exit 129, no drain, an unclean outbox), and systemd counts a
        // death by SIGHUP as clean, so Restart=on-failure left the gateway down. Now: logged as not supported, keeps running.
        var temp = FakeThermal.Create(47250);
        var config = AgentFiles.WriteConfig($$"""
              - { id: gw-cpu, profile: linux-cpu-temperature, address: "cpu:{{temp}}", interval: 1s, timeout: 500ms }
            """);
        await using var agent = AgentProcess.Start("run", "--config", config, "--log-level", "Trace");

        Assert.Equal("READY=1", await agent.ReceiveNotifyAsync(StartTimeout, Ct));
        await agent.SignalAsync("HUP", Ct);
        await WaitForAsync(agent, () => agent.Stdout.Contains("SIGHUP: configuration reload is not supported; restart the service to apply changes", StringComparison.Ordinal), "the SIGHUP warning");
        var polls = Count(agent.Stdout, "Device gw-cpu: poll returned 1 samples");
        await WaitForAsync(agent, () => Count(agent.Stdout, "Device gw-cpu: poll returned 1 samples") >= polls + 2, "two more polls after SIGHUP");
        Assert.False(agent.HasExited, $"the agent exited after SIGHUP; stdout:\n{agent.Stdout}\nstderr:\n{agent.Stderr}");
        Assert.Contains($"(the agent keeps running with {config} as it was read at start)", agent.Stdout, StringComparison.Ordinal);

        // A second HUP is handled the same way, and SIGTERM still stops it cleanly.
        await agent.SignalAsync("HUP", Ct);
        await WaitForAsync(agent, () => Count(agent.Stdout, "SIGHUP: configuration reload is not supported") == 2, "the second SIGHUP warning");
        await agent.TerminateAsync(Ct);
        var code = await agent.WaitForExitAsync(StartTimeout, Ct);
        Assert.True(code == 0, $"exit {code}; stdout:\n{agent.Stdout}\nstderr:\n{agent.Stderr}");
        Assert.Contains("EdgeTwin agent stopped", agent.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_polls_a_real_sensor_source_and_forwards_its_samples_before_exiting_on_SIGTERM()
    {
        var temp = FakeThermal.Create(47250);
        var config = AgentFiles.WriteConfig($$"""
              - { id: gw-cpu, profile: linux-cpu-temperature, address: "cpu:{{temp}}", interval: 1s, timeout: 500ms }
            """);
        await using var agent = AgentProcess.Start("run", "--config", config, "--log-level", "Trace");

        Assert.Equal("READY=1", await agent.ReceiveNotifyAsync(StartTimeout, Ct));
        // The console logger writes from its own queue: the line logged before READY=1 may reach stdout just after it
        // (failed once in CI on a loaded machine).
        await WaitForAsync(agent, () => agent.Stdout.Contains("EdgeTwin agent running: 1 polled and 0 push sources, 1 series known before the first polls", StringComparison.Ordinal), "the running line");
        await WaitForAsync(agent, () => Count(agent.Stdout, "Device gw-cpu: poll returned 1 samples") >= 2, "two polls of gw-cpu");
        await WaitForAsync(agent, () => agent.Stdout.Contains(": 1 up, 0 down; 1 series (SNMP table rows included)", StringComparison.Ordinal), "the first-round log");
        Assert.Contains("Every device polled once in ", agent.Stdout);
        await agent.TerminateAsync(Ct);
        var code = await agent.WaitForExitAsync(StartTimeout, Ct);

        Assert.True(code == 0, $"exit {code}; stdout:\n{agent.Stdout}\nstderr:\n{agent.Stderr}");
        var polls = Count(agent.Stdout, "Device gw-cpu: poll returned 1 samples");
        var stopped = System.Text.RegularExpressions.Regex.Match(agent.Stdout, @"EdgeTwin agent stopped: (\d+) samples");
        Assert.True(stopped.Success, agent.Stdout);
        Assert.Equal(polls, int.Parse(stopped.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)); // every poll reached the pipeline
        Assert.DoesNotContain("Device gw-cpu is down", agent.Stdout);
    }

    [Fact]
    public async Task Poll_reads_the_real_sensor_once_and_prints_json_with_unit_and_zone()
    {
        var temp = FakeThermal.Create(47250);
        var config = AgentFiles.WriteConfig($$"""
              - { id: gw-cpu, profile: linux-cpu-temperature, address: "cpu:{{temp}}", interval: 30s }
            """);
        await using var agent = AgentProcess.Start("poll", "gw-cpu", "--config", config, "--json");

        Assert.Equal(0, await agent.WaitForExitAsync(StartTimeout, Ct));
        using var doc = System.Text.Json.JsonDocument.Parse(agent.Stdout);
        var metric = Assert.Single(doc.RootElement.GetProperty("metrics").EnumerateArray());
        Assert.Equal("cpu_temperature", metric.GetProperty("metric").GetString());
        Assert.Equal("cpu-thermal", metric.GetProperty("tags").GetProperty("zone").GetString());
        Assert.Equal(47.25, metric.GetProperty("value").GetDouble());
        Assert.Equal("Cel", metric.GetProperty("unit").GetString());
        Assert.Equal("gateway.cpu_temperature", metric.GetProperty("role").GetString());
        Assert.Equal("good", metric.GetProperty("quality").GetString());
    }

    [Fact]
    public async Task Poll_of_the_host_device_prints_the_gateways_clock_disk_memory_and_load()
    {
        var config = AgentFiles.WriteConfig("""
              - { id: gw-host, profile: linux-host, address: host, interval: 30s }
            """);
        var state = Path.GetDirectoryName(config)!; // the outbox file's directory
        await using var agent = AgentProcess.Start("poll", "gw-host", "--config", config, "--json");

        Assert.Equal(0, await agent.WaitForExitAsync(StartTimeout, Ct));
        using var doc = System.Text.Json.JsonDocument.Parse(agent.Stdout);
        var metrics = doc.RootElement.GetProperty("metrics").EnumerateArray().ToList();
        Assert.Equal(12, metrics.Count);
        Assert.All(metrics, m => Assert.Equal("good", m.GetProperty("quality").GetString()));
        System.Text.Json.JsonElement Metric(string name) => metrics.Single(m => m.GetProperty("metric").GetString() == name);
        Assert.True(Metric("clock_synchronized").GetProperty("value").GetDouble() is 0 or 1);
        Assert.Equal("gateway.clock_synchronized", Metric("clock_synchronized").GetProperty("role").GetString());
        Assert.Equal(state, Metric("disk_free_percent").GetProperty("tags").GetProperty("path").GetString());
        Assert.Equal("%", Metric("disk_free_percent").GetProperty("unit").GetString());
        Assert.InRange(Metric("memory_available_percent").GetProperty("value").GetDouble(), 0.1, 100);
        Assert.Equal(Environment.ProcessorCount, Metric("cpus").GetProperty("value").GetDouble()); // no CPU quota on the test machine
    }

    [Fact]
    public async Task Poll_of_a_sensor_that_cannot_be_read_exits_1_naming_it()
    {
        var temp = FakeThermal.Create(47250);
        File.Delete(temp);
        var config = AgentFiles.WriteConfig($$"""
              - { id: gw-cpu, profile: linux-cpu-temperature, address: "cpu:{{temp}}", interval: 30s }
            """);
        await using var agent = AgentProcess.Start("poll", "gw-cpu", "--config", config);

        Assert.Equal(1, await agent.WaitForExitAsync(StartTimeout, Ct));
        // The source's own warning may come before or after (the console logger writes from its own thread).
        Assert.Contains(agent.Stderr.Split('\n'), l => l.StartsWith("edgetwin: device 'gw-cpu': thermal ", StringComparison.Ordinal) && l.Contains("every zone failed", StringComparison.Ordinal));
        Assert.Equal("", agent.Stdout);
    }

    private static int Count(string text, string what) => (text.Length - text.Replace(what, "", StringComparison.Ordinal).Length) / what.Length;

    private static async Task WaitForAsync(AgentProcess agent, Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + StartTimeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out waiting for {what}; stdout:\n{agent.Stdout}\nstderr:\n{agent.Stderr}");
            }

            await Task.Delay(50, Ct);
        }
    }

    [Fact]
    public async Task An_invalid_config_prints_every_problem_and_exits_2_without_notifying()
    {
        var config = AgentFiles.WriteConfig("""
              - { id: pdu-1, profile: no-such-profile, address: "udp:127.0.0.1:16100", credentials: pub, interval: 10q }
              - { id: pdu-2, profile: apc-rpdu2, address: "udp:127.0.0.1:16101", credentials: nobody }
            """);
        await using var agent = AgentProcess.Start("run", "--config", config);

        var code = await agent.WaitForExitAsync(StartTimeout, Ct);

        Assert.Equal(2, code);
        var lines = agent.Stderr.TrimEnd('\n').Split('\n');
        Assert.Equal(4, lines.Length);
        Assert.Equal($"{config}:6:27: devices[0].profile: unknown profile 'no-such-profile' (no no-such-profile.yaml in {AgentFiles.ProfilesDir})", lines[0]);
        Assert.Equal($"{config}:6:104: devices[0].interval: expected a duration like 500ms, 10s, 5m, 1h or 7d, got '10q'", lines[1]);
        Assert.Equal($"{config}:7:83: devices[1].credentials: unknown credentials 'nobody' (defined: ops, pub)", lines[2]);
        Assert.Equal($"edgetwin: 3 problems in {config}; not starting", lines[3]);
        Assert.Equal("", agent.Stdout);
    }

    [Fact]
    public async Task A_config_cut_off_inside_a_flow_collection_stops_run_with_exit_2_and_check_with_1_naming_file_line_col()
    {
        // Regression_a_truncated_config_crashed_check_with_a_stack_trace (EdgeTwin.Core.Tests) through the real binary:
        // before, both printed "Unhandled exception: System.InvalidOperationException" and exited 1 (a restart loop).
        var dir = Directory.CreateTempSubdirectory("edgetwin-cut-config-").FullName;
        try
        {
            var config = Path.Combine(dir, "bad2.yaml");
            await File.WriteAllTextAsync(config, "site: {id: x\ndevices: [\n", Ct);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
            }

            var expected = $"{config}:3:1: (document): YAML syntax error: the file ends inside the flow mapping '{{' opened at line 1, column 7 (a '}}' is missing; was the file cut short?)";

            var run = await AgentProcess.RunCliAsync("run", "--config", config);
            Assert.True(run.Code == 2, $"run exit {run.Code}; stdout:\n{run.Out}\nstderr:\n{run.Err}");
            Assert.Equal([expected, $"edgetwin: 1 problem in {config}; not starting"], run.Err.TrimEnd('\n').Split('\n'));

            var check = await AgentProcess.RunCliAsync("check", "--config", config);
            Assert.True(check.Code == 1, $"check exit {check.Code}; stdout:\n{check.Out}\nstderr:\n{check.Err}");
            Assert.Contains(expected, check.Out, StringComparison.Ordinal);
            Assert.DoesNotContain("Unhandled exception", check.Out + check.Err, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Devices_whose_sources_cannot_be_built_exit_2_naming_each()
    {
        var config = AgentFiles.WriteConfig("""
              - { id: gw-cpu, profile: linux-cpu-temperature, address: "cpu:/tmp/not-a-zone/temp", interval: 5s }
              - { id: gw-cpu2, profile: linux-cpu-temperature, address: "cpu:/tmp/thermal_zone0/current", interval: 5s }
            """);
        await using var agent = AgentProcess.Start("run", "--config", config);

        var code = await agent.WaitForExitAsync(StartTimeout, Ct);

        Assert.Equal(2, code);
        var lines = agent.Stderr.TrimEnd('\n').Split('\n');
        Assert.Equal(3, lines.Length);
        Assert.StartsWith("device 'gw-cpu': 'cpu:/tmp/not-a-zone/temp' does not name a thermal zone's temp file", lines[0]);
        Assert.StartsWith("device 'gw-cpu2': 'cpu:/tmp/thermal_zone0/current' does not name a thermal zone's temp file", lines[1]);
        Assert.Equal("edgetwin: 2 devices cannot be read with this config; not starting", lines[2]);
    }
}
