using System.Collections.Concurrent;
using EdgeTwin.Agent.Cli;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Alerting;
using EdgeTwin.Alerting.Control;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Core.Config;
using EdgeTwin.IntegrationTests.Agent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Alerting;

/// <summary>
/// Security review F5/F3 through the real command line: <c>edgetwin alerts silence</c> beyond <c>alerts.max_silence</c>,
/// and <c>edgetwin check</c> / the agent's start on an alert MQTT sink that sends its password in clear.
/// </summary>
public sealed class AlertsSecurityCliTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Regression_alerts_silence_for_a_year_was_accepted()
    {
        await using var agent = await InletHotAgent.StartAsync("edgetwin-alerts-silence-");
        var (service, socket) = (agent.Service, agent.Socket);

        var (exit, output, error) = await InProcessCli.RunAsync("alerts", "silence", "inlet-hot", "--for", "365d", "--socket", socket);
        Assert.Equal(1, exit);
        Assert.Equal("", output);
        Assert.Equal("edgetwin alerts: silence of 365d refused: longer than alerts.max_silence (24h)", error.Trim());
        Assert.Empty(service.Manager.Silences());

        (exit, output, error) = await InProcessCli.RunAsync("alerts", "silence", "inlet-hot", "--for", "2h", "--socket", socket);
        Assert.True(exit == 0, error);
        Assert.StartsWith("rule inlet-hot silenced until ", output, StringComparison.Ordinal);
        // Recorded under the user the kernel reports for the CLI's connection (the CLI no longer sends a name).
        Assert.EndsWith(" by " + Environment.UserName, service.Manager.History(5)[0].Change, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_alerts_silence_for_0s_said_silenced_until_now_when_it_lifted_the_silence()
    {
        await using var agent = await InletHotAgent.StartAsync("edgetwin-alerts-unsilence-");
        var (service, socket) = (agent.Service, agent.Socket);
        var (exit, _, error) = await InProcessCli.RunAsync("alerts", "silence", "inlet-hot", "--for", "2h", "--socket", socket);
        Assert.True(exit == 0, error);
        Assert.NotEmpty(service.Manager.Silences());

        (exit, var output, error) = await InProcessCli.RunAsync("alerts", "silence", "inlet-hot", "--for", "0s", "--socket", socket);

        Assert.True(exit == 0, error);
        Assert.Equal("rule inlet-hot silence lifted: its notifications go out again", output.Trim());
        Assert.Empty(service.Manager.Silences());
    }

    [Fact]
    public async Task Regression_check_and_the_start_said_nothing_about_an_alert_mqtt_sink_sending_its_password_in_clear()
    {
        var dir = AgentFiles.TempDir("edgetwin-alerts-plaintext-").FullName;
        var secret = Path.Combine(dir, "mqtt.pw");
        await File.WriteAllTextAsync(secret, "s3cret\n", Ct);
        var path = Path.Combine(dir, "site.yaml");
        await File.WriteAllTextAsync(path, $"""
            site:
              id: dc1
              gateway_id: gw-test
            profiles_dir: {AgentFiles.ProfilesDir}
            devices:
              - {"{"} id: pdu-a, profile: apc-rpdu2, address: "udp:127.0.0.1:9", credentials: pub, interval: 10s, timeout: 200ms {"}"}
            credentials:
              pub: {"{"} version: 2c, community: public {"}"}
            outbox: {"{"} path: {Path.Combine(dir, "outbox.db")} {"}"}
            alerts:
              state_directory: {dir}
              sinks:
                - name: noc-broker
                  type: mqtt
                  host: 10.0.0.5
                  username: gw-alerts
                  password_file: {secret}
            """, Ct);
        // Modes as the role installs them: a world-readable file would add its own warning to the one asserted here.
        foreach (var file in new[] { secret, path })
        {
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
            }
        }

        var warning = $"{path}:17:22: warning: alerts.sinks[0].password_file: alert sink 'noc-broker' sends its username and password to 10.0.0.5:1883 without TLS, readable by anyone on the network path; add tls: (port 8883) or use a broker on this machine";

        var (exit, output, error) = await InProcessCli.RunAsync("check", "--config", path);
        Assert.True(exit == 0, $"exit {exit}: {error}\n{output}");
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal([warning], lines[..^1]);
        Assert.EndsWith("; 1 warning", lines[^1], StringComparison.Ordinal);

        // The start logs it too.
        var loaded = AgentConfigFile.LoadSite(path);
        Assert.True(loaded.IsValid, string.Join("\n", loaded.Problems));
        var logs = await AgentStartLogs.CaptureAsync(loaded.Config!);

        Assert.Contains((LogLevel.Warning, "Config: " + warning), logs);
    }

    /// <summary>The alerting service with one rule, <c>inlet-hot</c>, and its control socket, in a temp directory.</summary>
    private sealed class InletHotAgent : IAsyncDisposable
    {
        private InletHotAgent(AlertingService service, AlertControlServer server, string socket) => (Service, Server, Socket) = (service, server, socket);

        public AlertingService Service { get; }

        public AlertControlServer Server { get; }

        public string Socket { get; }

        public static async Task<InletHotAgent> StartAsync(string prefix)
        {
            var dir = AgentFiles.TempDir(prefix).FullName;
            var diagnostics = new ConfigDiagnostics();
            var root = (ConfigMapping)YamlTree.Parse("""
                alerts:
                  rules:
                    - { name: inlet-hot, type: threshold, match: { metric: inlet }, above: 30, severity: critical }
                """, "site.yaml", diagnostics)!;
            var config = AlertsConfig.Read(new ConfigReader((ConfigMapping)root["alerts"]!, diagnostics), dir);
            Assert.Empty(diagnostics.Sorted());
            var service = new AlertingService(config, new SiteIndex(null), new Core.Samples.SeriesRegistry(), null, new AlertingOptions
            {
                StorePath = Path.Combine(dir, "alerts.db"),
                RunConnectivityProbe = false,
            });
            await service.StartAsync(Ct);
            var socket = Path.Combine(dir, "alerts.sock");
            var server = new AlertControlServer(service, socket);
            server.Start();
            return new InletHotAgent(service, server, socket);
        }

        public async ValueTask DisposeAsync()
        {
            await Server.DisposeAsync();
            await Service.DisposeAsync();
        }
    }
}
