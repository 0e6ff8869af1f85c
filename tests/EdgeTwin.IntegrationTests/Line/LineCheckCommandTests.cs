using System.Text.Json;
using EdgeTwin.IntegrationTests.Simulator;

namespace EdgeTwin.IntegrationTests.Line;

/// <summary><c>edgetwin check</c> on a site with a line twin: the OK line says what the line section sets up.</summary>
public sealed class LineCheckCommandTests : IDisposable
{
    // S1 reports a state word and counters, S3 a stack light; S2 has no signal (simulated only).
    private const string Site = """
        site:
          id: plant1
          gateway_id: gw1
          rooms: [{ id: hall1 }]
        devices:
          - { id: plc-s1, profile: generic-packml-plc, address: "tcp:127.0.0.1:15021", unit_id: 1, location: { room: hall1 } }
          - { id: s3-red, profile: generic-stack-light, address: "gpio:20", location: { room: hall1 } }
          - { id: s3-green, profile: generic-stack-light, address: "gpio:21", location: { room: hall1 } }
        outbox: { path: /tmp/edgetwin-line-check.db }
        line:
          id: line7
          buffers: [{ id: B1, capacity: 20 }, { id: B2, capacity: 10 }]
          stations:
            - id: S1
              ideal_cycle_time: 30s
              output: B1
              signals:
                state: { device: plc-s1, metric: machine_state, map: { 1: running, 4: faulted } }
                good: { device: plc-s1, metric: good_parts }
            - { id: S2, ideal_cycle_time: 32s, inputs: [B1], output: B2 }
            - id: S3
              ideal_cycle_time: 30s
              inputs: [B2]
              signals: { stack_light: { red: s3-red, green: s3-green } }
        """;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("edgetwin-line-check-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public async Task Check_names_the_line_its_stations_buffers_and_the_machines_with_signals()
    {
        var path = Write("site.yaml", Site);
        var (exit, output, error) = await InProcessCli.RunAsync("check", "--config", path, "--profiles-dir", SimPaths.Profiles);
        Assert.True(exit == 0, $"exit {exit}: {error}\n{output}");
        var ok = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"OK: {path}: site plant1, gateway gw1: ", ok, StringComparison.Ordinal);
        Assert.EndsWith("; 3 devices (3 enabled) using 2 profiles; line line7: 3 stations, 2 buffers, 2 of 3 machines with signals", ok, StringComparison.Ordinal);

        (exit, output, error) = await InProcessCli.RunAsync("check", "--config", path, "--profiles-dir", SimPaths.Profiles, "--json");
        Assert.True(exit == 0, $"exit {exit}: {error}\n{output}");
        var sections = JsonDocument.Parse(output).RootElement.GetProperty("summary").GetProperty("sections");
        Assert.Equal("line line7: 3 stations, 2 buffers, 2 of 3 machines with signals", Assert.Single(sections.EnumerateArray()).GetString());

        // Without a line section the OK line is the site's alone.
        path = Write("no-line.yaml", Site[..Site.IndexOf("line:", StringComparison.Ordinal)]);
        (exit, output, error) = await InProcessCli.RunAsync("check", "--config", path, "--profiles-dir", SimPaths.Profiles);
        Assert.True(exit == 0, $"exit {exit}: {error}\n{output}");
        Assert.EndsWith("; 3 devices (3 enabled) using 2 profiles", output.Trim(), StringComparison.Ordinal);
    }

    private string Write(string name, string yaml)
    {
        var path = Path.Combine(_dir.FullName, name);
        File.WriteAllText(path, yaml);
        return path;
    }
}
