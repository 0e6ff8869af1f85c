using EdgeTwin.Simulator.Faults;
using EdgeTwin.Simulator.Physics;

namespace EdgeTwin.Simulator.Tests.Physics;

public sealed class MachineTests
{
    private static SimulatedSite SiteWith(MachineSpec machine) => new(TestSites.OneRack() with { Machines = [machine], WarmUp = TimeSpan.Zero });

    [Fact]
    public void Bearing_wear_grows_monotonically_until_the_machine_fails_at_its_hidden_lifetime()
    {
        var site = SiteWith(new MachineSpec("m1", "line1", HoursToFailure: 10));
        var machine = site.Machine("m1");
        var lastWear = machine.Wear;
        var vibrationByHour = new List<double>();
        var bearingByHour = new List<double>();
        var minutes = 0;
        while (machine.State == MachineState.Running && minutes < 12 * 60)
        {
            site.Step(TimeSpan.FromMinutes(1));
            minutes++;
            Assert.True(machine.Wear >= lastWear, $"wear fell from {lastWear} to {machine.Wear} at minute {minutes}");
            lastWear = machine.Wear;
            if (minutes % 60 == 0)
            {
                vibrationByHour.Add(machine.VibrationRmsMmPerS);
                bearingByHour.Add(machine.BearingTemperatureC);
            }
        }

        Assert.Equal(MachineState.Failed, machine.State);
        Assert.InRange(minutes, 595, 605); // the closed form of the wear law gives exactly 10 h
        Assert.True(vibrationByHour[^1] > vibrationByHour[0] + 3, $"vibration {vibrationByHour[0]:0.00} → {vibrationByHour[^1]:0.00} mm/s");
        Assert.True(bearingByHour[^1] > bearingByHour[0] + 10, $"bearing {bearingByHour[0]:0.0} → {bearingByHour[^1]:0.0} °C");

        // A failed machine stops: no speed, no current, a fault code, and an event saying why.
        site.Step(TimeSpan.FromSeconds(1));
        Assert.Equal(0, machine.SpeedRpm);
        Assert.Equal(0, machine.CurrentA);
        Assert.NotEqual(0, machine.FaultCode);
        Assert.Contains(site.Events(), e => e.Source == "m1" && e.Message.Contains("bearing failed", StringComparison.Ordinal));
    }

    [Fact]
    public void A_fans_speed_follows_the_day_its_load_the_fan_law_and_its_vibration_the_speed()
    {
        var fan = new SimMachine(new MachineSpec("f1", "crah1", RatedKw: 5.5, RatedSpeedRpm: 1450) { MeanHoursToDefect = double.PositiveInfinity, Fan = new FanDuty(0.65, 0.2) }, 3);
        var byTenMinutes = new List<(double Speed, double Vibration)>();
        for (var i = 0; i < 6 * 24; i++)
        {
            fan.Step(TimeSpan.FromMinutes(10));
            var speed = fan.SpeedRpm / 1450;
            Assert.InRange(speed, FanDuty.MinSpeed, 1);
            Assert.Equal(speed * speed * speed, fan.Load, 12);
            byTenMinutes.Add((speed, fan.VibrationRmsMmPerS));
        }

        var slowest = byTenMinutes.MinBy(x => x.Speed);
        var fastest = byTenMinutes.MaxBy(x => x.Speed);
        Assert.True(slowest.Speed < 0.5 && fastest.Speed > 0.8, $"speed {slowest.Speed:0.00}-{fastest.Speed:0.00} over the day");
        Assert.True(fastest.Vibration > slowest.Vibration + 0.4, $"vibration {slowest.Vibration:0.00} at {slowest.Speed:0.00}, {fastest.Vibration:0.00} at {fastest.Speed:0.00}");
        Assert.Equal(0, fan.Wear);
    }

    [Fact]
    public void A_fan_at_half_speed_wears_its_bearing_out_in_about_twice_its_rated_speed_lifetime()
    {
        var fan = new SimMachine(new MachineSpec("f1", "crah1", HoursToFailure: 10) { Fan = new FanDuty(0.5, 0) }, 5);
        var hours = 0.0;
        while (fan.State == MachineState.Running && hours < 40)
        {
            fan.Step(TimeSpan.FromMinutes(6));
            hours += 0.1;
        }

        Assert.Equal(MachineState.Failed, fan.State);
        Assert.InRange(hours, 18, 22);
    }

    [Fact]
    public void Remaining_life_counts_down_with_time_running()
    {
        var site = SiteWith(new MachineSpec("m1", "line1", InitialWear: 0.2, HoursToFailure: 100));
        var machine = site.Machine("m1");
        var before = machine.TrueRemainingHours;
        site.Step(TimeSpan.FromHours(5));
        Assert.Equal(before - 5, machine.TrueRemainingHours, 1);
    }

