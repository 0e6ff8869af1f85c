using System.Buffers.Binary;
using EdgeTwin.Agent.Sources.Modbus;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.IntegrationTests.Snmp;
using System.Text.Json.Nodes;
using EdgeTwin.Modbus.Tests.Peers;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.IntegrationTests.Modbus;

/// <summary>
/// The shipped siemens-pac3200 profile read by the agent's Modbus source from a pymodbus server whose holding registers
/// are laid out as the SENTRON PAC3200 manual's Table 3-6 (and the PAC RS485 manual's continuation): IEEE 754 floats
/// high word first at the odd offsets 1..69, Double energy counters at 801..813, nothing at address 0. The image is
/// encoded here with BinaryPrimitives, not with the codec under test.
/// </summary>
public sealed class Pac3200PymodbusTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // Offset → value (as the device means it: a float32 is read back as its shortest decimal, ModbusValueCodec.WidenShortest)
    // of the manual's measured variables, 1..69 complete (THD-R, per-phase VA and var included, as the
    // device has them all: a block read across them must find registers there).
    private static readonly SortedDictionary<int, double> Floats = new()
    {
        [1] = 231.4, [3] = 229.8, [5] = 230.6, [7] = 399.1, [9] = 398.2, [11] = 400.3,
        [13] = 12.5, [15] = 11.75, [17] = 13.05, [19] = 2892.5, [21] = 2700.1, [23] = 3010.6,
        [25] = 2750.5, [27] = 2601.25, [29] = 2890, [31] = 702, [33] = 650.5, [35] = 690.2,
        [37] = 0.95, [39] = 0.93, [41] = 0.97, [43] = 2.1, [45] = 2.3, [47] = 1.9, [49] = 8.4, [51] = 9.1, [53] = 7.7,
        [55] = 49.98, [57] = 230.6, [59] = 399.2, [61] = 12.43, [63] = 8603.2, [65] = 8241.75, [67] = 2042.7, [69] = 0.947,
    };

    private static readonly SortedDictionary<int, double> Doubles = new()
    {
        [801] = 123_456_789.5, [805] = 2_345_678.25, [809] = 1_002.125, [813] = 0,
    };

    /// <summary>
    /// The PAC3200's holding registers as pymodbus units: <paramref name="floats"/> (offset → value) high word first over
    /// 1..70, <see cref="Doubles"/> at 801..816, nothing else (address 0 answers ILLEGAL DATA ADDRESS, as a profile off by
    /// one would find).
    /// </summary>
    internal static JsonObject Units(IReadOnlyDictionary<int, double> floats)
    {
        var floatWords = new int[70];
        foreach (var (offset, value) in floats)
        {
            var bytes = new byte[4];
            BinaryPrimitives.WriteSingleBigEndian(bytes, (float)value);
            floatWords[offset - 1] = BinaryPrimitives.ReadUInt16BigEndian(bytes);
            floatWords[offset] = BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(2));
        }

        var energyWords = new int[16];
        foreach (var (offset, value) in Doubles)
        {
            var bytes = new byte[8];
            BinaryPrimitives.WriteDoubleBigEndian(bytes, value);
            for (var w = 0; w < 4; w++)
            {
                energyWords[offset - 801 + w] = BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(2 * w));
            }
        }

        return PymodbusServer.Units((1, "hr", 1, floatWords), (1, "hr", 801, energyWords));
    }

    /// <summary>The manual's values with <paramref name="offset"/> set to <paramref name="value"/>.</summary>
    internal static Dictionary<int, double> FloatsWith(int offset, double value) => new(Floats) { [offset] = value };

    [Fact]
    public async Task Pac3200_reads_big_endian_floats_at_the_manuals_offsets_and_double_energy_in_wh()
    {
        var units = Units(Floats);
        await using var server = await PymodbusServer.StartTcpAsync(units);

        var profile = ShippedSnmpProfilesSnmpdTests.Shipped("siemens-pac3200");
        var device = new DeviceConfig("pac-line3", profile.Id, DeviceAddress.Tcp("127.0.0.1", server.Port)) { UnitId = 1, Timeout = TimeSpan.FromSeconds(5) };
        await using var source = new ModbusSourceFactory().Create(new SourceContext(device, profile, null, NullLoggerFactory.Instance, TimeProvider.System)).Polled!;
        var registry = new SeriesRegistry();
        source.RegisterSeries(registry);
        var sink = new RecordingSink();
        await source.PollAsync(sink, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), Ct);
        var got = sink.Samples.ToDictionary(s => registry[s.Series].Metric);

        Assert.All(got.Values, s => Assert.Equal(SampleQuality.Good, s.Quality));
        Assert.Equal(profile.Metrics.Count, got.Count);
        foreach (var metric in profile.Metrics)
        {
            var offset = metric.Register!.Address;
            double expected = Doubles.TryGetValue(offset, out var d) ? d : Floats[offset];
            Assert.True(expected == got[metric.Name].Value, $"{metric.Name} (offset {offset}): expected {expected}, read {got[metric.Name].Value}");
        }

        Assert.Equal(231.4, got["voltage_l1_n"].Value);
        Assert.Equal(49.98, got["frequency"].Value);
        Assert.Equal(("W", "meter.power_total"), (registry[got["total_power"].Series].Unit, registry[got["total_power"].Series].Role));
        Assert.Equal(123_456_789.5, got["active_energy_import_t1"].Value);
        Assert.Equal("W.h", registry[got["active_energy_import_t1"].Series].Unit);
        Assert.Equal(0.947, got["total_power_factor"].Value);
    }
}
