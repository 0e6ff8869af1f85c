using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using MQTTnet;
using MQTTnet.Formatter;

namespace EdgeTwin.Uplink.Mqtt;

/// <summary>
/// Connection settings of the MQTT uplink (broker, protocol, credentials, TLS with CA pinning and client certificate)
/// as an <see cref="MqttClientOptionsBuilder"/>, for other clients that must reach the same broker the same way (the
/// twin request server's own session). Certificates are loaded once here, so a bad file is an error at construction.
/// Same rules as <see cref="MqttTransport"/>: the broker certificate is always validated (chain to <c>Tls.CaFile</c> or
/// the system store, and the host name); nothing is waved through.
/// </summary>
public sealed class MqttClientOptionsFactory
{
    private static readonly CoalescingStreamProvider CoalescingStreams = new();
    private readonly MqttUplinkOptions _options;
    private readonly X509Certificate2Collection? _trustedCas;
    private readonly X509Certificate2Collection? _clientCertificates;

    /// <exception cref="UplinkOptionsException">A TLS file holds no certificate or the client certificate has no key.</exception>
    public MqttClientOptionsFactory(MqttUplinkOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        if (!options.Tls.Enabled)
        {
            return;
        }

        if (options.Tls.CaFile is { } ca)
        {
            _trustedCas = [];
            _trustedCas.ImportFromPemFile(ca);
            if (_trustedCas.Count == 0)
            {
                throw new UplinkOptionsException([$"Tls.CaFile '{ca}' holds no PEM certificate"]);
            }
        }

        if (options.Tls.ClientCertificateFile is { } certFile)
        {
            _clientCertificates = [LoadClientCertificate(certFile, options.Tls.ClientKeyFile, options.Tls.ClientCertificatePassword)];
        }
    }

    /// <summary>The uplink's client id (<c>edgetwin-{gateway}</c> when not configured).</summary>
    public string UplinkClientId => _options.EffectiveClientId;

    /// <summary><c>mqtt[s]://host:port</c>, for logs.</summary>
    public string Peer => $"mqtt{(_options.Tls.Enabled ? "s" : "")}://{_options.Host}:{_options.EffectivePort}";

    /// <summary>
    /// Broker, protocol, keep-alive, connect timeout, credentials and TLS of the uplink, with <paramref name="clientId"/>;
    /// session and will settings are the caller's.
    /// </summary>
    public MqttClientOptionsBuilder CreateBuilder(string clientId)
    {
        ArgumentException.ThrowIfNullOrEmpty(clientId);
        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer(_options.Host, _options.EffectivePort)
            .WithStreamProvider(CoalescingStreams)
            .WithProtocolVersion(_options.Protocol == MqttProtocol.V500 ? MqttProtocolVersion.V500 : MqttProtocolVersion.V311)
            .WithClientId(clientId)
            .WithKeepAlivePeriod(_options.KeepAlive)
            .WithTimeout(_options.Delivery.ConnectTimeout);
        if (_options.Username is { } user)
        {
            builder = builder.WithCredentials(user, _options.Password ?? "");
        }

        if (_options.Tls.Enabled)
        {
            var tls = new MqttClientTlsOptionsBuilder()
                .UseTls()
                .WithTargetHost(_options.Tls.ServerName ?? _options.Host)
                .WithCertificateValidationHandler(ValidateServerCertificate);
            if (_clientCertificates is not null)
            {
                tls = tls.WithClientCertificates(_clientCertificates);
            }

            builder = builder.WithTlsOptions(tls.Build());
        }

        return builder;
    }

    private bool ValidateServerCertificate(MqttClientCertificateValidationEventArgs args)
    {
        var errors = args.SslPolicyErrors;
        if (args.Certificate is null || (errors & (SslPolicyErrors.RemoteCertificateNotAvailable | SslPolicyErrors.RemoteCertificateNameMismatch)) != 0)
        {
            return false;
        }

        if (_trustedCas is null)
        {
            return errors == SslPolicyErrors.None;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(_trustedCas);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (args.Chain is not null)
        {
            foreach (var element in args.Chain.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        using var leaf = X509CertificateLoader.LoadCertificate(args.Certificate.GetRawCertData());
        return chain.Build(leaf);
    }

    private static X509Certificate2 LoadClientCertificate(string certFile, string? keyFile, string? password)
    {
        if (keyFile is null && (certFile.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase) || certFile.EndsWith(".p12", StringComparison.OrdinalIgnoreCase)))
        {
            return X509CertificateLoader.LoadPkcs12FromFile(certFile, password);
        }

        using var pem = keyFile is null ? X509Certificate2.CreateFromPemFile(certFile) : X509Certificate2.CreateFromPemFile(certFile, keyFile);
        if (!pem.HasPrivateKey)
        {
            throw new UplinkOptionsException([$"Tls.ClientCertificateFile '{certFile}' has no private key (set Tls.ClientKeyFile)"]);
        }

        // A PEM key is ephemeral; SslStream wants a certificate whose key it can use for the handshake.
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
    }
}
