using System.Diagnostics;
using System.Net;
using System.Text;

namespace EdgeTwin.Snmp.Tests.Peers;

/// <summary>
/// pysnmp 4.4's command responder (Peers/pysnmp_v3_agent.py under /usr/bin/python3, Debian python3-pysnmp4) on a random
/// loopback port it binds itself: a second USM implementation, with users in both AES-192/256 key extensions (see the
/// script). Killed on dispose.
/// </summary>
public sealed class PySnmpAgent : IAsyncDisposable
{
    public const string AuthPassword = "authpass123";
    public const string PrivPassword = "privpass123";

    private Process _process = null!;
    private readonly StringBuilder _log = new();
    private readonly TaskCompletionSource<int> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);


    public int Port { get; private set; }
    public IPEndPoint EndPoint => new(IPAddress.Loopback, Port);

    /// <summary>Requests the peer could not decrypt (it logs one DECRYPTION-ERROR line each and drops them).</summary>
    public int DecryptionErrors
    {
        get
        {
            lock (_log)
            {
                return _log.ToString().Split('\n').Count(l => l.StartsWith("DECRYPTION-ERROR", StringComparison.Ordinal));
            }
        }
    }

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

    public static async Task<PySnmpAgent> StartAsync()
    {
        Assert.SkipUnless(Directory.Exists("/usr/lib/python3/dist-packages/pysnmp"), "pysnmp (Debian package 'python3-pysnmp4') is not installed");
        var agent = new PySnmpAgent();
        agent._process = PythonPeer.Start("pysnmp_v3_agent.py", [], agent.OnLine, () => agent._ready.TrySetException(new InvalidOperationException("exited")));
        try
        {
            agent.Port = await agent._ready.Task.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException)
        {
            var log = agent.Log;
            await agent.DisposeAsync();
            throw new InvalidOperationException($"pysnmp_v3_agent.py did not say READY: {log}", e);
        }
        return agent;
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
        if (line.StartsWith("READY ", StringComparison.Ordinal) && int.TryParse(line.AsSpan(6), out var port))
        {
            _ready.TrySetResult(port);
        }
    }

    public async ValueTask DisposeAsync() => await PeerProcess.StopAsync(_process);
}
