using EdgeTwin.Core.Config;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Payloads;

namespace EdgeTwin.Uplink.Mqtt;

public enum MqttProtocol
{
    V311,
    V500,
}

public enum MqttPayloadEncoding
{
    /// <summary>The versioned JSON envelope (README), on <see cref="MqttUplinkOptions.TopicTemplate"/>.</summary>
    Json,

    /// <summary>Sparkplug B protobuf on <c>spBv1.0/{group}/…</c> topics.</summary>
    SparkplugB,
}

/// <summary>TLS towards the broker. With <see cref="Enabled"/> the broker certificate is always validated.</summary>
public sealed record MqttTlsOptions
{
    public bool Enabled { get; init; }

    /// <summary>PEM file of the CA(s) that sign the broker certificate; null = the system trust store.</summary>
    public string? CaFile { get; init; }

    /// <summary>Client certificate: PEM (with <see cref="ClientKeyFile"/>) or PKCS#12 (.pfx/.p12, with <see cref="ClientCertificatePassword"/>).</summary>
    public string? ClientCertificateFile { get; init; }

    public string? ClientKeyFile { get; init; }

    public string? ClientCertificatePassword { get; init; }

    /// <summary>Name the broker certificate must carry; null = <see cref="MqttUplinkOptions.Host"/>.</summary>
    public string? ServerName { get; init; }

    // Records print every property: the certificate's password must never reach a log or an exception that way.
    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        builder.Append("Enabled = ").Append(Enabled).Append(", CaFile = ").Append(CaFile)
            .Append(", ClientCertificateFile = ").Append(ClientCertificateFile).Append(", ClientKeyFile = ").Append(ClientKeyFile)
            .Append(", ClientCertificatePassword = ").Append(ClientCertificatePassword is null ? "null" : EdgeTwin.Core.Config.Redact.Mask)
            .Append(", ServerName = ").Append(ServerName);
        return true;
    }
}

/// <summary>The MQTT uplink's settings; <see cref="Validate"/> runs at start and reports every problem at once.</summary>
public sealed record MqttUplinkOptions
{
    /// <summary>The uplink's name: its read position in the outbox and the <c>uplink</c> metric tag.</summary>
    public string Name { get; init; } = "mqtt";

    /// <summary>The one broker (key <c>host</c>); ignored when <see cref="Hosts"/> is set (the config allows one of the two keys).</summary>
    public string Host { get; init; } = "";

    /// <summary>0 = 1883, or 8883 with TLS; also the port of a <see cref="Hosts"/> entry that names none.</summary>
    public int Port { get; init; }

    /// <summary>
    /// Brokers of an HA pair or cluster (key <c>hosts</c>), each <c>host</c>, <c>host:port</c> or <c>[v6]:port</c>, tried in
    /// order (README "Reconnecting"); null = the one <see cref="Host"/>.
    /// </summary>
    public IReadOnlyList<string>? Hosts { get; init; }

    /// <summary>
    /// With more than one server and <see cref="SparkplugPrimaryHostId"/>: how long a connection waits for the primary
    /// host's STATE online before the uplink walks to the next server (one server: it waits as long as it takes).
    /// </summary>
    public TimeSpan PrimaryHostWait { get; init; } = TimeSpan.FromSeconds(30);

    public MqttProtocol Protocol { get; init; } = MqttProtocol.V500;

    /// <summary>Null = <c>edgetwin-{gateway}</c>. Must be stable across restarts for the persistent session.</summary>
    public string? ClientId { get; init; }

    public string? Username { get; init; }

    public string? Password { get; init; }

    public MqttTlsOptions Tls { get; init; } = new();

