using System.Security.Cryptography;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Tests.Support;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Mqtt;

/// <summary>
/// TLS files are parsed by <c>check</c> (<see cref="TlsFiles.CheckMqtt"/>) exactly as the connection loads them, and a
/// problem names the key, the file and why; certificates and keys are made in the test (<see cref="TestPki"/>).
/// </summary>
public sealed class TlsFilesTests
{
    private const string Garbage = "this is not a certificate\n";

    private static MqttTlsOptions Tls(TestPki pki, string? ca = null, string? cert = null, string? key = null, string? password = null) => new()
    {
        Enabled = true,
        CaFile = ca ?? pki.CaFile,
        ClientCertificateFile = cert ?? pki.ClientCertFile,
        ClientKeyFile = key ?? pki.ClientKeyFile,
        ClientCertificatePassword = password,
    };

    private static string Write(TestPki pki, string name, string text)
    {
        var path = pki.PathOf(name);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void Valid_files_have_no_problem_and_load()
    {
        using var pki = new TestPki();
        Assert.Empty(TlsFiles.CheckMqtt(Tls(pki)));
        using var certificate = TlsFiles.LoadClientCertificate(pki.ClientCertFile, pki.ClientKeyFile, null, TlsFileKeys.Mqtt);
        Assert.True(certificate.HasPrivateKey);
        Assert.Equal("CN=edgetwin-gw", certificate.Subject);
    }

    [Fact]
    public void Regression_a_ca_file_without_a_certificate_passed_check_and_failed_only_at_start()
    {
        using var pki = new TestPki();
        var garbage = Write(pki, "garbage.pem", Garbage);

        var problem = Assert.Single(TlsFiles.CheckMqtt(Tls(pki, ca: garbage)));
        Assert.Equal("ca_file", problem.Key);
        Assert.Equal($"{garbage}: no PEM certificate in it (expected a -----BEGIN CERTIFICATE----- block)", problem.ToString());

        var ex = Assert.Throws<UplinkOptionsException>(() => new MqttClientOptionsFactory(Options(8883) with { Tls = Tls(pki, ca: garbage) }));
        Assert.Equal([$"uplinks.mqtt.tls.ca_file: {garbage}: no PEM certificate in it (expected a -----BEGIN CERTIFICATE----- block)"], ex.Errors);
    }

    [Fact]
    public void Regression_a_client_certificate_file_without_a_certificate_failed_with_a_CryptographicException_naming_no_file()
    {
        using var pki = new TestPki();
        var garbage = Write(pki, "garbage.pem", Garbage);

        var problem = Assert.Single(TlsFiles.CheckMqtt(Tls(pki, cert: garbage)));
        Assert.Equal("client_cert_file", problem.Key);
        Assert.Equal($"{garbage}: no PEM certificate in it (expected a -----BEGIN CERTIFICATE----- block)", problem.ToString());

        // Before: a bare CryptographicException ("The certificate contents do not contain a PEM with a CERTIFICATE label…").
        var ex = Assert.Throws<UplinkOptionsException>(() => new MqttClientOptionsFactory(Options(8883) with { Tls = Tls(pki, cert: garbage) }));
        Assert.Equal([$"uplinks.mqtt.tls.client_cert_file: {garbage}: no PEM certificate in it (expected a -----BEGIN CERTIFICATE----- block)"], ex.Errors);
    }

    [Fact]
    public void A_key_of_another_certificate_is_reported_at_client_key_file()
    {
        using var pki = new TestPki();
        var problem = Assert.Single(TlsFiles.CheckMqtt(Tls(pki, key: pki.ServerKeyFile)));
        Assert.Equal("client_key_file", problem.Key);
        Assert.StartsWith($"{pki.ServerKeyFile}: the key does not match the certificate in {pki.ClientCertFile} (", problem.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_key_file_without_a_key_or_with_a_key_of_the_wrong_algorithm_is_reported_at_client_key_file()
    {
        using var pki = new TestPki();
        var none = Assert.Single(TlsFiles.CheckMqtt(Tls(pki, key: pki.CaFile)));
        Assert.Equal(("client_key_file", $"{pki.CaFile}: no PEM private key in it (expected -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)"), (none.Key, none.ToString()));

        using var rsa = RSA.Create(2048);
        var rsaKey = Write(pki, "rsa.key", rsa.ExportPkcs8PrivateKeyPem());
        var wrong = Assert.Single(TlsFiles.CheckMqtt(Tls(pki, key: rsaKey)));
        Assert.Equal("client_key_file", wrong.Key);
        Assert.StartsWith($"{rsaKey}: no usable private key in it (not an EC key, as the certificate's is: ", wrong.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void An_encrypted_key_needs_its_password_and_loads_with_it()
    {
        using var pki = new TestPki();
        using var key = ECDsa.Create();
        key.ImportFromPem(File.ReadAllText(pki.ClientKeyFile));
        var encrypted = Write(pki, "client-enc.key", new string(PemEncoding.Write("ENCRYPTED PRIVATE KEY",
            key.ExportEncryptedPkcs8PrivateKey("pw-123", new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 10_000)))));

        var missing = Assert.Single(TlsFiles.CheckMqtt(Tls(pki, key: encrypted)));
        Assert.Equal(("client_key_file", $"{encrypted}: the key is encrypted; set client_cert_password"), (missing.Key, missing.ToString()));
        var wrong = Assert.Single(TlsFiles.CheckMqtt(Tls(pki, key: encrypted, password: "nope")));
        Assert.StartsWith($"{encrypted}: no usable private key in it (wrong client_cert_password, or not an EC key", wrong.ToString(), StringComparison.Ordinal);
        Assert.Empty(TlsFiles.CheckMqtt(Tls(pki, key: encrypted, password: "pw-123")));
    }

    [Fact]
    public void A_pem_certificate_without_a_key_file_must_hold_the_key_itself()
    {
        using var pki = new TestPki();
        var problem = Assert.Single(TlsFiles.CheckMqtt(Tls(pki) with { ClientKeyFile = null }));
        Assert.Equal(("client_cert_file", $"{pki.ClientCertFile}: no PEM private key in it (expected -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY) (set client_key_file)"),
            (problem.Key, problem.ToString()));

        var both = Write(pki, "both.pem", File.ReadAllText(pki.ClientCertFile) + "\n" + File.ReadAllText(pki.ClientKeyFile));
        Assert.Empty(TlsFiles.CheckMqtt(Tls(pki, cert: both) with { ClientKeyFile = null }));
    }

    [Fact]
    public void Kafka_ssl_files_are_checked_at_their_own_keys()
    {
        using var pki = new TestPki();
        var garbage = Write(pki, "garbage.pem", Garbage);
        var problems = TlsFiles.CheckPem(garbage, pki.ClientCertFile, pki.ServerKeyFile, null, TlsFileKeys.Kafka);
        Assert.Equal(["ssl_ca_file", "ssl_key_file"], problems.Select(p => p.Key));
        Assert.Equal($"{garbage}: no PEM certificate in it (expected a -----BEGIN CERTIFICATE----- block)", problems[0].ToString());
        Assert.Empty(TlsFiles.CheckPem(pki.CaFile, pki.ClientCertFile, pki.ClientKeyFile, null, TlsFileKeys.Kafka));

        // OpenSSL's legacy encrypted key: .NET cannot open it but librdkafka can, so check leaves it alone.
        var legacy = Write(pki, "legacy.key", "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n-----END EC PRIVATE KEY-----\n");
        Assert.Empty(TlsFiles.CheckPem(pki.CaFile, pki.ClientCertFile, legacy, "pw", TlsFileKeys.Kafka));
    }
}
