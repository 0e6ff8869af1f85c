using System.Net;
using System.Net.Sockets;

namespace EdgeTwin.IntegrationTests;

/// <summary>Ports for the tests' real peers, picked by the OS so parallel runs never collide on a fixed port.</summary>
internal static class TestPorts
{
    /// <summary>A TCP port on loopback that was free a moment ago (the listener that found it is closed).</summary>
    public static int FreeTcp()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
