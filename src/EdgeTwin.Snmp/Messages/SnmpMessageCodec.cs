using System.Net;
using EdgeTwin.Snmp.Ber;

namespace EdgeTwin.Snmp.Messages;

/// <summary>Pure encode/decode of whole SNMP messages (no crypto; see Security/Usm for that).</summary>
public static class SnmpMessageCodec
{
    /// <summary>Largest varbind list accepted when decoding (net-snmp's agent allows far fewer per PDU).</summary>
    public const int MaxVarBinds = 2048;

    public static byte[] Encode(SnmpMessage message)
    {
        using var w = new BerWriter();
        Encode(message, w);
        return w.ToArray();
    }

    public static void Encode(SnmpMessage message, BerWriter w)
    {
        w.BeginConstructed(0x30);
        w.WriteInteger((int)message.Version);
        if (message.Version != SnmpVersion.V3)
        {
            w.WriteOctetString(message.Community);
            EncodePdu(message.Pdu ?? throw new ArgumentException("message has no PDU", nameof(message)), w);
        }
        else
        {
            w.BeginConstructed(0x30);
            w.WriteInteger(message.MessageId);
            w.WriteInteger(message.MaxSize);
            w.WriteOctetString([(byte)message.Flags]);
            w.WriteInteger(message.SecurityModel);
            w.EndConstructed();
            w.BeginConstructed(0x04);
            EncodeUsm(message.Usm, w);
            w.EndConstructed();
            if (message.EncryptedPdu is { } enc)
            {
                w.WriteOctetString(enc);
            }
            else
            {
                EncodeScopedPdu(message, w);
            }
        }
        w.EndConstructed();
    }

    private static void EncodeUsm(UsmParameters usm, BerWriter w)
    {
        w.BeginConstructed(0x30);
        w.WriteOctetString(usm.EngineId);
        w.WriteInteger(usm.EngineBoots);
        w.WriteInteger(usm.EngineTime);
        w.WriteOctetString(usm.UserName);
        w.WriteOctetString(usm.AuthenticationParameters);
        w.WriteOctetString(usm.PrivacyParameters);
        w.EndConstructed();
    }

    public static void EncodeScopedPdu(SnmpMessage message, BerWriter w)
    {
        w.BeginConstructed(0x30);
        w.WriteOctetString(message.ContextEngineId);
        w.WriteOctetString(message.ContextName);
        EncodePdu(message.Pdu ?? throw new ArgumentException("message has no PDU", nameof(message)), w);
        w.EndConstructed();
    }

    public static void EncodePdu(SnmpPdu pdu, BerWriter w)
    {
        w.BeginConstructed((byte)pdu.Type);
        if (pdu.Type == PduType.TrapV1)
        {
            var t = pdu.TrapV1 ?? throw new ArgumentException("a v1 Trap PDU needs TrapV1 fields", nameof(pdu));
            w.WriteOid(t.Enterprise.Arcs);
            var ip = t.AgentAddress.MapToIPv4().GetAddressBytes();
            w.WriteTlv(0x40, ip);
            w.WriteInteger(t.GenericTrap);
            w.WriteInteger(t.SpecificTrap);
            w.WriteUnsigned(t.TimeStamp, 0x43);
        }
        else
        {
            w.WriteInteger(pdu.RequestId);
            w.WriteInteger((int)pdu.ErrorStatus);
            w.WriteInteger(pdu.ErrorIndex);
        }
        w.BeginConstructed(0x30);
        foreach (var vb in pdu.VarBinds)
        {
            w.BeginConstructed(0x30);
            w.WriteOid(vb.Oid.Arcs);
            w.WriteValue(vb.Value);
            w.EndConstructed();
        }
        w.EndConstructed();
        w.EndConstructed();
    }

    /// <summary>Decodes a message; a v3 message with privacy comes back with <see cref="SnmpMessage.EncryptedPdu"/> set.</summary>
    public static SnmpMessage Decode(ReadOnlySpan<byte> packet) => Decode(packet, null);

