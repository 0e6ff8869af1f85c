using EdgeTwin.Simulator.Faults;
using EdgeTwin.Simulator.Physics;

namespace EdgeTwin.Simulator.Tests.Physics;

public sealed class PowerTests
{
    [Fact]
    public void Both_feeds_together_carry_the_rack_power_and_outlets_add_up_to_phases()
    {
        var site = TestSites.Generated();
        site.Step(TimeSpan.FromMinutes(1));
        foreach (var rack in site.Racks)
        {
            var pdus = site.Pdus.Where(p => p.Rack == rack).ToList();
            Assert.Equal(2, pdus.Count);
            Assert.Equal(rack.PowerKw, pdus.Sum(p => p.PowerKw), 6);
            foreach (var pdu in pdus)
            {
                var outlets = Enumerable.Range(0, pdu.OutletCount).Sum(pdu.OutletCurrentA);
                var phases = Enumerable.Range(0, pdu.PhaseCount).Sum(pdu.PhaseCurrentA);
                Assert.Equal(outlets, phases, 9);
                Assert.Equal(pdu.PowerKw * 1000 / (pdu.Spec.VoltageV * pdu.Spec.PowerFactor), pdu.CurrentA, 6);
            }
        }

        foreach (var ups in site.Upses)
        {
            Assert.Equal(site.Pdus.Where(p => p.Spec.Upstream == ups.Id).Sum(p => p.PowerKw), ups.OutputKw, 6);
            Assert.InRange(ups.LoadPercent, 5, 80);
        }
    }

    [Fact]
    public void Energy_counters_only_grow_and_match_power_over_time()
    {
        var site = new SimulatedSite(TestSites.OneRack());
        var pdu = site.Pdu("pdu-a01-a");
        var start = pdu.EnergyKwh;
        var last = start;
        double integral = 0;
        for (var i = 0; i < 600; i++)
        {
            site.Step(TimeSpan.FromSeconds(1));
            integral += pdu.PowerKw / 3600;
            Assert.True(pdu.EnergyKwh >= last);
            last = pdu.EnergyKwh;
        }

        Assert.Equal(integral, pdu.EnergyKwh - start, 9);
        Assert.InRange(integral, 0.2, 0.5); // ten minutes of 1.5-3 kW
    }

    [Fact]
    public void An_injected_overload_takes_a_PDU_above_its_breaker_rating_and_heats_the_rack()
    {
        var site = new SimulatedSite(TestSites.OneRack());
        var pdu = site.Pdu("pdu-a01-a");
        var rackBefore = site.Rack("A01").PowerKw;
        Assert.Equal(PduLoadState.Normal, pdu.LoadState);

        site.Apply(FaultCommand.Parse("pdu-overload:pdu-a01-a"));
        site.Step(TimeSpan.FromSeconds(5));

        Assert.Equal(PduLoadState.Overload, pdu.LoadState);
        Assert.InRange(pdu.MaxPhaseLoadFraction, 1.0, 1.3);
        Assert.True(site.Rack("A01").PowerKw > rackBefore + 1);

        site.Apply(FaultCommand.Parse("pdu-clear:pdu-a01-a"));
        site.Step(TimeSpan.FromSeconds(5));
        Assert.Equal(PduLoadState.Normal, pdu.LoadState);
    }

    [Fact]
    public void On_a_utility_failure_the_UPS_drains_its_battery_then_the_other_feed_carries_the_rack()
    {
        var site = new SimulatedSite(TestSites.OneRack());
        var ups = site.Ups("ups1");
        var runtimeBefore = ups.RuntimeMinutes;
        site.Apply(FaultCommand.Parse("utility-fail:ups1"));
        site.Step(TimeSpan.FromMinutes(1));

        Assert.True(ups.OnBattery);
        Assert.True(ups.BatteryChargePercent < 100);
        Assert.True(ups.RuntimeMinutes < runtimeBefore);
        Assert.Equal(0, ups.InputVoltageV);

        // 1 kWh at ~3 kW lasts ~20 minutes; after that the A feed is dead and B carries everything.
        site.Step(TimeSpan.FromMinutes(40));
        Assert.False(ups.OutputOn);
        Assert.Equal(0, site.Pdu("pdu-a01-a").PowerKw);
        Assert.Equal(site.Rack("A01").PowerKw, site.Pdu("pdu-a01-b").PowerKw, 6);
        Assert.Equal(4, site.Rack("A01").ServersRunning);
        Assert.Contains(site.Events(), e => e.Source == "ups1" && e.Message.Contains("battery exhausted", StringComparison.Ordinal));

        site.Apply(FaultCommand.Parse("utility-restore:ups1"));
        site.Step(TimeSpan.FromMinutes(10));
        Assert.True(ups.OutputOn);
        Assert.InRange(ups.BatteryChargePercent, 1, 99);
    }
}
