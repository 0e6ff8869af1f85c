using BenchmarkDotNet.Attributes;
using EdgeTwin.Snmp;
using EdgeTwin.Snmp.Client;
using EdgeTwin.Snmp.Responder;

namespace EdgeTwin.Benchmarks.Snmp;

/// <summary>
/// One poll round: 500 responder agents × 40 OIDs on loopback, one GET per agent, all in flight at once on one client
/// socket. The agents share the process here, so BenchmarkDotNet's time is the round's wall time; for CPU per varbind of
/// the poller alone use <c>edgetwin snmp bench</c> (agents in a child process).
/// dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*SnmpPollRound*' --job short
/// </summary>
[MemoryDiagnoser]
public class SnmpPollRoundBenchmarks : IDisposable
{
    private const int Agents = 500;
    private const int OidsPerAgent = 40;
    private readonly List<SnmpResponder> _responders = [];
    private SnmpClient? _client;
    private SnmpTarget[] _targets = [];
    private Oid[] _oids = [];

    [GlobalSetup]
    public void Setup()
    {
        _oids = Enumerable.Range(1, OidsPerAgent).Select(j => Oid.Parse($"1.3.6.1.4.1.99999.9.{j}.0")).ToArray();
        for (var i = 0; i < Agents; i++)
        {
            var store = new SnmpMibStore();
            foreach (var (oid, j) in _oids.Select((o, j) => (o, j)))
            {
                store.Set(oid, j % 2 == 0 ? SnmpValue.Gauge32((uint)(i + j)) : SnmpValue.OctetString($"agent {i} value {j}"));
            }
            _responders.Add(new SnmpResponder(store));
        }
        _client = new SnmpClient();
        _targets = _responders.Select(r => new SnmpTarget { EndPoint = r.LocalEndPoint, Timeout = TimeSpan.FromSeconds(5), Retries = 1 }).ToArray();
    }

    [Benchmark]
    public async Task<int> PollRound500x40()
    {
        var results = await Task.WhenAll(_targets.Select(t => _client!.GetAsync(t, _oids, CancellationToken.None)));
        // Every OID answered with its value: an agent answering noSuchObject (or an error) is an answer, not a read.
        var n = 0;
        foreach (var r in results)
        {
            foreach (var vb in r)
            {
                n += vb.Value.IsException ? 0 : 1;
            }
        }

        if (n != Agents * OidsPerAgent)
        {
            throw new InvalidOperationException($"SnmpPollRound: {n} values read, not {Agents * OidsPerAgent} ({Agents} agents x {OidsPerAgent} OIDs)");
        }

        return n;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _client?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        foreach (var r in _responders)
        {
            r.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        _responders.Clear();
        _client = null;
    }

    public void Dispose()
    {
        Cleanup();
        GC.SuppressFinalize(this);
    }
}
