namespace EdgeTwin.Snmp.Responder;

/// <summary>What a responder serves. Implementations must be thread-safe; calls are short and synchronous.</summary>
public interface ISnmpMibProvider
{
    /// <summary>The value at exactly <paramref name="oid"/>, or noSuchObject / noSuchInstance.</summary>
    SnmpValue Get(Oid oid);

    /// <summary>The first OID strictly after <paramref name="oid"/> and its value; false past the end.</summary>
    bool TryGetNext(Oid oid, out VarBind next);
}

/// <summary>
/// A provider that accepts SETs (a simulator's set points). The responder applies each varbind in order and stops at the
/// first error (no undo: the providers that implement this hold independent scalars).
/// </summary>
public interface ISnmpWritableMibProvider : ISnmpMibProvider
{
    /// <summary>Writes <paramref name="value"/> at <paramref name="oid"/>; <see cref="SnmpErrorStatus.NoError"/> when applied.</summary>
    SnmpErrorStatus Set(Oid oid, SnmpValue value);
}
