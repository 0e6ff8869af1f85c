using System.CommandLine;
using EdgeTwin.Agent.Bench;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin bench load [--snmp-devices N] [--modbus-devices N] [--interval 10s] [--duration 60s] [--json]</c>: the real
/// agent polling a simulated site served on loopback in this process; prints samples/s, CPU µs per sample, peak RSS
/// and poll-time jitter p99. Exit codes: 0 done (every device delivered), 1 some device delivered nothing, 2 bad arguments.
/// </summary>
internal sealed class BenchLoadCommand : ICliSubcommand
{
    public string Parent => "bench";

    public Command Create()
    {
        var snmp = new Option<int>("--snmp-devices") { Description = "Simulated SNMP devices (PDUs, UPS units, cooling units).", DefaultValueFactory = _ => 500 }.AtLeast(0);
        var modbus = new Option<int>("--modbus-devices") { Description = "Simulated Modbus TCP devices (drives).", DefaultValueFactory = _ => 100 }.AtLeast(0);
        var interval = new Option<string>("--interval") { Description = "Poll interval of every device.", DefaultValueFactory = _ => "10s" };
        var duration = new Option<string>("--duration") { Description = "Measured time (after one warm-up interval).", DefaultValueFactory = _ => "60s" };
        var profiles = new Option<string?>("--profiles-dir") { Description = "Device profiles directory (default: beside the binary, then ./device-profiles)." };
        var json = new Option<bool>("--json") { Description = "Print the figures as JSON." };
        var load = new Command("load", "Measure the agent polling a simulated site: samples/s, CPU per sample, peak RSS, poll jitter.");
        load.Options.Add(snmp);
        load.Options.Add(modbus);
        load.Options.Add(interval);
        load.Options.Add(duration);
        load.Options.Add(profiles);
        load.Options.Add(json);
        load.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            if (!Durations.TryParse(parse.GetValue(interval), out var every) || every <= TimeSpan.Zero
                || !Durations.TryParse(parse.GetValue(duration), out var measured) || measured <= TimeSpan.Zero)
            {
                await error.WriteLineAsync("bench load: --interval and --duration must be positive durations such as 10s or 1m").ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }

            if (parse.GetValue(snmp) + (long)parse.GetValue(modbus) == 0)
            {
                await error.WriteLineAsync("bench load: --snmp-devices and --modbus-devices must not both be 0").ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }

            var dir = parse.GetValue(profiles)
                ?? ProfileCatalog.DefaultDirectories().FirstOrDefault(d => File.Exists(Path.Combine(d, "apc-rpdu2.yaml")));
            if (dir is null || !Directory.Exists(dir))
            {
                await error.WriteLineAsync($"bench load: device profiles directory not found (looked in {string.Join(", ", ProfileCatalog.DefaultDirectories())}); pass --profiles-dir").ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }

            var result = await LoadBench.RunAsync(new LoadBenchOptions(parse.GetValue(snmp), parse.GetValue(modbus), every, measured, dir), ct).ConfigureAwait(false);
            await output.WriteLineAsync(parse.GetValue(json) ? result.ToJson() : result.ToText()).ConfigureAwait(false);
            if (result.DevicesWithoutSamples.Count > 0)
            {
                await error.WriteLineAsync($"bench load: no samples from {string.Join(", ", result.DevicesWithoutSamples.Take(20))}").ConfigureAwait(false);
                return ExitCodes.Failure;
            }

            return ExitCodes.Ok;
        });
        return load;
    }
}
