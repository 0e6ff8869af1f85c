using EdgeTwin.Core.Config;

namespace EdgeTwin.Core.Tests.Config;

public sealed class EndpointTextTests
{
    [Theory]
    [InlineData("::1", 1883, "[::1]:1883")] // was ::1:1883, the port read as the address's last group
    [InlineData("[::1]", 1883, "[::1]:1883")] // bracketed in the config: bracketed once
    [InlineData("fd12:3456::30", 502, "[fd12:3456::30]:502")]
    [InlineData("fe80::1%eth0", 161, "[fe80::1%eth0]:161")]
    [InlineData("10.0.0.5", 502, "10.0.0.5:502")]
    [InlineData("broker.lan", 8883, "broker.lan:8883")]
    public void Ipv6_hosts_are_bracketed_once_and_the_rest_left_as_written(string host, int port, string text) =>
        Assert.Equal(text, EndpointText.Of(host, port));
}
