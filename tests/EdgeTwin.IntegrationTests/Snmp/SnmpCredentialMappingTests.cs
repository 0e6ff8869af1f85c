using EdgeTwin.Agent.Sources.Snmp;
using Config = EdgeTwin.Core.Config;
using Library = EdgeTwin.Snmp.Security;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>
/// The config's SNMPv3 protocol names reach the SNMP library as the same protocol. The two enums are declared apart and
/// were mapped by casting their numbers, which would silently pick another protocol once either list was reordered.
/// </summary>
public sealed class SnmpCredentialMappingTests
{
    [Fact]
    public void Every_auth_protocol_of_the_config_maps_to_the_library_protocol_of_the_same_name()
    {
        Assert.All(Enum.GetValues<Config.SnmpAuthProtocol>(), auth => Assert.Equal(auth.ToString(), SnmpSourceFactory.ToLibrary(auth).ToString()));
        Assert.Equal(Enum.GetNames<Library.SnmpAuthProtocol>().Order(), Enum.GetNames<Config.SnmpAuthProtocol>().Order());
    }

    [Fact]
    public void Every_priv_protocol_of_the_config_maps_to_the_library_protocol_of_the_same_name()
    {
        Assert.All(Enum.GetValues<Config.SnmpPrivProtocol>(), priv => Assert.Equal(priv.ToString(), SnmpSourceFactory.ToLibrary(priv).ToString()));
        Assert.Equal(Enum.GetNames<Library.SnmpPrivProtocol>().Order(), Enum.GetNames<Config.SnmpPrivProtocol>().Order());
    }
}
