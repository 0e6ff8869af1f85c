namespace EdgeTwin.Core.Profiles;

/// <summary>How a profile's device is read.</summary>
public enum DeviceProtocol
{
    /// <summary>SNMP (addresses <c>udp:</c>/<c>udp6:</c>); metrics carry OIDs.</summary>
    Snmp,
    /// <summary>Modbus (addresses <c>tcp:</c>/<c>rtu:</c>/<c>rtutcp:</c>); metrics carry registers.</summary>
    Modbus,
    /// <summary>1-Wire (address <c>w1:</c>).</summary>
    OneWire,
    /// <summary>I2C (address <c>i2c:</c>).</summary>
    I2c,
    /// <summary>GPIO lines (address <c>gpio:</c>): digital inputs, pulse counters, DHT22.</summary>
    Gpio,
    /// <summary>The gateway itself (address <c>cpu</c>).</summary>
    System,
}

/// <summary>
/// What a kind of device offers and how to read it: a <c>device-profiles/&lt;vendor&gt;-&lt;model&gt;.yaml</c> file
/// after loading and validation. Immutable and shared by every device that uses it.
/// </summary>
/// <param name="Id">Profile id (the <c>profile:</c> key, equal to the file name without <c>.yaml</c>).</param>
/// <param name="Vendor">Manufacturer.</param>
/// <param name="Model">Model or family.</param>
/// <param name="Protocol">How the device is read.</param>
/// <param name="Source">The MIB or vendor register map the facts come from.</param>
/// <param name="Metrics">Scalar metrics (one series each).</param>
/// <param name="Tables">SNMP tables (one series per column per row); empty for other protocols.</param>
public sealed record DeviceProfile(
    string Id,
    string Vendor,
    string Model,
    DeviceProtocol Protocol,
    string Source,
    IReadOnlyList<ProfileMetric> Metrics,
    IReadOnlyList<ProfileTable> Tables)
{
    /// <summary>Free text about the device or caveats of the profile.</summary>
    public string? Description { get; init; }

    /// <summary>Modbus request planning settings; set for <see cref="DeviceProtocol.Modbus"/> profiles.</summary>
    public ModbusProfileSettings? Modbus { get; init; }

    /// <summary>Local sensor driver settings; set for 1-Wire, I2C, GPIO and system profiles.</summary>
    public SensorSettings? Sensor { get; init; }

    /// <summary>Full path of the profile file, or null when built in code.</summary>
    public string? SourcePath { get; init; }

    /// <summary>Every metric including table columns.</summary>
    public IEnumerable<ProfileMetric> AllMetrics => Metrics.Concat(Tables.SelectMany(t => t.Columns));

    /// <summary>The scalar metric with this name, or null.</summary>
    public ProfileMetric? FindMetric(string name) =>
        Metrics.FirstOrDefault(m => string.Equals(m.Name, name, StringComparison.Ordinal));
}

/// <summary>
/// An SNMP table: the columns are walked and each row index becomes the tag <see cref="IndexTag"/>
/// (e.g. <c>outlet=7</c>). When <see cref="LabelOid"/> is set its value for the row becomes the tag
/// <see cref="LabelTag"/> as well (e.g. <c>ifName</c> → <c>name=eth0</c>).
/// </summary>
/// <param name="Name">Table name, unique in the profile.</param>
/// <param name="IndexTag">Tag that receives the row index (the OID suffix after the column OID, dotted).</param>
/// <param name="Columns">Columns read per row; each column OID has no instance suffix.</param>
public sealed record ProfileTable(string Name, string IndexTag, IReadOnlyList<ProfileMetric> Columns)
{
    /// <summary>Column whose string value labels the row, or null.</summary>
    public string? LabelOid { get; init; }

    /// <summary>Tag that receives the label (default <c>name</c>).</summary>
    public string LabelTag { get; init; } = "name";

    /// <summary>Upper bound on rows read, so a misbehaving agent cannot create unbounded series.</summary>
    public int MaxRows { get; init; } = 256;

    /// <summary>Keeps only rows whose filter column has one of the listed values (e.g. sensor type = celsius); null keeps all.</summary>
    public TableRowFilter? Filter { get; init; }
}

/// <summary>Row filter of a table: read column <see cref="Oid"/> for each row and keep the row when its integer value is in <see cref="Values"/>.</summary>
/// <param name="Oid">Column OID (no instance suffix).</param>
/// <param name="Values">Accepted values.</param>
public sealed record TableRowFilter(string Oid, IReadOnlyList<long> Values)
{
    /// <summary>True when a row with this filter-column value is kept.</summary>
    public bool Accepts(long value) => Values.Contains(value);
}
