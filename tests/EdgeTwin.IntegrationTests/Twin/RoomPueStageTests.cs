using EdgeTwin.Agent.Twin.Power;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Samples;
using EdgeTwin.IntegrationTests.Simulator;
using EdgeTwin.Tests.Shared;
using EdgeTwin.Twin.Power;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Twin;

/// <summary>
/// <see cref="PueStage"/>'s per-room partial PUE (<c>rooms[].power.infrastructure_meters</c>) on a two-hall site, the
/// series named as the shipped profiles publish them (name, unit and role read from the profile files): each hall's
/// own pPUE, the site PUE beside them unchanged, and no pPUE from a missing, stale or absurd input.
/// </summary>
public sealed class RoomPueStageTests
{
    private const long T0 = 1_800_000_000_000;
    private static readonly DeviceAddress Snmp = DeviceAddress.Parse("udp:127.0.0.1:161");
    private static readonly DeviceAddress Modbus = DeviceAddress.Parse("tcp:127.0.0.1:502");
    private static readonly Dictionary<string, Core.Profiles.DeviceProfile> Shipped =
        ((string[])["ietf-ups-mib", "apc-rpdu2", "eaton-epdu", "siemens-pac3200", "eastron-sdm630", "schneider-pm5300"])
        .ToDictionary(id => id, id => Core.Profiles.DeviceProfileLoader.LoadFileOrThrow(Path.Combine(SimPaths.Profiles, id + ".yaml")), StringComparer.Ordinal);
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// hall-a: racks A01 (pdu-a1 + pdu-a2) and A02 (pdu-a1), apc-rpdu2 PDUs (kW), its CRAH feed and lighting on two
    /// eastron-sdm630 (W). hall-b: B01 on an eaton-epdu (W), its cooling on a schneider-pm5300 (kW). hall-c: a meter but
    /// an unmonitored PDU. The site: a siemens-pac3200 (W) on the incomer, IT at the ietf-ups-mib UPS's outputs.
    /// </summary>
    private static SiteConfig Config(bool roomMeters = true)
    {
        RoomConfig Room(string id, IReadOnlyList<RackConfig> racks, params string[] meters) =>
            new(id, null, [new RowConfig("R", racks)], roomMeters ? meters : null);
        RackConfig Rack(string id, int position, params string[] feeds) => new(id, position, 10, feeds, 0);
        var topology = new SiteTopology(
            "dc1",
            "gw1",
            [
                Room("hall-a", [Rack("A01", 1, "pdu-a1", "pdu-a2"), Rack("A02", 2, "pdu-a1")], "crah-a", "light-a"),
                Room("hall-b", [Rack("B01", 1, "pdu-b1")], "crah-b"),
                Room("hall-c", [Rack("C01", 1, "pdu-c1")], "crah-c"),
            ],
            [],
            new PowerChainConfig(
                [new UpsConfig("ups1", "ups-1", 80)],
                [Pdu("pdu-a1"), Pdu("pdu-a2"), Pdu("pdu-b1"), new PduConfig("pdu-c1", null, "ups1", 32, 1, 230)],
                "main"),
            []);
        DeviceConfig Device(string id, string profile, DeviceAddress address) => new(id, profile, address) { Interval = TimeSpan.FromSeconds(10) };
        return new SiteConfig(
            topology,
            [
                Device("ups-1", "ietf-ups-mib", Snmp), Device("pdu-a1", "apc-rpdu2", Snmp), Device("pdu-a2", "apc-rpdu2", Snmp), Device("pdu-b1", "eaton-epdu", Snmp),
                Device("main", "siemens-pac3200", Modbus), Device("crah-a", "eastron-sdm630", Modbus), Device("light-a", "eastron-sdm630", Modbus),
                Device("crah-b", "schneider-pm5300", Modbus), Device("crah-c", "eastron-sdm630", Modbus),
            ],
            new Dictionary<string, CredentialsConfig>(StringComparer.Ordinal),
            OutboxSettings.Default)
        { Profiles = Shipped };

        static PduConfig Pdu(string id) => new(id, id, "ups1", 32, 1, 230);
    }

    /// <summary>The series a device of <paramref name="profile"/> publishes for its (untagged) metric of <paramref name="role"/>.</summary>
    private static SeriesDescriptor Series(string device, string profile, string role)
    {
        var m = Shipped[profile].AllMetrics.First(m => m.Role == role);
        return new SeriesDescriptor(device, m.Name, m.Unit, m.Kind, m.Role);
    }

