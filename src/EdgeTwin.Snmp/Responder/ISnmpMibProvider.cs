namespace EdgeTwin.Snmp.Responder;

/// <summary>What a responder serves. Implementations must be thread-safe; calls are short and synchronous.</summary>
public interface ISnmpMibProvider
{
    /// <summary>The value at exactly <paramref name="oid"/>, or noSuchObject / noSuchInstance.</summary>
    SnmpValue Get(Oid oid);

    /// <summary>The first OID strictly after <paramref name="oid"/> and its value; false past the end.</summary>
    bool TryGetNext(Oid oid, out VarBind next);
}
