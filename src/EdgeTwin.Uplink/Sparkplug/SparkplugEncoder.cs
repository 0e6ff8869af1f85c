using System.Globalization;
using System.Text.Json;
using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Payloads;
using EdgeTwin.Uplink.Sparkplug.Proto;
using Google.Protobuf;

namespace EdgeTwin.Uplink.Sparkplug;

/// <summary>Sparkplug B data type codes (specification, "Data Types").</summary>
internal static class SparkplugDataType
{
    public const uint Int32 = 3;
    public const uint Int64 = 4;
    public const uint UInt64 = 8;
    public const uint Double = 10;
    public const uint Boolean = 11;
    public const uint String = 12;
    public const uint DateTime = 13;
}

/// <summary>The node control commands of one NCMD (<see cref="SparkplugEncoder.ReadCommand"/>).</summary>
[Flags]
internal enum NodeCommands
{
    None = 0,
    Rebirth = 1,
    NextServer = 2,
}

/// <summary>
/// Sparkplug B for the MQTT uplink, mapped so that every metric name is one tag of a tag-based host (Uplink README,
/// "Sparkplug B"). The gateway is the edge node; the device of a summary or raw body is a Sparkplug device whose
/// metrics are named after the series (<c>{metric}{tags}/{statistic}</c> for summaries, <c>{metric}{tags}</c> for raw
/// points, one metric value per point with its own timestamp); events are node data (NDATA) on a fixed set of
/// <c>edgetwin/event/…</c> metrics declared in NBIRTH, so alert rules, <c>outbox</c> or <c>twin_request</c> never
/// become devices. A device's metric set only grows: a DBIRTH declares every metric the device has had since the
/// agent started, and is sent before the device's first DDATA of a connection (or of a rebirth) and before a DDATA
/// that brings a series (or a datatype) the device has not declared yet — once per new series, never again for a
/// known one. NDEATH is the will (bdSeq from <see cref="BdSeqStore"/>), NBIRTH follows CONNACK.
/// <c>edgetwin/seq</c> (UInt64) carries the outbox sequence so the host can de-duplicate replays; every metric carries
/// the time it describes and <c>is_historical</c> on the backlog lane. Payload <c>seq</c> runs 0–255 over NBIRTH,
/// DBIRTH, DDATA and NDATA in wire order (the caller holds the send lock).
/// With aliases (<c>sparkplug_aliases</c>) every birth metric also carries an alias, unique across the edge node and kept
/// for the life of the process (a device's metrics only grow, so a rebirth declares the same pairs again), and NDATA and
/// DDATA carry the alias instead of the name; a metric not declared yet still makes its device's DBIRTH first, so no
/// DATA ever carries an alias the host has not been told.
/// </summary>
internal sealed class SparkplugEncoder : IMqttEncoder
{
    public const string Namespace = "spBv1.0";
    public const string SequenceMetric = "edgetwin/seq";
    public const string SchemaMetric = "edgetwin/schema";
    private const string BdSeqName = "bdSeq";

    /// <summary>The alias of <see cref="RebirthMetric"/> with aliases on (an NCMD may name it by alias only).</summary>
    public const ulong RebirthAlias = 2;

    /// <summary>The alias of <see cref="NextServerMetric"/> with aliases on (announced only with several servers).</summary>
    public const ulong NextServerAlias = 3;
    public const string FactsPrefix = "edgetwin/facts/";
    public const string EventPrefix = "edgetwin/event/";

    /// <summary>The node control metric a host sets true in an NCMD to ask for NBIRTH and the DBIRTHs again.</summary>
    public const string RebirthMetric = "Node Control/Rebirth";

    /// <summary>
    /// The node control metric a host sets true in an NCMD to move the edge node to the next MQTT server of its list
    /// (Sparkplug 3.0, "Edge Node Control"); announced in NBIRTH only with several servers, where the node can honour it.
    /// </summary>
    public const string NextServerMetric = "Node Control/Next Server";

    /// <summary>The polling event (Outbox README) after which the device gets its DDEATH.</summary>
    private const string DeviceDownEvent = "device_down";

    /// <summary>Engineering units (String), the property Tahu and Ignition's MQTT Engine read into a tag's unit.</summary>
    public const string UnitProperty = "engUnit";

