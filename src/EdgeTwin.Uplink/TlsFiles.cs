using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace EdgeTwin.Uplink;

/// <summary>
/// A TLS file that cannot be used, for <c>edgetwin check</c> and the start: <see cref="Key"/> is the config key
/// (<c>client_cert_file</c>), printed as <c>{Path}: {Reason}</c> at that key.
/// </summary>
public sealed record TlsFileProblem(string Key, string Path, string Reason)
{
    public override string ToString() => $"{Path}: {Reason}";
}

/// <summary>A TLS file could not be loaded; <see cref="Problem"/> names the key, the file and why.</summary>
public sealed class TlsFileException(TlsFileProblem problem) : Exception(problem.ToString())
{
    public TlsFileProblem Problem { get; } = problem;
}

/// <summary>The config keys of one client's TLS files, so a problem is reported where the user wrote the file.</summary>
/// <param name="CaFile">Key of the CA file (<c>ca_file</c>).</param>
/// <param name="CertFile">Key of the client certificate (<c>client_cert_file</c>).</param>
/// <param name="KeyFile">Key of the client key (<c>client_key_file</c>).</param>
/// <param name="Password">Key of the password of an encrypted key or PKCS#12 file.</param>
public sealed record TlsFileKeys(string CaFile, string CertFile, string KeyFile, string Password)
{
    public static TlsFileKeys Mqtt { get; } = new("ca_file", "client_cert_file", "client_key_file", "client_cert_password");

    public static TlsFileKeys Kafka { get; } = new("ssl_ca_file", "ssl_cert_file", "ssl_key_file", "ssl_key_password");
}

/// <summary>
/// Loads CA, client certificate and key files and says precisely what is wrong with one (no certificate in it, a key
/// that is not the certificate's, a wrong password), naming the file. <c>check</c> runs the same code as the start, so a
/// file that would fail the connection fails <c>check</c> instead.
/// </summary>
public static class TlsFiles
{
    private const string ExpectCertificate = "expected a -----BEGIN CERTIFICATE----- block";
    private static readonly string[] KeyLabels = ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY"];

