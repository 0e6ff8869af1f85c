namespace EdgeTwin.IntegrationTests.Agent;

/// <summary>
/// <c>edgetwin poll</c> loads the same config as <c>check</c> and <c>run</c>, so it says the same config warnings: on
/// standard error, as <c>check</c> prints them (<c>FILE:LINE:COL: warning: key: message</c>), with the reading on standard
/// output and the exit code as without warnings.
/// </summary>
public sealed class PollConfigWarningsTests
{
    /// <summary>0644, as a checkout leaves it: the config's inline community is then readable by every user (a warning).</summary>
    private static void WorldReadable(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Assert.Skip("file modes are Unix only");
        }
        else
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }
    }

    [Fact]
    public async Task Regression_poll_did_not_print_config_warnings()
    {
        var temp = FakeThermal.Create(47250);
        var config = AgentFiles.WriteConfig($$"""
              - { id: gw-cpu, profile: linux-cpu-temperature, address: "cpu:{{temp}}", interval: 30s }
            """);
        var quiet = await InProcessCli.RunAsync("poll", "gw-cpu", "--config", config, "--json");
        Assert.True(quiet.Exit == 0, $"exit {quiet.Exit}: {quiet.Error}\n{quiet.Output}");
        Assert.Equal("", quiet.Error);

        // At 0644 the config's inline community is readable by every user: check warns, and so must poll.
        WorldReadable(config);
        var (checkExit, checkOutput, _) = await InProcessCli.RunAsync("check", "--config", config);
        Assert.Equal(0, checkExit);
        var warning = Assert.Single(checkOutput.Split('\n'), l => l.Contains(": warning: ", StringComparison.Ordinal));
        Assert.StartsWith($"{config}:", warning, StringComparison.Ordinal);
        Assert.Contains("credentials.pub.community: this file is readable by every user (mode 0644) and holds inline secrets: credentials.pub.community", warning, StringComparison.Ordinal);

        foreach (var json in (string[])["--json", ""])
        {
            var args = json.Length == 0 ? (string[])["poll", "gw-cpu", "--config", config] : ["poll", "gw-cpu", "--config", config, json];
            var (exit, output, error) = await InProcessCli.RunAsync(args);
            Assert.True(exit == 0, $"exit {exit}: {error}\n{output}");
            Assert.Equal([warning], error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.DoesNotContain("warning", output, StringComparison.Ordinal);
            if (json.Length > 0)
            {
                // The reading is unchanged (apart from its time), and still the only thing on standard output (valid JSON).
                using var doc = System.Text.Json.JsonDocument.Parse(output);
                using var quietDoc = System.Text.Json.JsonDocument.Parse(quiet.Output);
                Assert.Equal(quietDoc.RootElement.GetProperty("metrics").GetRawText(), doc.RootElement.GetProperty("metrics").GetRawText());
                Assert.Equal(47.25, Assert.Single(doc.RootElement.GetProperty("metrics").EnumerateArray()).GetProperty("value").GetDouble());
            }
        }
    }

    [Fact]
    public async Task Poll_of_an_invalid_config_prints_its_warnings_among_the_problems_as_check_does()
    {
        var temp = FakeThermal.Create(47250);
        var config = AgentFiles.WriteConfig($$"""
              - { id: gw-cpu, profile: linux-cpu-temperature, address: "cpu:{{temp}}", interval: 30s, bogus_key: 1 }
            """);
        WorldReadable(config);
        var (checkExit, checkOutput, _) = await InProcessCli.RunAsync("check", "--config", config);
        Assert.Equal(1, checkExit);

        var (exit, output, error) = await InProcessCli.RunAsync("poll", "gw-cpu", "--config", config);
        Assert.Equal(2, exit);
        Assert.Equal("", output);
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        // The same problems and warnings, in the same (file) order; only the last line differs.
        Assert.Equal(checkOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries)[..^1], lines[..^1]);
        Assert.Contains(lines, l => l.Contains(": warning: credentials.pub.community: this file is readable by every user", StringComparison.Ordinal));
        Assert.Equal($"edgetwin: 1 problem in {config}; not starting", lines[^1]);
    }
}
