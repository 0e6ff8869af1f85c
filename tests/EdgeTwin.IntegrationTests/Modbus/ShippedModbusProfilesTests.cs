using EdgeTwin.Agent.Sources.Modbus;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Modbus.Data;
using EdgeTwin.Modbus.Server;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.IntegrationTests.Modbus;

/// <summary>
/// Every shipped Modbus profile, served by our server with a value in each metric's registers, polled by the
/// agent's source: checks the profiles' addresses, types, orders, bits and read limits end to end.
/// </summary>
public sealed class ShippedModbusProfilesTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Profiles() => ["eastron-sdm630", "schneider-pm5300", "abb-acs580", "siemens-pac3200", "janitza-umg96rm", "carlo-gavazzi-em24", "eastron-sdm120", "janitza-umg604"];

    private static string ProfilesDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "device-profiles");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException("device-profiles not found above " + AppContext.BaseDirectory);
    }

    private sealed class ListSink : ISampleSink
    {
        public List<Sample> Samples { get; } = [];

        // Sources of one gateway poll concurrently into one sink, as into the agent's channel.
        public ValueTask WriteAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken)
        {
            lock (Samples)
            {
                Samples.AddRange(samples.Span);
            }

            return ValueTask.CompletedTask;
        }
    }

    [Theory]
    [MemberData(nameof(Profiles))]
    public async Task Shipped_profile_reads_every_metric_from_a_served_register_image(string id)
    {
        var profile = DeviceProfileLoader.LoadFileOrThrow(Path.Combine(ProfilesDirectory(), id + ".yaml"));
        var settings = profile.Modbus ?? ModbusProfileSettings.Default;
        var map = new ModbusRegisterMap();
        var expected = new Dictionary<string, double>();
        int k = 0;
        foreach (var metric in profile.Metrics.Where(m => m.Register is { Type: not EdgeTwin.Core.Profiles.ModbusDataType.String }))
        {
            var point = ModbusSourceFactory.ToPoint(metric.Register!, settings);
            map.AddPoint(point);
            k++;
            if (point.BitOffset is { } bit)
            {
                ushort word = map.GetRegister(point.Table, point.ProtocolAddress);
                map.SetRegister(point.Table, point.ProtocolAddress, (ushort)(word | (1 << bit)));
                expected[metric.Name] = metric.Convert(1);
                continue;
            }

            if (EdgeTwin.Modbus.Protocol.ModbusTableExtensions.IsBitTable(point.Table))
            {
                map.SetBit(point.Table, point.ProtocolAddress, true);
                expected[metric.Name] = metric.Convert(1);
                continue;
            }

            // A raw value that lands inside the metric's range after scaling (integral for integer types).
            double target = metric.Min is { } min && metric.Max is { } max ? (min + max) / 2 : metric.Min is { } lo ? lo + k : 10 + k;
            double raw = Math.Round((target - metric.Offset) / metric.Scale);
            if (point.Type is EdgeTwin.Modbus.Data.ModbusDataType.UInt16 or EdgeTwin.Modbus.Data.ModbusDataType.UInt32 or EdgeTwin.Modbus.Data.ModbusDataType.UInt64)
            {
                raw = Math.Abs(raw);
            }

            var registers = new ushort[point.Length];
            ModbusValueCodec.EncodeNumber(raw, point.Type, point.Order, registers);
            map.SetRegisters(point.Table, point.ProtocolAddress, registers);
            expected[metric.Name] = metric.Convert(ModbusValueCodec.DecodeNumber(registers, point.Type, point.Order));
        }

        Assert.True(expected.Count >= 10, $"{id}: only {expected.Count} numeric metrics");
        var units = new ModbusServerUnits();
        units.Add(1, map);
        await using var server = new ModbusTcpServer(units);
        await server.StartAsync(Ct);
        var device = new DeviceConfig("dev-" + id, id, DeviceAddress.Tcp("127.0.0.1", server.LocalEndPoint.Port)) { UnitId = 1 };
        await using var source = new ModbusSourceFactory().Create(new SourceContext(device, profile, null, NullLoggerFactory.Instance, TimeProvider.System)).Polled!;
        var registry = new SeriesRegistry();
        source.RegisterSeries(registry);
        var sink = new ListSink();
        await source.PollAsync(sink, 1000, Ct);

        var got = sink.Samples.ToDictionary(s => registry[s.Series].Metric);
        Assert.Equal(expected.Count - profile.Metrics.Count(m => m.Rate && expected.ContainsKey(m.Name)), got.Count);
        foreach (var metric in profile.Metrics.Where(m => expected.ContainsKey(m.Name) && !m.Rate))
        {
            Assert.True(got.TryGetValue(metric.Name, out var sample), $"{id}: no sample for {metric.Name}");
            Assert.Equal(SampleQuality.Good, sample.Quality);
            Assert.Equal(expected[metric.Name], sample.Value, 6);
        }
    }
}
