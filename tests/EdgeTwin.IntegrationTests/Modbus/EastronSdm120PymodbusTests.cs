using System.Buffers.Binary;
using System.Text.Json.Nodes;
using EdgeTwin.Agent.Sources.Modbus;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.IntegrationTests.Snmp;
using EdgeTwin.Modbus.Tests.Peers;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.IntegrationTests.Modbus;

/// <summary>
/// The shipped eastron-sdm120 profile read by the agent's Modbus source over Modbus RTU (a socat pty pair at the
/// meter's factory 2400 bit/s, 8N1) from a pymodbus server whose input registers hold the SDM120's parameters as its
/// protocol lays them out: IEEE 754 float32, high word first, at the hex column's protocol addresses 0x0000..0x004F
/// and 0x0156..0x0159. The image is encoded here with BinaryPrimitives, not with the codec under test.
/// </summary>
public sealed class EastronSdm120PymodbusTests
{
    private const int Baud = 2400;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // Address → value of every parameter of the two blocks (the unread ones too: a joined read spans them). The meter
    // exports here: power and reactive power negative.
    private static readonly SortedDictionary<int, double> Floats = new()
    {
        [0x00] = 231.4, [0x06] = 12.5, [0x0C] = -2750.5, [0x12] = 2892.5, [0x18] = -702.25, [0x1E] = -0.95,
        [0x24] = 161.5, [0x46] = 49.98, [0x48] = 12_345.6, [0x4A] = 2_345.5, [0x4C] = 123.25, [0x4E] = 45.5,
        [0x156] = 14_691.1, [0x158] = 168.75,
    };

    private static JsonObject Image()
    {
        var low = new int[0x50];
        var high = new int[4];
        foreach (var (address, value) in Floats)
        {
            var bytes = new byte[4];
            BinaryPrimitives.WriteSingleBigEndian(bytes, (float)value);
            var (words, at) = address < 0x100 ? (low, address) : (high, address - 0x156);
            words[at] = BinaryPrimitives.ReadUInt16BigEndian(bytes);
            words[at + 1] = BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(2));
        }

        return PymodbusServer.Units((1, "ir", 0, low), (1, "ir", 0x156, high));
    }

    private static async Task<Dictionary<string, Sample>> PollRtuAsync(DeviceProfile profile)
    {
        await using var pty = await SocatPtyPair.StartAsync();
        await using var server = await PymodbusServer.StartSerialAsync(pty.A, Baud, Image());
        var device = new DeviceConfig("crah-feed", profile.Id, DeviceAddress.Rtu(pty.B))
        {
            UnitId = 1, Serial = new SerialSettings(Baud, SerialParity.None), Timeout = TimeSpan.FromSeconds(5),
        };
        return await ModbusProfilePoll.OnceAsync(device, profile, Ct);
    }

    [Fact]
    public async Task Sdm120_reads_high_word_first_floats_at_the_hex_columns_protocol_addresses_over_rtu()
    {
        var profile = ShippedSnmpProfilesSnmpdTests.Shipped("eastron-sdm120");

        var got = await PollRtuAsync(profile);

        Assert.Equal(profile.Metrics.Count, got.Count);
        foreach (var metric in profile.Metrics)
        {
            var expected = Floats[metric.Register!.Address];
            Assert.True(expected == got[metric.Name].Value, $"{metric.Name} (0x{metric.Register.Address:X4}): expected {expected}, read {got[metric.Name].Value}");
            Assert.Equal(SampleQuality.Good, got[metric.Name].Quality);
        }

        Assert.Equal(231.4, got["voltage"].Value);
        Assert.Equal(-2750.5, got["power"].Value);        // exporting: signed, not flagged
        Assert.Equal(-0.95, got["power_factor"].Value);
        Assert.Equal(14_691.1, got["total_energy"].Value);   // 0x0156, the second block
    }

    [Fact]
    public async Task Sdm120_read_with_the_words_swapped_gives_other_values_so_the_order_is_what_the_test_proves()
    {
        var path = Path.Combine(Simulator.SimPaths.Profiles, "eastron-sdm120.yaml");
        var yaml = File.ReadAllText(path);
        Assert.Contains("byte_order: ABCD", yaml, StringComparison.Ordinal);
        var d = new ConfigDiagnostics();
        var swapped = DeviceProfileLoader.Parse(yaml.Replace("byte_order: ABCD", "byte_order: CDAB", StringComparison.Ordinal), path, d);
        Assert.True(d.IsEmpty, string.Join("\n", d.Items));

        var got = await PollRtuAsync(swapped!);

        Assert.Equal(swapped!.Metrics.Count, got.Count);
        Assert.All(swapped.Metrics, m => Assert.NotEqual(Floats[m.Register!.Address], got[m.Name].Value));
    }

    [Fact]
    public void Sdm120_is_a_whole_meter_so_it_can_be_a_rooms_infrastructure_meter()
    {
        // One phase is the whole meter: its power is meter.power_total, which `check` requires of a facility or room
        // meter; a per-phase meter.power would leave the room's partial PUE without its infrastructure power.
        var profile = ShippedSnmpProfilesSnmpdTests.Shipped("eastron-sdm120");
        var total = Assert.Single(profile.Metrics, m => m.Role == "meter.power_total");
        Assert.Equal("power", total.Name);
        Assert.Equal("W", total.Unit);
        Assert.DoesNotContain(profile.Metrics, m => m.Role == "meter.power");
    }
}
