using EdgeTwin.Agent.Sources.Modbus;
using EdgeTwin.Agent.Twin.Power;
using EdgeTwin.Agent.Twin.Thermal;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.IntegrationTests.Modbus;
using EdgeTwin.IntegrationTests.Snmp;
using EdgeTwin.Modbus.Tests.Peers;
using EdgeTwin.Twin.Power;
using EdgeTwin.Simulator.Devices;
using EdgeTwin.Simulator.Physics;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.IntegrationTests.Twin;

/// <summary>
/// "Does it read my devices out of the box": a UPS card and an APC probe card, each served by snmpd from a recording,
/// polled through the shipped profiles, and the samples fed to the live twin stage. The twins pick their inputs by role
/// and by where the device sits (the UPS's device in site.power.ups, the probe card at a rack), not by profile: the
/// power twin must get the UPS's charge and runtime in minutes, the thermal twin the rack's inlet from the probes.
/// </summary>
public sealed class ShippedUpsAndProbeProfilesTwinTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("eaton-xups", ".1.3.6.1.4.1.534", 1)]          // XUPS-MIB: runtime in s, per-phase output watts
    [InlineData("apc-smart-ups", ".1.3.6.1.4.1.318.1.1.1", 0)] // PowerNet-MIB: runtime in TimeTicks, no output watts
    public async Task Shipped_ups_and_probe_profiles_feed_the_power_and_thermal_twins(string upsProfile, string upsSubtree, int pueCategory)
    {
        await using var ups = new SnmpdRecordingProcess(upsProfile, upsSubtree);
        await ups.InitializeAsync();
        Assert.SkipWhen(ups.SkipReason is not null, ups.SkipReason ?? "");
        await using var probes = new SnmpdRecordingProcess("apc-uio-probe", ".1.3.6.1.4.1.318.1.1.25");
        await probes.InitializeAsync();

        var spec = SiteGenerator.Generate(new SiteGenerationOptions { Seed = 7, Racks = 6, CoolingUnits = 2, RacksPerRow = 6, MinRackKw = 8, MaxRackKw = 12, Start = DateTimeOffset.UtcNow });
        var rack = spec.Racks[0].Id;
        var config = SimSiteConfig.Build(
            spec,
            [
                // The generated room's 2N pair: two UPSes of the same make (one recording answers for both cards).
                (new SimDeviceBinding("ups-1", upsProfile, SimEntityKind.Ups, "ups1"), DeviceAddress.Udp("127.0.0.1", ups.Port)),
                (new SimDeviceBinding("ups-2", upsProfile, SimEntityKind.Ups, "ups2"), DeviceAddress.Udp("127.0.0.1", ups.Port)),
                (new SimDeviceBinding("probes-" + rack, "apc-uio-probe", SimEntityKind.Rack, rack), DeviceAddress.Udp("127.0.0.1", probes.Port)),
            ],
            TimeSpan.FromSeconds(10));
        var registry = new SeriesRegistry();
        using var stage = new ThermalTwinStage(config, registry, new NoEvents(), NullLogger<ThermalTwinStage>.Instance, new ThermalTwinOptions());

        Assert.Equal(["ups1", "ups2"], spec.Upses.Select(u => u.Id));
        var samples = new List<Sample>();
        foreach (var (device, profile, snmpd) in new[] { ("ups-1", upsProfile, ups), ("ups-2", upsProfile, ups), ("probes-" + rack, "apc-uio-probe", probes) })
        {
            samples.AddRange((await ShippedSnmpProfilesSnmpdTests.PollOnceAsync(snmpd, device, profile, registry)).ByKey.Values);
        }

        await stage.ProcessAsync(samples.ToArray(), Ct);

        // Power twin: both recordings say 87 % and 30 min (1800 s on the Eaton, 180000 TimeTicks on the APC).
        var assumptions = new List<string>();
        var (_, batteries) = stage.PowerChainReadings(assumptions);
        Assert.Empty(assumptions);
        Assert.Equal(["ups1", "ups2"], batteries.Keys.Order(StringComparer.Ordinal));
        Assert.All(batteries.Values, b => Assert.Equal((87.0, 30.0), (Math.Round(b.Charge, 9), Math.Round(b.Runtime, 9))));

        // Thermal twin: the rack's inlet is the mean of its two reading probes (23 and 27 °C); the probe whose link is
        // lost reads -1, published out of range, and is not averaged in as a freezing inlet.
        var (zone, index) = Enumerable.Range(0, stage.Twin.Zones.Count)
            .SelectMany(z => stage.Twin.Model(z).Zone.Racks.Select((r, i) => (Zone: z, Index: i, r.Id)))
            .Where(r => r.Id == rack).Select(r => (r.Zone, r.Index)).Single();
        var now = samples.Max(s => s.TimestampUnixMs);
        Assert.Equal(25, stage.Snapshot(zone, now).RackInletC[index], 9);

        // The live PUE's IT power (category 1) needs every UPS's ups.output_power in W, kW or MW.
        Assert.Equal(pueCategory, config.Site.Power.PueItPower(_ => ShippedSnmpProfilesSnmpdTests.Shipped(upsProfile)).Category);
    }

    [Fact]
    public async Task An_eaton_ups_pair_and_a_pac3200_incomer_give_the_live_pue_through_their_shipped_profiles()
    {
        // The facility meter by site.power.facility_meter (its meter.power_total, W), the IT power as the sum of every
        // UPS's ups.output_power rows (category 1): each Eaton's three xupsOutputWatts rows are 1840 + 1610 + 2070 W,
        // the pair 11 040 W; the PAC3200 reads 16 560 W at offset 65. PUE 1.5.
        await using var snmpd = new SnmpdRecordingProcess("eaton-xups", ".1.3.6.1.4.1.534");
        await snmpd.InitializeAsync();
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        await using var pymodbus = await PymodbusServer.StartTcpAsync(Pac3200PymodbusTests.Units(Pac3200PymodbusTests.FloatsWith(65, 16_560)));

        var ups = DeviceAddress.Udp("127.0.0.1", snmpd.Port);
        var topology = new SiteTopology("dc2", "gw2", [], [], new PowerChainConfig(
            [new UpsConfig("ups-a", "ups-a", 20), new UpsConfig("ups-b", "ups-b", 20)],
            [new PduConfig("pdu-b01", null, "ups-a", 32, 1, 230)],
            "incomer"), []);
        var config = new SiteConfig(
            topology,
            [
                new DeviceConfig("ups-a", "eaton-xups", ups) { Interval = TimeSpan.FromSeconds(10) },
                new DeviceConfig("ups-b", "eaton-xups", ups) { Interval = TimeSpan.FromSeconds(10) },
                new DeviceConfig("incomer", "siemens-pac3200", DeviceAddress.Tcp("127.0.0.1", pymodbus.Port)) { UnitId = 1, Interval = TimeSpan.FromSeconds(5), Timeout = TimeSpan.FromSeconds(5) },
            ],
            new Dictionary<string, CredentialsConfig>(StringComparer.Ordinal),
            OutboxSettings.Default)
        { Profiles = new Dictionary<string, Core.Profiles.DeviceProfile>(StringComparer.Ordinal) { ["eaton-xups"] = ShippedSnmpProfilesSnmpdTests.Shipped("eaton-xups"), ["siemens-pac3200"] = ShippedSnmpProfilesSnmpdTests.Shipped("siemens-pac3200") } };
        var registry = new SeriesRegistry();
        var stage = new PueStage(config, registry, NullLogger<PueStage>.Instance);
        Assert.Equal(PueBasis.UpsOutput, stage.Basis);

        var upsSamples = new List<Sample>();
        foreach (var device in (string[])["ups-a", "ups-b"])
        {
            upsSamples.AddRange((await ShippedSnmpProfilesSnmpdTests.PollOnceAsync(snmpd, device, "eaton-xups", registry)).ByKey.Values);
        }

        var meter = config.FindDevice("incomer")!;
        await using var source = new ModbusSourceFactory().Create(new SourceContext(meter, config.Profiles["siemens-pac3200"], null, NullLoggerFactory.Instance, TimeProvider.System)).Polled!;
        source.RegisterSeries(registry);
        var meterSamples = new RecordingSink();
        await source.PollAsync(meterSamples, upsSamples.Max(s => s.TimestampUnixMs) + 1, Ct);

        await stage.ProcessAsync(upsSamples.ToArray(), Ct);
        await stage.ProcessAsync(meterSamples.Samples.ToArray(), Ct);
        Assert.Equal(PueOutcome.Ok, stage.Latest.Outcome);
        Assert.Equal(1.5, stage.Latest.Value, 9);
    }

    private sealed class NoEvents : IEventSink
    {
        public ValueTask PublishAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken) => ValueTask.CompletedTask;
    }
}
