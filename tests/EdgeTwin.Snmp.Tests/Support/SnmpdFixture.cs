using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using EdgeTwin.Snmp.Messages;
using EdgeTwin.Snmp.Security;

namespace EdgeTwin.Snmp.Tests.Support;

/// <summary>
/// A real net-snmp snmpd on a random loopback port with its own config and persistent dir in a temp dir:
/// communities public (v1/v2c), and one v3 user for every auth × priv combination snmpd supports.
/// </summary>
public sealed class SnmpdFixture : IAsyncLifetime
{
    public const string AuthPassword = "authpass123";
    public const string PrivPassword = "privpass123";
    public const string SysDescr = "EdgeTwin snmpd under test";

    private Process? _process;
    private string? _dir;

    public string? SkipReason { get; private set; }
    public int Port { get; private set; }
    public bool HasIPv6 { get; private set; }
    public IPEndPoint EndPoint => new(IPAddress.Loopback, Port);
    public IPEndPoint EndPointV6 => new(IPAddress.IPv6Loopback, Port);
    public string Log => _dir is null ? "" : SafeRead(Path.Combine(_dir, "snmpd.log"));

    public static readonly SnmpAuthProtocol[] AuthProtocols =
        [SnmpAuthProtocol.Md5, SnmpAuthProtocol.Sha1, SnmpAuthProtocol.Sha224, SnmpAuthProtocol.Sha256, SnmpAuthProtocol.Sha384, SnmpAuthProtocol.Sha512];

    public static readonly SnmpPrivProtocol[] PrivProtocols =
        [SnmpPrivProtocol.None, SnmpPrivProtocol.Des, SnmpPrivProtocol.Aes128, SnmpPrivProtocol.Aes192, SnmpPrivProtocol.Aes256,
         SnmpPrivProtocol.Aes192Reeder, SnmpPrivProtocol.Aes256Reeder];

    public static string UserName(SnmpAuthProtocol a, SnmpPrivProtocol p) => $"{a}{p}".ToLowerInvariant();

    /// <summary>The one v3 user with write access (rwuser, authPriv SHA-256/AES-128); every other user is read-only.</summary>
    public static SnmpV3User Writer => new("writer", SnmpAuthProtocol.Sha256, AuthPassword, SnmpPrivProtocol.Aes128, PrivPassword);

    public static SnmpV3User User(SnmpAuthProtocol a, SnmpPrivProtocol p, string auth = AuthPassword, string priv = PrivPassword) =>
        new(UserName(a, p), a, auth, p, p == SnmpPrivProtocol.None ? null : priv);

    public static string NetSnmpAuth(SnmpAuthProtocol a) => a switch
    {
        SnmpAuthProtocol.Md5 => "MD5",
        SnmpAuthProtocol.Sha1 => "SHA",
        SnmpAuthProtocol.Sha224 => "SHA-224",
        SnmpAuthProtocol.Sha256 => "SHA-256",
        SnmpAuthProtocol.Sha384 => "SHA-384",
        SnmpAuthProtocol.Sha512 => "SHA-512",
        _ => "",
    };

    public static string NetSnmpPriv(SnmpPrivProtocol p) => p switch
    {
        SnmpPrivProtocol.Des => "DES",
        SnmpPrivProtocol.Aes128 => "AES",
        SnmpPrivProtocol.Aes192 => "AES-192",
        SnmpPrivProtocol.Aes256 => "AES-256",
        SnmpPrivProtocol.Aes192Reeder => "AES-192-C",
        SnmpPrivProtocol.Aes256Reeder => "AES-256-C",
        _ => "",
    };

    private static readonly string[] ToolDirs = ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"];

