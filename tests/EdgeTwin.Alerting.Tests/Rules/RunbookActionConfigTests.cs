using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;

namespace EdgeTwin.Alerting.Tests.Rules;

/// <summary>
/// <c>runbook_url</c> and <c>action</c> of a rule or alarm input: what is read, how the action's placeholders are filled,
/// what <c>edgetwin check</c> (and the start) refuse with file, line and key, and that the shipped rule sets carry a first
/// action for every rule and input.
/// </summary>
public sealed class RunbookActionConfigTests
{
    private static string Rule(string extra) => $$"""
        alerts:
          rules:
            - { name: inlet-hot, type: threshold, match: { metric: inlet }, above: 30, severity: critical, {{extra}} }
        """;

    [Fact]
    public async Task The_action_takes_the_summarys_placeholders_and_both_keys_reach_the_alert()
    {
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - name: rack-hot
                  type: threshold
                  match: { metric: inlet }
                  above: 30
                  combine: any
                  per: rack
                  severity: critical
                  runbook_url: "https://wiki.example/dc1/runbooks/rack-hot?section=first-steps#cooling"
                  action: >-
                    Check the cooling of rack {key} ({value} now, peak {peak});
                    rule {rule}
            """);
        var input = Yaml.Valid("""
            alerts:
              inputs:
                - { name: leak, pin: 5, severity: critical, action: "Find the water under the floor; close its valve", runbook_url: "http://10.0.0.5/leak" }
            """).Rules.Single();
        Assert.Equal("Find the water under the floor; close its valve", input.Action);
        Assert.Equal("http://10.0.0.5/leak", input.RunbookUrl);

        var s = h.Series("rack-r01", "inlet");
        h.Feed(s, 31);
        h.Feed(s, 33.5);
        var firing = h.Active("rack-hot")!;

        // The folded block is one line; {key} of a per-rack alert is the rack.
        Assert.Equal("Check the cooling of rack r01 (33.5 now, peak 33.5); rule rack-hot", firing.Action);
        Assert.Equal("https://wiki.example/dc1/runbooks/rack-hot?section=first-steps#cooling", firing.RunbookUrl);
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Firing), "the firing message");
        Assert.Equal("Check the cooling of rack r01 (31 now, peak 31); rule rack-hot", h.Sink.All.First(a => a.Status == AlertStatus.Firing).Action);

        // Resolved: nothing left to do first, the runbook stays for the follow-up.
        h.Feed(s, 20);
        h.Advance(TimeSpan.FromSeconds(11));
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Resolved), "the resolved message");
        var resolved = h.Sink.All.Single(a => a.Status == AlertStatus.Resolved);
        Assert.Null(resolved.Action);
        Assert.Equal("https://wiki.example/dc1/runbooks/rack-hot?section=first-steps#cooling", resolved.RunbookUrl);
    }

    [Fact]
    public void A_rule_without_them_has_neither()
    {
        var rule = Yaml.Valid(Rule("for: 1s")).Rules.Single();
        Assert.Null(rule.Action);
        Assert.Null(rule.RunbookUrl);
    }

    [Theory]
    [InlineData("runbook_url: \"ftp://wiki.example/inlet\"", "alerts.rules[0].runbook_url: must be an absolute http or https URL of the site's procedure for this alert (e.g. https://wiki.example/runbooks/inlet-hot), got 'ftp://wiki.example/inlet'")]
    [InlineData("runbook_url: \"runbooks/inlet-hot.html\"", "alerts.rules[0].runbook_url: must be an absolute http or https URL of the site's procedure for this alert (e.g. https://wiki.example/runbooks/inlet-hot), got 'runbooks/inlet-hot.html'")]
    [InlineData("runbook_url: \"https://wiki.example/Inlet hot\"", "alerts.rules[0].runbook_url: must be an absolute http or https URL of the site's procedure for this alert (e.g. https://wiki.example/runbooks/inlet-hot), got 'https://wiki.example/Inlet hot' (it has a space or control character: write it %20-escaped)")]
    [InlineData("runbook_url: \"https://ops:s3cret@wiki.example/inlet\"", "alerts.rules[0].runbook_url: must not carry a user:password: the runbook URL goes to every sink (chat, journal, Alertmanager) and to the centre; let the wiki ask for the login")]
    [InlineData("action: \"\"", "alerts.rules[0].action: is empty: write what the operator should do first, or leave the key out")]
    [InlineData("action: \"Check rack {rack} now\"", "alerts.rules[0].action: unknown placeholder {rack}: action can use {key}, {value}, {peak}, {rule}, {unit}, {limit}, {place}, {site}, {since}")]
    [InlineData("summary: \"{rack} is hot\"", "alerts.rules[0].summary: unknown placeholder {rack}: summary can use {key}, {value}, {peak}, {rule}, {unit}, {limit}, {place}, {site}, {since}")]
    [InlineData("action: \"Check the CRAC\\tnow\"", "alerts.rules[0].action: has a control character (a tab?): one line of plain text")]
    public void A_bad_runbook_url_or_action_is_an_error_at_its_key_with_file_and_line(string extra, string message)
    {
        var (_, problems) = Yaml.Alerts(Rule(extra));
        var problem = Assert.Single(problems).ToString();
        Assert.StartsWith("site.yaml:3:", problem, StringComparison.Ordinal);
        Assert.EndsWith(message, problem.Replace("alerts.rules.0", "alerts.rules[0]", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Fact]
    public void An_action_longer_than_the_limit_is_an_error_that_says_where_the_procedure_belongs()
    {
        var text = new string('x', AlertsConfig.MaxActionLength + 1);
        var (_, problems) = Yaml.Alerts(Rule($"action: \"{text}\""));
        Assert.Contains("action: is 201 characters; at most 200: one line to act on, the procedure belongs behind runbook_url", Assert.Single(problems).ToString(), StringComparison.Ordinal);
        Assert.Empty(Yaml.Alerts(Rule($"action: \"{text[..^1]}\"")).Problems);
    }

    [Fact]
    public void Check_reports_a_bad_runbook_url_against_the_site_config_with_file_line_and_key()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-runbook-check-").FullName;
        try
        {
            var yaml = "site: { id: dc1, gateway_id: gw1 }\ndevices: []\n" + Rule("runbook_url: wiki/inlet-hot");
            var result = EdgeTwin.Core.Config.SiteConfigLoader.Parse(yaml, Path.Combine(dir, "site.yaml"), new EdgeTwin.Core.Config.SiteConfigLoadOptions
            {
                ProfilesDir = Path.Combine(ShippedFiles.Repo(), "device-profiles"),
                SectionValidators = [new AlertsSectionValidator()],
            });
            var problem = Assert.Single(result.Problems).ToString();
            Assert.StartsWith(Path.Combine(dir, "site.yaml") + ":5:", problem, StringComparison.Ordinal);
            Assert.Contains("runbook_url: must be an absolute http or https URL", problem, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("datacenter.yaml")]
    [InlineData("machine-line.yaml")]
    public void The_shipped_rule_sets_give_every_rule_and_input_a_first_action_and_their_runbook_examples_load(string file)
    {
        var path = Path.Combine(ShippedFiles.Repo(), "device-profiles", "examples", "alert-rules", file);
        var text = File.ReadAllText(path);
        var (config, problems) = Yaml.Alerts(text, path);
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        Assert.All(config.Rules, r =>
        {
            Assert.False(string.IsNullOrWhiteSpace(r.Action), $"{file}: rule {r.Name} has no action");
            Assert.InRange(r.Action!.Length, 20, AlertsConfig.MaxActionLength);
            Assert.Null(r.RunbookUrl);
        });

        // The commented runbook_url examples, uncommented as a site would, are valid and reach their rules.
        var examples = text.Split('\n').Count(l => l.TrimStart().StartsWith("# runbook_url:", StringComparison.Ordinal));
        Assert.True(examples >= 2, $"{file}: {examples} runbook_url examples");
        var uncommented = string.Join('\n', text.Split('\n').Select(l => l.TrimStart().StartsWith("# runbook_url:", StringComparison.Ordinal)
            ? Uncomment(l)
            : l));
        var (withRunbooks, runbookProblems) = Yaml.Alerts(uncommented, path);
        Assert.True(runbookProblems.Count == 0, string.Join("\n", runbookProblems));
        Assert.Equal(examples, withRunbooks.Rules.Count(r => r.RunbookUrl is not null));
        Assert.All(withRunbooks.Rules.Where(r => r.RunbookUrl is not null), r => Assert.StartsWith("https://", r.RunbookUrl, StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_shipped_rack_inlet_rule_tells_the_operator_which_rack_to_check()
    {
        var lines = File.ReadAllLines(Path.Combine(ShippedFiles.Repo(), "device-profiles", "examples", "alert-rules", "datacenter.yaml"))
            .SkipWhile(l => l.Trim() != "- name: rack-inlet-above-allowable")
            .TakeWhile((l, i) => i == 0 || !l.TrimStart().StartsWith("- name:", StringComparison.Ordinal));
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", lines));
        var s = h.Series("rack-r01", "inlet_temperature", "rack.inlet_temperature", "Cel");
        h.Feed(s, 33);
        h.Advance(TimeSpan.FromSeconds(31));
        h.Feed(s, 33);
        var firing = h.Active("rack-inlet-above-allowable")!;
        Assert.Equal(AlertState.Firing, firing.State);
        Assert.Equal("Check the cooling unit of rack r01's row now; if it stopped, open the cold-aisle doors and shed non-critical load in the rack", firing.Action);
    }

    /// <summary><c>      # runbook_url: URL   # comment</c> → <c>      runbook_url: URL</c>.</summary>
    private static string Uncomment(string line)
    {
        var key = line.Replace("# runbook_url:", "runbook_url:", StringComparison.Ordinal);
        return key[..key.LastIndexOf("   #", StringComparison.Ordinal)];
    }
}
