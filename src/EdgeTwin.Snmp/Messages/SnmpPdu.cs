using System.Net;

namespace EdgeTwin.Snmp.Messages;

/// <summary>PDU tags (RFC 3416, RFC 1157).</summary>
public enum PduType : byte
{
    GetRequest = 0xA0,
    GetNextRequest = 0xA1,
    Response = 0xA2,
    SetRequest = 0xA3,
    TrapV1 = 0xA4,
    GetBulkRequest = 0xA5,
    InformRequest = 0xA6,
    TrapV2 = 0xA7,
    Report = 0xA8,
}

public enum SnmpVersion
{
    V1 = 0,
    V2c = 1,
    V3 = 3,
}

/// <summary>Fields only a SNMPv1 Trap-PDU carries (RFC 1157 section 4.1.6).</summary>
public sealed record TrapV1Fields(Oid Enterprise, IPAddress AgentAddress, int GenericTrap, int SpecificTrap, uint TimeStamp);

/// <summary>One PDU. For GetBulk, <see cref="NonRepeaters"/>/<see cref="MaxRepetitions"/> share the error fields' slots.</summary>
public sealed class SnmpPdu
{
    public SnmpPdu(PduType type, int requestId, IReadOnlyList<VarBind> varBinds)
    {
        Type = type;
        RequestId = requestId;
        VarBinds = varBinds;
    }

    public PduType Type { get; }
    public int RequestId { get; set; }
    public SnmpErrorStatus ErrorStatus { get; init; }
    public int ErrorIndex { get; init; }
    public IReadOnlyList<VarBind> VarBinds { get; init; }

    /// <summary>Only for <see cref="PduType.TrapV1"/>.</summary>
    public TrapV1Fields? TrapV1 { get; init; }

    public int NonRepeaters
    {
        get => (int)ErrorStatus;
        init => ErrorStatus = (SnmpErrorStatus)value;
    }

    public int MaxRepetitions
    {
        get => ErrorIndex;
        init => ErrorIndex = value;
    }

    public static SnmpPdu Get(int requestId, IReadOnlyList<Oid> oids) => new(PduType.GetRequest, requestId, CopyAsNullVarBinds(oids));
    public static SnmpPdu GetNext(int requestId, IReadOnlyList<Oid> oids) => new(PduType.GetNextRequest, requestId, CopyAsNullVarBinds(oids));
    public static SnmpPdu GetBulk(int requestId, int nonRepeaters, int maxRepetitions, IReadOnlyList<Oid> oids) =>
        new(PduType.GetBulkRequest, requestId, CopyAsNullVarBinds(oids)) { NonRepeaters = nonRepeaters, MaxRepetitions = maxRepetitions };

    public static SnmpPdu Get(int requestId, IEnumerable<Oid> oids) => Get(requestId, AsList(oids));
    public static SnmpPdu GetNext(int requestId, IEnumerable<Oid> oids) => GetNext(requestId, AsList(oids));
    public static SnmpPdu GetBulk(int requestId, int nonRepeaters, int maxRepetitions, IEnumerable<Oid> oids) =>
        GetBulk(requestId, nonRepeaters, maxRepetitions, AsList(oids));

    private static IReadOnlyList<Oid> AsList(IEnumerable<Oid> oids) => oids as IReadOnlyList<Oid> ?? [.. oids];

    // Built on every request: a sized loop, not Select(...).ToArray() through an enumerator.
    private static VarBind[] CopyAsNullVarBinds(IReadOnlyList<Oid> oids)
    {
        if (oids.Count == 0)
        {
            return [];
        }
        var varBinds = new VarBind[oids.Count];
        for (var i = 0; i < varBinds.Length; i++)
        {
            varBinds[i] = VarBind.Null(oids[i]);
        }
        return varBinds;
    }

    /// <summary>
    /// A GET, GETNEXT or GETBULK whose varbinds read <paramref name="oids"/> as they are encoded instead of copying them
    /// into a new array per request: for the client, which holds its caller's OIDs unchanged while the request lives.
    /// </summary>
    internal static SnmpPdu Asking(PduType type, int requestId, IReadOnlyList<Oid> oids, int nonRepeaters = 0, int maxRepetitions = 0) =>
        new(type, requestId, new NullVarBindsView(oids)) { NonRepeaters = nonRepeaters, MaxRepetitions = maxRepetitions };

    public static SnmpPdu Set(int requestId, IReadOnlyList<VarBind> varBinds) => new(PduType.SetRequest, requestId, varBinds);
}

/// <summary>The varbinds of a request for <paramref name="oids"/>: each OID with a Null value, read on demand.</summary>
internal sealed class NullVarBindsView(IReadOnlyList<Oid> oids) : IReadOnlyList<VarBind>
{
    public VarBind this[int index] => VarBind.Null(oids[index]);

    public int Count => oids.Count;

    public IEnumerator<VarBind> GetEnumerator()
    {
        for (var i = 0; i < oids.Count; i++)
        {
            yield return VarBind.Null(oids[i]);
        }
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
