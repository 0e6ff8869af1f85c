using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using EdgeTwin.Snmp.Messages;
using EdgeTwin.Snmp.Security;

namespace EdgeTwin.Snmp.Tests.Support;

/// <summary>
/// A net-snmp snmpd on a random loopback port that can be rebooted the way a device reboots: it keeps its engine id and
/// snmpEngineBoots in its persistent dir (written at start and on SIGTERM), so a restart comes back with the same engine
/// id, boots + 1 and engineTime from 0. <see cref="ReplaceAsync"/> starts it with an empty persistent dir instead: a
/// replacement device on the same address with the same users and a new engine id.
/// </summary>
public sealed class RebootableSnmpd : IAsyncDisposable
{
    public const string AuthPassword = "authpass123";
    public const string PrivPassword = "privpass123";

    /// <summary>authPriv SHA-256 / AES-128.</summary>
    public static SnmpV3User User => new("clockuser", SnmpAuthProtocol.Sha256, AuthPassword, SnmpPrivProtocol.Aes128, PrivPassword);

    private readonly string _dir;
    private Process? _process;

    private RebootableSnmpd(string dir, int port)
    {
        _dir = dir;
        Port = port;
    }

    public int Port { get; }
    public IPEndPoint EndPoint => new(IPAddress.Loopback, Port);
    private string PersistDir => Path.Combine(_dir, "persist");
    private string PersistFile => Path.Combine(PersistDir, "snmpd.conf");
    public string Log => File.Exists(Path.Combine(_dir, "snmpd.log")) ? File.ReadAllText(Path.Combine(_dir, "snmpd.log")) : "";

    /// <summary>Null when snmpd is not installed (the caller skips).</summary>
    public static async Task<RebootableSnmpd?> StartAsync()
    {
        if (SnmpdFixture.FindTool("snmpd") is null)
        {
            return null;
        }
        var dir = Directory.CreateTempSubdirectory("edgetwin-snmpd-reboot-").FullName;
        Directory.CreateDirectory(Path.Combine(dir, "persist"));
        // Read through SNMPCONFPATH (not -C -c): only then does snmpd also read its persistent file back at start.
        await File.WriteAllTextAsync(Path.Combine(dir, "snmpd.conf"),
            $"createUser clockuser SHA-256 {AuthPassword} AES {PrivPassword}\nrouser clockuser priv\nsysDescr rebootable\n");
        var snmpd = new RebootableSnmpd(dir, SnmpdFixture.FreeUdpPort(false));
        await snmpd.RunAsync();
        return snmpd;
    }

    /// <summary>Stops (SIGTERM, so the persistent state is saved) and starts again: boots + 1, engineTime from 0.</summary>
    public async Task RebootAsync(int? bootsBeforeStart = null)
    {
        await StopAsync();
        if (bootsBeforeStart is { } boots)
        {
            // What snmpd increments at its next start.
            var lines = File.ReadAllLines(PersistFile).Select(l => l.StartsWith("engineBoots ", StringComparison.Ordinal) ? $"engineBoots {boots}" : l);
            await File.WriteAllLinesAsync(PersistFile, lines);
        }
        await RunAsync();
    }

    /// <summary>Another device on the same address and with the same users: a new engine id (and boots 1).</summary>
    public async Task ReplaceAsync()
    {
        await StopAsync();
        Directory.Delete(PersistDir, true);
        Directory.CreateDirectory(PersistDir);
        await RunAsync();
    }

    private async Task RunAsync()
    {
        var psi = new ProcessStartInfo(SnmpdFixture.FindTool("snmpd")!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "-f", "-Lf", Path.Combine(_dir, "snmpd.log"), "-p", Path.Combine(_dir, "snmpd.pid"), $"udp:127.0.0.1:{Port}" })
        {
            psi.ArgumentList.Add(arg);
        }
        psi.Environment["SNMPCONFPATH"] = $"{_dir}:{PersistDir}";
        psi.Environment["SNMP_PERSISTENT_DIR"] = PersistDir;
        psi.Environment["HOME"] = _dir;
        psi.Environment["MIBS"] = "";
        psi.Environment["MIBDIRS"] = _dir;
        _process = Process.Start(psi) ?? throw new InvalidOperationException("cannot start snmpd");
        _ = _process.StandardOutput.ReadToEndAsync();
        _ = _process.StandardError.ReadToEndAsync();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"snmpd exited with {_process.ExitCode}; log:\n{Log}");
            }
            if (await AskDiscoveryAsync() is not null)
            {
                return;
            }
        }
        throw new InvalidOperationException($"snmpd did not answer on {Port} within 30 s; log:\n{Log}");
    }

    /// <summary>The agent's engine id, boots and time as its discovery Report says (codec only, not the client under test).</summary>
    public async Task<(byte[] EngineId, int Boots, int Time)?> DiscoverAsync()
    {
        var answer = await AskDiscoveryAsync();
        if (answer is null)
        {
            return null;
        }
        var usm = SnmpMessageCodec.Decode(answer).Usm;
        return (usm.EngineId, usm.EngineBoots, usm.EngineTime);
    }

    private async Task<byte[]?> AskDiscoveryAsync()
    {
        using var udp = new UdpClient(AddressFamily.InterNetwork);
        var request = SnmpMessageCodec.Encode(new SnmpMessage { Version = SnmpVersion.V3, MessageId = 7, Flags = V3Flags.Reportable, Pdu = SnmpPdu.Get(7, []) });
        await udp.SendAsync(request, EndPoint);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
        try
        {
            return (await udp.ReceiveAsync(cts.Token)).Buffer;
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    private async Task StopAsync()
    {
        if (_process is not { } p)
        {
            return;
        }
        if (!p.HasExited)
        {
            using (var kill = Process.Start("/bin/kill", ["-TERM", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync();
            }
            try
            {
                await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (TimeoutException)
            {
                p.Kill(true);
                await p.WaitForExitAsync();
            }
        }
        p.Dispose();
        _process = null;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
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
