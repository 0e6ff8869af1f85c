using System.Text.Json;
using EdgeTwin.Core.Config;
using EdgeTwin.Simulator.Faults;

namespace EdgeTwin.IntegrationTests.Simulator;

/// <summary>What <c>edgetwin poll</c> shows of the simulated site's UPSes (real SNMP on loopback) during a mains failure.</summary>
public sealed class MainsFailurePollTests
{
    [Fact]
    public async Task Regression_ups_input_frequency_0_hz_during_a_mains_failure_was_flagged_out_of_range()
    {
        // Mains gone: the UPS reads 0 V and 0 Hz on its input. The profiles had min: 40 on the frequencies, so the 0 Hz was
        // published as out_of_range (a broken reading: summaries counted it bad, no value reached the centre) next to a
        // good 0 V, and `edgetwin poll` showed input_frequency [out_of_range] to the engineer reading it in the outage.
        await using var host = await SimPaths.StartAsync(racks: 2, units: 1, machines: 0);
        var path = Path.Combine(Path.GetTempPath(), $"edgetwin-mains-{Guid.NewGuid():N}.yaml");
        try
        {
            host.Site.Apply(FaultCommand.Parse("utility-fail:ups1"));
            host.Site.Apply(FaultCommand.Parse("utility-fail:ups2"));
            host.Site.Step(TimeSpan.FromSeconds(60));
            host.Refresh();
            SiteConfigWriter.WriteFile(host.BuildConfig(TimeSpan.FromSeconds(5), SimPaths.Profiles), path);
            var upses = host.Devices.Where(d => d.Binding.Profile is "ietf-ups-mib" or "apc-smart-ups").ToList();
            Assert.Equal(["apc-smart-ups", "ietf-ups-mib"], upses.Select(d => d.Binding.Profile).Order(StringComparer.Ordinal));
            foreach (var ups in upses)
            {
                var (exit, output, error) = await InProcessCli.RunAsync("poll", ups.Binding.DeviceId, "--config", path, "--json");
                Assert.True(exit == 0, ups.Binding.DeviceId + ": " + error + output);
                var metrics = JsonDocument.Parse(output).RootElement.GetProperty("metrics").EnumerateArray().ToList();
                var frequency = metrics.First(m => m.GetProperty("metric").GetString() == "input_frequency");
                Assert.True(frequency.GetProperty("quality").GetString() == "good", $"{ups.Binding.Profile}: {frequency}");
                Assert.Equal(0, frequency.GetProperty("value").GetDouble());
                // Both profiles give the runtime in minutes (APC's TimeTicks were published as seconds before), so one
                // ups-runtime-low threshold reads both.
                var runtime = metrics.First(m => m.GetProperty("role").GetString() == "ups.runtime_remaining");
                Assert.Equal("min", runtime.GetProperty("unit").GetString());
                Assert.Equal(host.Site.Ups(ups.Binding.EntityId).RuntimeMinutes, runtime.GetProperty("value").GetDouble(), 0.6);
                var source = metrics.First(m => m.GetProperty("role").GetString() == "ups.output_source");
                Assert.Contains("battery", source.GetProperty("state").GetString()!, StringComparison.OrdinalIgnoreCase);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }
}
