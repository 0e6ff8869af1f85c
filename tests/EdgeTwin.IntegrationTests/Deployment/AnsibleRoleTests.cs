using System.Text.RegularExpressions;

namespace EdgeTwin.IntegrationTests.Deployment;

/// <summary>
/// The Ansible role in ansible/: <c>ansible-lint --profile production</c> clean, the site playbook parses, and the unit
/// the role renders for a site passes the same systemd checks as the reference unit.
/// </summary>
public sealed partial class AnsibleRoleTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string AnsibleDir => Path.Combine(Tool.RepoRoot(), "ansible");

    private static string Require(string tool, string package)
    {
        var path = Tool.Find(tool);
        if (path is null)
        {
            var reason = $"{tool} (Debian package '{package}') is not installed";
            Console.WriteLine($"SKIP: {reason}");
            Assert.Skip(reason);
        }

        return path;
    }

    [Fact]
    public async Task Ansible_lint_production_profile_is_clean()
    {
        var lint = Require("ansible-lint", "ansible-lint");
        var result = await Tool.RunAsync(
            lint,
            ["--profile", "production", "--offline", "--nocolor", "site.yml", "roles/edgetwin"],
            Timeout,
            Ct,
            AnsibleDir,
            new Dictionary<string, string> { ["ANSIBLE_LOCAL_TEMP"] = Path.GetTempPath(), ["NO_COLOR"] = "1" });
        output.WriteLine(result.All);
        Assert.Equal(0, result.ExitCode);
        Assert.Matches(PassedLine(), result.All);
    }

    [Fact]
    public async Task Site_playbook_passes_syntax_check_with_the_example_inventory()
    {
        var playbook = Require("ansible-playbook", "ansible");
        var result = await Tool.RunAsync(
            playbook,
            ["--syntax-check", "--vault-password-file", "inventory/example/vault-password.example", "site.yml"],
            Timeout,
            Ct,
            AnsibleDir);
        output.WriteLine(result.All);
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("playbook: site.yml", result.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rendered_unit_for_a_serial_only_site_allows_only_serial_devices_and_stays_within_exposure()
    {
        var playbook = Require("ansible-playbook", "ansible");
        var analyze = Require("systemd-analyze", "systemd");
        using var dir = new TempDir();
        var unit = Path.Combine(dir.Path, "edgetwin.service");
        var binary = Path.Combine(dir.Path, "edgetwin");
        await File.WriteAllTextAsync(binary, "#!/bin/sh\nexit 0\n", Ct);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(binary, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite);
        }

        // Render only the role's unit template with its defaults, for a site whose devices sit on serial lines.
        var play = Path.Combine(dir.Path, "render.yml");
        await File.WriteAllTextAsync(play, $$"""
            - hosts: localhost
              gather_facts: false
              vars_files: [{{AnsibleDir}}/roles/edgetwin/defaults/main.yml]
              tasks:
                - ansible.builtin.template:
                    src: {{AnsibleDir}}/roles/edgetwin/templates/edgetwin.service.j2
                    dest: {{unit}}
                    mode: "0644"
            """, Ct);
        // Extra vars: they outrank the defaults loaded through vars_files.
        var extra = $$"""{"edgetwin_buses": ["serial"], "edgetwin_current": "{{dir.Path}}"}""";
        var render = await Tool.RunAsync(playbook, ["-i", "localhost,", "-c", "local", "-e", extra, play], Timeout, Ct, dir.Path);
        output.WriteLine(render.All);
        Assert.Equal(0, render.ExitCode);

        var settings = SystemdUnitTests.ReadService(await File.ReadAllLinesAsync(unit, Ct));
        Assert.Equal(["dialout"], settings["SupplementaryGroups"]);
        Assert.Equal(["char-ttyS rw", "char-ttyUSB rw", "char-ttyACM rw", "char-ttyAMA rw"], settings["DeviceAllow"]);
        Assert.Equal([$"{dir.Path}/edgetwin run --config /etc/edgetwin/edgetwin.yaml"], settings["ExecStart"]);

        var verify = await Tool.RunAsync(analyze, ["verify", "--man=no", unit], Timeout, Ct, dir.Path);
        output.WriteLine(verify.All);
        Assert.Equal(0, verify.ExitCode);
        Assert.Equal("", verify.All.Trim());
        var security = await Tool.RunAsync(analyze, ["security", "--offline=true", "--threshold=25", "--no-pager", unit], Timeout, Ct, dir.Path);
        output.WriteLine(security.All);
        Assert.Equal(0, security.ExitCode);
    }

    [GeneratedRegex("Passed with production profile: 0 failure")]
    private static partial Regex PassedLine();
}
