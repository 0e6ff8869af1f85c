using System.Collections.Concurrent;
using System.Text;

namespace EdgeTwin.Snmp.Security;

/// <summary>An SNMPv3 USM user with passwords. Master keys (Ku) are derived once and localized per engine id on demand.</summary>
public sealed class SnmpV3User
{
    private readonly Lazy<byte[]> _authKu;
    private readonly Lazy<byte[]> _privKu;
    private readonly ConcurrentDictionary<string, UsmKeys> _localized = new(StringComparer.Ordinal);

    public SnmpV3User(string name, SnmpAuthProtocol auth = SnmpAuthProtocol.None, string? authPassword = null,
        SnmpPrivProtocol priv = SnmpPrivProtocol.None, string? privPassword = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (Encoding.UTF8.GetByteCount(name) > 32)
        {
            throw new ArgumentException($"user name '{name}' is longer than 32 octets", nameof(name));
        }
        if (auth != SnmpAuthProtocol.None && string.IsNullOrEmpty(authPassword))
        {
            throw new ArgumentException($"user '{name}': {auth} authentication needs a password", nameof(authPassword));
        }
        if (priv != SnmpPrivProtocol.None && (auth == SnmpAuthProtocol.None || string.IsNullOrEmpty(privPassword)))
        {
            throw new ArgumentException($"user '{name}': {priv} privacy needs authentication and a privacy password", nameof(privPassword));
        }
        Name = name;
        NameBytes = Encoding.UTF8.GetBytes(name);
        Auth = auth;
        Priv = priv;
        _authKu = new(() => UsmCrypto.PasswordToKey(auth, Encoding.UTF8.GetBytes(authPassword!)));
        _privKu = new(() => UsmCrypto.PasswordToKey(auth, Encoding.UTF8.GetBytes(privPassword!)));
    }

    public string Name { get; }
    internal byte[] NameBytes { get; }
    public SnmpAuthProtocol Auth { get; }
    public SnmpPrivProtocol Priv { get; }

    public SnmpSecurityLevel Level => Priv != SnmpPrivProtocol.None ? SnmpSecurityLevel.AuthPriv
        : Auth != SnmpAuthProtocol.None ? SnmpSecurityLevel.AuthNoPriv : SnmpSecurityLevel.NoAuthNoPriv;

    /// <summary>Keys localized to <paramref name="engineId"/> (cached: the 1 MiB password hash runs once per user).</summary>
    internal UsmKeys KeysFor(ReadOnlySpan<byte> engineId)
    {
        var key = Convert.ToHexString(engineId);
        if (_localized.TryGetValue(key, out var keys))
        {
            return keys;
        }
        var eid = engineId.ToArray();
        var authKey = Auth == SnmpAuthProtocol.None ? [] : UsmCrypto.Localize(Auth, _authKu.Value, eid);
        var privKey = Priv == SnmpPrivProtocol.None ? [] : UsmCrypto.PrivKey(Auth, Priv, _privKu.Value, eid);
        keys = new UsmKeys(authKey, privKey);
        // Bound the cache: a trap receiver sees one entry per sending engine; an attacker could send many.
        if (_localized.Count > 1024)
        {
            _localized.Clear();
        }
        _localized[key] = keys;
        return keys;
    }

    public override string ToString() => $"{Name} ({Level}, {Auth}/{Priv})";
}

internal sealed record UsmKeys(byte[] AuthKey, byte[] PrivKey);
