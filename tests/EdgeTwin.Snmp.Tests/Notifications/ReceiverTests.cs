using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Threading.Channels;
using EdgeTwin.Snmp.Messages;
using EdgeTwin.Snmp.Notifications;
using EdgeTwin.Snmp.Security;
using EdgeTwin.Snmp.Tests.Support;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Snmp.Tests.Notifications;

public sealed class ReceiverTests : IAsyncDisposable
{
    private static readonly SnmpV3User Trapper = new("trapper", SnmpAuthProtocol.Sha256, "authpass123", SnmpPrivProtocol.Aes128, "privpass123");
    private static readonly SnmpV3User Informer = new("informer", SnmpAuthProtocol.Md5, "authpass123", SnmpPrivProtocol.Des, "privpass123");
    // A Cisco switch's trap user (AES-256 in the Reeder key extension), and the same set up with our Blumenthal AES-256.
    private static readonly SnmpV3User Cisco = new("cisco", SnmpAuthProtocol.Sha1, "authpass123", SnmpPrivProtocol.Aes256Reeder, "privpass123");
    private static readonly SnmpV3User Catalyst = new("catalyst", SnmpAuthProtocol.Sha1, "authpass123", SnmpPrivProtocol.Aes256, "privpass123");
    private readonly SnmpNotificationReceiver _receiver;
    private readonly Channel<SnmpNotification> _received = Channel.CreateUnbounded<SnmpNotification>();
    private readonly ConcurrentQueue<(LogLevel Level, string Message, Exception? Exception)> _logs = new();

    public ReceiverTests()
    {
        _receiver = new SnmpNotificationReceiver(new SnmpNotificationReceiverOptions
        {
            EndPoint = new IPEndPoint(IPAddress.Loopback, 0),
            Users = [Trapper, Informer, Cisco, Catalyst],
        }, new ListLogger(_logs));
        _receiver.NotificationReceived += (_, n) => _received.Writer.TryWrite(n);
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private string Agent => $"127.0.0.1:{_receiver.LocalEndPoint.Port}";

    private static void SkipWithoutTools() =>
        Assert.SkipWhen(SnmpdFixture.FindTool("snmptrap") is null, "net-snmp tools (Debian package 'snmp') are not installed");

    private async Task<SnmpNotification> NextAsync()
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(TimeSpan.FromSeconds(30));
        return await _received.Reader.ReadAsync(cts.Token);
    }

    private static readonly string[] UpsOnBattery = ["1234", "1.3.6.1.4.1.318.0.5", "1.3.6.1.4.1.318.1.1.1.2.2.1.0", "i", "87"];

    [Fact]
    public async Task V1_trap_from_snmptrap_is_raised_with_rfc3584_trap_oid()
    {
        SkipWithoutTools();
        var (exit, _, stderr) = await NetSnmpTool.RunAsync("snmptrap",
            ["-v1", "-c", "public", Agent, "1.3.6.1.4.1.318", "10.0.0.5", "6", "5", "4321", "1.3.6.1.4.1.318.2.3.1.0", "s", "on battery"], Ct);
        Assert.True(exit == 0, stderr);
        var n = await NextAsync();
        Assert.Equal(SnmpVersion.V1, n.Version);
        Assert.Equal(".1.3.6.1.4.1.318.0.5", n.TrapOid.ToNumericString());
        Assert.Equal(IPAddress.Parse("10.0.0.5"), n.V1!.AgentAddress);
        Assert.Equal(4321u, n.Uptime);
        Assert.Equal(".1.3.6.1.4.1.318.2.3.1.0 = STRING: \"on battery\"", n.Payload.Single().ToString());
    }

    [Fact]
    public async Task V2c_trap_and_inform_are_raised_and_the_inform_is_acknowledged()
    {
        SkipWithoutTools();
        var (exit, _, stderr) = await NetSnmpTool.RunAsync("snmptrap", ["-v2c", "-c", "public", Agent, .. UpsOnBattery], Ct);
        Assert.True(exit == 0, stderr);
        var trap = await NextAsync();
        Assert.Equal(PduType.TrapV2, trap.PduType);
        Assert.Equal(".1.3.6.1.4.1.318.0.5", trap.TrapOid.ToNumericString());
        Assert.Equal(1234u, trap.Uptime);
        Assert.Equal(87, trap.Payload.Single().Value.AsInt32());

        // snmpinform exits 0 only when it got our Response.
        (exit, _, stderr) = await NetSnmpTool.RunAsync("snmpinform", ["-v2c", "-c", "public", "-t", "3", "-r", "1", Agent, .. UpsOnBattery], Ct);
        Assert.True(exit == 0, stderr);
        var inform = await NextAsync();
        Assert.Equal(PduType.InformRequest, inform.PduType);
    }

