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
/// <see cref="PueStage"/> on fixed readings, series as the shipped profiles publish them: which IT power it takes
/// (category 1 at the UPS outputs, else category 2 at the PDUs), and no PUE from a missing or stale input.
/// </summary>
public sealed class PueStageTests
{
    private const long T0 = 1_800_000_000_000;
    private static readonly DeviceAddress Address = DeviceAddress.Parse("udp:127.0.0.1:161");
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static SiteConfig Config(string ups2Profile, bool monitoredPdus = true)
    {
        var topology = new SiteTopology("dc1", "gw1", [], [], new PowerChainConfig(
            [new UpsConfig("ups1", "ups-1", 40), new UpsConfig("ups2", "ups-2", 40)],
            [new PduConfig("pdu-a", monitoredPdus ? "pdu-a" : null, "ups1", 32, 1, 230), new PduConfig("pdu-b", "pdu-b", "ups2", 32, 1, 230)],
            "main"), []);
        DeviceConfig Device(string id, string profile) => new(id, profile, Address) { Interval = TimeSpan.FromSeconds(10) };
        return new SiteConfig(
            topology,
            [Device("ups-1", "ietf-ups-mib"), Device("ups-2", ups2Profile), Device("pdu-a", "apc-rpdu2"), Device("pdu-b", "apc-rpdu2"), new DeviceConfig("main", "eastron-sdm630", DeviceAddress.Parse("tcp:127.0.0.1:502"))],
            new Dictionary<string, CredentialsConfig>(StringComparer.Ordinal),
            OutboxSettings.Default)
        { Profiles = SimPaths.LoadProfiles() };
    }

    private static SeriesDescriptor UpsLine(string device, int line) =>
        new(device, "output_power", "W", MetricKind.Gauge, "ups.output_power", [new("line", line.ToString(System.Globalization.CultureInfo.InvariantCulture))]);

    private static SeriesDescriptor Meter => new("main", "total_power", "W", MetricKind.Gauge, "meter.power_total");

    private static SeriesDescriptor Pdu(string device) => new(device, "total_power", "kW", MetricKind.Gauge, "pdu.power");

    [Fact]
    public async Task Every_ups_reading_its_output_gives_category_1_summed_over_its_output_lines()
    {
        var registry = new SeriesRegistry();
        var logger = new ListLogger<PueStage>();
        var stage = new PueStage(Config("ietf-ups-mib"), registry, logger);
        Assert.Equal(PueBasis.UpsOutput, stage.Basis);
        Assert.Equal("dc1/pue{category=1,it_at=ups_output}", registry[stage.Series].Key);
        Assert.Equal(TimeSpan.FromSeconds(60), stage.StaleAfter); // 3 × 10 s is below the 60 s floor

        var published = new List<Sample>();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var publisher = stage.PublishAsync(new PublishedSamples.ListSink(published), cts.Token);
        Sample S(SeriesDescriptor d, long at, double v, SampleQuality q = SampleQuality.Good) => new(registry.GetOrAdd(d), at, v, q);

        // ups-1 has three output lines (3 + 3 + 4 kW), ups-2 one (6 kW): IT 16 kW. The PDUs' 15 kW are not used.
        await stage.ProcessAsync(new[] { S(UpsLine("ups-1", 1), T0, 3000), S(UpsLine("ups-1", 2), T0, 3000), S(UpsLine("ups-1", 3), T0, 4000), S(Pdu("pdu-a"), T0, 7), S(Pdu("pdu-b"), T0, 8) }, Ct);
        await stage.ProcessAsync(new[] { S(Meter, T0 + 1000, 24_000) }, Ct);
        Assert.Equal(PueOutcome.Missing, stage.Latest.Outcome); // ups-2 not read yet: 24 / 10 would say 2.4

        await stage.ProcessAsync(new[] { S(UpsLine("ups-2", 1), T0 + 2000, 6000), S(Meter, T0 + 3000, 24_000) }, Ct);
        Assert.Equal(PueOutcome.Ok, stage.Latest.Outcome);
        Assert.Equal(1.5, stage.Latest.Value, 9);

        // ups-1's line 3 answers no more (held value, quality stale): once its last good reading is older than 60 s, no PUE.
        await stage.ProcessAsync(new[] { S(UpsLine("ups-1", 1), T0 + 70_000, 3000), S(UpsLine("ups-1", 2), T0 + 70_000, 3000), S(UpsLine("ups-1", 3), T0 + 70_000, 4000, SampleQuality.Stale), S(UpsLine("ups-2", 1), T0 + 70_000, 6000), S(Meter, T0 + 70_500, 24_000) }, Ct);
        Assert.Equal(PueOutcome.Stale, stage.Latest.Outcome);
        Assert.Equal("PUE no longer published: ups-1 last read 70 s ago (limit 60 s)", Assert.Single(logger.At(LogLevel.Warning)));

        await PublishedSamples.WaitForAsync(() => published.Count >= 1);
        await Task.Delay(200, Ct);
        await cts.CancelAsync();
        await publisher;
        var only = Assert.Single(published);
        Assert.Equal((stage.Series, T0 + 3000, 1.5, SampleQuality.Good), (only.Series, only.TimestampUnixMs, only.Value, only.Quality));
    }

