using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MQTTnet;
using MQTTnet.Formatter;

namespace EdgeTwin.Uplink.Mqtt;

/// <summary>
/// Connection settings of the MQTT uplink (broker, protocol, credentials, TLS with CA pinning and client certificate)
/// as an <see cref="MqttClientOptionsBuilder"/>, for other clients that must reach the same broker the same way (the
/// twin request server's own session). Certificates are loaded once here, so a bad file is an error at construction
/// (with the same text <c>edgetwin check</c> gives, see <see cref="TlsFiles"/>). A rejected broker certificate is logged with
/// the reason (name, trust, validity) and the certificate's subject and SANs, once per streak of failures.
/// Same rules as <see cref="MqttTransport"/>: the broker certificate is always validated (chain to <c>Tls.CaFile</c> or
/// the system store, and the host name); nothing is waved through.
/// </summary>
public sealed class MqttClientOptionsFactory
{
    private static readonly CoalescingStreamProvider CoalescingStreams = new();
    private readonly MqttUplinkOptions _options;
    private readonly X509Certificate2Collection? _trustedCas;
    private readonly X509Certificate2Collection? _clientCertificates;
    private readonly ILogger _logger;
    private readonly Lock _rejectionGate = new();
    private string? _lastRejection; // under _rejectionGate; null once a certificate passed

    /// <exception cref="UplinkOptionsException">
    /// A TLS file cannot be used; the error reads <c>uplinks.mqtt.tls.client_cert_file: /path: no PEM certificate in it (…)</c>,
    /// as <c>edgetwin check</c> reports it.
    /// </exception>
    public MqttClientOptionsFactory(MqttUplinkOptions options)
        : this(options, null)
    {
    }

    /// <summary>As <see cref="MqttClientOptionsFactory(MqttUplinkOptions)"/>; a rejected broker certificate is logged to <paramref name="logger"/> with the reason.</summary>
    /// <exception cref="UplinkOptionsException">A TLS file cannot be used.</exception>
    public MqttClientOptionsFactory(MqttUplinkOptions options, ILogger? logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        if (!options.Tls.Enabled)
        {
            return;
        }

        try
        {
            if (options.Tls.CaFile is { } ca)
            {
                _trustedCas = TlsFiles.LoadCaFile(TlsFileKeys.Mqtt.CaFile, ca);
            }

            if (options.Tls.ClientCertificateFile is { } certFile)
            {
                _clientCertificates = [TlsFiles.LoadClientCertificate(certFile, options.Tls.ClientKeyFile, options.Tls.ClientCertificatePassword, TlsFileKeys.Mqtt)];
            }
        }
        catch (TlsFileException ex)
        {
            throw new UplinkOptionsException([$"uplinks.mqtt.tls.{ex.Problem.Key}: {ex.Problem}"]);
        }
    }

    /// <summary>The uplink's client id (<c>edgetwin-{gateway}</c> when not configured).</summary>
    public string UplinkClientId => _options.EffectiveClientId;

    /// <summary><c>mqtt[s]://host:port</c> of the first server, for logs.</summary>
    public string Peer => PeerOf(First);

    /// <summary><c>mqtt[s]://host:port</c> of <paramref name="server"/>, for logs.</summary>
    public string PeerOf(MqttBrokerAddress server) => $"mqtt{(_options.Tls.Enabled ? "s" : "")}://{server}";

    // The first of the list (or the one host): what clients that reach "the" broker without walking the list use (the
    // alert sink); the uplink and the twin request server name each server.
    private MqttBrokerAddress First => _options.Servers is [var first, ..] ? first : new MqttBrokerAddress(_options.Host, _options.EffectivePort);