    /// <summary>Sparkplug quality (Int32): 192 good, 500 stale, 0 bad.</summary>
    public const string QualityProperty = "Quality";

    /// <summary>The agent's own quality code (Int32, Outbox README: 0 good … 4 device error).</summary>
    public const string AgentQualityProperty = "edgetwin_quality";

    /// <summary>Node metrics of an event: body member and datatype (timestamps DateTime, the rest String).</summary>
    private static readonly (string Member, uint Type)[] EventMembers =
    [
        ("event", SparkplugDataType.String), ("severity", SparkplugDataType.String), ("source", SparkplugDataType.String),
        ("device", SparkplugDataType.String), ("series", SparkplugDataType.String), ("metric", SparkplugDataType.String),
        ("unit", SparkplugDataType.String), ("message", SparkplugDataType.String), ("attributes", SparkplugDataType.String),
        ("start_ms", SparkplugDataType.DateTime), ("end_ms", SparkplugDataType.DateTime),
    ];

    /// <summary>Summary members sent on every DDATA (absent ones as null/false), so a series' metric set never changes.</summary>
    private static readonly (string Member, uint Type, bool HasUnit)[] SummaryMembers =
    [
        ("count", SparkplugDataType.Int64, false), ("bad", SparkplugDataType.Int64, false),
        ("min", SparkplugDataType.Double, true), ("max", SparkplugDataType.Double, true), ("mean", SparkplugDataType.Double, true),
        ("last", SparkplugDataType.Double, true), ("stddev", SparkplugDataType.Double, true),
        ("partial", SparkplugDataType.Boolean, false), ("condensed", SparkplugDataType.Boolean, false),
        ("start_ms", SparkplugDataType.DateTime, false), ("first_ms", SparkplugDataType.DateTime, false), ("last_ms", SparkplugDataType.DateTime, false),
    ];

    /// <summary>Members that say which series the body is about (they are in the metric name or a property) or are the metric timestamp.</summary>
    private static readonly HashSet<string> IdentityMembers = new(StringComparer.Ordinal)
    {
        "v", "type", "gateway", "site", "device", "series", "metric", "unit", "role", "tags", "time_ms", "end_ms",
    };

    private readonly string _group;
    private readonly string _node;
    private readonly BdSeqStore _bdSeqStore;
    private readonly Func<GatewayFacts>? _facts;
    private readonly Func<IReadOnlyList<SparkplugSeries>>? _knownSeries;
    private Dictionary<string, List<SparkplugSeries>>? _knownByDevice; // by cleaned device id
    private HashSet<string>? _knownKeys;
    private readonly Dictionary<string, DeviceState> _devices = new(StringComparer.Ordinal);
    private readonly Func<IReadOnlyCollection<string>>? _currentDevices;
    private readonly Action<string>? _onRetired;
    private HashSet<string>? _current; // cleaned ids, as last read from _currentDevices
    private bool _currentReadThisConnection;
    private readonly HashSet<string> _retiredReported = new(StringComparer.Ordinal);
    private readonly bool _announceNextServer; // uplinks.mqtt.hosts has more than one server
    private readonly Dictionary<string, ulong>? _nodeAliases; // node metric name → alias; null without aliases
    private ulong _nextAlias; // the next alias to hand out (node and devices share the counter: unique across the node)
    private long _bdSeq = -1;
    private ulong _seq;

