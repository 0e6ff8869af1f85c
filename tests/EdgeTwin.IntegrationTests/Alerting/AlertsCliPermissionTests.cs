using System.Net.Sockets;
using EdgeTwin.IntegrationTests.Deployment;

namespace EdgeTwin.IntegrationTests.Alerting;

/// <summary>
/// <c>edgetwin alerts</c> run by a user the socket keeps out (the built CLI started through <c>setpriv</c> as
/// <c>nobody</c>; root only): the message says permission denied and where, not that the socket does not exist.
/// </summary>
public sealed class AlertsCliPermissionTests(ITestOutputHelper output)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Regression_a_user_who_cannot_enter_the_sockets_directory_was_told_the_socket_does_not_exist()
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root")
        {
            Assert.Skip("needs root on Linux (runs the CLI as nobody through setpriv)");
            return;
        }

        if (!File.ReadAllText("/etc/passwd").Contains("\nnobody:", StringComparison.Ordinal))
        {
            Assert.Skip("the user nobody is needed");
        }

        var setpriv = Tool.Require("setpriv", "util-linux");
        var cli = Path.Combine(AppContext.BaseDirectory, "edgetwin");
        Assert.True(File.Exists(cli), $"{cli} was not built beside the tests");

        // As on a gateway: /var/lib/edgetwin is 0750 edgetwin:edgetwin, the socket in it 0660.
        using var dir = new TempDir();
        var state = Directory.CreateDirectory(Path.Combine(dir.Path, "state")).FullName;
        File.SetUnixFileMode(dir.Path, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(state, (UnixFileMode)0b111_101_000);
        var socket = Path.Combine(state, "alerts.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(socket));
        listener.Listen();
        File.SetUnixFileMode(socket, (UnixFileMode)0b110_110_000);

        async Task<Tool.Result> AsNobodyAsync()
        {
            var result = await Tool.RunAsync(
                setpriv,
                ["--reuid=nobody", "--regid=nogroup", "--clear-groups", cli, "alerts", "list", "--socket", socket],
                TimeSpan.FromMinutes(2),
                Ct,
                "/");
            output.WriteLine(result.All);
            return result;
        }

        // The directory keeps the user out: it cannot even see whether the socket exists.
        var denied = await AsNobodyAsync();
        Assert.Equal(1, denied.ExitCode);
        Assert.Contains($"permission denied on {state}:", denied.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("does not exist", denied.StdErr, StringComparison.Ordinal);

        // The directory open, the socket itself (0660) keeps the user out.
        File.SetUnixFileMode(state, (UnixFileMode)0b111_101_101);
        var socketDenied = await AsNobodyAsync();
        Assert.Equal(1, socketDenied.ExitCode);
        Assert.Contains($"permission denied on {socket}:", socketDenied.StdErr, StringComparison.Ordinal);
    }
}
