namespace EdgeTwin.Snmp.Messages;

/// <summary>msgFlags bits (RFC 3412 section 6.4).</summary>
[Flags]
public enum V3Flags : byte
{
    None = 0,
    Auth = 1,
    Priv = 2,
    Reportable = 4,
}

/// <summary>UsmSecurityParameters (RFC 3414 section 2.4).</summary>
public sealed record UsmParameters(
    byte[] EngineId,
    int EngineBoots,
    int EngineTime,
    byte[] UserName,
    byte[] AuthenticationParameters,
    byte[] PrivacyParameters)
{
    public static UsmParameters Empty { get; } = new([], 0, 0, [], [], []);
}

/// <summary>
/// One SNMP message of any version. For v1/v2c: <see cref="Community"/> + <see cref="Pdu"/>. For v3: the header
/// fields, <see cref="Usm"/>, and either the scoped PDU (<see cref="ContextEngineId"/>, <see cref="ContextName"/>,
/// <see cref="Pdu"/>) or, while still encrypted, <see cref="EncryptedPdu"/>.
/// </summary>
public sealed class SnmpMessage
{
    public SnmpVersion Version { get; init; }
    public byte[] Community { get; init; } = [];
    public SnmpPdu? Pdu { get; set; }

    public int MessageId { get; init; }
    public int MaxSize { get; init; } = 65507;
    public V3Flags Flags { get; init; }
    public int SecurityModel { get; init; } = 3;
    public UsmParameters Usm { get; set; } = UsmParameters.Empty;
    public byte[] ContextEngineId { get; set; } = [];
    public byte[] ContextName { get; set; } = [];
    public byte[]? EncryptedPdu { get; set; }

    public static SnmpMessage ForCommunity(SnmpVersion version, string community, SnmpPdu pdu) =>
        new() { Version = version, Community = System.Text.Encoding.UTF8.GetBytes(community), Pdu = pdu };
}
