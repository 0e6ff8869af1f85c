using EdgeTwin.Agent.Cli;
using EdgeTwin.IntegrationTests.Agent;

namespace EdgeTwin.IntegrationTests.StoreAndForward;

/// <summary>
/// An alert smtp sink (Alerting README, Smtp) in a whole site config: <c>edgetwin check</c> takes a good one and names a
/// mistake at its file, line and key; the JSON schema agrees.
/// </summary>
public sealed class SmtpSinkCheckTests
{
    private const string OnePdu = """
          - { id: pdu-1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: pub, enabled: false }
        """;

    [Fact]
    public async Task An_smtp_sink_with_starttls_and_a_password_file_passes_check_and_the_schema()
    {
        var config = AgentFiles.WriteConfig(OnePdu, """
            alerts:
              sinks:
                - { name: mail, type: smtp, host: relay.plant.lan, username: gw1, password_file: smtp.pw, from: "EdgeTwin <gw1@plant.example>", to: [oncall@plant.example] }
                - { name: local-mail, type: smtp, host: 127.0.0.1, tls: none, from: edgetwin@gw1.lan, to: [root@gw1.lan] }
            """);
        var secret = Path.Combine(Path.GetDirectoryName(config)!, "smtp.pw");
        await File.WriteAllTextAsync(secret, "s3cret\n", TestContext.Current.CancellationToken);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        var check = await InProcessCli.RunAsync("check", "--config", config);
        Assert.True(check.Exit == 0, check.Output);
        Assert.DoesNotContain("warning", check.Output, StringComparison.Ordinal);
        Assert.Empty(UplinkMaxRateCheckTests.SchemaErrors(config));
    }

    [Fact]
    public async Task Credentials_over_plain_smtp_and_a_bad_recipient_fail_check_at_their_lines_and_the_schema()
    {
        var config = AgentFiles.WriteConfig(OnePdu, """
            alerts:
              sinks:
                - name: mail
                  type: smtp
                  host: 10.0.0.25
                  tls: none
                  username: gw1
                  password: s3cret
                  from: gw1@plant.example
                  to:
                    - oncall@plant.example
                    - facilities
            """);

        var check = await InProcessCli.RunAsync("check", "--config", config);
        Assert.Equal(1, check.Exit);
        var lines = File.ReadAllLines(config);
        var passwordLine = Array.FindIndex(lines, l => l.Contains("password: s3cret", StringComparison.Ordinal)) + 1;
        var facilitiesLine = Array.FindIndex(lines, l => l.Contains("- facilities", StringComparison.Ordinal)) + 1;
        var output = check.Output.Split('\n');
        Assert.Contains(output, l => l.StartsWith($"{config}:{passwordLine}:", StringComparison.Ordinal)
            && l.Contains("alerts.sinks[0].password: alert sink 'mail' would send its username and password to 10.0.0.25 without TLS", StringComparison.Ordinal));
        Assert.Contains(output, l => l.StartsWith($"{config}:{facilitiesLine}:", StringComparison.Ordinal)
            && l.Contains("alerts.sinks[0].to[1]: 'facilities' is not a mail address", StringComparison.Ordinal));

        var noRecipients = AgentFiles.WriteConfig(OnePdu, """
            alerts:
              sinks:
                - { name: mail, type: smtp, host: relay.lan, tls: ssl, from: gw1@plant.example }
            """);
        var errors = UplinkMaxRateCheckTests.SchemaErrors(noRecipients);
        Assert.Contains(errors, e => e.StartsWith("/alerts/sinks/0", StringComparison.Ordinal));
    }
}
