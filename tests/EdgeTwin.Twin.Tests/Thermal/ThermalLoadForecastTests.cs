using EdgeTwin.Twin.Scenarios;
using EdgeTwin.Twin.Thermal;

namespace EdgeTwin.Twin.Tests.Thermal;

/// <summary>Known answers for the load forecast of issue 8's affected-rack decision: the daily profile, the fading deviation and the uncertainty band.</summary>
public sealed class ThermalLoadForecastTests
{
    private const double Mean = 10;
    private const double Amplitude = 2;

    /// <summary>
    /// 24 h of a rack's load P(t) = 10 + 2·cos(2π(t − 15 h)/24 h) (peak at 15:00) plus AR(1) noise (σ 0.3 kW, τ 300 s):
    /// the fitted profile recovers the mean and the swing within a few per cent, the noise's spread and correlation time
    /// within a third.
    /// </summary>
    [Fact]
    public void Calibration_recovers_the_daily_profile_and_the_load_noise()
    {
        var (zone, frames) = Day(sigma: 0.3, tau: 300, seed: 7);

        var model = ThermalCalibrator.Calibrate(zone, frames);

        Assert.True(model.HasLoadProfile);
        Assert.Equal(Mean, model.RackLoadMeanKw[0], 0.2);
        var swing = Math.Sqrt((model.RackLoadCosKw[0] * model.RackLoadCosKw[0]) + (model.RackLoadSinKw[0] * model.RackLoadSinKw[0]));
        Assert.Equal(Amplitude, swing, 0.2);
        Assert.Equal(Profile(15 * 3600), model.ProfileKw(0, 15 * 3600), 0.2);
        Assert.Equal(0.3, model.LoadNoiseSigmaKw, 0.1);
        Assert.InRange(model.LoadNoiseTauSeconds, 200, 450);
    }

    /// <summary>A window shorter than 20 h cannot tell a daily swing from a trend: no profile, the forecast holds the load.</summary>
    [Fact]
    public void A_short_window_fits_no_profile()
    {
        var (zone, frames) = Day(sigma: 0.3, tau: 300, seed: 7);

        var model = ThermalCalibrator.Calibrate(zone, [.. frames.Take(frames.Count / 2)]);

        Assert.False(model.HasLoadProfile);
        Assert.True(double.IsNaN(model.ProfileKw(0, 0)));
    }

    /// <summary>
    /// A zone cooled only by its envelope (no unit running): the room follows C·dT/dt = P(t) − U·(T − T_o), so over an hour
    /// from 12:00, while the profile still rises (by 2·(cos 30° − cos 45°) = 0.32 kW), the forecast that follows it ends
    /// warmer than the one that holds the present load, by about the rise over U (less the room's lag on the ramp); the
    /// upper band (1 σ of the load noise grown over the hour, plus the room fit's RMSE × U as heat) ends warmer still, by
    /// about that band over U.
    /// </summary>
    [Fact]
    public void Forecast_follows_the_rising_profile_and_the_band_lies_above_it()
    {
        var (zone, frames) = Day(sigma: 0.3, tau: 300, seed: 11);
        var model = ThermalCalibrator.Calibrate(zone, frames, new ThermalSettings { ServerFanPowerPerK = 0, ServerAirflowPerK = 0 });
        model.HeatCapacityKjPerK = 500;
        model.EnvelopeUaKwPerK = 1;
        model.RoomFitRmseK = 0.1;
        var now = frames[^1].Clone();
        now.TimeSeconds = 12 * 3600;
        now.RackPowerKw[0] = Profile(now.TimeSeconds);
        now.UnitRunning[0] = false;
        now.UnitReturnC[0] = 25;

        ZoneForecast Forecast(bool follow, double sigmas)
        {
            var actions = new ForecastActions(model) { Horizon = TimeSpan.FromHours(1), FollowLoadProfile = follow, UncertaintySigmas = sigmas };
            return ThermalForecast.Run(model, now, actions);
        }

        var held = Forecast(follow: false, sigmas: 0);
        var followed = Forecast(follow: true, sigmas: 0);
        var band = Forecast(follow: true, sigmas: 1);

        // With τ = C/U = 500 s the room lags the ramp by ~500 s of it: it ends ~0.86 × rise / U above the held forecast.
        var rise = model.ProfileKw(0, 13 * 3600) - model.ProfileKw(0, 12 * 3600);
        Assert.InRange(rise, 0.25, 0.4);
        Assert.InRange(followed.FinalRoomC - held.FinalRoomC, 0.7 * rise, 1.02 * rise);
        var bandKw = (model.LoadNoiseSigmaKw * Math.Sqrt(1 - Math.Exp(-2 * 3600 / model.LoadNoiseTauSeconds))) + (0.1 * 1);
        Assert.InRange(band.FinalRoomC - followed.FinalRoomC, 0.8 * bandKw, 1.05 * bandKw);
    }

