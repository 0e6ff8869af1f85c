using System.Net;
using System.Net.Sockets;

namespace EdgeTwin.Alerting.Tests.Support;

/// <summary>Random free loopback ports for the peers the tests start.</summary>
internal static class Ports
{
    public static int FreeTcp()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }
}