    /// <summary>
    /// Decodes a message as <see cref="Decode(ReadOnlySpan{byte})"/>, with the same result and checks. When
    /// <paramref name="namesOf"/> gives the varbinds of the request with the PDU's request-id, a varbind named by the
    /// OID at the same position there gets that <see cref="Oid"/> instead of a newly decoded copy (a GET's answer repeats
    /// the OIDs asked; decoding them again was most of a poll's garbage). Not used for an encrypted scoped PDU.
    /// </summary>
    public static SnmpMessage Decode(ReadOnlySpan<byte> packet, Func<int, IReadOnlyList<VarBind>?>? namesOf)
    {
        var r = new BerReader(packet);
        var msg = r.ReadConstructed(0x30, "message SEQUENCE");
        r.ExpectEnd("the message");
        var versionAt = msg.Position;
        var version = msg.ReadInt32("msgVersion");
        switch (version)
        {
            case 0:
            case 1:
                {
                    var community = msg.ReadOctetString("community").ToArray();
                    var pdu = DecodePdu(ref msg, namesOf);
                    msg.ExpectEnd("the PDU");
                    return new SnmpMessage { Version = (SnmpVersion)version, Community = community, Pdu = pdu };
                }
            case 3:
                return DecodeV3(ref msg, namesOf);
            default:
                throw msg.Error($"unsupported SNMP version {version}", versionAt);
        }
    }

    private static SnmpMessage DecodeV3(ref BerReader msg, Func<int, IReadOnlyList<VarBind>?>? namesOf)
    {
        var header = msg.ReadConstructed(0x30, "msgGlobalData");
        var msgId = header.ReadInt32("msgID");
        var maxSize = header.ReadInt32("msgMaxSize");
        var flagsAt = header.Position;
        var flags = header.ReadOctetString("msgFlags");
        if (flags.Length != 1)
        {
            throw header.Error($"msgFlags is {flags.Length} octets (expected 1)", flagsAt);
        }
        var secModelAt = header.Position;
        var secModel = header.ReadInt32("msgSecurityModel");
        header.ExpectEnd("msgGlobalData");
        if (msgId < 0 || maxSize < 484)
        {
            throw msg.Error($"msgID {msgId} / msgMaxSize {maxSize} out of range", flagsAt);
        }
        if (secModel != 3)
        {
            throw msg.Error($"security model {secModel} is not USM (3)", secModelAt);
        }
        var f = (V3Flags)flags[0];
        if ((f & V3Flags.Priv) != 0 && (f & V3Flags.Auth) == 0)
        {
            throw msg.Error("msgFlags has privacy without authentication", flagsAt);
        }
        var sec = msg.ReadConstructed(0x04, "msgSecurityParameters");
        var usmSeq = sec.ReadConstructed(0x30, "UsmSecurityParameters");
        sec.ExpectEnd("msgSecurityParameters");
        var engineId = usmSeq.ReadOctetString("msgAuthoritativeEngineID");
        if (engineId.Length > 32)
        {
            throw usmSeq.Error($"engine id of {engineId.Length} octets (at most 32)");
        }
        var boots = usmSeq.ReadInt32("msgAuthoritativeEngineBoots");
        var time = usmSeq.ReadInt32("msgAuthoritativeEngineTime");
        var user = usmSeq.ReadOctetString("msgUserName");
        if (user.Length > 32)
        {
            throw usmSeq.Error($"user name of {user.Length} octets (at most 32)");
        }
        var auth = usmSeq.ReadOctetString("msgAuthenticationParameters");
        var priv = usmSeq.ReadOctetString("msgPrivacyParameters");
        usmSeq.ExpectEnd("UsmSecurityParameters");
        var message = new SnmpMessage
        {
            Version = SnmpVersion.V3,
            MessageId = msgId,
            MaxSize = maxSize,
            Flags = f,
            SecurityModel = secModel,
            Usm = new UsmParameters(engineId.ToArray(), boots, time, user.ToArray(), auth.ToArray(), priv.ToArray()),
        };
        if ((f & V3Flags.Priv) != 0)
        {
            message.EncryptedPdu = msg.ReadOctetString("encryptedPDU").ToArray();
        }
        else
        {
            DecodeScopedPdu(ref msg, message, namesOf);
        }
        msg.ExpectEnd("the scoped PDU");
        return message;
    }

