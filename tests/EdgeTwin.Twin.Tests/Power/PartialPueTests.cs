using EdgeTwin.Twin.Power;
using Xunit;

namespace EdgeTwin.Twin.Tests.Power;

/// <summary><see cref="Pue.ComputePartial"/>: a room's (infrastructure + IT) / IT, by the site PUE's no-wrong-number rules.</summary>
public sealed class PartialPueTests
{
    private const long Now = 1_800_000_000_000;
    private const long StaleMs = 60_000;

    [Fact]
    public void Infrastructure_meters_plus_it_over_it()
    {
        // A hall's two CRAH feeds read 2.5 and 1.5 kW, its lighting 0.4 kW; its PDUs 8 and 12 kW:
        // (4.4 + 20) / 20 = 1.22.
        var r = Pue.ComputePartial(
            [new PueInput(2.5, Now), new PueInput(1.5, Now - 2_000), new PueInput(0.4, Now - 1_000)],
            [new PueInput(8, Now - 5_000), new PueInput(12, Now)],
            Now,
            StaleMs);

        Assert.Equal(PueOutcome.Ok, r.Outcome);
        Assert.Equal(1.22, r.Value, 12);
        Assert.Equal(20, r.ItKw, 12);
        Assert.Equal(24.4, r.FacilityKw, 12); // the room's total, not its infrastructure alone
    }

    [Fact]
    public void A_room_whose_infrastructure_draws_nothing_has_a_ppue_of_1()
    {
        var r = Pue.ComputePartial([new PueInput(0, Now)], [new PueInput(10, Now)], Now, StaleMs);

        Assert.Equal(PueOutcome.Ok, r.Outcome);
        Assert.Equal(1, r.Value, 12);
    }

    [Fact]
    public void An_infrastructure_meter_never_read_gives_no_ppue_rather_than_a_low_one()
    {
        // Counting the unread CRAH feed as 0 kW would say (2.5 + 20) / 20 = 1.125 instead of 1.2.
        var r = Pue.ComputePartial([new PueInput(2.5, Now), default], [new PueInput(20, Now)], Now, StaleMs);

        Assert.Equal(PueOutcome.Missing, r.Outcome);
        Assert.True(double.IsNaN(r.Value));
    }

    [Fact]
    public void A_missing_negative_or_non_finite_input_gives_no_ppue()
    {
        Assert.Equal(PueOutcome.Missing, Pue.ComputePartial([new PueInput(double.NaN, Now)], [new PueInput(9, Now)], Now, StaleMs).Outcome);
        Assert.Equal(PueOutcome.Missing, Pue.ComputePartial([new PueInput(-0.5, Now)], [new PueInput(9, Now)], Now, StaleMs).Outcome);
        Assert.Equal(PueOutcome.Missing, Pue.ComputePartial([new PueInput(3, Now)], [new PueInput(9, Now), default], Now, StaleMs).Outcome);
        Assert.Equal(PueOutcome.Missing, Pue.ComputePartial([new PueInput(3, Now)], [new PueInput(9, Now), new PueInput(-1, Now)], Now, StaleMs).Outcome);
        Assert.Equal(PueOutcome.Missing, Pue.ComputePartial([new PueInput(3, Now)], [new PueInput(double.PositiveInfinity, Now)], Now, StaleMs).Outcome);
        Assert.Equal(PueOutcome.Missing, Pue.ComputePartial([], [new PueInput(9, Now)], Now, StaleMs).Outcome);
        Assert.Equal(PueOutcome.Missing, Pue.ComputePartial([new PueInput(3, Now)], [], Now, StaleMs).Outcome);
    }

    [Fact]
    public void A_stale_input_gives_no_ppue()
    {
        var staleMeter = Pue.ComputePartial([new PueInput(3, Now), new PueInput(1, Now - StaleMs - 1)], [new PueInput(20, Now)], Now, StaleMs);
        var staleIt = Pue.ComputePartial([new PueInput(3, Now)], [new PueInput(20, Now - StaleMs - 1)], Now, StaleMs);
        var justFresh = Pue.ComputePartial([new PueInput(3, Now - StaleMs)], [new PueInput(20, Now - StaleMs)], Now, StaleMs);

        Assert.Equal(PueOutcome.Stale, staleMeter.Outcome);
        Assert.Equal(PueOutcome.Stale, staleIt.Outcome);
        Assert.True(double.IsNaN(staleMeter.Value));
        Assert.Equal(PueOutcome.Ok, justFresh.Outcome);
        Assert.Equal(1.15, justFresh.Value, 12);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(0.05)]
    public void An_it_power_of_about_zero_is_never_divided(double itKw)
    {
        // An empty hall with its CRAHs running: 3 / 0.05 would say 61.
        var r = Pue.ComputePartial([new PueInput(3, Now)], [new PueInput(itKw, Now)], Now, StaleMs);

        Assert.Equal(PueOutcome.NoItLoad, r.Outcome);
        Assert.True(double.IsNaN(r.Value));
    }

    [Fact]
    public void A_ratio_above_10_is_returned_as_implausible_not_ok()
    {
        // A CRAH feed meter in W read as kW: 2500 "kW" of cooling for 20 kW of IT.
        var r = Pue.ComputePartial([new PueInput(2500, Now)], [new PueInput(20, Now)], Now, StaleMs);

        Assert.Equal(PueOutcome.Implausible, r.Outcome);
        Assert.Equal(126, r.Value, 12);
    }

    [Fact]
    public void The_site_pue_of_the_same_readings_is_unchanged()
    {
        // Pins Pue.Compute: ComputePartial is built on it, not the other way round.
        var r = Pue.Compute(new PueInput(30, Now), [new PueInput(9, Now - 5_000), new PueInput(11, Now - 1_000)], Now, StaleMs);

        Assert.Equal((PueOutcome.Ok, 1.5, 30.0, 20.0), (r.Outcome, r.Value, r.FacilityKw, r.ItKw));
    }
}