    [Fact]
    public async Task A_ups_without_output_power_falls_back_to_the_pdus_category_2_and_an_idle_chain_never_divides()
    {
        var registry = new SeriesRegistry();
        var stage = new PueStage(Config("apc-smart-ups"), registry, new ListLogger<PueStage>());
        Assert.Equal(PueBasis.PduOutput, stage.Basis);
        Assert.Equal("dc1/pue{category=2,it_at=pdu_output}", registry[stage.Series].Key);
        Sample S(SeriesDescriptor d, long at, double v) => new(registry.GetOrAdd(d), at, v);

        // A per-phase pdu.power row (tagged) is not the PDU's total and is not added to it.
        var phaseRow = new SeriesDescriptor("pdu-a", "phase_power", "kW", MetricKind.Gauge, "pdu.power", [new("phase", "1")]);
        await stage.ProcessAsync(new[] { S(Pdu("pdu-a"), T0, 7), S(phaseRow, T0, 7), S(Pdu("pdu-b"), T0, 8), S(Meter, T0, 21_000) }, Ct);
        Assert.Equal(PueOutcome.Ok, stage.Latest.Outcome);
        Assert.Equal(1.4, stage.Latest.Value, 9);

        await stage.ProcessAsync(new[] { S(Pdu("pdu-a"), T0 + 10_000, 0), S(Pdu("pdu-b"), T0 + 10_000, 0.02), S(Meter, T0 + 10_000, 3000) }, Ct);
        Assert.Equal(PueOutcome.NoItLoad, stage.Latest.Outcome);
        Assert.True(double.IsNaN(stage.Latest.Value));
    }

