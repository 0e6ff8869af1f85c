using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Alerting.Gpio;
using EdgeTwin.Uplink;
using EdgeTwin.Uplink.Mqtt;

namespace EdgeTwin.Alerting.Rules;

/// <summary>Active probe and thresholds of the connectivity monitor.</summary>
public sealed record ConnectivityConfig
{
    /// <summary>Host and port the probe connects to (defaults to the MQTT uplink's broker); null disables the probe.</summary>
    public string? ProbeHost { get; init; }

    public int ProbePort { get; init; } = 1883;

    /// <summary>
    /// Further targets tried in order when <see cref="ProbeHost"/> does not answer (the MQTT uplink's other brokers): the
    /// centre is reachable while any of them is. Empty for a probe_host of the config.
    /// </summary>
    public IReadOnlyList<(string Host, int Port)> AlsoProbe { get; init; } = [];

    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(5);

    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Consecutive failed probes before the uplink counts as offline (one failure already degrades it).</summary>
    public int OfflineAfter { get; init; } = 3;
}

/// <summary>
/// The <c>alerts:</c> section: rules, GPIO inputs, sinks, grouping, flapping guard, connectivity probe and where the
/// state lives. The same reader validates it for <c>edgetwin check</c> (<see cref="AlertsSectionValidator"/>) and at start.
/// </summary>
public sealed record AlertsConfig
{
    public IReadOnlyList<AlertRule> Rules { get; init; } = [];

    public IReadOnlyList<SinkConfig> Sinks { get; init; } = [];

    /// <summary>Directory of <c>alerts.db</c> and <c>alerts.sock</c>; null means the outbox's directory.</summary>
    public string? StateDirectory { get; init; }

    /// <summary>The alert store's file name in <see cref="StateDirectory"/> (acknowledgements, silences, active alerts).</summary>
    public const string StoreFileName = "alerts.db";

    /// <summary>The control socket's path; null means <c>alerts.sock</c> in the state directory.</summary>
    public string? ControlSocket { get; init; }

    /// <summary>Labels whose values form a notification group (one message per group, not per rack).</summary>
    public IReadOnlyList<string> GroupBy { get; init; } = ["room", "severity"];

    /// <summary>After a group's message, later alerts of the group are collected for this long into one message.</summary>
    public TimeSpan GroupInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>More than <see cref="FlapMaxChanges"/> raise/clear changes within this window make an alert flapping.</summary>
    public TimeSpan FlapWindow { get; init; } = TimeSpan.FromMinutes(10);

    public int FlapMaxChanges { get; init; } = 6;

    /// <summary>How often durations (<c>for:</c>, stuck, missing, group flushes) are checked.</summary>
    public TimeSpan TickInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    public ConnectivityConfig Connectivity { get; init; } = new();

    /// <summary>
    /// The longest silence the control socket accepts (<c>max_silence</c>): whoever may open the socket could otherwise
    /// mute a critical rule for a year.
    /// </summary>
    public TimeSpan MaxSilence { get; init; } = DefaultMaxSilence;

    /// <summary><see cref="MaxSilence"/> as the config wrote it (<c>24h</c>, not <c>1d</c>), for the refusal's message.</summary>
    public string MaxSilenceText { get; init; } = "24h";

    public static readonly TimeSpan DefaultMaxSilence = TimeSpan.FromHours(24);

    /// <summary>
    /// How long the agent may be down and still credit a <c>for:</c> hold with the time it had been pending before the
    /// stop (<c>for_outage_tolerance</c>, as Prometheus's <c>--rules.alert.for-outage-tolerance</c>); zero: never. A
    /// gateway restarted daily never fired a 24 h hold: every start began it from zero.
    /// </summary>
    public TimeSpan ForOutageTolerance { get; init; } = DefaultForOutageTolerance;

    public static readonly TimeSpan DefaultForOutageTolerance = TimeSpan.FromHours(1);

    public static AlertsConfig Empty { get; } = new();

    private static readonly Dictionary<string, RuleKind> Kinds = new(StringComparer.Ordinal)
    {
        ["threshold"] = RuleKind.Threshold,
        ["rate"] = RuleKind.Rate,
        ["stuck"] = RuleKind.Stuck,
        ["missing"] = RuleKind.Missing,
        ["device_down"] = RuleKind.DeviceDown,
        ["event"] = RuleKind.Event,
        ["uplink"] = RuleKind.Uplink,
        ["state"] = RuleKind.State,
    };

    private static readonly Dictionary<string, EventSeverity> Severities = new(StringComparer.Ordinal)
    {
        ["info"] = EventSeverity.Info,
        ["warning"] = EventSeverity.Warning,
        ["critical"] = EventSeverity.Critical,
    };

    private static readonly Dictionary<string, Scope> Scopes = new(StringComparer.Ordinal)
    {
        ["series"] = Scope.Series,
        ["device"] = Scope.Device,
        ["rack"] = Scope.Rack,
        ["room"] = Scope.Room,
        ["zone"] = Scope.Room,
        ["line"] = Scope.Line,
        ["site"] = Scope.Site,
    };

    private static readonly Dictionary<string, bool> PercentOf = new(StringComparer.Ordinal) { ["breaker"] = true };

    private static readonly Dictionary<string, Combine> Combines = new(StringComparer.Ordinal)
    {
        ["any"] = Combine.Any,
        ["all"] = Combine.All,
    };

    private static readonly Dictionary<string, UplinkGate> Gates = new(StringComparer.Ordinal)
    {
        ["any"] = UplinkGate.Any,
        ["not_online"] = UplinkGate.NotOnline,
        ["offline"] = UplinkGate.Offline,
    };

    private static readonly Dictionary<string, OutputPattern> Patterns = new(StringComparer.Ordinal)
    {
        ["off"] = OutputPattern.Off,
        ["on"] = OutputPattern.On,
        ["blink"] = OutputPattern.Blink,
        ["blink_fast"] = OutputPattern.BlinkFast,
    };

    private static readonly Dictionary<string, EdgeEventKind> EventKinds =
        Enum.GetValues<EdgeEventKind>().ToDictionary(k => k.ToWireName(), k => k, StringComparer.Ordinal);

    /// <summary>Reads the section of a loaded config; throws <see cref="ConfigException"/> with every problem.</summary>
    public static AlertsConfig From(SiteConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Alerts is null)
        {
            return Empty;
        }