    public TimeSpan KeepAlive { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Clean session false (3.1.1) / clean start false with a session expiry (5).</summary>
    public bool PersistentSession { get; init; } = true;

    /// <summary>
    /// The session the CONNECT asks for: <see cref="PersistentSession"/>, except with Sparkplug B, whose specification (3.0,
    /// "Persistent vs Non-Persistent Connections for Edge Nodes") requires an edge node to connect with clean session true
    /// (3.1.1) or clean start true and a session expiry of 0 (5). The outbox, not the broker's session, carries the data
    /// across a reconnect, so nothing is lost by it.
    /// </summary>
    public bool EffectivePersistentSession => PersistentSession && Encoding != MqttPayloadEncoding.SparkplugB;

    /// <summary>MQTT 5 session expiry interval when <see cref="PersistentSession"/>.</summary>
    public TimeSpan SessionExpiry { get; init; } = TimeSpan.FromDays(1);

    public string Site { get; init; } = "";

    public string Gateway { get; init; } = "";

    /// <summary>Topic for JSON messages; <c>{kind}</c> is summary, raw, event, prediction, twin_state or status.</summary>
    public string TopicTemplate { get; init; } = "edgetwin/{site}/{gateway}/{kind}";

    public MqttPayloadEncoding Encoding { get; init; } = MqttPayloadEncoding.Json;

    /// <summary>Sparkplug group id; null = <see cref="Site"/>.</summary>
    public string? SparkplugGroupId { get; init; }

    /// <summary>
    /// Sparkplug primary host application id (<c>sparkplug_primary_host_id</c>): when set, the edge node subscribes to
    /// <c>spBv1.0/STATE/{id}</c> and publishes its births and data only while that host's STATE says online; null = none.
    /// </summary>
    public string? SparkplugPrimaryHostId { get; init; }

    /// <summary>
    /// Sparkplug metric aliases (<c>sparkplug_aliases</c>, Sparkplug 3.0 "Metric", aliases): NBIRTH and DBIRTH declare every
    /// metric with its name and an alias unique across the edge node, NDATA and DDATA then carry the alias only. Saves the
    /// names on a metered link; the host must resolve aliases from the births (Uplink README). Default false: names.
    /// </summary>
    public bool SparkplugAliases { get; init; }

    /// <summary>Directory of the small state file holding the Sparkplug bdSeq across restarts (required for Sparkplug B).</summary>
    public string? StateDirectory { get; init; }

    public DeliveryOptions Delivery { get; init; } = new();

    /// <summary>Read at every birth (models may have been hot-reloaded since the last one); null = no facts announced.</summary>
    public Func<GatewayFacts>? Facts { get; init; }

    /// <summary>
    /// Changes whenever <see cref="Facts"/> would return something new (a hot reload changed which models serve); the
    /// birth is then published again before the next message of the connection. Null: facts change only between connections.
    /// </summary>
    public Func<long>? FactsRevision { get; init; }

    /// <summary>
    /// Sparkplug B only: the series the agent knows (polled so far), read when a device needs a DBIRTH and a series of it
    /// is not declared yet, so the DBIRTH declares all of them at once. Null: series are declared as their data comes
    /// (one DBIRTH per new series of a device).
    /// </summary>
    public Func<IReadOnlyList<EdgeTwin.Uplink.Sparkplug.SparkplugSeries>>? SparkplugSeries { get; init; }

    /// <summary>
    /// Sparkplug B only: the devices the agent has under its config now. A device the backlog holds data of but that is not
    /// among them (dropped from the config before a restart) gets its DDEATH after each of its DDATA; null = none is dropped.
    /// </summary>
    public Func<IReadOnlyCollection<string>>? SparkplugDevices { get; init; }

    internal UplinkIdentity Identity => new(Site, Gateway);

    internal int EffectivePort => Port != 0 ? Port : Tls.Enabled ? 8883 : 1883;

    internal string EffectiveClientId => ClientId ?? $"edgetwin-{Gateway}";

    /// <summary>The brokers in the order they are tried: <see cref="Hosts"/> parsed, or <see cref="Host"/> with <see cref="EffectivePort"/>; entries that do not parse are left out (<see cref="Validate"/> names them).</summary>
    public IReadOnlyList<MqttBrokerAddress> Servers
    {
        get
        {
            if (Hosts is null)
            {
                return [new MqttBrokerAddress(Host, EffectivePort)];
            }

            var servers = new List<MqttBrokerAddress>(Hosts.Count);
            foreach (var entry in Hosts)
            {
                if (MqttBrokerAddress.Parse(entry, EffectivePort, out _) is { } server)
                {
                    servers.Add(server);
                }
            }

            return servers;
        }
    }

    /// <summary>Every problem, each naming the setting; empty when valid.</summary>
    public IReadOnlyList<string> Validate(string prefix = "uplinks.mqtt")
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(Name))
        {
            errors.Add($"{prefix}.Name is required");
        }

