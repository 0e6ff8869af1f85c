namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>
/// snmpd whose answers may not exceed 1,472 octets (<c>[snmp] sendMessageMaxSize 1472</c>, the size of an embedded agent's
/// buffer or of one Ethernet frame), serving 40 OctetString objects .1.3.6.1.4.1.99996.1.1–40 through a
/// <c>pass_persist</c> script. Every value is <see cref="ValueLength"/> characters long; the script reads the length on
/// every request, so a test can make the answers grow as a device's status texts do.
/// </summary>
public sealed class SnmpdSmallBufferProcess : SnmpdProcess
{
    public const string Base = ".1.3.6.1.4.1.99996.1";
    public const int Objects = 40;
    public const int MaxMessageSize = 1472;

    private static readonly string Script = PassPersistScript("""
        BASE = (1, 3, 6, 1, 4, 1, 99996, 1)
        LENGTH = sys.argv[1]
        def data():
            n = int(open(LENGTH).read())
            return {BASE + (i,): ("string", ("v%03d" % i) * (n // 4)) for i in range(1, 41)}
        """);

    private int _length = 200;

    /// <summary>The characters of every value (a multiple of 4); 200 to start with.</summary>
    public int ValueLength
    {
        get => _length;
        set
        {
            File.WriteAllText(Path.Combine(Dir!, "length"), value.ToString(System.Globalization.CultureInfo.InvariantCulture));
            _length = value;
        }
    }

    /// <summary>The value snmpd serves for object <paramref name="i"/> now.</summary>
    public string Value(int i) => string.Concat(Enumerable.Repeat($"v{i:000}", _length / 4));

    /// <summary>Requests snmpd received so far (it logs one line per request).</summary>
    public int Requests => Log.Split('\n').Count(l => l.StartsWith("Connection from UDP", StringComparison.Ordinal));

    protected override string? MissingPrerequisite() =>
        File.Exists(SnmpdEnvMonProcess.Python) ? null : $"{SnmpdEnvMonProcess.Python} (Debian package 'python3') is not installed";

    protected override IEnumerable<string> ExtraConfig(string dir)
    {
        var script = Path.Combine(dir, "small-buffer-pass-persist.py");
        var length = Path.Combine(dir, "length");
        File.WriteAllText(script, Script);
        File.WriteAllText(length, _length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return [$"pass_persist .1.3.6.1.4.1.99996 {SnmpdEnvMonProcess.Python} -u {script} {length}", $"[snmp] sendMessageMaxSize {MaxMessageSize}"];
    }
}
