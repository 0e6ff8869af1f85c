using System.CommandLine;
using System.Globalization;
using EdgeTwin.Agent.Line;
using EdgeTwin.Agent.Twin.Models;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Simulator.Devices;
using EdgeTwin.Simulator.Faults;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Simulator.Serving;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin sim</c>: runs a simulated site alone — every device on a free loopback port, printed — and
/// writes a matching site config for <c>edgetwin run</c>. Runs until Ctrl-C or <c>--duration</c>.
/// </summary>
internal sealed class SimCommand : ICliCommand
{
    public Command Create()
    {
        var racks = new Option<int>("--racks") { Description = "Number of racks (10 per row).", DefaultValueFactory = _ => 10 }.AtLeast(1);
        var units = new Option<int>("--cooling-units") { Description = "Number of cooling units.", DefaultValueFactory = _ => 2 }.AtLeast(1);
        var machines = new Option<int>("--machines") { Description = "Number of machines (VFD motors) on a production line.", DefaultValueFactory = _ => 2 }.AtLeast(0);
        var seed = new Option<int>("--seed") { Description = "Seed of the site's hidden parameters and noise (same seed, same site).", DefaultValueFactory = _ => 1 };
        var configOut = new Option<FileInfo?>("--config-out") { Description = "Write a site config for `edgetwin run` that polls this site." };
        var profilesDir = new Option<DirectoryInfo?>("--profiles-dir") { Description = "Directory of device profiles (default: device-profiles beside the binary, then ./device-profiles)." };
        var interval = new Option<string>("--interval") { Description = "Poll interval written into the config (e.g. 10s).", DefaultValueFactory = _ => "10s" };
        var timeScale = new Option<double>("--time-scale") { Description = "Simulated seconds per real second.", DefaultValueFactory = _ => 1 }.Positive();
        var faults = new Option<string[]>("--fault")
        {
            Description = "Inject a fault, KIND:TARGET[:ARG][@WHEN], e.g. cooling-stop:crac1@60s (repeatable).",
            AllowMultipleArgumentsPerToken = false,
        };
        var upsProfiles = new Option<string[]>("--ups-profile")
        {
            Description = "Profile of the UPS units, or a comma-separated list used in turn (ups1 the first, ups2 the second, …); repeatable. Default: ietf-ups-mib,apc-smart-ups.",
            AllowMultipleArgumentsPerToken = false,
        };
        var meterProfile = new Option<string?>("--meter-profile") { Description = "Profile of the main meter (Modbus). Default: eastron-sdm630." };
        var rackProbes = new Option<string?>("--rack-probes") { Description = "Put a probe of this profile at every rack's inlet (device probe-RACK), e.g. apc-uio-probe. Default: none." };
        var rooms = new Option<int?>("--rooms")
        {
            Description = "Split the racks and cooling units over N rooms, each with its lighting and an infrastructure sub-meter (device meter-ROOM, "
                + "the main meter's profile) named in the config as the room's power.infrastructure_meters, so the agent publishes its partial PUE. "
                + "Default: one room without a sub-meter.",
        }.AtLeast(1);
        var duration = new Option<double?>("--duration") { Description = "Stop after this many seconds (default: run until Ctrl-C)." }.Positive();
        var command = new Command("sim", "Run a simulated site (SNMP and Modbus devices on loopback) and write a matching site config.");
        foreach (var o in new Option[] { racks, units, machines, seed, configOut, profilesDir, interval, timeScale, faults, duration, upsProfiles, meterProfile, rackProbes, rooms })
        {
            command.Options.Add(o);
        }

        // Stack lights need the agent's GPIO inputs in this process (the demo); here the line's PLCs give every state.
        var line = new LineSimOptions(defaultStations: 0, stackLights: false);
        line.AddTo(command);

        command.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            try
            {
                using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
                var pollInterval = Durations(parse.GetValue(interval)!);
                var spec = SiteGenerator.Generate(new SiteGenerationOptions
                {
                    Racks = parse.GetValue(racks),
                    CoolingUnits = parse.GetValue(units),
                    Machines = parse.GetValue(machines),
                    LineStations = line.StationsFrom(parse),
                    Seed = parse.GetValue(seed),
                    Rooms = parse.GetValue(rooms),
                    Start = DateTimeOffset.UtcNow,
                });
                var site = new SimulatedSite(spec);
                foreach (var text in parse.GetValue(faults) ?? [])
                {
                    site.Apply(FaultCommand.Parse(text));
                }

                var dir = ResolveProfilesDir(parse.GetValue(profilesDir)?.FullName);
                var chosen = Profiles(parse.GetValue(upsProfiles), parse.GetValue(meterProfile), parse.GetValue(rackProbes));
                await using var host = await SimulatedSiteHost.StartAsync(
                    site,
                    SimulatedSiteHost.LoadProfiles(dir, chosen),
                    new SiteHostOptions { TimeScale = parse.GetValue(timeScale), Profiles = chosen },
                    stop.Token).ConfigureAwait(false);

                await PrintDevicesAsync(host, output).ConfigureAwait(false);
                if (parse.GetValue(configOut) is { } file)
                {
                    // A device's timeout must be shorter than its interval: halve the interval when it is the shorter.
                    var timeout = pollInterval <= DeviceConfig.DefaultTimeout ? pollInterval / 2 : (TimeSpan?)null;
                    SiteConfigWriter.WriteFile(host.BuildConfig(pollInterval, dir, timeout), file.FullName);
                    await output.WriteLineAsync(await AppendModelsDirectoryAsync(file.FullName, ct).ConfigureAwait(false)).ConfigureAwait(false);
                    await output.WriteLineAsync($"site config written to {file.FullName} (edgetwin run --config {file.FullName})").ConfigureAwait(false);
                }

                // The duration counts from when the devices answer, not from process start.
                if (parse.GetValue(duration) is { } seconds)
                {
                    stop.CancelAfter(TimeSpan.FromSeconds(seconds));
                }

                await output.WriteLineAsync("simulating; Ctrl-C stops").ConfigureAwait(false);
                var run = host.RunAsync(stop.Token);
                var reported = 0;
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        await Task.Delay(TimeSpan.FromSeconds(10), stop.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }

                    reported = await PrintStatusAsync(site, output, reported).ConfigureAwait(false);
                }

                await run.ConfigureAwait(false);
                await PrintStatusAsync(site, output, reported).ConfigureAwait(false);
                return 0;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return 0; // Ctrl-C while starting
            }
            catch (SimProfileChoiceException ex)
            {
                await error.WriteLineAsync($"edgetwin sim: {OptionName(ex.Slot)}: {ex.Reason}").ConfigureAwait(false);
                return 2;
            }
            catch (Exception ex) when (ex is FormatException or FileNotFoundException or DirectoryNotFoundException or InvalidOperationException or KeyNotFoundException or ArgumentException)
            {
                await error.WriteLineAsync("edgetwin sim: " + ex.Message).ConfigureAwait(false);
                return 2;
            }
        });
        return command;
    }

    /// <summary>The profiles the options pick; what is not given stays the default (the default run is unchanged).</summary>
    internal static SimProfiles Profiles(string[]? ups, string? meter, string? rackProbes)
    {
        var profiles = new SimProfiles();
        var upsList = (ups ?? []).SelectMany(u => u.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)).ToList();
        if (ups is { Length: > 0 })
        {
            profiles = profiles with { Ups = upsList };
        }

        if (meter is not null)
        {
            profiles = profiles with { Meter = meter.Trim() };
        }

        return rackProbes is null ? profiles : profiles with { RackProbe = rackProbes.Trim() };
    }

    private static string OptionName(SimProfileSlot slot) => slot switch
    {
        SimProfileSlot.Ups => "--ups-profile",
        SimProfileSlot.Meter => "--meter-profile",
        _ => "--rack-probes",
    };

    internal static string ResolveProfilesDir(string? given)
    {
        if (given is not null)
        {
            return Directory.Exists(given) ? given : throw new DirectoryNotFoundException($"profiles directory {given} does not exist");
        }

        return ProfileCatalog.DefaultDirectories().FirstOrDefault(Directory.Exists)
            ?? throw new DirectoryNotFoundException($"no device-profiles directory (looked in {string.Join(", ", ProfileCatalog.DefaultDirectories())}); pass --profiles-dir");
    }

    private static TimeSpan Durations(string text) => FaultCommand.ParseDuration(text, "--interval");

    private static async Task PrintDevicesAsync(SimulatedSiteHost host, TextWriter output)
    {
        if (host.Site.Spec.Line is { } line)
        {
            await output.WriteLineAsync($"line {line.Id}: {line.Stations.Count} stations, one PackML PLC each (Modbus TCP, unit 1, profile generic-packml-plc); true bottleneck {line.TrueBottleneck}").ConfigureAwait(false);
        }

        await output.WriteLineAsync($"{"device",-14} {"profile",-16} {"address",-24} simulates").ConfigureAwait(false);
        foreach (var d in host.Devices)
        {
            await output.WriteLineAsync($"{d.Binding.DeviceId,-14} {d.Profile.Id,-16} {d.Address,-24} {d.Binding.Kind} {d.Binding.EntityId}").ConfigureAwait(false);
            if (d.Unsupported.Count > 0)
            {
                await output.WriteLineAsync($"  not simulated (not served): {string.Join(", ", d.Unsupported)}").ConfigureAwait(false);
            }
        }
    }

    private static async Task<int> PrintStatusAsync(SimulatedSite site, TextWriter output, int reportedEvents)
    {
        string line;
        string? roomsLine = null;
        IReadOnlyList<SimEvent> events;
        lock (site.SyncRoot)
        {
            if (site.Spec.Rooms.Count > 0)
            {
                // Sub-metered rooms (--rooms): each room's air and the partial PUE the agent should publish for it.
                roomsLine = "  " + string.Join(", ", site.Rooms.Select(r => string.Create(
                    CultureInfo.InvariantCulture,
                    $"{r.Id} {r.TemperatureC:0.0} °C IT {site.RoomItKw(r.Id):0.0} kW infrastructure {site.RoomInfrastructureKw(r.Id):0.0} kW pPUE {site.RoomPartialPue(r.Id):0.000}")))
                    + string.Create(CultureInfo.InvariantCulture, $"; site PUE {site.Pue:0.000}");
            }

            var hottest = site.Racks.MaxBy(r => r.InletC)!;
            line = string.Create(
                CultureInfo.InvariantCulture,
                $"{site.Now:HH:mm:ss} room {site.Room.TemperatureC:0.0} °C, IT {site.TotalItKw:0.0} kW, cooling {site.TotalCoolingKw:0.0} kW, hottest inlet {hottest.Id} {hottest.InletC:0.0} °C, units {string.Join(' ', site.CoolingUnits.Select(u => $"{u.Id}:{u.State}/{u.FanSpeed * 100:0}%"))}");
            events = site.Events();
        }

        await output.WriteLineAsync(line).ConfigureAwait(false);
        if (roomsLine is not null)
        {
            await output.WriteLineAsync(roomsLine).ConfigureAwait(false);
        }

        if (site.Line is not null)
        {
            await output.WriteLineAsync("  " + LineSimOptions.Status(site)).ConfigureAwait(false);
        }

        foreach (var e in events.Skip(reportedEvents))
        {
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"  event {e.Time:HH:mm:ss} {e.Source}: {e.Message}")).ConfigureAwait(false);
        }

        return events.Count;
    }

    /// <summary>
    /// Points the written config at a models directory with a manifest, as an absolute path: the agent's defaults
    /// (models/ beside the binary, then ./models), else the repository's models/ above the binary (a build tree), so
    /// <c>edgetwin run --config</c> runs the models from any directory. Without one the agent would run no models and
    /// say so only at Information. Returns the line to print.
    /// </summary>
    private static async Task<string> AppendModelsDirectoryAsync(string configPath, CancellationToken cancellationToken)
    {
        var aboveBinary = new List<string>();
        for (var d = new DirectoryInfo(AppContext.BaseDirectory).Parent; d is not null; d = d.Parent)
        {
            aboveBinary.Add(Path.Combine(d.FullName, "models"));
        }

        var candidates = ModelsConfig.DefaultDirectories().Concat(aboveBinary).ToList();
        var models = candidates.FirstOrDefault(d => File.Exists(Path.Combine(d, "manifest.json")));
        if (models is null)
        {
            return $"no models directory found (models/ beside the binary, ./models, or above the binary); the config has no models: section, so maintenance and multivariate scoring stay off";
        }

        var quoted = "'" + Path.GetFullPath(models).Replace("'", "''", StringComparison.Ordinal) + "'";
        await File.AppendAllTextAsync(configPath, $"models:{Environment.NewLine}  directory: {quoted}{Environment.NewLine}", cancellationToken).ConfigureAwait(false);
        return $"models directory {models}";
    }
}
