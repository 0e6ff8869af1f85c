using EdgeTwin.Agent.Twin.Models;
using EdgeTwin.Core.Config;
using EdgeTwin.IntegrationTests.Deployment;
using EdgeTwin.Twin.Models;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace EdgeTwin.IntegrationTests.Twin;

/// <summary>The <c>models:</c> section and the agent's model service.</summary>
public sealed class ModelsConfigTests
{
    [Fact]
    public void Section_problems_are_reported_with_file_line_and_key()
    {
        const string yaml = """
            site: { id: s1, gateway_id: g1 }
            devices: []
            models:
              directory: /opt/models
              maintenance:
                threshold: 1.5
                machines:
                  m1: { downtime_hours: 6, cost_per_hours: 10 }
              anomaly: { threshold: 0.9 }
              dirctory: x
            """;
        var result = SiteConfigLoader.Parse(yaml, "site.yaml", new SiteConfigLoadOptions { SectionValidators = [new ModelsSectionValidator()] });
        var problems = result.Problems.Select(p => p.ToString()).ToList();
        Assert.Contains(problems, p => p.StartsWith("site.yaml:6:", StringComparison.Ordinal) && p.Contains("models.maintenance.threshold", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("models.maintenance.machines.m1.cost_per_hour: missing required key", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("unknown key 'cost_per_hours'", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("unknown key 'dirctory' (did you mean 'directory'?)", StringComparison.Ordinal));
        Assert.DoesNotContain(problems, p => p.Contains("anomaly", StringComparison.Ordinal));
    }

    [Fact]
    public void Valid_section_reads_directory_relative_to_the_config_and_machine_figures()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "site.yaml");
        File.WriteAllText(path, """
            site: { id: s1, gateway_id: g1 }
            devices: []
            models:
              directory: models
              maintenance:
                horizon: 24h
                machines:
                  m1: { downtime_hours: 6, cost_per_hour: 1200, action: replace bearing }
            """);
        var result = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { SectionValidators = [new ModelsSectionValidator()] });
        Assert.True(result.IsValid, string.Join(Environment.NewLine, result.Problems));
        var models = ModelsConfig.From(result.Config!);
        Assert.Equal(Path.Combine(dir.Path, "models"), models.Directory);
        Assert.Equal(0.7, models.Threshold);
        Assert.Equal(TimeSpan.FromHours(24), models.Horizon);
        Assert.Equal(new MachineCostFigures(6, 1200, "replace bearing"), models.Machines["m1"]);
    }

    [Fact]
    public async Task AddModels_loads_the_directory_at_start_and_stops_cleanly()
    {
        using var dir = new TempDir();
        var repoModels = Path.Combine(Tool.RepoRoot(), "models");
        File.Copy(Path.Combine(repoModels, "rul-cmapss.onnx"), Path.Combine(dir.Path, "rul-cmapss.onnx"));
        File.Copy(Path.Combine(repoModels, "manifest.json"), Path.Combine(dir.Path, "manifest.json"));
        var path = Path.Combine(dir.Path, "site.yaml");
        File.WriteAllText(path, $"site: {{ id: s1, gateway_id: g1 }}\ndevices: []\nmodels: {{ directory: {dir.Path} }}\n");
        var config = SiteConfigLoader.Load(path).Config!;

        var services = new ServiceCollection();
        services.AddSingleton(config);
        services.AddLogging();
        services.AddModels();
        await using var provider = services.BuildServiceProvider();
        var hosted = provider.GetServices<IHostedService>().OfType<ModelsService>().Single();
        await hosted.StartAsync(TestContext.Current.CancellationToken);
        var catalog = provider.GetRequiredService<ModelCatalog>();
        Assert.Equal(ModelState.Available, catalog.Status.Single(s => s.Name == "rul-cmapss").State);
        await hosted.StopAsync(TestContext.Current.CancellationToken);
    }
}
