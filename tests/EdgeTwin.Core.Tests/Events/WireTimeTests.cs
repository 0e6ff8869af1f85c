using EdgeTwin.Core.Events;

namespace EdgeTwin.Core.Tests.Events;

public sealed class WireTimeTests
{
    [Fact]
    public void An_instant_is_utc_with_milliseconds_like_the_envelope_whatever_offset_or_ticks_it_had()
    {
        var t = new DateTimeOffset(2026, 12, 1, 19, 45, 47, TimeSpan.FromHours(1)).AddTicks(9_857_194);
        Assert.Equal("2026-12-01T18:45:47.985Z", WireTime.Instant(t));
        Assert.Equal("2026-12-01T18:45:47.985Z", WireTime.Instant(t.ToUnixTimeMilliseconds()));
    }

    [Fact]
    public void A_wall_clock_time_keeps_its_local_meaning_and_gains_the_offset_in_force_then()
    {
        // Central European time without depending on the machine's tzdata: +01:00 in winter, +02:00 in summer.
        var cet = TimeZoneInfo.CreateCustomTimeZone("test-cet", TimeSpan.FromHours(1), "CET", "CET", "CEST",
        [
            TimeZoneInfo.AdjustmentRule.CreateAdjustmentRule(
                DateTime.MinValue.Date, DateTime.MaxValue.Date, TimeSpan.FromHours(1),
                TimeZoneInfo.TransitionTime.CreateFloatingDateRule(new DateTime(1, 1, 1, 2, 0, 0), 3, 5, DayOfWeek.Sunday),
                TimeZoneInfo.TransitionTime.CreateFloatingDateRule(new DateTime(1, 1, 1, 3, 0, 0), 10, 5, DayOfWeek.Sunday)),
        ]);
        Assert.Equal("2026-12-01T06:00:00+01:00", WireTime.WallClock(new DateTime(2026, 12, 1, 6, 0, 0), cet));
        Assert.Equal("2026-07-01T06:00:00+02:00", WireTime.WallClock(new DateTime(2026, 7, 1, 6, 0, 0), cet));
        Assert.Equal(
            new DateTimeOffset(2026, 12, 1, 5, 0, 0, TimeSpan.Zero),
            DateTimeOffset.Parse(WireTime.WallClock(new DateTime(2026, 12, 1, 6, 0, 0), cet), System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// Site engineer, Europe/Berlin: a shift ending at 02:30 the night the clocks go forward ends at 03:30 CEST (the
    /// standard offset's reading of a skipped time). It was shown as 2026-03-29T02:30:00+01:00, right as an instant but a
    /// time no clock at the site showed; a time shown twice keeps its offset, which says which.
    /// </summary>
    [Fact]
    public void Regression_a_wall_clock_time_the_clocks_skip_was_shown_as_no_clock_at_the_site_read()
    {
        var berlin = TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin");
        Assert.Equal("2026-03-29T03:30:00+02:00", WireTime.WallClock(new DateTime(2026, 3, 29, 2, 30, 0), berlin));
        Assert.Equal("2026-03-29T03:30:00+02:00", WireTime.WallClock(new DateTime(2026, 3, 29, 3, 30, 0), berlin));
        Assert.Equal("2026-03-29T01:59:00+01:00", WireTime.WallClock(new DateTime(2026, 3, 29, 1, 59, 0), berlin));
        Assert.Equal("2026-10-25T02:30:00+01:00", WireTime.WallClock(new DateTime(2026, 10, 25, 2, 30, 0), berlin));
    }
}

public sealed class WireNumberTests
{
    /// <summary>Regression: alert attribute "value":"27.200000000000003" ("R" printed the binary noise as data).</summary>
    [Theory]
    [InlineData(27.200000000000003, "27.2")]
    [InlineData(9.650000000000002, "9.65")]
    [InlineData(0.1 + 0.2, "0.3")]
    [InlineData(0.7589166968927578, "0.758916696893")]
    [InlineData(0.773999999999999, "0.774")]
    [InlineData(1.16999999999999, "1.17")]
    [InlineData(4147.9, "4147.9")]
    [InlineData(-3.5, "-3.5")]
    [InlineData(1234567.891, "1234567.891")]
    public void Regression_attribute_numbers_drop_binary_noise_but_keep_real_precision(double value, string expected)
    {
        Assert.Equal(expected, WireNumber.Format(value));
    }

    /// <summary>
    /// What the Outbox README promises a consumer of attribute numbers beyond plain decimals (it said "decimal strings"
    /// only): G12 switches to exponent form below 0.0001 and from 1e12 on, keeps binary noise around zero as such, and
    /// spells non-finite values out. A parser that takes only plain decimals (C# decimal.Parse's default) fails on them.
    /// </summary>
    [Theory]
    [InlineData(0.0000123, "1.23E-05")]
    [InlineData(3.552713678800501e-15, "3.5527136788E-15")]
    [InlineData(1234567890123.0, "1.23456789012E+12")]
    [InlineData(100000000000.0, "100000000000")]
    [InlineData(0.0001, "0.0001")]
    [InlineData(double.NaN, "NaN")]
    [InlineData(double.PositiveInfinity, "Infinity")]
    [InlineData(double.NegativeInfinity, "-Infinity")]
    public void Attribute_numbers_outside_plain_decimal_range_are_written_as_the_readme_says(double value, string expected)
    {
        Assert.Equal(expected, WireNumber.Format(value));
    }
}