        if (Hosts is null && string.IsNullOrWhiteSpace(Host))
        {
            errors.Add($"{prefix}.Host is required");
        }
        else if (Hosts is not null)
        {
            ValidateHosts(errors, prefix);
        }

        if (Port is < 0 or > 65535)
        {
            errors.Add($"{prefix}.Port must be 0..65535 (was {Port})");
        }

        if (ClientId is { Length: 0 or > 65535 })
        {
            errors.Add($"{prefix}.ClientId must be 1..65535 characters when set");
        }

        if (Password is not null && Username is null)
        {
            errors.Add($"{prefix}.Password is set without Username");
        }

        if (KeepAlive < TimeSpan.Zero || KeepAlive > TimeSpan.FromSeconds(ushort.MaxValue))
        {
            errors.Add($"{prefix}.KeepAlive must be 0..65535 s (was {KeepAlive})");
        }

        if (SessionExpiry < TimeSpan.Zero || SessionExpiry.TotalSeconds > uint.MaxValue)
        {
            errors.Add($"{prefix}.SessionExpiry must be 0..{uint.MaxValue} s (was {SessionExpiry})");
        }

        errors.AddRange(Identity.Validate(prefix));
        if (Encoding == MqttPayloadEncoding.Json)
        {
            errors.AddRange(EdgeTwin.Uplink.Payloads.TopicTemplate.Validate(TopicTemplate, $"{prefix}.TopicTemplate"));
        }
        else
        {
            // Sparkplug topic ids are UTF-8 without '/', '+', '#' ([tck-id-topic-structure-namespace-valid-group-id]); MQTT
            // forbids U+0000 in a topic name (3.1.1 §1.5.3: the broker closes the connection).
            if (SparkplugGroupId is { } g && (g.Length == 0 || g.AsSpan().IndexOfAny("/+#\0") >= 0 || !HasUtf8Form(g)))
            {
                errors.Add($"{prefix}.SparkplugGroupId '{g}' may not be empty or contain '/', '+', '#', NUL or an unpaired surrogate (no UTF-8 form)");
            }

            // The host id is the last token of the STATE topic ([tck-id-message-flow-edge-node-birth-publish-phid-wait-id]):
            // a '/' would add a level, '+' or '#' would subscribe to other hosts' STATE.
            if (SparkplugPrimaryHostId is { } h && (h.Length == 0 || h.AsSpan().IndexOfAny("/+#\0") >= 0 || !HasUtf8Form(h)))
            {
                errors.Add($"{prefix}.SparkplugPrimaryHostId '{h}' may not be empty or contain '/', '+', '#', NUL or an unpaired surrogate (no UTF-8 form)");
            }

            if (string.IsNullOrWhiteSpace(StateDirectory))
            {
                errors.Add($"{prefix}.StateDirectory is required for Sparkplug B (it keeps bdSeq across restarts)");
            }
        }

        if (Tls.Enabled)
        {
            CheckFile(errors, $"{prefix}.Tls.CaFile", Tls.CaFile);
            CheckFile(errors, $"{prefix}.Tls.ClientCertificateFile", Tls.ClientCertificateFile);
            CheckFile(errors, $"{prefix}.Tls.ClientKeyFile", Tls.ClientKeyFile);
            if (Tls.ClientKeyFile is not null && Tls.ClientCertificateFile is null)
            {
                errors.Add($"{prefix}.Tls.ClientKeyFile is set without ClientCertificateFile");
            }
        }
        else if (Tls.CaFile is not null || Tls.ClientCertificateFile is not null)
        {
            errors.Add($"{prefix}.Tls has certificate files but Tls.Enabled is false");
        }