    /// <param name="knownSeries">The series the agent polls (read again when a DBIRTH is due for a series not among
    /// those last read), declared in their device's DBIRTH before their first data; null = declare series as they come.</param>
    /// <param name="currentDevices">The devices the agent has under its config now: a device not among them whose data comes
    /// from the backlog gets its DDEATH after each DDATA; null = every device counts as current.</param>
    /// <param name="onRetired">Told the first time a device not among <paramref name="currentDevices"/> gets its DDEATH.</param>
    public SparkplugEncoder(string group, string node, BdSeqStore bdSeqStore, Func<GatewayFacts>? facts = null, Func<IReadOnlyList<SparkplugSeries>>? knownSeries = null,
        Func<IReadOnlyCollection<string>>? currentDevices = null, Action<string>? onRetired = null, bool announceNextServer = false, bool aliases = false)
    {
        _announceNextServer = announceNextServer;
        if (aliases)
        {
            // The fixed node metrics first, so the node controls have the aliases ReadCommand knows without this instance.
            _nodeAliases = new Dictionary<string, ulong>(StringComparer.Ordinal)
            {
                [BdSeqName] = 1, [RebirthMetric] = RebirthAlias, [NextServerMetric] = NextServerAlias, [SchemaMetric] = 4, [SequenceMetric] = 5,
            };
            _nextAlias = 6;
            foreach (var (member, _) in EventMembers)
            {
                _nodeAliases[EventPrefix + member] = _nextAlias++;
            }
        }

        _currentDevices = currentDevices;
        _onRetired = onRetired;
        _facts = facts;
        _knownSeries = knownSeries;
        _group = group;
        _node = node;
        _bdSeqStore = bdSeqStore;
    }

    /// <summary>The bdSeq of the current connection (-1 before the first).</summary>
    public long BdSeq => _bdSeq;

    /// <summary>Whether births declare aliases and data carries them instead of names (<c>sparkplug_aliases</c>).</summary>
    public bool Aliases => _nodeAliases is not null;

    public MqttOutgoing BeginSession()
    {
        _bdSeq = _bdSeqStore.Next();
        _currentReadThisConnection = false;
        ForgetBirths();
        // The will is fixed at connect time, so it carries no timestamp.
        var death = new Payload();
        death.Metrics.Add(BdSeqMetric());
        return new MqttOutgoing(NodeTopic("NDEATH"), death.ToByteArray(), Retain: false, IsJson: false);
    }

    public IReadOnlyList<MqttOutgoing> Birth(DateTimeOffset now)
    {
        var ms = (ulong)now.ToUnixTimeMilliseconds();
        var birth = new Payload { Timestamp = ms, Seq = 0 };
        _seq = 0;
        var bd = BdSeqMetric();
        bd.Timestamp = ms;
        birth.Metrics.Add(bd);
        birth.Metrics.Add(new Payload.Types.Metric { Name = RebirthMetric, Timestamp = ms, Datatype = SparkplugDataType.Boolean, BooleanValue = false });
        if (_announceNextServer)
        {
            birth.Metrics.Add(new Payload.Types.Metric { Name = NextServerMetric, Timestamp = ms, Datatype = SparkplugDataType.Boolean, BooleanValue = false });
        }

        birth.Metrics.Add(new Payload.Types.Metric { Name = SchemaMetric, Timestamp = ms, Datatype = SparkplugDataType.Int64, LongValue = JsonEnvelope.SchemaVersion });

        // Every node metric an NDATA may carry (the events), declared once with no value yet.
        birth.Metrics.Add(new Payload.Types.Metric { Name = SequenceMetric, Timestamp = ms, Datatype = SparkplugDataType.UInt64, IsNull = true });
        foreach (var (member, type) in EventMembers)
        {
            birth.Metrics.Add(new Payload.Types.Metric { Name = EventPrefix + member, Timestamp = ms, Datatype = type, IsNull = true });
        }

        if (_facts?.Invoke() is { } facts)
        {
            // Fleet facts as String metrics (Sparkplug "Properties/…" style names under edgetwin/).
            AddString(birth, ms, FactsPrefix + "version", facts.Version);
            AddString(birth, ms, FactsPrefix + "arch", facts.Architecture);
            AddString(birth, ms, FactsPrefix + "config_sha256", facts.ConfigSha256);
            if (facts.Instance is { } instance)
            {
                AddString(birth, ms, FactsPrefix + "instance", instance);
            }

            foreach (var model in facts.Models)
            {
                AddString(birth, ms, $"{FactsPrefix}models/{model.Name}/version", model.Version);
                if (model.State is { } state)
                {
                    AddString(birth, ms, $"{FactsPrefix}models/{model.Name}/state", state);
                }

                if (model.Error is { } error)
                {
                    AddString(birth, ms, $"{FactsPrefix}models/{model.Name}/error", error);
                }
            }
        }

        if (_nodeAliases is not null)
        {
            // Facts come and go with models: a name seen for the first time takes the next alias, a known one keeps its own.
            foreach (var m in birth.Metrics)
            {
                if (!_nodeAliases.TryGetValue(m.Name, out var alias))
                {
                    _nodeAliases[m.Name] = alias = _nextAlias++;
                }

                m.Alias = alias;
            }
        }

        return [new MqttOutgoing(NodeTopic("NBIRTH"), birth.ToByteArray(), Retain: false, IsJson: false)];
    }

