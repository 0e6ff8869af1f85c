using EdgeTwin.Twin.Power;
using Xunit;

namespace EdgeTwin.Twin.Tests.Power;

public sealed class PueTests
{
    private const long Now = 1_800_000_000_000;
    private const long StaleMs = 60_000;

    [Fact]
    public void Facility_over_the_sum_of_the_it_inputs()
    {
        // 30 kW from the utility, two UPS outputs of 9 and 11 kW: 30 / 20 = 1.5.
        var r = Pue.Compute(new PueInput(30, Now), [new PueInput(9, Now - 5_000), new PueInput(11, Now - 1_000)], Now, StaleMs);

        Assert.Equal(PueOutcome.Ok, r.Outcome);
        Assert.Equal(1.5, r.Value, 12);
        Assert.Equal(20, r.ItKw, 12);
        Assert.Equal(30, r.FacilityKw, 12);
    }

    [Fact]
    public void An_it_element_never_read_gives_no_pue_rather_than_a_high_one()
    {
        // Counting the unread UPS as 0 kW would say 30 / 9 = 3.3.
        var r = Pue.Compute(new PueInput(30, Now), [new PueInput(9, Now), default], Now, StaleMs);

        Assert.Equal(PueOutcome.Missing, r.Outcome);
        Assert.True(double.IsNaN(r.Value));
    }

    [Fact]
    public void A_missing_or_non_finite_facility_reading_gives_no_pue()
    {
        Assert.Equal(PueOutcome.Missing, Pue.Compute(default, [new PueInput(9, Now)], Now, StaleMs).Outcome);
        Assert.Equal(PueOutcome.Missing, Pue.Compute(new PueInput(double.NaN, Now), [new PueInput(9, Now)], Now, StaleMs).Outcome);
        Assert.Equal(PueOutcome.Missing, Pue.Compute(new PueInput(30, Now), [new PueInput(-1, Now)], Now, StaleMs).Outcome);
        Assert.Equal(PueOutcome.Missing, Pue.Compute(new PueInput(30, Now), [], Now, StaleMs).Outcome);
    }

    [Fact]
    public void A_stale_input_gives_no_pue()
    {
        var staleIt = Pue.Compute(new PueInput(30, Now), [new PueInput(20, Now - StaleMs - 1)], Now, StaleMs);
        var staleMeter = Pue.Compute(new PueInput(30, Now - StaleMs - 1), [new PueInput(20, Now)], Now, StaleMs);
        var justFresh = Pue.Compute(new PueInput(30, Now), [new PueInput(20, Now - StaleMs)], Now, StaleMs);

        Assert.Equal(PueOutcome.Stale, staleIt.Outcome);
        Assert.Equal(PueOutcome.Stale, staleMeter.Outcome);
        Assert.True(double.IsNaN(staleIt.Value));
        Assert.Equal(PueOutcome.Ok, justFresh.Outcome);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(0.05)]
    public void An_it_power_of_about_zero_is_never_divided(double itKw)
    {
        var r = Pue.Compute(new PueInput(5, Now), [new PueInput(itKw, Now)], Now, StaleMs);

        Assert.Equal(PueOutcome.NoItLoad, r.Outcome);
        Assert.True(double.IsNaN(r.Value));
    }

    [Theory]
    [InlineData(15, 20)]     // below 1: the meter is not upstream of all the IT
    [InlineData(30_000, 20)] // a meter in W taken as kW: 1500
    public void A_ratio_no_data_center_has_is_flagged_implausible(double facilityKw, double itKw)
    {
        var r = Pue.Compute(new PueInput(facilityKw, Now), [new PueInput(itKw, Now)], Now, StaleMs);

        Assert.Equal(PueOutcome.Implausible, r.Outcome);
        Assert.Equal(facilityKw / itKw, r.Value, 12);
    }
}
