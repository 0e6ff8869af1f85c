using BenchmarkDotNet.Attributes;
using EdgeTwin.Agent.Sources.Snmp;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Snmp;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Benchmarks.Snmp;

/// <summary>
/// What interface utilisation costs per interface per poll: the SNMP source turning one poll's walked ifHCInOctets,
/// ifHCOutOctets and ifHighSpeed columns of 1,000 interfaces into samples, with the profile's <c>utilization:</c> and
/// without it (the rates alone). The difference over 1,000 is the figure. No I/O: the walks are handed to the source.
/// dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*SnmpInterfaceUtilization*' --job short --inProcess
/// </summary>
[MemoryDiagnoser]
[MinColumn] // the machine is shared: the minimum is the figure least disturbed by other load
public class SnmpInterfaceUtilizationBenchmarks
{
    private const int Interfaces = 1_000;
    private const string IfX = ".1.3.6.1.2.1.31.1.1.1";

    private (SnmpSource Source, SeriesRegistry Registry) _rates;
    private (SnmpSource Source, SeriesRegistry Registry) _utilization;
    private VarBind[][] _walks = [];
    private readonly List<Sample> _samples = new(Interfaces * 5);
    private long _at;

    private static DeviceProfile Profile(bool utilization) => new("if", "IETF", "bench", DeviceProtocol.Snmp, "IF-MIB", [],
    [
        new ProfileTable("interface", "ifindex",
        [
            new ProfileMetric("in_octets", "By", MetricKind.Counter, "net.in_bytes") { Oid = IfX + ".6", Rate = true },
            new ProfileMetric("out_octets", "By", MetricKind.Counter, "net.out_bytes") { Oid = IfX + ".10", Rate = true },
            new ProfileMetric("speed", "Mbit/s", MetricKind.Gauge, "net.speed") { Oid = IfX + ".15" },
        ]) { Utilization = utilization ? new TableUtilization("in_octets", "out_octets", "speed") : null },
    ]);

    private static (SnmpSource, SeriesRegistry) Build(bool utilization)
    {
        var credentials = CredentialsConfig.V2c("v2", "public");
        var device = new DeviceConfig("sw", "if", DeviceAddress.Udp("127.0.0.1", 161)) { Credentials = "v2", Timeout = TimeSpan.FromSeconds(2), MaxSeries = 100_000 };
        var source = new SnmpSource(device, SnmpPollPlan.Build("sw", Profile(utilization)), SnmpSourceFactory.Target(device, credentials),
            () => throw new InvalidOperationException("no I/O in this benchmark"), NullLoggerFactory.Instance, TimeProvider.System);
        var registry = new SeriesRegistry();
        registry.LimitDevice("sw", 100_000);
        source.RegisterSeries(registry);
        return (source, registry);
    }

    [GlobalSetup]
    public void Setup()
    {
        _walks =
        [
            [.. Enumerable.Range(1, Interfaces).Select(i => new VarBind(Oid.Parse($"{IfX}.6.{i}"), SnmpValue.Counter64((ulong)i * 1_000_000)))],
            [.. Enumerable.Range(1, Interfaces).Select(i => new VarBind(Oid.Parse($"{IfX}.10.{i}"), SnmpValue.Counter64((ulong)i * 500_000)))],
            [.. Enumerable.Range(1, Interfaces).Select(i => new VarBind(Oid.Parse($"{IfX}.15.{i}"), SnmpValue.Gauge32(i % 2 == 0 ? 10_000u : 1_000u)))],
        ];
        _rates = Build(utilization: false);
        _utilization = Build(utilization: true);
        // Two polls each: the rates primed and every utilisation series made, as in a running agent.
        Poll(_rates, Interfaces); // the speeds; the rates prime
        Poll(_rates, Interfaces * 3);
        Poll(_utilization, Interfaces);
        Poll(_utilization, Interfaces * 5);
    }

    private int Poll((SnmpSource Source, SeriesRegistry Registry) s, int expected)
    {
        _samples.Clear();
        _at += 10_000; // a poll every 10 s; the counters stand still, so every rate and utilisation is computed (0)
        for (var c = 0; c < _walks.Length; c++)
        {
            s.Source.UseWalk(0, c, _walks[c]);
        }
        for (var c = 0; c < _walks.Length; c++)
        {
            s.Source.AddColumnRows(0, c, _walks[c], Interfaces, null, null, s.Registry, _samples, _at, _at, _at);
        }
        if (_samples.Count != expected)
        {
            throw new InvalidOperationException($"SnmpInterfaceUtilization: {_samples.Count} samples from {Interfaces} interfaces, not {expected}");
        }
        return _samples.Count;
    }

    /// <summary>Rates and speed of 1,000 interfaces: 3,000 samples.</summary>
    [Benchmark(Baseline = true)]
    public int RatesOnly1000() => Poll(_rates, Interfaces * 3);

    /// <summary>The same with in and out utilisation: 5,000 samples.</summary>
    [Benchmark]
    public int RatesAndUtilization1000() => Poll(_utilization, Interfaces * 5);
}
