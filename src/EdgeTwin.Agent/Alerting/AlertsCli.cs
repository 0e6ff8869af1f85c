using System.CommandLine;
using System.Globalization;
using System.Net.Sockets;
using System.Text.Json;
using EdgeTwin.Alerting.Control;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Core.Config;

namespace EdgeTwin.Agent.Alerting;

/// <summary>The options and the socket round trip shared by <c>edgetwin alerts list|history|ack|silence</c>.</summary>
internal sealed class AlertsCli
{
    public const string DefaultSocket = "/var/lib/edgetwin/alerts.sock";

    public Option<FileInfo?> Config { get; } = new("--config", "-c") { Description = "Site config file; its alerts.control_socket (or state directory) locates the agent." };

    public Option<string?> Socket { get; } = new("--socket") { Description = $"Control socket of the running agent (default {DefaultSocket})." };

    public Option<bool> Json { get; } = new("--json") { Description = "Print the agent's JSON answer for scripts." };

    public Option<string> Timeout { get; } = new("--timeout") { Description = "How long to wait for the agent's answer (5s, 30s, 1m).", DefaultValueFactory = _ => "10s" };

    public void AddTo(Command command)
    {
        command.Options.Add(Config);
        command.Options.Add(Socket);
        command.Options.Add(Json);
        command.Options.Add(Timeout);
    }

    /// <summary>
    /// Sends one request and prints the answer with <paramref name="print"/> (or as JSON); returns the exit code. With
    /// <paramref name="printFailed"/> a failed answer is printed too (an ack of several alerts lists those it did).
    /// </summary>
    public async Task<int> RunAsync(ParseResult parse, string request, Func<JsonElement, TextWriter, Task> print, CancellationToken ct, bool printFailed = false)
    {
        var error = parse.InvocationConfiguration.Error;
        var output = parse.InvocationConfiguration.Output;
        var (answer, exit) = await SendAsync(parse, "alerts", request, unreachableExit: 1, ct).ConfigureAwait(false);
        if (answer is null)
        {
            return exit;
        }

        using (answer)
        {
            var root = answer.RootElement;
            if (parse.GetValue(Json))
            {
                await output.WriteLineAsync(root.GetRawText()).ConfigureAwait(false);
            }
            else if (printFailed || root.GetProperty("ok").GetBoolean())
            {
                await print(root, output).ConfigureAwait(false);
            }

            if (!root.GetProperty("ok").GetBoolean())
            {
                await error.WriteLineAsync("edgetwin alerts: " + root.GetProperty("error").GetString()).ConfigureAwait(false);
                return 1;
            }

            return 0;
        }
    }

