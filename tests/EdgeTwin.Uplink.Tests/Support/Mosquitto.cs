using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace EdgeTwin.Uplink.Tests.Support;

/// <summary>Optional broker features for one test.</summary>
internal sealed record MosquittoSettings
{
    public TestPki? Tls { get; init; }

    /// <summary>With <see cref="Tls"/>: the broker's certificate and key instead of the PKI's default one.</summary>
    public (string Cert, string Key)? ServerCertificate { get; init; }

    /// <summary>When set, anonymous clients are refused and this user/password is the only account.</summary>
    public (string User, string Password)? Account { get; init; }

    /// <summary>mosquitto's <c>message_size_limit</c> (payload bytes), when set: larger publishes are refused.</summary>
    public int? MessageSizeLimit { get; init; }

    /// <summary>mosquitto's <c>max_packet_size</c> (whole packet bytes), when set: announced to MQTT 5 clients in CONNACK.</summary>
    public int? MaxPacketSize { get; init; }

    /// <summary>
    /// mosquitto's <c>max_queued_messages</c>; null: 0 (unlimited). mosquitto 2.0.11 compares its outgoing packet count
    /// with it after refusing a publish (ACL, size), so with 0 every refusal also drops the connection ("Bad socket
    /// read/write"), and a PUBACK still in flight may be lost with it: tests of refusals set a large limit instead.
    /// </summary>
    public int? MaxQueuedMessages { get; init; }

    /// <summary>ACL lines for anonymous clients (<c>topic read edgetwin/#</c>, …); null: no ACL, everything allowed.</summary>
    public IReadOnlyList<string>? AnonymousAcl { get; init; }
}

/// <summary>
/// A real mosquitto on 127.0.0.1, own config and persistence in a temp directory, random free ports. Stop sends
/// SIGTERM (mosquitto saves its persistence file, as a restarted production broker would); Start brings it back
/// on the same ports.
/// </summary>
internal sealed class Mosquitto : IAsyncDisposable
{
    public const string Binary = "/usr/sbin/mosquitto";
    private readonly string _dir;
    private readonly MosquittoSettings _settings;
    private Process? _process;

    private Mosquitto(MosquittoSettings settings)
    {
        _settings = settings;
        _dir = Directory.CreateTempSubdirectory("edgetwin-mosquitto-").FullName;
        Port = FreePort.Next();
        TlsPort = settings.Tls is null ? 0 : FreePort.Next();
    }

    public int Port { get; }

    public int TlsPort { get; }

    public string Directory_ => _dir;

    public string LogFile => Path.Combine(_dir, "mosquitto.log");

    /// <summary>Starts a broker; skips the test, saying why, when mosquitto is not installed.</summary>
    public static async Task<Mosquitto> StartAsync(MosquittoSettings? settings = null)
    {
        if (!File.Exists(Binary))
        {
            Assert.Skip($"{Binary} not installed (apt-get install mosquitto)");
        }

        var broker = new Mosquitto(settings ?? new MosquittoSettings());
        await broker.WriteConfigAsync();
        await broker.StartAsync();
        return broker;
    }

    private async Task WriteConfigAsync()
    {
        var conf = new StringBuilder();
        conf.AppendLine("per_listener_settings false");
        conf.AppendLine("user root");
        conf.AppendLine("persistence true");
        conf.AppendLine($"persistence_location {_dir}/");
        conf.AppendLine("autosave_interval 0");
        // Persistent subscribers in the tests may be away for thousands of messages: never drop their queue.
        conf.AppendLine($"max_queued_messages {_settings.MaxQueuedMessages ?? 0}");
        if (_settings.MessageSizeLimit is { } limit)
        {
            conf.AppendLine($"message_size_limit {limit}");
        }

        if (_settings.MaxPacketSize is { } packet)
        {
            conf.AppendLine($"max_packet_size {packet}");
        }

        if (_settings.AnonymousAcl is { } acl)
        {
            var aclFile = Path.Combine(_dir, "acl");
            await File.WriteAllLinesAsync(aclFile, acl);
            conf.AppendLine($"acl_file {aclFile}");
        }

        conf.AppendLine($"log_dest file {LogFile}");
        conf.AppendLine("log_type error");
        conf.AppendLine("log_type warning");
        conf.AppendLine("log_type notice");
        conf.AppendLine("log_type information");
        if (_settings.Account is { } account)
        {
            var passwd = Path.Combine(_dir, "passwd");
            await RunAsync("/usr/bin/mosquitto_passwd", $"-c -b {passwd} {account.User} {account.Password}");
            conf.AppendLine("allow_anonymous false");
            conf.AppendLine($"password_file {passwd}");
        }
        else
        {
            conf.AppendLine("allow_anonymous true");
        }

        conf.AppendLine($"listener {Port} 127.0.0.1");
        if (_settings.Tls is { } pki)
        {
            conf.AppendLine($"listener {TlsPort} 127.0.0.1");
            conf.AppendLine($"cafile {pki.CaFile}");
            conf.AppendLine($"certfile {_settings.ServerCertificate?.Cert ?? pki.ServerCertFile}");
            conf.AppendLine($"keyfile {_settings.ServerCertificate?.Key ?? pki.ServerKeyFile}");
            conf.AppendLine("require_certificate true");
        }

        await File.WriteAllTextAsync(Path.Combine(_dir, "mosquitto.conf"), conf.ToString());
    }

    public async Task StartAsync()
    {
        var psi = new ProcessStartInfo(Binary, ["-c", Path.Combine(_dir, "mosquitto.conf")])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        _process = Process.Start(psi) ?? throw new InvalidOperationException("mosquitto did not start");
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();

        // Poll until it listens (a loaded CI machine may take seconds).
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"mosquitto exited with {_process.ExitCode}: {ReadLog()}");
            }

            if (await CanConnectAsync(Port) && (TlsPort == 0 || await CanConnectAsync(TlsPort)))
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"mosquitto did not listen on {Port} within 30 s: {ReadLog()}");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>SIGTERM and wait: mosquitto writes its persistence file and closes every connection.</summary>
    public async Task StopAsync()
    {
        if (_process is not { HasExited: false } p)
        {
            return;
        }

        await RunAsync("/bin/kill", $"-TERM {p.Id}");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill();
            await p.WaitForExitAsync();
        }

        p.Dispose();
        _process = null;
    }

    /// <summary>SIGKILL, as a crashed or powered-off broker: no DISCONNECT, no persistence written.</summary>
    public async Task KillAsync()
    {
        if (_process is not { HasExited: false } p)
        {
            return;
        }

        p.Kill();
        await p.WaitForExitAsync();
        p.Dispose();
        _process = null;
    }

    public string ReadLog()
    {
        try
        {
            using var stream = new FileStream(LogFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd();
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }

    private static async Task<bool> CanConnectAsync(int port)
    {
        try
        {
            using var client = new TcpClient();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await client.ConnectAsync("127.0.0.1", port, cts.Token);
            return true;
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            return false;
        }
    }

    private static async Task RunAsync(string file, string args)
    {
        using var p = Process.Start(new ProcessStartInfo(file, args) { UseShellExecute = false, RedirectStandardError = true })!;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await p.WaitForExitAsync(cts.Token);
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {args} failed: {await p.StandardError.ReadToEndAsync(cts.Token)}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
