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
    public const uint Int64 = 4;
    public const uint UInt64 = 8;
    public const uint Double = 10;
    public const uint Boolean = 11;
    public const uint String = 12;
}

/// <summary>
/// Sparkplug B for the MQTT uplink. The gateway is the edge node, each outbox device a Sparkplug device:
/// NDEATH is the will (bdSeq from <see cref="BdSeqStore"/>), NBIRTH follows CONNACK, a DBIRTH precedes a device's
/// first DDATA of the connection (and any DDATA that brings a metric the last DBIRTH did not declare).
/// A JSON body becomes metrics named <c>{kind}/{path}</c> (numbers Double, booleans Boolean, strings String);
/// <c>edgetwin/seq</c> (UInt64) carries the outbox sequence so the host can de-duplicate replays.
/// Every metric carries the time it describes and <c>is_historical</c> on the backlog lane.
/// Payload <c>seq</c> runs 0–255 over NBIRTH, DBIRTH and DDATA in wire order (the caller holds the send lock).
/// </summary>
internal sealed class SparkplugEncoder : IMqttEncoder
{
    public const string Namespace = "spBv1.0";
    public const string SequenceMetric = "edgetwin/seq";
    public const string FactsPrefix = "edgetwin/facts/";
    private readonly string _group;
    private readonly string _node;
    private readonly BdSeqStore _bdSeqStore;
    private readonly Func<GatewayFacts>? _facts;
    private readonly Dictionary<string, DeviceState> _devices = new(StringComparer.Ordinal);
    private long _bdSeq = -1;
    private ulong _seq;

    public SparkplugEncoder(string group, string node, BdSeqStore bdSeqStore, Func<GatewayFacts>? facts = null)
    {
        _facts = facts;
        _group = group;
        _node = node;
        _bdSeqStore = bdSeqStore;
    }

    /// <summary>The bdSeq of the current connection (-1 before the first).</summary>
    public long BdSeq => _bdSeq;

    public MqttOutgoing BeginSession()
    {
        _bdSeq = _bdSeqStore.Next();
        _devices.Clear();
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
        birth.Metrics.Add(new Payload.Types.Metric { Name = "Node Control/Rebirth", Timestamp = ms, Datatype = SparkplugDataType.Boolean, BooleanValue = false });
        birth.Metrics.Add(new Payload.Types.Metric { Name = "edgetwin/schema", Timestamp = ms, Datatype = SparkplugDataType.Int64, LongValue = JsonEnvelope.SchemaVersion });
        if (_facts?.Invoke() is { } facts)
        {
            // Fleet facts as String metrics (Sparkplug "Properties/…" style names under edgetwin/).
            AddString(birth, ms, FactsPrefix + "version", facts.Version);
            AddString(birth, ms, FactsPrefix + "arch", facts.Architecture);
            AddString(birth, ms, FactsPrefix + "config_sha256", facts.ConfigSha256);
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

        return [new MqttOutgoing(NodeTopic("NBIRTH"), birth.ToByteArray(), Retain: false, IsJson: false)];
    }

    public IReadOnlyList<MqttOutgoing> Rebirth(DateTimeOffset now)
    {
        // A rebirth (same bdSeq, seq back to 0) must be followed by every device's DBIRTH again before its DDATA.
        _devices.Clear();
        return Birth(now);
    }

    private static void AddString(Payload payload, ulong ms, string name, string value) =>
        payload.Metrics.Add(new Payload.Types.Metric { Name = name, Timestamp = ms, Datatype = SparkplugDataType.String, StringValue = value });

    public void Encode(OutboxEntry entry, bool historical, List<MqttOutgoing> output)
    {
        var record = entry.Record;
        var time = (ulong)Math.Max(0, record.TimestampUnixMs);
        var metrics = new List<Payload.Types.Metric>
        {
            new() { Name = SequenceMetric, Datatype = SparkplugDataType.UInt64, LongValue = (ulong)entry.Sequence },
        };
        Flatten(entry, UplinkIdentity.KindName(record.Kind), metrics);
        foreach (var m in metrics)
        {
            m.Timestamp = time;
            if (historical)
            {
                m.IsHistorical = true;
            }
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
            needsBirth |= !state.Declared.ContainsKey(m.Name);
            state.Declared[m.Name] = m.Clone();
        }

        if (needsBirth)
        {
            var birth = new Payload { Timestamp = time, Seq = NextSeq() };
            birth.Metrics.AddRange(state.Declared.Values.Select(m => m.Clone()));
            output.Add(new MqttOutgoing(DeviceTopic("DBIRTH", device), birth.ToByteArray(), Retain: false, IsJson: false));
            state.Born = true;
        }

        var data = new Payload { Timestamp = time, Seq = NextSeq() };
        data.Metrics.AddRange(metrics);
        output.Add(new MqttOutgoing(DeviceTopic("DDATA", device), data.ToByteArray(), Retain: false, IsJson: false));
    }

    public MqttOutgoing Death(DateTimeOffset now)
    {
        var death = new Payload { Timestamp = (ulong)now.ToUnixTimeMilliseconds() };
        death.Metrics.Add(BdSeqMetric());
        return new MqttOutgoing(NodeTopic("NDEATH"), death.ToByteArray(), Retain: false, IsJson: false);
    }

    private ulong NextSeq()
    {
        _seq = (_seq + 1) & 0xFF;
        return _seq;
    }

    private Payload.Types.Metric BdSeqMetric() => new() { Name = "bdSeq", Datatype = SparkplugDataType.Int64, LongValue = (ulong)Math.Max(0, _bdSeq) };

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

    private static void Flatten(OutboxEntry entry, string kind, List<Payload.Types.Metric> metrics)
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

        using (doc)
        {
            Flatten(doc.RootElement, kind, metrics);
        }
    }

    private static void Flatten(JsonElement e, string name, List<Payload.Types.Metric> metrics)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var p in e.EnumerateObject())
                {
                    Flatten(p.Value, $"{name}/{p.Name}", metrics);
                }

                break;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in e.EnumerateArray())
                {
                    Flatten(item, $"{name}/{i.ToString(CultureInfo.InvariantCulture)}", metrics);
                    i++;
                }

                break;
            case JsonValueKind.Number:
                metrics.Add(new() { Name = name, Datatype = SparkplugDataType.Double, DoubleValue = e.GetDouble() });
                break;
            case JsonValueKind.True or JsonValueKind.False:
                metrics.Add(new() { Name = name, Datatype = SparkplugDataType.Boolean, BooleanValue = e.GetBoolean() });
                break;
            case JsonValueKind.String:
                metrics.Add(new() { Name = name, Datatype = SparkplugDataType.String, StringValue = e.GetString() });
                break;
            default:
                metrics.Add(new() { Name = name, Datatype = SparkplugDataType.String, IsNull = true });
                break;
        }
    }

    private sealed class DeviceState
    {
        public bool Born { get; set; }

        public Dictionary<string, Payload.Types.Metric> Declared { get; } = new(StringComparer.Ordinal);
    }
}
