namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>
/// snmpd with a <c>pass_persist</c> script serving a table whose rows come and go, like an ifTable on a switch whose
/// virtual interfaces are re-created or an ARP/LLDP table keyed by something that changes: rows 1–3 stay, and every walk
/// of the first column (.1.3.6.1.4.1.99998.1.1.1.2) starts a new epoch in which five more rows appear under indices never
/// used before (1000 + 5 × epoch + k). Columns: temperature (.2, tenths) and power (.3). Scalar: supply voltage (.2.1.0).
/// </summary>
public sealed class SnmpdChurningTableProcess : SnmpdProcess
{
    public const string Base = ".1.3.6.1.4.1.99998";
    public const int StableRows = 3;
    public const int ChurningRowsPerWalk = 5;

    private const string Script = """
        import sys
        BASE = (1, 3, 6, 1, 4, 1, 99998)
        FIRST_COLUMN = BASE + (1, 1, 1, 2)
        epoch = 0
        def o(s): return tuple(int(x) for x in s.strip().strip('.').split('.'))
        def rows():
            return [1, 2, 3] + [1000 + 5 * epoch + k for k in range(5)]
        def data():
            d = {BASE + (2, 1, 0): ("integer", "2301")}
            for i in rows():
                d[BASE + (1, 1, 1, 2, i)] = ("integer", str(200 + i % 50))
                d[BASE + (1, 1, 1, 3, i)] = ("gauge", str(100 + i % 70))
            return d
        def out(k, v):
            sys.stdout.write("." + ".".join(map(str, k)) + "\n" + v[0] + "\n" + v[1] + "\n")
        while True:
            cmd = sys.stdin.readline()
            if not cmd:
                break
            cmd = cmd.strip()
            if cmd == "PING":
                sys.stdout.write("PONG\n")
            elif cmd in ("get", "getnext"):
                oid = o(sys.stdin.readline())
                if cmd == "getnext" and oid == FIRST_COLUMN:
                    epoch += 1
                d = data()
                found = None
                if cmd == "get":
                    found = oid if oid in d else None
                else:
                    found = next((k for k in sorted(d) if k > oid), None)
                if found is None:
                    sys.stdout.write("NONE\n")
                else:
                    out(found, d[found])
            elif cmd == "set":
                sys.stdin.readline(); sys.stdin.readline()
                sys.stdout.write("not-writable\n")
            sys.stdout.flush()
        """;

    protected override string? MissingPrerequisite() =>
        File.Exists(SnmpdEnvMonProcess.Python) ? null : $"{SnmpdEnvMonProcess.Python} (Debian package 'python3') is not installed";

    protected override IEnumerable<string> ExtraConfig(string dir)
    {
        var script = Path.Combine(dir, "churn-pass-persist.py");
        File.WriteAllText(script, Script);
        return [$"pass_persist {Base} {SnmpdEnvMonProcess.Python} -u {script}"];
    }
}