    /// <summary>
    /// The same envelope-only room with U = 1.2 kW/K: under the expected load (≤ 11.8 kW through 13:00) the room settles
    /// below 22 + 11.8/1.2 = 31.8 °C, so the expected forecast never reaches 32 °C; a wide band (20 σ, i.e. ~8 kW more heat)
    /// does. <c>cooling_failure</c> then lists the rack as affected with the band's time, marked <c>upper_band</c>, and
    /// without the band (RiskSigmas 0) does not list it.
    /// </summary>
    [Fact]
    public void Cooling_failure_flags_a_rack_that_only_the_upper_band_takes_to_32C()
    {
        var (zone, frames) = Day(sigma: 0.3, tau: 300, seed: 11);
        var model = ThermalCalibrator.Calibrate(zone, frames, new ThermalSettings { ServerFanPowerPerK = 0, ServerAirflowPerK = 0 });
        model.HeatCapacityKjPerK = 500;
        model.EnvelopeUaKwPerK = 1.2;
        model.RoomFitRmseK = 0.1;
        var now = frames[^1].Clone();
        now.TimeSeconds = 12 * 3600;
        now.RackPowerKw[0] = Profile(now.TimeSeconds);
        now.RackInletC[0] = 25;
        now.UnitRunning[0] = false;
        now.UnitReturnC[0] = 25;

        CoolingFailureResult Run(double sigmas) => CoolingFailureScenario.Run(
            model,
            now,
            new CoolingFailureOptions { FailedUnits = ["crac1"], Horizon = TimeSpan.FromHours(1), RiskSigmas = sigmas, PlanMitigation = false });

        var expectedOnly = Run(0);
        var flagged = Run(20);

        Assert.Empty(expectedOnly.AffectedRacks);
        Assert.Null(Assert.Single(expectedOnly.Racks).TimeTo32Seconds);
        Assert.InRange(expectedOnly.Racks[0].PeakInletC, 29, 32);
        Assert.Equal(["R01"], flagged.AffectedRacks);
        var rack = Assert.Single(flagged.Racks);
        Assert.Equal("upper_band", rack.TimeTo32Basis);
        Assert.InRange(rack.TimeTo32Seconds!.Value, 60, 3600);
        Assert.Equal(expectedOnly.Racks[0].PeakInletC, rack.PeakInletC);
    }

    private static double Profile(double t) => Mean + (Amplitude * Math.Cos(2 * Math.PI * (t - (15 * 3600)) / 86400));

    internal static (ThermalZone Zone, List<ZoneFrame> Frames) Day(double sigma, double tau, int seed)
    {
        var zone = new ThermalZone("room1", 100, [new ThermalRack("R01", "A", 1, 20, 10)], [new ThermalUnit("crac1", 30, ["R01"])]);
        var random = new Random(seed);
        var phi = Math.Exp(-10 / tau);
        var noise = 0.0;
        var frames = new List<ZoneFrame>();
        for (var k = 0; k < 8640; k++)
        {
            // The day starts at 12:00 like the simulator's validation sites.
            var t = (12 * 3600) + (k * 10.0);
            var gaussian = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
            noise = (phi * noise) + (sigma * Math.Sqrt(1 - (phi * phi)) * gaussian);
            var f = new ZoneFrame(t, 1, 1);
            f.RackPowerKw[0] = Profile(t) + noise;
            f.RackInletC[0] = 22;
            f.UnitRunning[0] = true;
            f.UnitFanSpeed[0] = 0.6;
            f.UnitSupplyC[0] = 18;
            f.UnitReturnC[0] = 30;
            frames.Add(f);
        }

        return (zone, frames);
    }
}
