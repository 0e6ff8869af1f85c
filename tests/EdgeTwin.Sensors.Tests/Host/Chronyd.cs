using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using EdgeTwin.Sensors.Host;

namespace EdgeTwin.Tests.Shared;

/// <summary>
/// A real chronyd (Debian package <c>chrony</c>) of the test's own: <c>-x</c> (never touches the system clock), no NTP
/// socket (<c>port 0</c>), no sources, its command port a random free loopback UDP port, no Unix command socket (the
/// system chronyd's), every file in a temporary directory. With <c>local</c> it synchronises to its own local reference.
/// Killed by <see cref="Dispose"/>. chronyd refuses to start unless run as root: the test is skipped otherwise.
/// </summary>
internal sealed class Chronyd : IDisposable
{
    private static readonly string[] Binaries = ["/usr/sbin/chronyd", "/usr/bin/chronyd"];
    private readonly Process _process;
    private readonly DirectoryInfo _dir;
    private readonly StringBuilder _log = new();

    private Chronyd(Process process, DirectoryInfo dir, int port)
    {
        _process = process;
        _dir = dir;
        CommandEndPoint = new IPEndPoint(IPAddress.Loopback, port);
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (_log) { _log.AppendLine(e.Data); } } };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (_log) { _log.AppendLine(e.Data); } } };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
    }

    /// <summary>chronyd's command address (127.0.0.1 and its port).</summary>
    public IPEndPoint CommandEndPoint { get; }

    /// <summary>What chronyd logged (<c>-d</c>: to stderr).</summary>
    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    /// <summary>A client of this chronyd with a timeout generous for a loaded machine.</summary>
    public ChronyCommandClient Client() => new(CommandEndPoint, TimeSpan.FromSeconds(5));

    /// <summary>Starts chronyd and waits (at most 20 s) until it answers on its command port.</summary>
    public static async Task<Chronyd> StartAsync(bool local, CancellationToken cancellationToken)
    {
        // tests/run.sh unpacks Debian's chrony rather than installing it (it would replace systemd-timesyncd).
        var binary = new[] { Environment.GetEnvironmentVariable("EDGETWIN_CHRONYD") }.Concat(Binaries).FirstOrDefault(File.Exists);
        if (binary is null)
        {
            Skip("chronyd is neither installed (Debian package 'chrony') nor unpacked by tests/run.sh (EDGETWIN_CHRONYD)");
        }

        if (!Environment.IsPrivilegedProcess)
        {
            Skip("chronyd refuses to start unless run as root ('Fatal error : Not superuser')");
        }

        // A port found free may be taken before chronyd binds it: then it never answers, and another port is tried.
        for (var attempt = 0; ; attempt++)
        {
            var dir = Directory.CreateTempSubdirectory("edgetwin-chronyd-");
            var port = FreeUdpPort();
            var config = Path.Combine(dir.FullName, "chrony.conf");
            await File.WriteAllTextAsync(config, $"""
                cmdport {port}
                bindcmdaddress 127.0.0.1
                bindcmdaddress /
                port 0
                pidfile {dir.FullName}/chronyd.pid
                driftfile {dir.FullName}/drift
                {(local ? "local stratum 10" : "")}

                """, cancellationToken);
            var psi = new ProcessStartInfo(binary)
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
                UseShellExecute = false,
                WorkingDirectory = dir.FullName,
            };
            // -u root: no switch to _chrony, which could not write the temporary directory.
            foreach (var a in (string[])["-x", "-d", "-u", "root", "-f", config])
            {
                psi.ArgumentList.Add(a);
            }

            var chronyd = new Chronyd(Process.Start(psi)!, dir, port);
            try
            {
                if (await chronyd.AnswersAsync(TimeSpan.FromSeconds(20), cancellationToken))
                {
                    return chronyd;
                }

                if (attempt == 2)
                {
                    throw new InvalidOperationException($"chronyd did not answer on {chronyd.CommandEndPoint} within 20 s; its log:\n{chronyd.Log}");
                }
            }
            catch
            {
                chronyd.Dispose();
                throw;
            }

            chronyd.Dispose();
        }
    }

    /// <summary>Asks until chronyd's report satisfies <paramref name="condition"/>, every 100 ms for at most <paramref name="timeout"/>.</summary>
    public async Task<ChronyTracking> UntilAsync(Func<ChronyTracking, bool> condition, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var client = Client();
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var tracking = await client.TrackingAsync(cancellationToken);
            if (condition(tracking) || DateTime.UtcNow > deadline)
            {
                Assert.True(condition(tracking), $"chronyd's report {tracking} still not as expected after {timeout.TotalSeconds} s; its log:\n{Log}");
                return tracking;
            }

            await Task.Delay(100, cancellationToken);
        }
    }

    /// <summary>A loopback UDP port nothing is bound to now.</summary>
    public static int FreeUdpPort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            _process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
        finally
        {
            _process.Dispose();
            try
            {
                _dir.Delete(recursive: true);
            }
            catch (IOException)
            {
                // a file chronyd wrote as it died; the temporary directory is cleaned by the system
            }
        }
    }

    private async Task<bool> AnswersAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var client = new ChronyCommandClient(CommandEndPoint, TimeSpan.FromSeconds(1));
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline && !_process.HasExited)
        {
            try
            {
                await client.TrackingAsync(cancellationToken);
                return true;
            }
            catch (ChronyException)
            {
                await Task.Delay(50, cancellationToken); // not listening yet
            }
        }

        return false;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void Skip(string reason)
    {
        Console.WriteLine($"SKIP: {reason}");
        Assert.Skip(reason);
    }
}
