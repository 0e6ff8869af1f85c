using System.Globalization;
using EdgeTwin.Core.Profiles;

using EdgeTwin.Core.Samples;

namespace EdgeTwin.Core.Config;

/// <summary>Options for <see cref="SiteConfigLoader"/>.</summary>
public sealed record SiteConfigLoadOptions
{
    /// <summary>Overrides the config's <c>profiles_dir</c> and the default search (e.g. <c>check --profiles-dir</c>).</summary>
    public string? ProfilesDir { get; init; }

    /// <summary>Extra directories searched after the configured one (tests, packaging).</summary>
    public IReadOnlyList<string> ExtraProfileDirs { get; init; } = [];

    /// <summary>Validators of the raw sections (see <see cref="ConfigSectionValidators.Discover"/>); each runs when its section is present.</summary>
    public IReadOnlyList<IConfigSectionValidator> SectionValidators { get; init; } = [];
}

/// <summary>What loading produced: the config when valid, and every problem found.</summary>
/// <param name="Config">The config, or null when there were problems.</param>
/// <param name="Problems">Every problem, sorted by file, line and column.</param>
/// <param name="ProfileDirectories">The directories profiles were looked up in.</param>
public sealed record ConfigLoadResult(SiteConfig? Config, IReadOnlyList<ConfigDiagnostic> Problems, IReadOnlyList<string> ProfileDirectories)
{
    /// <summary>True when the config loaded without problems.</summary>
    public bool IsValid => Config is not null && Problems.Count == 0;

    /// <summary>Warnings (the config loads, but something is probably not what was meant), sorted like <see cref="Problems"/>.</summary>
    public IReadOnlyList<ConfigDiagnostic> Warnings { get; init; } = [];
}

/// <summary>
/// Loads the site config YAML, resolves the device profiles it names and validates all of it, reporting
/// every problem at once as <c>FILE:LINE:COL: key.path: message</c> (like <c>nginx -t</c>).
/// Secrets in <c>*_password_file</c> are read here, once, at load.
/// </summary>
public static class SiteConfigLoader
{
    /// <summary>Loads and validates <paramref name="path"/>.</summary>
    public static ConfigLoadResult Load(string path, SiteConfigLoadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new ConfigLoadResult(null, [new ConfigDiagnostic(path, 0, 0, string.Empty, CannotRead(path, ex))], []);
        }

        if (NotUtf8(path, text) is { } bad)
        {
            return new ConfigLoadResult(null, [new ConfigDiagnostic(path, bad.Line, bad.Column, string.Empty, bad.Message)], []);
        }

