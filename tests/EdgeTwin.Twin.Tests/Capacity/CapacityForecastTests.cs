using EdgeTwin.Twin.Capacity;
using EdgeTwin.Twin.Power;
using EdgeTwin.Twin.Tests.Power;
using EdgeTwin.Twin.Thermal;

namespace EdgeTwin.Twin.Tests.Capacity;

/// <summary>Days-to-exhaustion on simulated load histories whose trend, seasonality and answer are known.</summary>
public sealed class CapacityForecastTests
{
    private const double Day = 86400;

    // Seasonality: a daily cycle (10 kW) and a weekly one (weekdays above the weekend), both mean zero.
    private static double Seasonal(double days) => (10 * Math.Sin(2 * Math.PI * days)) + (8 * Math.Sin(2 * Math.PI * days / 7)) + (3 * Math.Cos(4 * Math.PI * days / 7));

    private static List<(double, double)> History(double weeks, double start, double slopePerDay, double noise, double rho, int seed, double stepHours = 1)
    {
        var rng = new Random(seed);
        var list = new List<(double, double)>();
        var e = 0.0;
        var t0 = 1_760_000_000.0;
        for (var h = 0.0; h < weeks * 7 * 24; h += stepHours)
        {
            var days = h / 24;
            // AR(1) noise: load residuals are correlated from hour to hour.
            e = (rho * e) + (noise * Math.Sqrt(1 - (rho * rho)) * Gaussian(rng));
            list.Add((t0 + (days * Day), start + (slopePerDay * days) + Seasonal(days) + e));
        }

        return list;
    }

