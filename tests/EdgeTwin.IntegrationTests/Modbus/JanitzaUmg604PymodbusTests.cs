using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.IntegrationTests.Snmp;
using EdgeTwin.Modbus.Tests.Peers;

namespace EdgeTwin.IntegrationTests.Modbus;

/// <summary>
/// The shipped janitza-umg604 profile read by the agent's Modbus source over Modbus TCP from a pymodbus server whose
/// holding registers hold the Janitza family's "frequently required readings" as a UMG 604 serves them: IEEE 754
/// floats, high before low byte, at protocol addresses 19000..19077 (function 03). The image is encoded here with
/// BinaryPrimitives, not with the codec under test.
/// </summary>
public sealed class JanitzaUmg604PymodbusTests
{
    // Address → value of every float of the block 19000..19076 (the unread ones too: a joined read spans them). A
    // 400 V incomer importing on L1/L2 and delivering on L3 (negative power and cos phi).
    private static readonly SortedDictionary<int, double> Floats = new()
    {
        [19000] = 232.1, [19002] = 230.9, [19004] = 231.7, [19006] = 401.2, [19008] = 400.4, [19010] = 401.9,
        [19012] = 182.5, [19014] = 176.25, [19016] = 64.75, [19018] = 9.5,
        [19020] = 41_250.5, [19022] = 39_600.25, [19024] = -14_200, [19026] = 66_650.75,
        [19028] = 42_360, [19030] = 40_700.5, [19032] = 15_002, [19034] = 98_062.5,
        [19036] = 9_500, [19038] = 9_250.5, [19040] = -4_860, [19042] = 13_890.5,
        [19044] = 0.974, [19046] = 0.973, [19048] = -0.947, [19050] = 50.02, [19052] = 1,
        [19054] = 3_100_000, [19056] = 3_000_000, [19058] = -200_000, [19060] = 5_900_000,
        [19062] = 3_200_000, [19064] = 3_050_000, [19066] = 100_000, [19068] = 6_350_000,
        [19070] = 100_000, [19072] = 50_000, [19074] = 300_000, [19076] = 450_000.5,
    };

    [Fact]
    public async Task Umg604_reads_the_family_float_block_high_word_first_with_function_03()
    {
        await using var server = await PymodbusServer.StartTcpAsync(PymodbusServer.Units((1, "hr", 19000, JanitzaUmg96rmPymodbusTests.Words(Floats))));
        var profile = ShippedSnmpProfilesSnmpdTests.Shipped("janitza-umg604");

        var got = await JanitzaUmg96rmPymodbusTests.PollAsync(server, profile);

        Assert.Equal(profile.Metrics.Count, got.Count);
        foreach (var metric in profile.Metrics)
        {
            Assert.Equal(ModbusTable.Holding, metric.Register!.Table);
            var expected = Floats[metric.Register.Address];
            Assert.True(expected == got[metric.Name].Value, $"{metric.Name} ({metric.Register.Address}): expected {expected}, read {got[metric.Name].Value}");
            Assert.Equal(SampleQuality.Good, got[metric.Name].Quality);
        }

        Assert.Equal(182.5, got["current_l1"].Value);
        Assert.Equal(66_650.75, got["total_power"].Value);
        Assert.Equal(-14_200, got["power_l3"].Value);        // delivering: signed, not flagged
        Assert.Equal(-0.947, got["power_factor_l3"].Value);
        Assert.Equal(6_350_000, got["active_energy_import"].Value);   // 19068, _G_WH_V_HT_SUML13
        Assert.Equal(450_000.5, got["active_energy_export"].Value);   // 19076, _G_WH_Z_SUML13
    }

    [Fact]
    public void Umg604_reads_the_same_block_as_the_umg96rm_so_a_fix_to_one_map_is_owed_to_the_other()
    {
        // Both profiles read the family's shared 19000 block; were one to change an address, type or role alone, this
        // fails and points at the other file.
        var umg604 = ShippedSnmpProfilesSnmpdTests.Shipped("janitza-umg604");
        var umg96rm = ShippedSnmpProfilesSnmpdTests.Shipped("janitza-umg96rm");

        static string Row(ProfileMetric m) => $"{m.Name} {m.Register} {m.Unit} {m.Kind} {m.Role} {m.Min} {m.Max}";
        Assert.Equal(umg96rm.Metrics.Select(Row), umg604.Metrics.Select(Row));
        Assert.Equal(umg96rm.Modbus, umg604.Modbus);
    }
}
