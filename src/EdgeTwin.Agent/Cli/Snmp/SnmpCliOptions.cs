using System.CommandLine;
using System.Globalization;
using EdgeTwin.Snmp;
using EdgeTwin.Snmp.Client;
using EdgeTwin.Snmp.Messages;
using EdgeTwin.Snmp.Security;
using EdgeTwin.Snmp.Transport;

namespace EdgeTwin.Agent.Cli.Snmp;

/// <summary>The net-snmp style options shared by every <c>edgetwin snmp</c> subcommand.</summary>
internal sealed class SnmpCliOptions
{
    public const string CommunityVariable = "EDGETWIN_SNMP_COMMUNITY";
    public const string AuthPasswordVariable = "EDGETWIN_SNMP_AUTH_PASSWORD";
    public const string PrivPasswordVariable = "EDGETWIN_SNMP_PRIV_PASSWORD";

    /// <summary>Appended to the operations' descriptions: where secrets should come from, and why not -c/-A/-X.</summary>
    public const string SecretsHelp =
        "Secrets: prefer --community-file/--auth-password-file/--priv-password-file or the environment variables "
        + CommunityVariable + ", " + AuthPasswordVariable + ", " + PrivPasswordVariable
        + " (used when no option gives the secret) over -c/-A/-X, whose values every local user sees in ps and which land in shell history.";

    // A secret file is a local file of a few bytes; a hung network mount must not hang the tool.
    private static readonly TimeSpan SecretFileTimeout = TimeSpan.FromSeconds(10);