    /// <summary>Decodes a (decrypted) scoped PDU into <paramref name="message"/>. Trailing bytes are allowed (cipher padding).</summary>
    public static void DecodeScopedPdu(ReadOnlySpan<byte> scoped, SnmpMessage message)
    {
        var r = new BerReader(scoped);
        DecodeScopedPdu(ref r, message, null);
    }

    private static void DecodeScopedPdu(ref BerReader r, SnmpMessage message, Func<int, IReadOnlyList<VarBind>?>? namesOf)
    {
        var s = r.ReadConstructed(0x30, "scopedPDU");
        message.ContextEngineId = s.ReadOctetString("contextEngineID").ToArray();
        message.ContextName = s.ReadOctetString("contextName").ToArray();
        message.Pdu = DecodePdu(ref s, namesOf);
        s.ExpectEnd("the scoped PDU");
    }

    private static SnmpPdu DecodePdu(ref BerReader r, Func<int, IReadOnlyList<VarBind>?>? namesOf)
    {
        var at = r.Position;
        var p = r.ReadAnyConstructed(out var tag);
        if (tag is < 0xA0 or > 0xA8)
        {
            throw r.Error($"unknown PDU tag 0x{tag:X2}", at);
        }
        var type = (PduType)tag;
        SnmpPdu pdu;
        if (type == PduType.TrapV1)
        {
            var enterprise = p.ReadOid("enterprise");
            var ipAt = p.Position;
            var ip = p.ReadExpected(0x40, "agent-addr");
            if (ip.Length != 4)
            {
                throw p.Error($"agent-addr of {ip.Length} octets", ipAt);
            }
            var generic = p.ReadInt32("generic-trap");
            var specific = p.ReadInt32("specific-trap");
            var tsAt = p.Position;
            var ts = p.DecodeUnsigned32(p.ReadExpected(0x43, "time-stamp"), tsAt, "time-stamp");
            var vbs = DecodeVarBinds(ref p, null);
            pdu = new SnmpPdu(type, 0, vbs) { TrapV1 = new TrapV1Fields(enterprise, new IPAddress(ip), generic, specific, ts) };
        }
        else
        {
            var requestId = p.ReadInt32("request-id");
            var status = p.ReadInt32("error-status");
            var index = p.ReadInt32("error-index");
            var vbs = DecodeVarBinds(ref p, namesOf?.Invoke(requestId));
            pdu = new SnmpPdu(type, requestId, vbs) { ErrorStatus = (SnmpErrorStatus)status, ErrorIndex = index };
        }
        p.ExpectEnd("the varbind list");
        return pdu;
    }

    private static VarBind[] DecodeVarBinds(ref BerReader p, IReadOnlyList<VarBind>? names)
    {
        var list = p.ReadConstructed(0x30, "variable-bindings");
        // Count first (cheap header walk) so the array is sized by what is present, never by a claimed length.
        var counter = list;
        var count = 0;
        while (counter.HasMore)
        {
            counter.ReadHeader(out _, out _);
            if (++count > MaxVarBinds)
            {
                throw counter.Error($"more than {MaxVarBinds} varbinds");
            }
        }
        var result = new VarBind[count];
        for (var i = 0; i < count; i++)
        {
            var vb = list.ReadConstructed(0x30, "VarBind");
            var oid = names is not null && i < names.Count ? vb.ReadOid("VarBind name", names[i].Oid) : vb.ReadOid("VarBind name");
            var value = vb.ReadValue();
            vb.ExpectEnd("VarBind");
            result[i] = new VarBind(oid, value);
        }
        return result;
    }
}
