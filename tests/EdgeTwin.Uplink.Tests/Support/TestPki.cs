using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace EdgeTwin.Uplink.Tests.Support;

/// <summary>
/// A throw-away CA with a server certificate for 127.0.0.1/localhost and a client certificate, written as PEM files,
/// made fresh for each test with CertificateRequest (no openssl, nothing checked in).
/// </summary>
internal sealed class TestPki : IDisposable
{
    private readonly string _dir;

    /// <param name="serverExpired">Issue the broker certificate already expired (valid from 4 to 1 minute ago).</param>
    /// <param name="namedServers">Further broker certificates by the same CA, each for that one name (DNS name or IP address) alone: <see cref="ServerFor"/>.</param>
    public TestPki(bool serverExpired = false, params string[] namedServers)
    {
        _dir = Directory.CreateTempSubdirectory("edgetwin-pki-").FullName;
        var now = DateTimeOffset.UtcNow;
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=EdgeTwin Test CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using var ca = caRequest.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));
        CaFile = Write("ca.crt", ca.ExportCertificatePem());

        (ServerCertFile, ServerKeyFile) = Issue(ca, caKey, "CN=localhost", server: true, "server", serverExpired);
        (ClientCertFile, ClientKeyFile) = Issue(ca, caKey, "CN=edgetwin-gw", server: false, "client", expired: false);
        foreach (var name in namedServers)
        {
            _named[name] = Issue(ca, caKey, "CN=" + name, server: true, "server-" + name, expired: false, [name]);
        }

        // A second, unrelated CA: a broker certificate it did not sign must be refused.
        using var otherKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var otherRequest = new CertificateRequest("CN=Someone Else CA", otherKey, HashAlgorithmName.SHA256);
        otherRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var other = otherRequest.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));
        OtherCaFile = Write("other-ca.crt", other.ExportCertificatePem());
    }

    private readonly Dictionary<string, (string Cert, string Key)> _named = new(StringComparer.Ordinal);

    /// <summary>The broker certificate and key issued for <paramref name="name"/> alone (see the constructor).</summary>
    public (string Cert, string Key) ServerFor(string name) => _named[name];

    public string CaFile { get; }

    public string OtherCaFile { get; }

    public string ServerCertFile { get; }

    public string ServerKeyFile { get; }

    public string ClientCertFile { get; }

    public string ClientKeyFile { get; }

    /// <summary>A file path in the PKI's directory (removed with it), for files a test writes itself.</summary>
    public string PathOf(string name) => Path.Combine(_dir, name);

    private (string Cert, string Key) Issue(X509Certificate2 ca, ECDsa caKey, string subject, bool server, string name, bool expired, string[]? names = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [server ? new Oid("1.3.6.1.5.5.7.3.1") : new Oid("1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        if (server)
        {
            var san = new SubjectAlternativeNameBuilder();
            foreach (var n in names ?? ["localhost", "127.0.0.1"])
            {
                if (System.Net.IPAddress.TryParse(n, out var ip))
                {
                    san.AddIpAddress(ip);
                }
                else
                {
                    san.AddDnsName(n);
                }
            }

            request.CertificateExtensions.Add(san.Build());
        }

        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        var now = DateTimeOffset.UtcNow;
        using var cert = expired
            ? request.Create(ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey), now.AddMinutes(-4), now.AddMinutes(-1), serial)
            : request.Create(ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey), now.AddMinutes(-5), now.AddDays(1), serial);
        return (Write($"{name}.crt", cert.ExportCertificatePem()), Write($"{name}.key", key.ExportPkcs8PrivateKeyPem()));
    }

    private string Write(string name, string pem)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, pem);
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