    private static SeriesDescriptor UpsLine(int line) =>
        new("ups-1", "output_power", "W", MetricKind.Gauge, "ups.output_power", [new("line", line.ToString(System.Globalization.CultureInfo.InvariantCulture))]);

    private static readonly SeriesDescriptor PduA1 = Series("pdu-a1", "apc-rpdu2", "pdu.power");
    private static readonly SeriesDescriptor PduA2 = Series("pdu-a2", "apc-rpdu2", "pdu.power");
    private static readonly SeriesDescriptor PduB1 = Series("pdu-b1", "eaton-epdu", "pdu.power");
    private static readonly SeriesDescriptor CrahA = Series("crah-a", "eastron-sdm630", "meter.power_total");
    private static readonly SeriesDescriptor LightA = Series("light-a", "eastron-sdm630", "meter.power_total");
    private static readonly SeriesDescriptor CrahB = Series("crah-b", "schneider-pm5300", "meter.power_total");
    private static readonly SeriesDescriptor Main = Series("main", "siemens-pac3200", "meter.power_total");

    [Fact]
    public async Task Two_halls_get_their_own_ppue_and_the_site_pue_is_unchanged()
    {
        // The shipped units this test relies on: kW PDUs and a kW meter in one hall, W in the other.
        Assert.Equal(("kW", "W", "W", "kW"), (PduA1.Unit, PduB1.Unit, CrahA.Unit, CrahB.Unit));
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var meters = services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        using var samples = new MetricCollector<long>(meters, "EdgeTwin.Twin.Pue", "edgetwin.twin.pue.samples");
        using var skipped = new MetricCollector<long>(meters, "EdgeTwin.Twin.Pue", "edgetwin.twin.pue.skipped");
        var registry = new SeriesRegistry();
        var logger = new ListLogger<PueStage>();
        var stage = new PueStage(Config(), registry, logger, meters);

        Assert.Equal(["hall-a", "hall-b"], stage.Rooms.Select(r => r.Room));
        Assert.Equal(["dc1/ppue{room=hall-a}", "dc1/ppue{room=hall-b}"], stage.Rooms.Select(r => registry[r.Series].Key));
        Assert.All(stage.Rooms, r => Assert.Equal(("room.ppue", "1"), (registry[r.Series].Role, registry[r.Series].Unit)));
        Assert.Equal(["pdu-a1", "pdu-a2"], stage.Rooms[0].ItDevices);
        Assert.Equal("dc1/pue{category=1,it_at=ups_output}", registry[stage.Series].Key);
        // hall-c is not computed, with one warning naming the PDU that is not read.
        Assert.Equal(
            "Partial PUE of room hall-c not computed although its power.infrastructure_meters are crah-c: the IT power needs every PDU feeding its racks to read pdu.power (pdu-c1 has no device); a partial sum would overstate the pPUE",
            Assert.Single(logger.At(LogLevel.Warning)));

        var published = new List<Sample>();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var publisher = stage.PublishAsync(new PublishedSamples.ListSink(published), cts.Token);
        Sample S(SeriesDescriptor d, long at, double v, SampleQuality q = SampleQuality.Good) => new(registry.GetOrAdd(d), at, v, q);
        var hallA = stage.Rooms[0];
        var hallB = stage.Rooms[1];

        // hall-a: CRAH 3000 W read before its lighting meter: no pPUE (3.0 + 12) / 12 = 1.25 that leaves the lights out.
        await stage.ProcessAsync(new[] { S(PduA1, T0, 7), S(PduA2, T0, 5), S(PduB1, T0, 8000), S(CrahA, T0, 3000) }, Ct);
        Assert.Equal(PueOutcome.Missing, hallA.Latest.Outcome);

        // hall-a: (3.0 + 0.6 + 7 + 5) / 12 = 1.3; hall-b: (4 + 8) / 8 = 1.5; the site: 32 kW / 20 kW = 1.6.
        await stage.ProcessAsync(new[] { S(LightA, T0 + 500, 600), S(UpsLine(1), T0 + 500, 12_000), S(UpsLine(2), T0 + 500, 8_000) }, Ct);
        Assert.Equal(PueOutcome.Missing, hallA.Latest.Outcome); // the lighting meter does not pace the series
        await stage.ProcessAsync(new[] { S(CrahA, T0 + 1000, 3000), S(CrahB, T0 + 1000, 4), S(Main, T0 + 1000, 32_000) }, Ct);
        Assert.Equal((PueOutcome.Ok, 1.3), (hallA.Latest.Outcome, Math.Round(hallA.Latest.Value, 9)));
        Assert.Equal(15.6, hallA.Latest.FacilityKw, 9);
        Assert.Equal((PueOutcome.Ok, 1.5), (hallB.Latest.Outcome, Math.Round(hallB.Latest.Value, 9)));
        Assert.Equal((PueOutcome.Ok, 1.6), (stage.Latest.Outcome, Math.Round(stage.Latest.Value, 9)));

        // pdu-a2 answers no more (held value, quality stale): past 60 s hall-a stops, hall-b goes on.
        await stage.ProcessAsync(new[] { S(PduA1, T0 + 70_000, 7), S(PduA2, T0 + 70_000, 5, SampleQuality.Stale), S(LightA, T0 + 70_000, 600), S(PduB1, T0 + 70_000, 8000), S(CrahA, T0 + 70_500, 3000), S(CrahB, T0 + 70_500, 4) }, Ct);
        Assert.Equal(PueOutcome.Stale, hallA.Latest.Outcome);
        Assert.Equal(PueOutcome.Ok, hallB.Latest.Outcome);
        Assert.Contains("Partial PUE of room hall-a no longer published: pdu-a2 last read 70 s ago (limit 60 s)", logger.At(LogLevel.Warning));

        // hall-b's meter in W read as kW would say (4000 + 8) / 8: published out of range, never as good, one warning.
        await stage.ProcessAsync(new[] { S(PduB1, T0 + 71_000, 8000), S(CrahB, T0 + 71_000, 4000) }, Ct);
        await stage.ProcessAsync(new[] { S(PduB1, T0 + 72_000, 8000), S(CrahB, T0 + 72_000, 4000) }, Ct);
        Assert.Equal(PueOutcome.Implausible, hallB.Latest.Outcome);
        Assert.Single(logger.At(LogLevel.Warning), w => w.StartsWith("Partial PUE 501.00 of room hall-b is implausible", StringComparison.Ordinal));

        // An empty hall with its cooling running: never divided.
        await stage.ProcessAsync(new[] { S(PduB1, T0 + 73_000, 0), S(CrahB, T0 + 73_000, 4) }, Ct);
        Assert.Equal(PueOutcome.NoItLoad, hallB.Latest.Outcome);

        await PublishedSamples.WaitForAsync(() => PublishedSamples.Count(published) >= 6);
        await Task.Delay(200, Ct);
        await cts.CancelAsync();
        await publisher;
        Assert.Equal(
            [
                (stage.Rooms[0].Series, T0 + 1000, 1.3, SampleQuality.Good),
                (stage.Rooms[1].Series, T0 + 1000, 1.5, SampleQuality.Good),
                (stage.Series, T0 + 1000, 1.6, SampleQuality.Good),
                (stage.Rooms[1].Series, T0 + 70_500, 1.5, SampleQuality.Good),
                (stage.Rooms[1].Series, T0 + 71_000, 501.0, SampleQuality.OutOfRange),
                (stage.Rooms[1].Series, T0 + 72_000, 501.0, SampleQuality.OutOfRange),
            ],
            published.Select(s => (s.Series, s.TimestampUnixMs, Math.Round(s.Value, 9), s.Quality)));

        // Counted per room (tag room): a hall's samples are not the site PUE's, whose stay untagged.
        long Counted(MetricCollector<long> collector, string? room, string? reason = null) => collector.GetMeasurementSnapshot()
            .Where(m => (m.Tags.TryGetValue("room", out var r) ? r as string : null) == room && (reason is null || m.Tags["reason"] as string == reason))
            .Sum(m => m.Value);
        Assert.Equal((1L, 1L, 4L), (Counted(samples, null), Counted(samples, "hall-a"), Counted(samples, "hall-b")));
        Assert.Equal((1L, 1L, 1L), (Counted(skipped, "hall-a", "missing"), Counted(skipped, "hall-a", "stale"), Counted(skipped, "hall-b", "no_it_load")));
    }

