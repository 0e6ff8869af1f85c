using EdgeTwin.Tests.Shared;
using System.Globalization;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Core.Tests.Profiles;

public sealed class ProfileMetricScaleTests
{
    private static ProfileMetric Metric(double scale, double offset = 0) => new("m", "1", MetricKind.Gauge, "x.m") { Scale = scale, Offset = offset };

    private static string R(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>
    /// Regression: a scaled integer register (raw × 0.1) went on the wire as "min":7.1000000000000005, power factor
    /// raw 95 × 0.01 as 0.9500000000000001. Dividing by the integer reciprocal gives the double nearest the decimal.
    /// </summary>
    [Theory]
    [InlineData(0.1, 71, "7.1")]
    [InlineData(0.1, 272, "27.2")]
    [InlineData(0.1, 76, "7.6")]
    [InlineData(0.01, 95, "0.95")]
    [InlineData(0.1, 7, "0.7")]
    [InlineData(0.001, 230512, "230.512")]
    [InlineData(0.05, 3, "0.15")]
    [InlineData(-0.1, 71, "-7.1")]
    public void Regression_a_decimal_scale_gives_the_decimal_value_without_binary_noise(double scale, double raw, string expected)
    {
        Assert.Equal(expected, R(Metric(scale).Convert(raw)));
    }

    [Fact]
    public void Every_integer_raw_value_scaled_by_a_power_of_ten_prints_as_its_decimal()
    {
        foreach (var (scale, digits) in new[] { (0.1, 1), (0.01, 2), (0.001, 3), (0.0001, 4) })
        {
            var metric = Metric(scale);
            for (var raw = -20_000; raw <= 70_000; raw++)
            {
                var expected = (raw / (decimal)Math.Pow(10, digits)).ToString(CultureInfo.InvariantCulture);
                expected = expected.Contains('.', StringComparison.Ordinal) ? expected.TrimEnd('0').TrimEnd('.') : expected;
                Assert.Equal(expected, R(metric.Convert(raw)));
            }
        }
    }

    [Fact]
    public void Other_scales_and_the_offset_keep_raw_times_scale_plus_offset()
    {
        Assert.Equal(0.0, ProfileMetric.ExactDivisor(0.3)); // 1/0.3 is no integer: multiplied as before
        Assert.Equal(0.3 * 7, Metric(0.3).Convert(7));
        Assert.Equal(3600 * 2.5, Metric(3600).Convert(2.5));
        Assert.Equal(25.5, Metric(0.1, -40).Convert(655));
        Assert.Equal(7.1, (Metric(0.1) with { Name = "copy" }).Convert(71)); // a copy keeps the divisor
        Assert.Equal(1.5, (Metric(0.1) with { Scale = 0.5 }).Convert(3)); // with recomputes the divisor
        Assert.Equal(7.1, Metric(1).Convert(7.1));
    }

    [Fact]
    public void Converting_allocates_nothing()
    {
        var metric = Metric(0.1, 2);
        // A CI run counted 5,080 bytes in one loop, the JIT's own on this thread while it replaced the loop's first-tier
        // code mid-loop (on-stack replacement), not the conversion's.
        var sum = 0.0;
        Allocations.AssertSomeRoundAllocatesNothing(() => sum += SumOfConversions(metric), "10,000 conversions");
        Assert.True(sum > 0);
    }

    private static double SumOfConversions(ProfileMetric metric)
    {
        double sum = 0;
        for (var i = 0; i < 10_000; i++)
        {
            sum += metric.Convert(i);
        }

        return sum;
    }

    /// <summary>
    /// Regression (profile audit F11): a float32 register holding +Inf passed as good in poll (no max given) while the
    /// pipeline's summaries counted it bad; NaN was already out of range. Non-finite is out of range whatever the limits.
    /// </summary>
    [Theory]
    [InlineData(double.PositiveInfinity, true)]
    [InlineData(double.NegativeInfinity, true)]
    [InlineData(double.NaN, true)]
    [InlineData(1e300, false)]
    [InlineData(-5.5, false)]
    public void Regression_poll_called_an_infinite_reading_good(double value, bool outOfRange)
    {
        Assert.Equal(outOfRange, Metric(1).IsOutOfRange(value));
        Assert.True((Metric(1) with { Min = 0, Max = 100 }).IsOutOfRange(double.PositiveInfinity));
    }
}