    /// <summary>
    /// Locates the socket (<c>--socket</c>, else the config's, else <see cref="DefaultSocket"/>), sends one request and
    /// returns the answer; null with the exit code after a one-line reason on stderr naming the socket and what to do:
    /// 2 for a bad config, <paramref name="unreachableExit"/> when the agent cannot be asked (not running, permission
    /// denied, no answer within <c>--timeout</c>, busy).
    /// </summary>
    public async Task<(JsonDocument? Answer, int Exit)> SendAsync(ParseResult parse, string command, string request, int unreachableExit, CancellationToken ct)
    {
        var error = parse.InvocationConfiguration.Error;
        var prefix = "edgetwin " + command + ": ";
        var socket = parse.GetValue(Socket);
        var relativeHint = "";
        if (socket is null && parse.GetValue(Config) is { } file)
        {
            var loaded = Cli.AgentConfigFile.LoadSite(file.FullName);
            if (!loaded.IsValid)
            {
                foreach (var p in loaded.Problems)
                {
                    await error.WriteLineAsync(p.ToString()).ConfigureAwait(false);
                }

                return (null, 2);
            }

            try
            {
                var alerts = AlertsConfig.From(loaded.Config!);
                socket = AlertingExtensions.ControlSocketPath(loaded.Config!, alerts);
                if (alerts.ControlSocket is null && alerts.StateDirectory is null)
                {
                    relativeHint = Cli.RelativeStatePath.Hint(loaded.Config!.Outbox.Path, "outbox.path");
                }
            }
            catch (ConfigException ex)
            {
                await error.WriteLineAsync(ex.Message).ConfigureAwait(false);
                return (null, 2);
            }
        }

        socket ??= DefaultSocket;
        if (!Durations.TryParse(parse.GetValue(Timeout), out var timeout) || timeout <= TimeSpan.Zero)
        {
            await error.WriteLineAsync($"{prefix}--timeout '{parse.GetValue(Timeout)}' is not a positive duration (5s, 30s, 1m)").ConfigureAwait(false);
            return (null, 2);
        }

        string? problem;
        var fallback = parse.GetValue(Socket) is null ? AlertingExtensions.FallbackControlSocket() : null;
        while (true)
        {
            try
            {
                var answer = await AlertControlClient.SendAsync(socket, request, timeout, ct).ConfigureAwait(false);
                var root = answer.RootElement;
                if (root.TryGetProperty("ok", out var ok) && ok.ValueKind == JsonValueKind.False
                    && root.TryGetProperty("error", out var e) && e.GetString() is { } text && text.StartsWith("busy:", StringComparison.Ordinal))
                {
                    // The agent refused the connection as such, not the request: nothing was done.
                    answer.Dispose();
                    problem = $"the agent at {socket} is {text} (something is opening many connections at once: a script looping edgetwin in parallel?)";
                }
                else
                {
                    return (answer, 0);
                }
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.AccessDenied)
            {
                // EACCES: the socket (0660) or, more often, its directory (/var/lib/edgetwin, 0750) keeps this user out. A
                // directory the user cannot enter also hides the socket from File.Exists, which said "does not exist".
                var dir = Path.GetDirectoryName(Path.GetFullPath(socket)) ?? "/";
                var denied = File.Exists(socket) ? socket : dir;
                problem = $"permission denied on {denied}: the socket {socket} is for the agent's user and group (run as root, or as a member of the agent's group, 'edgetwin' on a gateway: sudo usermod -aG edgetwin $USER, then log in again)";
            }
            catch (SocketException ex) when ((ex.SocketErrorCode is SocketError.ConnectionRefused || !File.Exists(socket)) && fallback is not null && fallback != socket && File.Exists(fallback))
            {
                // A state directory on storage turned read-only holds no new socket (only a stale one): the agent listens
                // in its runtime directory instead.
                socket = fallback;
                continue;
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionRefused || !File.Exists(socket))
            {
                // .NET reports a missing Unix socket file as "Cannot assign requested address": say what it means.
                var what = File.Exists(socket) ? "nothing accepts connections on " + socket : socket + " does not exist" + relativeHint;
                problem = $"the agent is not running or the socket path is wrong: {what} (systemctl status edgetwin; or give --config FILE / --socket PATH)"
                    + (command == "status" ? "; what waits in the outbox without the agent: edgetwin outbox stats --config FILE" : "");
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.TryAgain or SocketError.WouldBlock)
            {
                // EAGAIN on connect: the listen backlog is full, nobody has accepted for a while.
                problem = $"the agent does not accept connections on {socket} (its queue is full: hung or overloaded; systemctl status edgetwin; journalctl -u edgetwin -n 50)";
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                problem = $"no answer from the agent at {socket} within {Durations.Format(timeout)}: it is hung or overloaded (systemctl status edgetwin; journalctl -u edgetwin -n 50; --timeout to wait longer)";
            }
            catch (Exception ex) when (ex is SocketException or IOException or JsonException)
            {
                problem = $"cannot reach the agent at {socket}: {ex.Message} (is it running, and may this user open the socket?)";
            }

            break;
        }

        await error.WriteLineAsync(prefix + problem).ConfigureAwait(false);
        return (null, unreachableExit);
    }

    public static string Request(params (string Key, object Value)[] fields)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            foreach (var (k, v) in fields)
            {
                switch (v)
                {
                    case string s:
                        w.WriteString(k, s);
                        break;
                    case long l:
                        w.WriteNumber(k, l);
                        break;
                    case int i:
                        w.WriteNumber(k, i);
                        break;
                    case double d:
                        w.WriteNumber(k, d);
                        break;
                    case bool f:
                        w.WriteBoolean(k, f);
                        break;
                    case IEnumerable<long> many:
                        w.WriteStartArray(k);
                        foreach (var n in many)
                        {
                            w.WriteNumberValue(n);
                        }

                        w.WriteEndArray();
                        break;
                }
            }

            w.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    public static string Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v.ValueKind == JsonValueKind.Number ? v.GetRawText() : v.GetString() ?? "" : "-";

    /// <summary>The ID column's width: at least 5, as wide as the widest <c>id</c> of <paramref name="rows"/>.</summary>
    public static int IdWidth(JsonElement rows)
    {
        var width = 5;
        foreach (var row in rows.EnumerateArray())
        {
            width = Math.Max(width, Str(row, "id").Length);
        }

        return width;
    }

    public static string Short(string iso) =>
        DateTimeOffset.TryParse(iso, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var t) ? t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) : iso;
}
