using EdgeTwin.Core.Config;

namespace EdgeTwin.Core.Tests.Config;

/// <summary>
/// The one judgement of "does this peer's traffic leave the gateway / the site's networks" behind every plaintext
/// warning (MQTT and Kafka uplinks, webhook, SMTP and MQTT alert sinks).
/// </summary>
public sealed class NetworkScopeTests
{
    [Theory]
    [InlineData("localhost")]
    [InlineData("LOCALHOST")]
    [InlineData("broker.localhost")]
    [InlineData("127.0.0.1")]
    [InlineData("127.8.9.10")]
    [InlineData("::1")]
    [InlineData("[::1]")]
    public void Loopback_hosts_never_leave_the_gateway(string host) => Assert.True(NetworkScope.IsLoopback(host));

    [Theory]
    [InlineData("10.0.0.1")]
    [InlineData("localhost.example.net")]
    [InlineData("mylocalhost")]
    [InlineData("::2")]
    [InlineData("")]
    public void Other_hosts_are_not_loopback(string host) => Assert.False(NetworkScope.IsLoopback(host));

    [Theory]
    [InlineData("10.1.2.3")]
    [InlineData("172.16.0.9")]
    [InlineData("172.31.255.255")]
    [InlineData("192.168.1.20")]
    [InlineData("169.254.1.1")]
    [InlineData("fd00::20")]
    [InlineData("[fd00::20]")]
    [InlineData("fe80::1")]
    [InlineData("::ffff:192.168.0.5")]
    public void Site_networks_are_private(string host) => Assert.True(NetworkScope.IsPrivate(host));

    [Theory]
    [InlineData("172.15.0.1")]
    [InlineData("172.32.0.1")]
    [InlineData("192.169.0.1")]
    [InlineData("203.0.113.5")]
    [InlineData("2001:db8::1")]
    [InlineData("::ffff:8.8.8.8")]
    [InlineData("broker.example.net")]   // a name is not known to be private without DNS
    [InlineData("127.0.0.1")]            // loopback is its own, narrower scope
    public void Other_addresses_and_names_are_not_private(string host) => Assert.False(NetworkScope.IsPrivate(host));
}
