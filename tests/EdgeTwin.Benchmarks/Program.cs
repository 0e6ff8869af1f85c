using BenchmarkDotNet.Running;

// dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*Snmp*'
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