    /// <summary>
    /// Why the broker refused a CONNECT, for the error. A broker that speaks only MQTT 3.1.1 answers an MQTT 5 CONNECT
    /// with return code 1, "unacceptable protocol version" (MQTT 3.1.1 section 3.1.2.2; an MQTT 5 broker that has it
    /// switched off says 0x84); MQTTnet reports that as a bare <c>1</c>, so the error names the key that fixes it.
    /// A refused client id (or one the broker does not authorise: mosquitto's <c>clientid_prefixes</c>, ACLs keyed by
    /// client id) names the id sent and its key: an MQTT 3.1.1 broker need only take 1-23 letters and digits.
    /// </summary>
    /// <param name="setting">The setting that makes the client speak 3.1.1, e.g. <c>uplinks.mqtt.protocol: "3.1.1"</c>.</param>
    /// <param name="clientId">The client id sent, and the key that sets it.</param>
    public string Refusal(MqttClientConnectResult result, string setting, (string Id, string Key)? clientId = null) =>
        Refusal(result, setting, First, clientId);

    /// <summary>As <see cref="Refusal(MqttClientConnectResult, string, ValueTuple{string, string}?)"/>, naming <paramref name="server"/>.</summary>
    public string Refusal(MqttClientConnectResult result, string setting, MqttBrokerAddress server, (string Id, string Key)? clientId = null)
    {
        ArgumentNullException.ThrowIfNull(result);
        var peer = PeerOf(server);
        if (_options.Protocol == MqttProtocol.V500
            && result.ResultCode is (MqttClientConnectResultCode)1 or MqttClientConnectResultCode.UnsupportedProtocolVersion)
        {
            return $"{peer} refused the connection: unacceptable protocol version: the broker does not speak MQTT 5 (it answered as an MQTT 3.1.1 broker); set {setting}";
        }

        var refusal = $"{peer} refused the connection: {result.ResultCode} {result.ReasonString}".TrimEnd();
        if (clientId is { } id)
        {
            // MQTT 3.1.1 has one "not authorised" for bad credentials and for a client id the broker will not have.
            refusal += result.ResultCode switch
            {
                MqttClientConnectResultCode.ClientIdentifierNotValid =>
                    $" (client id '{id.Id}': set {id.Key}; an MQTT 3.1.1 broker need only take 1-23 letters and digits)",
                MqttClientConnectResultCode.NotAuthorized =>
                    $" (as client id '{id.Id}'{(_options.Username is { } user ? $" and user '{user}'" : " without a username")}: check the credentials, or set {id.Key} if the broker expects another client id)",
                _ => "",
            };
        }

        return refusal;
    }

    /// <summary>
    /// Broker, protocol, keep-alive, connect timeout, credentials and TLS of the uplink, with <paramref name="clientId"/>;
    /// session and will settings are the caller's.
    /// </summary>
    public MqttClientOptionsBuilder CreateBuilder(string clientId) => CreateBuilder(clientId, First);

    /// <summary>
    /// As <see cref="CreateBuilder(string)"/> towards <paramref name="server"/>: its certificate must carry its own host
    /// name (or <c>tls.server_name</c>, when set, for every server: a cluster behind one certificate name).
    /// </summary>
    public MqttClientOptionsBuilder CreateBuilder(string clientId, MqttBrokerAddress server)
    {
        ArgumentException.ThrowIfNullOrEmpty(clientId);
        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer(server.Host, server.Port)
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
                .WithTargetHost(_options.Tls.ServerName ?? server.Host)
                .WithCertificateValidationHandler(args => ValidateServerCertificate(args, server));
            if (_clientCertificates is not null)
            {
                tls = tls.WithClientCertificates(_clientCertificates);
            }

            builder = builder.WithTlsOptions(tls.Build());
        }