    /// <summary>
    /// Whether <paramref name="leaf"/> chains to one of <paramref name="trustedCas"/> (a <c>ca_file</c>), with the
    /// intermediates the peer presented in <paramref name="presented"/>; no revocation check (the uplink may be down
    /// exactly then). <paramref name="status"/> says why not.
    /// </summary>
    public static bool ChainsTo(X509Certificate2 leaf, X509Chain? presented, X509Certificate2Collection trustedCas, out X509ChainStatus[] status)
    {
        ArgumentNullException.ThrowIfNull(leaf);
        ArgumentNullException.ThrowIfNull(trustedCas);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(trustedCas);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (presented is not null)
        {
            foreach (var element in presented.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        var built = chain.Build(leaf);
        status = chain.ChainStatus;
        return built;
    }

    /// <summary>A chain's failure in a few words: untrusted root, unknown issuer, expired, else its flags.</summary>
    public static string ChainReason(X509ChainStatus[] status)
    {
        ArgumentNullException.ThrowIfNull(status);
        var flags = status.Aggregate(X509ChainStatusFlags.NoError, (f, c) => f | c.Status);
        return flags.HasFlag(X509ChainStatusFlags.UntrustedRoot) ? "untrusted root"
            : flags.HasFlag(X509ChainStatusFlags.PartialChain) ? "its issuer is unknown (partial chain)"
            : flags.HasFlag(X509ChainStatusFlags.NotTimeValid) ? "expired or not yet valid"
            : $"its chain does not verify ({flags})";
    }

    /// <summary>The PEM certificates of a CA file (at least one).</summary>
    /// <exception cref="TlsFileException">Unreadable, or no PEM certificate in it.</exception>
    public static X509Certificate2Collection LoadCaFile(string key, string path)
    {
        var text = ReadText(key, path);
        if (!HasLabel(text, "CERTIFICATE"))
        {
            throw Problem(key, path, $"no PEM certificate in it ({ExpectCertificate})");
        }

        var cas = new X509Certificate2Collection();
        try
        {
            cas.ImportFromPem(text);
        }
        catch (CryptographicException ex)
        {
            throw Problem(key, path, $"no PEM certificate in it ({ex.Message.TrimEnd('.')})");
        }

        return cas;
    }

    /// <summary>
    /// The client certificate with its private key, ready for the TLS handshake: PEM certificate with a PEM key
    /// (<paramref name="keyFile"/>, or in the certificate file when null; PKCS#8 keys may be encrypted with
    /// <paramref name="password"/>), or PKCS#12 (.pfx/.p12 without a key file).
    /// </summary>
    /// <exception cref="TlsFileException">A file is unreadable, holds no certificate or key, or the key is not the certificate's.</exception>
    public static X509Certificate2 LoadClientCertificate(string certFile, string? keyFile, string? password, TlsFileKeys keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        if (keyFile is null && (certFile.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase) || certFile.EndsWith(".p12", StringComparison.OrdinalIgnoreCase)))
        {
            return LoadPkcs12(certFile, password, keys);
        }

        using var certificate = LoadPemCertificate(keys.CertFile, certFile);
        var keyKey = keyFile is null ? keys.CertFile : keys.KeyFile;
        var keyPath = keyFile ?? certFile;
        using var key = LoadPrivateKey(certificate, keyKey, keyPath, password, keys, legacyEncryptedIsProblem: true, missingHint: keyFile is null ? $" (set {keys.KeyFile})" : "")!;
        var withKey = CopyWithKey(certificate, key, keyKey, keyPath, certFile);

        // A PEM key is ephemeral; SslStream wants a certificate whose key it can use for the handshake.
        using (withKey)
        {
            return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
        }
    }

    /// <summary>
    /// Problems of files librdkafka (OpenSSL) will read: the CA file must hold PEM certificates, the certificate and key
    /// must be PEM and belong together. A key in OpenSSL's legacy encrypted format (<c>Proc-Type: 4,ENCRYPTED</c>) is
    /// left to librdkafka: .NET cannot open it, OpenSSL can.
    /// </summary>
    public static IReadOnlyList<TlsFileProblem> CheckPem(string? caFile, string? certFile, string? keyFile, string? password, TlsFileKeys keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var problems = new List<TlsFileProblem>();
        Collect(problems, () =>
        {
            if (caFile is not null && File.Exists(caFile))
            {
                using var _ = new Disposables(LoadCaFile(keys.CaFile, caFile));
            }
        });
        Collect(problems, () =>
        {
            if (certFile is not null && File.Exists(certFile) && (keyFile is null || File.Exists(keyFile)))
            {
                using var certificate = LoadPemCertificate(keys.CertFile, certFile);
                var keyKey = keyFile is null ? keys.CertFile : keys.KeyFile;
                var keyPath = keyFile ?? certFile;
                using var key = LoadPrivateKey(certificate, keyKey, keyPath, password, keys, legacyEncryptedIsProblem: false, missingHint: "");
                if (key is not null)
                {
                    Match(certificate, key, keyKey, keyPath, certFile);
                }
            }
        });
        return problems;
    }

    /// <summary>Problems of the files of an MQTT <c>tls:</c> block, exactly as the connection would load them (files that do not exist are left to <c>Validate</c>).</summary>
    public static IReadOnlyList<TlsFileProblem> CheckMqtt(Mqtt.MqttTlsOptions tls)
    {
        ArgumentNullException.ThrowIfNull(tls);
        var problems = new List<TlsFileProblem>();
        if (!tls.Enabled)
        {
            return problems;
        }

        Collect(problems, () =>
        {
            if (tls.CaFile is { } ca && File.Exists(ca))
            {
                using var _ = new Disposables(LoadCaFile(TlsFileKeys.Mqtt.CaFile, ca));
            }
        });
        Collect(problems, () =>
        {
            if (tls.ClientCertificateFile is { } cert && File.Exists(cert) && (tls.ClientKeyFile is null || File.Exists(tls.ClientKeyFile)))
            {
                using var _ = LoadClientCertificate(cert, tls.ClientKeyFile, tls.ClientCertificatePassword, TlsFileKeys.Mqtt);
            }
        });
        return problems;
    }

    private static void Collect(List<TlsFileProblem> problems, Action check)
    {
        try
        {
            check();
        }
        catch (TlsFileException ex)
        {
            problems.Add(ex.Problem);
        }
    }

    private static X509Certificate2 LoadPkcs12(string path, string? password, TlsFileKeys keys)
    {
        X509Certificate2 pfx;
        try
        {
            pfx = X509CertificateLoader.LoadPkcs12FromFile(path, password);
        }
        catch (CryptographicException ex)
        {
            throw Problem(keys.CertFile, path, $"cannot be read as PKCS#12 ({ex.Message.TrimEnd('.')}; {keys.Password} is {(password is null ? "not set" : "set")})");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Problem(keys.CertFile, path, "cannot read it: " + Reason(ex));
        }

        if (!pfx.HasPrivateKey)
        {
            pfx.Dispose();
            throw Problem(keys.CertFile, path, "holds no private key");
        }

        return pfx;
    }

    private static X509Certificate2 LoadPemCertificate(string key, string path)
    {
        var text = ReadText(key, path);
        if (!HasLabel(text, "CERTIFICATE"))
        {
            throw Problem(key, path, $"no PEM certificate in it ({ExpectCertificate})");
        }

        try
        {
            return X509Certificate2.CreateFromPem(text);
        }
        catch (CryptographicException ex)
        {
            throw Problem(key, path, $"no PEM certificate in it ({ex.Message.TrimEnd('.')})");
        }
    }

    /// <summary>The private key for <paramref name="certificate"/>'s algorithm; null only for a legacy encrypted key left to OpenSSL.</summary>
    private static AsymmetricAlgorithm? LoadPrivateKey(X509Certificate2 certificate, string key, string path, string? password, TlsFileKeys keys, bool legacyEncryptedIsProblem, string missingHint)
    {
        var text = ReadText(key, path);
        // Checked first: the legacy format's headers are not RFC 7468 PEM, so the label search below would not see it.
        if (text.Contains("Proc-Type: 4,ENCRYPTED", StringComparison.Ordinal))
        {
            return legacyEncryptedIsProblem
                ? throw Problem(key, path, "the key is encrypted in OpenSSL's legacy format, which .NET cannot open; convert it with: openssl pkcs8 -topk8 -in KEY -out KEY.pk8")
                : null;
        }

        var label = KeyLabels.FirstOrDefault(l => HasLabel(text, l));
        if (label is null)
        {
            throw Problem(key, path, $"no PEM private key in it (expected -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY){missingHint}");
        }

        var encrypted = label == "ENCRYPTED PRIVATE KEY";
        if (encrypted && password is null)
        {
            throw Problem(key, path, $"the key is encrypted; set {keys.Password}");
        }

        // PKCS#8 does not say the algorithm in its label: the certificate's public key does.
        var (algorithm, name) = certificate.GetKeyAlgorithm() switch
        {
            "1.2.840.113549.1.1.1" => ((AsymmetricAlgorithm)RSA.Create(), "RSA"),
            "1.2.840.10045.2.1" => (ECDsa.Create(), "EC"),
            "1.2.840.10040.4.1" => (DSA.Create(), "DSA"),
            var oid => throw Problem(key, path, $"the certificate's key algorithm {oid} is not supported (RSA, EC or DSA)"),
        };
        try
        {
            if (encrypted)
            {
                algorithm.ImportFromEncryptedPem(text, password);
            }
            else
            {
                algorithm.ImportFromPem(text);
            }

            return algorithm;
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            algorithm.Dispose();
            var why = encrypted ? $"wrong {keys.Password}, or not an {name} key" : $"not an {name} key";
            throw Problem(key, path, $"no usable private key in it ({why}, as the certificate's is: {ex.Message.TrimEnd('.')})");
        }
    }

    private static void Match(X509Certificate2 certificate, AsymmetricAlgorithm key, string keyKey, string keyPath, string certFile)
    {
        using var _ = CopyWithKey(certificate, key, keyKey, keyPath, certFile);
    }

    /// <summary>The certificate with <paramref name="key"/> attached; a key that is not the certificate's is a problem at <paramref name="keyKey"/>.</summary>
    private static X509Certificate2 CopyWithKey(X509Certificate2 certificate, AsymmetricAlgorithm key, string keyKey, string keyPath, string certFile)
    {
        try
        {
            return key switch
            {
                RSA rsa => certificate.CopyWithPrivateKey(rsa),
                ECDsa ecdsa => certificate.CopyWithPrivateKey(ecdsa),
                DSA dsa => certificate.CopyWithPrivateKey(dsa),
                _ => throw new ArgumentException("unsupported key type"),
            };
        }
        catch (ArgumentException ex)
        {
            throw Problem(keyKey, keyPath, $"the key does not match the certificate in {certFile} ({ex.Message.TrimEnd('.')})");
        }
    }

    private static string ReadText(string key, string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Problem(key, path, "cannot read it: " + Reason(ex));
        }
    }

    private static bool HasLabel(string text, string label)
    {
        var rest = text.AsSpan();
        while (PemEncoding.TryFind(rest, out var fields))
        {
            if (rest[fields.Label].SequenceEqual(label))
            {
                return true;
            }

            rest = rest[fields.Location.End..];
        }

        return false;
    }

    private static string Reason(Exception ex) => ex switch
    {
        FileNotFoundException or DirectoryNotFoundException => "no such file",
        UnauthorizedAccessException => "permission denied",
        _ => ex.Message,
    };

    private static TlsFileException Problem(string key, string path, string reason) => new(new TlsFileProblem(key, path, reason));

    /// <summary>Disposes every certificate of a collection (a check keeps none).</summary>
    private readonly struct Disposables(X509Certificate2Collection certificates) : IDisposable
    {
        public void Dispose()
        {
            foreach (var c in certificates)
            {
                c.Dispose();
            }
        }
    }
}
