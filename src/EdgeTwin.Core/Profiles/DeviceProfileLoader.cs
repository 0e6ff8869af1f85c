using System.Globalization;
using System.Text.RegularExpressions;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Core.Profiles;

/// <summary>
/// Reads and validates device profile files. Like the site config loader it reports every problem of a
/// file at once, each as <c>FILE:LINE:COL: key.path: message</c>.
/// </summary>
public static partial class DeviceProfileLoader
{
    internal static readonly Dictionary<string, DeviceProtocol> Protocols = new(StringComparer.Ordinal)
    {
        ["snmp"] = DeviceProtocol.Snmp,
        ["modbus"] = DeviceProtocol.Modbus,
        ["onewire"] = DeviceProtocol.OneWire,
        ["i2c"] = DeviceProtocol.I2c,
        ["gpio"] = DeviceProtocol.Gpio,
        ["system"] = DeviceProtocol.System,
    };

    internal static readonly Dictionary<string, MetricKind> Kinds = new(StringComparer.Ordinal)
    {
        ["gauge"] = MetricKind.Gauge,
        ["counter"] = MetricKind.Counter,
        ["state"] = MetricKind.State,
    };

    internal static readonly Dictionary<string, ModbusTable> Tables = new(StringComparer.Ordinal)
    {
        ["holding"] = ModbusTable.Holding,
        ["input"] = ModbusTable.Input,
        ["coil"] = ModbusTable.Coil,
        ["discrete"] = ModbusTable.Discrete,
    };

    // The type names vendors' register maps and IEC 61131-3 use (Janitza: short, int, float; Siemens: Float, Double; PLCs:
    // REAL, DINT, WORD). Edit distance finds none of them ('float' is 2 from float32), so check said only "expected one
    // of ...". 'int', 'uint' and 'long' mean 16 bits in one document and 32 in another: the register count decides.
    internal static readonly Dictionary<string, string> DataTypeAliases = new(StringComparer.Ordinal)
    {
        ["float"] = "float32 (IEEE 754 single, 2 registers)",
        ["real"] = "float32 (IEEE 754 single, 2 registers)",
        ["single"] = "float32 (IEEE 754 single, 2 registers)",
        ["double"] = "float64 (IEEE 754 double, 4 registers)",
        ["lreal"] = "float64 (IEEE 754 double, 4 registers)",
        ["short"] = "int16 (1 register)",
        ["ushort"] = "uint16 (1 register)",
        ["word"] = "uint16 (1 register)",
        ["dint"] = "int32 (2 registers)",
        ["udint"] = "uint32 (2 registers)",
        ["dword"] = "uint32 (2 registers)",
        ["lint"] = "int64 (4 registers)",
        ["ulint"] = "uint64 (4 registers)",
        ["int"] = "int16 for 1 register or int32 for 2, as the map's register count says (IEC 61131 INT is 16-bit, some meters' int 32-bit)",
        ["uint"] = "uint16 for 1 register or uint32 for 2, as the map's register count says",
        ["long"] = "int32 for 2 registers or int64 for 4, as the map's register count says",
        ["ulong"] = "uint32 for 2 registers or uint64 for 4, as the map's register count says",
        ["bool"] = "bit (with bit: N for a bit of a register)",
        ["boolean"] = "bit (with bit: N for a bit of a register)",
    };

    internal static readonly Dictionary<string, ModbusDataType> DataTypes = new(StringComparer.Ordinal)
    {
        ["bit"] = ModbusDataType.Bit,
        ["int16"] = ModbusDataType.Int16,
        ["uint16"] = ModbusDataType.UInt16,
        ["int32"] = ModbusDataType.Int32,
        ["uint32"] = ModbusDataType.UInt32,
        ["int64"] = ModbusDataType.Int64,
        ["uint64"] = ModbusDataType.UInt64,
        ["float32"] = ModbusDataType.Float32,
        ["float64"] = ModbusDataType.Float64,
        ["string"] = ModbusDataType.String,
    };

    internal static readonly Dictionary<string, WordOrder> Orders = new(StringComparer.Ordinal)
    {
        ["ABCD"] = WordOrder.ABCD,
        ["CDAB"] = WordOrder.CDAB,
        ["BADC"] = WordOrder.BADC,
        ["DCBA"] = WordOrder.DCBA,
    };

    internal static readonly Dictionary<string, SensorDriver> Drivers = new(StringComparer.Ordinal)
    {
        ["ds18b20"] = SensorDriver.Ds18b20,
        ["bme280"] = SensorDriver.Bme280,
        ["sht3x"] = SensorDriver.Sht3x,
        ["dht22"] = SensorDriver.Dht22,
        ["digital"] = SensorDriver.Digital,
        ["pulse"] = SensorDriver.Pulse,
        ["cpu_temp"] = SensorDriver.CpuTemp,
        ["host"] = SensorDriver.Host,
    };

    internal static readonly Dictionary<string, PullMode> Pulls = new(StringComparer.Ordinal)
    {
        ["none"] = PullMode.None,
        ["up"] = PullMode.Up,
        ["down"] = PullMode.Down,
    };