    public Option<string> Version { get; } = new("-v") { Description = "SNMP version: 1, 2c or 3", DefaultValueFactory = _ => "2c" };
    public Option<string?> Community { get; } = new("-c") { Description = $"community (v1/v2c), default public; visible in ps: prefer --community-file or {CommunityVariable}" };
    public Option<FileInfo?> CommunityFile { get; } = new("--community-file") { Description = $"read the community from this file (trailing newline dropped); else {CommunityVariable}, else public" };
    public Option<string?> User { get; } = new("-u") { Description = "security name (v3)" };
    public Option<string?> Level { get; } = new("-l") { Description = "security level: noAuthNoPriv|authNoPriv|authPriv" };
    public Option<string?> AuthProtocol { get; } = new("-a") { Description = "authentication protocol: MD5|SHA|SHA-224|SHA-256|SHA-384|SHA-512" };
    public Option<string?> AuthPassword { get; } = new("-A") { Description = $"authentication pass phrase; visible in ps: prefer --auth-password-file or {AuthPasswordVariable}" };
    public Option<FileInfo?> AuthPasswordFile { get; } = new("--auth-password-file") { Description = $"read the authentication pass phrase from this file (trailing newline dropped); else {AuthPasswordVariable}" };
    public Option<string?> PrivProtocol { get; } = new("-x") { Description = "privacy protocol: DES|AES|AES-192|AES-256|AES-192-C|AES-256-C (-C: Reeder key extension, Cisco)" };
    public Option<string?> PrivPassword { get; } = new("-X") { Description = $"privacy pass phrase (default: the authentication one); visible in ps: prefer --priv-password-file or {PrivPasswordVariable}" };
    public Option<FileInfo?> PrivPasswordFile { get; } = new("--priv-password-file") { Description = $"read the privacy pass phrase from this file (trailing newline dropped); else {PrivPasswordVariable}" };
    public Option<string?> Context { get; } = new("-n") { Description = "context name (v3)" };
    public Option<double> Timeout { get; } = new("-t") { Description = "timeout per attempt, seconds", DefaultValueFactory = _ => 1.0 };
    public Option<int> Retries { get; } = new("-r") { Description = "retries after the first attempt", DefaultValueFactory = _ => 5 };
    public Option<bool> Json { get; } = new("--json") { Description = "print JSON for scripts" };
    public Argument<string> Agent { get; } = new("AGENT") { Description = "[udp:]HOST[:PORT] or udp6:[ADDR]:PORT" };

    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { Version, Community, CommunityFile, User, Level, AuthProtocol, AuthPassword, AuthPasswordFile, PrivProtocol, PrivPassword, PrivPasswordFile, Context, Timeout, Retries, Json })
        {
            command.Options.Add(o);
        }
        command.Arguments.Add(Agent);
    }

    /// <summary>Builds the target; throws <see cref="ArgumentException"/> with a one-line reason on bad options.</summary>
    public async Task<SnmpTarget> TargetAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var version = (parse.GetValue(Version) ?? "2c").ToLowerInvariant() switch
        {
            "1" => SnmpVersion.V1,
            "2c" or "2" => SnmpVersion.V2c,
            "3" => SnmpVersion.V3,
            var v => throw new ArgumentException($"-v {v}: expected 1, 2c or 3"),
        };
        var timeout = parse.GetValue(Timeout);
        if (timeout is <= 0 or > 3600 || double.IsNaN(timeout))
        {
            throw new ArgumentException($"-t {timeout.ToString(CultureInfo.InvariantCulture)}: expected seconds between 0 and 3600");
        }
        var retries = parse.GetValue(Retries);
        if (retries is < 0 or > 100)
        {
            throw new ArgumentException($"-r {retries}: expected 0..100");
        }
        IPEndPointHolder endpoint;
        try
        {
            endpoint = new(await SnmpEndpoint.ResolveAsync(parse.GetValue(Agent)!, SnmpEndpoint.DefaultPort, cancellationToken).ConfigureAwait(false));
        }
        catch (FormatException ex)
        {
            throw new ArgumentException(ex.Message, ex);
        }
        var community = version == SnmpVersion.V3
            ? "public"
            : await SecretAsync(parse, Community, CommunityFile, CommunityVariable, cancellationToken).ConfigureAwait(false) ?? "public";
        return new SnmpTarget
        {
            EndPoint = endpoint.Value,
            Version = version,
            Community = community,
            User = version == SnmpVersion.V3 ? await BuildUserAsync(parse, cancellationToken).ConfigureAwait(false) : null,
            ContextName = parse.GetValue(Context) ?? "",
            Timeout = TimeSpan.FromSeconds(timeout),
            Retries = retries,
        };
    }

    private sealed record IPEndPointHolder(System.Net.IPEndPoint Value);

    /// <summary>
    /// A secret from its option (e.g. <c>-A</c>), its file option (read now, trailing newline dropped, as the config's
    /// <c>*_file</c> keys) or, when neither is given, its environment variable; null when none has it. Both options at
    /// once is an error naming both.
    /// </summary>
    private static async Task<string?> SecretAsync(ParseResult parse, Option<string?> inline, Option<FileInfo?> fileOption, string variable, CancellationToken cancellationToken)
    {
        var value = parse.GetValue(inline);
        var file = parse.GetValue(fileOption);
        if (value is not null && file is not null)
        {
            throw new ArgumentException($"give either {inline.Name} or {fileOption.Name}, not both");
        }
        if (value is not null)
        {
            return value;
        }
        if (file is null)
        {
            return Environment.GetEnvironmentVariable(variable) is { Length: > 0 } fromEnvironment ? fromEnvironment : null;
        }
        string text;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(SecretFileTimeout);
        try
        {
            text = await File.ReadAllTextAsync(file.FullName, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"{fileOption.Name} {file.FullName}: cannot read it: {ex.Message}", ex);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ArgumentException($"{fileOption.Name} {file.FullName}: not read within {(int)SecretFileTimeout.TotalSeconds} s", ex);
        }
        text = text.TrimEnd('\r', '\n');
        return text.Length > 0 ? text : throw new ArgumentException($"{fileOption.Name} {file.FullName}: the file is empty");
    }

    /// <summary>How a pass phrase was given, for messages: the option used, else the variable.</summary>
    private static string SourceOf(ParseResult parse, Option<string?> inline, Option<FileInfo?> fileOption, string variable) =>
        parse.GetValue(inline) is not null ? inline.Name : parse.GetValue(fileOption) is not null ? fileOption.Name : variable;

    private async Task<SnmpV3User> BuildUserAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var name = parse.GetValue(User);
        if (string.IsNullOrEmpty(name))
        {
            throw new ArgumentException("-v 3 needs a user name (-u USER)");
        }
        var level = (parse.GetValue(Level) ?? "noAuthNoPriv").ToLowerInvariant() switch
        {
            "noauthnopriv" or "noauth" or "nanp" => SnmpSecurityLevel.NoAuthNoPriv,
            "authnopriv" or "auth" or "anp" => SnmpSecurityLevel.AuthNoPriv,
            "authpriv" or "priv" or "ap" => SnmpSecurityLevel.AuthPriv,
            var l => throw new ArgumentException($"-l {l}: expected noAuthNoPriv, authNoPriv or authPriv"),
        };
        var auth = SnmpAuthProtocol.None;
        var priv = SnmpPrivProtocol.None;
        string? authPw = null, privPw = null;
        if (level != SnmpSecurityLevel.NoAuthNoPriv)
        {
            auth = ParseAuth(parse.GetValue(AuthProtocol) ?? "MD5");
            authPw = await SecretAsync(parse, AuthPassword, AuthPasswordFile, AuthPasswordVariable, cancellationToken).ConfigureAwait(false)
                ?? throw new ArgumentException($"-l {level}: needs an authentication pass phrase (--auth-password-file, {AuthPasswordVariable} or -A)");
            if (authPw.Length < 8)
            {
                throw new ArgumentException($"{SourceOf(parse, AuthPassword, AuthPasswordFile, AuthPasswordVariable)}: the pass phrase must be at least 8 characters (RFC 3414 / net-snmp rule)");
            }
        }
        if (level == SnmpSecurityLevel.AuthPriv)
        {
            priv = ParsePriv(parse.GetValue(PrivProtocol) ?? "DES");
            // Like net-snmp: without a privacy pass phrase of its own, the authentication one is used.
            privPw = await SecretAsync(parse, PrivPassword, PrivPasswordFile, PrivPasswordVariable, cancellationToken).ConfigureAwait(false) ?? authPw;
            if (privPw!.Length < 8)
            {
                throw new ArgumentException($"{SourceOf(parse, PrivPassword, PrivPasswordFile, PrivPasswordVariable)}: the pass phrase must be at least 8 characters (RFC 3414 / net-snmp rule)");
            }
        }
        return new SnmpV3User(name, auth, authPw, priv, privPw);
    }

    public static SnmpAuthProtocol ParseAuth(string text) => text.ToUpperInvariant().Replace("-", "", StringComparison.Ordinal) switch
    {
        "MD5" => SnmpAuthProtocol.Md5,
        "SHA" or "SHA1" => SnmpAuthProtocol.Sha1,
        "SHA224" => SnmpAuthProtocol.Sha224,
        "SHA256" => SnmpAuthProtocol.Sha256,
        "SHA384" => SnmpAuthProtocol.Sha384,
        "SHA512" => SnmpAuthProtocol.Sha512,
        _ => throw new ArgumentException($"-a {text}: expected MD5, SHA, SHA-224, SHA-256, SHA-384 or SHA-512"),
    };

    public static SnmpPrivProtocol ParsePriv(string text) => text.ToUpperInvariant().Replace("-", "", StringComparison.Ordinal) switch
    {
        "DES" => SnmpPrivProtocol.Des,
        "AES" or "AES128" => SnmpPrivProtocol.Aes128,
        "AES192" => SnmpPrivProtocol.Aes192,
        "AES256" => SnmpPrivProtocol.Aes256,
        "AES192C" => SnmpPrivProtocol.Aes192Reeder,
        "AES256C" => SnmpPrivProtocol.Aes256Reeder,
        _ => throw new ArgumentException($"-x {text}: expected DES, AES, AES-192, AES-256, AES-192-C or AES-256-C"),
    };

    public static Oid ParseOid(string text) =>
        Oid.TryParse(text, out var oid) ? oid : throw new ArgumentException($"'{text}' is not a numeric OID (e.g. .1.3.6.1.2.1.1.1.0; MIB names are not supported)");
}
