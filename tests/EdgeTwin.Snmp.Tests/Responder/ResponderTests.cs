using System.Net;
using EdgeTwin.Snmp.Client;
using EdgeTwin.Snmp.Messages;
using EdgeTwin.Snmp.Responder;
using EdgeTwin.Snmp.Security;
using EdgeTwin.Snmp.Tests.Support;
using EdgeTwin.Snmp.Transport;

namespace EdgeTwin.Snmp.Tests.Responder;

public sealed class ResponderTests : IAsyncDisposable
{
    private static readonly Oid OutletEntry = Oid.Parse("1.3.6.1.4.1.99999.1.2.1");
    private readonly SnmpMibStore _store = new();
    private readonly SnmpResponder _responder;
    private readonly SnmpClient _client = new();
    private int _ticks;

    private static readonly SnmpV3User[] Users =
    [
        new("md5des", SnmpAuthProtocol.Md5, "authpass123", SnmpPrivProtocol.Des, "privpass123"),
        new("shaaes", SnmpAuthProtocol.Sha1, "authpass123", SnmpPrivProtocol.Aes128, "privpass123"),
        new("sha224aes192", SnmpAuthProtocol.Sha224, "authpass123", SnmpPrivProtocol.Aes192, "privpass123"),
        new("sha512aes256", SnmpAuthProtocol.Sha512, "authpass123", SnmpPrivProtocol.Aes256, "privpass123"),
        new("md5aes256", SnmpAuthProtocol.Md5, "authpass123", SnmpPrivProtocol.Aes256, "privpass123"),
        new("shaaes256c", SnmpAuthProtocol.Sha1, "authpass123", SnmpPrivProtocol.Aes256Reeder, "privpass123"),
        new("md5aes192c", SnmpAuthProtocol.Md5, "authpass123", SnmpPrivProtocol.Aes192Reeder, "privpass123"),
        new("sha256auth", SnmpAuthProtocol.Sha256, "authpass123"),
    ];

