using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace EdgeTwin.Alerting.Tests.Support;

/// <summary>
/// A real Prometheus Alertmanager (Debian's <c>prometheus-alertmanager</c>) on 127.0.0.1 and a random port, gossip off,
/// its config and storage in a temp directory, with a short <c>resolve_timeout</c>; skips the test when it is not
/// installed. <see cref="Stop"/> and <see cref="RestartAsync"/> give an outage and a restart on the same port (it keeps
/// alerts in memory only: a restart forgets them).
/// </summary>
internal sealed class Alertmanager : IAsyncDisposable
{
    public const string Binary = "/usr/bin/prometheus-alertmanager";
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetwin-alertmanager-").FullName;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private Process? _process;

    private Alertmanager(TimeSpan resolveTimeout)
    {
        ResolveTimeout = resolveTimeout;
    }

    public int Port { get; } = Ports.FreeTcp();

    public TimeSpan ResolveTimeout { get; }

    /// <summary>The base URL, as a sink's <c>url</c> gives it.</summary>
    public Uri Url => new($"http://127.0.0.1:{Port}");

    public string LogFile => Path.Combine(_dir, "alertmanager.log");

    public static async Task<Alertmanager> StartAsync(TimeSpan resolveTimeout)
    {
        if (!File.Exists(Binary))
        {
            Assert.Skip($"{Binary} not installed (apt-get install prometheus-alertmanager)");
        }

        var am = new Alertmanager(resolveTimeout);
        await am.LaunchAsync();
        return am;
    }

    public Task RestartAsync()
    {
        Stop();
        return LaunchAsync();
    }

    private async Task LaunchAsync()
    {
        var conf = Path.Combine(_dir, "alertmanager.yml");
        var seconds = ResolveTimeout.TotalSeconds.ToString(CultureInfo.InvariantCulture);
        await File.WriteAllTextAsync(conf, $"global:\n  resolve_timeout: {seconds}s\nroute:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n");
        _process?.Dispose();
        var start = new ProcessStartInfo(Binary,
        [
            "--config.file=" + conf, $"--web.listen-address=127.0.0.1:{Port}", "--cluster.listen-address=",
            "--storage.path=" + Path.Combine(_dir, "data"),
        ])
        {
            UseShellExecute = false,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        _process = new Process { StartInfo = start };
        var log = new StreamWriter(LogFile, append: true) { AutoFlush = true };
        _process.ErrorDataReceived += (_, e) => Write(log, e.Data);
        _process.OutputDataReceived += (_, e) => Write(log, e.Data);
        _process.Exited += (_, _) => log.Dispose();
        _process.EnableRaisingEvents = true;
        _process.Start();
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                using var ready = await _http.GetAsync(new Uri(Url, "/-/ready"));
                if (ready.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline && !_process.HasExited)
            {
            }

            Assert.False(_process.HasExited, "alertmanager exited at start: " + ReadLog());
            Assert.True(DateTime.UtcNow < deadline, "alertmanager not ready within 30 s: " + ReadLog());
            await Task.Delay(50);
        }
    }

    private static void Write(StreamWriter log, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (log)
        {
            try
            {
                log.WriteLine(line);
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }

    public string ReadLog()
    {
        try
        {
            using var f = new FileStream(LogFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var r = new StreamReader(f);
            return r.ReadToEnd();
        }
        catch (IOException)
        {
            return "";
        }
    }

    /// <summary><c>GET /api/v2/alerts</c>: the alerts Alertmanager holds that have not ended (it leaves resolved ones out).</summary>
    public async Task<IReadOnlyList<AmAlert>> AlertsAsync()
    {
        using var response = await _http.GetAsync(new Uri(Url, "/api/v2/alerts"));
        response.EnsureSuccessStatusCode();
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return [.. doc.RootElement.EnumerateArray().Select(AmAlert.From)];
    }

    public void Stop()
    {
        if (_process is { HasExited: false } p)
        {
            p.Kill();
            p.WaitForExit(10_000);
        }
    }

    public ValueTask DisposeAsync()
    {
        Stop();
        _process?.Dispose();
        _http.Dispose();
        try
        {
            Directory.Delete(_dir, true);
        }
        catch (IOException)
        {
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>One alert as Alertmanager's API shows it.</summary>
internal sealed record AmAlert(IReadOnlyDictionary<string, string> Labels, IReadOnlyDictionary<string, string> Annotations, string State, DateTimeOffset StartsAt, DateTimeOffset EndsAt, DateTimeOffset UpdatedAt)
{
    public static AmAlert From(JsonElement e) => new(
        Map(e.GetProperty("labels")),
        e.TryGetProperty("annotations", out var a) ? Map(a) : new Dictionary<string, string>(),
        e.GetProperty("status").GetProperty("state").GetString()!,
        e.GetProperty("startsAt").GetDateTimeOffset(),
        e.GetProperty("endsAt").GetDateTimeOffset(),
        e.GetProperty("updatedAt").GetDateTimeOffset());

    private static Dictionary<string, string> Map(JsonElement e) =>
        e.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!, StringComparer.Ordinal);
}
