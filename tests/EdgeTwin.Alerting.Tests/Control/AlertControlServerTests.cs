using System.Globalization;
using System.Net.Sockets;
using System.Text.Json;
using EdgeTwin.Alerting.Control;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Alerting.Tests.Control;

/// <summary>
/// The control socket, spoken to through the real Unix socket as <c>edgetwin alerts</c> does (security review F5): who
/// acknowledged or silenced comes from the kernel, silences are capped, and no request goes unanswered.
/// </summary>
public sealed class AlertControlServerTests
{
    private const string Rules = """
        alerts:
          group_by: [rack]
          group_interval: 0s
          rules:
            - { name: inlet-hot, type: threshold, match: { metric: inlet }, above: 30, clear_below: 29, severity: critical }
        """;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The test process's user as .NET resolves it (getpwuid), not through the code under test.</summary>
    private static string Me => Environment.UserName;

    [Fact]
    public async Task Regression_the_acknowledger_was_whoever_the_request_claimed_to_be()
    {
        await using var c = await Control.StartAsync(Rules);
        c.H.Feed(c.H.Series("rack-r01", "inlet"), 35);
        var alert = c.H.Active("inlet-hot")!;

        using var answer = await c.SendAsync($$"""{"op":"ack","id":{{alert.Id}},"by":"ceo-of-company"}""");
        Assert.True(answer.RootElement.GetProperty("ok").GetBoolean(), answer.RootElement.GetRawText());
        Assert.Equal(Me, answer.RootElement.GetProperty("by").GetString());

        await Wait.UntilAsync(() => c.H.Events.Events.Any(e => e.Kind == EdgeEventKind.AlertAcknowledged), "the alert_acknowledged event");
        var ack = c.H.Events.Events.Single(e => e.Kind == EdgeEventKind.AlertAcknowledged);
        Assert.Equal(Me, ack.Attributes!["by"]);
        Assert.Contains($"(acknowledged by {Me})", ack.Message, StringComparison.Ordinal);
        Assert.Contains("acknowledged by " + Me, c.H.Manager.History(10).Select(e => e.Change));
        Assert.DoesNotContain(c.H.Manager.History(10), e => e.Change.Contains("ceo-of-company", StringComparison.Ordinal));

        // The claim is not silently dropped: the log says who claimed what and who was recorded.
        var claim = Assert.Single(c.Log.At(LogLevel.Information), l => l.Contains("ceo-of-company", StringComparison.Ordinal));
        Assert.Contains($"recorded as {Me} (uid {EffectiveUid()}, pid ", claim, StringComparison.Ordinal);
        Assert.Contains("the claim is ignored", claim, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_the_silencer_was_whoever_the_request_claimed_to_be()
    {
        await using var c = await Control.StartAsync(Rules);

        using var answer = await c.SendAsync("""{"op":"silence","rule":"inlet-hot","seconds":7200,"by":"alice"}""");
        Assert.True(answer.RootElement.GetProperty("ok").GetBoolean(), answer.RootElement.GetRawText());
        Assert.Equal(Me, answer.RootElement.GetProperty("by").GetString());

        await Wait.UntilAsync(() => c.H.Events.Events.Any(e => e.Kind == EdgeEventKind.AlertSilenced), "the alert_silenced event");
        var silence = c.H.Events.Events.Single(e => e.Kind == EdgeEventKind.AlertSilenced);
        Assert.Equal(Me, silence.Attributes!["by"]);
        Assert.EndsWith(" by " + Me, Assert.Single(c.H.Manager.History(10)).Change, StringComparison.Ordinal);
        Assert.Contains(c.Log.At(LogLevel.Information), l => l.StartsWith($"rule inlet-hot silenced until ", StringComparison.Ordinal) && l.Contains($" by {Me} (uid ", StringComparison.Ordinal));
        Assert.Contains(c.Log.At(LogLevel.Information), l => l.Contains("'alice'", StringComparison.Ordinal) && l.Contains("the claim is ignored", StringComparison.Ordinal));

        // A request without a claim (the CLI sends none now) is recorded the same way and logs no claim.
        using var lift = await c.SendAsync("""{"op":"silence","rule":"inlet-hot","seconds":0}""");
        Assert.True(lift.RootElement.GetProperty("ok").GetBoolean(), lift.RootElement.GetRawText());
        Assert.Contains("silence lifted by " + Me, c.H.Manager.History(10).Select(e => e.Change));
        Assert.Single(c.Log.At(LogLevel.Information), l => l.Contains("the claim is ignored", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_peer_is_named_by_its_uid_when_the_user_database_does_not_know_it()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-peer-").FullName;
        try
        {
            var passwd = Path.Combine(dir, "passwd");
            await File.WriteAllTextAsync(passwd, "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", Ct);
            var path = Path.Combine(dir, "s.sock");
            using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(path));
            listener.Listen(1);
            using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await client.ConnectAsync(new UnixDomainSocketEndPoint(path), Ct);
            using var accepted = await listener.AcceptAsync(Ct);

            var peer = await ControlPeer.IdentifyAsync(accepted, passwd, Ct);
            Assert.NotNull(peer);
            Assert.Equal(EffectiveUid(), peer.Uid);
            Assert.Equal(Environment.ProcessId, peer.Pid);
            Assert.Equal("uid " + EffectiveUid().ToString(CultureInfo.InvariantCulture), peer.Name);

            // With the system's user database the name is the one getpwuid gives.
            Assert.Equal(Me, (await ControlPeer.IdentifyAsync(accepted, Ct))!.Name);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Regression_a_silence_of_a_year_was_accepted()
    {
        await using var c = await Control.StartAsync(Rules);

        using var year = await c.SendAsync("""{"op":"silence","rule":"inlet-hot","seconds":31536000}""");
        Assert.False(year.RootElement.GetProperty("ok").GetBoolean());
        Assert.Equal("silence of 365d refused: longer than alerts.max_silence (24h)", year.RootElement.GetProperty("error").GetString());
        Assert.Empty(c.H.Manager.Silences());
        Assert.Contains(c.Log.At(LogLevel.Warning), l => l.Contains("silence of 365d refused", StringComparison.Ordinal));

        // The limit itself is allowed.
        using var day = await c.SendAsync("""{"op":"silence","rule":"inlet-hot","seconds":86400}""");
        Assert.True(day.RootElement.GetProperty("ok").GetBoolean(), day.RootElement.GetRawText());
        Assert.Equal(c.H.Time.GetUtcNow().AddDays(1), Assert.Single(c.H.Manager.Silences()).Value);
    }

    [Fact]
    public async Task A_configured_max_silence_is_the_limit_the_answer_names()
    {
        await using var c = await Control.StartAsync(Rules + "\n  max_silence: 2h\n");

        using var answer = await c.SendAsync("""{"op":"silence","rule":"inlet-hot","seconds":10800}""");
        Assert.Equal("silence of 3h refused: longer than alerts.max_silence (2h)", answer.RootElement.GetProperty("error").GetString());
        using var ok = await c.SendAsync("""{"op":"silence","rule":"inlet-hot","seconds":7200}""");
        Assert.True(ok.RootElement.GetProperty("ok").GetBoolean(), ok.RootElement.GetRawText());
    }

    [Theory]
    [InlineData("0s", "must be at least 1s, got '0s'")]
    [InlineData("-1h", "expected a duration like 500ms, 10s, 5m, 1h or 7d, got '-1h'")]
    [InlineData("forever", "expected a duration like 500ms, 10s, 5m, 1h or 7d, got 'forever'")]
    public void A_max_silence_that_is_not_a_positive_duration_is_a_config_error_with_file_line_and_key(string value, string message)
    {
        var (_, problems) = Yaml.Alerts(Rules + $"\n  max_silence: {value}\n", "site.yaml");
        var p = Assert.Single(problems);
        Assert.Equal("site.yaml", p.File);
        Assert.Equal(6, p.Line);
        Assert.Equal("alerts.max_silence", p.Path);
        Assert.Equal(message, p.Message);
    }

    [Fact]
    public void Max_silence_defaults_to_a_day()
    {
        Assert.Equal(TimeSpan.FromHours(24), Yaml.Valid(Rules).MaxSilence);
        Assert.Equal(TimeSpan.FromMinutes(30), Yaml.Valid(Rules + "\n  max_silence: 30m\n").MaxSilence);
    }

    [Theory]
    [InlineData("""{"op":"silence","rule":"inlet-hot","seconds":1e300}""", "silence of 1E+300 s refused: longer than alerts.max_silence (24h)")]
    [InlineData("""{"op":"silence","rule":"inlet-hot","seconds":1e400}""", "silence's 'seconds' is out of range, got 1e400")]
    [InlineData("""{"op":"silence","rule":"inlet-hot","seconds":-5}""", "silence's 'seconds' must not be negative, got -5 (0 lifts a silence)")]
    [InlineData("""{"op":"silence","rule":"inlet-hot","seconds":"NaN"}""", "silence's 'seconds' must be a number, got a string \"NaN\"")]
    [InlineData("""{"op":"silence","rule":"inlet-hot","seconds":"-Infinity"}""", "silence's 'seconds' must be a number, got a string \"-Infinity\"")]
    [InlineData("""{"op":"silence","rule":["inlet-hot"],"seconds":60}""", "silence's 'rule' must be a string, got an array [\"inlet-hot\"]")]
    [InlineData("""{"op":"silence","seconds":60}""", "silence needs 'rule' (the rule's name)")]
    [InlineData("""[{"op":"list"}]""", "request must be a JSON object like {\"op\":\"list\"}, got an array [{\"op\":\"list\"}]")]
    [InlineData("42", "request must be a JSON object like {\"op\":\"list\"}, got 42")]
    [InlineData("\"list\"", "request must be a JSON object like {\"op\":\"list\"}, got a string \"list\"")]
    [InlineData("""{"op":"reboot"}""", "unknown op 'reboot' (status, list, history, ack, silence, maintenance_done, maintenance_status)")]
    [InlineData("""{"op":"maintenance_done"}""", "maintenance_done needs 'machine' (the machine's id in models.maintenance.machines)")]
    [InlineData("""{"op":"maintenance_done","machine":"m1"}""", "this agent makes no maintenance predictions (models.maintenance is off or not configured)")]
    [InlineData("""{"op":7}""", "request's 'op' must be a string, got 7")]
    [InlineData("""{"op":"history","limit":"ten"}""", "history's 'limit' must be a whole number, got a string \"ten\"")]
    [InlineData("""{"op":"ack","id":"7"}""", "ack's 'id' must be an alert id (a whole number), got a string \"7\"")]
    [InlineData("""{"op":"ack","id":1e300}""", "ack's 'id' must be an alert id (a whole number), got 1e300")]
    [InlineData("""{"op":"ack","ids":[1,"2"]}""", "ack's 'ids' must be an array of alert ids (whole numbers), got an array [1,\"2\"]")]
    [InlineData("""{"op":"ack","all":true,"severity":3}""", "ack's 'severity' must be a string, got 3")]
    [InlineData("""{"op":"ack","rule":{"name":"x"}}""", "ack's 'rule' must be a string, got an object {\"name\":\"x\"}")]
    [InlineData("{\"op\":", "request is not JSON: ")]
    public async Task Regression_out_of_range_values_closed_the_connection_without_an_answer_or_a_log_line(string request, string error)
    {
        await using var c = await Control.StartAsync(Rules);

        using var answer = await c.SendAsync(request);
        Assert.False(answer.RootElement.GetProperty("ok").GetBoolean());
        var text = answer.RootElement.GetProperty("error").GetString()!;
        if (error.EndsWith(": ", StringComparison.Ordinal))
        {
            Assert.StartsWith(error, text, StringComparison.Ordinal);
        }
        else
        {
            Assert.Equal(error, text);
        }

        var warning = Assert.Single(c.Log.At(LogLevel.Warning));
        Assert.Contains($" from {Me} (uid {EffectiveUid()}, pid ", warning, StringComparison.Ordinal);
        Assert.EndsWith("refused: " + text, warning, StringComparison.Ordinal);
        Assert.Empty(c.H.Manager.Silences());

        // The server goes on.
        using var list = await c.SendAsync("""{"op":"list"}""");
        Assert.True(list.RootElement.GetProperty("ok").GetBoolean());
    }

    [Fact]
    public async Task A_request_longer_than_the_limit_gets_an_answer_and_a_warning()
    {
        await using var c = await Control.StartAsync(Rules);

        using var answer = await c.SendAsync("""{"op":"list","pad":""" + "\"" + new string('x', 70_000) + "\"}");
        Assert.False(answer.RootElement.GetProperty("ok").GetBoolean());
        Assert.Equal("request longer than 65536 bytes", answer.RootElement.GetProperty("error").GetString());
        Assert.Contains(c.Log.At(LogLevel.Warning), l => l.EndsWith("refused: request longer than 65536 bytes", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Regression_control_socket_connections_were_not_capped()
    {
        // A script looping `edgetwin status` in parallel, or clients that connect and hang: each used to get its own task
        // and socket, without limit. Now the ones over the limit are answered "busy" at once and closed.
        await using var c = await Control.StartAsync(Rules, maxConnections: 3);
        var held = new List<Socket>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(c.Socket), Ct);
                held.Add(s);
            }

            await Wait.UntilAsync(() => c.Server.Connections == 3, "three connections being served");
            var started = System.Diagnostics.Stopwatch.StartNew();
            using (var busy = await c.SendAsync("""{"op":"list"}"""))
            {
                Assert.False(busy.RootElement.GetProperty("ok").GetBoolean());
                Assert.Equal("busy: 3 control connections are already open (the limit); try again in a few seconds", busy.RootElement.GetProperty("error").GetString());
            }

            Assert.True(started.Elapsed < TimeSpan.FromSeconds(3), $"the refusal took {started.Elapsed}");
            Assert.Equal(3, c.Server.Connections);
            Assert.Contains(c.Log.At(LogLevel.Warning), l => l.Contains("busy: refused 1 connection(s) over the limit of 3", StringComparison.Ordinal));

            // One slot frees: the next client is served.
            held[0].Dispose();
            held.RemoveAt(0);
            await Wait.UntilAsync(() => c.Server.Connections == 2, "a slot freed");
            using var list = await c.SendAsync("""{"op":"list"}""");
            Assert.True(list.RootElement.GetProperty("ok").GetBoolean(), list.RootElement.GetRawText());
        }
        finally
        {
            held.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public async Task Regression_a_client_that_sent_nothing_held_its_connection_for_30s()
    {
        await using var c = await Control.StartAsync(Rules);
        using var idle = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await idle.ConnectAsync(new UnixDomainSocketEndPoint(c.Socket), Ct);
        await Wait.UntilAsync(() => c.Server.Connections == 1, "the idle connection served");

        // The server gives up on it after RequestTimeout (5 s), not after the whole connection's 30 s.
        var started = System.Diagnostics.Stopwatch.StartNew();
        var buffer = new byte[16];
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        limit.CancelAfter(TimeSpan.FromSeconds(15));
        Assert.Equal(0, await idle.ReceiveAsync(buffer, SocketFlags.None, limit.Token));
        Assert.InRange(started.Elapsed, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(12));
        await Wait.UntilAsync(() => c.Server.Connections == 0, "the slot freed");
    }

    /// <summary>The effective uid of this process (<c>/proc/self/status</c>), as the kernel reports it to the server.</summary>
    private static uint EffectiveUid()
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("Uid:", StringComparison.Ordinal));
        return uint.Parse(line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[2], CultureInfo.InvariantCulture);
    }

    /// <summary>The control harness with a webhook sink "noc" to <paramref name="hook"/> that retries every 30 s.</summary>
    private static Task<Control> StartWithWebhookAsync(TinyHttpServer hook) => Control.StartAsync(Rules.Replace(
        "\n  rules:",
        $"\n  sinks:\n    - {{ name: noc, type: webhook, url: \"{hook.Url}\", retries: 0, retry_delay: 30s, timeout: 5s }}\n  rules:",
        StringComparison.Ordinal));

    private static JsonElement Sink(JsonDocument list, string name) =>
        list.RootElement.GetProperty("sinks").EnumerateArray().Single(s => s.GetProperty("name").GetString() == name);

    [Fact]
    public async Task Regression_alerts_list_did_not_show_that_the_webhook_was_down()
    {
        var up = false;
        await using var hook = new TinyHttpServer { Respond = _ => Volatile.Read(ref up) ? 200 : 503 };
        await using var c = await StartWithWebhookAsync(hook);
        c.H.Feed(c.H.Series("rack-r01", "inlet"), 35);
        var runner = c.H.Service.Sinks.Single(r => r.Name == "noc");
        await Wait.UntilAsync(() => runner.Outage is not null, "the webhook down");

        using (var list = await c.SendAsync("""{"op":"list"}"""))
        {
            var noc = Sink(list, "noc");
            Assert.Equal("2026-11-30T12:00:00.000Z", noc.GetProperty("down_since").GetString());
            Assert.Equal(1, noc.GetProperty("down_attempts").GetInt32());
            Assert.Equal($"{hook.Url} answered 503 X", noc.GetProperty("down_reason").GetString());
            Assert.Equal(1, noc.GetProperty("failed").GetInt64());
            Assert.Equal(0, noc.GetProperty("delivered").GetInt64());
        }

        // Back: the held message goes out at the next try (30 s later) and the sink is no longer listed down.
        Volatile.Write(ref up, true);
        c.H.Advance(TimeSpan.FromSeconds(31));
        await Wait.UntilAsync(() => runner.Delivered == 1, "the held message delivered");
        using (var list = await c.SendAsync("""{"op":"list"}"""))
        {
            var noc = Sink(list, "noc");
            Assert.False(noc.TryGetProperty("down_since", out _));
        }

        Assert.Equal(2, hook.Hits.Count);
    }

    [Fact]
    public async Task Alerts_list_counts_the_messages_a_sink_superseded_while_its_peer_was_down()
    {
        var up = false;
        await using var hook = new TinyHttpServer { Respond = _ => Volatile.Read(ref up) ? 200 : 503 };
        await using var c = await StartWithWebhookAsync(hook);
        var s = c.H.Series("rack-r01", "inlet");
        c.H.Feed(s, 35);
        var runner = c.H.Service.Sinks.Single(r => r.Name == "noc");
        await Wait.UntilAsync(() => runner.Outage is not null, "the webhook down");
        c.H.Feed(s, 20); // resolved while the webhook is down: its RESOLVED is queued behind the held FIRING
        await Wait.UntilAsync(() => runner.QueueDepth == 1, "the RESOLVED queued");

        // Back: at the next try the held FIRING is superseded by the RESOLVED, which alone goes out.
        Volatile.Write(ref up, true);
        c.H.Advance(TimeSpan.FromSeconds(31));
        await Wait.UntilAsync(() => runner.Delivered == 1, "the RESOLVED delivered");
        using (var list = await c.SendAsync("""{"op":"list"}"""))
        {
            var noc = list.RootElement.GetProperty("sinks").EnumerateArray().Single(e => e.GetProperty("name").GetString() == "noc");
            Assert.Equal(1, noc.GetProperty("superseded").GetInt64());
            Assert.Equal(1, noc.GetProperty("delivered").GetInt64());
            Assert.Equal(0, noc.GetProperty("queued").GetInt64());
        }

        Assert.Equal(2, hook.Hits.Count); // the failed FIRING, then the RESOLVED
        using var delivered = JsonDocument.Parse(hook.Hits[1].Body);
        Assert.Equal("resolved", delivered.RootElement.GetProperty("alerts")[0].GetProperty("status").GetString());
    }

    private sealed class Control : IAsyncDisposable
    {
        private AlertControlServer _server = null!;

        public Harness H { get; private set; } = null!;

        public ListLogger Log { get; } = new();

        public string Socket => Path.Combine(H.Dir, "alerts.sock");

        public AlertControlServer Server => _server;

        public static async Task<Control> StartAsync(string rules, int maxConnections = 16)
        {
            var c = new Control { H = await Harness.StartAsync(rules) };
            c._server = new AlertControlServer(c.H.Service, c.Socket, c.H.Time, c.Log) { MaxConnections = maxConnections };
            c._server.Start();
            return c;
        }

        public Task<JsonDocument> SendAsync(string request) =>
            AlertControlClient.SendAsync(Socket, request, TimeSpan.FromSeconds(10), Ct);

        public async ValueTask DisposeAsync()
        {
            await _server.DisposeAsync();
            await H.DisposeAsync();
        }
    }
}
