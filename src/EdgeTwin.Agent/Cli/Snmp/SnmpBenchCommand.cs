using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using EdgeTwin.Snmp;
using EdgeTwin.Snmp.Client;
using EdgeTwin.Snmp.Responder;

namespace EdgeTwin.Agent.Cli.Snmp;

/// <summary>
/// <c>edgetwin snmp bench</c>: one poll round of N responder agents × M OIDs on loopback. The agents run in a child
/// process (<c>edgetwin snmp bench-agents</c>) so the CPU time measured is the poller's alone.
/// </summary>
internal static class SnmpBenchCommand
{
    public static Command Create()
    {
        var bench = new Command("bench", "Measure one poll round of many agents (served by our responder in a child process).");
        var agents = new Option<int>("--agents") { DefaultValueFactory = _ => 500, Description = "number of agents" };
        var oids = new Option<int>("--oids") { DefaultValueFactory = _ => 40, Description = "OIDs per agent (one GET each)" };
        var rounds = new Option<int>("--rounds") { DefaultValueFactory = _ => 5, Description = "rounds to run (the first warms up)" };
        var inProcess = new Option<bool>("--in-process") { Description = "serve the agents in this process (CPU then includes them)" };
        bench.Options.Add(agents);
        bench.Options.Add(oids);
        bench.Options.Add(rounds);
        bench.Options.Add(inProcess);
        bench.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var n = Math.Clamp(parse.GetValue(agents), 1, 5000);
            var m = Math.Clamp(parse.GetValue(oids), 1, 200);
            var r = Math.Clamp(parse.GetValue(rounds), 2, 1000);
            List<IPEndPoint> endpoints;
            Process? child = null;
            var local = new List<SnmpResponder>();
            try
            {
                if (parse.GetValue(inProcess))
                {
                    for (var i = 0; i < n; i++)
                    {
                        local.Add(new SnmpResponder(BuildStore(i, m)));
                    }
                    endpoints = local.Select(x => x.LocalEndPoint).ToList();
                }
                else
                {
                    (child, endpoints) = await StartAgentsAsync(n, m, ct).ConfigureAwait(false);
                }
                await using var client = new SnmpClient();
                var oidList = Enumerable.Range(1, m).Select(j => Column(j)).ToArray();
                var targets = endpoints.Select(e => new SnmpTarget { EndPoint = e, Timeout = TimeSpan.FromSeconds(5), Retries = 1 }).ToArray();
                var me = Process.GetCurrentProcess();
                output.WriteLine($"agents={n} oids/agent={m} rounds={r} (first is warm-up) agents in {(child is null ? "this process" : "a child process")}");
                var walls = new List<double>();
                var cpus = new List<double>();
                var allocs = new List<double>();
                for (var round = 0; round < r; round++)
                {
                    me.Refresh();
                    var cpu0 = me.TotalProcessorTime;
                    // Process-wide: with the agents in the child process this is the poller's garbage alone.
                    var alloc0 = GC.GetTotalAllocatedBytes(precise: true);
                    var sw = Stopwatch.StartNew();
                    var results = await Task.WhenAll(targets.Select(t => client.GetAsync(t, oidList, ct))).ConfigureAwait(false);
                    sw.Stop();
                    var alloc = GC.GetTotalAllocatedBytes(precise: true) - alloc0;
                    me.Refresh();
                    var cpu = me.TotalProcessorTime - cpu0;
                    var varbinds = results.Sum(x => x.Count);
                    if (varbinds != n * m)
                    {
                        throw new InvalidOperationException($"round {round}: got {varbinds} varbinds, expected {n * m}");
                    }
                    var cpuPerVb = cpu.TotalMicroseconds / varbinds;
                    var allocPerRequest = (double)alloc / n;
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"round {round}: wall {sw.Elapsed.TotalMilliseconds:F1} ms, cpu {cpu.TotalMilliseconds:F1} ms, {cpuPerVb:F2} µs cpu/varbind, {varbinds} varbinds, {alloc} B allocated ({allocPerRequest:F0} B per GET)"));
                    if (round > 0)
                    {
                        walls.Add(sw.Elapsed.TotalMilliseconds);
                        cpus.Add(cpuPerVb);
                        allocs.Add(allocPerRequest);
                    }
                }
                walls.Sort();
                cpus.Sort();
                allocs.Sort();
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"median: wall {walls[walls.Count / 2]:F1} ms per round, {cpus[cpus.Count / 2]:F2} µs cpu per varbind, {allocs[allocs.Count / 2]:F0} B allocated per GET{(child is null ? " (agents included)" : "")}"));
                return 0;
            }
            finally
            {
                foreach (var x in local)
                {
                    await x.DisposeAsync().ConfigureAwait(false);
                }
                if (child is not null)
                {
                    child.StandardInput.Close();
                    if (!child.WaitForExit(5000))
                    {
                        child.Kill(true);
                    }
                    child.Dispose();
                }
            }
        });
        return bench;
    }

    /// <summary>The hidden child: serves the agents, prints their ports, exits when stdin closes.</summary>
    public static Command CreateAgents()
    {
        var cmd = new Command("bench-agents", "internal: serve agents for 'snmp bench'") { Hidden = true };
        var agents = new Option<int>("--agents") { DefaultValueFactory = _ => 500 };
        var oids = new Option<int>("--oids") { DefaultValueFactory = _ => 40 };
        cmd.Options.Add(agents);
        cmd.Options.Add(oids);
        cmd.SetAction(async (parse, ct) =>
        {
            var list = new List<SnmpResponder>();
            try
            {
                for (var i = 0; i < parse.GetValue(agents); i++)
                {
                    list.Add(new SnmpResponder(BuildStore(i, parse.GetValue(oids))));
                }
                Console.Out.WriteLine("READY " + string.Join(',', list.Select(x => x.LocalEndPoint.Port)));
                Console.Out.Flush();
                await Console.In.ReadToEndAsync(ct).ConfigureAwait(false);
                return 0;
            }
            finally
            {
                foreach (var x in list)
                {
                    await x.DisposeAsync().ConfigureAwait(false);
                }
            }
        });
        return cmd;
    }

    private static Oid Column(int j) => Oid.Parse($"1.3.6.1.4.1.99999.9.{j}.0");

    private static SnmpMibStore BuildStore(int agent, int oids)
    {
        var store = new SnmpMibStore();
        var counter = (uint)agent;
        for (var j = 1; j <= oids; j++)
        {
            var oid = Column(j);
            switch (j % 4)
            {
                case 0:
                    store.Set(oid, () => SnmpValue.Counter32(Interlocked.Increment(ref counter)));
                    break;
                case 1:
                    store.Set(oid, SnmpValue.Gauge32((uint)(agent * 100 + j)));
                    break;
                case 2:
                    store.Set(oid, SnmpValue.Integer(-j));
                    break;
                default:
                    store.Set(oid, SnmpValue.OctetString($"agent {agent} value {j}"));
                    break;
            }
        }
        return store;
    }

    private static async Task<(Process, List<IPEndPoint>)> StartAgentsAsync(int n, int m, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath!)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        // When run as 'dotnet edgetwin.dll', the process path is dotnet: pass the entry assembly first.
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet")
        {
            psi.ArgumentList.Add(typeof(SnmpBenchCommand).Assembly.Location);
        }
        foreach (var a in new[] { "snmp", "bench-agents", "--agents", n.ToString(CultureInfo.InvariantCulture), "--oids", m.ToString(CultureInfo.InvariantCulture) })
        {
            psi.ArgumentList.Add(a);
        }
        var child = Process.Start(psi) ?? throw new InvalidOperationException("cannot start the agents process");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        while (true)
        {
            var line = await child.StandardOutput.ReadLineAsync(timeout.Token).ConfigureAwait(false)
                ?? throw new InvalidOperationException("agents process exited before it was ready");
            if (line.StartsWith("READY ", StringComparison.Ordinal))
            {
                var ports = line[6..].Split(',').Select(p => new IPEndPoint(IPAddress.Loopback, int.Parse(p, CultureInfo.InvariantCulture))).ToList();
                return (child, ports);
            }
        }
    }
}