    public ResponderTests()
    {
        _store.Set("1.3.6.1.2.1.1.1.0", SnmpValue.OctetString("EdgeTwin simulated PDU"));
        _store.Set("1.3.6.1.2.1.1.2.0", SnmpValue.ObjectIdentifier(Oid.Parse("1.3.6.1.4.1.99999.2")));
        _store.Set("1.3.6.1.2.1.1.3.0", () => SnmpValue.TimeTicks((uint)Interlocked.Add(ref _ticks, 100)));
        _store.Set("1.3.6.1.2.1.1.5.0", SnmpValue.OctetString("pdu-a1"));
        _store.Set("1.3.6.1.4.1.99999.1.1.0", SnmpValue.Counter64(12_345_678_901_234));
        _store.Set("1.3.6.1.4.1.99999.1.3.0", SnmpValue.OpaqueFloat(21.5f));
        _store.Set("1.3.6.1.4.1.99999.1.4.0", SnmpValue.IpAddress(IPAddress.Parse("10.1.2.3")));
        _store.Set("1.3.6.1.4.1.99999.1.5.0", SnmpValue.OctetString([0x00, 0x1a, 0x2b, 0xff]));
        _store.Set("1.3.6.1.4.1.99999.1.6.0", SnmpValue.Integer(-42));
        for (uint i = 1; i <= 8; i++)
        {
            _store.SetCell(OutletEntry, 1, [i], SnmpValue.Integer((int)i));
            _store.SetCell(OutletEntry, 2, [i], SnmpValue.OctetString($"outlet {i}"));
            _store.SetCell(OutletEntry, 3, [i], SnmpValue.Gauge32(i * 10));
            _store.SetCell(OutletEntry, 4, [i], SnmpValue.Counter32(i * 1000));
        }
        _responder = new SnmpResponder(_store, new SnmpResponderOptions { Users = Users });
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private string Agent => $"127.0.0.1:{_responder.LocalEndPoint.Port}";
    private SnmpTarget Target(SnmpVersion v = SnmpVersion.V2c, SnmpV3User? user = null) =>
        new() { EndPoint = _responder.LocalEndPoint, Version = v, User = user, Timeout = TimeSpan.FromSeconds(2) };

    private static void SkipWithoutTools() =>
        Assert.SkipWhen(SnmpdFixture.FindTool("snmpget") is null, "net-snmp tools (Debian package 'snmp') are not installed");

    [Fact]
    public async Task Snmpget_reads_every_type_and_prints_what_our_formatter_prints()
    {
        SkipWithoutTools();
        string[] oids = ["1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.4.1.99999.1.1.0", "1.3.6.1.4.1.99999.1.3.0",
            "1.3.6.1.4.1.99999.1.4.0", "1.3.6.1.4.1.99999.1.5.0", "1.3.6.1.4.1.99999.1.6.0", "1.3.6.1.4.1.99999.1.2.1.3.4", "1.3.6.1.4.1.99999.1.9.0"];
        var (exit, stdout, stderr) = await NetSnmpTool.RunAsync("snmpget", ["-v2c", "-c", "public", "-On", "-t", "3", Agent, .. oids], Ct);
        Assert.True(exit == 0, stderr);
        var ours = oids.Select(o => new VarBind(Oid.Parse(o), _store.Get(Oid.Parse(o))).ToString());
        Assert.Equal(ours, stdout.TrimEnd('\n').Split('\n'));
    }

    [Fact]
    public async Task Snmpbulkwalk_reads_the_table_back_in_order()
    {
        SkipWithoutTools();
        var (exit, stdout, stderr) = await NetSnmpTool.RunAsync("snmpbulkwalk", ["-v2c", "-c", "public", "-On", "-Cr5", Agent, "1.3.6.1.4.1.99999.1.2"], Ct);
        Assert.True(exit == 0, stderr);
        var lines = stdout.TrimEnd('\n').Split('\n');
        Assert.Equal(32, lines.Length);
        Assert.Equal(".1.3.6.1.4.1.99999.1.2.1.1.1 = INTEGER: 1", lines[0]);
        Assert.Equal(".1.3.6.1.4.1.99999.1.2.1.2.3 = STRING: \"outlet 3\"", lines[10]);
        Assert.Equal(".1.3.6.1.4.1.99999.1.2.1.4.8 = Counter32: 8000", lines[^1]);
    }

    [Theory]
    [InlineData("md5des", "MD5", "DES")]
    [InlineData("shaaes", "SHA", "AES")]
    [InlineData("sha224aes192", "SHA-224", "AES-192")]
    [InlineData("sha512aes256", "SHA-512", "AES-256")]
    [InlineData("md5aes256", "MD5", "AES-256")]
    [InlineData("shaaes256c", "SHA", "AES-256-C")]
    [InlineData("md5aes192c", "MD5", "AES-192-C")]
    public async Task Snmpbulkwalk_v3_authPriv_against_our_responder(string user, string auth, string priv)
    {
        SkipWithoutTools();
        var (exit, stdout, stderr) = await NetSnmpTool.RunAsync("snmpbulkwalk",
            ["-v3", "-l", "authPriv", "-u", user, "-a", auth, "-A", "authpass123", "-x", priv, "-X", "privpass123", "-On", Agent, "1.3.6.1.4.1.99999.1.2.1.2"], Ct);
        Assert.True(exit == 0, stderr);
        Assert.Equal(8, stdout.TrimEnd('\n').Split('\n').Length);
        Assert.Contains(".1.3.6.1.4.1.99999.1.2.1.2.8 = STRING: \"outlet 8\"", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Snmpget_v3_failures_get_net_snmp_s_own_error_messages()
    {
        SkipWithoutTools();
        var (_, _, unknown) = await NetSnmpTool.RunAsync("snmpget", ["-v3", "-l", "authNoPriv", "-u", "ghost", "-a", "SHA", "-A", "authpass123", "-On", Agent, "1.3.6.1.2.1.1.1.0"], Ct);
        Assert.Contains("Unknown user name", unknown, StringComparison.Ordinal);
        var (_, _, wrong) = await NetSnmpTool.RunAsync("snmpget", ["-v3", "-l", "authNoPriv", "-u", "sha256auth", "-a", "SHA-256", "-A", "wrongpass1", "-On", Agent, "1.3.6.1.2.1.1.1.0"], Ct);
        Assert.Contains("Authentication failure", wrong, StringComparison.Ordinal);
        var (exit, stdout, stderr) = await NetSnmpTool.RunAsync("snmpget", ["-v3", "-l", "authNoPriv", "-u", "sha256auth", "-a", "SHA-256", "-A", "authpass123", "-On", Agent, "1.3.6.1.2.1.1.5.0"], Ct);
        Assert.True(exit == 0, stderr);
        Assert.Equal(".1.3.6.1.2.1.1.5.0 = STRING: \"pdu-a1\"\n", stdout);
    }

    [Fact]
    public async Task Our_client_reads_our_responder_over_v1_v2c_v3()
    {
        var v1 = await _client.GetAsync(Target(SnmpVersion.V1), [Oid.Parse("1.3.6.1.2.1.1.5.0")], Ct);
        Assert.Equal("\"pdu-a1\"", SnmpFormatter.ValueText(v1[0].Value));
        var walk = await _client.BulkWalkAsync(Target(SnmpVersion.V3, Users[3]), OutletEntry, Ct);
        Assert.Equal(32, walk.Count);
        var v1walk = await _client.WalkAsync(Target(SnmpVersion.V1), Oid.Parse("1.3.6.1.4.1.99999.1"), Ct);
        Assert.DoesNotContain(v1walk, vb => vb.Value.Type == SnmpType.Counter64); // v1 cannot carry Counter64
        Assert.Equal(32 + 4, v1walk.Count);
    }

    [Fact]
    public async Task Client_resyncs_time_after_the_agent_reboots()
    {
        var target = Target(SnmpVersion.V3, Users[0]);
        await _client.GetAsync(target, [Oid.Parse("1.3.6.1.2.1.1.5.0")], Ct);
        _responder.Authority.Reboot();
        var vbs = await _client.GetAsync(target, [Oid.Parse("1.3.6.1.2.1.1.5.0")], Ct);
        Assert.Equal("\"pdu-a1\"", SnmpFormatter.ValueText(vbs[0].Value));
    }

    [Fact]
    public async Task Client_splits_a_get_that_the_agent_answers_with_tooBig()
    {
        var big = new SnmpMibStore();
        var oids = Enumerable.Range(1, 40).Select(i => Oid.Parse($"1.3.6.1.4.1.99999.7.{i}.0")).ToArray();
        foreach (var o in oids)
        {
            big.Set(o, SnmpValue.OctetString(new string('x', 60)));
        }
        await using var small = new SnmpResponder(big, new SnmpResponderOptions { MaxResponseSize = 484 });
        var target = new SnmpTarget { EndPoint = small.LocalEndPoint, Timeout = TimeSpan.FromSeconds(2) };
        var vbs = await _client.GetAsync(target, oids, Ct);
        Assert.Equal(oids, vbs.Select(v => v.Oid));
        Assert.All(vbs, v => Assert.Equal(60, v.Value.AsBytes().Length));
        var walk = await _client.BulkWalkAsync(target with { MaxRepetitions = 50 }, Oid.Parse("1.3.6.1.4.1.99999.7"), Ct);
        Assert.Equal(40, walk.Count);
    }

    [Fact]
    public async Task Muted_responder_times_out_and_a_slow_one_still_answers()
    {
        _responder.Mute = true;
        await Assert.ThrowsAsync<SnmpTimeoutException>(() => _client.GetAsync(Target() with { Timeout = TimeSpan.FromMilliseconds(200), Retries = 0 }, [Oid.Parse("1.3.6.1.2.1.1.5.0")], Ct));
        _responder.Mute = false;
        _responder.ResponseDelay = TimeSpan.FromMilliseconds(300);
        var vbs = await _client.GetAsync(Target() with { Timeout = TimeSpan.FromSeconds(3) }, [Oid.Parse("1.3.6.1.2.1.1.5.0")], Ct);
        Assert.Single(vbs);
    }

    [Fact]
    public async Task Wrong_level_is_unsupported_security_level()
    {
        var asNoPriv = new SnmpV3User("md5des", SnmpAuthProtocol.Md5, "authpass123");
        var ex = await Assert.ThrowsAsync<SnmpUsmException>(() => _client.GetAsync(Target(SnmpVersion.V3, asNoPriv), [Oid.Parse("1.3.6.1.2.1.1.5.0")], Ct));
        Assert.Equal(UsmError.UnsupportedSecurityLevel, ex.Error);
    }

    [Fact]
    public async Task Agent_returning_non_increasing_oids_is_detected_as_a_loop()
    {
        // A broken agent: every GetBulk is answered with the same two OIDs, the second lower than the first.
        await using var bad = SnmpUdpTransport.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        bad.Start((data, remote) =>
        {
            var req = SnmpMessageCodec.Decode(data.Span);
            var pdu = new SnmpPdu(PduType.Response, req.Pdu!.RequestId,
            [
                new VarBind(Oid.Parse("1.3.6.1.4.1.5.1.5"), SnmpValue.Integer(1)),
                new VarBind(Oid.Parse("1.3.6.1.4.1.5.1.3"), SnmpValue.Integer(2)),
            ]);
            _ = bad.SendAsync(SnmpMessageCodec.Encode(new SnmpMessage { Version = req.Version, Community = req.Community, Pdu = pdu }), remote, CancellationToken.None).AsTask();
        });
        var target = new SnmpTarget { EndPoint = bad.LocalEndPoint, Timeout = TimeSpan.FromSeconds(2) };
        var ex = await Assert.ThrowsAsync<SnmpException>(() => _client.BulkWalkAsync(target, Oid.Parse("1.3.6.1.4.1.5"), Ct));
        Assert.Contains("not increasing", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Store_answers_noSuchInstance_for_a_known_object_and_noSuchObject_otherwise()
    {
        Assert.Equal(SnmpType.NoSuchInstance, _store.Get(Oid.Parse("1.3.6.1.4.1.99999.1.2.1.3.99")).Type);
        Assert.Equal(SnmpType.NoSuchObject, _store.Get(Oid.Parse("1.3.6.1.4.1.99999.5.0")).Type);
        Assert.Equal(32, _store.RemoveSubtree(OutletEntry));
    }

    public async ValueTask DisposeAsync()
    {
        await _client.DisposeAsync();
        await _responder.DisposeAsync();
    }
}
