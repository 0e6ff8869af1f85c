using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using System.Text.Json;
using EdgeTwin.Snmp;
using EdgeTwin.Snmp.Client;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>
/// A big switch: net-snmp's snmpd serving its own IF-MIB in a network namespace of its own that holds loopback and
/// <c>2 × pairs</c> veth interfaces (down, so their counters stand still). Needs root and iproute2; skipped otherwise.
/// Clients reach it from <see cref="CreateClient"/>, whose socket is made inside the namespace, so nothing is added to
/// the machine's own network. The namespace (with its interfaces) and snmpd go on dispose.
/// </summary>
public partial class SnmpdNetnsProcess(int vethPairs, params string[] extraConfig) : IAsyncLifetime
{
    private Process? _process;
    private string? _dir;
    private string? _netns;

    public string? SkipReason { get; private set; }

    /// <summary>snmpd's port on 127.0.0.1 inside the namespace.</summary>
    public int Port { get; private set; }

    /// <summary>Interfaces snmpd lists: loopback and the veths.</summary>
    public int Interfaces => 1 + (2 * vethPairs);

    public IPEndPoint EndPoint => new(IPAddress.Loopback, Port);

    public async ValueTask InitializeAsync()
    {
        var snmpd = SnmpdProcess.FindTool("snmpd");
        var ip = SnmpdProcess.FindTool("ip");
        if (snmpd is null || ip is null || !OperatingSystem.IsLinux() || Environment.UserName != "root")
        {
            SkipReason = "needs root, iproute2 (ip) and snmpd (Debian packages 'iproute2', 'snmpd') for a network namespace with many interfaces";
            Console.WriteLine($"SKIP: {SkipReason}");
            return;
        }
        _dir = Directory.CreateTempSubdirectory("edgetwin-it-netns-snmpd-").FullName;
        Directory.CreateDirectory(Path.Combine(_dir, "persist"));
        _netns = "edgetwin-it-" + Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4)).ToLowerInvariant();
        var (code, error) = await RunAsync(ip, ["netns", "add", _netns]);
        if (code != 0)
        {
            _netns = null;
            SkipReason = $"ip netns add failed (no CAP_SYS_ADMIN in this container?): {error}";
            Console.WriteLine($"SKIP: {SkipReason}");
            return;
        }
        var batch = Path.Combine(_dir, "links");
        await File.WriteAllLinesAsync(batch, Enumerable.Range(0, vethPairs).Select(i => $"link add ep{i} type veth peer name eq{i}").Prepend("link set lo up"));
        (code, error) = await RunAsync(ip, ["-n", _netns, "-batch", batch]);
        if (code != 0)
        {
            throw new InvalidOperationException($"creating {vethPairs} veth pairs in {_netns}: {error}");
        }
        var conf = Path.Combine(_dir, "snmpd.conf");
        await File.WriteAllLinesAsync(conf, ["rocommunity public 127.0.0.1", .. extraConfig]);
        // A fresh namespace has every port free; a random one all the same.
        Port = Random.Shared.Next(20_000, 60_000);
        var psi = new ProcessStartInfo(ip) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "netns", "exec", _netns, snmpd, "-f", "-Lf", Path.Combine(_dir, "snmpd.log"), "-C", "-c", conf, "-p", Path.Combine(_dir, "pid"), $"udp:127.0.0.1:{Port}" })
        {
            psi.ArgumentList.Add(a);
        }
        psi.Environment["SNMP_PERSISTENT_DIR"] = Path.Combine(_dir, "persist");
        psi.Environment["MIBS"] = "";
        _process = Process.Start(psi)!; // ip netns exec execs snmpd: this is snmpd's own process
        await using var client = CreateClient();
        var target = Target();
        var deadline = DateTime.UtcNow.AddSeconds(45);
        while (DateTime.UtcNow < deadline && !_process.HasExited)
        {
            try
            {
                await client.GetAsync(target with { Timeout = TimeSpan.FromMilliseconds(500), Retries = 0 }, [SnmpInPkts], CancellationToken.None);
                return;
            }
            catch (SnmpTimeoutException)
            {
                // not listening yet
            }
        }
        throw new InvalidOperationException($"snmpd in {_netns} did not start: {(_process.HasExited ? "exited " + _process.ExitCode : "no answer")}");
    }

    /// <summary>
    /// snmpd cuts a GETBULK answer to 100 varbinds by default (0 is that default too); -1 lifts it, as on agents without
    /// such a cap.
    /// </summary>
    public const string UnlimitedBulk = "maxGetbulkResponses -1";

    /// <summary>snmpInPkts (SNMPv2-MIB): every message snmpd received, the poll's requests among them.</summary>
    public static readonly Oid SnmpInPkts = Oid.Parse("1.3.6.1.2.1.11.1.0");

    public SnmpTarget Target() => new() { EndPoint = EndPoint, Community = "public", Timeout = TimeSpan.FromSeconds(5), Retries = 1 };

    /// <summary>A client whose UDP socket lives in the namespace (made on a thread that entered it; sockets keep theirs).</summary>
    public SnmpClient CreateClient()
    {
        SnmpClient? client = null;
        Exception? failed = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var ns = File.OpenHandle($"/run/netns/{_netns}");
                if (SetNs((int)ns.DangerousGetHandle(), CloneNewNet) != 0)
                {
                    throw new InvalidOperationException($"setns into {_netns}: errno {Marshal.GetLastPInvokeError()}");
                }
                // This thread ends here, in the namespace; only the socket made now stays in it.
                client = new SnmpClient();
            }
            catch (Exception ex) when (ex is InvalidOperationException or IOException or UnauthorizedAccessException)
            {
                failed = ex;
            }
        });
        thread.Start();
        thread.Join();
        return client ?? throw new InvalidOperationException("no client in the namespace", failed);
    }

    /// <summary>Bytes that went over the namespace's loopback (each datagram once, with its IP and UDP headers).</summary>
    public async Task<long> LoopbackBytesAsync()
    {
        var psi = new ProcessStartInfo(SnmpdProcess.FindTool("ip")!) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-n", _netns!, "-j", "-s", "link", "show", "dev", "lo" })
        {
            psi.ArgumentList.Add(a);
        }
        using var p = Process.Start(psi)!;
        var json = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement[0].GetProperty("stats64").GetProperty("rx").GetProperty("bytes").GetInt64();
    }

    private static async Task<(int Code, string Error)> RunAsync(string tool, string[] args)
    {
        var psi = new ProcessStartInfo(tool) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return (p.ExitCode, await stderr);
    }

    private const int CloneNewNet = 0x40000000;

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(int fd, int nstype);

    public async ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        if (_process is { HasExited: false })
        {
            _process.Kill(true);
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(5));
        }
        _process?.Dispose();
        if (_netns is not null)
        {
            await RunAsync(SnmpdProcess.FindTool("ip")!, ["netns", "del", _netns]); // its veths go with it
        }
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
    }
}

/// <summary>The data-hall switch of <see cref="BigSwitchSnmpdTests"/>: 1,001 interfaces (loopback and 500 veth pairs).</summary>
public sealed class SnmpdBigSwitch() : SnmpdNetnsProcess(500);