    [Fact]
    public void A_stopped_machine_does_not_wear_and_a_restarted_failed_one_has_a_new_bearing()
    {
        var site = SiteWith(new MachineSpec("m1", "line1", InitialWear: 0.5));
        var machine = site.Machine("m1");
        site.Apply(FaultCommand.Parse("machine-stop:m1"));
        site.Step(TimeSpan.FromHours(2));
        Assert.Equal(0.5, machine.Wear);
        Assert.Equal(0, machine.SpeedRpm);

        site.Apply(FaultCommand.Parse("machine-wear:m1:1"));
        site.Apply(FaultCommand.Parse("machine-start:m1"));
        site.Step(TimeSpan.FromSeconds(10));
        Assert.Equal(MachineState.Running, machine.State);
        Assert.InRange(machine.Wear, 0, 0.001);
        Assert.Equal(machine.Spec.RatedSpeedRpm, machine.SpeedRpm);
    }

    [Fact]
    public void A_bearing_defect_initiates_at_a_seeded_random_time_and_kurtosis_rises_before_vibration_rms()
    {
        var spec = new MachineSpec("m1", "line1", HoursToFailure: 60) { MeanHoursToDefect = 48, GrowthSpread = 0.3, KnocksPerDay = 1, DailyLoadSwing = 0.1 };
        var onsets = new List<double>();
        for (var seed = 1; seed <= 8; seed++)
        {
            var machine = new SimMachine(spec, seed);
            double? onset = null, failed = null, kurtosisAlarm = null, rmsAlarm = null;
            var healthyRms = new List<double>();
            for (var minute = 1; minute <= 30 * 24 * 60 && failed is null; minute++)
            {
                var step = machine.Step(TimeSpan.FromMinutes(1));
                var hours = minute / 60.0;
                onset ??= step == BearingStep.DefectStarted ? hours : null;
                failed ??= step == BearingStep.Failed ? hours : null;
                if (onset is null)
                {
                    Assert.Equal(0, machine.Wear);
                    Assert.True(double.IsPositiveInfinity(machine.TrueRemainingHours));
                    healthyRms.Add(machine.VibrationRmsMmPerS);
                }
                else
                {
                    kurtosisAlarm ??= machine.VibrationKurtosis > 5 ? hours : null;
                    rmsAlarm ??= machine.VibrationRmsMmPerS > 4.5 ? hours : null;
                }
            }

            Assert.NotNull(onset);
            Assert.NotNull(failed);
            onsets.Add(onset.Value);
            // Growth from onset to failure is 60 h spread log-normally (σ 0.3): well inside 20..200 h.
            Assert.InRange(failed.Value - onset.Value, 20, 200);
            Assert.NotNull(kurtosisAlarm);
            Assert.NotNull(rmsAlarm);
            Assert.True(kurtosisAlarm < rmsAlarm, $"seed {seed}: kurtosis alarm at {kurtosisAlarm:0.0} h, RMS at {rmsAlarm:0.0} h");
            Assert.Equal(MachineState.Failed, machine.State);
        }

        // Onsets differ between seeds and are spread around the mean of 48 h.
        Assert.True(onsets.Distinct().Count() == onsets.Count);
        Assert.InRange(onsets.Average(), 20, 90);

        // The same seed gives the same run.
        var a = new SimMachine(spec, 3);
        var b = new SimMachine(spec, 3);
        a.Step(TimeSpan.FromDays(3));
        b.Step(TimeSpan.FromDays(3));
        Assert.Equal(a.Wear, b.Wear);
        Assert.Equal(a.KurtosisSensor.Reading, b.KurtosisSensor.Reading);
    }

    [Fact]
    public void A_bearing_that_never_develops_a_defect_runs_for_weeks_and_a_repair_draws_a_new_onset()
    {
        var healthy = new SimMachine(new MachineSpec("m1", "line1") { MeanHoursToDefect = double.PositiveInfinity, KnocksPerDay = 2, DailyLoadSwing = 0.1 }, 5);
        Assert.Equal(BearingStep.None, healthy.Step(TimeSpan.FromDays(28)));
        Assert.Equal(MachineState.Running, healthy.State);
        Assert.Equal(0, healthy.Wear);
        Assert.InRange(healthy.KurtosisSensor.Reading, 1.5, 8);

        var site = SiteWith(new MachineSpec("m1", "line1", HoursToFailure: 5) { MeanHoursToDefect = 10 });
        var machine = site.Machine("m1");
        site.Apply(FaultCommand.Parse("machine-wear:m1:1"));
        site.Step(TimeSpan.FromSeconds(2));
        Assert.Equal(MachineState.Failed, machine.State);
        site.Apply(FaultCommand.Parse("machine-start:m1"));
        site.Step(TimeSpan.FromSeconds(2));
        Assert.Equal(0, machine.Wear);
        Assert.False(machine.DefectPresent);
        site.Step(TimeSpan.FromHours(60));
        Assert.Contains(site.Events(), e => e.Source == "m1" && e.Message.Contains("defect initiated", StringComparison.Ordinal));
    }
}
