using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace EdgeTwin.Benchmarks.Uplink;

/// <summary>A local mosquitto on a free loopback port for the uplink benchmarks (killed in cleanup).</summary>
internal sealed class BenchBroker : IDisposable
{
    private readonly Process _process;
    private readonly string _dir;

    public BenchBroker()
    {
        const string binary = "/usr/sbin/mosquitto";
        if (!File.Exists(binary))
        {
            throw new InvalidOperationException($"{binary} not installed (apt-get install mosquitto): the uplink benchmarks need a local broker");
        }

        _dir = Directory.CreateTempSubdirectory("edgetwin-bench-mosquitto-").FullName;
        using (var l = new TcpListener(IPAddress.Loopback, 0))
        {
            l.Start();
            Port = ((IPEndPoint)l.LocalEndpoint).Port;
        }

        var conf = Path.Combine(_dir, "mosquitto.conf");
        File.WriteAllText(conf, $"user root\nallow_anonymous true\nmax_queued_messages 0\nlog_type error\nlistener {Port} 127.0.0.1\n");
        _process = Process.Start(new ProcessStartInfo(binary, ["-c", conf]) { UseShellExecute = false, RedirectStandardError = true })!;

        // A benchmark that throws (a guard that found less work than claimed) gets no [GlobalCleanup]: the broker must
        // not outlive the process.
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                using var c = new TcpClient();
                c.Connect(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !_process.HasExited)
            {
                Thread.Sleep(50);
            }
        }
    }

    public int Port { get; }

    private void OnProcessExit(object? sender, EventArgs e) => Dispose();

    private bool _disposed;

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        _process.Kill();
        _process.WaitForExit(10_000);
        _process.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