    public IReadOnlyList<MqttOutgoing> Rebirth(DateTimeOffset now)
    {
        // A rebirth (same bdSeq, seq back to 0) must be followed by every device's DBIRTH again before its DDATA.
        ForgetBirths();
        return Birth(now);
    }

    /// <summary>A new connection or rebirth: every device is born again, declaring all the metrics it has had so far.</summary>
    private void ForgetBirths()
    {
        foreach (var state in _devices.Values)
        {
            state.Born = false;
        }
    }

    private static void AddString(Payload payload, ulong ms, string name, string value) =>
        payload.Metrics.Add(new Payload.Types.Metric { Name = name, Timestamp = ms, Datatype = SparkplugDataType.String, StringValue = value });

    public void Encode(OutboxEntry entry, bool historical, List<MqttOutgoing> output)
    {
        var record = entry.Record;
        var time = (ulong)Math.Max(0, record.TimestampUnixMs);
        var metrics = new List<Payload.Types.Metric>
        {
            new() { Name = SequenceMetric, Timestamp = time, Datatype = SparkplugDataType.UInt64, LongValue = (ulong)entry.Sequence },
        };
        string? unit;
        string? seriesKey;
        var deviceDown = false;
        using (var doc = Parse(entry))
        {
            var body = doc.RootElement;
            seriesKey = Text(body, "series");
            switch (record.Kind)
            {
                case OutboxKind.Summary:
                    unit = AddSummary(body, SeriesName(body, record.DeviceId), time, metrics);
                    break;
                case OutboxKind.Raw:
                    unit = AddRaw(body, SeriesName(body, record.DeviceId), time, metrics);
                    break;
                default:
                    // Events (and the reserved kinds, never written): node data, whatever their device.
                    AddEvent(body, time, metrics);
                    deviceDown = Text(body, "event") == DeviceDownEvent;
                    unit = null;
                    break;
            }
        }

        if (historical)
        {
            foreach (var m in metrics)
            {
                m.IsHistorical = true;
            }
        }

        if (record.Kind is not (OutboxKind.Summary or OutboxKind.Raw))
        {
            if (_nodeAliases is not null)
            {
                // edgetwin/seq and the event metrics: a fixed set, declared in every NBIRTH.
                foreach (var m in metrics)
                {
                    m.Alias = _nodeAliases[m.Name];
                    m.ClearName();
                }
            }

            var node = new Payload { Timestamp = time, Seq = NextSeq() };
            node.Metrics.AddRange(metrics);
            output.Add(new MqttOutgoing(NodeTopic("NDATA"), node.ToByteArray(), Retain: false, IsJson: false));
            if (deviceDown && !historical)
            {
                DeviceDeath(record.DeviceId, time, output);
            }

            return;
        }

        var device = CleanDevice(record.DeviceId);
        if (!_devices.TryGetValue(device, out var state))
        {
            state = new DeviceState();
            _devices[device] = state;
        }

        var needsBirth = !state.Born;
        foreach (var m in metrics)
        {
            if (state.Declared.TryGetValue(m.Name, out var known))
            {
                needsBirth |= known.Datatype != m.Datatype;
                known.Datatype = m.Datatype;
                known.Last = m;
            }
            else
            {
                needsBirth = true;
                state.Declared[m.Name] = known = new DeclaredMetric(m.Name, m.Datatype, NextDeviceAlias(), m, m.Name == SequenceMetric || !HasUnit(m.Name, record.Kind) ? null : unit);
            }

            if (known.Alias != 0)
            {
                m.Alias = known.Alias;
            }
        }

        if (needsBirth)
        {
            DeclareKnownSeries(device, seriesKey, time, state);
            var birth = new Payload { Timestamp = time, Seq = NextSeq() };
            foreach (var declared in state.Declared.Values)
            {
                birth.Metrics.Add(declared.ForBirth());
            }

            output.Add(new MqttOutgoing(DeviceTopic("DBIRTH", device), birth.ToByteArray(), Retain: false, IsJson: false));
            state.Born = true;
        }

        if (_nodeAliases is not null)
        {
            // Declared above (the DBIRTH just sent, or an earlier one of this birth): the alias alone names the metric.
            foreach (var m in metrics)
            {
                m.ClearName();
            }
        }

        var data = new Payload { Timestamp = time, Seq = NextSeq() };
        data.Metrics.AddRange(metrics);
        output.Add(new MqttOutgoing(DeviceTopic("DDATA", device), data.ToByteArray(), Retain: false, IsJson: false));
        if (historical && IsRetired(device))
        {
            // Backlog of a device the config no longer has: nothing live follows, so it dies again right after its data
            // (the host would otherwise show it online for ever; the agent sends no device_down for a device it dropped).
            DeviceDeath(record.DeviceId, time, output);
        }
    }

