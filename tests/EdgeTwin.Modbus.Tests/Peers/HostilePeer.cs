using System.Diagnostics;
using System.Text;

namespace EdgeTwin.Modbus.Tests.Peers;

/// <summary>
/// The scripted misbehaving device (<c>Peers/hostile_peer.py</c>): over TCP on a port it picks itself, or on one end
/// of a socat pty pair as units 1 (hostile) and 2 (healthy) of an RS-485 line. Killed on dispose.
/// </summary>
public sealed class HostilePeer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();
    private readonly TaskCompletionSource<string> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private HostilePeer(Process process) => _process = process;

    /// <summary>The TCP port it listens on (TCP only).</summary>
    public int Port { get; private set; }

    /// <summary>What the peer saw: one line per request with the case it answered with.</summary>
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

    /// <summary>The first <paramref name="bad"/> requests get <paramref name="kase"/>, the later ones a correct answer.</summary>
    public static Task<HostilePeer> StartTcpAsync(string kase, int? bad = null) =>
        StartAsync(bad is null ? ["tcp", kase] : ["tcp", kase, bad.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)]);

    /// <summary>Answers on <paramref name="pty"/> as unit 1 (first <paramref name="bad"/> requests: <paramref name="kase"/>) and unit 2 (always right).</summary>
    public static Task<HostilePeer> StartRtuAsync(string pty, int baud, string kase, int? bad = null)
    {
        string[] args = ["rtu", pty, baud.ToString(System.Globalization.CultureInfo.InvariantCulture), kase];
        return StartAsync(bad is null ? args : [.. args, bad.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
    }

    private static async Task<HostilePeer> StartAsync(string[] args)
    {
        if (!File.Exists(ExternalTools.Python))
        {
            Assert.Skip($"{ExternalTools.Python} not found (install Debian python3)");
        }

        var info = new ProcessStartInfo(ExternalTools.Python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add("-u");
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Peers", "hostile_peer.py"));
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        var peer = new HostilePeer(new Process { StartInfo = info, EnableRaisingEvents = true });
        peer._process.OutputDataReceived += (_, e) => peer.OnLine(e.Data);
        peer._process.ErrorDataReceived += (_, e) => peer.OnLine(e.Data);
        peer._process.Exited += (_, _) => peer._ready.TrySetException(new InvalidOperationException($"hostile_peer.py exited: {peer.Log}"));
        peer._process.Start();
        peer._process.BeginOutputReadLine();
        peer._process.BeginErrorReadLine();
        try
        {
            var ready = await peer._ready.Task.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
            var parts = ready.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            peer.Port = parts.Length > 1 ? int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) : 0;
        }
        catch
        {
            await peer.DisposeAsync();
            throw;
        }

        return peer;
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            _log.AppendLine(line);
        }

        if (line.StartsWith("READY", StringComparison.Ordinal))
        {
            _ready.TrySetResult(line);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await EdgeTwin.Tests.Shared.PeerProcess.StopAsync(_process);
    }
}