        var full = Path.GetFullPath(path);
        var (result, secrets) = Parse(text, path, options, full);
        return result.Config is null ? result : result with
        {
            Config = result.Config with { SourcePath = full, ConfigSha256 = ConfigSecrets.RedactedSha256(text, secrets.Inline) },
        };
    }

    /// <summary>
    /// Where the file stops being UTF-8, when <paramref name="text"/> (as <see cref="File.ReadAllText(string)"/> decoded
    /// it) holds a replacement character: it turned each byte of a Latin-1 or Windows-1252 file into U+FFFD without a
    /// word, so a name or an inline community with an umlaut was silently another one.
    /// </summary>
    internal static (int Line, int Column, string Message)? NotUtf8(string path, string text)
    {
        if (!text.Contains('\uFFFD', StringComparison.Ordinal))
        {
            return null;
        }

        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        // A UTF-16/32 file was decoded by its byte-order mark; only a file without one is read as UTF-8.
        if (bytes.Length >= 2 && (bytes[0] == 0xFF && bytes[1] == 0xFE || bytes[0] == 0xFE && bytes[1] == 0xFF))
        {
            return null;
        }

        var chars = new char[bytes.Length];
        if (System.Text.Unicode.Utf8.ToUtf16(bytes, chars, out var read, out _, replaceInvalidSequences: false) != System.Buffers.OperationStatus.InvalidData)
        {
            return null;
        }

        var before = bytes.AsSpan(0, read);
        var line = before.Count((byte)'\n') + 1;
        var column = System.Text.Encoding.UTF8.GetCharCount(before[(before.LastIndexOf((byte)'\n') + 1)..]) + 1;
        return (line, column, string.Create(CultureInfo.InvariantCulture, $"the file is not UTF-8: byte 0x{bytes[read]:X2} here (saved as Latin-1 or Windows-1252?); save it as UTF-8"));
    }

    /// <summary>Loads <paramref name="path"/> or throws <see cref="ConfigException"/> listing every problem.</summary>
    /// <exception cref="ConfigException">The config is invalid.</exception>
    public static SiteConfig LoadOrThrow(string path, SiteConfigLoadOptions? options = null)
    {
        var result = Load(path, options);
        return result.IsValid ? result.Config! : throw new ConfigException(result.Problems);
    }

    /// <summary>
    /// Parses and validates config text. <paramref name="file"/> names it in problems; relative paths in the
    /// config (profiles_dir, password files) are taken relative to its directory.
    /// </summary>
    public static ConfigLoadResult Parse(string yaml, string file, SiteConfigLoadOptions? options = null) =>
        Parse(yaml, file, options, sourcePath: null).Result;

    /// <summary><see cref="Parse(string, string, SiteConfigLoadOptions?)"/>, checking the mode of <paramref name="sourcePath"/> when the text holds inline secrets.</summary>
    private static (ConfigLoadResult Result, ConfigSecrets Secrets) Parse(string yaml, string file, SiteConfigLoadOptions? options, string? sourcePath)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        ArgumentNullException.ThrowIfNull(file);
        var builder = new Builder(file, options ?? new SiteConfigLoadOptions());
        var config = builder.Build(yaml);
        if (sourcePath is not null)
        {
            builder.Diagnostics.Secrets.CheckConfigFile(sourcePath);
        }

        var problems = builder.Diagnostics.Sorted();
        var warnings = builder.Diagnostics.SortedWarnings();
        // The config carries its warnings so the agent logs at start what check showed.
        return (new ConfigLoadResult(problems.Count == 0 ? config is null ? null : config with { Warnings = warnings } : null, problems, builder.ProfileDirectories) { Warnings = warnings }, builder.Diagnostics.Secrets);
    }

    /// <summary>
    /// Checks a config built in code exactly as if it had been written to <paramref name="file"/> and loaded:
    /// the result holds the config with its profiles resolved, or every problem (positions refer to the
    /// text <see cref="SiteConfigWriter"/> produces).
    /// </summary>
    public static ConfigLoadResult Validate(SiteConfig config, SiteConfigLoadOptions? options = null, string file = "(built in code).yaml") =>
        Parse(SiteConfigWriter.ToYaml(config), file, options);

    /// <summary>
    /// Why the config file at <paramref name="path"/> could not be read, as every command says it: <c>cannot read config:
    /// no such file</c>, <c>permission denied</c>, or for a directory what to give instead (.NET reports reading a
    /// directory as "access denied", which sent people after file modes).
    /// </summary>
    public static string CannotRead(string path, Exception ex) =>
        "cannot read config: " + (Directory.Exists(path) ? "it is a directory (give the site config file, e.g. /etc/edgetwin/edgetwin.yaml)" : Reason(ex));

    /// <summary>Why a file given on the command line could not be read: no such file, permission denied, a directory.</summary>
    public static string ReadFailure(string path, Exception ex) => Directory.Exists(path) ? "it is a directory" : Reason(ex);

    internal static string Reason(Exception ex) => ex switch
    {
        FileNotFoundException or DirectoryNotFoundException => "no such file",
        UnauthorizedAccessException => "permission denied",
        _ => ex.Message,
    };

    private sealed class Builder(string file, SiteConfigLoadOptions options)
    {
        private static readonly Dictionary<string, SnmpVersion> Versions = new(StringComparer.Ordinal)
        {
            ["1"] = SnmpVersion.V1,
            ["2c"] = SnmpVersion.V2c,
            ["3"] = SnmpVersion.V3,
        };

        private static readonly Dictionary<string, SnmpSecurityLevel> Levels = new(StringComparer.Ordinal)
        {
            ["noAuthNoPriv"] = SnmpSecurityLevel.NoAuthNoPriv,
            ["authNoPriv"] = SnmpSecurityLevel.AuthNoPriv,
            ["authPriv"] = SnmpSecurityLevel.AuthPriv,
        };

        private static readonly Dictionary<string, SnmpAuthProtocol> AuthProtocols = new(StringComparer.Ordinal)
        {
            ["MD5"] = SnmpAuthProtocol.Md5,
            ["SHA"] = SnmpAuthProtocol.Sha1,
            ["SHA-224"] = SnmpAuthProtocol.Sha224,
            ["SHA-256"] = SnmpAuthProtocol.Sha256,
            ["SHA-384"] = SnmpAuthProtocol.Sha384,
            ["SHA-512"] = SnmpAuthProtocol.Sha512,
        };

        private static readonly Dictionary<string, SnmpPrivProtocol> PrivProtocols = new(StringComparer.Ordinal)
        {
            ["DES"] = SnmpPrivProtocol.Des,
            ["AES"] = SnmpPrivProtocol.Aes128,
            ["AES-128"] = SnmpPrivProtocol.Aes128,
            ["AES-192"] = SnmpPrivProtocol.Aes192,
            ["AES-256"] = SnmpPrivProtocol.Aes256,
            ["AES-192-C"] = SnmpPrivProtocol.Aes192Reeder,
            ["AES-256-C"] = SnmpPrivProtocol.Aes256Reeder,
        };

        private static readonly Dictionary<string, SerialParity> Parities = new(StringComparer.Ordinal)
        {
            ["N"] = SerialParity.None,
            ["E"] = SerialParity.Even,
            ["O"] = SerialParity.Odd,
            ["none"] = SerialParity.None,
            ["even"] = SerialParity.Even,
            ["odd"] = SerialParity.Odd,
        };

        private readonly string _baseDir = Path.GetDirectoryName(Path.GetFullPath(file)) ?? ".";
        private readonly List<(string Kind, string Id, ConfigNode Node)> _refs = [];
        private readonly Dictionary<string, ConfigNode> _rooms = new(StringComparer.Ordinal);
        private readonly Dictionary<string, ConfigNode> _racks = new(StringComparer.Ordinal);
        private readonly Dictionary<string, ConfigNode> _coolingUnits = new(StringComparer.Ordinal);
        private readonly Dictionary<string, ConfigNode> _powerIds = new(StringComparer.Ordinal);
        private readonly HashSet<string> _ups = new(StringComparer.Ordinal);
        private readonly HashSet<string> _pdus = new(StringComparer.Ordinal);
        private readonly Dictionary<string, DeviceProfile> _deviceProfiles = new(StringComparer.Ordinal);
        private (string Device, ConfigNode Node)? _facilityMeter;
        private readonly List<(string Room, ConfigNode List, IReadOnlyList<(string Value, ConfigNode Node)> Meters)> _roomMeters = [];
        private readonly List<(string Unit, string Device, ConfigNode Node)> _unitDevices = [];
        private readonly List<(string Device, string Unit, ConfigNode Node)> _locatedAtUnits = [];
        private PowerChainConfig? _power;
        private readonly Dictionary<string, ConfigNode> _lines = new(StringComparer.Ordinal);
        private readonly Dictionary<string, ConfigNode> _machines = new(StringComparer.Ordinal);
        private readonly Dictionary<string, ConfigNode> _devices = new(StringComparer.Ordinal);

        // The first enabled device on each rtu: path: one port is opened once, with one set of line settings.
        private readonly Dictionary<string, (string Device, SerialSettings Serial, bool Given, int Line)> _serialLines = new(StringComparer.Ordinal);
        private readonly Dictionary<int, (string Device, int Line)> _gpioPins = new();
        private readonly List<(int Pin, ConfigNode Node)> _gpioAddressNodes = [];
        private readonly Dictionary<string, (string Device, int Line)> _deviceTargets = new(StringComparer.Ordinal);

        // "rtu:/dev/ttyUSB0 3" → the enabled device at unit 3 on that line (serial port or serial gateway).
        private readonly Dictionary<string, (string Device, int Line)> _lineUnits = new(StringComparer.Ordinal);

        // A credentials entry that exists but is invalid already has its own problem; do not add "unknown".
        private readonly HashSet<string> _credentialKeys = new(StringComparer.Ordinal);

        public ConfigDiagnostics Diagnostics { get; } = new();

        public IReadOnlyList<string> ProfileDirectories { get; private set; } = [];

        public SiteConfig? Build(string yaml)
        {
            var root = YamlTree.Parse(yaml, file, Diagnostics);
            if (root is null)
            {
                return null;
            }

            if (root is ConfigScalar { IsNull: true })
            {
                // ConfigReader.For takes a null node as an absent section; a whole file of it ("~", "!: ") loaded as neither
                // a config nor a problem, and the agent stopped on an empty ConfigException (found by fuzzing).
                Diagnostics.Add(root, "expected a mapping of settings, got " + ConfigReader.Describe(root));
                return null;
            }

            var r = ConfigReader.For(root, Diagnostics);
            if (r is null)
            {
                return null;
            }

            var catalog = new ProfileCatalog(ResolveProfileDirs(r));
            ProfileDirectories = catalog.Directories;
            var credentials = ReadCredentials(r.Section("credentials"));
            var siteReader = r.Section("site", required: true);
            var site = siteReader is null ? null : ReadSite(siteReader);
            var profiles = new Dictionary<string, DeviceProfile>(StringComparer.Ordinal);
            var devices = ReadDevices(r.Sequence("devices", required: true), catalog, credentials, profiles);
            var outbox = ReadOutbox(r.Section("outbox"));
            var outboxPathNode = (r.Mapping["outbox"] as ConfigMapping)?["path"];
            var sections = new Dictionary<string, ConfigMapping>(StringComparer.Ordinal);
            foreach (var name in OwnedSections.Concat(options.SectionValidators.Select(v => v.Section)).Distinct(StringComparer.Ordinal))
            {
                // Reading the section marks it known; a section whose owner is not in this binary is still reported unknown.
                if (Raw(r, name) is { } mapping)
                {
                    sections[name] = mapping;
                }
            }

            foreach (var group in options.SectionValidators.GroupBy(v => v.Section, StringComparer.Ordinal))
            {
                if (!sections.TryGetValue(group.Key, out var section))
                {
                    continue;
                }

                if (group.Count() == 1)
                {
                    group.First().Validate(new ConfigReader(section, Diagnostics));
                    continue;
                }

                // A section several components share (twin: anomaly and multivariate) is read by each for its own keys
                // only, so none of them could report the rest: a misspelt or misplaced key (twin.anomali,
                // twin.thermal_twin) passed check and the agent ran without it. One reader for all, unknowns reported once.
                var shared = new ConfigReader(section, Diagnostics);
                foreach (var validator in group)
                {
                    validator.Validate(shared);
                }

                shared.ReportUnknownKeys();
            }

            r.ReportUnknownKeys();
            CheckReferences();
            CheckFacilityMeter();
            CheckRoomMeters(site);
            CheckCoolingUnitDevices();

            if (!Diagnostics.IsEmpty || site is null)
            {
                return null;
            }

            var config = new SiteConfig(site, devices, credentials, outbox)
            {
                ProfilesDir = r.Mapping["profiles_dir"] is ConfigScalar { IsNull: false } pd ? pd.Value : null,
                Profiles = profiles,
                Uplinks = sections.GetValueOrDefault("uplinks"),
                Alerts = sections.GetValueOrDefault("alerts"),
                Models = sections.GetValueOrDefault("models"),
                Sections = sections,
            };
            // A broken profile the site does not use is not this config's problem: its diagnostics are dropped.
            var references = new SiteReferences(config, () => catalog.LoadAll(new ConfigDiagnostics()));
            foreach (var validator in options.SectionValidators)
            {
                if (sections.TryGetValue(validator.Section, out var section))
                {
                    validator.ValidateReferences(new ConfigReader(section, Diagnostics), references);
                }
            }

            // Each section is read again to learn its state files; it has no problems of its own by now, so none are lost.
            StateSection.CheckFiles(
                options.SectionValidators.SelectMany(v => v.StateFiles(sections.TryGetValue(v.Section, out var s) ? new ConfigReader(s, new ConfigDiagnostics()) : null)),
                outbox.Path,
                outboxPathNode,
                Diagnostics);

            return Diagnostics.IsEmpty ? config : null;
        }

        private bool _profilesDirMissing;

        private List<string> ResolveProfileDirs(ConfigReader r)
        {
            var dirs = new List<string>();
            var configured = r.String("profiles_dir");
            if (options.ProfilesDir is not null)
            {
                // Said once: each device's "unknown profile … (no X.yaml in DIR)" buried a mistyped --profiles-dir.
                var full = Path.GetFullPath(options.ProfilesDir);
                if (!Directory.Exists(full))
                {
                    Diagnostics.Add(new SourceMark(file, 0, 0), string.Empty, $"--profiles-dir: directory '{full}' does not exist");
                    _profilesDirMissing = true;
                }

                dirs.Add(full);
            }
            else if (configured is not null)
            {
                var full = Path.GetFullPath(Path.Combine(_baseDir, configured));
                if (!Directory.Exists(full))
                {
                    Diagnostics.Add(r.Node("profiles_dir")!, $"directory '{full}' does not exist");
                }

                dirs.Add(full);
            }
            else
            {
                dirs.AddRange(ProfileCatalog.DefaultDirectories());
            }

            dirs.AddRange(options.ExtraProfileDirs.Select(Path.GetFullPath));
            return dirs;
        }

        private static ConfigMapping? Raw(ConfigReader r, string key) => r.Section(key)?.Mapping;

        /// <summary>Sections owned by other components, kept raw with their positions for their validators and readers.</summary>
        private static readonly string[] OwnedSections = ["uplinks", "alerts", "models"];

        // ---------------------------------------------------------------- credentials

        private Dictionary<string, CredentialsConfig> ReadCredentials(ConfigReader? r)
        {
            var result = new Dictionary<string, CredentialsConfig>(StringComparer.Ordinal);
            if (r is null)
            {
                return result;
            }

            foreach (var (name, node) in r.Mapping.Entries)
            {
                if (!ConfigReader.IsValidId(name))
                {
                    Diagnostics.Add(r.Mapping.KeyMark(name), node.Path, $"'{name}' is not a valid id (letters, digits, '_', '.', '-'; starting with a letter or digit)");
                    continue;
                }

                _credentialKeys.Add(name);
                var c = ConfigReader.For(node, Diagnostics);
                if (c is null)
                {
                    if (node is ConfigScalar { IsNull: true })
                    {
                        Diagnostics.Add(node, "expected a mapping, got nothing");
                    }

                    continue;
                }

                var cred = ReadCredential(name, c);
                c.ReportUnknownKeys();
                if (cred is not null)
                {
                    result[name] = cred;
                }
            }

            return result;
        }

        private CredentialsConfig? ReadCredential(string name, ConfigReader c)
        {
            // Taken before the reads: a bad 'auth' or 'priv' value reads as null and must not pass as "not given".
            var before = Diagnostics.Items.Count;
            var version = c.Enum("version", Versions, required: true);
            var (community, communityFile, communityGiven) = Secret(c, "community", passphrase: false);
            var user = c.String("user");
            var level = c.Enum("level", Levels);
            var auth = c.Enum("auth", AuthProtocols);
            var authPassword = Secret(c, "auth_password");
            var priv = c.Enum("priv", PrivProtocols);
            var privPassword = Secret(c, "priv_password");
            var context = c.String("context");
            if (version is null)
            {
                return null;
            }

            if (version != SnmpVersion.V3)
            {
                if (!communityGiven)
                {
                    Diagnostics.Add(c.Mapping.Mark, c.ChildPath("community"), "missing required key 'community' or 'community_file'");
                }

                foreach (var key in (string[])["user", "level", "auth", "auth_password", "auth_password_file", "priv", "priv_password", "priv_password_file", "context"])
                {
                    if (c.Node(key) is { } n)
                    {
                        Diagnostics.Add(c.Mapping.KeyMark(key), n.Path, $"'{key}' applies to SNMP version 3 only");
                    }
                }

                return Diagnostics.Items.Count != before || community is null ? null : new CredentialsConfig(name, version.Value) { Community = community, CommunityFile = communityFile };
            }

            foreach (var key in (string[])["community", "community_file"])
            {
                if (c.Node(key) is { } comm)
                {
                    Diagnostics.Add(c.Mapping.KeyMark(key), comm.Path, $"'{key}' applies to SNMP versions 1 and 2c only; version 3 uses user");
                }
            }

            if (user is null && !c.Has("user"))
            {
                c.ReportMissing("user");
            }

            // The level follows from what is configured when not given.
            // A protocol given with a bad value counts as given, so its one error is not followed by "not needed at this level".
            var authGiven = auth is not null || c.Node("auth") is not null;
            var privGiven = priv is not null || c.Node("priv") is not null;
            var effective = level ?? (authGiven && privGiven ? SnmpSecurityLevel.AuthPriv
                : authGiven ? SnmpSecurityLevel.AuthNoPriv : SnmpSecurityLevel.NoAuthNoPriv);
            var needsAuth = effective is SnmpSecurityLevel.AuthNoPriv or SnmpSecurityLevel.AuthPriv;
            var needsPriv = effective == SnmpSecurityLevel.AuthPriv;
            CheckUsm(c, "auth", needsAuth, auth is not null, authPassword, effective);
            CheckUsm(c, "priv", needsPriv, priv is not null, privPassword, effective);
            if (Diagnostics.Items.Count != before || user is null)
            {
                return null;
            }

            return new CredentialsConfig(name, SnmpVersion.V3)
            {
                User = user,
                Level = effective,
                Auth = needsAuth ? auth!.Value : SnmpAuthProtocol.None,
                AuthPassword = needsAuth ? authPassword.Value : null,
                AuthPasswordFile = needsAuth ? authPassword.File : null,
                Priv = needsPriv ? priv!.Value : SnmpPrivProtocol.None,
                PrivPassword = needsPriv ? privPassword.Value : null,
                PrivPasswordFile = needsPriv ? privPassword.File : null,
                Context = context,
            };
        }

        private void CheckUsm(ConfigReader c, string what, bool needed, bool protocolGiven, (string? Value, string? File, bool Given) password, SnmpSecurityLevel level)
        {
            var levelName = level switch
            {
                SnmpSecurityLevel.AuthPriv => "authPriv",
                SnmpSecurityLevel.AuthNoPriv => "authNoPriv",
                _ => "noAuthNoPriv",
            };
            if (needed)
            {
                if (!protocolGiven && c.Node(what) is null)
                {
                    Diagnostics.Add(c.Mapping.Mark, c.ChildPath(what), $"missing required key '{what}' (level {levelName} needs it)");
                }

                if (!password.Given)
                {
                    Diagnostics.Add(c.Mapping.Mark, c.ChildPath(what + "_password"), $"missing required key '{what}_password' or '{what}_password_file' (level {levelName} needs it)");
                }
            }
            else
            {
                foreach (var key in (string[])[what, what + "_password", what + "_password_file"])
                {
                    if (c.Node(key) is { } n)
                    {
                        Diagnostics.Add(c.Mapping.KeyMark(key), n.Path, $"'{key}' is not used at level {levelName}");
                    }
                }
            }
        }

        /// <summary>
        /// Reads <c>X</c> or <c>X_file</c> (never both); a file is read now and its trailing newline dropped. A USM
        /// <paramref name="passphrase"/> is held to RFC 3414's rules; a community only needs a non-empty file.
        /// </summary>
        private (string? Value, string? File, bool Given) Secret(ConfigReader c, string key, bool passphrase = true)
        {
            var inline = c.String(key);
            var fileKey = key + "_file";
            var path = c.String(fileKey);
            Diagnostics.Secrets.AddInline(c.Node(key));
            if (inline is not null && path is not null)
            {
                Diagnostics.Add(c.Node(fileKey)!, $"give either '{key}' or '{fileKey}', not both");
                return (null, null, true);
            }

            if (inline is not null)
            {
                if (passphrase)
                {
                    CheckPassphrase(c.Node(key)!, inline, key);
                }

                return (inline, null, true);
            }

            if (path is null)
            {
                return (null, null, c.Node(key) is not null || c.Node(fileKey) is not null);
            }

            var full = Path.GetFullPath(Path.Combine(_baseDir, path));
            string text;
            try
            {
                text = File.ReadAllText(full);
                Diagnostics.Secrets.CheckFile(full, c.Node(fileKey)!);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Diagnostics.Add(c.Node(fileKey)!, $"cannot read '{full}': {Reason(ex)}");
                return (null, path, true);
            }

            if (NotUtf8(full, text) is { } bad)
            {
                // Decoded, the secret would be another one, and the device would refuse every request with it.
                Diagnostics.Add(c.Node(fileKey)!, string.Create(CultureInfo.InvariantCulture, $"'{full}' line {bad.Line}: {bad.Message}"));
                return (null, path, true);
            }

            text = text.TrimEnd('\r', '\n');
            if (passphrase ? !CheckPassphrase(c.Node(fileKey)!, text, fileKey) : text.Length == 0)
            {
                if (!passphrase)
                {
                    Diagnostics.Add(c.Node(fileKey)!, $"the {key} file is empty");
                }

                return (null, path, true);
            }

            return (text, path, true);
        }

        private bool CheckPassphrase(ConfigNode node, string value, string key)
        {
            if (value.Length == 0)
            {
                Diagnostics.Add(node, key.EndsWith("_file", StringComparison.Ordinal) ? "the passphrase file is empty" : "the passphrase is empty");
                return false;
            }

            if (value.Length < 8)
            {
                // RFC 3414 §11.2: USM passphrases are at least 8 characters; agents reject shorter ones.
                Diagnostics.Add(node, "the passphrase is shorter than 8 characters (RFC 3414 requires at least 8)");
                return false;
            }

            return true;
        }

        // ---------------------------------------------------------------- topology

        private SiteTopology? ReadSite(ConfigReader r)
        {
            var id = r.Id("id", required: true);
            var gateway = r.Id("gateway_id", required: true);
            var rooms = List(r.Sequence("rooms"), ReadRoom);
            var cooling = List(r.Sequence("cooling_units"), ReadCoolingUnit);
            var powerReader = r.Section("power");
            var power = powerReader is null ? PowerChainConfig.Empty : ReadPower(powerReader);
            var lines = List(r.Sequence("lines"), ReadLine);
            r.ReportUnknownKeys();
            return id is null || gateway is null ? null : new SiteTopology(id, gateway, rooms, cooling, power, lines);
        }

        private List<T> List<T>(ConfigSequence? seq, Func<ConfigReader, int, T?> read)
            where T : class
        {
            var list = new List<T>();
            if (seq is null)
            {
                return list;
            }

            for (var i = 0; i < seq.Items.Count; i++)
            {
                var item = seq.Items[i];
                var r = ConfigReader.For(item, Diagnostics);
                if (r is null)
                {
                    if (item is ConfigScalar { IsNull: true })
                    {
                        Diagnostics.Add(item, "expected a mapping, got nothing");
                    }

                    continue;
                }

                var value = read(r, i);
                r.ReportUnknownKeys();
                if (value is not null)
                {
                    list.Add(value);
                }
            }

            return list;
        }

        private string? UniqueId(ConfigReader r, Dictionary<string, ConfigNode> seen, string what)
        {
            var id = r.Id("id", required: true);
            if (id is null)
            {
                return null;
            }

            var node = r.Node("id")!;
            if (!seen.TryAdd(id, node))
            {
                Diagnostics.Add(node, $"duplicate {what} id '{id}' (first defined at line {seen[id].Mark.Line.ToString(CultureInfo.InvariantCulture)})");
                return null;
            }

            return id;
        }

        private RoomConfig? ReadRoom(ConfigReader r, int index)
        {
            var id = UniqueId(r, _rooms, "room");
            var volume = r.Double("volume_m3", positive: true);
            var rowIds = new Dictionary<string, ConfigNode>(StringComparer.Ordinal);
            var rows = List(r.Sequence("rows"), (rr, _) => ReadRow(rr, rowIds));
            // The room's own non-IT sub-meters: infrastructure power of its partial PUE (src/EdgeTwin.Twin/Power/README.md).
            IReadOnlyList<string>? meters = null;
            if (r.Section("power") is { } power)
            {
                if (power.IdList("infrastructure_meters") is { } list)
                {
                    foreach (var (device, node) in list)
                    {
                        _refs.Add(("device", device, node));
                    }

                    meters = [.. list.Select(m => m.Value)];
                    if (id is not null && list.Count > 0)
                    {
                        _roomMeters.Add((id, power.Node("infrastructure_meters")!, list));
                    }
                }

                power.ReportUnknownKeys();
            }

            return id is null ? null : new RoomConfig(id, volume, rows, meters);
        }

        private RowConfig? ReadRow(ConfigReader r, Dictionary<string, ConfigNode> rowIds)
        {
            var id = UniqueId(r, rowIds, "row");
            var positions = new Dictionary<int, ConfigNode>();
            var racks = List(r.Sequence("racks"), (rr, i) => ReadRack(rr, i, positions));
            return id is null ? null : new RowConfig(id, racks);
        }

        private RackConfig? ReadRack(ConfigReader r, int index, Dictionary<int, ConfigNode> positions)
        {
            var id = UniqueId(r, _racks, "rack");
            var position = r.Int("position", min: 1, max: 10_000) ?? (r.Has("position") ? null : index + 1);
            if (position is not null && r.Node("position") is { } posNode && !positions.TryAdd(position.Value, posNode))
            {
                Diagnostics.Add(posNode, $"position {position.Value.ToString(CultureInfo.InvariantCulture)} is already taken in this row (line {positions[position.Value].Mark.Line.ToString(CultureInfo.InvariantCulture)})");
            }

            var budget = r.Double("power_budget_kw", required: true, positive: true, max: 1000);
            var feeds = r.IdList("feeds") ?? [];
            foreach (var (feed, node) in feeds)
            {
                _refs.Add(("PDU", feed, node));
            }

            var servers = r.Int("servers", min: 0, max: 1000) ?? 0;
            return id is null || position is null || budget is null ? null : new RackConfig(id, position.Value, budget.Value, [.. feeds.Select(f => f.Value)], servers);
        }

        private CoolingUnitConfig? ReadCoolingUnit(ConfigReader r, int index)
        {
            var id = UniqueId(r, _coolingUnits, "cooling unit");
            var room = Ref(r, "room", "room", required: true);
            var capacity = r.Double("capacity_kw", required: true, positive: true);
            var serves = r.IdList("serves") ?? [];
            foreach (var (rack, node) in serves)
            {
                _refs.Add(("rack", rack, node));
            }

            var device = DeviceRef(r, "device");
            if (id is not null && device is not null)
            {
                _unitDevices.Add((id, device, r.Node("device")!));
            }

            return id is null || room is null || capacity is null ? null : new CoolingUnitConfig(id, room, capacity.Value, [.. serves.Select(s => s.Value)], device);
        }

        private PowerChainConfig ReadPower(ConfigReader r)
        {
            var ups = List(r.Sequence("ups"), (u, _) =>
            {
                var id = UniqueId(u, _powerIds, "power chain");
                var device = DeviceRef(u, "device");
                var capacity = u.Double("capacity_kw", required: true, positive: true);
                if (id is not null)
                {
                    _ups.Add(id);
                }

                return id is null || capacity is null ? null : new UpsConfig(id, device, capacity.Value);
            });
            var pdus = List(r.Sequence("pdus"), (p, _) =>
            {
                var id = UniqueId(p, _powerIds, "power chain");
                var device = DeviceRef(p, "device");
                var upstream = p.Id("upstream");
                if (upstream is not null)
                {
                    _refs.Add(("UPS", upstream, p.Node("upstream")!));
                }

                var breaker = p.Double("breaker_a", required: true, positive: true, max: 10_000);
                var phases = p.Int("phases", min: 1, max: 3);
                if (phases == 2)
                {
                    Diagnostics.Add(p.Node("phases")!, "phases must be 1 or 3, got 2");
                    phases = null;
                }

                var voltage = p.Double("voltage_v", positive: true, max: 1000) ?? 230;
                if (phases == 3 && p.Has("voltage_v") && LineToLineVoltages.Contains(voltage) && breaker is not null)
                {
                    // The power twin rates a 3-phase feed as breaker × V × 3: with the line-to-line voltage every
                    // headroom on the feed is overstated by √3 (a 16 A 400 V feed read as 18.2 kW, not 10.5 kW).
                    var given = breaker.Value * voltage * 3 * 0.95 / 1000;
                    var meant = breaker.Value * voltage / Math.Sqrt(3) * 3 * 0.95 / 1000;
                    Diagnostics.AddWarning(p.Node("voltage_v")!, string.Create(CultureInfo.InvariantCulture, $"{voltage:0.#} V is a line-to-line voltage, but voltage_v of a 3-phase feed is line-to-neutral ({voltage / Math.Sqrt(3):0} V here); as written the feed is rated {given:0.0} kW instead of {meant:0.0} kW (√3 too high)"));
                }

                if (id is not null)
                {
                    _pdus.Add(id);
                }

                return id is null || breaker is null || (phases is null && p.Has("phases")) ? null : new PduConfig(id, device, upstream, breaker.Value, phases ?? 1, voltage);
            });
            // The utility-side meter of the whole site: facility power for the live PUE (src/EdgeTwin.Twin/Power/README.md).
            var facilityMeter = DeviceRef(r, "facility_meter");
            if (facilityMeter is not null)
            {
                _facilityMeter = (facilityMeter, r.Node("facility_meter")!);
            }

            r.ReportUnknownKeys();
            return _power = new PowerChainConfig(ups, pdus, facilityMeter);
        }

        /// <summary>Line-to-line voltages of 3-phase supplies that are no line-to-neutral voltage anywhere.</summary>
        private static readonly HashSet<double> LineToLineVoltages = [200, 208, 380, 400, 415, 440, 480, 600, 690];

        private LineConfig? ReadLine(ConfigReader r, int index)
        {
            var id = UniqueId(r, _lines, "line");
            var machines = List(r.Sequence("machines"), (m, _) =>
            {
                var mid = UniqueId(m, _machines, "machine");
                var device = DeviceRef(m, "device");
                return mid is null ? null : new MachineConfig(mid, device);
            });
            return id is null ? null : new LineConfig(id, machines);
        }

        private string? Ref(ConfigReader r, string key, string kind, bool required = false)
        {
            var id = r.Id(key, required);
            if (id is not null)
            {
                _refs.Add((kind, id, r.Node(key)!));
            }

            return id;
        }

        private string? DeviceRef(ConfigReader r, string key)
        {
            var id = r.Id(key);
            if (id is not null)
            {
                _refs.Add(("device", id, r.Node(key)!));
            }

            return id;
        }

        /// <summary>
        /// The facility meter must read the site's total real power (role <c>meter.power_total</c> in W, kW or MW): the PUE
        /// stage binds nothing else, so a meter without it would give no PUE, silently.
        /// </summary>
        private void CheckFacilityMeter()
        {
            if (_facilityMeter is not { } meter || !_deviceProfiles.TryGetValue(meter.Device, out var profile))
            {
                return; // an unknown device is reported by CheckReferences
            }

            if (MeterProblem(meter.Device, profile, "the PUE", "the PUE needs the facility's total real power; name a utility meter") is { } problem)
            {
                Diagnostics.Add(meter.Node, problem);
            }
            else if (_power?.PueItPower(_deviceProfiles.GetValueOrDefault) is { Category: 0 } none)
            {
                // The agent starts, but publishes no PUE: say so now rather than only in its start log.
                Diagnostics.AddWarning(meter.Node, $"no PUE will be computed: the IT power needs every UPS's output ({none.UpsShort}) or every PDU's ({none.PduShort}); a partial sum would overstate it");
            }
        }

        /// <summary>Why a device cannot be a meter of a (partial) PUE: no <c>meter.power_total</c> in W, kW or MW; null when it can.</summary>
        private static string? MeterProblem(string device, DeviceProfile profile, string what, string needs)
        {
            var total = profile.AllMetrics.Where(m => m.Role == PowerChainConfig.FacilityPowerRole).ToList();
            if (total.Count == 0)
            {
                return $"device '{device}' (profile '{profile.Id}') has no metric with role {PowerChainConfig.FacilityPowerRole}: {needs} whose profile reads it (e.g. eastron-sdm630, schneider-pm5300)";
            }

            return total.Any(m => PowerChainConfig.IsPowerUnit(m.Unit)) ? null
                : $"device '{device}' (profile '{profile.Id}'): {PowerChainConfig.FacilityPowerRole} metric '{total[0].Name}' is in '{total[0].Unit}', not W, kW or MW: {what} cannot use it";
        }

        /// <summary>
        /// A room's infrastructure meters (<c>rooms[].power.infrastructure_meters</c>) must each read total real power, and
        /// be counted once: a meter listed twice, in two rooms, or the site's facility meter would be added twice (or add
        /// the whole site to one room). A room whose IT power cannot be summed gets a warning: the agent starts, but
        /// publishes no pPUE for it.
        /// </summary>
        private void CheckRoomMeters(SiteTopology? site)
        {
            var owner = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (room, listNode, meters) in _roomMeters)
            {
                var broken = false;
                foreach (var (device, node) in meters)
                {
                    if (_facilityMeter is { } facility && facility.Device == device)
                    {
                        Diagnostics.Add(node, $"'{device}' is the site's facility_meter, which reads the whole site: a room's infrastructure meter reads only the room's own non-IT loads (its cooling units' feeds, lighting)");
                        broken = true;
                    }
                    else if (!owner.TryAdd(device, room))
                    {
                        Diagnostics.Add(node, owner[device] == room
                            ? $"'{device}' is listed twice: its power would be counted twice"
                            : $"'{device}' is already an infrastructure meter of room {owner[device]}: a sub-meter shared by two rooms would be counted in both; list it in one room, or meter each room's feeds");
                        broken = true;
                    }
                    else if (_deviceProfiles.TryGetValue(device, out var profile) && MeterProblem(device, profile, "the room's partial PUE", "the room's partial PUE needs the total real power of the room's non-IT loads; name a sub-meter") is { } problem)
                    {
                        Diagnostics.Add(node, problem);
                        broken = true;
                    }
                    else if (!_deviceProfiles.ContainsKey(device))
                    {
                        broken = true; // an unknown device is reported by CheckReferences
                    }
                }

                if (!broken && site?.Rooms.FirstOrDefault(r => r.Id == room) is { } config && site.RoomItPower(config, _deviceProfiles.GetValueOrDefault) is { Devices: null } none)
                {
                    // The agent starts, but publishes no pPUE for the room: say so now rather than only in its start log.
                    Diagnostics.AddWarning(listNode, $"no partial PUE will be computed for room {room}: its IT power needs every PDU feeding its racks to read pdu.power ({none.Short}); a partial sum would overstate it");
                }
            }
        }

        /// <summary>
        /// A device reports one cooling unit (<see cref="SiteConfig.CoolingUnitOf"/>): the thermal twin binds its
        /// <c>crac.*</c> series to one unit. Before, a device named by two units, or by one unit while its
        /// <c>location.cooling_unit</c> named another, passed check; the twin bound it to one of them, set-point control
        /// opened channels on it for both, and check counted it as watched if either was.
        /// </summary>
        private void CheckCoolingUnitDevices()
        {
            var unitOf = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (unit, device, node) in _unitDevices)
            {
                if (!unitOf.TryAdd(device, unit))
                {
                    Diagnostics.Add(node, $"device '{device}' is already the device of cooling unit '{unitOf[device]}': a device reports one cooling unit; read each unit as a device of its own (a BMS gateway serving several: one device entry per unit, e.g. per unit id)");
                }
            }

            foreach (var (device, unit, node) in _locatedAtUnits)
            {
                if (unitOf.TryGetValue(device, out var named) && named != unit)
                {
                    Diagnostics.Add(node, $"device '{device}' is at cooling unit '{unit}', but cooling unit '{named}' names it as its device: a device reports one cooling unit; drop one of the two");
                }
            }
        }

        /// <summary>References are checked after everything is read, so order in the file does not matter.</summary>
        private void CheckReferences()
        {
            foreach (var (kind, id, node) in _refs)
            {
                ICollection<string> known = kind switch
                {
                    "PDU" => _pdus,
                    "UPS" => _ups,
                    "rack" => _racks.Keys,
                    "room" => _rooms.Keys,
                    "cooling unit" => _coolingUnits.Keys,
                    "machine" => _machines.Keys,
                    "device" => _devices.Keys,
                    _ => throw new InvalidOperationException(kind),
                };
                if (!known.Contains(id))
                {
                    Diagnostics.Add(node, $"unknown {kind} '{id}'{KnownList(known)}");
                }
            }
        }

        private static string KnownList(IEnumerable<string> known)
        {
            var all = known.Order(StringComparer.Ordinal).ToList();
            if (all.Count == 0)
            {
                return " (none defined)";
            }

            return all.Count <= 8
                ? $" (defined: {string.Join(", ", all)})"
                : $" (defined: {string.Join(", ", all.Take(8))}, … {(all.Count - 8).ToString(CultureInfo.InvariantCulture)} more)";
        }

        // ---------------------------------------------------------------- devices

        private List<DeviceConfig> ReadDevices(ConfigSequence? seq, ProfileCatalog catalog, Dictionary<string, CredentialsConfig> credentials, Dictionary<string, DeviceProfile> profiles)
        {
            // Device ids first, so topology references resolve regardless of order.
            var devices = List(seq, (r, _) => ReadDevice(r, catalog, credentials, profiles));
            CheckGpioAgainstBuses(devices);
            return devices;
        }

        /// <summary>
        /// A GPIO input on a line a bus of the same site uses (Raspberry Pi header, BCM numbering): GPIO 2/3 are I2C bus
        /// 1's SDA/SCL, GPIO 4 the w1-gpio overlay's default 1-Wire pin. The open failed at start ("device or resource
        /// busy") or the input took the bus's line; both passed check. Warnings: the 1-Wire pin can be moved and other
        /// boards number their lines differently.
        /// </summary>
        private void CheckGpioAgainstBuses(List<DeviceConfig> devices)
        {
            var enabled = devices.Where(d => d.Enabled).ToList();
            var i2c1 = enabled.FirstOrDefault(d => d.Address.Scheme == AddressScheme.I2c && d.Address.Bus == 1);
            var w1 = enabled.FirstOrDefault(d => d.Address.Scheme == AddressScheme.OneWire);
            foreach (var (pin, node) in _gpioAddressNodes)
            {
                if (pin is 2 or 3 && i2c1 is not null)
                {
                    Diagnostics.AddWarning(node, $"GPIO {pin} is {(pin == 2 ? "SDA" : "SCL")} of I2C bus 1 (header pin {(pin == 2 ? 3 : 5)}), which device '{i2c1.Id}' uses: give this input another pin (gpio: numbers are BCM, not header pins)");
                }
                else if (pin == 4 && w1 is not null)
                {
                    Diagnostics.AddWarning(node, $"GPIO 4 is the default 1-Wire pin of the w1-gpio overlay, which device '{w1.Id}' needs: give this input another pin, or move the bus with dtoverlay=w1-gpio,gpiopin=N");
                }
            }
        }

        // A device's max_series above this is no cap on a gateway's memory (a million series of per-stage state).
        private const int MaxSeriesLimit = 1_000_000;

        private DeviceConfig? ReadDevice(ConfigReader r, ProfileCatalog catalog, Dictionary<string, CredentialsConfig> credentials, Dictionary<string, DeviceProfile> profiles)
        {
            var before = Diagnostics.Items.Count;
            var id = UniqueId(r, _devices, "device");
            var profileId = r.Id("profile", required: true);
            DeviceProfile? profile = null;
            if (profileId is not null)
            {
                var profileErrors = new ConfigDiagnostics();
                profile = catalog.Get(profileId, profileErrors, out var found);
                Diagnostics.AddAll(profileErrors);
                if (!found)
                {
                    // A missing --profiles-dir is said once, not for every device.
                    if (!_profilesDirMissing)
                    {
                        Diagnostics.Add(r.Node("profile")!, $"unknown profile '{profileId}' (no {profileId}.yaml in {string.Join(", ", catalog.Directories)})");
                    }
                }
                else if (profile is null)
                {
                    Diagnostics.Add(r.Node("profile")!, $"profile '{profileId}' is invalid (see the problems in its file)");
                }
                else
                {
                    profiles[profileId] = profile;
                    if (id is not null)
                    {
                        _deviceProfiles[id] = profile;
                    }
                }
            }

            DeviceAddress? address = null;
            var addressText = r.String("address", required: true);
            if (addressText is not null)
            {
                if (!DeviceAddress.TryParse(addressText, out address, out var error))
                {
                    Diagnostics.Add(r.Node("address")!, error);
                }
                else if (profile is not null && !Fits(address.Scheme, profile.Protocol))
                {
                    Diagnostics.Add(r.Node("address")!, $"address scheme '{SchemeName(address.Scheme)}' does not fit profile '{profile.Id}' (protocol {DeviceProfileLoader.Name(DeviceProfileLoader.Protocols, profile.Protocol)} needs {SchemesFor(profile.Protocol)})");
                    address = null;
                }
                else if (profile?.Sensor is { } sensor)
                {
                    CheckSensorAddress(r.Node("address")!, sensor.Driver, address);
                }
            }

            var protocol = profile?.Protocol;
            var credName = r.Id("credentials");
            if (protocol == DeviceProtocol.Snmp && credName is null && !r.Has("credentials"))
            {
                Diagnostics.Add(r.Mapping.Mark, r.ChildPath("credentials"), "missing required key 'credentials' (SNMP devices need credentials)");
            }
            else if (protocol is not null and not DeviceProtocol.Snmp && r.Node("credentials") is { } cn)
            {
                Diagnostics.Add(cn, "credentials apply to SNMP devices only");
            }
            else if (credName is not null && !credentials.ContainsKey(credName) && !HasCredentialsKey(credName))
            {
                Diagnostics.Add(r.Node("credentials")!, $"unknown credentials '{credName}'{KnownList(credentials.Keys)}");
            }

            byte? unitId = null;
            var unitNode = r.Node("unit_id");
            var isRtu = address?.Scheme is AddressScheme.Rtu or AddressScheme.RtuTcp;
            if (unitNode is not null)
            {
                var u = r.Int("unit_id", min: isRtu ? 1 : 0, max: isRtu ? 247 : 255);
                if (protocol is not null and not DeviceProtocol.Modbus)
                {
                    Diagnostics.Add(unitNode, "unit_id applies to Modbus devices only");
                }

                unitId = (byte?)u;
            }
            else if (protocol == DeviceProtocol.Modbus)
            {
                unitId = 1;
            }

            SerialSettings? serial = null;
            var serialNode = r.Node("serial");
            if (serialNode is not null)
            {
                if (address is not null && address.Scheme != AddressScheme.Rtu)
                {
                    Diagnostics.Add(serialNode, "serial settings apply to rtu: addresses only");
                }

                serial = ReadSerial(ConfigReader.For(serialNode, Diagnostics));
            }
            else if (address?.Scheme == AddressScheme.Rtu)
            {
                serial = new SerialSettings();
            }

            var interval = r.Duration("interval", min: TimeSpan.FromMilliseconds(100)) ?? DeviceConfig.DefaultInterval;
            var intervalTooLong = interval > DeviceConfig.MaxInterval;
            if (intervalTooLong)
            {
                // 10d for 10s polled nothing for days without a word, and past 49.7 days the scheduler's timer refuses the wait.
                Diagnostics.Add(r.Node("interval")!, $"must be at most {Durations.Format(DeviceConfig.MaxInterval)}, got '{((ConfigScalar)r.Node("interval")!).Value}' (d is days; s is seconds, m minutes)");
                interval = DeviceConfig.MaxInterval;
            }
            var timeoutGiven = r.Duration("timeout", min: TimeSpan.FromMilliseconds(10));
            var timeout = timeoutGiven ?? (interval <= DeviceConfig.DefaultTimeout ? interval / 2 : DeviceConfig.DefaultTimeout);
            if (timeoutGiven is not null && timeoutGiven.Value >= interval && !intervalTooLong)
            {
                Diagnostics.Add(r.Node("timeout")!, $"timeout ({Durations.Format(timeoutGiven.Value)}) must be shorter than the interval ({Durations.Format(interval)})");
            }

            var maxSeries = r.Int("max_series", min: 1, max: MaxSeriesLimit) ?? DeviceSeriesBudget.DefaultMaxSeries;
            var rowRetention = r.Duration("row_retention", min: TimeSpan.FromSeconds(1)) ?? DeviceConfig.DefaultRowRetention;
            var locationReader = r.Section("location");
            var location = ReadLocation(locationReader);
            if (id is not null && location.CoolingUnit is { } atUnit)
            {
                _locatedAtUnits.Add((id, atUnit, locationReader!.Node("cooling_unit")!));
            }

            var enabled = r.Bool("enabled") ?? true;
            if (Diagnostics.Items.Count != before || id is null || profileId is null || address is null)
            {
                return null;
            }

            if (enabled && address.Scheme == AddressScheme.Rtu)
            {
                CheckSerialLine(r, id, address.Path!, serial ?? new SerialSettings(), serialNode is not null);
            }

            if (enabled && address.Pin is { } pin)
            {
                // One process holds a GPIO line once: the second device's open failed at start, or both read one
                // contact under two meanings (a leak sensor reporting the door). It passed check before.
                var addressNode = r.Node("address")!;
                if (_gpioPins.TryGetValue(pin, out var owner))
                {
                    Diagnostics.Add(addressNode, $"GPIO pin {pin} is already read by device '{owner.Device}' (line {owner.Line.ToString(CultureInfo.InvariantCulture)}); each GPIO device needs a pin of its own");
                }
                else
                {
                    _gpioPins[pin] = (id, addressNode.Mark.Line);
                    _gpioAddressNodes.Add((pin, addressNode));
                }
            }

            bool unitTaken = false;
            if (enabled && unitId is { } unit && address.Scheme is AddressScheme.Rtu or AddressScheme.RtuTcp)
            {
                // One unit id is one slave on a multi-drop line: two devices at it (VFDs left at the factory address 1)
                // both answer every request and garble each other, or one device is read under the other's id. Another
                // profile does not make it another slave, so unlike the copied-line warning below this is an error.
                var node = unitNode ?? r.Node("address")!;
                var lineKey = $"{address} {unit.ToString(CultureInfo.InvariantCulture)}";
                if (_lineUnits.TryGetValue(lineKey, out var holder))
                {
                    unitTaken = true;
                    var given = unitNode is null ? " (the default: no unit_id key)" : "";
                    var line = address.Scheme == AddressScheme.Rtu ? $"serial line {address.Path}" : $"serial gateway {address}";
                    Diagnostics.Add(node, $"device '{id}': unit_id {unit.ToString(CultureInfo.InvariantCulture)}{given} is already used by device '{holder.Device}' (line {holder.Line.ToString(CultureInfo.InvariantCulture)}) on the same {line}; each device on one RS-485 line needs its own unit id (two slaves at one id both answer and garble each other's answers)");
                }
                else
                {
                    _lineUnits[lineKey] = (id, node.Mark.Line);
                }
            }

            if (enabled && address.Pin is null && !unitTaken)
            {
                // A device line copied with only its id changed: the unit is polled twice and its series stored under two
                // ids. A warning, as two profiles on one address (UPS-MIB beside the vendor MIB) are normal.
                // Other credentials (v3 beside v2c while migrating) are taken as meant.
                var key = $"{address} {profileId} {unitId?.ToString(CultureInfo.InvariantCulture)} {credName}";
                var addressNode = r.Node("address")!;
                if (_deviceTargets.TryGetValue(key, out var twin))
                {
                    Diagnostics.AddWarning(addressNode, $"device '{id}' reads the same unit as device '{twin.Device}' (line {twin.Line.ToString(CultureInfo.InvariantCulture)}): same address {address}{(unitId is null ? "" : $", unit_id {unitId.Value.ToString(CultureInfo.InvariantCulture)}")} and profile {profileId}; it is polled twice and stored under both ids (a copied line whose address was not changed?)");
                }
                else
                {
                    _deviceTargets[key] = (id, addressNode.Mark.Line);
                }
            }

            return new DeviceConfig(id, profileId, address)
            {
                Credentials = credName,
                UnitId = unitId,
                Serial = serial,
                Interval = interval,
                Timeout = timeout,
                MaxSeries = maxSeries,
                RowRetention = rowRetention,
                Location = location,
                Enabled = enabled,
            };
        }

        /// <summary>
        /// What a chip can answer at, checked against the address: a DS18S20 id (family 10) on the ds18b20 driver read
        /// as "t= disagrees with scratchpad" at every poll, and an I2C address a BME280/SHT3x cannot have (i2c:1:76 is
        /// decimal 76 = 0x4c, not the 0x76 i2cdetect printed) only as NACKs once installed.
        /// </summary>
        private void CheckSensorAddress(ConfigNode node, SensorDriver driver, DeviceAddress address)
        {
            // Both are protocol system: the scheme alone let `cpu` pass for linux-host (and `host` for the thermal
            // profile), and the agent refused the device only when it built the source.
            if ((driver == SensorDriver.Host) != (address.Scheme == AddressScheme.Host))
            {
                Diagnostics.Add(node, driver == SensorDriver.Host
                    ? $"driver host reads the gateway itself: its address is 'host', not '{address}'"
                    : $"'host' is the address of the host driver's profiles (linux-host); driver {DeviceProfileLoader.Name(DeviceProfileLoader.Drivers, driver)} reads cpu or cpu:/sys/class/thermal/thermal_zoneN/temp");
                return;
            }

            if (driver == SensorDriver.Ds18b20 && address.Path is { Length: > 2 } id)
            {
                // DS18B20, DS1822, DS1825 and DS28EA00 share the 12-bit scratchpad format; the DS18S20/DS1820 does not.
                var family = id[..2];
                if (family is not ("28" or "22" or "3b" or "42"))
                {
                    Diagnostics.Add(node, family == "10"
                        ? $"'{id}' is a DS18S20/DS1820 (family 10, 9-bit scratchpad), which the ds18b20 driver cannot read; DS18B20 ids start with 28-"
                        : $"'{id}' has 1-Wire family {family}, not a DS18B20-type thermometer (family 28, or 22/3b/42); `ls /sys/bus/w1/devices` on the gateway lists the ids on the bus");
                }
            }

            int[] chip = driver switch
            {
                SensorDriver.Bme280 => [0x76, 0x77],
                SensorDriver.Sht3x => [0x44, 0x45],
                _ => [],
            };
            if (chip.Length > 0 && address.I2cAddress is { } a && !chip.Contains(a))
            {
                var name = driver == SensorDriver.Bme280 ? "a BME280" : "an SHT3x";
                var pins = driver == SensorDriver.Bme280 ? "SDO to GND / VDD" : "ADDR to GND / VDD";
                var text = ((ConfigScalar)node).Value;
                var asHex = text[(text.LastIndexOf(':') + 1)..];
                var misread = !asHex.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
                    && int.TryParse(asHex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var h) && chip.Contains(h)
                    ? string.Create(CultureInfo.InvariantCulture, $"; '{asHex}' without 0x is decimal ({a} = 0x{a:x2}), and i2cdetect prints hex: write i2c:{address.Bus}:0x{h:x2}")
                    : string.Empty;
                Diagnostics.AddWarning(node, string.Create(CultureInfo.InvariantCulture,
                    $"{name} answers only at 0x{chip[0]:x2} or 0x{chip[1]:x2} ({pins}), not at 0x{a:x2}{misread}"));
            }
        }

        private bool HasCredentialsKey(string name) => _credentialKeys.Contains(name);

        /// <summary>
        /// Devices on one rtu: path share one open port, so they must agree on its line settings; the agent's start
        /// would refuse the second one. Reported at the second device's serial key (its address when it has none).
        /// Disabled devices open nothing and are not compared.
        /// </summary>
        private void CheckSerialLine(ConfigReader r, string id, string path, SerialSettings serial, bool given)
        {
            var line = (given ? r.Mapping.KeyMark("serial") : r.Node("address")!.Mark).Line;
            if (!_serialLines.TryGetValue(path, out var first))
            {
                _serialLines[path] = (id, serial, given, line);
                return;
            }

            if (first.Serial == serial)
            {
                return;
            }

            var mine = given ? serial.ToString() : $"{serial} (no serial key: the defaults)";
            var at = first.Line.ToString(CultureInfo.InvariantCulture);
            var theirs = first.Given ? $"{first.Serial}, its serial key at line {at}" : $"{first.Serial}, the defaults: no serial key, its address at line {at}";
            var message = $"device '{id}': serial settings {mine} differ from device '{first.Device}' on the same port {path} ({theirs}); devices on one serial line must use the same baud, parity, stop and data bits";
            if (given)
            {
                Diagnostics.Add(r.Mapping.KeyMark("serial"), r.ChildPath("serial"), message);
            }
            else
            {
                Diagnostics.Add(r.Node("address")!, message);
            }
        }

        private static readonly HashSet<int> StandardBauds =
        [
            300, 600, 1200, 1800, 2400, 4800, 7200, 9600, 14400, 19200, 28800, 38400, 56000, 57600, 76800, 115200, 128000, 153600,
            230400, 250000, 256000, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000,
        ];

        private SerialSettings? ReadSerial(ConfigReader? r)
        {
            if (r is null)
            {
                return null;
            }

            var baud = r.Int("baud", min: 300, max: 4_000_000) ?? 9600;
            if (r.Node("baud") is { } baudNode && !StandardBauds.Contains(baud))
            {
                // The port opens at any rate the driver can make, so a typo (9601) only shows as every poll timing out.
                Diagnostics.AddWarning(baudNode, $"{baud} is not a standard baud rate (Modbus devices use 1200, 2400, 4800, 9600, 19200, 38400, 57600 or 115200); check the device's setting");
            }

            var parity = r.Enum("parity", Parities) ?? SerialParity.Even;
            var stop = r.Int("stop_bits", min: 1, max: 2) ?? 1;
            var data = r.Int("data_bits", min: 7, max: 8) ?? 8;
            r.ReportUnknownKeys();
            return new SerialSettings(baud, parity, stop, data);
        }

        private DeviceLocation ReadLocation(ConfigReader? r)
        {
            if (r is null)
            {
                return DeviceLocation.None;
            }

            var rack = Ref(r, "rack", "rack");
            var unit = Ref(r, "cooling_unit", "cooling unit");
            var machine = Ref(r, "machine", "machine");
            var room = Ref(r, "room", "room");
            r.ReportUnknownKeys();
            var count = (rack is null ? 0 : 1) + (unit is null ? 0 : 1) + (machine is null ? 0 : 1) + (room is null ? 0 : 1);
            if (count > 1)
            {
                Diagnostics.Add(r.Mapping, "give one of rack, cooling_unit, machine or room");
            }
            else if (count == 0 && r.Mapping.Entries.Count == 0)
            {
                Diagnostics.Add(r.Mapping, "give one of rack, cooling_unit, machine or room (or leave location out)");
            }

            return new DeviceLocation(rack, unit, machine, room);
        }

        private static string? OutboxPathProblem(string path)
        {
            if (path.Length == 0 || path.Contains('\0', StringComparison.Ordinal))
            {
                return "expected the outbox's file, e.g. /var/lib/edgetwin/outbox.db";
            }

            if (Directory.Exists(path))
            {
                return $"'{path}' is a directory; give the outbox's file, e.g. {Path.Combine(path, "outbox.db")}";
            }

            var parent = Path.GetDirectoryName(Path.GetFullPath(path));
            if (parent is null)
            {
                return null;
            }

            // The agent creates missing directories, so what counts is the nearest one that exists, and its file system.
            var existing = FileSystemFacts.NearestExisting(parent);
            if (existing is not null && File.Exists(existing))
            {
                return $"'{existing}' is a file, not a directory: the outbox's file cannot go in it";
            }

            if (existing is not null && FileSystemFacts.Of(existing) is { } fs)
            {
                if (fs.Pseudo)
                {
                    return $"'{existing}' is on the kernel's {fs.Type} file system, where the outbox cannot be created; give a path on the gateway's disk, e.g. /var/lib/edgetwin/outbox.db";
                }

                // An outbox that exists was written there: the storage failed since (a restart after the card went read-only),
                // where the agent goes on in memory and raises the alarm (a warning below); refusing left the site unwatched.
                if (fs.ReadOnly && !File.Exists(path))
                {
                    return $"'{existing}' is on a file system mounted read-only ({fs.Type}), where the outbox cannot be written; give a path on a writable disk, e.g. /var/lib/edgetwin/outbox.db";
                }
            }

            return null;
        }

        /// <summary>An outbox in RAM works until the first power cut or reboot, which takes the backlog with it.</summary>
        private static string? OutboxPathWarning(string path)
        {
            if (File.Exists(path) && Path.GetDirectoryName(Path.GetFullPath(path)) is { } dir && FileSystemFacts.Of(dir) is { ReadOnly: true } readOnly)
            {
                return $"'{dir}' is on a file system mounted read-only ({readOnly.Type}) although the outbox was written there: the storage failed (or was remounted read-only by hand). The agent goes on in memory (outbox.memory_budget_mb) and raises gateway-storage-failed; check dmesg, reboot to fsck it, or replace it";
            }

            var parent = Path.GetDirectoryName(Path.GetFullPath(path));
            return parent is not null && FileSystemFacts.NearestExisting(parent) is { } existing && Directory.Exists(existing) && FileSystemFacts.Of(existing) is { Volatile: true } fs
                ? $"'{existing}' is on {fs.Type}, in RAM: what the outbox holds while the uplink is down is lost when the gateway loses power or reboots; give a path on the disk, e.g. /var/lib/edgetwin/outbox.db"
                : null;
        }

        private OutboxSettings ReadOutbox(ConfigReader? r)
        {
            if (r is null)
            {
                return OutboxSettings.Default;
            }

            var d = OutboxSettings.Default;
            var path = r.String("path") ?? d.Path;
            if (r.Node("path") is { } pathNode && OutboxPathProblem(path) is { } problem)
            {
                // The start then failed with "access denied" and a stack trace, exit 1, restarted in a loop.
                Diagnostics.Add(pathNode, problem);
                path = d.Path;
            }
            else if (r.Node("path") is { } node && OutboxPathWarning(path) is { } warning)
            {
                Diagnostics.AddWarning(node, warning);
            }

            var budget = r.Int("disk_budget_mb", min: 1, max: 1_048_576) ?? d.DiskBudgetMb;
            var maxAge = r.Duration("max_age", min: TimeSpan.FromMinutes(1)) ?? d.MaxAge;
            var window = r.Duration("summary_window", min: TimeSpan.FromSeconds(1)) ?? d.SummaryWindow;
            var checkpoint = r.Duration("checkpoint_interval") ?? d.CheckpointInterval;
            if (checkpoint != TimeSpan.Zero && (checkpoint < TimeSpan.FromSeconds(1) || checkpoint > TimeSpan.FromHours(1)))
            {
                // Each checkpoint rewrites every open window (about 90 bytes a series): below 1s it is mostly flash wear.
                Diagnostics.Add(r.Node("checkpoint_interval")!, $"must be 0s (off) or between 1s and 1h, got '{Durations.Format(checkpoint)}'");
                checkpoint = d.CheckpointInterval;
            }

            // Longer than the checkpoints, a crash could lose records from before the last checkpoint, outside its data_gap span.
            var commit = r.Duration("commit_interval") ?? d.CommitInterval;
            var maxCommit = checkpoint > TimeSpan.Zero ? checkpoint : TimeSpan.FromMinutes(1);
            if (commit != TimeSpan.Zero && (commit < TimeSpan.FromMilliseconds(100) || commit > maxCommit))
            {
                Diagnostics.Add(r.Node("commit_interval")!, checkpoint > TimeSpan.Zero
                    ? $"must be 0s (a commit per poll) or between 100ms and checkpoint_interval ({Durations.Format(checkpoint)}), got '{Durations.Format(commit)}'"
                    : $"must be 0s (a commit per poll) or between 100ms and 1m, got '{Durations.Format(commit)}'");
                commit = TimeSpan.Zero < checkpoint && checkpoint < d.CommitInterval ? checkpoint : d.CommitInterval;
            }

            var memory = r.Int("memory_budget_mb", min: 0, max: 65_536) ?? d.MemoryBudgetMb;
            r.ReportUnknownKeys();
            return new OutboxSettings(path, budget, maxAge) { SummaryWindow = window, CheckpointInterval = checkpoint, CommitInterval = commit, MemoryBudgetMb = memory };
        }

        internal static bool Fits(AddressScheme scheme, DeviceProtocol protocol) => protocol switch
        {
            DeviceProtocol.Snmp => scheme is AddressScheme.Udp or AddressScheme.Udp6,
            DeviceProtocol.Modbus => scheme is AddressScheme.Tcp or AddressScheme.Rtu or AddressScheme.RtuTcp,
            DeviceProtocol.OneWire => scheme is AddressScheme.OneWire,
            DeviceProtocol.I2c => scheme is AddressScheme.I2c,
            DeviceProtocol.Gpio => scheme is AddressScheme.Gpio,
            DeviceProtocol.System => scheme is AddressScheme.Cpu or AddressScheme.Host,
            _ => false,
        };

        private static string SchemesFor(DeviceProtocol protocol) => protocol switch
        {
            DeviceProtocol.Snmp => "udp: or udp6:",
            DeviceProtocol.Modbus => "tcp:, rtu: or rtutcp:",
            DeviceProtocol.OneWire => "w1:",
            DeviceProtocol.I2c => "i2c:",
            DeviceProtocol.Gpio => "gpio:",
            _ => "cpu or host",
        };

        internal static string SchemeName(AddressScheme scheme) => scheme switch
        {
            AddressScheme.Udp => "udp",
            AddressScheme.Udp6 => "udp6",
            AddressScheme.Tcp => "tcp",
            AddressScheme.Rtu => "rtu",
            AddressScheme.RtuTcp => "rtutcp",
            AddressScheme.OneWire => "w1",
            AddressScheme.I2c => "i2c",
            AddressScheme.Gpio => "gpio",
            AddressScheme.Host => "host",
            _ => "cpu",
        };
    }
}