    /// <summary>
    /// Whether <paramref name="device"/> (cleaned) is not among the agent's devices now. Without the list (the uplink used on
    /// its own) no device is. The list is read again on a miss, at most once per connection (the config does not change
    /// while the agent runs; a miss is a device dropped from it, or one the list did not have yet when last read).
    /// </summary>
    private bool IsRetired(string device)
    {
        if (_currentDevices is null)
        {
            return false;
        }

        if (_current is null || (!_current.Contains(device) && !_currentReadThisConnection))
        {
            _current = new HashSet<string>(StringComparer.Ordinal);
            foreach (var id in _currentDevices())
            {
                _current.Add(CleanDevice(id));
            }

            _currentReadThisConnection = true;
        }

        if (_current.Contains(device))
        {
            return false;
        }

        if (_retiredReported.Add(device))
        {
            _onRetired?.Invoke(device);
        }

        return true;
    }

    /// <summary>
    /// Adds the device's series the agent knows but has not sent yet to what its DBIRTH declares (null values), so one
    /// DBIRTH covers them all. The list is read again only when the series that caused the birth is not on it.
    /// </summary>
    private void DeclareKnownSeries(string device, string? seriesKey, ulong time, DeviceState state)
    {
        if (_knownSeries is null)
        {
            return;
        }

        if (_knownByDevice is null || (seriesKey is not null && !_knownKeys!.Contains(seriesKey)))
        {
            var all = _knownSeries();
            _knownByDevice = new Dictionary<string, List<SparkplugSeries>>(StringComparer.Ordinal);
            _knownKeys = new HashSet<string>(StringComparer.Ordinal);
            foreach (var series in all)
            {
                _knownKeys.Add(series.Key);
                var clean = CleanDevice(series.DeviceId);
                if (!_knownByDevice.TryGetValue(clean, out var list))
                {
                    _knownByDevice[clean] = list = [];
                }

                list.Add(series);
            }
        }

        if (!_knownByDevice.TryGetValue(device, out var ofDevice))
        {
            return;
        }

        foreach (var series in ofDevice)
        {
            var name = series.Key.Length > series.DeviceId.Length + 1 && series.Key.StartsWith(series.DeviceId, StringComparison.Ordinal) && series.Key[series.DeviceId.Length] == '/'
                ? series.Key[(series.DeviceId.Length + 1)..]
                : series.Key;
            var unit = series.Unit.Length > 0 ? series.Unit : null;
            if (series.Raw)
            {
                Declare(state, name, SparkplugDataType.Double, unit, time);
                continue;
            }

            foreach (var (member, type, hasUnit) in SummaryMembers)
            {
                Declare(state, $"{name}/{member}", type, hasUnit ? unit : null, time);
            }
        }
    }

    private void Declare(DeviceState state, string name, uint type, string? unit, ulong time)
    {
        if (!state.Declared.ContainsKey(name))
        {
            state.Declared[name] = new DeclaredMetric(name, type, NextDeviceAlias(), new Payload.Types.Metric { Name = name, Timestamp = time, Datatype = type, IsNull = true }, unit);
        }
    }

