using System.Text.Json;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>
/// snmpd serving an IF-MIB whose counters, speeds and sysUpTime the test sets: a <c>pass_persist</c> script registered
/// at priority 1 over snmpd's own sysUpTime, ifTable and ifXTable answers from a JSON state file read on every request.
/// Per interface: ifSpeed (.2.2.1.5), ifInOctets/ifOutOctets (Counter32, .10/.16), and with <c>xtable</c> ifName,
/// ifHCInOctets/ifHCOutOctets (Counter64, .31.1.1.1.6/.10) and ifHighSpeed (.15); without it the device has no ifXTable.
/// </summary>
public sealed class SnmpdIfUtilizationProcess : SnmpdProcess
{
    private string? _state;

    private static readonly string Script = PassPersistScript("""
        import json
        STATE = sys.argv[1]
        IF = (1, 3, 6, 1, 2, 1, 2, 2, 1)
        IFX = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
        def data():
            with open(STATE) as f:
                st = json.load(f)
            d = {(1, 3, 6, 1, 2, 1, 1, 3, 0): ("timeticks", str(st["uptime"]))}
            for i, r in st["rows"].items():
                i = int(i)
                d[IF + (1, i)] = ("integer", str(i))
                d[IF + (5, i)] = ("gauge", str(r["if_speed"]))
                d[IF + (7, i)] = ("integer", "1")
                d[IF + (8, i)] = ("integer", "1")
                d[IF + (10, i)] = ("counter", str(r["in"] % 2**32))
                d[IF + (13, i)] = ("counter", "0")
                d[IF + (14, i)] = ("counter", "0")
                d[IF + (16, i)] = ("counter", str(r["out"] % 2**32))
                d[IF + (20, i)] = ("counter", "0")
                if st["xtable"]:
                    d[IFX + (1, i)] = ("string", r["name"])
                    d[IFX + (6, i)] = ("counter64", str(r["in"]))
                    d[IFX + (10, i)] = ("counter64", str(r["out"]))
                    d[IFX + (15, i)] = ("gauge", str(r["high_speed"]))
            return d
        """);

    /// <summary>One interface as the device reports it; <c>In</c>/<c>Out</c> are the 64-bit counts (ifInOctets is their low 32 bits).</summary>
    public sealed record Interface(string Name, ulong In, ulong Out, uint IfSpeed, uint HighSpeed);

    /// <summary>Sets what the device answers from now on.</summary>
    public void Set(uint uptimeTicks, bool xtable, IReadOnlyDictionary<int, Interface> rows)
    {
        var state = new Dictionary<string, object>
        {
            ["uptime"] = uptimeTicks,
            ["xtable"] = xtable,
            ["rows"] = rows.ToDictionary(r => r.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), r => new Dictionary<string, object>
            {
                ["name"] = r.Value.Name,
                ["in"] = r.Value.In,
                ["out"] = r.Value.Out,
                ["if_speed"] = r.Value.IfSpeed,
                ["high_speed"] = r.Value.HighSpeed,
            }),
        };
        var temp = _state! + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(state));
        File.Move(temp, _state!, overwrite: true); // the script reads it on every request: never half written
    }

    protected override string? MissingPrerequisite() =>
        File.Exists(SnmpdEnvMonProcess.Python) ? null : $"{SnmpdEnvMonProcess.Python} (Debian package 'python3') is not installed";

    protected override IEnumerable<string> ExtraConfig(string dir)
    {
        var script = Path.Combine(dir, "if-mib-pass-persist.py");
        _state = Path.Combine(dir, "if-mib-state.json");
        File.WriteAllText(script, Script);
        File.WriteAllText(_state, """{"uptime": 100, "xtable": false, "rows": {}}""");
        // Priority 1 (lower wins) over snmpd's own modules for these subtrees: the test decides every value.
        string[] subtrees = [".1.3.6.1.2.1.1.3", ".1.3.6.1.2.1.2.2", ".1.3.6.1.2.1.31.1.1"]; // sysUpTime, ifTable, ifXTable
        return subtrees.Select(oid => $"pass_persist -p 1 {oid} {SnmpdEnvMonProcess.Python} -u {script} {_state}");
    }
}
