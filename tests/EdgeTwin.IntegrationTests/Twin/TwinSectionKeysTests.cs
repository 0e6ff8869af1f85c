using EdgeTwin.IntegrationTests.Deployment;

namespace EdgeTwin.IntegrationTests.Twin;

/// <summary>
/// Keys of the twin models that nothing reads: <c>edgetwin check</c> and <c>edgetwin run</c> must refuse them (exit 1 for check, 2 for run,
/// naming file, line and key) instead of running the detector on settings the operator never gave it.
/// </summary>
public sealed class TwinSectionKeysTests
{
    private static Task<(int Exit, string Output, string Error)> Run(params string[] args) => InProcessCli.RunAsync(args);

    private static string Site(TempDir dir, string sections)
    {
        var path = Path.Combine(dir.Path, "site.yaml");
        File.WriteAllText(path, $$"""
            site: { id: s1, gateway_id: g1 }
            devices: []
            outbox: { path: {{Path.Combine(dir.Path, "outbox.db")}} }
            {{sections}}
            """);
        return path;
    }

    /// <summary>
    /// The anomaly and multivariate validators share <c>twin:</c> and each read only its own key, so a typo
    /// (<c>twin.anomali</c>) or a section put under the wrong parent (<c>twin.thermal_twin</c>) passed check and the
    /// running agent used the detector's defaults.
    /// </summary>
    [Fact]
    public async Task Regression_a_misspelt_or_misplaced_key_under_twin_passed_check_and_the_agent_ignored_it()
    {
        using var dir = new TempDir();
        var site = Site(dir, """
            twin:
              anomaly: { threshold: 0.5 }
              anomali: { threshold: 0.9 }
              thermal_twin: { enabled: false }
            """);

        var (exit, output, error) = await Run("check", "--config", site);
        Assert.True(exit == 1, $"check: exit {exit}: {output}{error}");
        var text = output + error;
        Assert.Contains("site.yaml:6:3: twin.anomali: unknown key 'anomali' (did you mean 'anomaly'?)", text, StringComparison.Ordinal);
        Assert.Contains("site.yaml:7:3: twin.thermal_twin: unknown key 'thermal_twin' (known keys: anomaly, multivariate)", text, StringComparison.Ordinal);

        // The agent's start refuses the same config before it opens anything (no outbox file).
        (exit, output, error) = await Run("run", "--config", site);
        Assert.True(exit == 2, $"run: exit {exit}: {output}{error}");
        Assert.Contains("twin.anomali: unknown key 'anomali'", output + error, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dir.Path, "outbox.db")));

        // Both owners' keys together are still fine.
        var good = Site(dir, """
            twin:
              anomaly: { threshold: 0.5 }
              multivariate: { enabled: false }
            """);
        (exit, output, error) = await Run("check", "--config", good);
        Assert.True(exit == 0, $"check of the valid twin section: exit {exit}: {output}{error}");
    }

    /// <summary>
    /// The models README said <c>models.anomaly</c> "belongs to the streaming detector" and the models validator
    /// accepted it, but the detector reads <c>twin.anomaly</c>: check said OK and the agent ran the detector on its defaults.
    /// </summary>
    [Fact]
    public async Task Regression_models_anomaly_passed_check_and_the_agent_ran_the_detector_on_its_defaults()
    {
        using var dir = new TempDir();
        var site = Site(dir, """
            models:
              anomaly: { threshold: 0.9 }
            """);

        var (exit, output, error) = await Run("check", "--config", site);
        Assert.True(exit == 1, $"check: exit {exit}: {output}{error}");
        Assert.Contains("site.yaml:5:3: models.anomaly: the streaming anomaly detector is configured under twin.anomaly", output + error, StringComparison.Ordinal);

        (exit, output, error) = await Run("run", "--config", site);
        Assert.True(exit == 2, $"run: exit {exit}: {output}{error}");
        Assert.Contains("models.anomaly: the streaming anomaly detector is configured under twin.anomaly", output + error, StringComparison.Ordinal);
    }
}