    public static string? FindTool(string name) =>
        ToolDirs
            .Concat((Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    public async ValueTask InitializeAsync()
    {
        var snmpd = FindTool("snmpd");
        if (snmpd is null)
        {
            SkipReason = "snmpd (Debian package 'snmpd') is not installed";
            Console.WriteLine($"SKIP: {SkipReason}");
            return;
        }
        _dir = Directory.CreateTempSubdirectory("edgetwin-snmpd-").FullName;
        Directory.CreateDirectory(Path.Combine(_dir, "persist"));
        HasIPv6 = CanBindIPv6();
        for (var attempt = 0; attempt < 5; attempt++)
        {
            Port = FreeUdpPort(HasIPv6);
            if (await StartAsync(snmpd).ConfigureAwait(false))
            {
                return;
            }
        }
        throw new InvalidOperationException($"snmpd did not start; log:\n{Log}");
    }

    private async Task<bool> StartAsync(string snmpd)
    {
        var conf = new StringBuilder();
        conf.AppendLine("rocommunity public 127.0.0.1");
        conf.AppendLine("rocommunity6 public ::1");
        conf.AppendLine("rwcommunity private 127.0.0.1");
        conf.AppendLine($"sysDescr {SysDescr}");
        conf.AppendLine("sysLocation rack A1");
        conf.AppendLine("sysContact ops@example.net");
        conf.AppendLine("createUser noauth");
        conf.AppendLine($"createUser writer SHA-256 {AuthPassword} AES {PrivPassword}");
        conf.AppendLine("rwuser writer priv");
        conf.AppendLine("rouser noauth noauth");
        foreach (var a in AuthProtocols)
        {
            foreach (var p in PrivProtocols)
            {
                var priv = p == SnmpPrivProtocol.None ? "" : $" {NetSnmpPriv(p)} {PrivPassword}";
                conf.AppendLine($"createUser {UserName(a, p)} {NetSnmpAuth(a)} {AuthPassword}{priv}");
                conf.AppendLine($"rouser {UserName(a, p)} {(p == SnmpPrivProtocol.None ? "auth" : "priv")}");
            }
        }
        var confPath = Path.Combine(_dir!, "snmpd.conf");
        await File.WriteAllTextAsync(confPath, conf.ToString()).ConfigureAwait(false);
        var listen = $"udp:127.0.0.1:{Port}" + (HasIPv6 ? $",udp6:[::1]:{Port}" : "");
        var psi = new ProcessStartInfo(snmpd)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "-f", "-Lf", Path.Combine(_dir!, "snmpd.log"), "-C", "-c", confPath, "-p", Path.Combine(_dir!, "snmpd.pid"), listen })
        {
            psi.ArgumentList.Add(arg);
        }
        psi.Environment["SNMP_PERSISTENT_DIR"] = Path.Combine(_dir!, "persist");
        psi.Environment["MIBS"] = "";
        psi.Environment["MIBDIRS"] = _dir!;
        _process = Process.Start(psi) ?? throw new InvalidOperationException("cannot start snmpd");
        _process.StandardOutput.ReadToEndAsync().ContinueWith(_ => { }, TaskScheduler.Default).Wait(0);
        _process.StandardError.ReadToEndAsync().ContinueWith(_ => { }, TaskScheduler.Default).Wait(0);
        var deadline = DateTime.UtcNow.AddSeconds(45);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                return false;
            }
            if (await AnswersAsync().ConfigureAwait(false))
            {
                return true;
            }
        }
        _process.Kill(true);
        return false;
    }

    /// <summary>Readiness probe with a raw v2c GET (codec only, so it does not depend on the client under test).</summary>
    private async Task<bool> AnswersAsync()
    {
        using var udp = new UdpClient(AddressFamily.InterNetwork);
        var request = SnmpMessageCodec.Encode(SnmpMessage.ForCommunity(SnmpVersion.V2c, "public", SnmpPdu.Get(1, [Oid.Parse("1.3.6.1.2.1.1.3.0")])));
        await udp.SendAsync(request, EndPoint).ConfigureAwait(false);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
        try
        {
            var r = await udp.ReceiveAsync(cts.Token).ConfigureAwait(false);
            return SnmpMessageCodec.Decode(r.Buffer).Pdu!.RequestId == 1;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public static int FreeUdpPort(bool alsoV6)
    {
        for (var i = 0; i < 50; i++)
        {
            using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            var port = ((IPEndPoint)s.LocalEndPoint!).Port;
            if (!alsoV6)
            {
                return port;
            }
            try
            {
                using var s6 = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
                s6.Bind(new IPEndPoint(IPAddress.IPv6Loopback, port));
                return port;
            }
            catch (SocketException)
            {
                // taken on ::1, try another
            }
        }
        throw new InvalidOperationException("no free UDP port");
    }

    public static bool CanBindIPv6()
    {
        try
        {
            using var s = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
            s.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static string SafeRead(string path)
    {
        try
        {
            return File.Exists(path) ? File.ReadAllText(path) : "";
        }
        catch (IOException)
        {
            return "";
        }
    }

    public ValueTask DisposeAsync()
    {
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

[CollectionDefinition("snmpd")]
public sealed class SnmpdCollection : ICollectionFixture<SnmpdFixture>;

/// <summary>Runs a net-snmp command-line tool and returns its output.</summary>
public static class NetSnmpTool
{
    public static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(string tool, IEnumerable<string> args, CancellationToken ct)
    {
        var path = SnmpdFixture.FindTool(tool) ?? throw new InvalidOperationException($"{tool} not installed");
        var psi = new ProcessStartInfo(path) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
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
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        try
        {
            await p.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(true);
            throw;
        }
        return (p.ExitCode, await stdout, await stderr);
    }
}