        var configDirectory = config.ConfigDirectory();
        return ConfigReader.ReadOrThrow(config.Alerts, r => Read(r, configDirectory));
    }

    /// <summary>Reads and validates the section; problems go to the reader's diagnostics.</summary>
    public static AlertsConfig Read(ConfigReader section, string configDirectory)
    {
        ArgumentNullException.ThrowIfNull(section);
        var sinks = ReadSinks(section, configDirectory);
        var sinkNames = sinks.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        var rules = new List<AlertRule>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        if (section.Sequence("rules") is { } list)
        {
            foreach (var item in list.Items)
            {
                if (ConfigReader.For(item, section.Diagnostics) is { } r && ReadRule(r, sinkNames) is { } rule)
                {
                    if (!names.Add(rule.Name))
                    {
                        section.Diagnostics.Add(item, $"duplicate rule name '{rule.Name}'");
                    }

                    rules.Add(rule);
                }
            }
        }

        var pins = new HashSet<int>();
        if (section.Sequence("inputs") is { } inputs)
        {
            foreach (var item in inputs.Items)
            {
                if (ConfigReader.For(item, section.Diagnostics) is { } r && ReadInput(r, sinkNames) is { } rule)
                {
                    if (!names.Add(rule.Name))
                    {
                        section.Diagnostics.Add(item, $"duplicate rule name '{rule.Name}' (inputs share the rules' names)");
                    }

                    if (!pins.Add(rule.Pin))
                    {
                        section.Diagnostics.Add(item, $"pin {rule.Pin} is used by two inputs");
                    }

                    rules.Add(rule);
                }
            }
        }

        var groupBy = section.Sequence("group_by") is { } g
            ? g.Items.OfType<ConfigScalar>().Select(s => s.Value).ToList()
            : null;
        var connectivity = new ConnectivityConfig();
        if (section.Section("connectivity") is { } c)
        {
            connectivity = new ConnectivityConfig
            {
                ProbeHost = c.String("probe_host"),
                ProbePort = c.Int("probe_port", min: 1, max: 65535) ?? 1883,
                Interval = c.Duration("interval", min: TimeSpan.FromMilliseconds(100)) ?? TimeSpan.FromSeconds(5),
                Timeout = c.Duration("timeout", min: TimeSpan.FromMilliseconds(50)) ?? TimeSpan.FromSeconds(2),
                OfflineAfter = c.Int("offline_after", min: 1, max: 1000) ?? 3,
            };
            c.ReportUnknownKeys();
        }

        var result = new AlertsConfig
        {
            Rules = rules,
            Sinks = sinks,
            StateDirectory = ConfigReader.ResolvePath(section.String("state_directory"), configDirectory),
            ControlSocket = ConfigReader.ResolvePath(section.String("control_socket"), configDirectory),
            GroupBy = groupBy ?? ["room", "severity"],
            GroupInterval = section.Duration("group_interval") ?? TimeSpan.FromSeconds(10),
            FlapWindow = section.Duration("flap_window", min: TimeSpan.FromSeconds(1)) ?? TimeSpan.FromMinutes(10),
            FlapMaxChanges = section.Int("flap_max_changes", min: 2, max: 10_000) ?? 6,
            TickInterval = section.Duration("tick", min: TimeSpan.FromMilliseconds(10)) ?? TimeSpan.FromMilliseconds(250),
            Connectivity = connectivity,
            ForOutageTolerance = section.Duration("for_outage_tolerance", min: TimeSpan.Zero) ?? DefaultForOutageTolerance,
        };
        if (section.Duration("max_silence", min: TimeSpan.FromSeconds(1)) is { } maxSilence)
        {
            result = result with { MaxSilence = maxSilence, MaxSilenceText = ((ConfigScalar)section.Node("max_silence")!).Value.Trim() };
        }

        section.ReportUnknownKeys();
        return result;
    }

    private static AlertRule? ReadRule(ConfigReader r, HashSet<string> sinks)
    {
        var name = r.Id("name", required: true);
        var kind = r.Enum("type", Kinds, required: true);
        var common = Common(r, sinks);
        if (name is null || kind is null)
        {
            r.ReportUnknownKeys();
            return null;
        }

        var rule = new AlertRule
        {
            Name = name,
            Kind = kind.Value,
            Severity = common.Severity,
            Summary = common.Summary,
            RunbookUrl = common.RunbookUrl,
            Action = common.Action,
            Labels = common.Labels,
            Targets = common.Targets,
            WhenUplink = r.Enum("when_uplink", Gates) ?? UplinkGate.Any,
            For = r.Duration("for") ?? TimeSpan.Zero,
        };

        switch (kind.Value)
        {
            case RuleKind.Threshold:
                // match is read even when the limits are wrong, so that one typo is one problem, not three.
                rule = Series(r, Limits(r, rule, "above", "below", "clear_below", "clear_above") ?? rule);
                if (r.Enum("percent_of", PercentOf) is { } of)
                {
                    rule = rule with { PercentOfBreaker = of };
                }

                break;
            case RuleKind.Rate:
                var window = r.Duration("window", min: TimeSpan.FromSeconds(1)) ?? TimeSpan.FromMinutes(1);
                rule = Series(r, (Limits(r, rule, "rise_per_min", "fall_per_min", "clear_rise_per_min", "clear_fall_per_min") ?? rule) with { Window = window });
                break;
            case RuleKind.State:
                var states = r.Sequence("states", required: true) is { } st
                    ? st.Items.OfType<ConfigScalar>().Select(x => x.Value).Where(x => x.Length > 0).Distinct(StringComparer.Ordinal).ToList()
                    : [];
                if (states.Count == 0 && r.Node("states") is { } sn)
                {
                    r.Diagnostics.Add(sn, "give at least one state name (as in the device profile's states:, e.g. [battery, onBattery])");
                }

                rule = Series(r, rule with { States = states });
                break;
            case RuleKind.Stuck:
                rule = Series(r, rule with
                {
                    After = r.Duration("after", required: true, min: TimeSpan.FromSeconds(1)) ?? TimeSpan.FromMinutes(5),
                    Tolerance = r.Double("tolerance", min: 0) ?? 0,
                });
                break;
            case RuleKind.Missing:
                rule = Series(r, rule with { After = r.Duration("after", required: true, min: TimeSpan.FromSeconds(1)) ?? TimeSpan.FromMinutes(1) });
                break;
            case RuleKind.DeviceDown:
                rule = rule with { SourceGlob = r.String("device") ?? "*", Per = Scope.Device };
                break;
            case RuleKind.Event:
                var ev = Limits(r, rule, "above", "below", "clear_below", "clear_above") ?? rule;
                rule = ev with
                {
                    EventKind = r.Enum("event", EventKinds) ?? EdgeEventKind.Prediction,
                    Attribute = r.String("attribute", required: true),
                    SourceGlob = r.String("source") ?? "*",
                    After = r.Duration("clear_after", min: TimeSpan.FromSeconds(1)) ?? TimeSpan.FromMinutes(10),
                };
                break;
            case RuleKind.Uplink:
                rule = rule with { Per = Scope.Site };
                break;
        }

        r.ReportUnknownKeys();
        return rule;
    }

    private static AlertRule Series(ConfigReader r, AlertRule rule)
    {
        var match = SeriesMatch.All;
        if (r.Section("match") is { } m)
        {
            var tags = new List<KeyValuePair<string, string>>();
            if (m.Section("tags") is { } t)
            {
                foreach (var (k, _) in t.Mapping.Entries)
                {
                    tags.Add(new(k, t.String(k) ?? ""));
                }
            }

            match = new SeriesMatch(m.String("device"), m.String("metric"), m.String("role"), tags);
            if (match.Device is null && match.Metric is null && match.Role is null)
            {
                m.Diagnostics.Add(m.Mapping, "give at least one of device, metric or role");
            }

            m.ReportUnknownKeys();
        }
        else
        {
            r.ReportMissing("match");
        }

        var combine = r.Enum("combine", Combines) ?? Combine.None;
        var per = r.Enum("per", Scopes) ?? (combine == Combine.None ? Scope.Series : Scope.Rack);
        if (combine != Combine.None && per == Scope.Series)
        {
            r.Diagnostics.Add(r.Node("per")!, "a combination needs a scope wider than one series (device, rack, room, line or site)");
        }

        return rule with { Match = match, Combine = combine, Per = per };
    }

    /// <summary>Reads exactly one of the two limits and its optional clear level, which must lie on the safe side.</summary>
    private static AlertRule? Limits(ConfigReader r, AlertRule rule, string above, string below, string clearBelow, string clearAbove)
    {
        var hi = r.Double(above);
        var lo = r.Double(below);
        var clearLo = r.Double(clearBelow);
        var clearHi = r.Double(clearAbove);
        if (hi is null == lo is null)
        {
            r.Diagnostics.Add(r.Mapping, $"give exactly one of '{above}' or '{below}'");
            return null;
        }

        if (hi is { } h)
        {
            if (clearHi is not null)
            {
                r.Diagnostics.Add(r.Node(clearAbove)!, $"'{clearAbove}' goes with '{below}'; use '{clearBelow}'");
            }

            var clear = clearLo ?? h;
            if (clear > h)
            {
                r.Diagnostics.Add(r.Node(clearBelow)!, $"must be at most '{above}' ({h.ToString(System.Globalization.CultureInfo.InvariantCulture)})");
            }

            return rule with { Direction = Direction.Above, Limit = h, Clear = clear };
        }

        var l = lo!.Value;
        if (clearLo is not null)
        {
            r.Diagnostics.Add(r.Node(clearBelow)!, $"'{clearBelow}' goes with '{above}'; use '{clearAbove}'");
        }

        var c = clearHi ?? l;

        // A fall rate is written as a positive number of units per minute; internally it is a rate below -limit.
        if (above == "rise_per_min")
        {
            if (c > l)
            {
                r.Diagnostics.Add(r.Node(clearAbove)!, $"must be at most '{below}' ({l.ToString(System.Globalization.CultureInfo.InvariantCulture)})");
            }

            return rule with { Direction = Direction.Below, Limit = -l, Clear = -c };
        }

        if (c < l)
        {
            r.Diagnostics.Add(r.Node(clearAbove)!, $"must be at least '{below}' ({l.ToString(System.Globalization.CultureInfo.InvariantCulture)})");
        }

        return rule with { Direction = Direction.Below, Limit = l, Clear = c };
    }

    // The pull was derived from `active` (high → pull-down), so a normally-closed contact to ground (door, guard switch)
    // read low whether shut or open and its alarm never fired: the pull is its own key now, up by default.
    private static readonly Dictionary<string, PullMode> InputPulls = new(StringComparer.Ordinal)
    {
        ["up"] = PullMode.Up,
        ["down"] = PullMode.Down,
        ["none"] = PullMode.None,
    };

    private static AlertRule? ReadInput(ConfigReader r, HashSet<string> sinks)
    {
        var name = r.Id("name", required: true);
        var pin = r.Int("pin", required: true, min: 0, max: 1023);
        var active = r.Enum("active", new Dictionary<string, bool>(StringComparer.Ordinal) { ["low"] = true, ["high"] = false }) ?? true;
        var pull = r.Enum("pull", InputPulls) ?? PullMode.Up;
        var debounce = r.Duration("debounce") ?? TimeSpan.FromMilliseconds(20);
        var common = Common(r, sinks);
        r.ReportUnknownKeys();
        if (name is null || pin is null)
        {
            return null;
        }

        return new AlertRule
        {
            Name = name,
            Kind = RuleKind.Input,
            Severity = common.Severity,
            Summary = common.Summary,
            RunbookUrl = common.RunbookUrl,
            Action = common.Action,
            Labels = common.Labels,
            Targets = common.Targets,
            Pin = pin.Value,
            ActiveLow = active,
            Pull = pull,
            Debounce = debounce,
            Per = Scope.Site,
        };
    }

    /// <summary>The longest <c>action:</c> text: one line in the journal, a chat message and <c>alerts list</c>, not a procedure (that is the runbook).</summary>
    public const int MaxActionLength = 200;

    /// <summary>The longest <c>runbook_url</c> (it travels in every message, syslog line and alert event).</summary>
    public const int MaxRunbookUrlLength = 2048;

    /// <summary>What <c>summary:</c> and <c>action:</c> templates may use (<see cref="State.AlertInstance"/> fills them).</summary>
    public static readonly IReadOnlyList<string> TemplatePlaceholders = ["{key}", "{value}", "{peak}", "{rule}", "{unit}", "{limit}", "{place}", "{site}", "{since}"];

    /// <summary>False, with a problem at the key, when a template names a placeholder nothing fills: it would reach the operator as <c>{rack}</c>.</summary>
    private static bool KnownPlaceholders(ConfigReader r, string key, string value) =>
        KnownPlaceholders(r.Diagnostics, r.Node(key)!, key, value, TemplatePlaceholders);

    /// <summary>False, with a problem at <paramref name="node"/>, at the first <c>{name}</c> of <paramref name="value"/> not in <paramref name="known"/>.</summary>
    private static bool KnownPlaceholders(ConfigDiagnostics diagnostics, ConfigNode node, string key, string value, IReadOnlyList<string> known)
    {
        foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(value, @"\{[^{}]*\}"))
        {
            if (!known.Contains(m.Value, StringComparer.Ordinal))
            {
                diagnostics.Add(node, $"unknown placeholder {m.Value}: {key} can use {string.Join(", ", known)}");
                return false;
            }
        }

        return true;
    }

    private static (EventSeverity Severity, string? Summary, string? RunbookUrl, string? Action, IReadOnlyDictionary<string, string> Labels, IReadOnlyList<string> Targets) Common(ConfigReader r, HashSet<string> sinks)
    {
        var severity = r.Enum("severity", Severities) ?? EventSeverity.Warning;
        var summary = r.String("summary") is { } template && KnownPlaceholders(r, "summary", template) ? template : null;
        var runbook = RunbookUrl(r);
        var action = ActionText(r);
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (r.Section("labels") is { } l)
        {
            foreach (var (k, _) in l.Mapping.Entries)
            {
                labels[k] = l.String(k) ?? "";
            }
        }

        var targets = new List<string>();
        if (r.IdList("targets") is { } t)
        {
            foreach (var (value, node) in t)
            {
                if (!sinks.Contains(value))
                {
                    r.Diagnostics.Add(node, $"no sink named '{value}' in alerts.sinks (known: {string.Join(", ", sinks.Order(StringComparer.Ordinal))})");
                }

                targets.Add(value);
            }
        }

        return (severity, summary, runbook, action, labels, targets);
    }

    /// <summary>
    /// <c>runbook_url:</c> an absolute http(s) URL without credentials or spaces: it goes as written into chat text, a
    /// syslog SD-param and Alertmanager's annotation, to everyone who sees the alert.
    /// </summary>
    private static string? RunbookUrl(ConfigReader r)
    {
        if (r.String("runbook_url") is not { } text)
        {
            return null;
        }

        var node = r.Node("runbook_url")!;
        var value = text.Trim();
        if (value.Length == 0 || value.Length > MaxRunbookUrlLength || value.Any(c => char.IsWhiteSpace(c) || char.IsControl(c))
            || !Uri.TryCreate(value, UriKind.Absolute, out var url)
            || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps) || url.Host.Length == 0)
        {
            var why = value.Length > MaxRunbookUrlLength ? $" ({value.Length} characters; at most {MaxRunbookUrlLength})"
                : value.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)) ? " (it has a space or control character: write it %20-escaped)"
                : "";
            r.Diagnostics.Add(node, $"must be an absolute http or https URL of the site's procedure for this alert (e.g. https://wiki.example/runbooks/inlet-hot), got '{Shorten(value)}'{why}");
            return null;
        }

        if (url.UserInfo.Length > 0)
        {
            r.Diagnostics.Add(node, "must not carry a user:password: the runbook URL goes to every sink (chat, journal, Alertmanager) and to the centre; let the wiki ask for the login");
            return null;
        }

        return value;
    }

    /// <summary>
    /// <c>action:</c> the first thing to do, one line (a folded YAML block's line breaks become spaces), at most
    /// <see cref="MaxActionLength"/> characters, with no placeholder the template cannot fill (it would reach the
    /// operator as <c>{rack}</c>).
    /// </summary>
    private static string? ActionText(ConfigReader r)
    {
        if (r.String("action") is not { } text)
        {
            return null;
        }

        var node = r.Node("action")!;
        var value = text.ReplaceLineEndings(" ").Trim();
        if (value.Length == 0)
        {
            r.Diagnostics.Add(node, "is empty: write what the operator should do first, or leave the key out");
            return null;
        }

        if (value.Length > MaxActionLength)
        {
            r.Diagnostics.Add(node, $"is {value.Length} characters; at most {MaxActionLength}: one line to act on, the procedure belongs behind runbook_url");
            return null;
        }

        if (value.Any(char.IsControl))
        {
            r.Diagnostics.Add(node, "has a control character (a tab?): one line of plain text");
            return null;
        }

        return KnownPlaceholders(r, "action", value) ? value : null;
    }

    private static string Shorten(string value) => value.Length <= 80 ? value : value[..77] + "...";

    private static List<SinkConfig> ReadSinks(ConfigReader section, string configDirectory)
    {
        var sinks = new List<SinkConfig>();
        if (section.Sequence("sinks") is not { } list)
        {
            return sinks;
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var item in list.Items)
        {
            if (ConfigReader.For(item, section.Diagnostics) is not { } s)
            {
                continue;
            }

            var name = s.Id("name", required: true);
            var type = s.String("type", required: true);
            var queue = s.Int("queue", min: 1, max: 1_000_000) ?? 256;
            var timeout = s.Duration("timeout", min: TimeSpan.FromMilliseconds(10)) ?? TimeSpan.FromSeconds(5);
            var retries = s.Int("retries", min: 0, max: 100) ?? 3;
            var retryDelay = s.Duration("retry_delay") ?? TimeSpan.FromMilliseconds(500);
            SinkConfig? sink = null;
            switch (type)
            {
                case null:
                    break;
                case "gpio":
                    var chip = s.String("chip") ?? GpioChips.Auto;
                    if (!GpioChips.TryParse(chip, out _))
                    {
                        s.Diagnostics.Add(s.Node("chip")!, $"'{chip}' is not a GPIO chip: auto (the board's default controller), simulated, or a gpiochip number such as 4 (`gpiodetect` lists them)");
                    }

                    sink = new GpioSinkConfig { Name = name ?? "", Chip = chip, Outputs = ReadOutputs(s) };
                    break;
                case "syslog":
                    sink = new SyslogSinkConfig
                    {
                        Name = name ?? "",
                        Socket = s.String("socket") ?? "/dev/log",
                        Facility = s.Int("facility", min: 0, max: 23) ?? 16,
                        AppName = s.String("app_name") ?? "edgetwin",
                    };
                    break;
                case "mqtt":
                    sink = ReadMqttSink(s, name ?? "", configDirectory);
                    break;
                case "webhook":
                    sink = ReadWebhook(s, name, configDirectory);
                    break;
                case "smtp":
                    sink = ReadSmtp(s, name ?? "", configDirectory);
                    break;
                default:
                    s.Diagnostics.Add(s.Node("type")!, $"expected one of gpio, syslog, mqtt, webhook, smtp, got '{type}'");
                    break;
            }

            s.ReportUnknownKeys();
            if (sink is null || name is null)
            {
                continue;
            }

            if (!names.Add(name))
            {
                s.Diagnostics.Add(item, $"duplicate sink name '{name}'");
            }

            sinks.Add(sink with { QueueCapacity = queue, Timeout = timeout, Retries = retries, RetryDelay = retryDelay });
        }

        return sinks;
    }

    private static readonly Dictionary<string, WebhookFormat> WebhookFormats = new(StringComparer.Ordinal)
    {
        ["edgetwin"] = WebhookFormat.EdgeTwin,
        ["alertmanager"] = WebhookFormat.Alertmanager,
        ["slack"] = WebhookFormat.Slack,
    };

    /// <summary>Longer and Alertmanager (default <c>resolve_timeout</c> 5m) resolves what still fires between re-sends.</summary>
    private static readonly TimeSpan MaxResendInterval = TimeSpan.FromMinutes(5);

    private static readonly TimeSpan ResendWarnAbove = TimeSpan.FromSeconds(150);

    public static string FormatName(WebhookFormat format) => WebhookFormats.First(f => f.Value == format).Key;

    /// <summary>The API path at the end of <paramref name="url"/>'s path (<c>/api/v2/alerts</c>, <c>/api/v2</c>, <c>/api/v1/alerts</c>), or null.</summary>
    private static string? AlertmanagerApiPath(Uri url)
    {
        var path = url.AbsolutePath.TrimEnd('/');
        foreach (var api in (ReadOnlySpan<string>)["/api/v2/alerts", "/api/v1/alerts", "/api/v2", "/api/v1"])
        {
            if (path.EndsWith(api, StringComparison.OrdinalIgnoreCase))
            {
                return api;
            }
        }

        return null;
    }

    private static Uri AlertmanagerBase(Uri url, string api)
    {
        var path = url.AbsolutePath.TrimEnd('/');
        return new UriBuilder(url) { Path = path[..^api.Length] + "/" }.Uri;
    }

    /// <summary>
    /// A webhook sink. The URL is only ever shown redacted (<see cref="Redact.Url(string)"/>): check's output ends up in
    /// Ansible and CI logs; one that carries a secret (<see cref="Redact.HasSecret"/>) is an inline secret of the config.
    /// Risky but valid settings (<see cref="WebhookSinkConfig.PlaintextWarnings"/>) are warnings.
    /// </summary>
    private static WebhookSinkConfig ReadWebhook(ConfigReader s, string? name, string configDirectory)
    {
        // url_file: a URL that is itself the credential (a Slack or Teams incoming webhook's key in the path) kept in a
        // file of its own, as every other secret can be; before, it could only be written inline in the config.
        var url = s.Node("url_file") is null ? s.String("url", required: true)
            : s.Secret("url", configDirectory, emptyFileIsError: true, bothIsError: true);
        var urlNode = s.Node("url_file") ?? s.Node("url");
        Uri? uri = null;
        if (url is not null && (!Uri.TryCreate(url, UriKind.Absolute, out uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)))
        {
            s.Diagnostics.Add(urlNode!, $"'{Redact.Url(url)}' is not an http or https URL");
            uri = null;
        }

        if (uri is not null && Redact.HasSecret(uri))
        {
            // A user:password, a query or a token-like path segment (a Slack-style key): the URL is then an inline
            // secret of the config, kept out of config_sha256 and named by the config file's mode warning.
            s.Diagnostics.Secrets.AddInline(s.Node("url"));
        }

        var format = s.Enum("format", WebhookFormats) ?? WebhookFormat.EdgeTwin;
        if (uri is not null && format == WebhookFormat.Alertmanager && AlertmanagerApiPath(uri) is { } api)
        {
            // The sink appends /api/v2/alerts itself; a path before it is a reverse proxy's prefix and is kept.
            s.Diagnostics.Add(urlNode!, $"format: alertmanager takes Alertmanager's base URL, not its API path '{api}': the sink posts to <url>/api/v2/alerts; write '{Redact.Url(AlertmanagerBase(uri, api))}'");
        }

        var resend = s.Duration("resend_interval", min: TimeSpan.FromSeconds(1));
        if (resend is { } r && s.Node("resend_interval") is { } resendNode)
        {
            if (format != WebhookFormat.Alertmanager)
            {
                s.Diagnostics.Add(resendNode, $"resend_interval applies only to format: alertmanager (this sink's format is {FormatName(format)}: it sends each change once)");
            }
            else if (r > MaxResendInterval)
            {
                s.Diagnostics.Add(resendNode, $"resend_interval {Durations.Format(r)} is longer than {Durations.Format(MaxResendInterval)}: Alertmanager would resolve the firing alerts between two re-sends (its resolve_timeout defaults to 5m)");
            }
            else if (r > ResendWarnAbove)
            {
                s.Diagnostics.AddWarning(resendNode, $"resend_interval {Durations.Format(r)} is more than half of Alertmanager's default resolve_timeout (5m): unless its resolve_timeout is at least twice this, it resolves firing alerts between re-sends and pages again at the next one");
            }
        }

        var username = s.String("username");
        var channel = s.String("channel");
        foreach (var key in (ReadOnlySpan<string>)["username", "channel"])
        {
            if (format != WebhookFormat.Slack && s.Node(key) is { } node)
            {
                s.Diagnostics.Add(node, $"{key} applies only to format: slack (this sink's format is {FormatName(format)})");
            }
        }

        var secret = s.Secret("secret", configDirectory, emptyFileIsError: false);
        if (format != WebhookFormat.EdgeTwin && (s.Node("secret") ?? s.Node("secret_file")) is { } secretNode)
        {
            // Alertmanager and chat servers check no X-EdgeTwin-Signature: sent, it would only look like protection.
            s.Diagnostics.AddWarning(secretNode, $"format: {FormatName(format)} sends no signature headers (the receiver has no way to check them), so the secret is not used; authenticate with a user:password in the url or bearer_token_file, over https");
            secret = null;
        }

        var bearer = s.Secret("bearer_token", configDirectory, emptyFileIsError: true);
        var bearerNode = s.Node("bearer_token_file") ?? s.Node("bearer_token");
        if (bearer is not null && bearerNode is not null)
        {
            if (uri is { UserInfo.Length: > 0 })
            {
                s.Diagnostics.Add(bearerNode, "give either a user:password in the url (Basic auth) or a bearer token, not both: each sets the Authorization header");
                bearer = null;
            }
            else if (bearer.Length > 0 && !IsHeaderToken(bearer))
            {
                // The value itself is never echoed.
                s.Diagnostics.Add(bearerNode, "the bearer token holds spaces or characters an HTTP header cannot carry (printable ASCII only)");
                bearer = null;
            }
        }

        var sink = new WebhookSinkConfig
        {
            Name = name ?? "",
            Url = uri ?? new Uri("http://invalid/"),
            Format = format,
            ResendInterval = resend ?? TimeSpan.FromSeconds(60),
            Username = format == WebhookFormat.Slack ? username : null,
            Channel = format == WebhookFormat.Slack ? channel : null,
            Secret = secret,
            BearerToken = string.IsNullOrEmpty(bearer) ? null : bearer,
        };
        if (uri is not null)
        {
            foreach (var warning in sink.PlaintextWarnings())
            {
                s.Diagnostics.AddWarning(urlNode!, warning);
            }
        }

        return sink;
    }

    private static readonly Dictionary<string, SmtpTls> SmtpTlsModes = new(StringComparer.Ordinal)
    {
        ["starttls"] = SmtpTls.StartTls,
        ["implicit"] = SmtpTls.Implicit,
        ["none"] = SmtpTls.None,
    };

    /// <summary>Placeholders of an smtp sink's <c>subject</c>.</summary>
    public static readonly string[] SmtpSubjectPlaceholders = ["{severity}", "{status}", "{site}", "{gateway}", "{rule}", "{key}", "{place}", "{count}", "{more}"];

    /// <summary>
    /// An smtp sink. <c>tls:</c> is a mode here (<c>starttls</c>, the default; <c>implicit</c>; <c>none</c>), not the MQTT
    /// block: the relay's certificate is checked against <c>ca_file</c> (else the system trust store) and <c>server_name</c>
    /// (else <c>host</c>). Credentials over <c>tls: none</c> to a host that is not this machine are refused unless
    /// <c>allow_plaintext_auth: true</c>: AUTH PLAIN/LOGIN is only base64. The CA file is loaded here as at start.
    /// </summary>
    private static SmtpSinkConfig ReadSmtp(ConfigReader s, string name, string configDirectory)
    {
        var host = s.String("host", required: true);
        if (host is { Length: 0 } || (host is not null && (host.Any(char.IsWhiteSpace) || host.Contains('/', StringComparison.Ordinal))))
        {
            s.Diagnostics.Add(s.Node("host")!, $"'{host}' is not a host name or address (no scheme, port or path: port: is its own key)");
        }

        var tls = s.Enum("tls", SmtpTlsModes) ?? SmtpTls.StartTls;
        var port = s.Int("port", min: 1, max: 65535) ?? tls switch { SmtpTls.Implicit => 465, SmtpTls.None => 25, _ => 587 };
        var caFile = ConfigReader.ResolvePath(s.String("ca_file"), configDirectory);
        var serverName = s.String("server_name");
        if (tls == SmtpTls.None)
        {
            foreach (var key in (ReadOnlySpan<string>)["ca_file", "server_name"])
            {
                if (s.Node(key) is { } node)
                {
                    s.Diagnostics.Add(node, $"{key} applies only with TLS (tls: starttls or implicit); this sink has tls: none");
                }
            }
        }
        else if (caFile is not null && s.Node("ca_file") is { } caNode)
        {
            try
            {
                _ = TlsFiles.LoadCaFile("ca_file", caFile);
            }
            catch (TlsFileException ex)
            {
                s.Diagnostics.Add(caNode, ex.Message);
            }
        }

        var username = s.String("username");
        var password = s.Secret("password", configDirectory, emptyFileIsError: true, bothIsError: true);
        var passwordNode = s.Node("password_file") ?? s.Node("password");
        if (passwordNode is not null && username is null)
        {
            s.Diagnostics.Add(passwordNode, "a password needs a username");
        }
        else if (username is not null && passwordNode is null)
        {
            s.Diagnostics.Add(s.Node("username")!, "a username needs password_file (or password)");
        }

        var allowPlaintext = s.Bool("allow_plaintext_auth") ?? false;
        if (tls == SmtpTls.None && username is not null && host is not null && !NetworkScope.IsLoopback(host) && !allowPlaintext)
        {
            s.Diagnostics.Add(passwordNode ?? s.Node("username")!, $"alert sink '{name}' would send its username and password to {host} without TLS (AUTH is only base64, readable by anyone on the network path): use tls: starttls or implicit, or set allow_plaintext_auth: true if the relay offers no TLS");
        }
        else if (allowPlaintext && s.Node("allow_plaintext_auth") is { } allowNode && (tls != SmtpTls.None || username is null))
        {
            s.Diagnostics.AddWarning(allowNode, "allow_plaintext_auth has no effect: it only allows credentials over tls: none");
        }

        var from = s.String("from", required: true);
        if (from is not null && !IsMailbox(from))
        {
            s.Diagnostics.Add(s.Node("from")!, $"'{from}' is not a mail address (local@domain, or \"Name <local@domain>\")");
        }

        var to = new List<string>();
        if (s.Sequence("to", required: true) is { } list)
        {
            if (list.Items.Count == 0)
            {
                s.Diagnostics.Add(list, "give at least one recipient");
            }

            foreach (var (item, text) in list.Items.Zip(s.ScalarTexts(list, "a mail address")))
            {
                if (item is not ConfigScalar { IsNull: false })
                {
                    continue; // reported by ScalarTexts
                }

                if (!IsMailbox(text))
                {
                    s.Diagnostics.Add(item, $"'{text}' is not a mail address (local@domain, or \"Name <local@domain>\")");
                }
                else if (to.Contains(text, StringComparer.OrdinalIgnoreCase))
                {
                    s.Diagnostics.Add(item, $"'{text}' is listed twice");
                }
                else
                {
                    to.Add(text);
                }
            }
        }

        var subject = s.String("subject") ?? SmtpSinkConfig.DefaultSubject;
        if (s.Node("subject") is { } subjectNode)
        {
            if (subject.Any(char.IsControl))
            {
                s.Diagnostics.Add(subjectNode, "has a control character: a subject is one line of plain text");
            }

            KnownPlaceholders(s.Diagnostics, subjectNode, "subject", subject, SmtpSubjectPlaceholders);
        }

        return new SmtpSinkConfig
        {
            Name = name,
            Host = host ?? "",
            Port = port,
            Tls = tls,
            CaFile = tls == SmtpTls.None ? null : caFile,
            ServerName = tls == SmtpTls.None ? null : serverName,
            Username = username,
            Password = password,
            AllowPlaintextAuth = allowPlaintext,
            From = from ?? "",
            To = to,
            Subject = subject,
            MaxAlertsPerMail = s.Int("max_alerts_per_mail", min: 1, max: 10_000) ?? 100,
        };
    }

    /// <summary>An address MimeKit parses as exactly one mailbox with a domain.</summary>
    private static bool IsMailbox(string text) =>
        MimeKit.MailboxAddress.TryParse(text, out var m) && m.Address.Contains('@', StringComparison.Ordinal) && !m.Address.EndsWith('@');

    /// <summary>
    /// An MQTT sink. Its <c>tls:</c> block has the keys and meaning of <c>uplinks.mqtt.tls</c> (<c>enabled</c>, default
    /// true when the block is there; <c>ca_file</c>, <c>client_cert_file</c>, <c>client_key_file</c>,
    /// <c>client_cert_password[_file]</c>, <c>server_name</c>); its files are loaded here as at start, so a file the
    /// connection could not use fails <c>check</c>. Credentials sent in clear beyond this machine are a warning.
    /// </summary>
    // The values of uplinks.mqtt.protocol, so a site that sets 3.1.1 there writes the same here.
    private static readonly Dictionary<string, MqttProtocol> MqttProtocols = new(StringComparer.Ordinal)
    {
        ["3.1.1"] = MqttProtocol.V311,
        ["5"] = MqttProtocol.V500,
    };

    private static MqttSinkConfig ReadMqttSink(ConfigReader s, string name, string configDirectory)
    {
        var tlsSection = s.Section("tls");
        var tls = new MqttTlsOptions
        {
            Enabled = tlsSection?.Bool("enabled") ?? tlsSection is not null,
            CaFile = ConfigReader.ResolvePath(tlsSection?.String("ca_file"), configDirectory),
            ClientCertificateFile = ConfigReader.ResolvePath(tlsSection?.String("client_cert_file"), configDirectory),
            // As uplinks.mqtt.tls (the README promises its keys and meaning): a key file others can read is warned about,
            // a password given inline and in a file is an error; before, the sink silently took one and warned of nothing.
            ClientKeyFile = tlsSection?.PrivateKeyFile("client_key_file", configDirectory),
            ClientCertificatePassword = tlsSection?.Secret("client_cert_password", configDirectory, emptyFileIsError: true, bothIsError: true),
            ServerName = tlsSection?.String("server_name"),
        };
        tlsSection?.ReportUnknownKeys();
        var port = s.Int("port", min: 1, max: 65535) ?? (tls.Enabled ? 8883 : 1883);
        var hosts = ReadMqttSinkHosts(s, port);
        var sink = new MqttSinkConfig
        {
            Name = name,
            // With hosts:, Host is the first broker's: what the warnings below that name one broker show.
            Host = hosts is { } list ? list.Servers.FirstOrDefault().Host ?? "" : s.String("host") ?? "127.0.0.1",
            Hosts = hosts?.Entries,
            Port = port,
            Topic = s.String("topic") ?? "edgetwin/{site}/{gateway}/alerts",
            Protocol = s.Enum("protocol", MqttProtocols) ?? MqttProtocol.V500,
            ClientId = s.String("client_id"),
            Username = s.String("username"),
            Password = s.Secret("password", configDirectory, emptyFileIsError: true),
            Tls = tls,
        };

        if (sink.ClientId is { Length: 0 or > 65535 })
        {
            s.Diagnostics.Add(s.Node("client_id")!, "client_id must be 1..65535 characters when set");
        }

        var password = s.Node("password_file") ?? s.Node("password");
        if (password is not null && sink.Username is null)
        {
            s.Diagnostics.Add(password, "a password needs a username");
        }

        if (tlsSection is not null)
        {
            CheckTls(tlsSection, sink);
        }

        // The MQTT CONNECT carries the password as plain bytes: without TLS anyone on the path to a LAN broker reads it.
        if (sink.Username is not null && !tls.Enabled && sink.Servers.FirstOrDefault(b => !NetworkScope.IsLoopback(b.Host)) is { Host: not null } remote)
        {
            var key = password is not null ? password : s.Node("username")!;
            s.Diagnostics.AddWarning(key, $"alert sink '{name}' sends its {(password is not null ? "username and password" : "username")} to {remote} without TLS, readable by anyone on the network path; add tls: (port 8883) or use a broker on this machine");
        }

        return sink;
    }

    /// <summary>
    /// <c>hosts:</c> of an MQTT sink, the brokers of an HA pair or cluster, parsed and checked as <c>uplinks.mqtt.hosts</c>
    /// (<see cref="MqttBrokerAddress.ParseList"/>: each problem at its entry's line); null when the sink has none (then
    /// <c>host:</c>, default this machine). Not together with <c>host:</c>.
    /// </summary>
    private static (List<string> Entries, List<MqttBrokerAddress> Servers)? ReadMqttSinkHosts(ConfigReader s, int port)
    {
        var list = s.Node("hosts");
        if (list is not null && s.Node("host") is not null)
        {
            s.Diagnostics.Add(list, "host: and hosts: are both set: keep hosts: (the brokers, tried in order) or host: (one broker), not both");
        }

        if (list is null || s.Sequence("hosts") is not { } sequence)
        {
            return null;
        }

        var entries = s.ScalarTexts(sequence, "a broker as host, host:port or [IPv6]:port");

        var servers = MqttBrokerAddress.ParseList(entries, port, "hosts", (i, error) =>
        {
            if (i < 0)
            {
                s.Diagnostics.Add(sequence, error);
            }
            else if (sequence.Items[i] is ConfigScalar { IsNull: false })
            {
                // An entry that is no scalar was reported above.
                s.Diagnostics.Add(sequence.Items[i], error);
            }
        });
        return (entries, servers);
    }

    private static bool IsHeaderToken(string value)
    {
        foreach (var c in value)
        {
            if (c is <= ' ' or > '~')
            {
                return false;
            }
        }

        return true;
    }

    private static void CheckTls(ConfigReader tlsSection, MqttSinkConfig sink)
    {
        var tls = sink.Tls;
        if (!tls.Enabled)
        {
            if (tls.CaFile is not null || tls.ClientCertificateFile is not null)
            {
                tlsSection.Diagnostics.Add(tlsSection.Node("enabled")!, "tls has certificate files but enabled is false");
            }

            return;
        }

        var missing = false;
        foreach (var (key, path) in new[] { ("ca_file", tls.CaFile), ("client_cert_file", tls.ClientCertificateFile), ("client_key_file", tls.ClientKeyFile) })
        {
            if (path is not null && !File.Exists(path))
            {
                tlsSection.Diagnostics.Add(tlsSection.Node(key)!, $"'{path}' does not exist");
                missing = true;
            }
        }

        if (tls.ClientKeyFile is not null && tls.ClientCertificateFile is null)
        {
            tlsSection.Diagnostics.Add(tlsSection.Node("client_key_file")!, "client_key_file is set without client_cert_file");
            missing = true;
        }

        if (missing)
        {
            return;
        }

        // The same loading the sink does at start: a file without a certificate or key fails here, at its own key, not at the first alarm.
        foreach (var problem in TlsFiles.CheckMqtt(tls))
        {
            tlsSection.Diagnostics.Add(tlsSection.Node(problem.Key) ?? tlsSection.Mapping, problem.ToString());
        }
    }

    private static List<GpioOutputConfig> ReadOutputs(ConfigReader s)
    {
        var outputs = new List<GpioOutputConfig>();
        var q = s.Sequence("outputs", required: true);
        if (q is null)
        {
            return outputs;
        }

        var pins = new HashSet<int>();
        foreach (var item in q.Items)
        {
            if (ConfigReader.For(item, s.Diagnostics) is not { } o)
            {
                continue;
            }

            var name = o.Id("name", required: true);
            var pin = o.Int("pin", required: true, min: 0, max: 1023);
            var activeHigh = (o.Enum("active", new Dictionary<string, bool>(StringComparer.Ordinal) { ["high"] = true, ["low"] = false })) ?? true;
            var patterns = new Dictionary<EventSeverity, OutputPattern>
            {
                [EventSeverity.Critical] = o.Enum("critical", Patterns) ?? OutputPattern.On,
                [EventSeverity.Warning] = o.Enum("warning", Patterns) ?? OutputPattern.Off,
                [EventSeverity.Info] = o.Enum("info", Patterns) ?? OutputPattern.Off,
            };
            var failsafe = o.Enum("failsafe", new Dictionary<string, bool>(StringComparer.Ordinal) { ["on"] = true, ["off"] = false }) ?? false;
            var silenceOnAck = o.Bool("silence_on_ack") ?? false;
            o.ReportUnknownKeys();
            if (name is null || pin is null)
            {
                continue;
            }

            if (!pins.Add(pin.Value))
            {
                s.Diagnostics.Add(item, $"pin {pin.Value} is used by two outputs");
            }

            outputs.Add(new GpioOutputConfig(name, pin.Value, activeHigh, patterns, failsafe, silenceOnAck));
        }

        return outputs;
    }


}

