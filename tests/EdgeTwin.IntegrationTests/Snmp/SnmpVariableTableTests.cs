using System.Collections.Concurrent;
using EdgeTwin.Agent.Sources.Snmp;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Snmp;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>
/// A generic variable table (Rittal CMC III cmcIIIVarTable) read by the SNMP source without a device: rows chosen by a
/// text filter, each value scaled by its row's own factor, rows in another unit skipped and warned once, a row whose
/// status column says "no value" published as a device error, and a steady poll allocating nothing for any of it.
/// </summary>
public sealed class SnmpVariableTableTests
{
    private const string Entry = ".1.3.6.1.4.1.99996.2.1";
    private readonly ConcurrentQueue<(LogLevel Level, string Message)> _logs = new();

    private static readonly DeviceProfile Profile = new(
        "var-table", "Acme", "test", DeviceProtocol.Snmp, "ACME-VAR-MIB",
        [],
        [
            new ProfileTable("temperature", "variable",
            [
                new ProfileMetric("temperature", "Cel", MetricKind.Gauge, "rack.inlet_temperature")
                {
                    Oid = Entry + ".11",
                    RowScale = new ColumnRowScale(Entry + ".7"),
                    RowUnit = new ColumnRowUnit(Entry + ".5", new TextPatterns(["degree C", "°C"])),
                    RowStatus = new ColumnRowStatus(Entry + ".14", [1, 2, 3, 4, 5]),   // cmcIIIVarQuality without the NoValue 21-25
                },
            ])
            {
                Filter = new TableRowFilter(Entry + ".3", []) { Matches = new TextPatterns(["Temperature.Value", "*.Inlet.Value"]) },
            },
        ]);

    // device.variable, name, unit (raw bytes), scale, value
    private static readonly (string Index, string Name, byte[] Unit, int Scale, int Value)[] Rows =
    [
        ("1.1", "Temperature.DescName", "degree C"u8.ToArray(), 0, 0),
        ("1.2", "Temperature.Value", "degree C"u8.ToArray(), -100, 3050),      // 30.5
        ("1.3", "System.Temperature.Value", "degree C"u8.ToArray(), -100, 3230), // not selected: the pattern is exact
        ("2.2", "Temperature.Value", "°C"u8.ToArray(), -10, -55),                // UTF-8 °C, -5.5
        ("3.2", "Temperature.Value", [0xB0, (byte)'C'], 10, 3),                  // ISO 8859-1 °C, ×10 = 30
        ("4.2", "Temperature.Value", "degree F"u8.ToArray(), -10, 716),          // another unit: skipped
        ("5.2", "Air.Inlet.Value", "degree C"u8.ToArray(), 1, 24),               // selected by the glob, ×1
        ("6.2", "Temperature.Value", "degree C"u8.ToArray(), 0, 21),             // 0: not defined by the MIB, read as is
    ];

    private static VarBind[] Column(int column, Func<(string Index, string Name, byte[] Unit, int Scale, int Value), SnmpValue> value) =>
        [.. Rows.Select(r => new VarBind(Oid.Parse($"{Entry}.{column}.{r.Index}"), value(r)))];

    private (SnmpSource Source, SeriesRegistry Registry) Build()
    {
        var credentials = CredentialsConfig.V2c("v2", "public");
        var device = new DeviceConfig("cmc", Profile.Id, DeviceAddress.Udp("127.0.0.1", 161)) { Credentials = credentials.Name, Timeout = TimeSpan.FromSeconds(5) };
        var loggers = new SnmpDeviceErrorsTests.ListLoggerFactory(_logs);
        var sources = new SnmpSourceFactory().Create(new SourceContext(device, Profile, credentials, loggers, TimeProvider.System));
        var registry = new SeriesRegistry();
        sources.Polled!.RegisterSeries(registry);
        return ((SnmpSource)sources.Polled, registry);
    }

    // This poll's walk of the recorded unit's value, name, unit and scale columns.
    private static (VarBind[] Values, VarBind[] Names, VarBind[] Units, VarBind[] Scales) Walked() =>
        (Column(11, r => SnmpValue.Integer(r.Value)), Column(3, r => SnmpValue.OctetString(r.Name)),
         Column(5, r => SnmpValue.OctetString(r.Unit)), Column(7, r => SnmpValue.Integer(r.Scale)));