    /// <summary>The protocol each local sensor driver belongs to.</summary>
    public static DeviceProtocol ProtocolOf(SensorDriver driver) => driver switch
    {
        SensorDriver.Ds18b20 => DeviceProtocol.OneWire,
        SensorDriver.Bme280 or SensorDriver.Sht3x => DeviceProtocol.I2c,
        SensorDriver.Dht22 or SensorDriver.Digital or SensorDriver.Pulse => DeviceProtocol.Gpio,
        SensorDriver.CpuTemp or SensorDriver.Host => DeviceProtocol.System,
        _ => throw new ArgumentOutOfRangeException(nameof(driver), driver, null),
    };

    /// <summary>
    /// The host driver's channels. The <c>fs_*</c> ones come once per watched file system (tagged <c>path=</c>); the
    /// rest once per gateway.
    /// </summary>
    public static IReadOnlyList<string> HostChannels { get; } =
    [
        "clock_synchronized", "clock_max_error", "fs_free", "fs_free_percent", "fs_inodes_free", "fs_inodes_free_percent",
        "memory_available", "memory_available_percent", "load_1m", "load_5m", "cpus", "uptime",
    ];

    /// <summary>The channels each local sensor driver produces.</summary>
    public static IReadOnlyList<string> ChannelsOf(SensorDriver driver) => driver switch
    {
        SensorDriver.Ds18b20 or SensorDriver.CpuTemp => ["temperature"],
        SensorDriver.Bme280 => ["temperature", "humidity", "pressure"],
        SensorDriver.Sht3x or SensorDriver.Dht22 => ["temperature", "humidity"],
        SensorDriver.Digital => ["state", "changes"],
        SensorDriver.Pulse => ["count", "total"],
        SensorDriver.Host => HostChannels,
        _ => throw new ArgumentOutOfRangeException(nameof(driver), driver, null),
    };

    /// <summary>Loads and validates one profile file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="displayPath">How the file is named in problems (defaults to <paramref name="path"/>).</param>
    /// <param name="diagnostics">Receives every problem, and the warnings (unit or role not documented, an enum name in another case).</param>
    /// <returns>The profile, or null when it has problems.</returns>
    public static DeviceProfile? LoadFile(string path, ConfigDiagnostics diagnostics, string? displayPath = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(diagnostics);
        displayPath ??= path;
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            diagnostics.Add(new SourceMark(displayPath, 0, 0), string.Empty, "cannot read profile: " + ex.Message);
            return null;
        }