/// <summary>Checks <c>alerts:</c> for <c>edgetwin check</c> and the agent's start (found by reflection).</summary>
public sealed class AlertsSectionValidator : IConfigSectionValidator
{
    public string Section => "alerts";

    public void Validate(ConfigReader section)
    {
        ArgumentNullException.ThrowIfNull(section);
        AlertsConfig.Read(section, section.FileDirectory);
    }

    /// <summary>
    /// The alert store (<see cref="AlertsConfig.StoreFileName"/>, in <c>state_directory</c>, else next to the outbox), so
    /// that no other state file or the outbox lands on it. A relative <c>state_directory</c> is taken from the config
    /// file's directory, which check does not know here: then the store is not listed.
    /// </summary>
    public IEnumerable<StateFileSetting> StateFiles(ConfigReader? section)
    {
        var directory = section?.Mapping["state_directory"] is ConfigScalar { Value: { Length: > 0 } d } ? d : null;
        return directory is null || Path.IsPathRooted(directory) ? [StateFileSetting.Fixed("alerts", AlertsConfig.StoreFileName, directory)] : [];
    }

    /// <summary>
    /// What would otherwise pass <c>check</c> and then silently never fire: a device that is not in the site, a role no
    /// device profile has (a typo), a metric the device's profile (or every profile) lacks, a state name no profile of the role knows, and an alarm output or input on a GPIO pin
    /// a device already reads. A known role that no device of this site has is accepted (shared rule sets carry rules for
    /// equipment a site may lack); the agent logs such rules at start.
    /// </summary>
    public void ValidateReferences(ConfigReader section, SiteReferences site)
    {
        ArgumentNullException.ThrowIfNull(section);
        ArgumentNullException.ThrowIfNull(site);
        var devices = site.Config.Devices.Select(d => d.Id).ToHashSet(StringComparer.Ordinal);
        var d = section.Diagnostics;
        if (section.Mapping["rules"] is ConfigSequence rules)
        {
            foreach (var rule in rules.Items.OfType<ConfigMapping>())
            {
                var type = (rule["type"] as ConfigScalar)?.Value;
                if (type == "device_down" && rule["device"] is ConfigScalar device)
                {
                    CheckDevice(device, devices, d);
                }

                if (rule["match"] is not ConfigMapping match)
                {
                    continue;
                }

                if (match["device"] is ConfigScalar md)
                {
                    CheckDevice(md, devices, d);
                }

                if (match["metric"] is ConfigScalar mm && !IsGlob(mm.Value))
                {
                    CheckMetric(mm, match["device"] as ConfigScalar, site, d);
                }

                var role = match["role"] as ConfigScalar;
                if (role is not null && !IsGlob(role.Value) && !site.LibraryRoles.Contains(role.Value))
                {
                    var suggestion = SiteReferences.Closest(role.Value, site.LibraryRoles);
                    d.Add(role, suggestion is not null
                        ? $"unknown role '{role.Value}': no device profile has it (did you mean '{suggestion}'?)"
                        : $"unknown role '{role.Value}': no device profile has it (roles are area.quantity, as in the profiles' metrics)");
                    continue;
                }

                if (type == "state" && rule["states"] is ConfigSequence states)
                {
                    var metric = (match["metric"] as ConfigScalar)?.Value;
                    var known = site.LibraryMetrics
                        .Where(m => m.States is not null
                            && (role is null || Glob.IsMatch(role.Value, m.Role))
                            && (metric is null || Glob.IsMatch(metric, m.Name)))
                        .SelectMany(m => m.States!.Values)
                        .ToHashSet(StringComparer.Ordinal);
                    foreach (var state in states.Items.OfType<ConfigScalar>().Where(s => !known.Contains(s.Value)))
                    {
                        var suggestion = SiteReferences.Closest(state.Value, known);
                        d.Add(state, known.Count == 0
                            ? $"no state series matches this rule's match: (only metrics with states: in their profile can be in a state '{state.Value}')"
                            : suggestion is not null
                                ? $"unknown state '{state.Value}' (did you mean '{suggestion}'?)"
                                : $"unknown state '{state.Value}' (the matching profiles know {string.Join(", ", known.Order(StringComparer.Ordinal))})");
                    }
                }
            }
        }

        CheckPins(section.Mapping, site.Config, d);
        CheckMqttSinkProtocols(section.Mapping, site.Config, d);
        CheckUnwatchedRoles(section.Mapping, site.Config, d);
    }