    /// <summary>A device metric's alias, once for the life of the process (0 = aliases off).</summary>
    private ulong NextDeviceAlias() => _nodeAliases is null ? 0 : _nextAlias++;

    private static bool HasUnit(string name, OutboxKind kind)
    {
        if (kind == OutboxKind.Raw)
        {
            return true;
        }

        var stat = name.AsSpan(name.LastIndexOf('/') + 1);
        foreach (var (member, _, hasUnit) in SummaryMembers)
        {
            if (stat.SequenceEqual(member))
            {
                return hasUnit;
            }
        }

        return false;
    }

    /// <summary>
    /// The edge node lost the device ([tck-id-operational-behavior-device-ddeath]): a DDEATH (seq, timestamp, no metrics)
    /// when the device was born on this connection, and the device is born again before its next DDATA. Only for a live
    /// <c>device_down</c>: one replayed from the backlog is history, the device may well be up and publishing now.
    /// </summary>
    private void DeviceDeath(string deviceId, ulong time, List<MqttOutgoing> output)
    {
        var device = CleanDevice(deviceId);
        if (!_devices.TryGetValue(device, out var state) || !state.Born)
        {
            return;
        }

        var death = new Payload { Timestamp = time, Seq = NextSeq() };
        output.Add(new MqttOutgoing(DeviceTopic("DDEATH", device), death.ToByteArray(), Retain: false, IsJson: false));
        state.Born = false;
    }

    public MqttOutgoing Death(DateTimeOffset now)
    {
        var death = new Payload { Timestamp = (ulong)now.ToUnixTimeMilliseconds() };
        death.Metrics.Add(BdSeqMetric());
        return new MqttOutgoing(NodeTopic("NDEATH"), death.ToByteArray(), Retain: false, IsJson: false);
    }

    /// <summary>The node's command topic, subscribed (QoS 1) before NBIRTH ([tck-id-message-flow-edge-node-ncmd-subscribe]).</summary>
    public string CommandTopic => NodeTopic("NCMD");

    /// <summary>
    /// What an NCMD payload asks for: <c>Node Control/Rebirth</c> = true, <c>Node Control/Next Server</c> = true (or both).
    /// A payload that is not Sparkplug B throws <see cref="InvalidProtocolBufferException"/>: the caller logs it, a command
    /// never ends the connection. Other metrics ask for nothing (the edge node has no other writable metrics).
    /// </summary>
    public static NodeCommands ReadCommand(ReadOnlySpan<byte> payload, bool aliases = false)
    {
        var command = Payload.Parser.ParseFrom(payload);
        var asked = NodeCommands.None;
        foreach (var m in command.Metrics)
        {
            if (m.HasBooleanValue && m.BooleanValue)
            {
                asked |= m.Name switch
                {
                    RebirthMetric => NodeCommands.Rebirth,
                    NextServerMetric => NodeCommands.NextServer,
                    // With aliases a host sends NCMD metrics by alias only ([tck-id-payloads-alias-data-cmd-requirement]).
                    _ when aliases && !m.HasName && m.HasAlias => m.Alias switch
                    {
                        RebirthAlias => NodeCommands.Rebirth,
                        NextServerAlias => NodeCommands.NextServer,
                        _ => NodeCommands.None,
                    },
                    _ => NodeCommands.None,
                };
            }
        }

        return asked;
    }

    private ulong NextSeq()
    {
        _seq = (_seq + 1) & 0xFF;
        return _seq;
    }

    private Payload.Types.Metric BdSeqMetric() => new() { Name = BdSeqName, Datatype = SparkplugDataType.Int64, LongValue = (ulong)Math.Max(0, _bdSeq) };

    private string NodeTopic(string type) => $"{Namespace}/{_group}/{type}/{_node}";

    private string DeviceTopic(string type, string device) => $"{Namespace}/{_group}/{type}/{_node}/{device}";

    private static string CleanDevice(string device)
    {
        if (device.Length == 0)
        {
            return "_";
        }

        return device.AsSpan().IndexOfAny("/+#") < 0 ? device : string.Create(device.Length, device, static (span, d) =>
        {
            for (var i = 0; i < d.Length; i++)
            {
                span[i] = d[i] is '/' or '+' or '#' ? '_' : d[i];
            }
        });
    }