        var expectedId = System.IO.Path.GetFileNameWithoutExtension(path);
        var profile = Parse(text, displayPath, diagnostics, expectedId);
        return profile is null ? null : profile with { SourcePath = System.IO.Path.GetFullPath(path) };
    }

    /// <summary>Loads a profile file or throws <see cref="ConfigException"/> listing every problem.</summary>
    public static DeviceProfile LoadFileOrThrow(string path)
    {
        var d = new ConfigDiagnostics();
        var p = LoadFile(path, d);
        return p is not null && d.IsEmpty ? p : throw new ConfigException(d.Sorted());
    }

    /// <summary>Parses and validates profile YAML.</summary>
    /// <param name="yaml">Profile text.</param>
    /// <param name="file">File name used in problems.</param>
    /// <param name="diagnostics">Receives every problem.</param>
    /// <param name="expectedId">When set, <c>profile:</c> must equal it (the file name).</param>
    /// <returns>The profile, or null when it has problems.</returns>
    public static DeviceProfile? Parse(string yaml, string file, ConfigDiagnostics diagnostics, string? expectedId = null)
    {
        ArgumentNullException.ThrowIfNull(diagnostics);
        var before = diagnostics.Items.Count;
        var root = YamlTree.Parse(yaml, file, diagnostics);
        if (root is null)
        {
            return null;
        }

        var r = ConfigReader.For(root, diagnostics);
        if (r is null)
        {
            return null;
        }

        var id = r.Id("profile", required: true);
        if (id is not null && expectedId is not null && !string.Equals(id, expectedId, StringComparison.Ordinal))
        {
            diagnostics.Add(r.Node("profile")!, $"profile id '{id}' must match the file name '{expectedId}.yaml'");
        }

        var vendor = r.String("vendor", required: true);
        var model = r.String("model", required: true);
        var protocol = r.Enum("protocol", Protocols, required: true);
        var source = r.String("source", required: true);
        var description = r.String("description");

        ModbusProfileSettings? modbus = null;
        var modbusNode = r.Node("modbus");
        if (modbusNode is not null)
        {
            if (protocol is not null and not DeviceProtocol.Modbus)
            {
                diagnostics.Add(r.Mapping.KeyMark("modbus"), modbusNode.Path, "a 'modbus' section is only allowed with protocol: modbus");
            }

            modbus = ReadModbus(ConfigReader.For(modbusNode, diagnostics));
        }
        else if (protocol == DeviceProtocol.Modbus)
        {
            modbus = ModbusProfileSettings.Default;
        }

        SensorSettings? sensor = null;
        var sensorNode = r.Node("sensor");
        var isLocal = protocol is DeviceProtocol.OneWire or DeviceProtocol.I2c or DeviceProtocol.Gpio or DeviceProtocol.System;
        if (sensorNode is not null)
        {
            if (protocol is DeviceProtocol.Snmp or DeviceProtocol.Modbus)
            {
                diagnostics.Add(r.Mapping.KeyMark("sensor"), sensorNode.Path, "a 'sensor' section is only allowed with a local protocol (onewire, i2c, gpio, system)");
            }

            sensor = ReadSensor(ConfigReader.For(sensorNode, diagnostics), protocol);
        }
        else if (isLocal)
        {
            r.ReportMissing("sensor");
        }

        var names = new Dictionary<string, ConfigNode>(StringComparer.Ordinal);
        var metrics = new List<ProfileMetric>();
        var oids = new Dictionary<string, (string Name, int Line)>(StringComparer.Ordinal);
        var registers = new List<(ProfileMetric Metric, int Line)>();
        var metricSeq = r.Sequence("metrics");
        if (metricSeq is not null)
        {
            foreach (var item in metricSeq.Items)
            {
                var m = ReadMetric(ConfigReader.For(item, diagnostics) ?? NotAMapping(item, diagnostics), protocol, modbus, sensor, names);
                if (m is not null)
                {
                    metrics.Add(m);
                    // A metric copied with only its name changed reads the first one's value under another meaning.
                    if (m.Oid is { } oid && (item as ConfigMapping)?["oid"] is { } oidNode && !oids.TryAdd(oid, (m.Name, oidNode.Mark.Line)))
                    {
                        var first = oids[oid];
                        diagnostics.AddWarning(oidNode, $"metric '{m.Name}' reads the same OID {oid} as metric '{first.Name}' (line {first.Line.ToString(CultureInfo.InvariantCulture)}); a copied metric whose oid was not changed?");
                    }

                    if (m.Register is not null && (item as ConfigMapping)?["address"] is { } addressNode)
                    {
                        if (Overlapped(m, registers) is { } other)
                        {
                            diagnostics.AddWarning(addressNode, $"metric '{m.Name}' ({Span(m, modbus)}) overlaps the registers of metric '{other.Metric.Name}' ({Span(other.Metric, modbus)}, line {other.Line.ToString(CultureInfo.InvariantCulture)}); a copied metric whose address was not changed, or a 2- or 4-register value miscounted?");
                        }

                        registers.Add((m, addressNode.Mark.Line));
                    }
                }
            }
        }

        var tables = new List<ProfileTable>();
        var tableSeq = r.Sequence("tables");
        if (tableSeq is not null)
        {
            if (protocol is not null and not DeviceProtocol.Snmp)
            {
                diagnostics.Add(r.Mapping.KeyMark("tables"), tableSeq.Path, "tables are only allowed with protocol: snmp");
            }

            var tableNames = new HashSet<string>(StringComparer.Ordinal);
            foreach (var item in tableSeq.Items)
            {
                var t = ReadTable(ConfigReader.For(item, diagnostics) ?? NotAMapping(item, diagnostics), protocol, names, tableNames);
                if (t is not null)
                {
                    tables.Add(t);
                }
            }
        }

        if ((metricSeq is null || metricSeq.Items.Count == 0) && (tableSeq is null || tableSeq.Items.Count == 0))
        {
            diagnostics.Add(r.Mapping.Mark, r.ChildPath("metrics"), "a profile needs at least one metric or table");
        }

        r.ReportUnknownKeys();
        if (diagnostics.Items.Count != before || id is null || vendor is null || model is null || protocol is null || source is null)
        {
            return null;
        }

        return new DeviceProfile(id, vendor, model, protocol.Value, source, metrics, tables)
        {
            Description = description,
            Modbus = modbus,
            Sensor = sensor,
        };
    }

    private static ConfigReader NotAMapping(ConfigNode item, ConfigDiagnostics diagnostics)
    {
        if (item is ConfigScalar { IsNull: true })
        {
            diagnostics.Add(item, "expected a mapping, got nothing");
        }

        // Keep going with an empty mapping (its own problems discarded) so a wrong item does not hide problems elsewhere.
        return new(new ConfigMapping(item.Mark, []) { Path = item.Path }, new ConfigDiagnostics());
    }

    private static ModbusProfileSettings? ReadModbus(ConfigReader? r)
    {
        if (r is null)
        {
            return null;
        }

        var addressing = r.Int("addressing", min: 0, max: 1) ?? 0;
        var maxRegs = r.Int("max_registers_per_read", min: 1, max: 125) ?? 125;
        var gap = r.Int("gap_tolerance", min: 0, max: 124) ?? 10;
        var order = r.Enum("byte_order", Orders) ?? WordOrder.ABCD;
        r.ReportUnknownKeys();
        return new ModbusProfileSettings(addressing, maxRegs, gap, order);
    }

    private static SensorSettings? ReadSensor(ConfigReader? r, DeviceProtocol? protocol)
    {
        if (r is null)
        {
            return null;
        }

        var driver = r.Enum("driver", Drivers, required: true);
        if (driver is not null && protocol is not null && ProtocolOf(driver.Value) != protocol
            && protocol is not DeviceProtocol.Snmp and not DeviceProtocol.Modbus)
        {
            r.Diagnostics.Add(r.Node("driver")!, $"driver '{Name(Drivers, driver.Value)}' needs protocol: {Name(Protocols, ProtocolOf(driver.Value))}, not {Name(Protocols, protocol.Value)}");
        }

        var isGpioInput = driver is SensorDriver.Digital or SensorDriver.Pulse;
        TimeSpan? debounce = null;
        bool activeLow = true;
        PullMode pull = PullMode.Up;
        double? pulses = null;
        if (isGpioInput)
        {
            debounce = r.Duration("debounce");

            // Left out, they are the usual wiring the README promises: a contact (or S0 output) to ground on the internal
            // pull-up, active low; active high only with a pull-down (a contact to 3.3 V). They were active high and no
            // pull, so a profile giving neither read a floating line, inverted.
            pull = r.Enum("pull", Pulls) ?? PullMode.Up;
            activeLow = r.Bool("active_low") ?? pull != PullMode.Down;
            if (driver == SensorDriver.Pulse)
            {
                pulses = r.Double("pulses_per_unit", required: true, positive: true);
            }
        }

        var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
        var pr = r.Section("parameters");
        if (pr is not null)
        {
            foreach (var (k, v) in pr.Mapping.Entries)
            {
                if (v is ConfigScalar s)
                {
                    parameters[k] = s.Value;
                    if (driver is not null)
                    {
                        CheckSensorParameter(r.Diagnostics, driver.Value, k, s);
                    }
                }
                else
                {
                    r.Diagnostics.Add(v, "sensor parameters must be plain values");
                }
            }
        }

        r.ReportUnknownKeys();
        return driver is null ? null : new SensorSettings(driver.Value)
        {
            Debounce = debounce,
            ActiveLow = activeLow,
            Pull = pull,
            PulsesPerUnit = pulses,
            Parameters = parameters,
        };
    }

    /// <summary>The <c>parameters:</c> each sensor driver reads; anything else is ignored by the sensor factory.</summary>
    internal static IReadOnlyList<string> ParametersOf(SensorDriver driver) => driver switch
    {
        SensorDriver.Bme280 => ["oversampling"],
        SensorDriver.Sht3x => ["repeatability"],
        SensorDriver.Digital => ["kind", "chatter_changes", "chatter_window"],
        SensorDriver.Pulse => ["persist_interval", "state_file"],
        SensorDriver.CpuTemp => ["zones"],
        SensorDriver.Host => ["paths"],
        _ => [],
    };

    /// <summary>
    /// Sensor parameters used to pass check and fail only when the agent built the source (oversampling: 3), or were
    /// silently ignored: a misspelt key (oversampeling) or a kind nobody reads (kind: laek made a leak detector a
    /// generic input, its events no longer critical). Values through <see cref="SensorParameters"/>, as the factory reads them.
    /// </summary>
    private static void CheckSensorParameter(ConfigDiagnostics diagnostics, SensorDriver driver, string key, ConfigScalar value)
    {
        var known = ParametersOf(driver);
        var v = value.Value;
        switch (key)
        {
            case var _ when !known.Contains(key, StringComparer.Ordinal):
                var hint = ConfigReader.Closest(key, known) is { } close ? $" (did you mean '{close}'?)"
                    : known.Count == 0 ? $" (driver {Name(Drivers, driver)} takes no parameters)"
                    : $" (it reads {string.Join(", ", known)})";
                diagnostics.AddWarning(value, $"driver {Name(Drivers, driver)} ignores parameter '{key}'{hint}");
                break;
            case "oversampling" when !SensorParameters.TryOversampling(v, out _):
                diagnostics.Add(value, SensorParameters.OversamplingProblem(v));
                break;
            case "repeatability" when !SensorParameters.IsRepeatability(v):
                diagnostics.Add(value, SensorParameters.RepeatabilityProblem(v));
                break;
            case "kind" when v.ToLowerInvariant() is not ("leak" or "door" or "smoke" or "lamp" or "generic"):
                diagnostics.Add(value, $"kind '{v}' is not leak, door, smoke, lamp or generic{(ConfigReader.Closest(v, ["leak", "door", "smoke", "lamp", "generic"]) is { } k ? $" (did you mean '{k}'?)" : "")}");
                break;
            case "chatter_changes" when !SensorParameters.TryChatterChanges(v, out _):
                diagnostics.Add(value, SensorParameters.ChatterChangesProblem(v));
                break;
            case "paths" when SensorParameters.PathsProblem(v) is { } pathsProblem:
                diagnostics.Add(value, pathsProblem);
                break;
            case "chatter_window" or "persist_interval" when !(Durations.TryParse(v, out var d) && d > TimeSpan.Zero):
                diagnostics.Add(value, $"{key} '{v}' is not a duration (500ms, 10s, 5m)");
                break;
        }
    }

    private static ProfileTable? ReadTable(ConfigReader r, DeviceProtocol? protocol, Dictionary<string, ConfigNode> names, HashSet<string> tableNames)
    {
        var name = MetricName(r, "name");
        if (name is not null && !tableNames.Add(name))
        {
            r.Diagnostics.Add(r.Node("name")!, $"duplicate table name '{name}'");
        }

        var indexTag = MetricName(r, "index_tag");
        var labelOid = Oid(r, "label_oid", required: false);
        var labelTag = MetricName(r, "label_tag", required: false);
        var maxRows = r.Int("max_rows", min: 1, max: 100_000);
        TableRowFilter? filter = null;
        var fr = r.Section("filter");
        if (fr is not null)
        {
            var foid = Oid(fr, "oid", required: true);
            var values = new List<long>();
            // An integer filter (values) or a text one (matches), not both: a row would have to be both at once.
            var mseq = fr.Sequence("matches", required: false);
            var matches = Patterns(fr, mseq);
            if (mseq is not null)
            {
                if (fr.Node("values") is { } both)
                {
                    r.Diagnostics.Add(both, "a filter takes values (integers) or matches (text patterns), not both");
                }
            }

            var vseq = fr.Sequence("values", required: mseq is null);
            foreach (var v in vseq?.Items ?? [])
            {
                if (v is ConfigScalar s && s.AsInt64() is { } n)
                {
                    values.Add(n);
                }
                else
                {
                    r.Diagnostics.Add(v, "expected an integer, got " + ConfigReader.Describe(v));
                }
            }

            if (vseq is not null && vseq.Items.Count == 0)
            {
                r.Diagnostics.Add(vseq, "a filter needs at least one value");
            }

            fr.ReportUnknownKeys();
            filter = foid is null ? null : new TableRowFilter(foid, values) { Matches = matches is null ? null : new TextPatterns(matches) };
        }

        // An invalid label_oid has its own problem; "needs label_oid" would say the key is missing.
        if (labelTag is not null && labelOid is null && r.Node("label_oid") is null)
        {
            r.Diagnostics.Add(r.Node("label_tag")!, "label_tag needs label_oid");
        }

        if (labelTag is not null && labelTag == indexTag)
        {
            r.Diagnostics.Add(r.Node("label_tag")!, "label_tag must differ from index_tag");
        }

        var labelNames = ReadLabelNames(r);
        if (labelNames is not null && labelOid is null && r.Node("label_oid") is null)
        {
            r.Diagnostics.Add(r.Node("label_names")!, "label_names needs label_oid (the column whose OID values they name)");
        }

        var columns = new List<ProfileMetric>();
        var seq = r.Sequence("columns", required: true);
        if (seq is not null)
        {
            if (seq.Items.Count == 0)
            {
                r.Diagnostics.Add(seq, "a table needs at least one column");
            }

            foreach (var item in seq.Items)
            {
                var c = ReadMetric(ConfigReader.For(item, r.Diagnostics) ?? NotAMapping(item, r.Diagnostics), protocol, null, null, names, column: true);
                if (c is not null)
                {
                    columns.Add(c);
                }
            }
        }

        var utilization = ReadUtilization(r, columns, names);
        r.ReportUnknownKeys();
        if (name is null || indexTag is null)
        {
            return null;
        }

        var table = new ProfileTable(name, indexTag, columns) { LabelOid = labelOid, Filter = filter, Utilization = utilization };
        if (labelNames is not null)
        {
            table = table with { LabelNames = labelNames };
        }
        if (labelTag is not null)
        {
            table = table with { LabelTag = labelTag };
        }

        return maxRows is null ? table : table with { MaxRows = maxRows.Value };
    }

    /// <summary>
    /// A table's <c>utilization:</c> (in, out: octet-rate columns, By; speed: a Mbit/s or bit/s column); its two derived
    /// series' names take their place among the profile's metric names.
    /// </summary>
    private static TableUtilization? ReadUtilization(ConfigReader table, List<ProfileMetric> columns, Dictionary<string, ConfigNode> names)
    {
        var r = table.Section("utilization");
        if (r is null)
        {
            return null;
        }

        var d = r.Diagnostics;
        string? Column(string key, Func<ProfileMetric, bool> fits, string what)
        {
            var name = r.String(key, required: true);
            if (name is null)
            {
                return null;
            }

            var column = columns.FirstOrDefault(c => string.Equals(c.Name, name, StringComparison.Ordinal));
            if (column is null)
            {
                var hint = ConfigReader.Closest(name, columns.Select(c => c.Name).ToList()) is { } close ? $" (did you mean '{close}'?)" : "";
                d.Add(r.Node(key)!, $"'{name}' is not a column of this table{hint}");
                return null;
            }

            if (!fits(column))
            {
                d.Add(r.Node(key)!, $"column '{name}' must be {what}");
                return null;
            }

            return name;
        }

        static bool Octets(ProfileMetric c) => c.Kind == MetricKind.Counter && c.Rate && c.Unit == "By";
        var inColumn = Column("in", Octets, "an octet counter with rate: true and unit By");
        var outColumn = Column("out", Octets, "an octet counter with rate: true and unit By");
        var speed = Column("speed", c => c.Kind == MetricKind.Gauge && c.Unit is "Mbit/s" or "bit/s", "a gauge in Mbit/s or bit/s");
        r.ReportUnknownKeys();
        foreach (var derived in (string[])[TableUtilization.InMetric, TableUtilization.OutMetric])
        {
            if (!names.TryAdd(derived, r.Mapping))
            {
                d.Add(r.Mapping, $"utilization derives the metric '{derived}', which the profile already defines (line {names[derived].Mark.Line.ToString(CultureInfo.InvariantCulture)})");
            }
        }

        return inColumn is null || outColumn is null || speed is null ? null : new TableUtilization(inColumn, outColumn, speed);
    }

    private static ProfileMetric? ReadMetric(
        ConfigReader r,
        DeviceProtocol? protocol,
        ModbusProfileSettings? modbus,
        SensorSettings? sensor,
        Dictionary<string, ConfigNode> names,
        bool column = false)
    {
        var d = r.Diagnostics;
        var name = MetricName(r, "name");
        if (name is not null)
        {
            var nameNode = r.Node("name")!;
            if (!names.TryAdd(name, nameNode))
            {
                d.Add(nameNode, $"duplicate metric name '{name}' (first defined at line {names[name].Mark.Line.ToString(CultureInfo.InvariantCulture)})");
            }
        }

        var unit = r.String("unit", required: true);
        if (unit is not null && ProfileVocabulary.UnitWarning(unit) is { } unitWarning)
        {
            d.AddWarning(r.Node("unit")!, unitWarning);
        }

        var kind = r.Enum("kind", Kinds, required: true);
        var role = r.String("role", required: true);
        if (role is not null && !RolePattern().IsMatch(role))
        {
            d.Add(r.Node("role")!, $"'{role}' is not a role (area.quantity in snake_case, e.g. pdu.outlet_current)");
            role = null;
        }
        else if (role is not null && ProfileVocabulary.RoleWarning(role) is { } roleWarning)
        {
            d.AddWarning(r.Node("role")!, roleWarning);
        }

        var scale = r.Double("scale");
        if (scale == 0)
        {
            d.Add(r.Node("scale")!, "scale must not be 0");
        }

        var offset = r.Double("offset");
        var rate = r.Bool("rate");
        if (rate == true && kind is not null and not MetricKind.Counter)
        {
            d.Add(r.Node("rate")!, "rate applies to counters only");
        }

        var min = r.Double("min");
        var max = r.Double("max");
        if (min is not null && max is not null && min >= max)
        {
            d.Add(r.Node("max")!, string.Create(CultureInfo.InvariantCulture, $"max ({max}) must be greater than min ({min})"));
        }

        var raw = r.Bool("raw");
        var deadband = r.Double("deadband", min: 0);
        if (deadband is not null && raw != true)
        {
            d.Add(r.Node("deadband")!, "deadband applies to raw series only (set raw: true)");
        }

        var states = ReadStates(r, kind);
        var description = r.String("description");
        var writable = r.Bool("writable");
        if (writable == true && kind == MetricKind.Counter)
        {
            d.Add(r.Node("writable")!, "a counter cannot be writable (only gauges and states are set points)");
        }

        if (writable == true && protocol is not (DeviceProtocol.Snmp or DeviceProtocol.Modbus or null))
        {
            d.Add(r.Node("writable")!, "only SNMP and Modbus metrics can be writable");
        }

        ColumnFallback? fallback = null;
        // Other protocols do not know the key (reported as unknown with the keys they take).
        var fr = protocol == DeviceProtocol.Snmp ? r.Section("fallback") : null;
        if (fr is not null)
        {
            if (!column)
            {
                d.Add(fr.Mapping, "fallback applies to table columns only (a scalar names its OID with the instance)");
            }

            var foid = Oid(fr, "oid", required: true);
            var fscale = fr.Double("scale");
            if (fscale == 0)
            {
                d.Add(fr.Node("scale")!, "scale must not be 0");
            }

            fr.ReportUnknownKeys();
            fallback = foid is null ? null : new ColumnFallback(foid, fscale is null or 0 ? null : fscale);
        }

        ColumnRowScale? rowScale = null;
        var rsr = protocol == DeviceProtocol.Snmp ? r.Section("row_scale") : null;
        if (rsr is not null)
        {
            if (!column)
            {
                d.Add(rsr.Mapping, "row_scale applies to table columns only (it is read from the same row)");
            }

            var soid = Oid(rsr, "oid", required: true);
            rsr.ReportUnknownKeys();
            rowScale = soid is null ? null : new ColumnRowScale(soid);
        }

        ColumnRowUnit? rowUnit = null;
        var rur = protocol == DeviceProtocol.Snmp ? r.Section("row_unit") : null;
        if (rur is not null)
        {
            if (!column)
            {
                d.Add(rur.Mapping, "row_unit applies to table columns only (it is read from the same row)");
            }

            var uoid = Oid(rur, "oid", required: true);
            var units = Patterns(rur, rur.Sequence("matches", required: true));
            rur.ReportUnknownKeys();
            rowUnit = uoid is null || units is null ? null : new ColumnRowUnit(uoid, new TextPatterns(units));
        }

        ColumnRowStatus? rowStatus = null;
        var rstr = protocol == DeviceProtocol.Snmp ? r.Section("row_status") : null;
        if (rstr is not null)
        {
            if (!column)
            {
                d.Add(rstr.Mapping, "row_status applies to table columns only (it is read from the same row)");
            }

            var soid = Oid(rstr, "oid", required: true);
            var codes = new List<long>();
            var cseq = rstr.Sequence("values", required: true);
            foreach (var v in cseq?.Items ?? [])
            {
                if (v is ConfigScalar cs && cs.AsInt64() is { } n)
                {
                    codes.Add(n);
                }
                else
                {
                    d.Add(v, "expected an integer status code, got " + ConfigReader.Describe(v));
                }
            }

            if (cseq is not null && cseq.Items.Count == 0)
            {
                d.Add(cseq, "row_status needs at least one value (the status codes under which the row's value is a reading)");
            }

            rstr.ReportUnknownKeys();
            rowStatus = soid is null || cseq is null ? null : new ColumnRowStatus(soid, codes);
        }

        string? oid = null;
        ModbusRegister? register = null;
        string? channel = null;
        switch (protocol)
        {
            case DeviceProtocol.Snmp:
                oid = Oid(r, "oid", required: true);
                if (rowStatus is not null && oid is not null && string.Equals(rowStatus.Oid, oid, StringComparison.Ordinal))
                {
                    // Its own value as its status: every reading would be judged by itself (a 22 °C row "no reading" at 22).
                    d.Add(rstr!.Node("oid")!, "row_status names the column's own OID; give the status column of the same row (e.g. cmcIIIVarQuality beside cmcIIIVarValueInt)");
                    rowStatus = null;
                }

                break;
            case DeviceProtocol.Modbus:
                register = ReadRegister(r, modbus ?? ModbusProfileSettings.Default);
                if (writable == true && register is not null && (register.Table is ModbusTable.Input or ModbusTable.Discrete || register.Type == ModbusDataType.String || (register.Bit is not null && register.Table != ModbusTable.Coil)))
                {
                    d.Add(r.Node("writable")!, "a writable Modbus metric must be a holding register (not a string or a bit of one) or a coil");
                }

                break;
            case null:
                break;
            default:
                channel = r.String("channel", required: true);
                if (channel is not null && sensor is not null && !ChannelsOf(sensor.Driver).Contains(channel, StringComparer.Ordinal))
                {
                    d.Add(r.Node("channel")!, $"driver '{Name(Drivers, sensor.Driver)}' has no channel '{channel}' (it has {string.Join(", ", ChannelsOf(sensor.Driver))})");
                    channel = null;
                }

                break;
        }

        r.ReportUnknownKeys();
        if (name is null || unit is null || kind is null || role is null || (protocol == DeviceProtocol.Snmp && oid is null)
            || (protocol == DeviceProtocol.Modbus && register is null))
        {
            return null;
        }

        return new ProfileMetric(name, unit, kind.Value, role)
        {
            Oid = oid,
            Fallback = fallback,
            RowScale = rowScale,
            RowUnit = rowUnit,
            RowStatus = rowStatus,
            Register = register,
            Channel = channel,
            Scale = scale is null or 0 ? 1 : scale.Value,
            Offset = offset ?? 0,
            Rate = rate ?? false,
            Min = min,
            Max = max,
            Raw = raw ?? false,
            Deadband = deadband,
            States = states,
            Description = description,
            Writable = writable ?? false,
        };
    }

    private static Dictionary<long, string>? ReadStates(ConfigReader r, MetricKind? kind)
    {
        var sr = r.Section("states");
        if (sr is null)
        {
            return null;
        }

        if (kind is not null and not MetricKind.State)
        {
            r.Diagnostics.Add(sr.Mapping, "states apply to kind: state only");
        }

        var states = new Dictionary<long, string>();
        foreach (var (k, v) in sr.Mapping.Entries)
        {
            if (!long.TryParse(k, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
            {
                r.Diagnostics.Add(sr.Mapping.KeyMark(k), v.Path, $"state values must be integers, got '{k}'");
            }
            else if (v is not ConfigScalar { IsNull: false } s)
            {
                r.Diagnostics.Add(v, "expected a state name, got " + ConfigReader.Describe(v));
            }
            else
            {
                states[value] = s.Value;
            }
        }

        return states;
    }

    /// <summary>
    /// The first earlier metric whose registers <paramref name="m"/> shares. Bit fields of a status register are meant
    /// to share it, and so are a counter and its rate on one register; anything else decodes one register twice, under
    /// two meanings (a float32 at 0 and a uint16 at 1 read half of it).
    /// </summary>
    private static (ProfileMetric Metric, int Line)? Overlapped(ProfileMetric m, List<(ProfileMetric Metric, int Line)> earlier)
    {
        var r = m.Register!;
        foreach (var other in earlier)
        {
            var o = other.Metric.Register!;
            if (o.Table != r.Table || r.Type == ModbusDataType.Bit || o.Type == ModbusDataType.Bit
                || r.Address >= o.Address + o.Count || o.Address >= r.Address + r.Count
                || (r == o && m.Rate != other.Metric.Rate))
            {
                continue;
            }

            return other;
        }

        return null;
    }

    /// <summary>"input 0-1, float32": the registers as written in the profile.</summary>
    private static string Span(ProfileMetric m, ModbusProfileSettings? settings)
    {
        var r = m.Register!;
        int first = r.Address + (settings?.Addressing ?? 0);
        var range = r.Count == 1 ? first.ToString(CultureInfo.InvariantCulture) : $"{first.ToString(CultureInfo.InvariantCulture)}-{(first + r.Count - 1).ToString(CultureInfo.InvariantCulture)}";
        return $"{Name(Tables, r.Table)} {range}, {Name(DataTypes, r.Type)}";
    }

    private static ModbusRegister? ReadRegister(ConfigReader r, ModbusProfileSettings settings)
    {
        var d = r.Diagnostics;
        var table = r.Enum("table", Tables, required: true);
        var first = settings.Addressing;
        var address = r.Int("address", required: true, min: first, max: 65535 + first);
        var type = r.Enum("type", DataTypes, required: table is not ModbusTable.Coil and not ModbusTable.Discrete, aliases: DataTypeAliases);
        var order = r.Enum("order", Orders);
        var bit = r.Int("bit", min: 0, max: 15);
        var length = r.Int("length", min: 1, max: 250);
        if (table is ModbusTable.Coil or ModbusTable.Discrete)
        {
            if (type is not null and not ModbusDataType.Bit)
            {
                d.Add(r.Node("type")!, $"{Name(Tables, table.Value)} values are single bits: type must be bit");
                return null;
            }

            type = ModbusDataType.Bit;
            if (bit is not null)
            {
                d.Add(r.Node("bit")!, "bit applies to bit fields of registers, not to coils or discrete inputs");
            }
        }
        else if (type == ModbusDataType.Bit && bit is null && r.Node("bit") is null)
        {
            d.Add(r.Mapping.Mark, r.ChildPath("bit"), "missing required key 'bit' (which bit of the register, 0-15)");
        }
        else if (type != ModbusDataType.Bit && r.Node("bit") is not null)
        {
            d.Add(r.Node("bit")!, "bit applies to type: bit only");
        }

        if (type == ModbusDataType.String && length is null && r.Node("length") is null)
        {
            d.Add(r.Mapping.Mark, r.ChildPath("length"), "missing required key 'length' (string length in bytes)");
        }
        else if (type is not null and not ModbusDataType.String && r.Node("length") is not null)
        {
            d.Add(r.Node("length")!, "length applies to type: string only");
        }

        if (order is not null && type is not null && type.Value.RegisterCount(length ?? 2) < 2 && type != ModbusDataType.String)
        {
            d.Add(r.Node("order")!, "order applies to multi-register types only");
        }

        if (table is null || address is null || type is null)
        {
            return null;
        }

        var pdu = address.Value - first;
        var reg = new ModbusRegister(table.Value, pdu, type.Value) { Order = order, Bit = bit, Length = length };
        if (pdu + reg.Count > 65536)
        {
            d.Add(r.Node("address")!, "the value runs past the last register (65535)");
            return null;
        }

        return reg;
    }

    private static string? MetricName(ConfigReader r, string key, bool required = true)
    {
        var name = r.String(key, required);
        if (name is not null && !NamePattern().IsMatch(name))
        {
            r.Diagnostics.Add(r.Node(key)!, $"'{name}' is not a valid name (snake_case: lower-case letters, digits, '_')");
            return null;
        }

        return name;
    }

    /// <summary>A <c>matches:</c> list of text patterns (null when absent; an empty list is an error).</summary>
    private static List<string>? Patterns(ConfigReader r, ConfigSequence? seq)
    {
        if (seq is null)
        {
            return null;
        }

        var patterns = new List<string>();
        foreach (var m in seq.Items)
        {
            if (m is ConfigScalar ms && ms.Value is { Length: > 0 } text)
            {
                patterns.Add(text);
            }
            else
            {
                r.Diagnostics.Add(m, "expected a text pattern (* matches any run of characters), got " + ConfigReader.Describe(m));
            }
        }

        if (seq.Items.Count == 0)
        {
            r.Diagnostics.Add(seq, "matches needs at least one pattern");
        }

        return patterns;
    }

    /// <summary>A table's <c>label_names:</c>, OID value → row label, keyed with the leading dot; null when absent.</summary>
    private static Dictionary<string, string>? ReadLabelNames(ConfigReader r)
    {
        var nr = r.Section("label_names");
        if (nr is null)
        {
            return null;
        }

        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in nr.Mapping.Entries)
        {
            if (!OidPattern().IsMatch(k))
            {
                r.Diagnostics.Add(nr.Mapping.KeyMark(k), v.Path, $"label_names keys are the OIDs the label column returns (dotted numbers, e.g. .1.3.6.1.4.1.476.1.42.3.4.1.1.3), got '{k}'");
            }
            else if (v is not ConfigScalar { IsNull: false } s || string.IsNullOrWhiteSpace(s.Value))
            {
                r.Diagnostics.Add(v, "expected the row label for this OID, got " + ConfigReader.Describe(v));
            }
            else if (!names.TryAdd(k.StartsWith('.') ? k : "." + k, s.Value))
            {
                r.Diagnostics.Add(nr.Mapping.KeyMark(k), v.Path, $"OID '{k}' is named twice (with and without its leading dot)");
            }
        }

        return names;
    }

    private static string? Oid(ConfigReader r, string key, bool required)
    {
        var oid = r.String(key, required);
        if (oid is null)
        {
            return null;
        }

        if (!OidPattern().IsMatch(oid))
        {
            r.Diagnostics.Add(r.Node(key)!, $"'{oid}' is not an OID (dotted numbers, e.g. .1.3.6.1.2.1.1.3.0)");
            return null;
        }

        return oid.StartsWith('.') ? oid : "." + oid;
    }

    internal static string Name<T>(Dictionary<string, T> names, T value)
        where T : struct =>
        names.First(kv => EqualityComparer<T>.Default.Equals(kv.Value, value)).Key;

    [GeneratedRegex("^[a-z][a-z0-9_]*$")]
    private static partial Regex NamePattern();

    [GeneratedRegex(@"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")]
    private static partial Regex RolePattern();

    [GeneratedRegex(@"^\.?[0-2](\.(0|[1-9][0-9]*))+$")]
    private static partial Regex OidPattern();
}