    /// <summary>
    /// The roles whose silence is dangerous: a device reading one that no rule watches reaches the outbox as samples and
    /// raises no local alarm (small-dc-room's room1-leak did, with the shipped rule set before it had water-leak). One
    /// row per kind of equipment: what the device reads, what would go unseen, the rule that fixes it and a shipped one.
    /// <see cref="UnwatchedRole.AnyWatches"/>: one watched metric of the roles covers the device (a cooling unit stopping
    /// shows in its unit state and its fan state alike); otherwise each metric of the roles needs a rule.
    /// </summary>
    private static readonly UnwatchedRole[] UnwatchedRoles =
    [
        new(["room.leak"], "a leak sensor", "water would raise no local alarm",
            "a state rule matching role room.leak", "water-leak", "datacenter.yaml", AnyWatches: false),
        new(["ups.output_source"], "a UPS's output source", "a UPS on battery would raise no local alarm and its battery would run out unseen",
            "a state rule matching role ups.output_source", "ups-on-battery", "datacenter.yaml", AnyWatches: false),
        new(["rack.inlet_temperature"], "a rack inlet temperature", "a hot rack or cabinet would raise no local alarm until its equipment shuts itself down or trips",
            "a threshold rule matching role rack.inlet_temperature", "rack-inlet-above-allowable", "datacenter.yaml", AnyWatches: false),
        new(["crac.running", "crac.fan_running"], "a cooling unit's state", "a cooling unit that stops would raise no local alarm until its racks overheat",
            "a state rule matching role crac.running, or with the unit in site.cooling_units an event rule on the thermal twin's cooling_failure prediction", "cooling-unit-failed", "datacenter.yaml", AnyWatches: true),
        new(["machine.fault"], "a drive fault", "a tripped drive would raise no local alarm",
            "a threshold rule matching role machine.fault", "drive-fault", "machine-line.yaml", AnyWatches: false),
    ];

