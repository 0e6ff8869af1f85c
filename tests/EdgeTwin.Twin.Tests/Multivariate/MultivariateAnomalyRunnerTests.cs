using System.Globalization;
using System.Text.Json.Nodes;
using EdgeTwin.Twin.Models;
using EdgeTwin.Twin.Multivariate;
using EdgeTwin.Twin.Tests.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Xunit;

namespace EdgeTwin.Twin.Tests.Multivariate;

public sealed class MultivariateAnomalyRunnerTests
{
    private const string Model = "mv-machine";

    /// <summary>Copies the committed multivariate model into a scratch directory with a manifest holding only it.</summary>
    private static JsonObject Install(ModelFiles files, Action<JsonObject>? edit = null, byte[]? bytes = null, string fileName = "mv-machine.onnx")
    {
        var manifest = ModelFiles.RepoManifest();
        var entry = manifest["models"]!.AsArray().Single(m => (string?)m!["name"] == Model)!.AsObject().DeepClone().AsObject();
        File.WriteAllBytes(Path.Combine(files.Directory, fileName), bytes ?? File.ReadAllBytes(Path.Combine(ModelFiles.RepoModels, "mv-machine.onnx")));
        entry["file"] = fileName;
        edit?.Invoke(entry);
        manifest["models"] = new JsonArray(entry);
        files.WriteManifest(manifest);
        return manifest;
    }

    private static void Push(MultivariateWindow w, MachineRow r) => w.Push([r.TorquePct, r.MotorTemperatureC, r.InverterPct]);

    /// <summary>Scores every machine of a run after each poll (all machines in one batch); returns (row, score) per machine.</summary>
    private static Dictionary<string, List<(MachineRow Row, double Score)>> ScoreRun(MultivariateAnomalyRunner runner, List<MachineRow> rows)
    {
        var machines = rows.Select(r => r.Machine).Distinct().ToArray();
        var windows = machines.ToDictionary(m => m, _ => new MultivariateWindow(16, 3));
        var result = machines.ToDictionary(m => m, _ => new List<(MachineRow, double)>());
        var batch = new MultivariateWindow[machines.Length];
        var scores = new double[machines.Length];
        var errors = new double[machines.Length];
        foreach (var step in rows.Chunk(machines.Length))
        {
            var n = 0;
            foreach (var r in step)
            {
                Push(windows[r.Machine], r);
                if (windows[r.Machine].IsFull)
                {
                    batch[n++] = windows[r.Machine];
                }
            }

            if (n == 0)
            {
                continue;
            }

            Assert.True(runner.TryScore(batch.AsSpan(0, n), scores, errors));
            for (var i = 0; i < n; i++)
            {
                var r = step[i];
                result[r.Machine].Add((r, scores[i]));
            }
        }

        return result;
    }

    /// <summary>
    /// On simulator runs the model never saw (seeds 101–108 with a bearing fault on one machine, 201–204 healthy), the
    /// faulty machine's score crosses 0.5 soon after the fault and healthy machines rarely do.
    /// </summary>
    [Fact]
    public void Separates_a_bearing_fault_from_normal_operation_on_held_out_runs()
    {
        using var files = new ModelFiles();
        Install(files);
        using var catalog = new ModelCatalog(files.Directory);
        catalog.Reload();
        using var runner = new MultivariateAnomalyRunner(catalog, Model);
        var delays = new List<double>();
        var missed = 0;
        long healthyWindows = 0, healthyAlarms = 0, healthyEpisodes = 0;
        var faultRuns = Enumerable.Range(101, 8).Select(s => (Seed: s, Fault: true));
        var healthyRuns = Enumerable.Range(201, 4).Select(s => (Seed: s, Fault: false));
        foreach (var (seed, fault) in faultRuns.Concat(healthyRuns))
        {
            var rows = MachineGroupData.Run(seed, TimeSpan.FromHours(12), fault);
            foreach (var (_, scored) in ScoreRun(runner, rows))
            {
                var wasAlarm = false;
                foreach (var (row, score) in scored.Where(s => !s.Row.Faulty))
                {
                    healthyWindows++;
                    var alarm = score >= 0.5;
                    healthyAlarms += alarm ? 1 : 0;
                    healthyEpisodes += alarm && !wasAlarm ? 1 : 0;
                    wasAlarm = alarm;
                }

                var faulty = scored.Where(s => s.Row.Faulty).ToList();
                if (faulty.Count > 0)
                {
                    var hit = faulty.FirstOrDefault(s => s.Score >= 0.5);
                    if (hit.Score >= 0.5)
                    {
                        delays.Add((hit.Row.TimeS - faulty[0].Row.TimeS) / 60);
                    }
                    else
                    {
                        missed++;
                        TestContext.Current.TestOutputHelper?.WriteLine(string.Create(CultureInfo.InvariantCulture, $"missed: seed {seed}, wear {faulty[0].Row.Wear:F2}, max score {faulty.Max(f => f.Score):F3}"));
                    }
                }
            }
        }

        var hours = healthyWindows * 0.5 / 60;
        var line = string.Create(CultureInfo.InvariantCulture,
            $"detected {delays.Count}/{delays.Count + missed} bearing faults, delay median {Median(delays):F1} min (max {(delays.Count > 0 ? delays.Max() : 0):F1}); healthy: {healthyAlarms}/{healthyWindows} windows ≥ 0.5 ({100.0 * healthyAlarms / healthyWindows:F3} %), {healthyEpisodes} episodes in {hours:F0} machine-hours");
        TestContext.Current.TestOutputHelper?.WriteLine(line);
        Console.WriteLine(line);
        Assert.True(missed <= 1, line);
        Assert.True(Median(delays) <= 30, line);
        Assert.True(healthyAlarms <= healthyWindows / 200, line);
    }

