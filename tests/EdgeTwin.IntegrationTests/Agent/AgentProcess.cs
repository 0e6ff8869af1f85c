using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace EdgeTwin.IntegrationTests.Agent;

/// <summary>
/// The built <c>edgetwin</c> as a child process (copied beside the tests by the project reference), with a
/// <c>NOTIFY_SOCKET</c> the test listens on, like systemd would. Killed on dispose if still running.
/// </summary>
internal sealed class AgentProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly Socket _notify;
    private readonly string _notifyPath;

    private AgentProcess(Process process, Socket notify, string notifyPath)
    {
        _process = process;
        _notify = notify;
        _notifyPath = notifyPath;
    }

    public int Id => _process.Id;

    public string Stdout
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToString();
            }
        }
    }

    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    public static AgentProcess Start(params string[] args) => Start(new Dictionary<string, string>(), args);

    /// <summary>Starts the agent with extra environment variables (e.g. systemd's <c>WATCHDOG_USEC</c>).</summary>
    public static AgentProcess Start(IReadOnlyDictionary<string, string> environment, params string[] args) => Start(environment, null, args);

    /// <summary>
    /// Starts the agent with its RLIMIT_NOFILE set to <paramref name="openFiles"/> (soft and hard: the runtime raises the
    /// soft one to the hard one), as a unit's <c>LimitNOFILE=</c> would, through util-linux's <c>prlimit</c>.
    /// </summary>
    public static AgentProcess StartWithOpenFileLimit(int openFiles, params string[] args) =>
        Start(new Dictionary<string, string>(), [Deployment.Tool.Require("prlimit", "util-linux"), $"--nofile={openFiles}:{openFiles}", "--"], args);

    private static AgentProcess Start(IReadOnlyDictionary<string, string> environment, string[]? prefix, string[] args)
    {
        var notifyPath = Path.Combine(Path.GetTempPath(), $"edgetwin-notify-{Guid.NewGuid():N}.sock");
        var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(notifyPath));

        var psi = new ProcessStartInfo(prefix?[0] ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        if (prefix is not null)
        {
            foreach (var a in prefix.Skip(1))
            {
                psi.ArgumentList.Add(a);
            }

            psi.ArgumentList.Add(Deployment.Tool.Find("dotnet") ?? "dotnet");
        }

        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "edgetwin.dll"));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["NOTIFY_SOCKET"] = notifyPath;
        foreach (var (name, value) in environment)
        {
            psi.Environment[name] = value;
        }
        psi.Environment["DOTNET_NOLOGO"] = "1";
        var process = new Process { StartInfo = psi };
        var agent = new AgentProcess(process, notify, notifyPath);
        process.OutputDataReceived += (_, e) => Append(agent._stdout, e.Data);
        process.ErrorDataReceived += (_, e) => Append(agent._stderr, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return agent;
    }

    /// <summary>
    /// Runs one <c>edgetwin</c> command to its end (60 s at most; killed and cancelled past that) and returns its exit
    /// code, stdout and stderr.
    /// </summary>
    public static Task<(int Code, string Out, string Err)> RunCliAsync(params string[] args) =>
        RunCliAsync(new Dictionary<string, string>(), args);

    /// <summary>As <see cref="RunCliAsync(string[])"/>, with extra environment variables (e.g. <c>TMPDIR</c>).</summary>
    public static async Task<(int Code, string Out, string Err)> RunCliAsync(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var ct = TestContext.Current.CancellationToken;
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "edgetwin.dll"));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (name, value) in environment)
        {
            psi.Environment[name] = value;
        }

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
            p.Kill(entireProcessTree: true);
            throw;
        }

        return (p.ExitCode, await stdout, await stderr);
    }

    /// <summary>SIGKILLs <paramref name="pid"/> with <c>kill -KILL</c>: no shutdown code of the agent runs.</summary>
    public static void SigKill(int pid)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-KILL", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { UseShellExecute = false })!;
        kill.WaitForExit();
    }

    private static void Append(StringBuilder sb, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (sb)
        {
            sb.Append(line).Append('\n');
        }
    }

    /// <summary>Waits for a datagram on the notify socket (what systemd would receive) and returns it.</summary>
    public async Task<string> ReceiveNotifyAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        var buffer = new byte[512];
        try
        {
            var n = await _notify.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            return Encoding.UTF8.GetString(buffer, 0, n);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"no notify datagram within {timeout}; stdout:\n{Stdout}\nstderr:\n{Stderr}");
        }
    }

    /// <summary>Sends <paramref name="signal"/> (e.g. <c>HUP</c>) with <c>kill</c>.</summary>
    public async Task SignalAsync(string signal, CancellationToken cancellationToken)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-" + signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { UseShellExecute = false })!;
        await kill.WaitForExitAsync(cancellationToken);
    }

    public bool HasExited => _process.HasExited;

    /// <summary>Sends SIGTERM, as <c>systemctl stop</c> does.</summary>
    public async Task TerminateAsync(CancellationToken cancellationToken)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { UseShellExecute = false })!;
        await kill.WaitForExitAsync(cancellationToken);
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"edgetwin did not exit within {timeout}; stdout:\n{Stdout}\nstderr:\n{Stderr}");
        }

        _process.WaitForExit(); // drains the redirected output
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        _notify.Dispose();
        File.Delete(_notifyPath);
    }
}
