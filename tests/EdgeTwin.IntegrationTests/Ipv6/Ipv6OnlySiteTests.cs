using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using EdgeTwin.Agent.Alerting;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Tests.Support;
using EdgeTwin.IntegrationTests.Agent;
using EdgeTwin.IntegrationTests.Snmp;
using EdgeTwin.Modbus.Tests.Peers;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Ipv6;

/// <summary>
/// A gateway on an IPv6-only management network: every peer (net-snmp snmpd, pymodbus, mosquitto, a LAN webhook, the
/// trap sender) listens on <c>::1</c> only, and the config spells addresses as the README does
/// (<c>udp6:[::1]:PORT</c>, <c>tcp:[::1]:PORT</c>, broker host <c>::1</c>, <c>http://[::1]:PORT/…</c>).
/// </summary>
public sealed class Ipv6OnlySiteTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly JsonObject CracRegisters = new()
    {
        // generic-modbus-crac: on, fans on, supply 18.0 °C, return 26.0 °C, fans 55.0 %, set points 18.0 °C and 0 %.
        ["1"] = new JsonObject { ["hr"] = new JsonObject { ["0"] = new JsonArray(1, 1, 180, 260, 550, 0, 0, 0, 180, 0) } },
    };

    // The README allows the broker's IPv6 address bare or in brackets; both reach it, and both print as [::1]:PORT.
    [Theory]
    [InlineData("::1")]
    [InlineData("[::1]")]
    public async Task An_ipv6_only_site_is_checked_polled_scraped_and_alerts_reach_the_webhook_and_the_broker(string brokerHost)
    {
        SkipUnlessPeers(mosquitto: true, pymodbus: true);
        await using var snmpd = await Snmpd6.StartAsync();
        await using var modbus = await PymodbusServer.StartTcpAsync(CracRegisters, host: "::1");
        await using var broker = await Mosquitto6.StartAsync();
        await using var hook = new TinyHttpServer(IPAddress.IPv6Loopback);
        var trapPort = FreeUdp6Port();
        var metricsPort = FreeTcp6Port();
        Assert.Equal($"http://[::1]:{hook.Port}/hook", hook.Url.ToString());
        var path = AgentFiles.WriteConfig(
            $"""
              - {"{"} id: sw1, profile: ietf-if-mib, address: "udp6:[::1]:{snmpd.Port}", credentials: pub, interval: 1s, timeout: 900ms {"}"}
              - {"{"} id: crac1, profile: generic-modbus-crac, address: "tcp:[::1]:{modbus.Port}", interval: 1s, timeout: 900ms {"}"}
            """,
            $"""
            uplinks:
              mqtt: {"{"} host: "{brokerHost}", port: {broker.Port} {"}"}
            snmp_traps:
              port: {trapPort}
              credentials: [pub]
            metrics:
              prometheus: {"{"} listen: "[::1]:{metricsPort}" {"}"}
            alerts:
              connectivity: {"{"} interval: 500ms, timeout: 1s, offline_after: 2 {"}"}
              sinks:
                - {"{"} name: noc, type: webhook, url: "{hook.Url}", retries: 0 {"}"}
              rules:
                - {"{"} name: supply-hot, type: threshold, match: {"{"} role: crac.supply_temperature {"}"}, above: 10, severity: warning, targets: [noc] {"}"}
                - {"{"} name: gw-offline, type: uplink, severity: critical, targets: [noc] {"}"}

            """);

        // What the site engineer runs first: check (where the listeners go), then one poll of each device.
        var (code, stdout, stderr) = await AgentProcess.RunCliAsync("check", "--config", path);
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains($"Prometheus metrics at http://[::1]:{metricsPort}/metrics", stdout, StringComparison.Ordinal);
        Assert.Contains($"SNMP traps on [::]:{trapPort}", stdout, StringComparison.Ordinal);
        (code, stdout, stderr) = await AgentProcess.RunCliAsync("poll", "sw1", "--config", path);
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains($" at udp6:[::1]:{snmpd.Port}, read ", stdout, StringComparison.Ordinal);
        Assert.Matches(@"oper_status\{ifindex=1,if_name=lo\} +1 \(up\)", stdout);
        (code, stdout, stderr) = await AgentProcess.RunCliAsync("poll", "crac1", "--config", path);
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains($" at tcp:[::1]:{modbus.Port}, read ", stdout, StringComparison.Ordinal);
        Assert.Matches(@"supply_temperature +18 Cel", stdout);
        (code, stdout, stderr) = await AgentProcess.RunCliAsync("snmp", "get", "-v2c", $"udp6:[::1]:{snmpd.Port}", ".1.3.6.1.2.1.1.1.0");
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains("EdgeTwin IPv6 site agent", stdout, StringComparison.Ordinal);
        (code, stdout, stderr) = await AgentProcess.RunCliAsync("modbus", "read", "2", "--host", "::1", "--port", modbus.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--count", "2");
        Assert.True(code == 0, stdout + stderr);
        Assert.Equal("2 = 180\n3 = 260\n", stdout);

        var received = new ConcurrentQueue<(string Topic, byte[] Payload)>();
        using var subscriber = await broker.SubscribeAsync("edgetwin/#", received);
        var logs = new ConcurrentQueue<(LogLevel Level, string Message)>();
        var traps = Channel.CreateUnbounded<EdgeEvent>();
        var options = new AgentHostOptions
        {
            UseSystemd = false,
            StatusLogInterval = null,
            ConfigureLogging = b => b.AddProvider(new ListLoggerProvider(logs)),
            // As `edgetwin run` wires them: the outbox with its MQTT uplink, and alerting (sinks, connectivity probe).
            ConfigureServices = services => services.AddStoreAndForward().AddAlerting(),
        };
        ObserveTraps(options, traps);
        using var host = AgentHostBuilder.Build(Load(path), options);
        var runtime = host.Services.GetRequiredService<AgentRuntime>();
        await host.StartAsync(Ct);
        try
        {
            await runtime.Started.WaitAsync(TimeSpan.FromSeconds(30), Ct);
            await Until(() => runtime.Registry.TryGet("sw1/oper_status{if_name=lo,ifindex=1}", out _) && runtime.Registry.TryGet("crac1/supply_temperature", out _),
                "the first polls of snmpd and pymodbus on ::1", logs);

            // The uplink on the IPv6 broker: the agent's samples arrive at a subscriber of mosquitto on ::1.
            await Until(() => received.Any(m => m.Topic.EndsWith("/raw", StringComparison.Ordinal) || m.Topic.EndsWith("/summary", StringComparison.Ordinal)),
                "samples at the broker on ::1", logs);
            Assert.Contains(logs, l => l.Message.Contains($"Uplink mqtt connected to mqtt://[::1]:{broker.Port}", StringComparison.Ordinal));

            // The threshold alert at the LAN webhook on [::1].
            await Until(() => hook.Hits.Any(h => Encoding.UTF8.GetString(h.Body).Contains("\"rule\":\"supply-hot\"", StringComparison.Ordinal)), "the supply-hot alert at the webhook", logs);

            // Prometheus scrapes the agent over IPv6.
            using (var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) })
            {
                var families = PrometheusTextParser.Parse(await http.GetStringAsync(new Uri($"http://[::1]:{metricsPort}/metrics"), Ct));
                Assert.Contains(families["edgetwin_poll_duration_seconds"].Samples, s => s.Labels.GetValueOrDefault("device") == "crac1" && s.Value > 0);
            }

            // A linkDown sent by net-snmp's snmptrap over udp6 reaches the listener (no address: configured) and is
            // named by the device polled at that address, with the port its IF-MIB polls learned.
            var trap = await SendLinkDownUntilHeardAsync($"udp6:[::1]:{trapPort}", traps.Reader);
            Assert.Equal("sw1/lo", trap.Source);
            Assert.Equal("sw1 port lo link down (ifIndex 1, admin up, oper down)", trap.Message);

            // The broker goes away: the connectivity probe (by default towards the uplink's broker) takes the site offline
            // and the alert says where it probed, in brackets.
            broker.Kill();
            await Until(() => hook.Hits.Any(h => Encoding.UTF8.GetString(h.Body).Contains("\"rule\":\"gw-offline\"", StringComparison.Ordinal)), "the uplink-offline alert", logs);
            var offline = hook.Hits.Select(h => Encoding.UTF8.GetString(h.Body)).First(b => b.Contains("\"rule\":\"gw-offline\"", StringComparison.Ordinal));
            using var doc = JsonDocument.Parse(offline);
            var summary = doc.RootElement.GetProperty("alerts").EnumerateArray().First(a => a.GetProperty("rule").GetString() == "gw-offline").GetProperty("summary").GetString();
            Assert.Contains($"failed probes of [::1]:{broker.Port}", summary, StringComparison.Ordinal);
        }
        finally
        {
            await host.StopAsync(Ct);
        }
    }

    /// <summary>Hands every trap event the agent raises to <paramref name="traps"/>.</summary>
    private static void ObserveTraps(AgentHostOptions options, Channel<EdgeEvent> traps) =>
        options.EventObservers.Add(("traps", (e, _) =>
        {
            if (e.Kind == EdgeEventKind.Trap)
            {
                traps.Writer.TryWrite(e);
            }

            return ValueTask.CompletedTask;
        }));

    // Before, snmp_traps without address: bound 0.0.0.0, so on an IPv6-only management network no trap ever reached
    // the agent (the switch sends from its IPv6 address); the engineer had to know to write address: "::".
    [Fact]
    public async Task Regression_the_trap_listener_default_bound_ipv4_only_so_ipv6_traps_never_arrived()
    {
        SkipUnlessPeers();
        await using var snmpd = await Snmpd6.StartAsync();
        var trapPort = FreeUdp6Port();
        var path = AgentFiles.WriteConfig(
            $"  - {{ id: tor-a01, profile: ietf-if-mib, address: \"udp6:[::1]:{snmpd.Port}\", credentials: pub, interval: 1s, timeout: 900ms }}",
            $"""
            snmp_traps:
              port: {trapPort}
              credentials: [pub]

            """);
        var traps = Channel.CreateUnbounded<EdgeEvent>();
        var options = new AgentHostOptions { UseSystemd = false, StatusLogInterval = null };
        ObserveTraps(options, traps);
        using var host = AgentHostBuilder.Build(Load(path), options);
        var runtime = host.Services.GetRequiredService<AgentRuntime>();
        await host.StartAsync(Ct);
        try
        {
            await runtime.Started.WaitAsync(TimeSpan.FromSeconds(30), Ct);
            await Until(() => runtime.Registry.TryGet("tor-a01/oper_status{if_name=lo,ifindex=1}", out _), "the IF-MIB poll of snmpd on ::1", null);
            var trap = await SendLinkDownUntilHeardAsync($"udp6:[::1]:{trapPort}", traps.Reader);
            Assert.Equal("tor-a01/lo", trap.Source);

            // The dual-stack default still takes IPv4 traps, from an IPv4 sender named by its IPv4 address (not ::ffff:…).
            var v4 = await SendLinkDownUntilHeardAsync($"udp:127.0.0.1:{trapPort}", traps.Reader);
            Assert.StartsWith("127.0.0.1/", v4.Source, StringComparison.Ordinal);
            Assert.StartsWith("127.0.0.1:", v4.Attributes!["sender"], StringComparison.Ordinal);
        }
        finally
        {
            await host.StopAsync(Ct);
        }
    }

    // Before, IPv6 endpoints were printed as HOST:PORT without brackets: "tcp://::1:502", "mqtt://::1:1883", "2 failed
    // probes of ::1:1883", "sends its password to fd12:3456::30:1883": the port reads as the address's last group, and
    // the text pastes back into nothing.
    [Fact]
    public async Task Regression_ipv6_endpoints_were_printed_without_brackets_so_the_port_read_as_part_of_the_address()
    {
        SkipUnlessPeers(pymodbus: true);
        await using var modbus = await PymodbusServer.StartTcpAsync(CracRegisters, host: "::1");
        var closed = FreeTcp6Port();
        var (code, stdout, stderr) = await AgentProcess.RunCliAsync("modbus", "read", "2", "--host", "::1", "--port", closed.ToString(System.Globalization.CultureInfo.InvariantCulture), "--timeout", "1000");
        Assert.NotEqual(0, code);
        Assert.Contains($"tcp://[::1]:{closed} unit 1: communication failed", stderr, StringComparison.Ordinal);

        // The agent's Modbus connection (its logger category and messages carry the transport's name).
        var path = AgentFiles.WriteConfig(
            $"  - {{ id: crac1, profile: generic-modbus-crac, address: \"tcp:[::1]:{modbus.Port}\", interval: 1s, timeout: 900ms }}",
            $"""
            alerts:
              sinks:
                - {"{"} name: lan, type: mqtt, host: "fd12:3456::30", username: gw, password: not-so-secret {"}"}
              rules:
                - {"{"} name: supply-hot, type: threshold, match: {"{"} role: crac.supply_temperature {"}"}, above: 10, severity: warning, targets: [lan] {"}"}

            """);
        (code, stdout, stderr) = await AgentProcess.RunCliAsync("check", "--config", path);
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains("sends its username and password to [fd12:3456::30]:1883 without TLS", stdout + stderr, StringComparison.Ordinal);

        var logs = new ConcurrentQueue<(LogLevel Level, string Message)>();
        var options = new AgentHostOptions { UseSystemd = false, StatusLogInterval = null, ConfigureLogging = b => b.AddProvider(new ListLoggerProvider(logs)) };
        using var host = AgentHostBuilder.Build(Load(path), options);
        var runtime = host.Services.GetRequiredService<AgentRuntime>();
        await host.StartAsync(Ct);
        try
        {
            await runtime.Started.WaitAsync(TimeSpan.FromSeconds(30), Ct);
            await Until(() => logs.Any(l => l.Message.StartsWith("Modbus connected to ", StringComparison.Ordinal)), "the Modbus connection to pymodbus on ::1", logs);
            Assert.Contains(logs, l => l.Message == $"Modbus connected to tcp://[::1]:{modbus.Port}");
        }
        finally
        {
            await host.StopAsync(Ct);
        }
    }

    // Before, `modbus read --host [::1]:1502` was taken as the address alone (.NET parses a bracketed address with a port
    // and drops the port): the read went to port 502, on a real site perhaps another device.
    [Fact]
    public async Task Regression_modbus_read_with_the_port_in_a_bracketed_ipv6_host_read_port_502_instead()
    {
        SkipUnlessPeers(pymodbus: true);
        await using var modbus = await PymodbusServer.StartTcpAsync(CracRegisters, host: "::1");
        var port = modbus.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var (code, stdout, stderr) = await AgentProcess.RunCliAsync("modbus", "read", "2", "--host", $"[::1]:{port}", "--timeout", "1000");
        Assert.True(code == 1, $"exit {code}: {stdout}{stderr}");
        Assert.Contains($"--host '[::1]:{port}' carries a port: give the host alone and the port in --port (--host [::1] --port {port})", stderr, StringComparison.Ordinal);
        (code, _, stderr) = await AgentProcess.RunCliAsync("modbus", "read", "2", "--host", $"127.0.0.1:{port}");
        Assert.Equal(1, code);
        Assert.Contains($"(--host 127.0.0.1 --port {port})", stderr, StringComparison.Ordinal);

        // The host alone, bare or in brackets, reads the device.
        foreach (var host in new[] { "::1", "[::1]", "0:0:0:0:0:0:0:1" })
        {
            (code, stdout, stderr) = await AgentProcess.RunCliAsync("modbus", "read", "2", "--host", host, "--port", port);
            Assert.True(code == 0, $"--host {host}: exit {code}: {stdout}{stderr}");
            Assert.Equal("2 = 180\n", stdout);
        }
    }

    // Before, "udp:[::1]:PORT" (the bracketed form the udp: error message itself suggests) was read, but printed as
    // "udp:::1:PORT": the poll header, logs and check showed an address that check refuses.
    [Fact]
    public async Task Regression_a_udp_address_with_an_ipv6_literal_printed_as_one_that_check_refuses()
    {
        SkipUnlessPeers();
        await using var snmpd = await Snmpd6.StartAsync();
        var path = AgentFiles.WriteConfig($"  - {{ id: sw1, profile: ietf-if-mib, address: \"udp:[::1]:{snmpd.Port}\", credentials: pub, timeout: 900ms }}");
        var (code, stdout, stderr) = await AgentProcess.RunCliAsync("poll", "sw1", "--config", path);
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains($" at udp:[::1]:{snmpd.Port}, read ", stdout, StringComparison.Ordinal);
        Assert.True(DeviceAddress.TryParse($"udp:[::1]:{snmpd.Port}", out var address, out _));
        Assert.Equal(address, DeviceAddress.Parse(address.ToString()));
    }

    /// <summary>The config with every section the agent validates (snmp_traps, metrics), as <c>run</c> loads it.</summary>
    private static SiteConfig Load(string path)
    {
        var loaded = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { SectionValidators = ConfigSectionValidators.Discover(typeof(AgentHostBuilder).Assembly) });
        Assert.True(loaded.IsValid, string.Join("\n", loaded.Problems));
        return loaded.Config!;
    }

    private static async Task<EdgeEvent> SendLinkDownUntilHeardAsync(string target, ChannelReader<EdgeEvent> traps)
    {
        // The listener binds as the agent starts; a trap sent before it is bound is lost (UDP), so send until heard.
        for (var attempt = 0; attempt < 20; attempt++)
        {
            var (exit, _, err) = await SnmpdProcess.RunToolAsync("snmptrap",
                ["-v2c", "-c", "public", target, "", "1.3.6.1.6.3.1.1.5.3",
                 "1.3.6.1.2.1.2.2.1.1.1", "i", "1", "1.3.6.1.2.1.2.2.1.7.1", "i", "1", "1.3.6.1.2.1.2.2.1.8.1", "i", "2"], Ct);
            Assert.True(exit == 0, err);
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            wait.CancelAfter(TimeSpan.FromMilliseconds(500));
            try
            {
                return await traps.ReadAsync(wait.Token);
            }
            catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
            {
            }
        }

        throw new TimeoutException($"no trap sent to {target} reached the agent");
    }

    private static async Task Until(Func<bool> condition, string what, ConcurrentQueue<(LogLevel Level, string Message)>? logs)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                var tail = logs is null ? "" : "\nagent log:\n" + string.Join("\n", logs.TakeLast(40).Select(l => $"{l.Level}: {l.Message}"));
                Assert.Fail($"no {what} within 30 s{tail}");
            }

            await Task.Delay(100, Ct);
        }
    }

    /// <summary>Skips (with the reason printed) when this machine has no IPv6 loopback or lacks a peer's package.</summary>
    private static void SkipUnlessPeers(bool mosquitto = false, bool pymodbus = false)
    {
        string? reason = null;
        try
        {
            using var probe = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
            probe.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
        }
        catch (SocketException ex)
        {
            reason = $"no IPv6 loopback on this machine ({ex.SocketErrorCode})";
        }

        reason ??= SnmpdProcess.FindTool("snmpd") is null || SnmpdProcess.FindTool("snmptrap") is null ? "snmpd/snmptrap (Debian packages 'snmpd', 'snmp') are not installed"
            : mosquitto && !File.Exists(Mosquitto6.Binary) ? "mosquitto (Debian package 'mosquitto') is not installed"
            : null;
        if (reason is not null)
        {
            Console.WriteLine($"SKIP: {reason}");
            Assert.Skip(reason);
        }

        if (pymodbus)
        {
            ExternalTools.RequirePymodbus();
        }
    }

    private static int FreeUdp6Port()
    {
        using var socket = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    private static int FreeTcp6Port()
    {
        using var listener = new TcpListener(IPAddress.IPv6Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>net-snmp's snmpd on <c>udp6:[::1]:PORT</c> only (a <c>rocommunity6</c> for ::1), as a PDU on the v6 LAN.</summary>
    private sealed class Snmpd6 : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly string _dir;

        private Snmpd6(Process process, string dir, int port)
        {
            _process = process;
            _dir = dir;
            Port = port;
        }

        public int Port { get; }

        public static async Task<Snmpd6> StartAsync()
        {
            var dir = Directory.CreateTempSubdirectory("edgetwin-it-snmpd6-").FullName;
            Directory.CreateDirectory(Path.Combine(dir, "persist"));
            var conf = Path.Combine(dir, "snmpd.conf");
            await File.WriteAllLinesAsync(conf, ["rocommunity6 public ::1", "sysDescr EdgeTwin IPv6 site agent", "sysLocation rack B7"], Ct);
            var port = FreeUdp6Port();
            var psi = new ProcessStartInfo(SnmpdProcess.FindTool("snmpd")!) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "-f", "-Lf", Path.Combine(dir, "snmpd.log"), "-C", "-c", conf, "-p", Path.Combine(dir, "pid"), $"udp6:[::1]:{port}" })
            {
                psi.ArgumentList.Add(a);
            }

            psi.Environment["SNMP_PERSISTENT_DIR"] = Path.Combine(dir, "persist");
            psi.Environment["MIBS"] = "";
            var snmpd = new Snmpd6(Process.Start(psi)!, dir, port);
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (DateTime.UtcNow < deadline && !snmpd._process.HasExited)
            {
                var (exit, _, _) = await SnmpdProcess.RunToolAsync("snmpget", ["-v2c", "-c", "public", "-t", "0.5", "-r", "0", $"udp6:[::1]:{port}", ".1.3.6.1.2.1.1.1.0"], Ct);
                if (exit == 0)
                {
                    return snmpd;
                }
            }

            var log = File.Exists(Path.Combine(dir, "snmpd.log")) ? await File.ReadAllTextAsync(Path.Combine(dir, "snmpd.log"), Ct) : "";
            await snmpd.DisposeAsync();
            throw new InvalidOperationException($"snmpd on udp6:[::1]:{port} did not answer: {log}");
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(true);
                await _process.WaitForExitAsync(CancellationToken.None);
            }

            _process.Dispose();
            try
            {
                Directory.Delete(_dir, true);
            }
            catch (IOException)
            {
                // best effort: snmpd may still be writing its persistent files
            }
        }
    }

    /// <summary>mosquitto with one listener, <c>listener PORT ::1</c>: the broker of an IPv6-only site.</summary>
    private sealed class Mosquitto6 : IAsyncDisposable
    {
        public const string Binary = "/usr/sbin/mosquitto";
        private readonly Process _process;
        private readonly string _dir;

        private Mosquitto6(Process process, string dir, int port)
        {
            _process = process;
            _dir = dir;
            Port = port;
        }

        public int Port { get; }

        public static async Task<Mosquitto6> StartAsync()
        {
            var dir = Directory.CreateTempSubdirectory("edgetwin-it-mosquitto6-").FullName;
            var port = FreeTcp6Port();
            var conf = Path.Combine(dir, "mosquitto.conf");
            await File.WriteAllTextAsync(conf, $"per_listener_settings false\nallow_anonymous true\nlistener {port} ::1\n", Ct);
            var broker = new Mosquitto6(Process.Start(new ProcessStartInfo(Binary, ["-c", conf]) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true })!, dir, port);
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (true)
            {
                try
                {
                    using var c = new TcpClient(AddressFamily.InterNetworkV6);
                    await c.ConnectAsync(IPAddress.IPv6Loopback, port, Ct);
                    return broker;
                }
                catch (SocketException) when (DateTime.UtcNow < deadline && !broker._process.HasExited)
                {
                    await Task.Delay(50, Ct);
                }
            }
        }

        public async Task<MQTTnet.IMqttClient> SubscribeAsync(string filter, ConcurrentQueue<(string Topic, byte[] Payload)> into)
        {
            var client = new MQTTnet.MqttClientFactory().CreateMqttClient();
            client.ApplicationMessageReceivedAsync += e =>
            {
                into.Enqueue((e.ApplicationMessage.Topic, System.Buffers.BuffersExtensions.ToArray(e.ApplicationMessage.Payload)));
                return Task.CompletedTask;
            };
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            cts.CancelAfter(TimeSpan.FromSeconds(30));
            await client.ConnectAsync(new MQTTnet.MqttClientOptionsBuilder().WithTcpServer("::1", Port).WithClientId("test-" + Guid.NewGuid().ToString("N")).Build(), cts.Token);
            await client.SubscribeAsync(new MQTTnet.MqttClientSubscribeOptionsBuilder().WithTopicFilter(filter, MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce).Build(), cts.Token);
            return client;
        }

        public void Kill()
        {
            if (!_process.HasExited)
            {
                _process.Kill(true);
                _process.WaitForExit();
            }
        }

        public ValueTask DisposeAsync()
        {
            Kill();
            _process.Dispose();
            Directory.Delete(_dir, true);
            return ValueTask.CompletedTask;
        }
    }
}
