using System.Diagnostics;

namespace EdgeTwin.Snmp.Tests.Peers;

/// <summary>A scripted peer (Peers/*.py) under Debian's Python, its output lines handed to the peer object as they come.</summary>
internal static class PythonPeer
{
    public const string Python = "/usr/bin/python3";

    /// <summary>Starts <paramref name="script"/> with <paramref name="args"/>; <paramref name="exited"/> runs when it exits.</summary>
    public static Process Start(string script, IEnumerable<string> args, Action<string?> onLine, Action exited)
    {
        Assert.SkipUnless(File.Exists(Python), $"{Python} (Debian package 'python3') is not installed");
        var info = new ProcessStartInfo(Python)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add("-u");
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Peers", script));
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => onLine(e.Data);
        process.ErrorDataReceived += (_, e) => onLine(e.Data);
        process.Exited += (_, _) => exited();
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }
}
