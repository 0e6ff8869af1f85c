using System.Diagnostics;

// Shared by the test projects that start scripted peers (linked into the Modbus and SNMP tests).
namespace EdgeTwin.Tests.Shared;

/// <summary>Ends a peer process the test started (and its children), waiting at most 10 s, and releases it.</summary>
internal static class PeerProcess
{
    public static async ValueTask StopAsync(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
            }
        }
        catch (InvalidOperationException)
        {
            // exited between the check and the kill
        }
        catch (TimeoutException)
        {
            // a zombie the kernel reaps later; nothing more a test can do
        }

        process.Dispose();
    }
}