    [Fact]
    public async Task The_site_pue_is_the_same_with_and_without_room_meters()
    {
        // Pins the site PUE: the rooms' zones share the stage, never its inputs or its series.
        var results = new List<(string Key, PueResult Latest, TimeSpan StaleAfter, string Devices)>();
        foreach (var roomMeters in (bool[])[false, true])
        {
            var registry = new SeriesRegistry();
            var stage = new PueStage(Config(roomMeters), registry, new ListLogger<PueStage>());
            Assert.Equal(roomMeters ? 2 : 0, stage.Rooms.Count);
            Sample S(SeriesDescriptor d, long at, double v) => new(registry.GetOrAdd(d), at, v);
            await stage.ProcessAsync(new[] { S(UpsLine(1), T0, 12_000), S(UpsLine(2), T0, 8_000), S(PduA1, T0, 7), S(PduA2, T0, 5), S(CrahA, T0, 3000), S(LightA, T0, 600), S(Main, T0 + 100, 30_000) }, Ct);
            results.Add((registry[stage.Series].Key, stage.Latest, stage.StaleAfter, string.Join(",", stage.ItDevices)));
        }

        Assert.Equal(results[0], results[1]);
        Assert.Equal((PueOutcome.Ok, 1.5), (results[1].Latest.Outcome, results[1].Latest.Value));
    }

