using System.Net;
using EdgeTwin.Snmp.Messages;
using EdgeTwin.Snmp.Notifications;
using EdgeTwin.Snmp.Security;

namespace EdgeTwin.Snmp.Tests.Codec;

/// <summary>
/// Mutation fuzzing of everything that reads SNMP bytes from the network: the message codec as the client decodes
/// answers, the trap/inform receiver (community, USM authoritative and not, decryption, replies), and USM
/// authentication and decryption of v3 captures with their real keys. Only <see cref="SnmpProtocolException"/> may
/// escape, no input may allocate more than a bound (a length field claiming 2 GB must not be believed) and none may
/// hang. CI runs a few seconds each; EDGETWIN_FUZZ_ITERATIONS=1000000 runs the long campaign.
/// </summary>
public sealed class FuzzTargetTests(ITestOutputHelper output)
{
    private static readonly byte[][] Seeds = [.. Captures.All.Select(Convert.FromHexString)];
    private static bool Documented(Exception ex) => ex is SnmpProtocolException;

    [Fact]
    public void Client_answer_decoding_only_throws_the_protocol_exception()
    {
        // The client decodes answers with the names of the request in flight (the known-OID fast path).
        var asked = SnmpMessageCodec.Decode(Captures.Hex(Captures.V2cGetRequest)).Pdu!.VarBinds;
        var report = MutationFuzzer.Run("snmp client answers", Seeds, MutationFuzzer.Iterations(60_000), 11, packet =>
        {
            var msg = SnmpMessageCodec.Decode(packet, _ => asked);
            if (msg.Pdu is { } pdu)
            {
                _ = SnmpMessageCodec.Encode(msg);
                foreach (var vb in pdu.VarBinds)
                {
                    _ = vb.ToString();
                }
                _ = Usm.ReportError(pdu);
            }
            return true;
        }, Documented, maxAllocatedBytes: 256 * 1024);
        output.WriteLine(report.ToString());
    }

    [Fact]
    public void Usm_authentication_and_decryption_of_mutated_v3_captures_never_throw_past_the_codec()
    {
        var users = new Dictionary<string, SnmpV3User>
        {
            ["md5des"] = new("md5des", SnmpAuthProtocol.Md5, "authpass123", SnmpPrivProtocol.Des, "privpass123"),
            ["md5aes256"] = new("md5aes256", SnmpAuthProtocol.Md5, "authpass123", SnmpPrivProtocol.Aes256, "privpass123"),
            ["sha256aes"] = new("sha256aes", SnmpAuthProtocol.Sha256, "authpass123", SnmpPrivProtocol.Aes128, "privpass123"),
        };
        byte[][] v3 = [.. new[] { Captures.V3Md5DesRequest, Captures.V3Md5DesResponse, Captures.V3Md5Aes256Response, Captures.V3Sha256AesRequest, Captures.V3Sha256AesResponse }
            .Select(Convert.FromHexString)];
        var report = MutationFuzzer.Run("snmp usm", v3, MutationFuzzer.Iterations(30_000), 12, packet =>
        {
            var msg = SnmpMessageCodec.Decode(packet);
            if (msg.Version != SnmpVersion.V3)
            {
                return false;
            }
            // Every user on every message: a mutated user name must not pick the path, the bytes must.
            var any = false;
            foreach (var user in users.Values)
            {
                var copy = SnmpMessageCodec.Decode(packet);
                _ = Usm.VerifyAuthentication(packet, user, copy.Usm.EngineId);
                any |= Usm.TryDecrypt(copy, user, out _);
            }
            return any;
        }, Documented, maxAllocatedBytes: 512 * 1024);
        output.WriteLine(report.ToString());
    }

    [Fact]
    public void Decrypted_scoped_pdu_decoding_only_throws_the_protocol_exception()
    {
        // What a right key turns the ciphertext into: cipher padding follows it, so trailing bytes are allowed here.
        var user = new SnmpV3User("md5des", SnmpAuthProtocol.Md5, "authpass123", SnmpPrivProtocol.Des, "privpass123");
        var plain = new List<byte[]>();
        foreach (var hex in new[] { Captures.V3Md5DesRequest, Captures.V3Md5DesResponse })
        {
            var msg = SnmpMessageCodec.Decode(Captures.Hex(hex));
            Assert.True(Usm.TryDecrypt(msg, user, out var error), error);
            using var w = new Ber.BerWriter();
            SnmpMessageCodec.EncodeScopedPdu(msg, w);
            plain.Add(w.WrittenSpan.ToArray());
        }
        var report = MutationFuzzer.Run("snmp scoped pdu", plain, MutationFuzzer.Iterations(60_000), 14, scoped =>
        {
            var msg = new SnmpMessage { Version = SnmpVersion.V3 };
            SnmpMessageCodec.DecodeScopedPdu(scoped, msg);
            _ = SnmpMessageCodec.Encode(msg);
            return true;
        }, Documented, maxAllocatedBytes: 256 * 1024);
        output.WriteLine(report.ToString());
    }