    private sealed record UnwatchedRole(string[] Roles, string What, string Consequence, string Fix, string ShippedRule, string ShippedFile, bool AnyWatches);

    /// <summary>
    /// A device reading one of <see cref="UnwatchedRoles"/> whose series no rule matches: one warning per device and row.
    /// A warning: the centre may alarm on it, but not while the uplink is down. Nothing without <c>rules:</c> or with none (a site that
    /// alerts centrally).
    /// </summary>
    private static void CheckUnwatchedRoles(ConfigMapping alerts, SiteConfig site, ConfigDiagnostics d)
    {
        if (alerts["rules"] is not ConfigSequence { Items.Count: > 0 } ruleList)
        {
            return;
        }

        // The rules' own matcher on the series each metric makes; tags are left out (a row's are known only when polled),
        // so a rule narrowed by tags counts as watching. Only kinds that raise on the condition itself: a stuck or missing
        // rule alarms when the sensor goes quiet, not when water, heat or a stop shows in it.
        var rules = ruleList.Items.OfType<ConfigMapping>().ToList();
        var matches = rules
            .Where(r => r["type"] is ConfigScalar { Value: "state" or "threshold" or "rate" })
            .Select(r => r["match"] as ConfigMapping)
            .OfType<ConfigMapping>()
            .Select(m => new SeriesMatch((m["device"] as ConfigScalar)?.Value, (m["metric"] as ConfigScalar)?.Value, (m["role"] as ConfigScalar)?.Value, []))
            .Where(m => m.Device is not null || m.Metric is not null || m.Role is not null)
            .ToList();
        var twinUnits = CoolingUnitsTheTwinWatches(rules, site);
        foreach (var device in site.Devices.Where(x => x.Enabled))
        {
            if (!site.Profiles.TryGetValue(device.Profile, out var profile))
            {
                continue;
            }

            foreach (var row in UnwatchedRoles)
            {
                var metrics = profile.AllMetrics.Where(m => m.Role is { } role && row.Roles.Contains(role, StringComparer.Ordinal)).ToList();
                if (metrics.Count == 0 || (row.AnyWatches && twinUnits.Contains(device.Id)))
                {
                    continue;
                }

                var unwatched = metrics
                    .Where(m => !matches.Exists(x => x.Matches(new Core.Samples.SeriesDescriptor(device.Id, m.Name, m.Unit, m.Kind, m.Role))))
                    .ToList();
                if (unwatched.Count == 0 || (row.AnyWatches && unwatched.Count < metrics.Count))
                {
                    continue;
                }

                var names = string.Join("; ", unwatched.Select(m => $"{m.Name}, role {m.Role}"));
                d.AddWarning(ruleList, $"device '{device.Id}' (profile {device.Profile}) reads {row.What} ({names}) and no rule watches it: {row.Consequence}; add {row.Fix}, e.g. the shipped {row.ShippedRule} in device-profiles/examples/alert-rules/{row.ShippedFile}");
            }
        }
    }

