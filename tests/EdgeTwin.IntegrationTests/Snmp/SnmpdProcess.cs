using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using EdgeTwin.Snmp;
using EdgeTwin.Snmp.Messages;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>A net-snmp snmpd on a random loopback port (own config and persistent dir in a temp dir), for CLI and source tests.</summary>
public class SnmpdProcess : IAsyncLifetime
{
    private Process? _process;
    private string? _dir;

    /// <summary>A community that may read only sysLocation (.1.3.6.1.2.1.1.6).</summary>
    public const string RestrictedCommunity = "s3cret-cli-7f1c";

    public string? SkipReason { get; private set; }
    public int Port { get; private set; }
    public string Agent => $"127.0.0.1:{Port}";

    /// <summary>The directory of snmpd's config, log and the scripts of <see cref="ExtraConfig"/>.</summary>
    protected string? Dir => _dir;

    /// <summary>What snmpd logged so far (one <c>Connection from UDP</c> line per request it received).</summary>
    public string Log
    {
        get
        {
            if (_dir is null || !File.Exists(Path.Combine(_dir, "snmpd.log")))
            {
                return "";
            }
            using var stream = new FileStream(Path.Combine(_dir, "snmpd.log"), FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            return new StreamReader(stream).ReadToEnd();
        }
    }

    private static readonly string[] Dirs = ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"];

    public static string? FindTool(string name) => Dirs.Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    /// <summary>More snmpd.conf lines (e.g. a <c>pass</c> handler whose script is written into <paramref name="dir"/>).</summary>
    protected virtual IEnumerable<string> ExtraConfig(string dir) => [];

    /// <summary>
    /// A <c>pass_persist</c> script (net-snmp's PING/get/getnext/set protocol on stdin/stdout) serving what the
    /// <paramref name="definitions"/> define: <c>data()</c>, a dict from OID tuples to (type, value) read on every request,
    /// and optionally <c>on_getnext(oid)</c>, called before a getnext is answered (e.g. to change the table per walk).
    /// </summary>
    protected static string PassPersistScript(string definitions) =>
        """
        import sys
        def o(s): return tuple(int(x) for x in s.strip().strip('.').split('.'))
        def on_getnext(oid): pass

        """ + definitions + "\n" + """
        while True:
            cmd = sys.stdin.readline()
            if not cmd:
                break
            cmd = cmd.strip()
            if cmd == "PING":
                sys.stdout.write("PONG\n")
            elif cmd in ("get", "getnext"):
                oid = o(sys.stdin.readline())
                if cmd == "getnext":
                    on_getnext(oid)
                d = data()
                found = (oid if oid in d else None) if cmd == "get" else next((k for k in sorted(d) if k > oid), None)
                if found is None:
                    sys.stdout.write("NONE\n")
                else:
                    sys.stdout.write("." + ".".join(map(str, found)) + "\n" + d[found][0] + "\n" + d[found][1] + "\n")
            elif cmd == "set":
                sys.stdin.readline(); sys.stdin.readline()
                sys.stdout.write("not-writable\n")
            sys.stdout.flush()
        """;

    /// <summary>Why this fixture cannot run although snmpd is installed (a missing interpreter), or null.</summary>
    protected virtual string? MissingPrerequisite() => null;

    public async ValueTask InitializeAsync()
    {
        SkipReason = MissingPrerequisite();
        if (SkipReason is not null)
        {
            Console.WriteLine($"SKIP: {SkipReason}");
            return;
        }
        var snmpd = FindTool("snmpd");
        if (snmpd is null || FindTool("snmpget") is null)
        {
            SkipReason = "snmpd/snmpget (Debian packages 'snmpd', 'snmp') are not installed";
            Console.WriteLine($"SKIP: {SkipReason}");
            return;
        }
        _dir = Directory.CreateTempSubdirectory("edgetwin-it-snmpd-").FullName;
        Directory.CreateDirectory(Path.Combine(_dir, "persist"));
        var conf = Path.Combine(_dir, "snmpd.conf");
        await File.WriteAllLinesAsync(conf,
        [
            "rocommunity public 127.0.0.1",
            // A second community that sees sysLocation only: answers that show which community a request used.
            $"rocommunity {RestrictedCommunity} 127.0.0.1 .1.3.6.1.2.1.1.6",
            "sysDescr EdgeTwin CLI test agent",
            "sysLocation rack B7",
            "sysContact noc@example.net",
            "createUser clisha SHA-256 authpass123 AES-256 privpass123",
            "rouser clisha priv",
            .. ExtraConfig(_dir),
        ]);
        for (var attempt = 0; attempt < 5; attempt++)
        {
            using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
            {
                probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                Port = ((IPEndPoint)probe.LocalEndPoint!).Port;
            }
            var psi = new ProcessStartInfo(snmpd) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "-f", "-Lf", Path.Combine(_dir, "snmpd.log"), "-C", "-c", conf, "-p", Path.Combine(_dir, "pid"), $"udp:127.0.0.1:{Port}" })
            {
                psi.ArgumentList.Add(a);
            }
            psi.Environment["SNMP_PERSISTENT_DIR"] = Path.Combine(_dir, "persist");
            psi.Environment["MIBS"] = "";
            _process = Process.Start(psi)!;
            var deadline = DateTime.UtcNow.AddSeconds(45);
            while (DateTime.UtcNow < deadline && !_process.HasExited)
            {
                if (await AnswersAsync())
                {
                    return;
                }
            }
            if (!_process.HasExited)
            {
                _process.Kill(true);
            }
        }
        throw new InvalidOperationException("snmpd did not start");
    }

    private async Task<bool> AnswersAsync()
    {
        using var udp = new UdpClient(AddressFamily.InterNetwork);
        var request = SnmpMessageCodec.Encode(SnmpMessage.ForCommunity(SnmpVersion.V2c, "public", SnmpPdu.Get(7, [Oid.Parse("1.3.6.1.2.1.1.3.0")])));
        await udp.SendAsync(request, new IPEndPoint(IPAddress.Loopback, Port));
        using var cts = new CancellationTokenSource(500);
        try
        {
            var r = await udp.ReceiveAsync(cts.Token);
            return SnmpMessageCodec.Decode(r.Buffer).Pdu!.RequestId == 7;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public static async Task<(int Exit, string Stdout, string Stderr)> RunToolAsync(string tool, IEnumerable<string> args, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(FindTool(tool)!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        psi.Environment["MIBS"] = "";
        psi.Environment["SNMPCONFPATH"] = "/nonexistent";
        psi.Environment["HOME"] = Path.GetTempPath();
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        var stderr = p.StandardError.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct).WaitAsync(TimeSpan.FromSeconds(60), ct);
        return (p.ExitCode, await stdout, await stderr);
    }

    public ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        if (_process is { HasExited: false })
        {
            _process.Kill(true);
            _process.WaitForExit(5000);
        }
        _process?.Dispose();
        if (_dir is not null)
        {
            try
            {
                Directory.Delete(_dir, true);
            }
            catch (IOException)
            {
                // best effort
            }
        }
        return ValueTask.CompletedTask;
    }
}
