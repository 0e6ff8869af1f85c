using System.Diagnostics;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Uplink.Tests.Support;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Alerting.Tests.Sinks;

/// <summary>
/// The smtp sink against a real relay (Debian's python3-aiosmtpd, <see cref="SmtpRelay"/>): what the on-call mailbox
/// gets, STARTTLS and AUTH, a relay that is down or refuses the login (the alert held, then delivered), refused
/// recipients, and a 1,000-rule storm.
/// </summary>
public sealed class SmtpSinkTests : IAsyncDisposable
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    private readonly string _dir = Directory.CreateTempSubdirectory("edgetwin-alerts-smtp-").FullName;
    private readonly List<IAsyncDisposable> _owned = [];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask DisposeAsync()
    {
        // Runners first (they may be talking to the relay), then the relays: no python process outlives the test.
        foreach (var d in Enumerable.Reverse(_owned))
        {
            await d.DisposeAsync();
        }

        Directory.Delete(_dir, recursive: true);
    }

    private async Task<SmtpRelay> RelayAsync(SmtpRelay.Options? options = null, bool start = true)
    {
        var relay = await SmtpRelay.StartAsync(options, start);
        _owned.Add(relay);
        return relay;
    }

    private async Task<SinkRunner> RunnerAsync(SmtpSinkConfig config, ILogger? log = null, AlertingMetrics? metrics = null)
    {
        var runner = new SinkRunner(new SmtpSink(config, "dc1", "gw1", log, metrics), config, log, metrics);
        _owned.Add(runner);
        await runner.StartAsync(Ct);
        return runner;
    }

    private static SmtpSinkConfig Plain(SmtpRelay relay, params string[] to) => new()
    {
        Name = "mail",
        Host = "127.0.0.1",
        Port = relay.Port,
        Tls = SmtpTls.None,
        From = "EdgeTwin gw1 <edgetwin-gw1@plant.example>",
        To = to.Length > 0 ? to : ["oncall@plant.example", "facilities@plant.example"],
        Retries = 1,
        RetryDelay = TimeSpan.FromMilliseconds(20),
        Timeout = TimeSpan.FromSeconds(10),
    };

    private static AlertSnapshot Alert(long id, AlertStatus status, string key = "rack-r01/inlet") => new(
        id, "inlet-hot", key, status, status == AlertStatus.Resolved ? AlertState.Resolved : AlertState.Firing, EventSeverity.Critical, 31.5,
        $"rack {key} (room1, site dc1): inlet_temperature 31.5 °C above 30 °C since 12:00:00 UTC",
        new Dictionary<string, string> { ["room"] = "room1", ["rack"] = "r01" }, [],
        T0, status == AlertStatus.Resolved ? T0.AddMinutes(7) : null, null, false, T0)
    {
        ValueText = "31.5 °C",
        Peak = 34.6,
        PeakText = "34.6 °C",
        Action = status == AlertStatus.Resolved ? null : "Check the CRAC of rack r01's row",
        RunbookUrl = "https://wiki.example/dc1/runbooks/inlet-hot",
        Place = $"rack {key.Split('/')[0]["rack-".Length..]} (room1)",
    };

    private static AlertNotification Message(params AlertSnapshot[] alerts) => new("room=room1", alerts, T0);

    private static void Send(SinkRunner runner, params AlertSnapshot[] alerts)
    {
        var m = Message(alerts);
        runner.Enqueue(m, m.Alerts);
    }

    [Fact]
    public async Task A_raise_and_its_clear_reach_every_recipient_with_a_lock_screen_subject_and_the_alert_text()
    {
        var relay = await RelayAsync();
        var runner = await RunnerAsync(Plain(relay));
        Send(runner, Alert(1, AlertStatus.Firing));
        await Wait.UntilAsync(() => relay.Mails.Count == 1, "the raise at the relay");
        Send(runner, Alert(1, AlertStatus.Resolved));
        await Wait.UntilAsync(() => relay.Mails.Count == 2, "the clear at the relay");

        var (raise, clear) = (relay.Mails[0], relay.Mails[1]);
        Assert.Equal("edgetwin-gw1@plant.example", raise.MailFrom);
        Assert.Equal(["oncall@plant.example", "facilities@plant.example"], raise.RcptTos);
        Assert.Equal("[CRITICAL] dc1: inlet-hot rack r01 (room1) FIRING", raise.Subject);
        Assert.Equal("[CRITICAL] dc1: inlet-hot rack r01 (room1) RESOLVED", clear.Subject);
        Assert.Equal("auto-generated", raise.Message.Headers["Auto-Submitted"]);
        Assert.Equal(MimeKit.MessageImportance.High, raise.Message.Importance);
        Assert.Equal(MimeKit.MessageImportance.Normal, clear.Message.Importance);
        Assert.Equal(
            """
            Site dc1, gateway gw1: 1 alert change (1 firing).

            FIRING critical inlet-hot: rack-r01/inlet
              rack rack-r01/inlet (room1, site dc1): inlet_temperature 31.5 °C above 30 °C since 12:00:00 UTC
              value: 31.5 °C, peak 34.6 °C
              since 2026-11-30 12:00:00 UTC
              first action: Check the CRAC of rack r01's row
              runbook: https://wiki.example/dc1/runbooks/inlet-hot
              alert 1, rack=r01 room=room1

            -- 
            EdgeTwin gw1 (site dc1), group room=room1, 2026-11-30 12:00:00 UTC. Acknowledge on the gateway: edgetwin alerts ack ID

            """.ReplaceLineEndings("\n"),
            raise.Body.ReplaceLineEndings("\n"));
        Assert.Contains("RESOLVED critical inlet-hot: rack-r01/inlet\n", clear.Body.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        Assert.Contains("  fired 2026-11-30 12:00:00 UTC, resolved 2026-11-30 12:07:00 UTC\n", clear.Body.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        Assert.DoesNotContain("first action", clear.Body, StringComparison.Ordinal);

        // The relay has the mail once DATA ends, before its 250 reaches the sink: the delivery is counted a moment later
        // (read at once, it was 1 in one CI run).
        await Wait.UntilAsync(() => runner.Delivered == 2, "both deliveries counted");
        Assert.Equal(2, runner.Delivered);
    }

    [Fact]
    public async Task Starttls_and_auth_from_the_site_config_reach_a_relay_that_requires_both()
    {
        using var pki = new TestPki();
        var relay = await RelayAsync(new SmtpRelay.Options(Tls: (pki.ServerCertFile, pki.ServerKeyFile), Account: ("gw1", "s3cret pass")));
        var passwordFile = Path.Combine(_dir, "smtp.pw");
        await File.WriteAllTextAsync(passwordFile, "s3cret pass\n", Ct);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(passwordFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        var config = Yaml.Valid($$"""
            alerts:
              sinks:
                - name: mail
                  type: smtp
                  host: 127.0.0.1
                  port: {{relay.Port}}
                  username: gw1
                  password_file: {{passwordFile}}
                  ca_file: {{pki.CaFile}}
                  from: edgetwin-gw1@plant.example
                  to: [oncall@plant.example]
                  subject: "{severity} {site}/{gateway} {rule} {status}{more}"
            """);
        var sink = Assert.IsType<SmtpSinkConfig>(Assert.Single(config.Sinks));
        Assert.Equal(SmtpTls.StartTls, sink.Tls); // the default
        var runner = await RunnerAsync(sink);
        Send(runner, Alert(1, AlertStatus.Firing), Alert(2, AlertStatus.Firing, "rack-r02/inlet"), Alert(3, AlertStatus.Resolved, "rack-r03/inlet"));
        await Wait.UntilAsync(() => relay.Mails.Count == 1, "the mail over STARTTLS with AUTH");

        var mail = relay.Mails[0];
        Assert.True(mail.Tls);
        Assert.Equal("gw1", mail.Login);
        Assert.Equal("CRITICAL dc1/gw1 inlet-hot FIRING (+2 more: 1 firing, 1 resolved)", mail.Subject);
        Assert.StartsWith("Site dc1, gateway gw1: 3 alert changes (2 firing, 1 resolved).", mail.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Implicit_tls_to_a_relay_reached_by_address_checks_its_certificate_against_server_name()
    {
        using var pki = new TestPki(false, "relay.plant.lan");
        var relay = await RelayAsync(new SmtpRelay.Options(Tls: pki.ServerFor("relay.plant.lan"), Implicit: true));
        var withoutName = await RunnerAsync(Plain(relay) with { Name = "bare", Tls = SmtpTls.Implicit, CaFile = pki.CaFile, Retries = 0 });
        Send(withoutName, Alert(1, AlertStatus.Firing));
        await Wait.UntilAsync(() => withoutName.Outage is not null, "the certificate refused for 127.0.0.1");
        Assert.Equal($"smtp relay 127.0.0.1:{relay.Port}: TLS handshake refused: server certificate CN=relay.plant.lan (SAN DNS:relay.plant.lan) does not match host 127.0.0.1", withoutName.Outage!.Reason);

        var named = await RunnerAsync(Plain(relay) with { Tls = SmtpTls.Implicit, CaFile = pki.CaFile, ServerName = "relay.plant.lan" });
        Send(named, Alert(1, AlertStatus.Firing));
        await Wait.UntilAsync(() => named.Delivered == 1, "the mail over implicit TLS");
        Assert.True(Assert.Single(relay.Mails).Tls);
    }

    [Fact]
    public async Task A_certificate_the_ca_file_did_not_sign_is_a_failed_attempt_that_says_why()
    {
        using var pki = new TestPki();
        var relay = await RelayAsync(new SmtpRelay.Options(Tls: (pki.ServerCertFile, pki.ServerKeyFile)));
        var runner = await RunnerAsync(Plain(relay) with { Tls = SmtpTls.StartTls, CaFile = pki.OtherCaFile, Retries = 0 });
        Send(runner, Alert(1, AlertStatus.Firing));
        await Wait.UntilAsync(() => runner.Outage is not null, "the relay down: its certificate refused");
        Assert.StartsWith($"smtp relay 127.0.0.1:{relay.Port}: TLS handshake refused: server certificate CN=localhost", runner.Outage!.Reason, StringComparison.Ordinal);
        Assert.EndsWith($"does not chain to a CA in ca_file {pki.OtherCaFile} (its issuer is unknown (partial chain))", runner.Outage.Reason, StringComparison.Ordinal);
        Assert.Empty(relay.Mails);
    }

    [Fact]
    public async Task A_relay_without_starttls_is_not_sent_to_in_clear_and_the_error_says_what_to_set()
    {
        var relay = await RelayAsync();
        var runner = await RunnerAsync(Plain(relay) with { Tls = SmtpTls.StartTls, Retries = 0 });
        Send(runner, Alert(1, AlertStatus.Firing));
        await Wait.UntilAsync(() => runner.Outage is not null, "the relay down: no STARTTLS");
        Assert.StartsWith($"smtp relay 127.0.0.1:{relay.Port} does not offer STARTTLS (its EHLO lists no STARTTLS)", runner.Outage!.Reason, StringComparison.Ordinal);
        Assert.Empty(relay.Mails);
    }

    [Fact]
    public async Task A_refused_login_is_a_clear_error_the_alert_is_held_and_delivered_once_the_relay_takes_the_password()
    {
        using var pki = new TestPki();
        var tls = (pki.ServerCertFile, pki.ServerKeyFile);
        var relay = await RelayAsync(new SmtpRelay.Options(Tls: tls, Account: ("gw1", "rotated")));
        var log = new ListLogger();
        var runner = await RunnerAsync(Plain(relay) with { Tls = SmtpTls.StartTls, CaFile = pki.CaFile, Username = "gw1", Password = "old" }, log);
        Send(runner, Alert(1, AlertStatus.Firing));
        await Wait.UntilAsync(() => runner.Outage is not null, "the relay down: login refused");

        var expected = $"smtp relay 127.0.0.1:{relay.Port} refused the login of user 'gw1': 535 5.7.8 Authentication credentials invalid";
        Assert.Equal(expected, runner.Outage!.Reason);
        Assert.Contains(log.At(LogLevel.Error), l => l.StartsWith($"alert sink mail: peer down after 2 attempts ({expected}); holding 1 messages", StringComparison.Ordinal));
        Assert.Equal(0, runner.Delivered);

        // The relay is given the gateway's password (as if the rotation is undone): the held alert goes, once.
        await relay.RestartAsync(relay.Current with { Account = ("gw1", "old") });
        await Wait.UntilAsync(() => runner.Delivered == 1, "the held alert once the login is taken", 60);
        var mail = Assert.Single(relay.Mails);
        Assert.Equal("[CRITICAL] dc1: inlet-hot rack r01 (room1) FIRING", mail.Subject);
        Assert.Null(runner.Outage);
        Assert.StartsWith("alert sink mail: peer back after ", log.Lines.Last(l => l.Level >= LogLevel.Warning).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_relay_down_at_the_raise_gets_the_alert_when_it_comes_up_on_the_same_port()
    {
        var relay = await RelayAsync(start: false);
        var runner = await RunnerAsync(Plain(relay));
        Send(runner, Alert(1, AlertStatus.Firing));
        await Wait.UntilAsync(() => runner.Outage is not null, "the relay down");
        Assert.Equal($"smtp relay 127.0.0.1:{relay.Port}: cannot connect: Connection refused", runner.Outage!.Reason);

        await relay.RestartAsync();
        await Wait.UntilAsync(() => runner.Delivered == 1, "the held alert once the relay is up", 60);
        Assert.Equal("[CRITICAL] dc1: inlet-hot rack r01 (room1) FIRING", Assert.Single(relay.Mails).Subject);
    }

    [Fact]
    public async Task A_recipient_refused_for_good_is_named_and_counted_and_the_others_get_the_mail_once()
    {
        var relay = await RelayAsync(new SmtpRelay.Options(Reject: ["oncal@plant.example"]));
        var log = new ListLogger();
        using var meter = new System.Diagnostics.Metrics.MeterListener();
        long refusedCount = 0;
        meter.InstrumentPublished = (i, l) =>
        {
            if (i.Name == "edgetwin.alerts.sink.recipients_refused")
            {
                l.EnableMeasurementEvents(i);
            }
        };
        meter.SetMeasurementEventCallback<long>((_, v, _, _) => Interlocked.Add(ref refusedCount, v));
        meter.Start();
        var runner = await RunnerAsync(Plain(relay, "oncal@plant.example", "facilities@plant.example"), log, new AlertingMetrics());
        Send(runner, Alert(1, AlertStatus.Firing));
        await Wait.UntilAsync(() => runner.Delivered == 1, "the mail to the recipient the relay takes");

        var mail = Assert.Single(relay.Mails);
        Assert.Equal(["facilities@plant.example"], mail.RcptTos);
        Assert.Equal(1, Interlocked.Read(ref refusedCount));
        var error = Assert.Single(log.At(LogLevel.Error));
        Assert.Equal($"alert sink mail: smtp relay 127.0.0.1:{relay.Port} refused recipients for good, not sent to them: oncal@plant.example: 550 5.1.1 <oncal@plant.example>: Recipient address rejected: User unknown (group room=room1; 1 other recipients got the mail); fix to: in the sink", error);
        Assert.Null(runner.Outage);
    }

    [Fact]
    public async Task Every_recipient_refused_for_good_is_a_refusal_not_an_outage_retried_for_ever()
    {
        var relay = await RelayAsync(new SmtpRelay.Options(Reject: ["oncall@plant.example"]));
        var logs = new System.Collections.Concurrent.ConcurrentQueue<(LogLevel Level, string Message, Exception? Exception)>();
        var log = new ListLogger(logs);
        var runner = await RunnerAsync(Plain(relay, "oncall@plant.example") with { Retries = 3 }, log);
        Send(runner, Alert(1, AlertStatus.Firing));
        await Wait.UntilAsync(() => runner.Failed == 1, "the refusal");
        Send(runner, Alert(2, AlertStatus.Firing, "rack-r02/inlet"));
        await Wait.UntilAsync(() => runner.Failed == 2, "the next message tried too (the first was not held)");

        Assert.Null(runner.Outage);
        Assert.Equal(0, runner.Delivered);
        Assert.Empty(log.At(LogLevel.Warning)); // no retry
        Assert.Equal(2, log.At(LogLevel.Error).Count(l => l == "alert sink mail: the peer refused the message for group room=room1"));
        Assert.Equal(
            $"smtp relay 127.0.0.1:{relay.Port} refused every recipient: oncall@plant.example: 550 5.1.1 <oncall@plant.example>: Recipient address rejected: User unknown",
            logs.First(l => l.Level == LogLevel.Error).Exception?.Message);
    }

    [Fact]
    public void Regression_a_mail_carrying_an_alerts_raise_and_its_clear_said_FIRING_on_the_lock_screen()
    {
        // A group's message carries every change since its last one: here rack-r01's raise and its clear, and rack-r02's raise.
        var alerts = new[] { Alert(1, AlertStatus.Firing), Alert(2, AlertStatus.Firing, "rack-r02/inlet"), Alert(1, AlertStatus.Resolved) };
        Assert.Equal("[CRITICAL] dc1: inlet-hot rack r02 (room1) FIRING (+1 more: 1 resolved)", SmtpSink.Subject(SmtpSinkConfig.DefaultSubject, "dc1", "gw1", alerts));
        Assert.Equal("[CRITICAL] dc1: inlet-hot rack r01 (room1) RESOLVED", SmtpSink.Subject(SmtpSinkConfig.DefaultSubject, "dc1", "gw1", [alerts[0], alerts[2]]));
    }

    [Fact]
    public async Task Regression_the_lock_screen_named_the_series_key_instead_of_the_rack_and_room()
    {
        // The PDU's inlet probe: the key is pdu-a01-a/inlet_temperature, which tells the on-call engineer nothing about where to walk.
        var relay = await RelayAsync();
        var registry = new SeriesRegistry();
        var id = registry.GetOrAdd(new SeriesDescriptor("pdu-a01-a", "inlet_temperature", "Cel"));
        var config = AlertsConfig.Empty with
        {
            GroupInterval = TimeSpan.FromMilliseconds(200),
            TickInterval = TimeSpan.FromMilliseconds(50),
            Sinks = [Plain(relay)],
            Rules = [new AlertRule { Name = "inlet-hot", Kind = RuleKind.Threshold, Severity = EventSeverity.Critical, Match = new SeriesMatch(null, "inlet_temperature", null, []), Limit = 30, Clear = 29 }],
        };
        var places = new Dictionary<string, DevicePlace> { ["pdu-a01-a"] = new("A01", "room1", null, null, null) };
        var service = new AlertingService(config, new SiteIndex("dc1", "gw1", places), registry, null, new AlertingOptions
        {
            StorePath = Path.Combine(_dir, "alerts.db"),
            RunConnectivityProbe = false,
        });
        _owned.Add(service);
        await service.StartAsync(Ct);
        service.Process([new Sample(id, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), 31.5)], Stopwatch.GetTimestamp());
        await Wait.UntilAsync(() => relay.Mails.Count > 0, "the raise at the relay");

        Assert.Equal("[CRITICAL] dc1: inlet-hot rack A01 (room1) FIRING", Assert.Single(relay.Mails).Subject);
        Assert.Equal("[CRITICAL] dc1: inlet-hot pdu-a01-a/inlet_temperature FIRING", SmtpSink.Subject("[{severity}] {site}: {rule} {key} {status}", "dc1", "gw1", [Alert(1, AlertStatus.Firing, "pdu-a01-a/inlet_temperature")]));
    }

    [Fact]
    public async Task A_storm_of_1000_rules_firing_and_clearing_reaches_the_relay_in_a_few_mails()
    {
        const int Rules = 1000;
        var relay = await RelayAsync();
        var registry = new SeriesRegistry();
        var ids = Enumerable.Range(0, Rules).Select(i => registry.GetOrAdd(new SeriesDescriptor("rack-" + i, "inlet", "Cel"))).ToArray();
        var config = AlertsConfig.Empty with
        {
            GroupBy = ["room", "severity"],
            GroupInterval = TimeSpan.FromMilliseconds(500),
            TickInterval = TimeSpan.FromMilliseconds(50),
            Sinks = [Plain(relay) with { Timeout = TimeSpan.FromSeconds(30) }],
            Rules = [.. Enumerable.Range(0, Rules).Select(i => new AlertRule { Name = "rule-" + i, Kind = RuleKind.Threshold, Match = new SeriesMatch("rack-" + i, "inlet", null, []), Limit = 30, Clear = 29 })],
        };
        var service = new AlertingService(config, new SiteIndex("dc1", "gw1", new Dictionary<string, DevicePlace>()), registry, null, new AlertingOptions
        {
            StorePath = Path.Combine(_dir, "alerts.db"),
            RunConnectivityProbe = false,
        });
        _owned.Add(service);
        await service.StartAsync(Ct);
        var t = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        service.Process([.. ids.Select(id => new Sample(id, t, 35))], Stopwatch.GetTimestamp());
        await Wait.UntilAsync(() => service.Manager.Active().Count(a => a.State == AlertState.Firing) == Rules, "every rule firing");
        service.Process([.. ids.Select(id => new Sample(id, t + 1000, 20))], Stopwatch.GetTimestamp());

        // Done when the relay has carried all 2,000 changes (a raise still queued when its clear comes is superseded: fewer).
        static int Changes(SmtpRelay.Mail m) => int.Parse(System.Text.RegularExpressions.Regex.Match(m.Body, @"gateway gw1: (\d+) alert change").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        await Wait.UntilAsync(() => relay.Mails.Any(m => m.Subject.Contains("RESOLVED (+999 more: 999 resolved)", StringComparison.Ordinal)), "the storm's clear at the relay", 120);
        await Task.Delay(1000, Ct); // nothing more comes
        var mails = relay.Mails;
        Assert.InRange(mails.Count, 1, 3);
        Assert.InRange(mails.Sum(Changes), Rules, 2 * Rules);
        foreach (var mail in mails)
        {
            // At most max_alerts_per_mail (100) alerts written out; the rest counted.
            var listed = mail.Body.Split('\n').Count(l => l.StartsWith("  alert ", StringComparison.Ordinal));
            Assert.Equal(Math.Min(100, Changes(mail)), listed);
            if (Changes(mail) > 100)
            {
                Assert.Contains($"... and {Changes(mail) - 100} more not listed here: `edgetwin alerts list` on gw1 shows every alert.", mail.Body, StringComparison.Ordinal);
            }
        }

        // The lock screen says where the storm stands: every alert resolved, not the FIRING of the first change in the mail.
        Assert.Matches(@"^\[WARNING\] dc1: rule-\d+ device rack-\d+ RESOLVED \(\+999 more: 999 resolved\)$", mails[^1].Subject);
    }
}