    [Fact]
    public void Rows_are_selected_by_name_scaled_by_their_own_factor_and_a_row_in_another_unit_is_skipped_with_one_warning()
    {
        var (source, registry) = Build();
        var (values, names, units, scales) = Walked();
        source.UseWalk(0, 0, values);
        source.UseRowColumns(0, 0, scales, units);
        var samples = new List<Sample>();

        source.AddColumnRows(0, 0, values, values.Length, names, null, registry, samples, 1_000, 1, 1);
        source.AddColumnRows(0, 0, values, values.Length, names, null, registry, samples, 2_000, 2, 2);

        var first = samples.Where(s => s.TimestampUnixMs == 1_000).ToDictionary(s => registry[s.Series].Key, s => s.Value);
        Assert.Equal(new Dictionary<string, double>
        {
            ["cmc/temperature{variable=1.2}"] = 30.5,
            ["cmc/temperature{variable=2.2}"] = -5.5,
            ["cmc/temperature{variable=3.2}"] = 30,
            ["cmc/temperature{variable=5.2}"] = 24,
            ["cmc/temperature{variable=6.2}"] = 21,
        }, first);
        Assert.Equal(10, samples.Count); // the same five rows on the second pass
        var warning = Assert.Single(_logs, l => l.Level == LogLevel.Warning).Message; // once, not once per poll
        Assert.Contains("row 4.2: its unit is 'degree F', not one the profile reads ('degree C', '°C', row_unit)", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void A_row_without_its_scale_is_a_device_error_not_an_unscaled_value()
    {
        var (source, registry) = Build();
        var (values, names, units, allScales) = Walked();
        var scales = allScales.Where(vb => !vb.Oid.ToNumericString().EndsWith(".7.1.2", StringComparison.Ordinal)).ToArray();
        source.UseWalk(0, 0, values);
        source.UseRowColumns(0, 0, scales, units);
        var samples = new List<Sample>();

        source.AddColumnRows(0, 0, values, values.Length, names, null, registry, samples, 1_000, 1, 1);

        var row = Assert.Single(samples, s => registry[s.Series].Key == "cmc/temperature{variable=1.2}");
        Assert.Equal(SampleQuality.DeviceError, row.Quality); // 3050 read as 3050 °C would be a fire
        Assert.True(double.IsNaN(row.Value));
    }

    // cmcIIIVarQuality per row: 2.2 okNoValue(22), 3.2 alarmNoValue(24), 5.2 without a status row; the others ok or alarm.
    private static VarBind[] Qualities() =>
        [.. Column(14, r => SnmpValue.Integer(r.Index switch { "2.2" => 22, "3.2" => 24, "6.2" => 4, _ => 2 })).Where(vb => !vb.Oid.ToNumericString().EndsWith(".14.5.2", StringComparison.Ordinal))];

    [Fact]
    public void A_row_whose_status_says_no_value_or_that_has_no_status_is_a_device_error_and_the_others_are_read()
    {
        var (source, registry) = Build();
        var (values, names, units, scales) = Walked();
        source.UseWalk(0, 0, values);
        source.UseRowColumns(0, 0, scales, units, Qualities());
        var samples = new List<Sample>();

        source.AddColumnRows(0, 0, values, values.Length, names, null, registry, samples, 1_000, 1, 1);

        var got = samples.ToDictionary(s => registry[s.Series].Key);
        Assert.Equal((30.5, SampleQuality.Good), (got["cmc/temperature{variable=1.2}"].Value, got["cmc/temperature{variable=1.2}"].Quality));
        Assert.Equal((21.0, SampleQuality.Good), (got["cmc/temperature{variable=6.2}"].Value, got["cmc/temperature{variable=6.2}"].Quality)); // alarm(4): a reading
        foreach (var row in new[] { "2.2", "3.2", "5.2" })
        {
            var sample = got[$"cmc/temperature{{variable={row}}}"];
            Assert.Equal(SampleQuality.DeviceError, sample.Quality);
            Assert.True(double.IsNaN(sample.Value), row);
        }
        // edgetwin poll says why, built on demand.
        Assert.Equal("row_status: the row's status " + Entry + ".14 is 22, which says its value is no reading (reading: 1, 2, 3, 4, 5)", source.ReasonOf(got["cmc/temperature{variable=2.2}"].Series));
        Assert.Contains("no numeric status", source.ReasonOf(got["cmc/temperature{variable=5.2}"].Series), StringComparison.Ordinal);
        Assert.Null(source.ReasonOf(got["cmc/temperature{variable=1.2}"].Series));

        // The status comes back: the row reads again, and its reason is gone.
        source.UseRowColumns(0, 0, scales, units, Column(14, _ => SnmpValue.Integer(2)));
        samples.Clear();
        source.AddColumnRows(0, 0, values, values.Length, names, null, registry, samples, 2_000, 2, 2);
        var again = Assert.Single(samples, s => registry[s.Series].Key == "cmc/temperature{variable=2.2}");
        Assert.Equal((-5.5, SampleQuality.Good), (again.Value, again.Quality));
        Assert.Null(source.ReasonOf(again.Series));
    }

    [Fact]
    public void A_steady_poll_of_a_filtered_scaled_unit_and_status_checked_table_allocates_nothing()
    {
        var (source, registry) = Build();
        var (values, names, units, scales) = Walked();
        source.UseWalk(0, 0, values);
        source.UseRowColumns(0, 0, scales, units, Qualities());   // rows with no value and one without a status among them
        var samples = new List<Sample>(Rows.Length);
        void Pass(long poll)
        {
            samples.Clear();
            source.AddColumnRows(0, 0, values, values.Length, names, null, registry, samples, 1_000 * poll, poll, poll);
        }

        Pass(1); // series made, the skipped row warned
        Pass(2);
        Pass(3);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var poll = 4; poll < 1_004; poll++)
        {
            Pass(poll);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(5, samples.Count);
        Assert.Equal(3, samples.Count(s => s.Quality == SampleQuality.DeviceError)); // the gate ran on every pass
    }
}
