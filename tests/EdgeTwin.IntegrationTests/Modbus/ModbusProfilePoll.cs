using EdgeTwin.Agent.Sources.Modbus;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.IntegrationTests.Snmp;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.IntegrationTests.Modbus;

/// <summary>One poll of a device by the agent's Modbus source with a (shipped) profile: its samples by metric name.</summary>
internal static class ModbusProfilePoll
{
    public static async Task<Dictionary<string, Sample>> OnceAsync(DeviceConfig device, DeviceProfile profile, CancellationToken cancellationToken)
    {
        await using var source = new ModbusSourceFactory().Create(new SourceContext(device, profile, null, NullLoggerFactory.Instance, TimeProvider.System)).Polled!;
        var registry = new SeriesRegistry();
        source.RegisterSeries(registry);
        var sink = new RecordingSink();
        await source.PollAsync(sink, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), cancellationToken);
        return sink.Samples.ToDictionary(s => registry[s.Series].Metric);
    }
}