    private static JsonDocument Parse(OutboxEntry entry)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(entry.Record.Payload);
        }
        catch (JsonException ex)
        {
            throw new InvalidBodyException($"Outbox entry {entry.Sequence} ({entry.Record.Kind}, device {entry.Record.DeviceId}) has a body that is not valid JSON", ex);
        }

        if (doc.RootElement.ValueKind != JsonValueKind.Object)
        {
            doc.Dispose();
            throw new InvalidBodyException($"Outbox entry {entry.Sequence} ({entry.Record.Kind}, device {entry.Record.DeviceId}) has a body that is not a JSON object",
                new FormatException($"a JSON {doc.RootElement.ValueKind} where an object was expected"));
        }

        return doc;
    }

    /// <summary>
    /// The series part of the metric names: the series key without its <c>{device}/</c> prefix
    /// (<c>pdu-a01-a/outlet_current{outlet=7}</c> → <c>outlet_current{outlet=7}</c>), else the metric, else <c>_</c>.
    /// </summary>
    private static string SeriesName(JsonElement body, string device)
    {
        if (Text(body, "series") is { Length: > 0 } series)
        {
            return series.Length > device.Length + 1 && series.StartsWith(device, StringComparison.Ordinal) && series[device.Length] == '/'
                ? series[(device.Length + 1)..]
                : series;
        }

        return Text(body, "metric") is { Length: > 0 } metric ? metric : "_";
    }

    private static string? Text(JsonElement body, string member) =>
        body.TryGetProperty(member, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static string? AddSummary(JsonElement body, string series, ulong time, List<Payload.Types.Metric> metrics)
    {
        foreach (var (member, type, _) in SummaryMembers)
        {
            var m = new Payload.Types.Metric { Name = $"{series}/{member}", Timestamp = time, Datatype = type };
            var present = body.TryGetProperty(member, out var v);
            if (type == SparkplugDataType.Boolean)
            {
                // Absent means false (Outbox README): the metric is always there, so the set never changes.
                m.BooleanValue = present && v.ValueKind == JsonValueKind.True;
            }
            else if (present && v.ValueKind == JsonValueKind.Number)
            {
                SetNumber(m, v);
            }
            else
            {
                m.IsNull = true;
            }

            metrics.Add(m);
        }

        // Members a later body version adds (additive changes keep v1): by their JSON type, nulls left out.
        foreach (var p in body.EnumerateObject())
        {
            if (IdentityMembers.Contains(p.Name) || IsSummaryMember(p.Name))
            {
                continue;
            }

            var m = new Payload.Types.Metric { Name = $"{series}/{p.Name}", Timestamp = time };
            switch (p.Value.ValueKind)
            {
                case JsonValueKind.Number:
                    m.Datatype = SparkplugDataType.Double;
                    m.DoubleValue = p.Value.GetDouble();
                    break;
                case JsonValueKind.True or JsonValueKind.False:
                    m.Datatype = SparkplugDataType.Boolean;
                    m.BooleanValue = p.Value.GetBoolean();
                    break;
                case JsonValueKind.String:
                    m.Datatype = SparkplugDataType.String;
                    m.StringValue = p.Value.GetString();
                    break;
                case JsonValueKind.Object or JsonValueKind.Array:
                    m.Datatype = SparkplugDataType.String;
                    m.StringValue = p.Value.GetRawText();
                    break;
                default:
                    continue;
            }

            metrics.Add(m);
        }

        return Text(body, "unit");
    }

    private static bool IsSummaryMember(string name)
    {
        foreach (var (member, _, _) in SummaryMembers)
        {
            if (member == name)
            {
                return true;
            }
        }

        return false;
    }

    private static void SetNumber(Payload.Types.Metric m, JsonElement v)
    {
        switch (m.Datatype)
        {
            case SparkplugDataType.Int64:
                // Sparkplug carries signed integers in the unsigned long_value, two's complement.
                m.LongValue = unchecked((ulong)(v.TryGetInt64(out var l) ? l : (long)v.GetDouble()));
                break;
            case SparkplugDataType.DateTime:
                m.LongValue = v.TryGetInt64(out var ms) && ms >= 0 ? (ulong)ms : 0;
                break;
            default:
                m.DoubleValue = v.GetDouble();
                break;
        }
    }

    /// <summary>One metric value per point, all under the series' name, each with its own time and quality.</summary>
    private static string? AddRaw(JsonElement body, string series, ulong time, List<Payload.Types.Metric> metrics)
    {
        if (body.TryGetProperty("points", out var points) && points.ValueKind == JsonValueKind.Array)
        {
            foreach (var point in points.EnumerateArray())
            {
                if (point.ValueKind != JsonValueKind.Array || point.GetArrayLength() < 2)
                {
                    continue;
                }

                var t = point[0].ValueKind == JsonValueKind.Number && point[0].TryGetInt64(out var pt) && pt >= 0 ? (ulong)pt : time;
                var m = new Payload.Types.Metric { Name = series, Timestamp = t, Datatype = SparkplugDataType.Double };
                if (point[1].ValueKind == JsonValueKind.Number)
                {
                    m.DoubleValue = point[1].GetDouble();
                }
                else
                {
                    m.IsNull = true;
                }

                var quality = point.GetArrayLength() > 2 && point[2].ValueKind == JsonValueKind.Number && point[2].TryGetInt32(out var q) ? q : 0;
                m.Properties = new Payload.Types.PropertySet();
                m.Properties.Keys.Add(QualityProperty);
                m.Properties.Values.Add(new Payload.Types.PropertyValue { Type = SparkplugDataType.Int32, IntValue = quality switch { 0 => 192u, 1 => 500u, _ => 0u } });
                m.Properties.Keys.Add(AgentQualityProperty);
                m.Properties.Values.Add(new Payload.Types.PropertyValue { Type = SparkplugDataType.Int32, IntValue = unchecked((uint)quality) });
                metrics.Add(m);
            }
        }

        return Text(body, "unit");
    }

    private static void AddEvent(JsonElement body, ulong time, List<Payload.Types.Metric> metrics)
    {
        foreach (var (member, type) in EventMembers)
        {
            var m = new Payload.Types.Metric { Name = EventPrefix + member, Timestamp = time, Datatype = type };
            if (!body.TryGetProperty(member, out var v) || v.ValueKind == JsonValueKind.Null)
            {
                m.IsNull = true;
            }
            else if (type == SparkplugDataType.DateTime)
            {
                SetNumber(m, v);
            }
            else
            {
                m.StringValue = v.ValueKind == JsonValueKind.String ? v.GetString() : v.GetRawText();
            }

            metrics.Add(m);
        }
    }

    private sealed class DeviceState
    {
        /// <summary>Whether this connection (or rebirth) has had the device's DBIRTH.</summary>
        public bool Born { get; set; }

        /// <summary>Every metric the device has had since the agent started, with its last value (kept across connections).</summary>
        public Dictionary<string, DeclaredMetric> Declared { get; } = new(StringComparer.Ordinal);
    }

    /// <summary>A device metric: its name, datatype and alias kept apart from the last value (a DDATA with aliases drops the name).</summary>
    private sealed class DeclaredMetric(string name, uint datatype, ulong alias, Payload.Types.Metric last, string? unit)
    {
        public uint Datatype { get; set; } = datatype;

        /// <summary>Unique across the edge node; 0 = aliases off.</summary>
        public ulong Alias => alias;

        public Payload.Types.Metric Last { get; set; } = last;

        /// <summary>The metric as a DBIRTH declares it: name (and alias), its last value, with the engineering unit as a property.</summary>
        public Payload.Types.Metric ForBirth()
        {
            var m = Last.Clone();
            m.Name = name;
            m.Datatype = Datatype;
            if (alias != 0)
            {
                m.Alias = alias;
            }

            if (unit is { Length: > 0 })
            {
                m.Properties ??= new Payload.Types.PropertySet();
                m.Properties.Keys.Add(UnitProperty);
                m.Properties.Values.Add(new Payload.Types.PropertyValue { Type = SparkplugDataType.String, StringValue = unit });
            }

            return m;
        }
    }
}
