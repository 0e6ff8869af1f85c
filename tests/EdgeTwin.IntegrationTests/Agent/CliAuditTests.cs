using EdgeTwin.Agent.Cli;
using EdgeTwin.Core.Events;
using EdgeTwin.IntegrationTests.Deployment;
using EdgeTwin.Outbox;
using EdgeTwin.Outbox.Summaries;

namespace EdgeTwin.IntegrationTests.Agent;

/// <summary>
/// The command line as the site engineer (SSH, install time) and the operator (3 a.m.) meet it: a typo, a value out
/// of range, a wrong path. What is the answer goes to stdout, what went wrong to stderr in one line naming what and
/// where, with the documented exit code and no stack trace.
/// </summary>
public sealed class CliAuditTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Regression_a_parse_error_wrote_its_suggestions_and_help_to_stdout_which_json_readers_took_for_the_answer()
    {
        var (exit, output, error) = await InProcessCli.RunAsync("status", "--json", "--timout", "5s");

        Assert.Equal(2, exit);
        Assert.Equal("", output); // `edgetwin status --json | jq` read "'--timout' was not matched…" and the help
        Assert.Contains("'--timout' is not an option of 'edgetwin status'; did you mean --timeout?", error, StringComparison.Ordinal);
        Assert.Contains("Usage:", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("'--confg' is not an option of 'edgetwin check'; did you mean --config?", "check", "--confg", "site.yaml")]
    [InlineData("'lst' is not a command of 'edgetwin alerts'; did you mean list?", "alerts", "lst")]
    [InlineData("'chekc' is not a command of 'edgetwin'; did you mean check?", "chekc", "--config", "site.yaml")]
    [InlineData("'--log-levl' is not an option of 'edgetwin run'; did you mean --log-level?", "run", "--config", "site.yaml", "--log-levl", "Debug")]
    public async Task Regression_a_misspelt_options_value_was_offered_an_unrelated_option(string suggestion, params string[] args)
    {
        var (exit, output, error) = await InProcessCli.RunAsync(args);

        Assert.Equal(2, exit);
        Assert.Equal("", output);
        Assert.Contains(suggestion, error, StringComparison.Ordinal);
        // Before: "'site.yaml' was not matched. Did you mean one of the following? -c" (and "-h" for Debug).
        Assert.DoesNotContain("was not matched", error, StringComparison.Ordinal);
        Assert.Single(error.Split('\n'), l => l.Contains("did you mean", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("--margin must be from 0 to 20, got -3", "optimize", "cooling", "--margin", "-3")]
    [InlineData("--margin must be from 0 to 20, got 50", "optimize", "cooling", "--margin", "50")]
    [InlineData("--horizon-min must be from 1 to 10080, got 0", "simulate", "cooling-failure", "--unit", "crac1", "--horizon-min", "0")]
    [InlineData("--delta-kw must be from -1000 to 1000, got 5000", "simulate", "load-change", "--rack", "A01", "--delta-kw", "5000")]
    [InlineData("simulate add-rack: --kw must be at most 1000 kW, got 5000", "simulate", "add-rack", "--kw", "5000")]
    public async Task Regression_a_what_if_took_a_value_its_twin_request_refuses(string message, params string[] args)
    {
        // optimize cooling --margin -3 advised set points for inlets up to 30 °C, over the 27 °C limit it is meant to keep;
        // the same request over MQTT was refused (margin 0..20, horizon_min 1..10080, kw and delta_kw within 1000).
        var (exit, output, error) = await InProcessCli.RunAsync([.. args, "--demo-seed", "1", "--demo-racks", "4", "--json"]);

        Assert.Equal(2, exit);
        Assert.Equal("", output);
        Assert.Contains(message, error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_a_scenario_error_named_a_csharp_parameter()
    {
        var (exit, output, error) = await InProcessCli.RunAsync("simulate", "feed-failure", "--element", "nope", "--demo-seed", "1", "--demo-racks", "4");

        Assert.Equal(2, exit);
        Assert.Equal("", output);
        Assert.Equal("feed_failure: no PDU or UPS 'nope' in the power chain", error.Trim()); // was "… (Parameter 'elementId')"
    }

    [Theory]
    [InlineData("--count must be at least 1, got 0", "outbox", "peek", "--path", "/nonexistent/outbox.db", "-n", "0")]
    [InlineData("--count must be at least 1, got -5", "outbox", "peek", "--path", "/nonexistent/outbox.db", "-n", "-5")]
    [InlineData("--limit must be from 1 to 10000, got 0", "alerts", "history", "--socket", "/nonexistent/alerts.sock", "-n", "0")]
    public async Task Regression_a_count_below_1_was_taken_as_1(string message, params string[] args)
    {
        var (exit, _, error) = await InProcessCli.RunAsync(args);

        Assert.Equal(2, exit);
        Assert.Contains(message, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--snmp-devices takes a whole number, got '1.5'", "bench", "load", "--snmp-devices", "1.5")]
    [InlineData("--snmp-devices must be from 0 to 2147483647, got 99999999999", "bench", "load", "--snmp-devices", "99999999999")]
    [InlineData("--modbus-devices must be at least 0, got -1", "bench", "load", "--modbus-devices", "-1")]
    [InlineData("--seed must be from 0 to 18446744073709551615, got -1", "line", "status", "--config", "/nonexistent/edgetwin.yaml", "--seed", "-1")]
    [InlineData("--log-level takes one of Trace, Debug, Information, Warning, Error, Critical, None, got 'loud'", "run", "--config", "/nonexistent/edgetwin.yaml", "--log-level", "loud")]
    [InlineData("--log-level takes one of Trace, Debug, Information, Warning, Error, Critical, None, got '7'", "run", "--config", "/nonexistent/edgetwin.yaml", "--log-level", "7")]
    [InlineData("--asset takes one of Machine, Fan, got 'pump'", "bench", "bearing", "--asset", "pump")]
    public async Task Regression_a_value_of_the_wrong_type_was_named_by_its_dotnet_type(string message, params string[] args)
    {
        var (exit, output, error) = await InProcessCli.RunAsync(args);

        Assert.Equal(2, exit);
        Assert.Equal("", output);
        Assert.StartsWith(message, error, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", error, StringComparison.Ordinal);
        Assert.DoesNotContain("expected type", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_number_and_enum_option_of_every_command_names_what_it_takes()
    {
        var root = InProcessCli.Root();
        CliOptionRanges.NameExpectedTypes(root);
        var unnamed = new List<string>();
        Walk(root, "edgetwin");
        Assert.Empty(unnamed);

        void Walk(System.CommandLine.Command command, string path)
        {
            foreach (var option in command.Options)
            {
                var type = option.GetType();
                if (type.IsGenericType && type.GetGenericArguments()[0] is var t
                    && (Nullable.GetUnderlyingType(t) ?? t) is var value && (value.IsPrimitive && value != typeof(bool) || value.IsEnum)
                    && type.GetProperty("CustomParser")!.GetValue(option) is null)
                {
                    unnamed.Add($"{path} {option.Name} ({value.Name})");
                }
            }

            foreach (var sub in command.Subcommands)
            {
                Walk(sub, $"{path} {sub.Name}");
            }
        }
    }

    [Fact]
    public async Task Regression_alerts_history_limit_above_the_agents_cap_was_cut_to_10000_unsaid()
    {
        var (exit, output, error) = await InProcessCli.RunAsync(["alerts", "history", "--socket", "/nonexistent/alerts.sock", "-n", "20000"]);

        Assert.Equal(2, exit);
        Assert.Equal("", output);
        Assert.StartsWith("--limit must be from 1 to 10000, got 20000", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("A12", "alerts", "ack", "A12")]
    [InlineData("x", "alerts", "ack", "12", "x")]
    public async Task Regression_alerts_ack_of_an_id_that_is_not_a_number_said_unrecognized_argument(string bad, params string[] args)
    {
        var (exit, output, error) = await InProcessCli.RunAsync([.. args, "--socket", "/nonexistent/alerts.sock"]);

        Assert.Equal(2, exit);
        Assert.Equal("", output);
        Assert.StartsWith($"alert id '{bad}' is not a number: give the ID column of `edgetwin alerts list`", error, StringComparison.Ordinal);
        Assert.DoesNotContain("Unrecognized command or argument", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("simulate", "capacity")]
    [InlineData("optimize", "cooling")]
    [InlineData("simulate", "feed-failure", "--element", "ups1")]
    public async Task Regression_a_what_if_on_a_mistyped_config_path_asked_for_history_as_if_the_file_existed(params string[] args)
    {
        var config = "/nonexistent/edgetwin.yaml";

        var (exit, output, error) = await InProcessCli.RunAsync([.. args, "--config", config]);

        Assert.Equal(2, exit);
        Assert.Equal("", output);
        Assert.StartsWith($"{config}: cannot read config: no such file", error, StringComparison.Ordinal);
        Assert.DoesNotContain("--history CSV is required", error, StringComparison.Ordinal); // was all it said, with "edgetwin.yaml"
    }

    [Fact]
    public async Task Regression_line_commands_called_a_config_directory_access_denied()
    {
        using var dir = new TempDir();

        var (exit, _, error) = await InProcessCli.RunAsync("line", "status", "--config", dir.Path);
        var (missingExit, _, missing) = await InProcessCli.RunAsync("line", "oee", "--config", Path.Combine(dir.Path, "site.yaml"));

        // As run, check, status and the others say it; before: "Access to the path '…' is denied." (as root) and
        // "Could not find file '…'".
        Assert.Equal(2, exit);
        Assert.Equal($"{dir.Path}: cannot read config: it is a directory (give the site config file, e.g. /etc/edgetwin/edgetwin.yaml)", error.Trim());
        Assert.Equal(2, missingExit);
        Assert.Equal($"{Path.Combine(dir.Path, "site.yaml")}: cannot read config: no such file", missing.Trim());
    }

    [Theory]
    [InlineData("-00:00:05", "--shutdown-timeout must be above 0 and under 45 s (after that the process is cut), got -00:00:05")]
    [InlineData("1:00:00", "--shutdown-timeout must be above 0 and under 45 s (after that the process is cut), got 1:00:00")]
    [InlineData("20s", "cannot read config: no such file")] // did not parse, as every other duration of the CLI does
    public async Task Regression_run_shutdown_timeout_took_a_negative_time_that_crashed_the_stop(string value, string message)
    {
        var (exit, _, error) = await InProcessCli.RunAsync("run", "--config", "/nonexistent/edgetwin.yaml", "--shutdown-timeout", value);

        Assert.Equal(2, exit);
        Assert.Contains(message, error, StringComparison.Ordinal);
        Assert.DoesNotContain("Cannot parse", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("20", 20)] // was 20 days (TimeSpan's own parse of a bare number)
    [InlineData("20s", 20)]
    [InlineData("00:00:20", 20)]
    [InlineData("1m", 0)] // 60 s: refused, past the 45 s cut
    public void Regression_run_shutdown_timeout_20_was_20_days(string value, int seconds)
    {
        var parse = InProcessCli.Root().Parse(["run", "--config", "site.yaml", "--shutdown-timeout", value]);

        Assert.Equal(seconds == 0, parse.Errors.Count > 0);
        if (seconds > 0)
        {
            Assert.Equal(TimeSpan.FromSeconds(seconds), parse.GetValue<TimeSpan>("--shutdown-timeout"));
        }
    }

    [Fact]
    public async Task Regression_outbox_stats_path_replaced_a_file_that_is_not_an_outbox_with_an_empty_outbox()
    {
        using var dir = new TempDir();
        var passwd = Path.Combine(dir.Path, "passwd");
        var content = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"u8.ToArray();
        await File.WriteAllBytesAsync(passwd, content, Ct);

        foreach (var command in new[] { "stats", "peek", "export" })
        {
            var (exit, output, error) = await AgentProcess.RunCliAsync("outbox", command, "--path", passwd);

            Assert.Equal(1, exit);
            Assert.Equal("", output);
            Assert.Contains($"{passwd} is not an outbox", error, StringComparison.Ordinal);
        }

        // Before: exit 0, "entries 0", and passwd was a 32 KiB LiteDB file with passwd-log and passwd.lock beside it.
        Assert.Equal(content, await File.ReadAllBytesAsync(passwd, Ct));
        Assert.Equal(["passwd"], Directory.GetFiles(dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public async Task Regression_outbox_export_to_a_missing_directory_printed_a_stack_trace()
    {
        using var dir = new TempDir();
        var db = Path.Combine(dir.Path, "outbox.db");
        var identity = new UplinkIdentity("gw-1", "site-1");
        await using (var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = db, Identity = identity }, cancellationToken: Ct))
        {
            await outbox.AppendAsync([UplinkBodies.Event(identity, new EdgeEvent(EdgeEventKind.AlertRaised, "pdu-1", DateTimeOffset.UtcNow, EventSeverity.Warning, "one"))], Ct);
        }

        var target = Path.Combine(dir.Path, "no-such-dir", "outbox.jsonl");
        var (exit, _, error) = await AgentProcess.RunCliAsync("outbox", "export", "--path", db, "-o", target);
        var (dirExit, _, dirError) = await AgentProcess.RunCliAsync("outbox", "export", "--path", db, "-o", dir.Path);

        Assert.Equal(1, exit);
        Assert.Equal($"edgetwin outbox: cannot write --output {target}: no directory {Path.GetDirectoryName(target)}", error.Trim());
        Assert.Equal(1, dirExit);
        Assert.Equal($"edgetwin outbox: cannot write --output {dir.Path}: it is a directory (give a file name)", dirError.Trim());
    }
}