    [Fact]
    public async Task Wrong_community_is_dropped()
    {
        SkipWithoutTools();
        await NetSnmpTool.RunAsync("snmptrap", ["-v2c", "-c", "nope", Agent, .. UpsOnBattery], Ct);
        var (exit, _, _) = await NetSnmpTool.RunAsync("snmptrap", ["-v2c", "-c", "public", Agent, "1", "1.3.6.1.4.1.318.0.7"], Ct);
        Assert.Equal(0, exit);
        Assert.Equal(".1.3.6.1.4.1.318.0.7", (await NextAsync()).TrapOid.ToNumericString()); // the bad one never arrived first
    }

    [Fact]
    public async Task V3_authPriv_trap_from_snmptrap()
    {
        SkipWithoutTools();
        var (exit, _, stderr) = await NetSnmpTool.RunAsync("snmptrap",
            ["-v3", "-e", "0x80001f8880a1b2c3d4e5f60708", "-l", "authPriv", "-u", "trapper", "-a", "SHA-256", "-A", "authpass123", "-x", "AES", "-X", "privpass123", Agent, .. UpsOnBattery], Ct);
        Assert.True(exit == 0, stderr);
        var n = await NextAsync();
        Assert.Equal(SnmpVersion.V3, n.Version);
        Assert.Equal("trapper", n.User);
        Assert.Equal(87, n.Payload.Single().Value.AsInt32());
    }

    [Fact]
    public async Task V3_trap_in_aes256_reeder_from_snmptrap_aes_256_c()
    {
        SkipWithoutTools();
        var (exit, _, stderr) = await NetSnmpTool.RunAsync("snmptrap",
            ["-v3", "-e", "0x80001f8880a1b2c3d4e5f6070a", "-l", "authPriv", "-u", "cisco", "-a", "SHA", "-A", "authpass123", "-x", "AES-256-C", "-X", "privpass123", Agent, .. UpsOnBattery], Ct);
        Assert.True(exit == 0, stderr);
        var n = await NextAsync();
        Assert.Equal("cisco", n.User);
        Assert.Equal(87, n.Payload.Single().Value.AsInt32());
    }

