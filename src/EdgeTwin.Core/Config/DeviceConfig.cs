namespace EdgeTwin.Core.Config;

/// <summary>One device to poll.</summary>
/// <param name="Id">Device id, unique in the config; the first part of every series key.</param>
/// <param name="Profile">Profile id (file <c>&lt;profiles_dir&gt;/&lt;profile&gt;.yaml</c>).</param>
/// <param name="Address">Where the device is reached; its scheme matches the profile's protocol.</param>
public sealed record DeviceConfig(string Id, string Profile, DeviceAddress Address)
{
    /// <summary>Poll interval used when the config gives none.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(10);

    /// <summary>Per-poll timeout used when the config gives none.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(2);

    /// <summary>The longest poll interval the config takes: a day (longer is a unit typo, 10d for 10s).</summary>
    public static readonly TimeSpan MaxInterval = TimeSpan.FromDays(1);

    /// <summary>Key into <see cref="SiteConfig.Credentials"/>; required for SNMP devices, null otherwise.</summary>
    public string? Credentials { get; init; }

    /// <summary>Modbus unit (slave) id, 0–247 (default 1 for Modbus devices, null otherwise).</summary>
    public byte? UnitId { get; init; }

    /// <summary>Serial line settings for <c>rtu:</c> devices, null otherwise.</summary>
    public SerialSettings? Serial { get; init; }

    /// <summary>Poll interval.</summary>
    public TimeSpan Interval { get; init; } = DefaultInterval;

    /// <summary>Timeout of one poll (all requests of it); less than <see cref="Interval"/>.</summary>
    public TimeSpan Timeout { get; init; } = DefaultTimeout;

    /// <summary>
    /// Cap on the device's series (<c>max_series</c>): a table whose row indices keep changing must not add series
    /// forever. New series past it are refused and their samples dropped and counted; existing ones keep flowing.
    /// </summary>
    public int MaxSeries { get; init; } = EdgeTwin.Core.Samples.DeviceSeriesBudget.DefaultMaxSeries;

    /// <summary>
    /// How long a table row must stay out of the device's answers (<c>row_retention</c>, and at least
    /// <see cref="RowRetentionMinPolls"/> complete polls) before its series are retired: their state is freed and their
    /// slots under <see cref="MaxSeries"/> are free for new rows. A row that comes back later is a new series.
    /// </summary>
    public TimeSpan RowRetention { get; init; } = DefaultRowRetention;

    /// <summary>A day: a port down overnight or a sensor unplugged for a shift keeps its series and what was learned.</summary>
    public static readonly TimeSpan DefaultRowRetention = TimeSpan.FromDays(1);

    /// <summary>Complete polls a row must be missing from, whatever <see cref="RowRetention"/> says: one short walk is no vanished row.</summary>
    public const int RowRetentionMinPolls = 3;

    /// <summary>Where the device sits in the topology.</summary>
    public DeviceLocation Location { get; init; } = DeviceLocation.None;

    /// <summary>False to keep the device in the config but not poll it.</summary>
    public bool Enabled { get; init; } = true;
}

/// <summary>Where a device sits; at most one of the fields is set.</summary>
/// <param name="Rack">Rack id.</param>
/// <param name="CoolingUnit">Cooling unit id.</param>
/// <param name="Machine">Machine id.</param>
/// <param name="Room">Room id (room sensors, UPS rooms).</param>
public sealed record DeviceLocation(string? Rack = null, string? CoolingUnit = null, string? Machine = null, string? Room = null)
{
    /// <summary>No location.</summary>
    public static DeviceLocation None { get; } = new();

    /// <summary>True when no field is set.</summary>
    public bool IsNone => Rack is null && CoolingUnit is null && Machine is null && Room is null;

    /// <inheritdoc />
    public override string ToString() =>
        Rack is not null ? "rack " + Rack
        : CoolingUnit is not null ? "cooling_unit " + CoolingUnit
        : Machine is not null ? "machine " + Machine
        : Room is not null ? "room " + Room
        : "-";
}

/// <summary>Parity of a serial line.</summary>
public enum SerialParity
{
    /// <summary>No parity (<c>N</c>).</summary>
    None,
    /// <summary>Even parity (<c>E</c>), the Modbus RTU default.</summary>
    Even,
    /// <summary>Odd parity (<c>O</c>).</summary>
    Odd,
}

/// <summary>Serial line settings of a Modbus RTU device.</summary>
/// <param name="Baud">Baud rate.</param>
/// <param name="Parity">Parity.</param>
/// <param name="StopBits">1 or 2.</param>
/// <param name="DataBits">7 or 8.</param>
public sealed record SerialSettings(int Baud = 9600, SerialParity Parity = SerialParity.Even, int StopBits = 1, int DataBits = 8)
{
    /// <summary>The usual notation, e.g. <c>9600 8E1</c> (baud, data bits, parity, stop bits).</summary>
    public override string ToString() =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Baud} {DataBits}{Parity switch { SerialParity.None => 'N', SerialParity.Odd => 'O', _ => 'E' }}{StopBits}");
}
