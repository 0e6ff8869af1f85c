namespace EdgeTwin.Core.Config;

/// <summary>
/// Builds a <see cref="SiteConfig"/> in code (the simulator, tests). Call <see cref="Build"/> for the record, then
/// <see cref="SiteConfigWriter"/> to write it or <see cref="SiteConfigLoader.Validate"/> to check it like a file.
/// </summary>
/// <example>
/// <code>
/// var b = new SiteConfigBuilder("dc1", "gw1");
/// b.Room("room1", volumeM3: 600).Row("A").Rack("A01", powerBudgetKw: 8, feeds: ["pdu-a01-a"], servers: 10);
/// b.CoolingUnit("crac1", room: "room1", capacityKw: 30, serves: ["A01"], device: "crac1");
/// b.Ups("ups1", capacityKw: 40, device: "ups1");
/// b.Pdu("pdu-a01-a", breakerA: 32, upstream: "ups1", device: "pdu-a01-a");
/// b.Credentials(CredentialsConfig.V2c("public", "public"));
/// b.Device(new DeviceConfig("pdu-a01-a", "apc-rpdu2", DeviceAddress.Udp("127.0.0.1", 16100)) { Credentials = "public", Location = new(Rack: "A01") });
/// SiteConfig config = b.Build();
/// </code>
/// </example>
public sealed class SiteConfigBuilder(string siteId, string gatewayId)
{
    private readonly List<RoomBuilder> _rooms = [];
    private readonly List<CoolingUnitConfig> _cooling = [];
    private readonly List<UpsConfig> _ups = [];
    private readonly List<PduConfig> _pdus = [];
    private readonly List<LineBuilder> _lines = [];
    private readonly List<DeviceConfig> _devices = [];
    private readonly Dictionary<string, CredentialsConfig> _credentials = new(StringComparer.Ordinal);

    /// <summary>Outbox settings (defaults when not set).</summary>
    public OutboxSettings Outbox { get; set; } = OutboxSettings.Default;

    /// <summary>profiles_dir to write, or null for the default search.</summary>
    public string? ProfilesDir { get; set; }

    /// <summary>Adds a room.</summary>
    public RoomBuilder Room(string id, double? volumeM3 = null)
    {
        var r = new RoomBuilder(id, volumeM3);
        _rooms.Add(r);
        return r;
    }

    /// <summary>Adds a cooling unit.</summary>
    public SiteConfigBuilder CoolingUnit(string id, string room, double capacityKw, IReadOnlyList<string> serves, string? device = null)
    {
        _cooling.Add(new CoolingUnitConfig(id, room, capacityKw, serves, device));
        return this;
    }

    /// <summary>Adds a UPS.</summary>
    public SiteConfigBuilder Ups(string id, double capacityKw, string? device = null)
    {
        _ups.Add(new UpsConfig(id, device, capacityKw));
        return this;
    }

    /// <summary>Adds a PDU.</summary>
    public SiteConfigBuilder Pdu(string id, double breakerA, string? upstream = null, string? device = null, int phases = 1, double voltageV = 230)
    {
        _pdus.Add(new PduConfig(id, device, upstream, breakerA, phases, voltageV));
        return this;
    }

    /// <summary>Adds a production line.</summary>
    public LineBuilder Line(string id)
    {
        var l = new LineBuilder(id);
        _lines.Add(l);
        return l;
    }

    /// <summary>Adds a device.</summary>
    public SiteConfigBuilder Device(DeviceConfig device)
    {
        ArgumentNullException.ThrowIfNull(device);
        _devices.Add(device);
        return this;
    }

    /// <summary>Adds (or replaces) named credentials.</summary>
    public SiteConfigBuilder Credentials(CredentialsConfig credentials)
    {
        ArgumentNullException.ThrowIfNull(credentials);
        _credentials[credentials.Name] = credentials;
        return this;
    }

    /// <summary>The immutable config (profiles are not resolved; load or validate it for that).</summary>
    public SiteConfig Build() =>
        new(
            new SiteTopology(siteId, gatewayId, [.. _rooms.Select(r => r.Build())], [.. _cooling], new PowerChainConfig([.. _ups], [.. _pdus]), [.. _lines.Select(l => l.Build())]),
            [.. _devices],
            new Dictionary<string, CredentialsConfig>(_credentials, StringComparer.Ordinal),
            Outbox)
        {
            ProfilesDir = ProfilesDir,
        };

    /// <summary>Builds a room.</summary>
    public sealed class RoomBuilder(string id, double? volumeM3)
    {
        private readonly List<RowBuilder> _rows = [];

        /// <summary>Adds a row.</summary>
        public RowBuilder Row(string rowId)
        {
            var r = new RowBuilder(rowId);
            _rows.Add(r);
            return r;
        }

        internal RoomConfig Build() => new(id, volumeM3, [.. _rows.Select(r => r.Build())]);
    }

    /// <summary>Builds a row.</summary>
    public sealed class RowBuilder(string id)
    {
        private readonly List<RackConfig> _racks = [];

        /// <summary>Adds a rack; position defaults to the next in the row.</summary>
        public RowBuilder Rack(string rackId, double powerBudgetKw, IReadOnlyList<string>? feeds = null, int servers = 0, int? position = null)
        {
            _racks.Add(new RackConfig(rackId, position ?? _racks.Count + 1, powerBudgetKw, feeds ?? [], servers));
            return this;
        }

        internal RowConfig Build() => new(id, [.. _racks]);
    }

    /// <summary>Builds a line.</summary>
    public sealed class LineBuilder(string id)
    {
        private readonly List<MachineConfig> _machines = [];

        /// <summary>Adds a machine.</summary>
        public LineBuilder Machine(string machineId, string? device = null)
        {
            _machines.Add(new MachineConfig(machineId, device));
            return this;
        }

        internal LineConfig Build() => new(id, [.. _machines]);
    }
}