    private static double Median(List<double> v) => v.Count == 0 ? double.NaN : v.Order().ElementAt(v.Count / 2);

    [Fact]
    public async Task Hot_reload_serves_the_new_version_without_a_new_runner()
    {
        using var files = new ModelFiles();
        Install(files);
        using var catalog = new ModelCatalog(files.Directory);
        catalog.Reload();
        using var watcher = new ModelDirectoryWatcher(catalog, TimeSpan.FromMilliseconds(200));
        using var runner = new MultivariateAnomalyRunner(catalog, Model);
        var rows = MachineGroupData.Run(7, TimeSpan.FromHours(1), withFault: false).Where(r => r.Machine == "m1").Take(16).ToList();
        var window = new MultivariateWindow(16, 3);
        rows.ForEach(r => Push(window, r));
        var scores = new double[1];
        var errors = new double[1];
        Assert.True(runner.TryScore([window], scores, errors));
        var before = scores[0];
        Assert.Equal("1.0.0", runner.Entry!.Version);

        // A recalibrated version (threshold halved) ships under a new file name, then the manifest by rename.
        var threshold = runner.Spec!.Threshold;
        Install(files, e =>
        {
            e["version"] = "1.0.1";
            e["outputs"]![0]!["calibration"]!["threshold"] = threshold / 2;
        }, fileName: "mv-machine-101.onnx");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (catalog.Get(Model)?.Entry.Version != "1.0.1")
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for 1.0.1 to serve");
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        Assert.True(runner.TryScore([window], scores, errors));
        Assert.Equal("1.0.1", runner.Entry!.Version);
        Assert.Equal(threshold / 2, runner.Spec!.Threshold);
        Assert.Equal(1 - Math.Pow(2, -errors[0] / (threshold / 2)), scores[0], 9);
        Assert.True(scores[0] > before || before == 0);
    }

    [Fact]
    public void A_truncated_model_falls_back_with_a_clear_log_line_and_recovers_when_fixed()
    {
        using var files = new ModelFiles();
        var good = File.ReadAllBytes(Path.Combine(ModelFiles.RepoModels, "mv-machine.onnx"));
        var truncated = good[..(good.Length / 2)];
        Install(files, e => e["sha256"] = ModelFiles.Sha256(truncated), truncated);
        using var catalog = new ModelCatalog(files.Directory);
        catalog.Reload();
        Assert.Equal(ModelState.Unavailable, catalog.Status.Single().State);
        var logger = new FakeLogger();
        using var runner = new MultivariateAnomalyRunner(catalog, Model, logger: logger);
        var window = new MultivariateWindow(16, 3);
        MachineGroupData.Run(7, TimeSpan.FromHours(1), withFault: false).Where(r => r.Machine == "m2").Take(16).ToList().ForEach(r => Push(window, r));
        var scores = new double[1];
        var errors = new double[1];
        Assert.False(runner.TryScore([window], scores, errors));
        Assert.False(runner.TryScore([window], scores, errors));
        var warning = Assert.Single(logger.Collector.GetSnapshot(), r => r.Level == LogLevel.Warning);
        Assert.Contains("mv-machine unavailable, falling back to the streaming anomaly detector", warning.Message, StringComparison.Ordinal);
        Assert.Contains("not a loadable ONNX model", warning.Message, StringComparison.Ordinal);

        // The fixed model deployed: scoring resumes and says so.
        Install(files);
        catalog.Reload();
        Assert.True(runner.TryScore([window], scores, errors));
        Assert.Contains(logger.Collector.GetSnapshot(), r => r.Level == LogLevel.Information && r.Message.Contains("serving again", StringComparison.Ordinal));
        Assert.InRange(scores[0], 0.0, 1.0);
    }

    [Fact]
    public void A_missing_model_or_calibration_falls_back()
    {
        using var files = new ModelFiles();
        Install(files, e => ((JsonObject)e["outputs"]![0]!).Remove("calibration"));
        using var catalog = new ModelCatalog(files.Directory);
        catalog.Reload();
        var logger = new FakeLogger();
        using var runner = new MultivariateAnomalyRunner(catalog, Model, logger: logger);
        var window = new MultivariateWindow(16, 3);
        for (var i = 0; i < 16; i++)
        {
            window.Push([70.0, 47.0, 56.0]);
        }

        Assert.False(runner.TryScore([window], new double[1], new double[1]));
        Assert.Contains("calibration.threshold", Assert.Single(logger.Collector.GetSnapshot()).Message, StringComparison.Ordinal);

        using var other = new MultivariateAnomalyRunner(catalog, "no-such-model", logger: logger);
        Assert.False(other.TryScore([window], new double[1], new double[1]));
        Assert.Contains("no model 'no-such-model'", logger.Collector.LatestRecord.Message, StringComparison.Ordinal);
    }
}