    /// <summary>
    /// The devices of cooling units whose stop the thermal twin reports (its <c>{room}/cooling_failure</c> prediction,
    /// from the unit's <c>crac.running</c>/<c>crac.fan_running</c>) when an event rule raises on it, as the shipped
    /// cooling-unit-failed does: the devices of a unit in <c>site.cooling_units</c> (<see cref="SiteConfig.CoolingUnitOf"/>,
    /// as the twin binds them) in a room with racks, the twin not disabled (<c>thermal_twin.enabled: false</c>).
    /// </summary>
    private static HashSet<string> CoolingUnitsTheTwinWatches(List<ConfigMapping> rules, SiteConfig site)
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        if (site.Sections.TryGetValue("thermal_twin", out var twin) && (twin["enabled"] as ConfigScalar)?.AsBoolean() == false)
        {
            return result;
        }

        var sources = rules
            .Where(r => r["type"] is ConfigScalar { Value: "event" }
                && (r["event"] as ConfigScalar)?.Value is null or "prediction"
                && r["attribute"] is ConfigScalar { Value: "failed_unit_count" })
            .Select(r => (r["source"] as ConfigScalar)?.Value ?? "*")
            .ToList();
        if (sources.Count == 0)
        {
            return result;
        }

        var roomsWithRacks = site.Site.Rooms.Where(r => r.Rows.Any(row => row.Racks.Count > 0)).Select(r => r.Id).ToHashSet(StringComparer.Ordinal);
        var watchedUnits = site.Site.CoolingUnits
            .Where(u => roomsWithRacks.Contains(u.Room) && sources.Exists(s => Glob.IsMatch(s, u.Room + "/cooling_failure")))
            .Select(u => u.Id)
            .ToHashSet(StringComparer.Ordinal);
        foreach (var device in site.Devices)
        {
            if (site.CoolingUnitOf(device) is { } unit && watchedUnits.Contains(unit))
            {
                result.Add(device.Id);
            }
        }

