using System.Diagnostics;
using System.Net;
using EdgeTwin.Snmp.Client;
using EdgeTwin.Snmp.Messages;
using EdgeTwin.Snmp.Security;
using EdgeTwin.Snmp.Tests.Support;

namespace EdgeTwin.Snmp.Tests.Client;

[Collection("snmpd")]
public sealed class ClientAgainstSnmpdTests(SnmpdFixture snmpd) : IAsyncDisposable
{
    private static readonly Oid SysDescr = Oid.Parse("1.3.6.1.2.1.1.1.0");
    private static readonly Oid SysUpTime = Oid.Parse("1.3.6.1.2.1.1.3.0");
    private static readonly Oid SystemOid = Oid.Parse("1.3.6.1.2.1.1");
    private readonly SnmpClient _client = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private SnmpTarget Target(SnmpVersion v = SnmpVersion.V2c, string community = "public", SnmpV3User? user = null) =>
        new() { EndPoint = snmpd.EndPoint, Version = v, Community = community, User = user, Timeout = TimeSpan.FromSeconds(2), Retries = 2 };

    private void SkipIfNoSnmpd() => Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");

    [Fact]
    public async Task V1_and_v2c_get_read_sysDescr()
    {
        SkipIfNoSnmpd();
        foreach (var v in new[] { SnmpVersion.V1, SnmpVersion.V2c })
        {
            var vbs = await _client.GetAsync(Target(v), [SysDescr, SysUpTime], Ct);
            Assert.Equal($"STRING: \"{SnmpdFixture.SysDescr}\"", SnmpFormatter.Format(vbs[0].Value));
            Assert.Equal(SnmpType.TimeTicks, vbs[1].Value.Type);
        }
    }

    [Fact]
    public async Task V2c_get_of_missing_oid_is_noSuchObject_and_v1_is_noSuchName()
    {
        SkipIfNoSnmpd();
        var vbs = await _client.GetAsync(Target(), [Oid.Parse("1.3.6.1.2.1.1.99.0")], Ct);
        Assert.Equal(SnmpType.NoSuchObject, vbs[0].Value.Type);
        var ex = await Assert.ThrowsAsync<SnmpErrorStatusException>(() => _client.GetAsync(Target(SnmpVersion.V1), [Oid.Parse("1.3.6.1.2.1.1.99.0")], Ct));
        Assert.Equal(SnmpErrorStatus.NoSuchName, ex.Status);
    }