    [Fact]
    public async Task Regression_a_room_ppue_went_quiet_without_a_word_when_its_pacing_meter_stopped_answering()
    {
        // Only a reading of a room's first infrastructure meter computes its pPUE: when that meter itself stopped, the
        // room's series went quiet with no log while its PDUs and its other meter kept reporting.
        var registry = new SeriesRegistry();
        var logger = new ListLogger<PueStage>();
        var stage = new PueStage(Config(), registry, logger);
        var hallA = stage.Rooms[0];
        var hallB = stage.Rooms[1];
        var published = new List<Sample>();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var publisher = stage.PublishAsync(new PublishedSamples.ListSink(published), cts.Token);
        Sample S(SeriesDescriptor d, long at, double v) => new(registry.GetOrAdd(d), at, v);
        Sample[] Others(long at) => [S(PduA1, at, 7), S(PduA2, at, 5), S(LightA, at, 600), S(PduB1, at, 8000), S(CrahB, at + 100, 4)];

        await stage.ProcessAsync((Sample[])[.. Others(T0), S(CrahA, T0 + 200, 3000)], Ct);
        Assert.Equal((PueOutcome.Ok, 1.3), (hallA.Latest.Outcome, Math.Round(hallA.Latest.Value, 9)));
        var before = logger.Lines.Count;

        // crah-a's meter answers no more; everything else goes on every 10 s. Past 60 s hall-a stops, once; hall-b goes on.
        for (var at = T0 + 10_000; at <= T0 + 120_000; at += 10_000)
        {
            await stage.ProcessAsync(Others(at), Ct);
        }

        Assert.Equal(
            ["Partial PUE of room hall-a no longer published: stale: infrastructure meter crah-a's last good reading 2027-01-15T08:00:00.200Z (69 s ago, limit 60 s)"],
            logger.Lines.Skip(before).Select(l => l.Message));
        Assert.Equal(PueOutcome.Stale, hallA.Latest.Outcome);
        Assert.Equal(PueOutcome.Ok, hallB.Latest.Outcome);

        await stage.ProcessAsync((Sample[])[.. Others(T0 + 130_000), S(CrahA, T0 + 130_200, 3000)], Ct);
        Assert.Equal(PueOutcome.Ok, hallA.Latest.Outcome);
        Assert.Equal("Partial PUE of room hall-a published again: 1.30", logger.Lines[^1].Message);

        // hall-a's series has its two real readings and nothing between them; hall-b's 14.
        await PublishedSamples.WaitForAsync(() => PublishedSamples.Count(published) >= 16);
        await Task.Delay(200, Ct);
        await cts.CancelAsync();
        await publisher;
        Assert.Equal([T0 + 200, T0 + 130_200], published.Where(p => p.Series == hallA.Series).Select(p => p.TimestampUnixMs));
        Assert.Equal(14, published.Count(p => p.Series == hallB.Series));
    }
}