    [Fact]
    public async Task Regression_a_cisco_aes256_trap_was_rejected_without_naming_the_reeder_variant()
    {
        SkipWithoutTools();
        // The switch sends AES-256-C (Reeder); the receiver's user says AES-256 (Blumenthal): the digest verifies, the
        // scoped PDU does not decrypt. Before, the log said only "DecryptionError".
        await NetSnmpTool.RunAsync("snmptrap",
            ["-v3", "-e", "0x80001f8880a1b2c3d4e5f6070b", "-l", "authPriv", "-u", "catalyst", "-a", "SHA", "-A", "authpass123", "-x", "AES-256-C", "-X", "privpass123", Agent, .. UpsOnBattery], Ct);
        await NetSnmpTool.RunAsync("snmptrap", ["-v2c", "-c", "public", Agent, "1", "1.3.6.1.4.1.318.0.12"], Ct);
        Assert.Equal(".1.3.6.1.4.1.318.0.12", (await NextAsync()).TrapOid.ToNumericString());
        Assert.Contains(_logs, l => l.Message.Contains("rejected: DecryptionError", StringComparison.Ordinal)
            && l.Message.Contains("a Cisco device (IOS, IOS-XE, NX-OS) with AES-256 needs priv protocol AES-256-C (Reeder key extension)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task V3_trap_with_wrong_password_is_not_raised()
    {
        SkipWithoutTools();
        await NetSnmpTool.RunAsync("snmptrap",
            ["-v3", "-e", "0x80001f8880a1b2c3d4e5f60709", "-l", "authPriv", "-u", "trapper", "-a", "SHA-256", "-A", "wrongpass1", "-x", "AES", "-X", "privpass123", Agent, .. UpsOnBattery], Ct);
        await NetSnmpTool.RunAsync("snmptrap", ["-v2c", "-c", "public", Agent, "1", "1.3.6.1.4.1.318.0.9"], Ct);
        Assert.Equal(".1.3.6.1.4.1.318.0.9", (await NextAsync()).TrapOid.ToNumericString());
    }

    [Fact]
    public async Task Regression_a_v3_trap_replayed_later_was_raised_as_new()
    {
        // A captured authenticated trap could be sent again at any time and was raised again: traps had no time window.
        // Now the receiver keeps each sender's engine clock (RFC 3414 3.2.7 b): a trap behind it by more than 150 s, or
        // from an older boot, is rejected; a sender that rebooted (boots + 1) is heard again.
        SkipWithoutTools();
        Task<(int Exit, string Out, string Err)> Trap(string bootsAndTime, int value) => NetSnmpTool.RunAsync("snmptrap",
            ["-v3", "-e", "0x80001f8880a1b2c3d4e5f6070a", "-Z", bootsAndTime, "-l", "authPriv", "-u", "trapper", "-a", "SHA-256", "-A", "authpass123", "-x", "AES", "-X", "privpass123",
             Agent, "1234", "1.3.6.1.4.1.318.0.5", "1.3.6.1.4.1.318.1.1.1.2.2.1.0", "i", value.ToString(System.Globalization.CultureInfo.InvariantCulture)], Ct);
        Task Marker(string oid) => NetSnmpTool.RunAsync("snmptrap", ["-v2c", "-c", "public", Agent, "1", oid], Ct);

        Assert.Equal(0, (await Trap("5,2000", 1)).Exit);
        await Trap("5,1000", 2);  // 1000 s behind the sender's clock: a replay
        await Trap("4,9000", 3);  // an older boot
        await Marker("1.3.6.1.4.1.318.0.9");
        await Trap("6,10", 4);    // rebooted: a new boot counts from 0
        await Trap("5,2000", 5);  // the first trap again, after the reboot
        await Marker("1.3.6.1.4.1.318.0.10");

        var seen = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            var n = await NextAsync();
            seen.Add(n.Version == SnmpVersion.V3 ? "v3 " + n.Payload.Single().Value.AsInt32() : n.TrapOid.ToNumericString());
        }

        Assert.Equal(["v3 1", ".1.3.6.1.4.1.318.0.9", "v3 4", ".1.3.6.1.4.1.318.0.10"], seen);
        Assert.Equal(3, _receiver.Authority.StatCount(Usm.UsmStatsNotInTimeWindows));
    }

    [Fact]
    public async Task Regression_a_v3_trap_sender_whose_clock_went_back_without_its_boots_rising_was_rejected_until_restart()
    {
        // A UPS management card that reloaded its firmware without keeping snmpEngineBoots sends boots 5 again with its
        // time from ~0: behind our notion of its clock, each of its traps was rejected until the agent restarted. Now three
        // consecutive authenticated traps on one new clock re-learn it (a warning names sender, engine, old and new clock);
        // traps with a wrong password never count, and a replayed trap of the old clock stays rejected.
        SkipWithoutTools();
        var since = Stopwatch.StartNew();
        string Reloaded() => "5," + (100 + (int)since.Elapsed.TotalSeconds).ToString(CultureInfo.InvariantCulture); // runs on with ours
        Task<(int Exit, string Out, string Err)> Trap(string bootsAndTime, int value, string authPass = "authpass123") => NetSnmpTool.RunAsync("snmptrap",
            ["-v3", "-e", "0x80001f8880a1b2c3d4e5f6070b", "-Z", bootsAndTime, "-l", "authPriv", "-u", "trapper", "-a", "SHA-256", "-A", authPass, "-x", "AES", "-X", "privpass123",
             Agent, "1234", "1.3.6.1.4.1.318.0.5", "1.3.6.1.4.1.318.1.1.1.2.2.1.0", "i", value.ToString(CultureInfo.InvariantCulture)], Ct);

        Assert.Equal(0, (await Trap("5,50000", 1)).Exit);
        await Trap(Reloaded(), 90, authPass: "wrongpass1"); // unauthenticated: no say in the sender's clock
        await Trap(Reloaded(), 91, authPass: "wrongpass1");
        await Trap(Reloaded(), 2);
        await Trap(Reloaded(), 3);
        await Trap(Reloaded(), 4);        // the third consecutive one: re-learnt, raised
        await Trap("5,50000", 5);         // the first trap again: a replay of the old clock
        await Trap(Reloaded(), 6);
        await NetSnmpTool.RunAsync("snmptrap", ["-v2c", "-c", "public", Agent, "1", "1.3.6.1.4.1.318.0.11"], Ct);

        var seen = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            var n = await NextAsync();
            seen.Add(n.Version == SnmpVersion.V3 ? "v3 " + n.Payload.Single().Value.AsInt32() : n.TrapOid.ToNumericString());
        }

        Assert.Equal(["v3 1", "v3 4", "v3 6", ".1.3.6.1.4.1.318.0.11"], seen);
        Assert.Equal(3, _receiver.Authority.StatCount(Usm.UsmStatsNotInTimeWindows));
        var warning = Assert.Single(_logs, l => l.Level == LogLevel.Warning);
        Assert.Contains("127.0.0.1:", warning.Message, StringComparison.Ordinal);
        Assert.Contains("engine 80001F8880A1B2C3D4E5F6070B", warning.Message, StringComparison.Ordinal);
        Assert.Matches(@"snmpEngineBoots/Time 5/500\d\d -> 5/1\d\d\b", warning.Message);
    }

    [Fact]
    public async Task V3_authPriv_inform_discovers_our_engine_and_is_acknowledged()
    {
        SkipWithoutTools();
        var (exit, _, stderr) = await NetSnmpTool.RunAsync("snmpinform",
            ["-v3", "-l", "authPriv", "-u", "informer", "-a", "MD5", "-A", "authpass123", "-x", "DES", "-X", "privpass123", "-t", "3", "-r", "1", Agent, .. UpsOnBattery], Ct);
        Assert.True(exit == 0, stderr);
        var n = await NextAsync();
        Assert.Equal(PduType.InformRequest, n.PduType);
        Assert.Equal("informer", n.User);
    }

    public ValueTask DisposeAsync() => _receiver.DisposeAsync();
}
