namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>
/// snmpd with a <c>pass</c> script serving a private environmental-monitor MIB (.1.3.6.1.4.1.99999): a 3-row zone table
/// (name, temperature in tenths, status, Counter64 energy, Gauge32 airflow) and scalars (supply voltage, a firmware
/// string, a Counter32) — the device of the onboarding audit, answering v1 and v2c on community <c>public</c>.
/// </summary>
public sealed class SnmpdEnvMonProcess : SnmpdProcess
{
    public const string Python = "/usr/bin/python3";

    private const string PassScript = """
        import sys
        BASE = ".1.3.6.1.4.1.99999"
        def o(s): return tuple(int(x) for x in s.strip('.').split('.'))
        data = {}
        rows = {1: ("zone-a", 215, 1, 123456789012), 2: ("zone-b", -35, 2, 42), 3: ("zone-c", 1003, 3, 7)}
        for i, (name, t, st, e) in rows.items():
            data[o(f"{BASE}.1.1.1.1.{i}")] = ("integer", str(i))
            data[o(f"{BASE}.1.1.1.2.{i}")] = ("string", name)
            data[o(f"{BASE}.1.1.1.3.{i}")] = ("integer", str(t))
            data[o(f"{BASE}.1.1.1.4.{i}")] = ("integer", str(st))
            data[o(f"{BASE}.1.1.1.5.{i}")] = ("counter64", str(e))
            data[o(f"{BASE}.1.1.1.6.{i}")] = ("gauge", str(4000000000 + i))
        data[o(f"{BASE}.2.1.0")] = ("integer", "2301")
        data[o(f"{BASE}.2.2.0")] = ("string", "fw 4.2.1")
        data[o(f"{BASE}.2.3.0")] = ("counter", "4294967290")
        def out(k):
            t, v = data[k]
            print("." + ".".join(map(str, k))); print(t); print(v)
        mode, oid = sys.argv[1], o(sys.argv[2])
        if mode == "-g":
            if oid in data: out(oid)
        elif mode == "-n":
            for k in sorted(data):
                if k > oid: out(k); break
        """;

    protected override string? MissingPrerequisite() =>
        File.Exists(Python) ? null : $"{Python} (Debian package 'python3') is not installed";

    protected override IEnumerable<string> ExtraConfig(string dir)
    {
        var script = Path.Combine(dir, "envmon-pass.py");
        File.WriteAllText(script, PassScript);
        return [$"pass .1.3.6.1.4.1.99999 {Python} {script}"];
    }
}
