using System.Diagnostics;
using System.Text.Json;

namespace EdgeTwin.Alerting.Tests.Support;

/// <summary>
/// A real SMTP relay on 127.0.0.1 and a random port: Peers/smtp_relay.py (Debian's python3-aiosmtpd) run by
/// /usr/bin/python3; each mail it takes is a JSON line in a temp file. Skips the test when aiosmtpd is not installed.
/// </summary>
internal sealed class SmtpRelay : IAsyncDisposable
{
    public const string Python = "/usr/bin/python3";
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetwin-smtp-relay-").FullName;
    private Process? _process;

    private SmtpRelay(int port, Options options)
    {
        Port = port;
        Current = options;
    }

    /// <summary>What the relay offers and requires.</summary>
    /// <param name="Tls">STARTTLS (required before MAIL) with this certificate and key; with <paramref name="Implicit"/>, TLS from the first byte.</param>
    /// <param name="Account">AUTH required, for this user and password (over TLS when TLS is offered).</param>
    /// <param name="Reject">Recipients it refuses with 550.</param>
    public sealed record Options((string Cert, string Key)? Tls = null, bool Implicit = false, (string User, string Password)? Account = null, IReadOnlyList<string>? Reject = null);

    public int Port { get; }

    public Options Current { get; private set; }

    private string Out => Path.Combine(_dir, "mails.jsonl");

    /// <summary>A relay on a free port; with <paramref name="start"/> false only the port is taken (a relay down at first).</summary>
    public static async Task<SmtpRelay> StartAsync(Options? options = null, bool start = true)
    {
        if (!File.Exists(Python) || !Directory.Exists("/usr/lib/python3/dist-packages/aiosmtpd"))
        {
            Assert.Skip("python3-aiosmtpd not installed (apt-get install python3-aiosmtpd)");
        }

        var relay = new SmtpRelay(Ports.FreeTcp(), options ?? new Options());
        if (start)
        {
            await relay.LaunchAsync();
        }

        return relay;
    }

    /// <summary>Stops it (if running) and starts it again on the same port, with <paramref name="options"/> when given.</summary>
    public Task RestartAsync(Options? options = null)
    {
        Stop();
        Current = options ?? Current;
        return LaunchAsync();
    }

    private async Task LaunchAsync()
    {
        var script = Path.Combine(AppContext.BaseDirectory, "Peers", "smtp_relay.py");
        var args = new List<string> { script, "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--out", Out };
        if (Current.Tls is { } tls)
        {
            args.AddRange(["--cert", tls.Cert, "--key", tls.Key]);
            if (Current.Implicit)
            {
                args.Add("--implicit");
            }
        }

        if (Current.Account is { } account)
        {
            args.AddRange(["--user", account.User, "--password", account.Password]);
        }

        foreach (var r in Current.Reject ?? [])
        {
            args.AddRange(["--reject", r]);
        }

        var start = new ProcessStartInfo(Python, args) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        var process = Process.Start(start)!;
        _process = process;
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        string? line;
        try
        {
            line = await process.StandardOutput.ReadLineAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            line = null;
        }

        if (line is null || !line.StartsWith("ready ", StringComparison.Ordinal))
        {
            Stop();
            Assert.Fail($"smtp_relay.py did not start on port {Port}: {line} {await stderr}");
        }
    }

    /// <summary>Kills the relay: the port refuses connections until <see cref="RestartAsync"/>.</summary>
    public void Stop()
    {
        if (_process is not { } p)
        {
            return;
        }

        _process = null;
        try
        {
            if (!p.HasExited)
            {
                p.Kill(entireProcessTree: true);
                p.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
        }

        p.Dispose();
    }

    /// <summary>The mails taken so far, in order.</summary>
    public IReadOnlyList<Mail> Mails
    {
        get
        {
            if (!File.Exists(Out))
            {
                return [];
            }

            var mails = new List<Mail>();
            foreach (var line in File.ReadAllLines(Out).Where(l => l.Length > 0))
            {
                using var json = JsonDocument.Parse(line);
                var r = json.RootElement;
                mails.Add(new Mail(
                    r.GetProperty("mail_from").GetString()!,
                    [.. r.GetProperty("rcpt_tos").EnumerateArray().Select(e => e.GetString()!)],
                    MimeKit.MimeMessage.Load(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(r.GetProperty("data").GetString()!))),
                    r.GetProperty("tls").GetBoolean(),
                    r.GetProperty("login").GetString()));
            }

            return mails;
        }
    }

    public ValueTask DisposeAsync()
    {
        Stop();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>One mail as the relay took it: envelope, the parsed message, whether the session was TLS and who logged in.</summary>
    public sealed record Mail(string MailFrom, IReadOnlyList<string> RcptTos, MimeKit.MimeMessage Message, bool Tls, string? Login)
    {
        public string Subject => Message.Subject ?? "";

        public string Body => Message.TextBody ?? "";
    }
}
