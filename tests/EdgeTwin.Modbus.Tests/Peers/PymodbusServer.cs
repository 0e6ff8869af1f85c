using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace EdgeTwin.Modbus.Tests.Peers;

/// <summary>
/// A real pymodbus server in a child process (Peers/pymodbus_server.py) on a random free port or a pty.
/// Killed and cleaned up on dispose.
/// </summary>
public sealed class PymodbusServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _configPath;
    private readonly StringBuilder _log = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private PymodbusServer(Process process, string configPath, int port)
    {
        _process = process;
        _configPath = configPath;
        Port = port;
    }

    public int Port { get; }

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

    /// <summary>
    /// Units as {"1": {"hr": {"0": [..]}, ...}}; behavior as in the script's docstring. Ready only when the script says
    /// READY (it has bound the port): a port that merely accepts connections may belong to another test's server, taken
    /// between <see cref="ExternalTools.FreeTcpPort"/> and the bind (regression: a read answered [0, 0] by a neighbour's
    /// map). A bind lost that way is retried on a new port.
    /// </summary>
    /// <param name="host">The address it listens on: 127.0.0.1, or <c>::1</c> for a device on an IPv6-only network.</param>
    public static async Task<PymodbusServer> StartTcpAsync(JsonObject units, JsonObject? behavior = null, bool rtuFraming = false, string host = "127.0.0.1")
    {
        for (var attempt = 1; ; attempt++)
        {
            var config = new JsonObject
            {
                ["mode"] = rtuFraming ? "rtu-tcp" : "tcp",
                ["host"] = host,
                ["port"] = ExternalTools.FreeTcpPort(),
                ["units"] = units.DeepClone(),
                ["behavior"] = behavior?.DeepClone() ?? new JsonObject(),
            };
            try
            {
                return await StartAsync(config);
            }
            catch (PortLostException) when (attempt < 3)
            {
            }
        }
    }

    public static Task<PymodbusServer> StartSerialAsync(string serialPath, int baud, JsonObject units, JsonObject? behavior = null, bool broadcast = false) =>
        StartAsync(new JsonObject
        {
            ["mode"] = "rtu",
            ["serial"] = serialPath,
            ["baud"] = baud,
            ["units"] = units,
            ["behavior"] = behavior ?? new JsonObject(),
            ["broadcast"] = broadcast,
        });

    private static async Task<PymodbusServer> StartAsync(JsonObject config)
    {
        ExternalTools.RequirePymodbus();
        var script = Path.Combine(AppContext.BaseDirectory, "Peers", "pymodbus_server.py");
        var configPath = Path.Combine(Path.GetTempPath(), $"edgetwin-pymodbus-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(configPath, config.ToJsonString(), TestContext.Current.CancellationToken);
        var process = new Process
        {
            StartInfo = new ProcessStartInfo(ExternalTools.Python)
            {
                ArgumentList = { "-u", script, configPath },
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            },
            EnableRaisingEvents = true,
        };
        int port = config["port"]?.GetValue<int>() ?? 0;
        var server = new PymodbusServer(process, configPath, port);
        process.OutputDataReceived += (_, e) => server.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => server.OnLine(e.Data);
        process.Exited += (_, _) => server._ready.TrySetException(new InvalidOperationException("exited"));
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            // Generous: a loaded 2-core CI machine takes seconds to import pymodbus.
            await server._ready.Task.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException)
        {
            await process.WaitForExitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { }, TaskScheduler.Default);
            var log = server.Log;
            await server.DisposeAsync();
            if (log.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                throw new PortLostException(port, log);
            }

            throw new InvalidOperationException(e is TimeoutException
                ? $"pymodbus did not say READY within 30 s ({config["mode"]}): {log}"
                : $"pymodbus exited before READY ({config["mode"]}): {log}", e);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }

        return server;
    }

    /// <summary>The free port was taken by another process before pymodbus bound it.</summary>
    private sealed class PortLostException(int port, string log) : Exception($"port {port} was taken before pymodbus bound it: {log}");

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

        if (line.Contains("READY", StringComparison.Ordinal))
        {
            _ready.TrySetResult();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await EdgeTwin.Tests.Shared.PeerProcess.StopAsync(_process);
        File.Delete(_configPath);
    }

    /// <summary>Builds a units object: unit → table → start address → values.</summary>
    public static JsonObject Units(params (int Unit, string Table, int Address, int[] Values)[] blocks)
    {
        var units = new JsonObject();
        foreach (var (unit, table, address, values) in blocks)
        {
            var u = units[unit.ToString()] as JsonObject ?? new JsonObject();
            units[unit.ToString()] = u;
            var t = u[table] as JsonObject ?? new JsonObject();
            u[table] = t;
            t[address.ToString()] = JsonSerializer.SerializeToNode(values);
        }

        return units;
    }
}

/// <summary>A socat pty pair: two linked pseudo-terminals, like the two ends of a serial cable.</summary>
public sealed class SocatPtyPair : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _dir;

    private SocatPtyPair(Process process, string dir)
    {
        _process = process;
        _dir = dir;
        A = Path.Combine(dir, "ttyA");
        B = Path.Combine(dir, "ttyB");
    }

    public string A { get; }

    public string B { get; }

    /// <param name="dir">
    /// Where to put the two links; a pair started again in the directory of a disposed one is a USB adapter plugged
    /// back in (the same path, a new device behind it).
    /// </param>
    public static async Task<SocatPtyPair> StartAsync(string? dir = null)
    {
        var socat = ExternalTools.Require("socat", "socat");
        dir ??= Path.Combine(Path.GetTempPath(), $"edgetwin-pty-{Guid.NewGuid():N}");
        System.IO.Directory.CreateDirectory(dir);
        var process = Process.Start(new ProcessStartInfo(socat)
        {
            ArgumentList = { "-d", "-d", $"pty,raw,echo=0,link={Path.Combine(dir, "ttyA")}", $"pty,raw,echo=0,link={Path.Combine(dir, "ttyB")}" },
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        })!;
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        var pair = new SocatPtyPair(process, dir);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!(File.Exists(pair.A) && File.Exists(pair.B)))
        {
            if (process.HasExited || DateTime.UtcNow > deadline)
            {
                await pair.DisposeAsync();
                throw new InvalidOperationException("socat did not create the pty pair");
            }

            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        return pair;
    }

    public async ValueTask DisposeAsync()
    {
        await EdgeTwin.Tests.Shared.PeerProcess.StopAsync(_process);
        try
        {
            System.IO.Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