    [Fact]
    public async Task Notification_receiver_only_throws_the_protocol_exception()
    {
        var trapper = new SnmpV3User("sha256aes", SnmpAuthProtocol.Sha256, "authpass123", SnmpPrivProtocol.Aes128, "privpass123");
        var informer = new SnmpV3User("md5des", SnmpAuthProtocol.Md5, "authpass123", SnmpPrivProtocol.Des, "privpass123");
        await using var receiver = new SnmpNotificationReceiver(new SnmpNotificationReceiverOptions
        {
            EndPoint = new IPEndPoint(IPAddress.Loopback, 0),
            Users = [trapper, informer, new SnmpV3User("noauth")],
            // The captures' engine: mutated informs reach the authoritative path past the engine-id check.
            EngineId = Captures.Hex(Captures.EngineId),
        });
        var remote = new IPEndPoint(IPAddress.Loopback, 50_000);
        // Traps and informs of every version, made by our own encoder, plus the captures.
        byte[][] seeds = [.. Seeds, .. NotificationSeeds(trapper, informer)];
        var report = MutationFuzzer.Run("snmp notification receiver", seeds, MutationFuzzer.Iterations(40_000), 13, packet =>
        {
            var (notification, reply) = receiver.Handle(packet, remote);
            if (notification is not null)
            {
                _ = notification.Payload.Count();
                _ = notification.TrapOid.ToString();
            }
            return notification is not null || reply is not null;
        }, Documented, maxAllocatedBytes: 512 * 1024);
        output.WriteLine(report.ToString());
    }

    private static IEnumerable<byte[]> NotificationSeeds(SnmpV3User trapper, SnmpV3User informer)
    {
        VarBind[] vbs =
        [
            new(SnmpNotification.SysUpTime0, SnmpValue.Unsigned(SnmpType.TimeTicks, 4321)),
            new(SnmpNotification.SnmpTrapOid0, SnmpValue.FromOidArcs([1, 3, 6, 1, 4, 1, 318, 0, 5])),
            new(Oid.Parse("1.3.6.1.4.1.318.1.1.1.2.2.1.0"), SnmpValue.Integer(87)),
            new(Oid.Parse("1.3.6.1.4.1.318.2.3.1.0"), SnmpValue.OctetString("on battery"u8.ToArray())),
        ];
        yield return SnmpMessageCodec.Encode(new SnmpMessage { Version = SnmpVersion.V2c, Community = "public"u8.ToArray(), Pdu = new SnmpPdu(PduType.TrapV2, 7, vbs) });
        yield return SnmpMessageCodec.Encode(new SnmpMessage { Version = SnmpVersion.V2c, Community = "public"u8.ToArray(), Pdu = new SnmpPdu(PduType.InformRequest, 8, vbs) });
        yield return SnmpMessageCodec.Encode(new SnmpMessage
        {
            Version = SnmpVersion.V1,
            Community = "public"u8.ToArray(),
            Pdu = new SnmpPdu(PduType.TrapV1, 0, vbs[2..]) { TrapV1 = new TrapV1Fields(Oid.Parse("1.3.6.1.4.1.318"), IPAddress.Parse("10.0.0.5"), 6, 5, 4321) },
        });
        var engine = Captures.Hex(Captures.EngineId);
        var senderEngine = Convert.FromHexString("80001f8880aabbccdd00000001");
        yield return Usm.Encode(new SnmpMessage
        {
            Version = SnmpVersion.V3, MessageId = 99, MaxSize = 65507, Flags = V3Flags.Auth | V3Flags.Priv, SecurityModel = 3,
            Pdu = new SnmpPdu(PduType.TrapV2, 9, vbs),
        }, trapper, senderEngine, 1, 100);
        yield return Usm.Encode(new SnmpMessage
        {
            Version = SnmpVersion.V3, MessageId = 100, MaxSize = 65507, Flags = V3Flags.Auth | V3Flags.Priv | V3Flags.Reportable, SecurityModel = 3,
            Pdu = new SnmpPdu(PduType.InformRequest, 10, vbs),
        }, informer, engine, 1, 0);
    }
}
