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
}