        return builder;
    }

    private bool ValidateServerCertificate(MqttClientCertificateValidationEventArgs args, MqttBrokerAddress server)
    {
        var reasons = new List<string>(2);
        var errors = args.SslPolicyErrors;
        using var leaf = args.Certificate is null ? null : X509CertificateLoader.LoadCertificate(args.Certificate.GetRawCertData());
        if (leaf is null || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
        {
            reasons.Add("not presented: the broker sent no certificate");
        }
        else
        {
            if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
            {
                reasons.Add($"does not match host {_options.Tls.ServerName ?? server.Host}");
            }

            if (_trustedCas is null)
            {
                if ((errors & SslPolicyErrors.RemoteCertificateChainErrors) != 0)
                {
                    reasons.AddRange(ChainReasons(leaf, args.Chain?.ChainStatus ?? [], "the system trust store"));
                    if (reasons.Count == 0)
                    {
                        reasons.Add("its chain does not verify");
                    }
                }
            }
            else
            {
                if (!TlsFiles.ChainsTo(leaf, args.Chain, _trustedCas, out var status))
                {
                    var before = reasons.Count;
                    reasons.AddRange(ChainReasons(leaf, status, _options.Tls.CaFile!));
                    if (reasons.Count == before)
                    {
                        reasons.Add($"its chain does not verify against {_options.Tls.CaFile}");
                    }
                }
            }
        }

        lock (_rejectionGate)
        {
            if (reasons.Count == 0)
            {
                _lastRejection = null;
                return true;
            }

            // Once per failure streak: every reconnect fails the same way, the pump already logs each attempt.
            var text = $"broker certificate {Describe(leaf)} {string.Join("; ", reasons)}";
            var peer = PeerOf(server);
            if (peer + text != _lastRejection)
            {
                _lastRejection = peer + text;
                Log.CertificateRejected(_logger, _options.Name, peer, text);
            }
        }

        return false;
    }

    /// <summary><c>CN=broker (SAN DNS:broker, IP:10.0.0.1)</c>; also the webhook sink's, for its refused certificates.</summary>
    public static string Describe(X509Certificate2? certificate)
    {
        if (certificate is null)
        {
            return "(none)";
        }

        var san = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().FirstOrDefault();
        var names = san is null
            ? []
            : san.EnumerateDnsNames().Select(d => "DNS:" + d).Concat(san.EnumerateIPAddresses().Select(ip => "IP:" + ip)).ToList();
        return $"{certificate.Subject} ({(names.Count == 0 ? "no SAN" : "SAN " + string.Join(", ", names))})";
    }

    private static IEnumerable<string> ChainReasons(X509Certificate2 leaf, X509ChainStatus[] status, string trustedBy)
    {
        var flags = status.Aggregate(X509ChainStatusFlags.NoError, (f, s) => f | s.Status);
        var now = DateTime.Now;
        if ((flags & X509ChainStatusFlags.NotTimeValid) != 0)
        {
            yield return leaf.NotAfter < now ? $"expired {leaf.NotAfter.ToUniversalTime():yyyy-MM-dd HH:mm} UTC"
                : leaf.NotBefore > now ? $"not valid before {leaf.NotBefore.ToUniversalTime():yyyy-MM-dd HH:mm} UTC"
                : "has an expired or not yet valid CA in its chain";
        }

        if ((flags & (X509ChainStatusFlags.UntrustedRoot | X509ChainStatusFlags.PartialChain)) != 0)
        {
            yield return $"untrusted root (issued by {leaf.Issuer}, which is not a CA in {trustedBy})";
        }

        if ((flags & X509ChainStatusFlags.NotSignatureValid) != 0)
        {
            yield return "has an invalid signature";
        }

        if ((flags & X509ChainStatusFlags.Revoked) != 0)
        {
            yield return "revoked";
        }

        var other = flags & ~(X509ChainStatusFlags.NotTimeValid | X509ChainStatusFlags.UntrustedRoot | X509ChainStatusFlags.PartialChain
            | X509ChainStatusFlags.NotSignatureValid | X509ChainStatusFlags.Revoked);
        if (other != X509ChainStatusFlags.NoError)
        {
            yield return $"chain status {other}";
        }
    }
}
