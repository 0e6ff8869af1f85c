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

    private static readonly string Script = PassPersistScript("""
        BASE = (1, 3, 6, 1, 4, 1, 99998)
        FIRST_COLUMN = BASE + (1, 1, 1, 2)
        epoch = 0
        def rows():
            return [1, 2, 3] + [1000 + 5 * epoch + k for k in range(5)]
        def data():
            d = {BASE + (2, 1, 0): ("integer", "2301")}
            for i in rows():
                d[BASE + (1, 1, 1, 2, i)] = ("integer", str(200 + i % 50))
                d[BASE + (1, 1, 1, 3, i)] = ("gauge", str(100 + i % 70))
            return d
        def on_getnext(oid):
            global epoch
            if oid == FIRST_COLUMN:
                epoch += 1
        """);

    protected override string? MissingPrerequisite() =>
        File.Exists(SnmpdEnvMonProcess.Python) ? null : $"{SnmpdEnvMonProcess.Python} (Debian package 'python3') is not installed";

    protected override IEnumerable<string> ExtraConfig(string dir)
    {
        var script = Path.Combine(dir, "churn-pass-persist.py");
        File.WriteAllText(script, Script);
        return [$"pass_persist {Base} {SnmpdEnvMonProcess.Python} -u {script}"];
    }
}
