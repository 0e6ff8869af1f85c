namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>
/// net-snmp's snmpd answering a device's subtree from an snmpsim-format recording (<c>Recordings/NAME.snmprec</c>: one
/// <c>OID|TAG|VALUE</c> line per object, TAG the BER type: 2 Integer32, 4 OctetString, 65 Counter32, 66 Gauge32,
/// 67 TimeTicks, 70 Counter64) through a <c>pass_persist</c> script; sysUpTime and the rest of MIB-II are snmpd's own.
/// The agent's SNMP source reads it as it reads a real card: GET for scalars, GETBULK walks for tables.
/// </summary>
public sealed class SnmpdRecordingProcess(string recording, params string[] subtrees) : SnmpdProcess
{
    public const string Python = "/usr/bin/python3";

    /// <summary>The recording's file in the test output (copied there by the project).</summary>
    public static string RecordingPath(string name) => Path.Combine(AppContext.BaseDirectory, "Snmp", "Recordings", name + ".snmprec");

    protected override string? MissingPrerequisite() =>
        File.Exists(Python) ? null : $"{Python} (Debian package 'python3') is not installed";

    protected override IEnumerable<string> ExtraConfig(string dir)
    {
        var script = Path.Combine(dir, "recording-pass.py");
        File.WriteAllText(script, PassPersistScript($$"""
            TYPES = {'2': 'integer', '4': 'string', '6': 'objectid', '64': 'ipaddress', '65': 'counter', '66': 'gauge', '67': 'timeticks', '70': 'counter64'}
            RECORDED = {}
            with open({{PythonString(RecordingPath(recording))}}) as f:
                for line in f:
                    line = line.strip()
                    if not line or line.startswith('#'):
                        continue
                    oid, tag, value = line.split('|', 2)
                    RECORDED[o(oid)] = (TYPES[tag], value)
            def data(): return RECORDED
            """));
        return [.. subtrees.Select(subtree => $"pass_persist {subtree} {Python} {script}")]; // a MIB and the ENTITY-MIB names it points to
    }

    private static string PythonString(string s) => "'" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'";
}
