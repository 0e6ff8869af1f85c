using EdgeTwin.Snmp.Client;
using EdgeTwin.Snmp.Messages;
using EdgeTwin.Snmp.Security;
using EdgeTwin.Snmp.Tests.Peers;

namespace EdgeTwin.Snmp.Tests.Client;

/// <summary>
/// Our client against pysnmp's command responder (a second USM implementation; Peers/pysnmp_v3_agent.py): AES-192/256
/// in the Reeder key extension (pysnmp's usmAesCfb192/256Protocol, net-snmp's AES-192-C/AES-256-C, what Cisco IOS,
/// IOS-XE and NX-OS use) and, as a cross-check of the existing code, in the Blumenthal one.
/// </summary>
public sealed class PySnmpAgentTests : IAsyncLifetime
{
    private static readonly Oid SysDescr = Oid.Parse("1.3.6.1.2.1.1.1.0");
    private static readonly Oid SystemOid = Oid.Parse("1.3.6.1.2.1.1");
    private readonly SnmpClient _client = new();
    private PySnmpAgent? _agent;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _agent = await PySnmpAgent.StartAsync();

    public async ValueTask DisposeAsync()
    {
        await _client.DisposeAsync();
        if (_agent is not null)
        {
            await _agent.DisposeAsync();
        }
    }

    private SnmpTarget Target(string user, SnmpAuthProtocol auth, SnmpPrivProtocol priv) => new()
    {
        EndPoint = _agent!.EndPoint,
        Version = SnmpVersion.V3,
        User = new SnmpV3User(user, auth, PySnmpAgent.AuthPassword, priv, PySnmpAgent.PrivPassword),
        Timeout = TimeSpan.FromMilliseconds(800),
        Retries = 1,
    };

    [Theory]
    [InlineData("reeder256", SnmpAuthProtocol.Sha1, SnmpPrivProtocol.Aes256Reeder)]
    [InlineData("reeder192", SnmpAuthProtocol.Md5, SnmpPrivProtocol.Aes192Reeder)]
    [InlineData("reeder256sha224", SnmpAuthProtocol.Sha224, SnmpPrivProtocol.Aes256Reeder)]
    [InlineData("blum256", SnmpAuthProtocol.Sha1, SnmpPrivProtocol.Aes256)]
    [InlineData("blum192", SnmpAuthProtocol.Md5, SnmpPrivProtocol.Aes192)]
    public async Task Get_and_walk_in_each_key_extension(string user, SnmpAuthProtocol auth, SnmpPrivProtocol priv)
    {
        var target = Target(user, auth, priv);
        var vbs = await _client.GetAsync(target, [SysDescr], Ct);
        Assert.StartsWith("PySNMP engine version", System.Text.Encoding.ASCII.GetString(vbs[0].Value.AsBytes().Span), StringComparison.Ordinal);
        var walk = await _client.BulkWalkAsync(target, SystemOid, Ct);
        Assert.True(walk.Count >= 7, $"only {walk.Count} rows");
        Assert.Equal(0, _agent!.DecryptionErrors);
    }

    [Fact]
    public async Task Regression_a_cisco_device_with_aes256_could_not_be_polled_and_the_error_did_not_name_the_reeder_variant()
    {
        // Before: no AES-256-C at all, and AES-256 (Blumenthal) against a Reeder user failed with "wrong privacy
        // password or protocol (Aes256)" only.
        var ex = await Assert.ThrowsAsync<SnmpUsmException>(() => _client.GetAsync(Target("reeder256", SnmpAuthProtocol.Sha1, SnmpPrivProtocol.Aes256), [SysDescr], Ct));
        Assert.Equal(UsmError.DecryptionError, ex.Error);
        Assert.Contains("a Cisco device (IOS, IOS-XE, NX-OS) with AES-256 needs priv protocol AES-256-C (Reeder key extension)", ex.Message, StringComparison.Ordinal);
        Assert.True(_agent!.DecryptionErrors >= 1, _agent.Log);
        // The same user with the variant the hint names is answered.
        Assert.Single(await _client.GetAsync(Target("reeder256", SnmpAuthProtocol.Sha1, SnmpPrivProtocol.Aes256Reeder), [SysDescr], Ct));
    }

    [Fact]
    public async Task Reeder_variant_against_a_blumenthal_user_names_the_blumenthal_variant()
    {
        var ex = await Assert.ThrowsAsync<SnmpUsmException>(() => _client.GetAsync(Target("blum192", SnmpAuthProtocol.Md5, SnmpPrivProtocol.Aes192Reeder), [SysDescr], Ct));
        Assert.Equal(UsmError.DecryptionError, ex.Error);
        Assert.Contains("needs priv protocol AES-192 (Blumenthal key extension)", ex.Message, StringComparison.Ordinal);
    }
}