    [Fact]
    public async Task Bulkwalk_and_getnext_walk_agree_and_match_snmpbulkwalk()
    {
        SkipIfNoSnmpd();
        var bulk = await _client.BulkWalkAsync(Target() with { MaxRepetitions = 7 }, SystemOid, Ct);
        var walk = await _client.WalkAsync(Target(SnmpVersion.V1), SystemOid, Ct);
        Assert.True(bulk.Count > 10, $"only {bulk.Count} rows");
        Assert.Equal(walk.Select(v => v.Oid), bulk.Select(v => v.Oid));
        Assert.All(bulk.Zip(bulk.Skip(1)), p => Assert.True(p.First.Oid < p.Second.Oid));
        var (exit, stdout, _) = await NetSnmpTool.RunAsync("snmpbulkwalk", ["-v2c", "-c", "public", "-On", $"127.0.0.1:{snmpd.Port}", "1.3.6.1.2.1.1"], Ct);
        Assert.Equal(0, exit);
        var theirOids = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(" = ")[0]).ToArray();
        Assert.Equal(theirOids, bulk.Select(v => v.Oid.ToNumericString()));
    }

    [Fact]
    public async Task Walk_cap_stops_early()
    {
        SkipIfNoSnmpd();
        var rows = await _client.BulkWalkAsync(Target(), Oid.Parse("1.3.6.1.2.1"), Ct, maxRows: 12);
        Assert.Equal(12, rows.Count);
    }

    [Fact]
    public async Task Wrong_community_times_out_after_every_retry()
    {
        SkipIfNoSnmpd();
        var sw = Stopwatch.StartNew();
        var target = Target(community: "wrong") with { Timeout = TimeSpan.FromMilliseconds(300), Retries = 1 };
        var ex = await Assert.ThrowsAsync<SnmpTimeoutException>(() => _client.GetAsync(target, [SysDescr], Ct));
        Assert.Contains("2 attempt(s)", ex.Message, StringComparison.Ordinal);
        Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(550), $"gave up after {sw.Elapsed}");
    }

    public static TheoryData<SnmpAuthProtocol, SnmpPrivProtocol> Combinations()
    {
        var data = new TheoryData<SnmpAuthProtocol, SnmpPrivProtocol>();
        foreach (var a in SnmpdFixture.AuthProtocols)
        {
            foreach (var p in SnmpdFixture.PrivProtocols)
            {
                data.Add(a, p);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Combinations))]
    public async Task V3_every_auth_and_priv_combination_snmpd_offers(SnmpAuthProtocol auth, SnmpPrivProtocol priv)
    {
        SkipIfNoSnmpd();
        var vbs = await _client.GetAsync(Target(SnmpVersion.V3, user: SnmpdFixture.User(auth, priv)), [SysDescr], Ct);
        Assert.Equal(SnmpdFixture.SysDescr, System.Text.Encoding.ASCII.GetString(vbs[0].Value.AsBytes().Span));
        var walk = await _client.BulkWalkAsync(Target(SnmpVersion.V3, user: SnmpdFixture.User(auth, priv)), SystemOid, Ct);
        Assert.True(walk.Count > 10);
    }

    [Fact]
    public async Task V3_noAuthNoPriv_user()
    {
        SkipIfNoSnmpd();
        var vbs = await _client.GetAsync(Target(SnmpVersion.V3, user: new SnmpV3User("noauth")), [SysDescr], Ct);
        Assert.Equal(SnmpType.OctetString, vbs[0].Value.Type);
    }

    [Fact]
    public async Task V3_unknown_user_is_its_own_error()
    {
        SkipIfNoSnmpd();
        var ex = await Assert.ThrowsAsync<SnmpUsmException>(() =>
            _client.GetAsync(Target(SnmpVersion.V3, user: new SnmpV3User("nobody", SnmpAuthProtocol.Sha1, "authpass123")), [SysDescr], Ct));
        Assert.Equal(UsmError.UnknownUserName, ex.Error);
    }

    [Fact]
    public async Task V3_wrong_auth_password_is_wrong_digest()
    {
        SkipIfNoSnmpd();
        var user = SnmpdFixture.User(SnmpAuthProtocol.Sha256, SnmpPrivProtocol.Aes128, auth: "not-the-password");
        var ex = await Assert.ThrowsAsync<SnmpUsmException>(() => _client.GetAsync(Target(SnmpVersion.V3, user: user), [SysDescr], Ct));
        Assert.Equal(UsmError.WrongDigest, ex.Error);
    }

    [Theory]
    [InlineData(SnmpPrivProtocol.Des)]
    [InlineData(SnmpPrivProtocol.Aes128)]
    [InlineData(SnmpPrivProtocol.Aes256)]
    public async Task V3_wrong_priv_password_is_a_decryption_error_never_values(SnmpPrivProtocol priv)
    {
        SkipIfNoSnmpd();
        var user = SnmpdFixture.User(SnmpAuthProtocol.Md5, priv, priv: "not-the-password");
        var target = Target(SnmpVersion.V3, user: user) with { Timeout = TimeSpan.FromMilliseconds(700), Retries = 0 };
        var ex = await Assert.ThrowsAsync<SnmpUsmException>(() => _client.GetAsync(target, [SysDescr], Ct));
        Assert.Equal(UsmError.DecryptionError, ex.Error);
    }

    [Fact]
    public async Task V3_wrong_auth_protocol_is_wrong_digest()
    {
        SkipIfNoSnmpd();
        // The md5des user asked with SHA-1: the digest cannot match.
        var user = new SnmpV3User(SnmpdFixture.UserName(SnmpAuthProtocol.Md5, SnmpPrivProtocol.None), SnmpAuthProtocol.Sha1, SnmpdFixture.AuthPassword);
        var ex = await Assert.ThrowsAsync<SnmpUsmException>(() => _client.GetAsync(Target(SnmpVersion.V3, user: user), [SysDescr], Ct));
        Assert.Equal(UsmError.WrongDigest, ex.Error);
    }

    [Fact]
    public async Task Set_over_v2c_and_v3_authPriv_changes_what_snmpget_reads_and_read_only_users_are_refused()
    {
        SkipIfNoSnmpd();

        // snmpEnableAuthenTraps.0: a writable INTEGER (1 enabled, 2 disabled) that net-snmp keeps in memory.
        var enable = Oid.Parse("1.3.6.1.2.1.11.30.0");
        var writer = Target(SnmpVersion.V3, user: SnmpdFixture.Writer);
        var set = await _client.SetAsync(writer, [new VarBind(enable, SnmpValue.Integer(1))], Ct);
        Assert.Equal(1, Assert.Single(set).Value.AsInt32());
        Assert.Equal(1, (await _client.GetAsync(Target(), [enable], Ct))[0].Value.AsInt32());
        var (exit, stdout, stderr) = await NetSnmpTool.RunAsync("snmpget", ["-v2c", "-c", "public", "-On", "-Oe", $"127.0.0.1:{snmpd.Port}", enable.ToNumericString()], Ct);
        Assert.True(exit == 0, stderr);
        Assert.Equal($"{enable.ToNumericString()} = INTEGER: 1", stdout.Trim());

        await _client.SetAsync(Target(community: "private"), [new VarBind(enable, SnmpValue.Integer(2))], Ct);
        Assert.Equal(2, (await _client.GetAsync(writer, [enable], Ct))[0].Value.AsInt32());

        // A read-only v3 user and the read-only community cannot SET; the value stays.
        var readOnly = await Assert.ThrowsAsync<SnmpErrorStatusException>(() =>
            _client.SetAsync(Target(SnmpVersion.V3, user: SnmpdFixture.User(SnmpAuthProtocol.Sha256, SnmpPrivProtocol.Aes128)), [new VarBind(enable, SnmpValue.Integer(1))], Ct));
        Assert.True(readOnly.Status is SnmpErrorStatus.NoAccess or SnmpErrorStatus.AuthorizationError, readOnly.Message);
        await Assert.ThrowsAnyAsync<SnmpException>(() => _client.SetAsync(Target(), [new VarBind(enable, SnmpValue.Integer(1))], Ct));

        // A value of the wrong type or outside the enumeration is the agent's error, named by status and index.
        var wrongType = await Assert.ThrowsAsync<SnmpErrorStatusException>(() => _client.SetAsync(writer, [new VarBind(enable, SnmpValue.OctetString("on"))], Ct));
        Assert.Equal((SnmpErrorStatus.WrongType, 1), (wrongType.Status, wrongType.Index));
        var wrongValue = await Assert.ThrowsAsync<SnmpErrorStatusException>(() => _client.SetAsync(writer, [new VarBind(enable, SnmpValue.Integer(7))], Ct));
        Assert.Equal(SnmpErrorStatus.WrongValue, wrongValue.Status);
        Assert.Equal(2, (await _client.GetAsync(writer, [enable], Ct))[0].Value.AsInt32());
    }

    [Fact]
    public async Task Ipv6_loopback_works()
    {
        SkipIfNoSnmpd();
        Assert.SkipUnless(snmpd.HasIPv6, "no IPv6 loopback on this machine");
        var vbs = await _client.GetAsync(Target() with { EndPoint = snmpd.EndPointV6 }, [SysDescr], Ct);
        Assert.Equal(SnmpType.OctetString, vbs[0].Value.Type);
        var v3 = await _client.GetAsync(Target(SnmpVersion.V3, user: SnmpdFixture.User(SnmpAuthProtocol.Sha512, SnmpPrivProtocol.Aes256)) with { EndPoint = snmpd.EndPointV6 }, [SysDescr], Ct);
        Assert.Equal(SnmpType.OctetString, v3[0].Value.Type);
    }

    [Fact]
    public async Task Many_requests_in_flight_on_one_socket_all_match_their_answers()
    {
        SkipIfNoSnmpd();
        var oids = Enumerable.Range(1, 7).Select(i => Oid.Parse($"1.3.6.1.2.1.1.{i}.0")).ToArray();
        var tasks = Enumerable.Range(0, 300).Select(i => _client.GetAsync(Target() with { Timeout = TimeSpan.FromSeconds(5) }, [oids[i % oids.Length]], Ct)).ToArray();
        var results = await Task.WhenAll(tasks);
        for (var i = 0; i < results.Length; i++)
        {
            Assert.Equal(oids[i % oids.Length], results[i][0].Oid);
        }
        Assert.Equal(0, _client.InFlight);
    }

    [Fact]
    public async Task Dead_agent_times_out_and_does_not_delay_a_live_one()
    {
        SkipIfNoSnmpd();
        var dead = new SnmpTarget { EndPoint = new IPEndPoint(IPAddress.Loopback, SnmpdFixture.FreeUdpPort(false)), Timeout = TimeSpan.FromSeconds(3), Retries = 1 };
        var deadTask = _client.GetAsync(dead, [SysDescr], Ct);
        var sw = Stopwatch.StartNew();
        await _client.GetAsync(Target(), [SysDescr], Ct);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(2.5), $"live agent took {sw.Elapsed} while a dead one was pending");
        await Assert.ThrowsAsync<SnmpTimeoutException>(() => deadTask);
    }

    [Fact]
    public async Task Cancellation_ends_a_request_at_once()
    {
        SkipIfNoSnmpd();
        var dead = new SnmpTarget { EndPoint = new IPEndPoint(IPAddress.Loopback, SnmpdFixture.FreeUdpPort(false)), Timeout = TimeSpan.FromSeconds(30), Retries = 5 };
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(200);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _client.GetAsync(dead, [SysDescr], cts.Token));
        Assert.Equal(0, _client.InFlight);
    }

    [Fact]
    public async Task Regression_one_bad_oid_on_snmpv1_failed_the_whole_get()
    {
        SkipIfNoSnmpd();
        Oid[] oids = [SysDescr, Oid.Parse("1.3.6.1.2.1.1.99.0"), Oid.Parse("1.3.6.1.2.1.1.6.0"), Oid.Parse("1.3.6.1.2.1.1.98.0")];
        var errors = new SnmpErrorStatus[oids.Length];
        var vbs = await _client.GetEachAsync(Target(SnmpVersion.V1), oids, errors, Ct);
        Assert.Equal(oids, vbs.Select(v => v.Oid));
        Assert.Equal($"STRING: \"{SnmpdFixture.SysDescr}\"", SnmpFormatter.Format(vbs[0].Value));
        Assert.Equal("STRING: \"rack A1\"", SnmpFormatter.Format(vbs[2].Value));
        Assert.Equal([SnmpErrorStatus.NoError, SnmpErrorStatus.NoSuchName, SnmpErrorStatus.NoError, SnmpErrorStatus.NoSuchName], errors);
        Assert.Equal(SnmpType.Null, vbs[1].Value.Type);

        // v2c says it in the varbind instead: the same call, no error-status, noSuchObject values.
        vbs = await _client.GetEachAsync(Target(), oids, errors, Ct);
        Assert.All(errors, e => Assert.Equal(SnmpErrorStatus.NoError, e));
        Assert.Equal(SnmpType.NoSuchObject, vbs[3].Value.Type);
        Assert.Equal(0, _client.InFlight);
    }

    [Fact]
    public async Task Get_each_still_fails_when_the_v1_agent_does_not_answer()
    {
        SkipIfNoSnmpd();
        var target = Target(SnmpVersion.V1, community: "wrong") with { Timeout = TimeSpan.FromMilliseconds(300), Retries = 0 };
        await Assert.ThrowsAsync<SnmpTimeoutException>(() => _client.GetEachAsync(target, [SysDescr, SysUpTime], new SnmpErrorStatus[2], Ct));
    }

    public ValueTask DisposeAsync() => _client.DisposeAsync();
}
