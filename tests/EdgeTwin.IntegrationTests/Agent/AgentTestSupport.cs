using System.Collections.Concurrent;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;

namespace EdgeTwin.IntegrationTests.Agent;

/// <summary>Paths and config files for agent tests.</summary>
internal static class AgentFiles
{
    /// <summary>The repository's <c>device-profiles</c> directory (walks up from the test binary).</summary>
    public static string ProfilesDir { get; } = FindProfiles();

    private static string FindProfiles()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "device-profiles");
            if (File.Exists(Path.Combine(candidate, "apc-rpdu2.yaml")))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException("device-profiles/ not found above " + AppContext.BaseDirectory);
    }

    private static readonly List<string> Created = Cleanup();

    /// <summary>A fresh temp directory, removed when the test process exits.</summary>
    public static DirectoryInfo TempDir(string prefix)
    {
        var dir = Directory.CreateTempSubdirectory(prefix);
        lock (Created)
        {
            Created.Add(dir.FullName);
        }

        return dir;
    }

    private static List<string> Cleanup()
    {
        var list = new List<string>();
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            lock (list)
            {
                foreach (var d in list)
                {
                    try
                    {
                        Directory.Delete(d, recursive: true);
                    }
                    catch (IOException)
                    {
                    }
                }
            }
        };
        return list;
    }

    /// <summary>Writes a site config into a fresh temp directory and returns its path.</summary>
    public static string WriteConfig(string devicesYaml, string extra = "")
    {
        var dir = TempDir("edgetwin-agent-test-");
        var path = Path.Combine(dir.FullName, "edgetwin.yaml");
        File.WriteAllText(path, $"""
            site:
              id: dc1
              gateway_id: gw-test
            profiles_dir: {ProfilesDir}
            devices:
            {devicesYaml}
            credentials:
              pub: {"{"} version: 2c, community: public {"}"}
              ops: {"{"} version: 3, user: ops, level: noAuthNoPriv {"}"}
            {(extra.Contains("outbox:", StringComparison.Ordinal) ? "" : $"outbox: {{ path: {Path.Combine(dir.FullName, "outbox.db")} }}")}
            {extra}
            """);
        // As the role installs it (0640): the inline community would otherwise add a mode warning to every start.
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        }

        return path;
    }

    public static SiteConfig Load(string path)
    {
        var result = SiteConfigLoader.Load(path);
        Assert.True(result.IsValid, string.Join("\n", result.Problems));
        return result.Config!;
    }
}

/// <summary>
/// Stands in for the SNMP source in tests of the agent's wiring: one sample per scalar metric of the device's profile,
/// raw value × scale, or a <see cref="DeviceException"/> while <see cref="Failing"/> names the device.
/// </summary>
internal sealed class ProfileFakeFactory : ISourceFactory
{
    public ConcurrentDictionary<string, int> Polls { get; } = new();

    public ConcurrentDictionary<string, bool> Failing { get; } = new();

    public ConcurrentBag<string> Disposed { get; } = [];

    /// <summary>Delay of every poll (a slow device).</summary>
    public TimeSpan PollDelay { get; set; }

    public IReadOnlyCollection<DeviceProtocol> Protocols => [DeviceProtocol.Snmp];

    public DeviceSources Create(SourceContext context)
    {
        if (context.Credentials is not { Version: SnmpVersion.V2c })
        {
            throw new SourceCreationException(context.Device.Id, $"credentials '{context.Credentials?.Name}' are not SNMPv2c, the only version this test source speaks");
        }

        return DeviceSources.Of(new Source(this, context.Device.Id, context.Profile));
    }

    private sealed class Source(ProfileFakeFactory owner, string deviceId, DeviceProfile profile) : IPolledSource
    {
        private readonly List<(SeriesId Id, ProfileMetric Metric)> _series = [];

        public string DeviceId => deviceId;

        public void RegisterSeries(SeriesRegistry registry)
        {
            foreach (var m in profile.Metrics)
            {
                _series.Add((registry.GetOrAdd(new SeriesDescriptor(deviceId, m.Name, m.Unit, m.Kind, m.Role)), m));
            }
        }

        public async ValueTask PollAsync(ISampleSink sink, long acquiredAtUnixMs, CancellationToken cancellationToken)
        {
            var n = owner.Polls.AddOrUpdate(deviceId, 1, (_, c) => c + 1);
            if (owner.PollDelay > TimeSpan.Zero)
            {
                await Task.Delay(owner.PollDelay, cancellationToken);
            }

            if (owner.Failing.GetValueOrDefault(deviceId))
            {
                throw new DeviceException(deviceId, "no response from udp:127.0.0.1:16100 (request timed out)");
            }

            var batch = new Sample[_series.Count];
            for (var i = 0; i < batch.Length; i++)
            {
                var raw = RawValue(_series[i].Metric, n);
                batch[i] = new Sample(_series[i].Id, acquiredAtUnixMs, _series[i].Metric.Convert(raw));
            }

            await sink.WriteAsync(batch, cancellationToken);
        }

        public ValueTask DisposeAsync()
        {
            owner.Disposed.Add(deviceId);
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>
    /// Raw value the fake device answers for a metric: states 2, bounded metrics the middle of [min, max] (so the
    /// scaled value is in range), others 123.
    /// </summary>
    public static double RawValue(ProfileMetric metric, int poll) => metric switch
    {
        { Kind: MetricKind.State } => 2,
        { Min: { } min, Max: { } max } => (((min + max) / 2) - metric.Offset) / metric.Scale,
        _ => 123,
    };
}

/// <summary>A thermal zone tree like <c>/sys/class/thermal</c>, for the real CPU temperature source.</summary>
internal static class FakeThermal
{
    /// <summary>Creates <c>thermal_zone0/{temp,type}</c> and returns the temp file's path.</summary>
    public static string Create(int millidegrees, string type = "cpu-thermal")
    {
        var root = AgentFiles.TempDir("edgetwin-thermal-");
        var zone = Directory.CreateDirectory(Path.Combine(root.FullName, "thermal_zone0"));
        File.WriteAllText(Path.Combine(zone.FullName, "type"), type + "\n");
        var temp = Path.Combine(zone.FullName, "temp");
        File.WriteAllText(temp, millidegrees.ToString(System.Globalization.CultureInfo.InvariantCulture) + "\n");
        return temp;
    }
}