    private static double Gaussian(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    private static double TruePeak()
    {
        var peak = double.NegativeInfinity;
        for (var k = 0; k < 7 * 1440; k++)
        {
            peak = Math.Max(peak, Seasonal(k / 1440.0));
        }

        return peak;
    }

    [Fact]
    public void A_growing_load_with_daily_and_weekly_cycles_gives_the_known_days_within_its_interval()
    {
        var history = History(weeks: 8, start: 100, slopePerDay: 0.5, noise: 2, rho: 0.5, seed: 7);
        var result = CapacityForecast.Forecast("power", history, limitKw: 200);

        // Now (8 weeks in) the trend stands at 100 + 0.5·56 = 128 kW; the seasonal peak comes on top.
        var lastDay = (history[^1].Item1 - history[0].Item1) / Day;
        var level = 100 + (0.5 * lastDay);
        var expected = (200 - level - TruePeak()) / 0.5;
        Assert.InRange(result.TrendKwPerDay, 0.45, 0.55);
        Assert.InRange(result.LevelKw, level - 1.5, level + 1.5);
        Assert.InRange(result.SeasonalPeakKw, TruePeak() - 1.5, TruePeak() + 1.5);
        Assert.NotNull(result.DaysToExhaustion);
        Assert.InRange(result.DaysToExhaustion!.Value, expected * 0.9, expected * 1.1);
        Assert.True(result.DaysLower < expected && expected < result.DaysUpper, $"{expected:0.0} outside [{result.DaysLower}, {result.DaysUpper}]");
    }

    [Fact]
    public void Seasonality_alone_is_not_a_trend()
    {
        // Three and a half weeks starting on a weekday peak: a straight line through it would slope down, and over a
        // window ending on a peak, up. With the cycles removed the trend is about zero and no exhaustion is certain.
        var history = History(weeks: 3.5, start: 150, slopePerDay: 0, noise: 1, rho: 0.3, seed: 3);
        var result = CapacityForecast.Forecast("cooling", history, limitKw: 200);
        Assert.InRange(result.TrendKwPerDay, -0.1, 0.1);
        Assert.True(result.TrendKwPerDayLower < 0 && result.TrendKwPerDayUpper > 0);
        Assert.Null(result.DaysUpper);
    }

    [Fact]
    public void The_90_percent_interval_of_the_trend_covers_the_true_trend_in_about_90_percent_of_histories()
    {
        var covered = 0;
        const int runs = 60;
        for (var seed = 1; seed <= runs; seed++)
        {
            var r = CapacityForecast.Forecast("power", History(weeks: 4, start: 80, slopePerDay: 0.2, noise: 3, rho: 0.7, seed: seed), limitKw: 150);
            if (r.TrendKwPerDayLower <= 0.2 && 0.2 <= r.TrendKwPerDayUpper)
            {
                covered++;
            }
        }

        // Nominal 90 %; AR(1)-corrected, so well above what an uncorrected interval would give (about 50 % at ρ = 0.7).
        Assert.InRange(covered, (int)(0.8 * runs), runs);
    }

    [Fact]
    public void A_load_whose_peak_is_already_above_the_limit_has_zero_days()
    {
        var result = CapacityForecast.Forecast("power", History(weeks: 3, start: 190, slopePerDay: 0.1, noise: 1, rho: 0, seed: 5), limitKw: 200);
        Assert.Equal(0, result.DaysToExhaustion);
    }

    [Fact]
    public void Too_little_history_is_an_error_naming_the_resource()
    {
        var e = Assert.Throws<ArgumentException>(() => CapacityForecast.Forecast("cooling", [(0, 1), (1, 2)], 10));
        Assert.Contains("cooling", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Regression_zone_power_limit_hid_a_feed_that_is_already_over()
    {
        // R01 9 kW and R02 1 kW, each on two 3-phase 16 A feeds (8.3904 kW usable) from two 20 kW UPSes (16 kW usable).
        // The zone limit was the sum of the racks' smallest feeds, 2 × 8.3904 = 16.78 kW: 6.8 kW of room, not exhausted.
        // But when pdu-r01-a fails pdu-r01-b carries 9 kW: the racks growing in proportion fit only 8.3904 / 9 of today,
        // the limit is 10 × 8.3904 / 9 = 9.323 kW and it is reached now.
        var site = PowerModelTests.Site();
        var zone = ThermalZone.FromTopology(site)[0];
        var frames = new List<ZoneFrame>();
        for (var k = 0; k < 20; k++)
        {
            var f = new ZoneFrame(k * 600, 2, 1);
            f.RackPowerKw[0] = 9 - (0.01 * (19 - k));
            f.RackPowerKw[1] = 1;
            frames.Add(f);
        }

        var now = new PowerReadings();
        now.RackKw["R01"] = 9;
        now.RackKw["R02"] = 1;
        var before = CapacityForecast.ForSite(site, [zone], [frames]);
        Assert.Equal(2 * 8.3904, before[0].Power.LimitKw, 2);

        var power = CapacityForecast.ForSite(site, [zone], [frames], now: now)[0].Power;
        Assert.Equal(10 * 8.3904 / 9, power.LimitKw, 2);
        Assert.Equal("pdu-r01-b (8.39 kW usable) when pdu-r01-a fails", power.LimitedBy);
        Assert.Equal(0, power.DaysToExhaustion);

        // Light loads: the UPS pair binds (both racks move to one UPS): 16 / 6 × 6 = 16 kW.
        now.RackKw["R01"] = 3;
        now.RackKw["R02"] = 3;
        foreach (var f in frames)
        {
            f.RackPowerKw[0] = 3;
            f.RackPowerKw[1] = 3;
        }

        frames[^1].RackPowerKw[0] = 3;
        var light = CapacityForecast.ForSite(site, [zone], [frames], now: now)[0].Power;
        Assert.Equal(16, light.LimitKw, 2);
        Assert.StartsWith("ups", light.LimitedBy, StringComparison.Ordinal);
    }

    [Fact]
    public void Regression_minutes_of_telemetry_gave_a_trend_of_thousands_of_kw_per_day()
    {
        // The live agent's capacity request 3.5 min after its start (21 frames of 10 s, a room at 29 kW with the PDUs'
        // 0.01 kW steps and its daily rise) answered "trend +3544 kW/day, 0 days to exhaustion". Under an hour of
        // history there is no trend to give: the answer says how much history there is and how much it needs.
        var rng = new Random(3);
        var minutes = Enumerable.Range(0, 21).Select(k => (k * 10.0, 29 + (0.002 * k) + (0.05 * Gaussian(rng)))).ToList();
        var e = Assert.Throws<ArgumentException>(() => CapacityForecast.Forecast("power", minutes, 30));
        Assert.StartsWith("capacity forecast of power: the history spans 3.3 min; a trend needs at least 60 min of it (2 days to take the daily cycle out)", e.Message, StringComparison.Ordinal);

        var hour = Enumerable.Range(0, 361).Select(k => (k * 10.0, 29 + (0.05 * Gaussian(rng)))).ToList();
        Assert.Equal("power", CapacityForecast.Forecast("power", hour, 30).Resource);
    }

    [Fact]
    public void Regression_a_single_unit_rooms_cooling_limit_was_labelled_n_plus_1()
    {
        // One 40 kW unit: the limit is the unit itself (N); it read "the zone's cooling units with the largest out (N+1)",
        // while add_rack on the same room says N+1 is 0 kW. Two units: the one taken out is named.
        var site = PowerModelTests.Site();
        var zone = ThermalZone.FromTopology(site)[0];
        var frames = Enumerable.Range(0, 20).Select(k =>
        {
            var f = new ZoneFrame(k * 600, 2, 1);
            f.RackPowerKw[0] = 4;
            f.RackPowerKw[1] = 4 + (0.01 * k);
            return f;
        }).ToList();
        var one = CapacityForecast.ForSite(site, [zone], [frames])[0].Cooling;
        Assert.Equal(40, one.LimitKw);
        Assert.Equal("crac1 (40.0 kW), the zone's only unit: no N+1, the limit is the unit itself (N)", one.LimitedBy);

        var two = site with { CoolingUnits = [.. site.CoolingUnits, new Core.Config.CoolingUnitConfig("crac2", "room1", 30, ["R01", "R02"], null)] };
        var pair = CapacityForecast.ForSite(two, [ThermalZone.FromTopology(two)[0]], [frames])[0].Cooling;
        Assert.Equal(30, pair.LimitKw);
        Assert.Equal("the zone's 2 units with the largest, crac1 (40.0 kW), out (N+1)", pair.LimitedBy);
    }
}
