using EdgeTwin.Agent.Twin.Thermal;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Simulator.Devices;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Twin.Scenarios;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.IntegrationTests.Twin;

/// <summary>
/// The live twin's power chain during a mains failure: what the agent's own PDU and UPS readings (series as the shipped
/// profiles publish them) put into the what-ifs the central twins request (<c>feed_failure</c>, <c>add_rack</c>, …).
/// </summary>
public sealed class PowerChainLiveTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Regression_live_what_ifs_ignored_a_pdu_phase_over_its_breaker_and_the_ups_runtime()
    {
        // A 3-phase 16 A rack PDU (apc-rpdu2's phase table) with L1 at 13.5 A, over 80 % of its breaker, an Eaton ePDU's
        // scalar input_current_l1..l3, and the UPS on battery reporting 9 min left at 40 % charge. Before, only the CLI's
        // --history fed phase currents and UPS figures to the power twin: the live answers checked every feed as balanced
        // (the overloaded phase "survived") and had no ups_runtime_min at all.
        var spec = SiteGenerator.Generate(new SiteGenerationOptions { Seed = 7, Racks = 6, CoolingUnits = 2, RacksPerRow = 6, MinRackKw = 8, MaxRackKw = 12, Start = DateTimeOffset.UtcNow });
        var apcPdu = spec.Pdus[0];
        var eatonPdu = spec.Pdus[2];
        Assert.Equal((3, 16.0), (apcPdu.Phases, apcPdu.BreakerA));
        var address = DeviceAddress.Parse("udp:127.0.0.1:161");
        var config = SimSiteConfig.Build(
            spec,
            [
                (new SimDeviceBinding("pdu-apc", "apc-rpdu2", SimEntityKind.Pdu, apcPdu.Id), address),
                (new SimDeviceBinding("pdu-eaton", "eaton-epdu", SimEntityKind.Pdu, eatonPdu.Id), address),
                (new SimDeviceBinding("ups-1", "apc-smart-ups", SimEntityKind.Ups, "ups1"), address),
                (new SimDeviceBinding("ups-2", "ietf-ups-mib", SimEntityKind.Ups, "ups2"), address),
            ],
            TimeSpan.FromSeconds(10));
        var registry = new SeriesRegistry();
        using var stage = CalibratedStage(config, registry, spec);

        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var samples = new List<Sample>();
        void Add(SeriesDescriptor d, double v) => samples.Add(new Sample(registry.GetOrAdd(d), now, v));
        foreach (var (phase, amps) in new[] { (1, 13.5), (2, 5.0), (3, 4.5) })
        {
            Add(new SeriesDescriptor("pdu-apc", "phase_current", "A", MetricKind.Gauge, "pdu.phase_current", [new("phase", phase.ToString(System.Globalization.CultureInfo.InvariantCulture))]), amps);
            Add(new SeriesDescriptor("pdu-apc", "bank_current", "A", MetricKind.Gauge, "pdu.breaker_current", [new("bank", phase.ToString(System.Globalization.CultureInfo.InvariantCulture))]), 99); // not a phase
            Add(new SeriesDescriptor("pdu-eaton", "input_current_l" + phase, "A", MetricKind.Gauge, "pdu.phase_current"), 6 + phase);
        }

        Add(new SeriesDescriptor("ups-1", "runtime_remaining", "min", MetricKind.Gauge, "ups.runtime_remaining"), 9);
        Add(new SeriesDescriptor("ups-1", "battery_charge", "%", MetricKind.Gauge, "ups.battery_charge"), 40);
        Add(new SeriesDescriptor("ups-2", "runtime_remaining", "s", MetricKind.Gauge, "ups.runtime_remaining"), 1200); // a vendor's seconds
        await stage.ProcessAsync(samples.ToArray(), Ct);

        var twin = stage.CurrentTwin(out var notReady);
        Assert.True(twin is not null, notReady);
        var assessment = twin.Power.Assess(twin.Readings);
        var apc = assessment.Elements.Single(e => e.Id == apcPdu.Id);
        Assert.Equal(13.5, apc.MaxPhaseCurrentA);
        Assert.Equal(1, apc.LimitingPhase);
        Assert.False(apc.SurvivesSingleFailure); // L1 above 80 % of 16 A
        Assert.Equal(Math.Round(0.8 * 16 * 230 * 3 * 0.95 / 1000 * 23 / (3 * 13.5), 3), apc.UsableKw, 3);
        Assert.Equal(9, assessment.Elements.Single(e => e.Id == eatonPdu.Id).MaxPhaseCurrentA);
        Assert.Equal(9, assessment.Elements.Single(e => e.Id == "ups1").UpsRuntimeMinutes);
        Assert.Equal(20, assessment.Elements.Single(e => e.Id == "ups2").UpsRuntimeMinutes);

        // The what-if the centre asks: losing the other feed of that rack. Its whole load moves onto the PDU whose L1 is
        // already over: not ok, and ups1's runtime at the new load is shorter than 9 min.
        var failure = CapacityScenarios.FeedFailure(twin, spec.Pdus[1].Id);
        Assert.Equal("not_ok", failure.Verdict);
        Assert.Contains(failure.PowerHeadroom.Elements, e => e.Id == apcPdu.Id && !e.SurvivesSingleFailure);
    }

    [Fact]
    public async Task Regression_sentry4_line_currents_never_reached_the_twins_phase_check()
    {
        // servertech-sentry4 tags its line rows with Sentry4-MIB's unit.cord.line index (1.1.1 .. 1.1.4 = L1, L2, L3, N).
        // The twin took only a plain number as the phase: a Sentry PDU's L1 over its breaker left the feed "balanced".
        // The first unit's first cord is the feed the site names; N, a link unit (2.1.x) and a second cord (1.2.x) are not.
        var spec = SiteGenerator.Generate(new SiteGenerationOptions { Seed = 7, Racks = 6, CoolingUnits = 2, RacksPerRow = 6, MinRackKw = 8, MaxRackKw = 12, Start = DateTimeOffset.UtcNow });
        var pdu = spec.Pdus[0];
        Assert.Equal((3, 16.0), (pdu.Phases, pdu.BreakerA));
        var config = SimSiteConfig.Build(
            spec,
            [(new SimDeviceBinding("pdu-st4", "servertech-sentry4", SimEntityKind.Pdu, pdu.Id), DeviceAddress.Parse("udp:127.0.0.1:161"))],
            TimeSpan.FromSeconds(10));
        var registry = new SeriesRegistry();
        using var stage = CalibratedStage(config, registry, spec);

        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var samples = new List<Sample>();
        void Line(string index, string label, double amps) => samples.Add(new Sample(registry.GetOrAdd(new SeriesDescriptor("pdu-st4", "line_current", "A", MetricKind.Gauge, "pdu.phase_current", [new("line", index), new("line_label", label)])), now, amps));
        Line("1.1.1", "L1", 13.5);
        Line("1.1.2", "L2", 5);
        Line("1.1.3", "L3", 4.5);
        Line("1.1.4", "N", 15);     // the neutral: no phase
        Line("2.1.1", "L1", 15.5);  // the link unit's cord: another feed
        Line("1.2.2", "L2", 15.5);  // a second cord: another feed
        await stage.ProcessAsync(samples.ToArray(), Ct);

        var twin = stage.CurrentTwin(out var notReady);
        Assert.True(twin is not null, notReady);
        var element = twin.Power.Assess(twin.Readings).Elements.Single(e => e.Id == pdu.Id);
        Assert.Equal(13.5, element.MaxPhaseCurrentA);
        Assert.Equal(1, element.LimitingPhase);
        Assert.False(element.SurvivesSingleFailure); // L1 above 80 % of 16 A
    }

    private sealed class NoEvents : IEventSink
    {
        public ValueTask PublishAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken) => ValueTask.CompletedTask;
    }

    // The demo's warm-started thermal twin, calibrated on it: the power chain's checks run on the live stage.
    private static ThermalTwinStage CalibratedStage(SiteConfig config, SeriesRegistry registry, SiteSpec spec)
    {
        var stage = new ThermalTwinStage(config, registry, new NoEvents(), NullLogger<ThermalTwinStage>.Instance, ThermalTwinOptions.DemoWarmStart(spec));
        for (var z = 0; z < stage.Twin.Zones.Count; z++)
        {
            stage.Twin.Recalibrate(z);
        }

        return stage;
    }
}
