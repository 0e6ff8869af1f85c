namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>
/// snmpd with a <c>pass_persist</c> script serving a table of temperature probes (a PDU's or sensor hub's) whose rows the
/// test sets with <see cref="SetRows"/>, read on every request: a probe unplugged while the agent is down. Column:
/// temperature in tenths (.1.3.6.1.4.1.99995.1.1.1.2.&lt;probe&gt;).
/// </summary>
public sealed class SnmpdProbeRowsProcess : SnmpdProcess
{
    public const string Base = ".1.3.6.1.4.1.99995";

    private static readonly string Script = PassPersistScript("""
        import os
        BASE = (1, 3, 6, 1, 4, 1, 99995)
        ROWS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rows.txt")
        def data():
            try:
                rows = [int(x) for x in open(ROWS).read().split()]
            except OSError:
                rows = []
            return {BASE + (1, 1, 1, 2, i): ("integer", str(200 + i)) for i in rows}
        """);

    /// <summary>The probe rows the table lists from the next request on.</summary>
    public void SetRows(params int[] rows)
    {
        var path = Path.Combine(Dir!, "rows.txt");
        File.WriteAllText(path + ".tmp", string.Join(' ', rows));
        File.Move(path + ".tmp", path, overwrite: true);
    }

    protected override string? MissingPrerequisite() =>
        File.Exists(SnmpdEnvMonProcess.Python) ? null : $"{SnmpdEnvMonProcess.Python} (Debian package 'python3') is not installed";

    protected override IEnumerable<string> ExtraConfig(string dir)
    {
        var script = Path.Combine(dir, "probe-rows-pass-persist.py");
        File.WriteAllText(script, Script);
        File.WriteAllText(Path.Combine(dir, "rows.txt"), "1 2 3");
        return [$"pass_persist {Base} {SnmpdEnvMonProcess.Python} -u {script}"];
    }
}
