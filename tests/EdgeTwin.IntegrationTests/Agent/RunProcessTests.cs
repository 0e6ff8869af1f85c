namespace EdgeTwin.IntegrationTests.Agent;

/// <summary><c>edgetwin run</c> as systemd runs it: readiness on NOTIFY_SOCKET, SIGTERM → clean exit 0, bad config → 2.</summary>
public sealed class RunProcessTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

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
    public async Task A_device_this_build_cannot_read_exits_2_naming_it()
    {
        var config = AgentFiles.WriteConfig("""
              - { id: meter-1, profile: eastron-sdm630, address: "tcp:127.0.0.1:15020" }
            """);
        await using var agent = AgentProcess.Start("run", "--config", config);

        var code = await agent.WaitForExitAsync(StartTimeout, Ct);

        Assert.Equal(2, code);
        Assert.Contains("device 'meter-1': no source factory for protocol 'modbus' (profile 'eastron-sdm630')", agent.Stderr);
        Assert.EndsWith("edgetwin: 1 device cannot be read with this config; not starting\n", agent.Stderr);
    }
}
