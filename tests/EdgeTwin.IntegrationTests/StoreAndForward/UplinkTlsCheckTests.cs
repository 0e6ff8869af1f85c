using System.Security.Cryptography;
using EdgeTwin.Agent.Cli;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.Core.Sources;
using EdgeTwin.IntegrationTests.Agent;
using EdgeTwin.Uplink.Mqtt;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.StoreAndForward;

/// <summary>
/// <c>edgetwin check</c> parses the uplinks' TLS files and warns of credentials over plaintext, at the key with file and
/// line; <c>run</c> prints the same and exits 2 (the unit's RestartPreventExitStatus) on a TLS file error.
/// </summary>
public sealed class UplinkTlsCheckTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string OnePdu = """
          - { id: pdu-1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: pub, enabled: false }
        """;

    /// <summary>The config with <paramref name="uplinks"/>, and <c>tls/</c> beside it holding a garbage file and a real key.</summary>
    private static (string Config, string Dir) Write(string uplinks)
    {
        var config = AgentFiles.WriteConfig(OnePdu, uplinks);
        var dir = Path.GetDirectoryName(config)!;
        Directory.CreateDirectory(Path.Combine(dir, "tls"));
        File.WriteAllText(Path.Combine(dir, "tls", "garbage.pem"), "not a certificate\n");
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        File.WriteAllText(Path.Combine(dir, "tls", "client.key"), key.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(Path.Combine(dir, "mqtt.pw"), "S3CRET\n");
        return (config, dir);
    }

    /// <summary><c>FILE:LINE:</c> of the first line holding <paramref name="text"/>.</summary>
    private static string At(string config, string text) =>
        $"{config}:{Array.FindIndex(File.ReadAllLines(config), l => l.Contains(text, StringComparison.Ordinal)) + 1}:";

    [Theory]
    [InlineData("\"mqtt://broker.example.net\"", "(did you mean host: broker.example.net?)")]
    [InlineData("\"tcp://broker.example.net:1884\"", "(did you mean host: broker.example.net, port: 1884?)")]
    [InlineData("broker.example.net:1884", "(did you mean host: broker.example.net, port: 1884?)")]
    [InlineData("\"mqtt://\"", "")]
    public async Task Regression_check_accepted_a_broker_url_as_the_mqtt_host(string host, string hint)
    {
        // It passed check; the agent then tried to resolve "mqtt://broker…" and retried for ever with nothing sent.
        var (config, _) = Write($"uplinks: {{ mqtt: {{ host: {host} }} }}");

        var check = await InProcessCli.RunAsync("check", "--config", config);
        Assert.Equal(1, check.Exit);
        var line = Assert.Single(check.Output.Split('\n'), l => l.Contains(": uplinks.mqtt.host: ", StringComparison.Ordinal));
        Assert.StartsWith(At(config, "uplinks:"), line, StringComparison.Ordinal);
        Assert.EndsWith(
            $"is not a host name or IP address: give the broker's host alone, the port in port: and TLS in tls:{(hint.Length > 0 ? " " + hint : "")}",
            line,
            StringComparison.Ordinal);
        Assert.Contains("FAILED: ", check.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("\"kafka://kafka1.example.net:9092\"", "kafka://kafka1.example.net:9092")]
    [InlineData("\"kafka1.example.net:9092,kafka2.example.net:90920\"", "kafka2.example.net:90920")]
    [InlineData("\"kafka1.example.net:abc\"", "kafka1.example.net:abc")]
    public async Task Regression_check_accepted_kafka_bootstrap_servers_that_librdkafka_cannot_reach(string servers, string bad)
    {
        // It passed check; librdkafka then only logged that it could not resolve the name, and nothing was sent.
        var (config, _) = Write($"uplinks: {{ kafka: {{ bootstrap_servers: {servers} }} }}");

        var check = await InProcessCli.RunAsync("check", "--config", config);
        Assert.Equal(1, check.Exit);
        var line = Assert.Single(check.Output.Split('\n'), l => l.Contains(": uplinks.kafka.bootstrap_servers: ", StringComparison.Ordinal));
        Assert.StartsWith(At(config, "uplinks:"), line, StringComparison.Ordinal);
        Assert.EndsWith(
            $": '{bad}' is not a broker address: give host:port[,host:port] (e.g. kafka1.example.net:9092), without a URL scheme other than PLAINTEXT://, SSL://, SASL_PLAINTEXT:// or SASL_SSL://",
            line,
            StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_check_accepted_an_ipv6_kafka_broker_without_brackets()
    {
        // fd00::1:9092 reads as host fd00::1 port 9092 to one reader and as the address fd00::1:9092 to another.
        var (config, _) = Write("uplinks: { kafka: { bootstrap_servers: \"fd00::1:9092\" } }");
        var check = await InProcessCli.RunAsync("check", "--config", config);
        Assert.Equal(1, check.Exit);
        var line = Assert.Single(check.Output.Split('\n'), l => l.Contains(": uplinks.kafka.bootstrap_servers: ", StringComparison.Ordinal));
        Assert.EndsWith(": 'fd00::1:9092': an IPv6 address goes in brackets, e.g. [fd00::1]:9092", line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("\"kafka1.example.net:9092, kafka2.example.net\"")]
    [InlineData("\"SSL://kafka1.example.net:9093\"")]
    [InlineData("\"[2001:db8::1]:9092\"")]
    public async Task Kafka_bootstrap_servers_as_librdkafka_takes_them_pass_check(string servers)
    {
        var (config, _) = Write($"uplinks: {{ kafka: {{ bootstrap_servers: {servers} }} }}");
        var check = await InProcessCli.RunAsync("check", "--config", config);
        // Plaintext to these (not private) brokers is warned about; no error.
        Assert.DoesNotContain(check.Output.Split('\n'), l => l.Contains(": uplinks.kafka.bootstrap_servers: ", StringComparison.Ordinal) && !l.Contains(": warning: ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Regression_check_said_sasl_username_and_SaslPassword_are_required_at_the_user_name_for_a_missing_password()
    {
        // A literal reader of the StoreAndForward README's Kafka block who leaves out sasl_password_file got
        // "uplinks.kafka.sasl_username: and SaslPassword are required with Security SaslSsl", at the user name.
        var (config, _) = Write("""
            uplinks:
              kafka:
                bootstrap_servers: 192.0.2.11:9093
                security: sasl_ssl
                sasl_mechanism: scram_sha_512
                sasl_username: gw-dc1-01
            """);

        var check = await InProcessCli.RunAsync("check", "--config", config);
        Assert.Equal(1, check.Exit);
        var problems = check.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("FAILED", StringComparison.Ordinal) && !l.Contains(": warning: ", StringComparison.Ordinal)).ToList();
        var problem = Assert.Single(problems);
        Assert.EndsWith(": uplinks.kafka: sasl_password_file (or sasl_password) is required with security: sasl_ssl", problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_uplink_option_problems_named_the_section_and_a_property_not_the_key_and_its_line()
    {
        // Before: "uplinks.kafka: uplinks.kafka.Linger must be 0..10 s (was 400.00:00:00)" at the section's first line.
        var (config, _) = Write("""
            uplinks:
              mqtt:
                host: ""
                keep_alive: 400d
              kafka:
                bootstrap_servers: 10.0.2.11:9092
                topic_template: ""
                linger: 400d
            """);

        var check = await InProcessCli.RunAsync("check", "--config", config);
        Assert.Equal(1, check.Exit);
        var lines = check.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(lines, l => l.StartsWith(At(config, "host: \"\""), StringComparison.Ordinal) && l.EndsWith(": uplinks.mqtt.host: must not be empty", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith(At(config, "keep_alive:"), StringComparison.Ordinal) && l.EndsWith(": uplinks.mqtt.keep_alive: must be 0..65535 s (got '400d')", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith(At(config, "topic_template:"), StringComparison.Ordinal) && l.EndsWith(": uplinks.kafka.topic_template: must not be empty", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith(At(config, "linger:"), StringComparison.Ordinal) && l.EndsWith(": uplinks.kafka.linger: must be 0..10 s (got '400d')", StringComparison.Ordinal));
        Assert.Equal("FAILED: " + config + ": 4 problems", lines[^1]);
    }

    [Fact]
    public async Task Regression_kafka_sasl_and_ssl_keys_without_their_security_were_named_by_property_names_at_the_section()
    {
        // It read "uplinks.kafka.SaslUsername/SaslPassword are set but Security is Plaintext" and "Ssl* files are set",
        // both at the section, in the code's words.
        var (config, _) = Write("""
            uplinks:
              kafka:
                bootstrap_servers: 10.0.2.11:9092
                sasl_username: gw1
                ssl_ca_file: ca.pem
            """);
        var check = await InProcessCli.RunAsync("check", "--config", config);
        Assert.Equal(1, check.Exit);
        var lines = check.Output.Split('\n');
        Assert.Contains(lines, l => l.StartsWith(At(config, "sasl_username:"), StringComparison.Ordinal)
            && l.EndsWith(": uplinks.kafka.sasl_username: is set but security: plaintext does not use it; SASL takes security: sasl_ssl", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith(At(config, "ssl_ca_file:"), StringComparison.Ordinal)
            && l.EndsWith(": uplinks.kafka.ssl_ca_file: is set but security: plaintext does not use it; TLS takes security: ssl or sasl_ssl", StringComparison.Ordinal));
        Assert.DoesNotContain("Security", check.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_a_garbage_ca_file_passed_check_and_run_exited_1_instead_of_the_invalid_config_code()
    {
        // Relative paths: check resolved them against its working directory, run against the config's.
        var (config, dir) = Write("""
            uplinks:
              mqtt:
                host: 127.0.0.1
                port: 8883
                tls:
                  ca_file: tls/garbage.pem
                  client_cert_file: tls/garbage.pem
                  client_key_file: tls/client.key
            """);
        var ca = $"uplinks.mqtt.tls.ca_file: {dir}/tls/garbage.pem: no PEM certificate in it (expected a -----BEGIN CERTIFICATE----- block)";
        var cert = $"uplinks.mqtt.tls.client_cert_file: {dir}/tls/garbage.pem: no PEM certificate in it (expected a -----BEGIN CERTIFICATE----- block)";

        var check = await AgentProcess.RunCliAsync("check", "-c", config);
        Assert.Equal(1, check.Code);
        var lines = check.Out.Split('\n');
        Assert.Contains(lines, l => l.StartsWith(At(config, "ca_file:"), StringComparison.Ordinal) && l.EndsWith(ca, StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith(At(config, "client_cert_file:"), StringComparison.Ordinal) && l.EndsWith(cert, StringComparison.Ordinal));

        var run = await AgentProcess.RunCliAsync("run", "-c", config);
        Assert.Equal(2, run.Code);
        Assert.Contains(ca, run.Err, StringComparison.Ordinal);
        Assert.Contains(cert, run.Err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("encoding: sparkplug_b", "topic_template: \"plant/{site}/{kind}\"", "topic_template: is ignored with encoding: sparkplug_b")]
    [InlineData("encoding: json", "sparkplug_group_id: plant1", "sparkplug_group_id: is ignored with encoding: json")]
    [InlineData("", "sparkplug_group_id: plant1", "sparkplug_group_id: is ignored with encoding: json")]
    [InlineData("encoding: json", "sparkplug_primary_host_id: scada", "sparkplug_primary_host_id: is ignored with encoding: json")]
    [InlineData("", "sparkplug_aliases: true", "sparkplug_aliases: is ignored with encoding: json")]
    [InlineData("protocol: \"3.1.1\"", "session_expiry: 7d", "session_expiry: is ignored with protocol 3.1.1")]
    [InlineData("persistent_session: false", "session_expiry: 7d", "session_expiry: is ignored with persistent_session: false")]
    [InlineData("encoding: sparkplug_b", "persistent_session: true", "persistent_session: is ignored with encoding: sparkplug_b: the Sparkplug specification requires an edge node to connect with a clean session")]
    [InlineData("encoding: sparkplug_b", "session_expiry: 7d", "session_expiry: is ignored with encoding: sparkplug_b")]
    public async Task Regression_check_accepted_an_mqtt_topic_key_the_encoding_never_uses(string encoding, string key, string warning)
    {
        // Before: both passed check and run without a word, and the centre waited on topics the uplink never published to.
        var (config, _) = Write($$"""
            uplinks:
              mqtt:
                host: 127.0.0.1
                {{encoding}}
                {{key}}
            """);

        var check = await AgentProcess.RunCliAsync("check", "-c", config);
        Assert.True(check.Code == 0, check.Out + check.Err);
        var lines = check.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(lines, l => l.StartsWith(At(config, key), StringComparison.Ordinal) && l.Contains(": warning: uplinks.mqtt." + warning, StringComparison.Ordinal));
        Assert.StartsWith("OK: ", lines[^1], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("\"\"", "")]
    [InlineData("scada/a", "scada/a")]
    [InlineData("\"scada+\"", "scada+")]
    [InlineData("\"#\"", "#")]
    public async Task Check_names_a_sparkplug_primary_host_id_that_cannot_be_the_last_token_of_the_state_topic(string written, string id)
    {
        var (config, _) = Write($$"""
            uplinks:
              mqtt:
                host: 127.0.0.1
                encoding: sparkplug_b
                sparkplug_primary_host_id: {{written}}
            """);

        var check = await InProcessCli.RunAsync("check", "--config", config);
        Assert.Equal(1, check.Exit);
        var lines = check.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(lines, l => l.StartsWith(At(config, "sparkplug_primary_host_id:"), StringComparison.Ordinal)
            && l.EndsWith($": uplinks.mqtt.sparkplug_primary_host_id: '{id}' may not be empty or contain '/', '+', '#', NUL or an unpaired surrogate (no UTF-8 form)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Regression_credentials_over_plaintext_passed_check_and_run_without_a_warning()
    {
        var (config, _) = Write("""
            uplinks:
              mqtt:
                host: 192.0.2.10
                username: gwuser
                password_file: mqtt.pw
              kafka:
                bootstrap_servers: 192.0.2.11:9092
                security: sasl_plaintext
                sasl_mechanism: plain
                sasl_username: gw
                sasl_password_file: mqtt.pw
                settings:
                  client.id: mine
            """);

        var check = await AgentProcess.RunCliAsync("check", "-c", config);
        Assert.Equal(0, check.Code);
        var lines = check.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(lines, l => l.StartsWith(At(config, "password_file: mqtt.pw"), StringComparison.Ordinal) && l.EndsWith(
            ": warning: uplinks.mqtt.password_file: the password goes to 192.0.2.10:1883 without TLS, readable by anyone on the network path; add tls: (port 8883) or reach the broker over loopback",
            StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith(At(config, "security: sasl_plaintext"), StringComparison.Ordinal) && l.EndsWith(
            ": warning: uplinks.kafka.security: sasl_plaintext with sasl_mechanism plain sends the password in clear text to 192.0.2.11:9092 (and the data unencrypted); use security: sasl_ssl",
            StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith(At(config, "client.id: mine"), StringComparison.Ordinal) && l.EndsWith(
            ": warning: uplinks.kafka.settings.client.id: 'mine' is ignored: the uplink sets it to edgetwin-<gateway>", StringComparison.Ordinal));
        Assert.StartsWith("OK: ", lines[^1], StringComparison.Ordinal);
        Assert.DoesNotContain("S3CRET", check.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_prints_the_warnings_at_start()
    {
        // An error too, so the start ends at once: the warnings come first, with file, line and key.
        var (config, dir) = Write("""
            uplinks:
              mqtt:
                host: 127.0.0.1
                tls:
                  ca_file: tls/garbage.pem
              kafka:
                bootstrap_servers: 192.0.2.11:9092
                security: sasl_plaintext
                sasl_mechanism: scram_sha_256
                sasl_username: gw
                sasl_password_file: mqtt.pw
            """);

        var run = await AgentProcess.RunCliAsync("run", "-c", config);
        Assert.Equal(2, run.Code);
        Assert.Contains($"{At(config, "security: sasl_plaintext")}", run.Err, StringComparison.Ordinal);
        Assert.Contains(": warning: uplinks.kafka.security: sasl_plaintext with SCRAM does not send the password itself", run.Err, StringComparison.Ordinal);
        Assert.Contains($"uplinks.mqtt.tls.ca_file: {dir}/tls/garbage.pem: no PEM certificate in it", run.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_a_tls_file_error_at_start_exited_1_so_systemd_restart_looped()
    {
        // The file broke after the config was loaded (check and the load parse it too): still exit 2, with the text check gives.
        var (configPath, dir) = Write("");
        var config = AgentFiles.Load(configPath);
        var garbage = Path.Combine(dir, "tls", "garbage.pem");
        var mqtt = new MqttUplinkOptions
        {
            Host = "127.0.0.1",
            Port = 8883,
            Site = config.Site.Id,
            Gateway = config.Site.GatewayId,
            StateDirectory = dir,
            Tls = new MqttTlsOptions { Enabled = true, CaFile = garbage },
        };
        var options = new AgentHostOptions
        {
            DiscoverSourceFactories = false,
            UseSystemd = false,
            StatusLogInterval = null,
            MinimumLogLevel = LogLevel.Warning,
            ConfigureServices = s => s
                .AddSourceFactory(new ProfileFakeFactory())
                .AddStoreAndForward(new StoreAndForwardOptions { OutboxPath = Path.Combine(dir, "outbox.db"), Uplinks = new UplinksConfig(mqtt, null) }),
        };
        var error = new StringWriter();

        var code = await RunCommand.RunAsync(config, options, error, Ct).WaitAsync(TimeSpan.FromSeconds(60), Ct);

        Assert.Equal(2, code);
        Assert.Equal(
            $"uplinks.mqtt.tls.ca_file: {garbage}: no PEM certificate in it (expected a -----BEGIN CERTIFICATE----- block){Environment.NewLine}"
            + $"edgetwin: 1 problem in the config; not starting{Environment.NewLine}",
            error.ToString());
    }
}
