using System.Diagnostics;
using System.Net;
using System.Text;

namespace EdgeTwin.Snmp.Tests.Peers;

/// <summary>
/// The scripted misbehaving SNMP agent (Peers/snmp_bad_agent.py, /usr/bin/python3, plain sockets) on a random loopback
/// port: it binds port 0 itself and says which. <see cref="SetModeAsync"/> switches its behaviour between requests.
/// Killed on dispose.
/// </summary>
public sealed class BadSnmpAgent : IAsyncDisposable
{

    /// <summary>The peer's one SNMPv3 user (authNoPriv, HMAC-SHA-96) and its engine id.</summary>
    public const string V3User = "ops";
    public const string V3Password = "authpass1";

    private Process _process = null!;
    private readonly StringBuilder _log = new();
    private readonly TaskCompletionSource<int> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource<string>? _modeAck;


    public int Port { get; private set; }
    public IPEndPoint EndPoint => new(IPAddress.Loopback, Port);

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

    /// <summary>Requests the peer has seen (each logs one REQ line).</summary>
    public int Requests => Lines("REQ ");

    /// <summary>tooBig answers the peer has sent in mode <c>toobig_over:N</c> (each logs one TOOBIG line).</summary>
    public int TooBigAnswers => Lines("TOOBIG ");

    private int Lines(string prefix)
    {
        lock (_log)
        {
            return _log.ToString().Split('\n').Count(l => l.StartsWith(prefix, StringComparison.Ordinal));
        }
    }

    public static async Task<BadSnmpAgent> StartAsync(string mode = "good")
    {
        var agent = new BadSnmpAgent();
        agent._process = PythonPeer.Start("snmp_bad_agent.py", [mode], agent.OnLine, () => agent._ready.TrySetException(new InvalidOperationException("exited")));
        try
        {
            agent.Port = await agent._ready.Task.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException)
        {
            var log = agent.Log;
            await agent.DisposeAsync();
            throw new InvalidOperationException($"snmp_bad_agent.py did not say READY: {log}", e);
        }
        return agent;
    }

    /// <summary>
    /// Switches the behaviour. The peer answers on its stdout after every line it logged before, so once this returns
    /// <see cref="Requests"/> counts every request the peer had received by then.
    /// </summary>
    public async Task SetModeAsync(string mode)
    {
        var ack = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _modeAck, ack);
        await _process.StandardInput.WriteLineAsync($"mode {mode}");
        await _process.StandardInput.FlushAsync();
        Assert.Equal(mode, await ack.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken));
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
        else if (line.StartsWith("MODE ", StringComparison.Ordinal))
        {
            Volatile.Read(ref _modeAck)?.TrySetResult(line[5..]);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await EdgeTwin.Tests.Shared.PeerProcess.StopAsync(_process);
    }
}
