using System.Text.Json;
using EdgeTwin.Agent.Bench;
using EdgeTwin.IntegrationTests.Agent;

namespace EdgeTwin.IntegrationTests.Bench;

public sealed class LoadBenchTests
{
    [Fact]
    public async Task Tiny_load_gets_samples_from_every_device_and_reports_every_figure()
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromMinutes(2));

        var result = await LoadBench.RunAsync(
            new LoadBenchOptions(SnmpDevices: 5, ModbusDevices: 2, Interval: TimeSpan.FromSeconds(1), Duration: TimeSpan.FromSeconds(5), AgentFiles.ProfilesDir),
            timeout.Token);

        // Every simulated device answered the real agent; no speed is asserted (shared CI machine).
        Assert.Equal(5, result.SnmpDevices);
        Assert.Equal(2, result.ModbusDevices);
        Assert.Empty(result.DevicesWithoutSamples);
        Assert.Equal(7, result.DevicesWithSamples);
        Assert.True(result.Samples > 0, "no samples counted in the measured window");
        Assert.True(result.SamplesPerSecond > 0);
        Assert.True(result.CpuMicrosecondsPerSample > 0);
        Assert.True(result.PeakRssBytes > 1024 * 1024, $"peak RSS {result.PeakRssBytes} B is not plausible");
        Assert.True(result.Polls >= 7, $"only {result.Polls} poll lateness measurements");
        Assert.False(double.IsNaN(result.PollLatenessP99Ms));
        Assert.True(result.PollLatenessP99Ms >= result.PollLatenessP50Ms);

        var text = result.ToText();
        Assert.Contains("samples per second:", text, StringComparison.Ordinal);
        Assert.Contains("CPU per sample:", text, StringComparison.Ordinal);
        Assert.Contains("peak RSS:", text, StringComparison.Ordinal);
        Assert.Contains("p50 / p99 / max:", text, StringComparison.Ordinal);
        Assert.Contains("7/7 devices delivered", text, StringComparison.Ordinal);

        using var json = JsonDocument.Parse(result.ToJson());
        Assert.Equal(result.Samples, json.RootElement.GetProperty("samples").GetInt64());
        Assert.True(json.RootElement.GetProperty("poll_lateness_p99_ms").GetDouble() >= 0);
    }

    [Fact]
    public void Percentile_is_nearest_rank()
    {
        double[] sorted = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        Assert.Equal(10, LoadBench.Percentile(sorted, 0.99));
        Assert.Equal(5, LoadBench.Percentile(sorted, 0.50));
        Assert.True(double.IsNaN(LoadBench.Percentile([], 0.99)));
    }
}
