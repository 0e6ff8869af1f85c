namespace EdgeTwin.IntegrationTests.Deployment;

/// <summary>What a failed tool run puts first in an assertion message: CI shows only a failed test's first lines.</summary>
public sealed class ToolResultTests
{
    // ansible-core 2.14's default callback, as a converge of the role prints a failed command and a failed module.
    private const string FailedPlay = """

        PLAY [all] *********************************************************************

        TASK [Gathering Facts] *********************************************************
        ok: [gw7]

        TASK [edgetwin : Create the service group] *************************************
        ok: [gw7]

        TASK [edgetwin : Read the gateway's systemd version (for the unit's restart policy)] ***
        fatal: [gw7]: FAILED! => {"changed": false, "cmd": ["/lib/systemd/systemd", "--version"], "msg": "non-zero return code", "rc": 1, "stderr": "cannot open \"/etc/os-release\"", "stdout": ""}

        TASK [edgetwin : Create the service user] **************************************
        fatal: [gw7]: FAILED! => {"changed": false, "msg": "usermod: cannot lock /etc/passwd; try again later.\n", "name": "nobody", "rc": 1}

        PLAY RECAP *********************************************************************
        gw7                        : ok=2    changed=0    unreachable=0    failed=1    skipped=0    rescued=0    ignored=0

        """;

    [Fact]
    public void A_failed_play_names_its_failed_tasks_and_their_messages_before_its_output()
    {
        var explained = new Tool.Result(2, FailedPlay, "").Explained;

        var lines = explained.Split('\n');
        Assert.Equal("exit 2: TASK [edgetwin : Read the gateway's systemd version (for the unit's restart policy)]: msg: non-zero return code; stderr: cannot open \\\"/etc/os-release\\\"", lines[0]);
        Assert.Equal("""TASK [edgetwin : Create the service user]: msg: usermod: cannot lock /etc/passwd; try again later.\n""", lines[1]);
        Assert.Equal("--- all output ---", lines[2]);
        Assert.EndsWith(FailedPlay, explained, StringComparison.Ordinal);
    }

    [Fact]
    public void A_failed_tool_without_ansible_lines_puts_its_last_lines_first()
    {
        var explained = new Tool.Result(1, "copying\nstill copying\n\n", "cp: cannot stat '/etc/x': No such file or directory\n").Explained;

        Assert.StartsWith("exit 1: copying\nstill copying\ncp: cannot stat '/etc/x': No such file or directory\n--- all output ---\n", explained, StringComparison.Ordinal);
    }
}
