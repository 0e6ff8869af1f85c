using System.Buffers.Binary;
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
/// The shipped janitza-umg96rm profile read by the agent's Modbus source from a pymodbus server whose holding registers
/// hold the UMG 96RM's "frequently required readings" as its Modbus address list lays them out: IEEE 754 floats, bytes
/// high before low (Motorola format), at protocol addresses 19000..19077 (the manual reads Voltage L1-N with start address
/// 0x4A38 = 19000). The image is encoded here with BinaryPrimitives, not with the codec under test.
/// </summary>
public sealed class JanitzaUmg96rmPymodbusTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // Address → value of every float of the block 19000..19076 (the ones the profile leaves out too: a joined read
    // spans them). Power is signed, as the device gives it; L3 here delivers (negative power, negative cos phi).
    private static readonly SortedDictionary<int, double> Floats = new()
    {
        [19000] = 231.4, [19002] = 229.8, [19004] = 230.6, [19006] = 399.1, [19008] = 398.2, [19010] = 400.3,
        [19012] = 12.5, [19014] = 11.75, [19016] = 13.05, [19018] = 1.3,
        [19020] = 2750.5, [19022] = 2601.25, [19024] = -890, [19026] = 4461.75,
        [19028] = 2892.5, [19030] = 2700.1, [19032] = 3010.6, [19034] = 8603.2,
        [19036] = 702, [19038] = 650.5, [19040] = 690.2, [19042] = 2042.7,
        [19044] = 0.95, [19046] = 0.93, [19048] = -0.97, [19050] = 49.98, [19052] = 1,
        [19054] = 1_000_000, [19056] = 900_000, [19058] = 800_000, [19060] = 2_700_000,
        [19062] = 1_100_000, [19064] = 950_000, [19066] = 850_000, [19068] = 2_900_000,
        [19070] = 100_000, [19072] = 50_000, [19074] = 50_000, [19076] = 200_000.5,
    };

    private static int[] Words() => Words(Floats);

    /// <summary>The 19000..19077 register image of the Janitza family's float block (the UMG 604 reads the same one).</summary>
    internal static int[] Words(IReadOnlyDictionary<int, double> floats)
    {
        var words = new int[78];
        foreach (var (address, value) in floats)
        {
            var bytes = new byte[4];
            BinaryPrimitives.WriteSingleBigEndian(bytes, (float)value);
            words[address - 19000] = BinaryPrimitives.ReadUInt16BigEndian(bytes);
            words[address - 19000 + 1] = BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(2));
        }

        return words;
    }

    internal static async Task<Dictionary<string, Sample>> PollAsync(PymodbusServer server, DeviceProfile profile)
    {
        var device = new DeviceConfig("incomer", profile.Id, DeviceAddress.Tcp("127.0.0.1", server.Port)) { UnitId = 1, Timeout = TimeSpan.FromSeconds(5) };
        return await ModbusProfilePoll.OnceAsync(device, profile, Ct);
    }

    [Fact]
    public async Task Umg96rm_reads_motorola_order_floats_at_the_address_lists_protocol_addresses()
    {
        await using var server = await PymodbusServer.StartTcpAsync(PymodbusServer.Units((1, "hr", 19000, Words())));
        var profile = ShippedSnmpProfilesSnmpdTests.Shipped("janitza-umg96rm");

        var got = await PollAsync(server, profile);

        Assert.Equal(profile.Metrics.Count, got.Count);
        foreach (var metric in profile.Metrics)
        {
            var expected = Floats[metric.Register!.Address];
            Assert.True(expected == got[metric.Name].Value, $"{metric.Name} ({metric.Register.Address}): expected {expected}, read {got[metric.Name].Value}");
            Assert.Equal(SampleQuality.Good, got[metric.Name].Quality);
        }

        Assert.Equal(231.4, got["voltage_l1_n"].Value);
        Assert.Equal(4461.75, got["total_power"].Value);
        Assert.Equal(-890, got["power_l3"].Value);          // delivering: signed, not flagged
        Assert.Equal(-0.97, got["power_factor_l3"].Value);
        Assert.Equal(49.98, got["frequency"].Value);
        Assert.Equal(2_900_000, got["active_energy_import"].Value);   // 19068, consumed L1..L3
        Assert.Equal(200_000.5, got["active_energy_export"].Value);   // 19076, delivered L1..L3
    }

    [Fact]
    public async Task Umg96rm_read_with_the_words_swapped_gives_other_values_so_the_order_is_what_the_test_proves()
    {
        // The same registers read as CDAB (low word first): were the shipped order not the one the image is written in,
        // the test above could not pass; were both orders to give the same values, it would prove nothing.
        await using var server = await PymodbusServer.StartTcpAsync(PymodbusServer.Units((1, "hr", 19000, Words())));
        var path = Path.Combine(Simulator.SimPaths.Profiles, "janitza-umg96rm.yaml");
        var yaml = File.ReadAllText(path);
        Assert.Contains("byte_order: ABCD", yaml, StringComparison.Ordinal);
        var d = new ConfigDiagnostics();
        var swapped = DeviceProfileLoader.Parse(yaml.Replace("byte_order: ABCD", "byte_order: CDAB", StringComparison.Ordinal), path, d);
        Assert.True(d.IsEmpty, string.Join("\n", d.Items));

        var got = await PollAsync(server, swapped!);

        Assert.Equal(swapped!.Metrics.Count, got.Count);
        Assert.All(swapped.Metrics, m => Assert.NotEqual(Floats[m.Register!.Address], got[m.Name].Value));
        Assert.NotEqual(231.4, got["voltage_l1_n"].Value);
    }
}