        errors.AddRange(Delivery.Validate($"{prefix}.Delivery"));
        return errors;
    }

    /// <summary>
    /// What works but exposes a secret or the data: a password sent to a broker that is neither reached over TLS nor on
    /// loopback (key <c>password</c>); without a password, the telemetry sent in clear to a broker that is not on
    /// loopback or a private network (key <c>host</c>/<c>hosts</c>; the webhook sink's rule for plain http). Reported by
    /// <c>edgetwin check</c> and at start; empty when none.
    /// </summary>
    public IReadOnlyList<UplinkWarning> Warnings()
    {
        if (Tls.Enabled)
        {
            return [];
        }

        if (Password is not null && Servers.FirstOrDefault(s => !NetworkScope.IsLoopback(s.Host)) is { Host: not null } remote)
        {
            return [new UplinkWarning("password", $"the password goes to {remote} without TLS, readable by anyone on the network path; add tls: (port 8883) or reach the broker over loopback")];
        }

        // Before, a broker across the internet without a password got no word, while an alert webhook to it did.
        if (Servers.FirstOrDefault(s => s.Host is { Length: > 0 } && !NetworkScope.IsLoopback(s.Host) && !NetworkScope.IsPrivate(s.Host)) is { Host: not null } open)
        {
            return [new UplinkWarning(Hosts is null ? "host" : "hosts", $"plain MQTT to {open}, which is not a loopback, private (RFC 1918, ULA) or link-local address: the telemetry crosses the network unencrypted; add tls: (port 8883)")];
        }

        return [];
    }

    private void ValidateHosts(List<string> errors, string prefix)
    {
        MqttBrokerAddress.ParseList(Hosts!, EffectivePort, "Hosts", (i, error) => errors.Add(i < 0 ? $"{prefix}.Hosts {error}" : $"{prefix}.Hosts[{i}] {error}"));
        if (PrimaryHostWait <= TimeSpan.Zero)
        {
            errors.Add($"{prefix}.PrimaryHostWait must be above 0 (was {PrimaryHostWait})");
        }
    }

    /// <summary>Whether the text is well-formed UTF-16 (no unpaired surrogate), so it has a UTF-8 form for a topic.</summary>
    private static bool HasUtf8Form(string text)
    {
        for (var rest = text.AsSpan(); !rest.IsEmpty;)
        {
            if (System.Text.Rune.DecodeFromUtf16(rest, out _, out var used) != System.Buffers.OperationStatus.Done)
            {
                return false;
            }

            rest = rest[used..];
        }

        return true;
    }

    private static void CheckFile(List<string> errors, string setting, string? path)
    {
        if (path is not null && !File.Exists(path))
        {
            errors.Add($"{setting} '{path}' does not exist");
        }
    }

    // Records print every property: the password must never reach a log or an exception that way. Identity and
    // connection only; the delivery settings and callbacks say nothing about which uplink this is.
    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        builder.Append("Name = ").Append(Name).Append(", Host = ").Append(Host).Append(", Port = ").Append(Port)
            .Append(", Hosts = ").Append(Hosts is null ? "null" : "[" + string.Join(", ", Hosts) + "]")
            .Append(", Protocol = ").Append(Protocol).Append(", ClientId = ").Append(ClientId)
            .Append(", Username = ").Append(Username).Append(", Password = ").Append(Password is null ? "null" : EdgeTwin.Core.Config.Redact.Mask)
            .Append(", Tls = ").Append(Tls).Append(", Site = ").Append(Site).Append(", Gateway = ").Append(Gateway)
            .Append(", TopicTemplate = ").Append(TopicTemplate).Append(", Encoding = ").Append(Encoding);
        return true;
    }
}