        return result;
    }

    /// <summary>
    /// An MQTT sink left at MQTT 5 on the broker the uplink reaches with <c>protocol: "3.1.1"</c> (the site's broker
    /// speaks only 3.1.1, most likely): its CONNECT would be refused at the first alarm, so check says it now.
    /// </summary>
    private static void CheckMqttSinkProtocols(ConfigMapping alerts, SiteConfig site, ConfigDiagnostics d)
    {
        if (alerts["sinks"] is not ConfigSequence sinks
            || site.Uplinks?["mqtt"] is not ConfigMapping uplink
            || uplink["protocol"] is not ConfigScalar { Value: "3.1.1" })
        {
            return;
        }

        var uplinkBrokers = Brokers(uplink);
        foreach (var sink in sinks.Items.OfType<ConfigMapping>())
        {
            if (sink["type"] is not ConfigScalar { Value: "mqtt" } || sink["protocol"] is not null)
            {
                continue;
            }

            // With hosts: on either side, any broker of the sink's list that the uplink's list has (an HA pair both use).
            if (Brokers(sink).FirstOrDefault(b => uplinkBrokers.Exists(b.SameAs)) is { Host: not null } shared)
            {
                d.AddWarning(sink["hosts"] ?? sink["host"] ?? sink, $"alert sink '{(sink["name"] as ConfigScalar)?.Value}' speaks MQTT 5 (protocol defaults to \"5\") to {shared}, the broker uplinks.mqtt reaches with protocol 3.1.1; a broker that speaks only 3.1.1 refuses it and no alert gets through: add protocol: \"3.1.1\" to the sink");
            }
        }

        // Hosts and ports as the readers default them: the sink's host is this machine, the uplink's is required; TLS moves the port to 8883.
        static List<MqttBrokerAddress> Brokers(ConfigMapping m)
        {
            var tls = m["tls"] is ConfigMapping t && (t["enabled"] as ConfigScalar)?.AsBoolean() != false;
            var port = (m["port"] as ConfigScalar)?.AsInt64() is { } p and >= 1 and <= 65535 ? (int)p : tls ? 8883 : 1883;
            return m["hosts"] is ConfigSequence hosts
                ? MqttBrokerAddress.ParseList([.. hosts.Items.OfType<ConfigScalar>().Select(h => h.Value)], port, "hosts", static (_, _) => { })
                : [new MqttBrokerAddress((m["host"] as ConfigScalar)?.Value ?? "127.0.0.1", port)];
        }
    }

    private static bool IsGlob(string pattern) => pattern.AsSpan().IndexOfAny('*', '?') >= 0;

    private static void CheckDevice(ConfigScalar device, HashSet<string> devices, ConfigDiagnostics d)
    {
        if (IsGlob(device.Value) || devices.Contains(device.Value))
        {
            return;
        }

        var suggestion = SiteReferences.Closest(device.Value, devices);
        d.Add(device, suggestion is not null
            ? $"unknown device '{device.Value}' (did you mean '{suggestion}'?)"
            : $"unknown device '{device.Value}' (devices: has {string.Join(", ", devices.Order(StringComparer.Ordinal))})");
    }

    /// <summary>
    /// A metric name is matched exactly against the series' metric, which is the profile's metric name: one that the
    /// named device's profile (or, without a device, every profile) lacks matches nothing, and the rule never fires.
    /// </summary>
    private static void CheckMetric(ConfigScalar metric, ConfigScalar? device, SiteReferences site, ConfigDiagnostics d)
    {
        var target = device is null || IsGlob(device.Value) ? null : site.Config.Devices.FirstOrDefault(x => x.Id == device.Value);
        if (device is not null && !IsGlob(device.Value) && target is null)
        {
            return; // the unknown device is reported already
        }

        if (target is not null && site.Config.Profiles.TryGetValue(target.Profile, out var profile))
        {
            var names = profile.AllMetrics.Select(m => m.Name).ToHashSet(StringComparer.Ordinal);
            if (!names.Contains(metric.Value))
            {
                var suggestion = SiteReferences.Closest(metric.Value, names);
                d.Add(metric, suggestion is not null
                    ? $"unknown metric '{metric.Value}': device '{target.Id}' (profile {profile.Id}) has no such metric (did you mean '{suggestion}'?)"
                    : $"unknown metric '{metric.Value}': device '{target.Id}' (profile {profile.Id}) has {string.Join(", ", names.Order(StringComparer.Ordinal))}");
            }

            return;
        }

        var library = site.LibraryMetrics.Select(m => m.Name).ToHashSet(StringComparer.Ordinal);
        if (!library.Contains(metric.Value))
        {
            var suggestion = SiteReferences.Closest(metric.Value, library);
            d.Add(metric, suggestion is not null
                ? $"unknown metric '{metric.Value}': no device profile has it (did you mean '{suggestion}'?)"
                : $"unknown metric '{metric.Value}': no device profile has it (metric names are the profiles' metrics[].name)");
        }
    }

    /// <summary>
    /// An alarm output driving a pin a device reads (or an alarm input sharing it) fights the sensor for the line; so does
    /// an output of one GPIO sink on a pin another sink drives, or an alarm input on a pin a relay drives (the second open
    /// of the line turned the relay into an input, or the input read the relay's own level). Each sink only checked its
    /// own outputs, and the inputs only each other.
    /// </summary>
    private static void CheckPins(ConfigMapping alerts, SiteConfig config, ConfigDiagnostics d)
    {
        var devicePins = new Dictionary<int, string>();
        foreach (var device in config.Devices)
        {
            if (device.Address is { Scheme: AddressScheme.Gpio, Pin: { } pin })
            {
                devicePins.TryAdd(pin, device.Id);
            }
        }

        static int? PinOf(ConfigNode? node) =>
            node is ConfigScalar s && int.TryParse(s.Value, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var p) ? p : null;

        // As check warns for a GPIO device: BCM 2/3 are I2C bus 1's SDA/SCL, BCM 4 the w1-gpio overlay's default pin. A
        // relay there takes the bus's line and every sensor on it fails; "pin 3" is often meant as header pin 3 (BCM 2).
        var i2c1 = config.Devices.FirstOrDefault(x => x.Enabled && x.Address is { Scheme: AddressScheme.I2c, Bus: 1 });
        var w1 = config.Devices.FirstOrDefault(x => x.Enabled && x.Address.Scheme == AddressScheme.OneWire);

        void Check(ConfigNode? pin, string what)
        {
            if (PinOf(pin) is { } p && devicePins.TryGetValue(p, out var owner))
            {
                d.Add(pin!, $"GPIO pin {p} is already read by device '{owner}' (address gpio:{p}); an alarm {what} needs a pin of its own");
            }
            else if (PinOf(pin) is 2 or 3 && i2c1 is not null)
            {
                var p2 = PinOf(pin)!.Value;
                d.AddWarning(pin!, $"GPIO {p2} is {(p2 == 2 ? "SDA" : "SCL")} of I2C bus 1 (header pin {(p2 == 2 ? 3 : 5)}), which device '{i2c1.Id}' uses: an alarm {what} there takes the bus's line; give it another pin (pins are BCM numbers, not header pins)");
            }
            else if (PinOf(pin) == 4 && w1 is not null)
            {
                d.AddWarning(pin!, $"GPIO 4 is the default 1-Wire pin of the w1-gpio overlay, which device '{w1.Id}' needs: give this alarm {what} another pin, or move the bus with dtoverlay=w1-gpio,gpiopin=N");
            }
        }

        var outputPins = new Dictionary<int, (string Sink, string Output)>();
        if (alerts["sinks"] is ConfigSequence sinks)
        {
            foreach (var sink in sinks.Items.OfType<ConfigMapping>())
            {
                if ((sink["type"] as ConfigScalar)?.Value == "gpio" && sink["outputs"] is ConfigSequence outputs)
                {
                    var sinkName = (sink["name"] as ConfigScalar)?.Value ?? "?";
                    foreach (var output in outputs.Items.OfType<ConfigMapping>())
                    {
                        Check(output["pin"], "output");
                        var name = (output["name"] as ConfigScalar)?.Value ?? "?";
                        if (PinOf(output["pin"]) is { } p)
                        {
                            if (outputPins.TryGetValue(p, out var first) && first.Sink != sinkName)
                            {
                                d.Add(output["pin"]!, $"GPIO pin {p} is already driven by output '{first.Output}' of sink '{first.Sink}'; each output needs a pin of its own");
                            }
                            else
                            {
                                outputPins.TryAdd(p, (sinkName, name));
                            }
                        }
                    }
                }
            }
        }

        if (alerts["inputs"] is ConfigSequence inputs)
        {
            foreach (var input in inputs.Items.OfType<ConfigMapping>())
            {
                Check(input["pin"], "input");
                if (PinOf(input["pin"]) is { } p && outputPins.TryGetValue(p, out var driver))
                {
                    d.Add(input["pin"]!, $"GPIO pin {p} is driven by output '{driver.Output}' of sink '{driver.Sink}'; an alarm input needs a pin of its own (the contact and the relay would share one line)");
                }
            }
        }
    }
}
