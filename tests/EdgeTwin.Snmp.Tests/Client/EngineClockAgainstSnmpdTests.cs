using EdgeTwin.Snmp.Client;
using EdgeTwin.Snmp.Messages;
using EdgeTwin.Snmp.Security;
using EdgeTwin.Snmp.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Snmp.Tests.Client;

/// <summary>
/// SNMPv3 timeliness (RFC 3414 2.3, 3.2.7) against a real snmpd that reboots (same engine id, boots + 1, engineTime from
/// 0), is replaced (same address and users, another engine id) or has its boots at the latch value.
/// </summary>
public sealed class EngineClockAgainstSnmpdTests
{
    private static readonly Oid SysDescr = Oid.Parse("1.3.6.1.2.1.1.1.0");
    // snmpEngineBoots.0 and snmpEngineTime.0 as the agent itself reports them.
    private static readonly Oid EngineBoots = Oid.Parse("1.3.6.1.6.3.10.2.1.2.0");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static SnmpTarget Target(RebootableSnmpd snmpd) =>
        new() { EndPoint = snmpd.EndPoint, Version = SnmpVersion.V3, User = RebootableSnmpd.User, Timeout = TimeSpan.FromSeconds(2), Retries = 1 };

    private static async Task<RebootableSnmpd> StartOrSkipAsync()
    {
        var snmpd = await RebootableSnmpd.StartAsync();
        Assert.SkipWhen(snmpd is null, "snmpd (Debian package 'snmpd') is not installed");
        return snmpd!;
    }

    [Fact]
    public async Task Polling_goes_on_after_the_agent_reboots_and_after_it_is_replaced_by_one_with_another_engine_id()
    {
        await using var snmpd = await StartOrSkipAsync();
        await using var client = new SnmpClient();
        var target = Target(snmpd);
        var before = (await client.GetAsync(target, [EngineBoots], Ct))[0].Value.AsInt32();
        var engineId = (await snmpd.DiscoverAsync())!.Value.EngineId;

        await snmpd.RebootAsync();
        Assert.Equal(engineId, (await snmpd.DiscoverAsync())!.Value.EngineId);
        Assert.Equal(before + 1, (await client.GetAsync(target, [EngineBoots], Ct))[0].Value.AsInt32());

        await snmpd.ReplaceAsync();
        Assert.NotEqual(engineId, (await snmpd.DiscoverAsync())!.Value.EngineId);
        Assert.Equal(1, (await client.GetAsync(target, [EngineBoots], Ct))[0].Value.AsInt32());
        Assert.Equal(SnmpType.OctetString, (await client.GetAsync(target, [SysDescr], Ct))[0].Value.Type);
    }

    [Fact]
    public async Task An_agent_that_does_not_keep_its_boots_comes_back_with_the_same_boots_and_its_time_from_0()
    {
        // Many embedded agents (PDU and UPS cards) do: engineTime goes back within the same boots, a message RFC 3414
        // 3.2.7(b) calls untimely once it is over 150 s behind our notion. Our clock is moved on 300 s (as if the agent
        // had been up that long), so its answer after the restart is that far behind: the client discovers it again.
        await using var snmpd = await StartOrSkipAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var client = new SnmpClient(timeProvider: time);
        var target = Target(snmpd);
        var boots = (await client.GetAsync(target, [EngineBoots], Ct))[0].Value.AsInt32();
        time.Advance(TimeSpan.FromSeconds(300));
        await snmpd.RebootAsync(bootsBeforeStart: boots - 1);
        Assert.Equal(boots, (await snmpd.DiscoverAsync())!.Value.Boots);
        Assert.Equal(boots, (await client.GetAsync(target, [EngineBoots], Ct))[0].Value.AsInt32());
        Assert.Equal(SnmpType.OctetString, (await client.GetAsync(target, [SysDescr], Ct))[0].Value.Type);
    }

    [Fact]
    public async Task Regression_v3_agent_with_engine_boots_latched_at_2147483647_gave_a_bare_not_in_time_window()
    {
        await using var snmpd = await StartOrSkipAsync();
        await using var client = new SnmpClient();
        var target = Target(snmpd);
        await client.GetAsync(target, [SysDescr], Ct);

        // snmpd adds one at start: 2147483647, the value RFC 3414 2.2.2 latches (the agent needs a new engine id or keys).
        await snmpd.RebootAsync(bootsBeforeStart: 2147483646);
        Assert.Equal(2147483647, (await snmpd.DiscoverAsync())!.Value.Boots);
        var ex = await Assert.ThrowsAsync<SnmpUsmException>(() => client.GetAsync(target, [SysDescr], Ct));
        Assert.Equal(UsmError.NotInTimeWindow, ex.Error);
        Assert.Contains("2147483647", ex.Message, StringComparison.Ordinal);
        TestContext.Current.SendDiagnosticMessage(ex.Message);
        Assert.Contains("latched", ex.Message, StringComparison.Ordinal);
        Assert.Contains("user clockuser", ex.Message, StringComparison.Ordinal);

        // A fresh client (the gateway restarted) says the same from the first request.
        await using var fresh = new SnmpClient();
        ex = await Assert.ThrowsAsync<SnmpUsmException>(() => fresh.GetAsync(target, [SysDescr], Ct));
        Assert.Contains("latched", ex.Message, StringComparison.Ordinal);

        // net-snmp 5.9 does not latch: its next start sends boots 2147483648, outside the INTEGER (0..2147483647) of
        // RFC 3414. Such a datagram is malformed; the timeout says what it held.
        await snmpd.RebootAsync();
        var timeout = await Assert.ThrowsAsync<SnmpTimeoutException>(() => client.GetAsync(target with { Timeout = TimeSpan.FromMilliseconds(500) }, [SysDescr], Ct));
        Assert.Contains("msgAuthoritativeEngineBoots value 2147483648", timeout.Message, StringComparison.Ordinal);
    }
}
