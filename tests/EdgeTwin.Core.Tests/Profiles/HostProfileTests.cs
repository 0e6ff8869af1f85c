using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Tests.Config;

namespace EdgeTwin.Core.Tests.Profiles;

/// <summary>What `edgetwin check` says of a host-driver profile's <c>paths</c> parameter and of the shipped linux-host profile.</summary>
public sealed class HostProfileTests
{
    private static string Profile(string parameters) => $$"""
        profile: my-host
        vendor: Linux
        model: gateway
        source: "proc(5)"
        protocol: system
        sensor:
          driver: host
          parameters: { {{parameters}} }
        metrics:
          - { name: disk_free_percent, channel: fs_free_percent, unit: "%", kind: gauge, role: gateway.disk_free_percent }
        """;

    [Theory]
    [InlineData("paths: \"/var/log, /data\"", null)]
    [InlineData("paths: \"/var/log, data\"", "paths: 'data' is not an absolute path")]
    [InlineData("paths: \"\"", "paths is empty")]
    [InlineData("pathz: /var/log", "driver host ignores parameter 'pathz' (did you mean 'paths'?)")]
    public void The_paths_parameter_is_checked_where_it_is_written(string parameters, string? problem)
    {
        var d = new ConfigDiagnostics();
        var profile = DeviceProfileLoader.Parse(Profile(parameters), "my-host.yaml", d);

        if (problem is null)
        {
            Assert.True(d.IsEmpty && d.Warnings.Count == 0, string.Join("\n", d.Items.Concat(d.Warnings)));
            Assert.Equal(SensorDriver.Host, profile!.Sensor!.Driver);
        }
        else
        {
            Assert.Contains(d.Items.Concat(d.Warnings), i => i.ToString().Contains("my-host.yaml:8:", StringComparison.Ordinal) && i.ToString().Contains(problem, StringComparison.Ordinal));
        }
    }

    [Fact]
    public void The_shipped_linux_host_profile_publishes_every_host_channel_with_documented_units_and_roles()
    {
        var d = new ConfigDiagnostics();
        var profile = DeviceProfileLoader.LoadFile(Path.Combine(TestFiles.ProfilesDir, "linux-host.yaml"), d);

        Assert.True(d.IsEmpty && d.Warnings.Count == 0, string.Join("\n", d.Items.Concat(d.Warnings)));
        Assert.Equal(DeviceProtocol.System, profile!.Protocol);
        Assert.Equal(DeviceProfileLoader.HostChannels.Order(StringComparer.Ordinal), profile.AllMetrics.Select(m => m.Channel!).Order(StringComparer.Ordinal));
        Assert.All(profile.AllMetrics, m => Assert.StartsWith("gateway.", m.Role, StringComparison.Ordinal));
    }
}
