using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace EdgeTwin.Modbus.Tests.Peers;

/// <summary>Finds the Debian tools the tests use as real peers; tests skip with the reason when one is missing.</summary>
public static class ExternalTools
{
    public const string Python = "/usr/bin/python3";

    private static readonly Lazy<string?> PymodbusProblem = new(() =>
    {
        if (!File.Exists(Python))
        {
            return $"{Python} not found (install Debian python3)";
        }

        var (code, output) = Run(Python, "-c \"import pymodbus, serial; print(pymodbus.__version__)\"");
        return code == 0 ? null : $"pymodbus not importable (install Debian python3-pymodbus python3-serial): {output.Trim()}";
    });

    public static string? Find(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':'))
        {
            var path = Path.Combine(dir, name);
            if (File.Exists(path))
            {
                return path;
            }
        }

        return null;
    }

    public static void RequirePymodbus()
    {
        if (PymodbusProblem.Value is { } problem)
        {
            Assert.Skip(problem);
        }
    }

    public static string Require(string tool, string package)
    {
        var path = Find(tool);
        if (path is null)
        {
            Assert.Skip($"{tool} not found on PATH (install Debian {package})");
        }

        return path!;
    }

    public static int FreeTcpPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static (int ExitCode, string Output) Run(string file, string arguments, int timeoutMs = 60_000)
    {
        using var p = Process.Start(new ProcessStartInfo(file, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        })!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutMs))
        {
            p.Kill(entireProcessTree: true);
            return (-1, "timed out");
        }

        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}
