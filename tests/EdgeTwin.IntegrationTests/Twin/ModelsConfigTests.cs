using EdgeTwin.Agent.Twin.Models;
using EdgeTwin.Agent.Twin.Multivariate;
using EdgeTwin.Core.Config;
using EdgeTwin.IntegrationTests.Deployment;
using EdgeTwin.Twin.Models;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;

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
        Assert.Contains(problems, p => p.StartsWith("site.yaml:9:", StringComparison.Ordinal) && p.Contains("models.anomaly: the streaming anomaly detector is configured under twin.anomaly", StringComparison.Ordinal));
    }

    /// <summary>
    /// Only the agent's start refused a watched machine the site does not have: <c>edgetwin check</c> passed the typo. A
    /// cooling unit's id is accepted: it watches the unit's blower.
    /// </summary>
    [Fact]
    public void Regression_check_passed_a_maintenance_machine_the_site_does_not_have()
    {
        const string yaml = """
            site:
              id: s1
              gateway_id: g1
              rooms:
                - id: room1
                  rows:
                    - id: A
                      racks:
                        - { id: A01, position: 1, power_budget_kw: 8 }
              cooling_units:
                - { id: crac1, room: room1, capacity_kw: 30, serves: [A01] }
            devices: []
            models:
              maintenance:
                machines:
                  crac1: { downtime_hours: 4, cost_per_hour: 900 }
                  crac9: { downtime_hours: 4, cost_per_hour: 900 }
            """;
        var result = SiteConfigLoader.Parse(yaml, "site.yaml", new SiteConfigLoadOptions { SectionValidators = [new ModelsSectionValidator()] });
        var problem = Assert.Single(result.Problems).ToString();
        Assert.Equal("site.yaml:17:7: models.maintenance.machines.crac9: 'crac9' is not a machine or cooling unit of the site (machines: none; cooling units: crac1)", problem);
    }

    /// <summary>
    /// <c>horizon: 7d</c> (to plan next week's work) passed check, and with the 120 h bearing model every healthy machine
    /// then read a 100 % failure probability within it. check now reads the manifest of models.directory (relative to the
    /// config file, as the agent does) and names the longest horizon the model can answer.
    /// </summary>
    [Fact]
    public void Regression_check_passed_a_horizon_the_maintenance_model_cannot_see_so_far()
    {
        using var dir = new TempDir();
        var models = Directory.CreateDirectory(Path.Combine(dir.Path, "models")).FullName;
        File.Copy(Path.Combine(Tool.RepoRoot(), "models", "manifest.json"), Path.Combine(models, "manifest.json"));
        var path = Path.Combine(dir.Path, "site.yaml");
        string Yaml(string horizon) => $$"""
            site: { id: s1, gateway_id: g1 }
            devices: []
            models:
              directory: models
              maintenance:
                horizon: {{horizon}}
                machines:
                  m1: { downtime_hours: 6, cost_per_hour: 1200 }
            """;
        File.WriteAllText(path, Yaml("7d"));
        var result = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { SectionValidators = [new ModelsSectionValidator()] });
        var problem = Assert.Single(result.Problems).ToString();
        Assert.StartsWith(path + ":6:", problem, StringComparison.Ordinal);
        Assert.Contains("models.maintenance.horizon: 168 h is longer than model 'bearing-rul' can answer: its RUL is capped at 120 h", problem, StringComparison.Ordinal);
        Assert.EndsWith("at most 116 h", problem, StringComparison.Ordinal);

        File.WriteAllText(path, Yaml("114h"));
        result = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { SectionValidators = [new ModelsSectionValidator()] });
        Assert.True(result.IsValid, string.Join(Environment.NewLine, result.Problems));
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

    /// <summary>A prediction's cost went to the CMMS as a bare number: the config had no place to say its currency.</summary>
    [Fact]
    public void Regression_a_prediction_cost_had_no_currency()
    {
        const string yaml = """
            site: { id: s1, gateway_id: g1 }
            devices: []
            models:
              maintenance:
                currency: EUR
            """;
        var result = SiteConfigLoader.Parse(yaml, "site.yaml", new SiteConfigLoadOptions { SectionValidators = [new ModelsSectionValidator()] });
        Assert.True(result.IsValid, string.Join(Environment.NewLine, result.Problems));
        Assert.Equal("EUR", ModelsConfig.From(result.Config!).Currency);

        var bad = SiteConfigLoader.Parse(yaml.Replace("EUR", "euro", StringComparison.Ordinal), "site.yaml", new SiteConfigLoadOptions { SectionValidators = [new ModelsSectionValidator()] });
        Assert.Contains(bad.Problems.Select(p => p.ToString()), p => p.StartsWith("site.yaml:5:", StringComparison.Ordinal) && p.Contains("models.maintenance.currency: 'euro' is not an ISO 4217 currency code", StringComparison.Ordinal));
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

    [Fact]
    public async Task Regression_an_empty_models_directory_with_maintenance_and_multivariate_configured_said_only_information()
    {
        using var empty = new TempDir();
        var figures = new Dictionary<string, MachineCostFigures>(StringComparer.Ordinal) { ["m1"] = new(6, 1200, "replace drive-end bearing") };
        var multivariate = new MultivariateConfig(true, 0.5, 10, 64, [new MultivariateGroup("m1", "mv-machine", TimeSpan.FromSeconds(30), ["drive1/motor_torque"])]);
        var logs = new FakeLogCollector();
        using var catalog = new ModelCatalog(empty.Path);
        using var service = new ModelsService(catalog, null, new ModelsConfig(empty.Path, 0.7, TimeSpan.FromHours(48), figures), multivariate, new FakeLogger<ModelsService>(logs));

        await service.StartAsync(TestContext.Current.CancellationToken);
        await service.StopAsync(TestContext.Current.CancellationToken);

        var warnings = logs.GetSnapshot().Where(r => r.Level == LogLevel.Warning).Select(r => r.Message).ToList();
        Assert.Equal(2, warnings.Count);
        Assert.StartsWith($"Model bearing-rul is needed by models.maintenance (1 machines) but does not serve from {empty.Path}: {Path.Combine(empty.Path, "manifest.json")}: no manifest (no models deployed)", warnings[0], StringComparison.Ordinal);
        Assert.StartsWith("Model mv-machine is needed by twin.multivariate group m1 but does not serve", warnings[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task No_warning_when_the_needed_models_serve()
    {
        var figures = new Dictionary<string, MachineCostFigures>(StringComparer.Ordinal) { ["m1"] = new(6, 1200, "replace drive-end bearing") };
        var logs = new FakeLogCollector();
        using var catalog = new ModelCatalog(Path.Combine(Tool.RepoRoot(), "models"));
        using var service = new ModelsService(catalog, null, new ModelsConfig(catalog.Directory, 0.7, TimeSpan.FromHours(48), figures), null, new FakeLogger<ModelsService>(logs));

        await service.StartAsync(TestContext.Current.CancellationToken);
        await service.StopAsync(TestContext.Current.CancellationToken);

        Assert.Equal(ModelState.Available, catalog.Status.Single(s => s.Name == "bearing-rul").State);
        Assert.DoesNotContain(logs.GetSnapshot(), r => r.Level >= LogLevel.Warning);
    }

    /// <summary>
    /// Regression (central-twin audit): the catalog loaded in StartAsync, while the MQTT uplink was already connecting
    /// from its own StartAsync: the first birth after every restart listed no models, the right one followed a moment
    /// later. The host runs every StartingAsync before any StartAsync, so the catalog now loads there, once.
    /// </summary>
    [Fact]
    public async Task Regression_the_first_birth_listed_no_models_because_the_catalog_loaded_after_the_uplink_started()
    {
        using var catalog = new ModelCatalog(Path.Combine(Tool.RepoRoot(), "models"));
        using var service = new ModelsService(catalog);
        Assert.IsAssignableFrom<Microsoft.Extensions.Hosting.IHostedLifecycleService>(service);

        await service.StartingAsync(TestContext.Current.CancellationToken);
        Assert.Equal(1, catalog.Generation);
        Assert.Equal(ModelState.Available, catalog.Status.Single(s => s.Name == "rul-cmapss").State);

        await service.StartAsync(TestContext.Current.CancellationToken);
        Assert.Equal(1, catalog.Generation); // not loaded a second time
        await service.StopAsync(TestContext.Current.CancellationToken);
    }
}
