using System.Net;
using System.Net.Sockets;

namespace EdgeTwin.Uplink.Tests.Support;

internal static class FreePort
{
    /// <summary>A TCP port the OS just handed out on loopback (then released for the peer to bind).</summary>
    public static int Next()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
