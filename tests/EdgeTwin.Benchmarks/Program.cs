using BenchmarkDotNet.Running;
using EdgeTwin.Benchmarks.Twin;

// dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*Snmp*'
// dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- site-anomaly-rate [hours] [seed] [threshold…]  (not a BenchmarkDotNet run)
if (args.Length > 0 && args[0] == "site-anomaly-rate")
{
    SiteAnomalyRate.Run(args[1..]);
    return;
}

// dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- site-anomaly-faults [hours] [seed]  (not a BenchmarkDotNet run)
if (args.Length > 0 && args[0] == "site-anomaly-faults")
{
    SiteAnomalyFaults.Run(args[1..]);
    return;
}

// Not typeof(Program): the agent (referenced for its SNMP source) has a Program of its own.
BenchmarkSwitcher.FromAssembly(typeof(EdgeTwin.Benchmarks.Snmp.SnmpPollRoundBenchmarks).Assembly).Run(args);