    [Fact]
    public void Neither_every_ups_nor_every_pdu_read_gives_no_series_and_one_warning()
    {
        var registry = new SeriesRegistry();
        var logger = new ListLogger<PueStage>();
        var stage = new PueStage(Config("apc-smart-ups", monitoredPdus: false), registry, logger);

        Assert.Equal(PueBasis.None, stage.Basis);
        Assert.True(stage.Series.IsNone);
        Assert.Equal(0, registry.Count);
        var warning = Assert.Single(logger.At(LogLevel.Warning));
        Assert.Contains("PUE not computed although site.power.facility_meter is 'main'", warning, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_a_ups_on_battery_was_reported_as_a_facility_meter_on_the_wrong_feed()
    {
        // The simulator's utility failure (ups1 on battery) took the facility meter's reading below the IT power: PUE 0.85,
        // and the warning asked only whether main was the site's utility meter. Below 1 it names the battery first.
        var registry = new SeriesRegistry();
        var logger = new ListLogger<PueStage>();
        var stage = new PueStage(Config("ietf-ups-mib"), registry, logger);
        Sample S(SeriesDescriptor d, long at, double v) => new(registry.GetOrAdd(d), at, v);
        await stage.ProcessAsync(new[] { S(UpsLine("ups-1", 1), T0, 4000), S(UpsLine("ups-2", 1), T0, 6000), S(Meter, T0 + 1000, 8_500) }, Ct);
        Assert.Equal((PueOutcome.Implausible, 0.85), (stage.Latest.Outcome, Math.Round(stage.Latest.Value, 9)));
        Assert.Equal(
            "PUE 0.85 is implausible (facility 8.5 kW, IT 10.0 kW): the facility meter main reads less than the IT chain delivers: is a UPS on battery (the meter does not see the load it carries), or is main not the site's utility meter, or a unit wrong?; published with quality out_of_range",
            Assert.Single(logger.At(LogLevel.Warning)));

        // Above 10 the meter or a unit is the suspect, as before.
        await stage.ProcessAsync(new[] { S(Meter, T0 + 2000, 15_000) }, Ct);
        await stage.ProcessAsync(new[] { S(Meter, T0 + 3000, 120_000) }, Ct);
        Assert.Equal(
            "PUE 12.00 is implausible (facility 120.0 kW, IT 10.0 kW): is main the site's utility meter, and every unit right?; published with quality out_of_range",
            logger.At(LogLevel.Warning).Last());
    }

    [Fact]
    public async Task Regression_the_pue_went_quiet_without_a_word_when_the_facility_meter_stopped_answering()
    {
        // Only a facility meter reading computes the PUE: when the meter itself stopped (dead, unplugged, held values of
        // quality stale, then nothing), the series went quiet with no log and no count while the UPSes kept reporting.
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var meters = services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        using var skipped = new MetricCollector<long>(meters, "EdgeTwin.Twin.Pue", "edgetwin.twin.pue.skipped");
        var registry = new SeriesRegistry();
        var logger = new ListLogger<PueStage>();
        var stage = new PueStage(Config("ietf-ups-mib"), registry, logger, meters);
        var published = new List<Sample>();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var publisher = stage.PublishAsync(new PublishedSamples.ListSink(published), cts.Token);
        Sample S(SeriesDescriptor d, long at, double v, SampleQuality q = SampleQuality.Good) => new(registry.GetOrAdd(d), at, v, q);
        Sample[] Ups(long at) => [S(UpsLine("ups-1", 1), at, 4000), S(UpsLine("ups-2", 1), at, 6000)];

        await stage.ProcessAsync(Ups(T0), Ct);
        await stage.ProcessAsync(new[] { S(Meter, T0 + 1000, 15_000) }, Ct);
        Assert.Equal((PueOutcome.Ok, 1.5), (stage.Latest.Outcome, stage.Latest.Value));

        // The meter answers no more: one held value, then nothing; the UPSes go on every 10 s. At the limit (60 s) not yet.
        await stage.ProcessAsync((Sample[])[S(Meter, T0 + 11_000, 15_000, SampleQuality.Stale), .. Ups(T0 + 11_000)], Ct);
        for (var at = T0 + 21_000; at <= T0 + 61_000; at += 10_000)
        {
            await stage.ProcessAsync(Ups(at), Ct);
        }

        Assert.Empty(logger.At(LogLevel.Warning));
        Assert.Equal(PueOutcome.Ok, stage.Latest.Outcome);

        // Past it: stopped, said once with why, counted once; the checks that follow say nothing more.
        await stage.ProcessAsync(Ups(T0 + 62_000), Ct);
        for (var at = T0 + 72_000; at <= T0 + 120_000; at += 10_000)
        {
            await stage.ProcessAsync(Ups(at), Ct);
        }

        Assert.Equal(
            "PUE no longer published: stale: facility meter main's last good reading 2027-01-15T08:00:01.000Z (61 s ago, limit 60 s)",
            Assert.Single(logger.At(LogLevel.Warning)));
        Assert.Equal(PueOutcome.Stale, stage.Latest.Outcome);
        var counted = Assert.Single(skipped.GetMeasurementSnapshot());
        Assert.Equal((1L, "stale"), (counted.Value, counted.Tags["reason"]));

        // The meter is back: published again, said once.
        await stage.ProcessAsync((Sample[])[.. Ups(T0 + 125_000), S(Meter, T0 + 125_500, 18_000)], Ct);
        Assert.Equal((PueOutcome.Ok, 1.8), (stage.Latest.Outcome, Math.Round(stage.Latest.Value, 9)));
        Assert.Equal(["PUE published again: 1.80"], logger.At(LogLevel.Information).Where(l => l.StartsWith("PUE published again", StringComparison.Ordinal)));
        Assert.Single(logger.At(LogLevel.Warning));

        // No made-up value while the meter was silent: only the two real readings' PUE.
        await PublishedSamples.WaitForAsync(() => PublishedSamples.Count(published) >= 2);
        await Task.Delay(200, Ct);
        await cts.CancelAsync();
        await publisher;
        Assert.Equal(
            [(T0 + 1000, 1.5), (T0 + 125_500, 1.8)],
            published.Select(p => (p.TimestampUnixMs, Math.Round(p.Value, 9))));
    }
}
