namespace EdgeTwin.Twin.Power;

/// <summary>Where the IT power of a PUE is measured (The Green Grid's measurement points, ISO/IEC 30134-2).</summary>
public enum PueBasis : byte
{
    /// <summary>Not computable: neither every UPS nor every PDU of the site reads its output power.</summary>
    None = 0,

    /// <summary>IT power at the UPS outputs: the measurement point of category 1 (and of the demand-based category 0).</summary>
    UpsOutput = 1,

    /// <summary>IT power at the PDU outputs: the measurement point of category 2.</summary>
    PduOutput = 2,
}

/// <summary>Why a PUE was or was not computed.</summary>
public enum PueOutcome : byte
{
    /// <summary>Computed from fresh readings, between 1 and <see cref="Pue.MaxPlausible"/>.</summary>
    Ok = 0,

    /// <summary>An input (the facility meter or one IT element) has no reading yet, or a non-finite or negative one.</summary>
    Missing = 1,

    /// <summary>An input's last reading is older than the staleness limit.</summary>
    Stale = 2,

    /// <summary>IT power below <see cref="Pue.MinItKw"/>: no load to divide by.</summary>
    NoItLoad = 3,

    /// <summary>Computed, but below 1 or above <see cref="Pue.MaxPlausible"/>: a meter on the wrong feed or a unit read wrong.</summary>
    Implausible = 4,
}

/// <summary>One input of the PUE: its power (kW) and the sample time of its reading (Unix ms; 0 = never read).</summary>
public readonly record struct PueInput(double Kw, long AtMs);

/// <param name="Outcome">Computed or why not.</param>
/// <param name="Value">The ratio when <see cref="Outcome"/> is Ok or Implausible, NaN otherwise.</param>
/// <param name="FacilityKw">Facility power used (kW), NaN when missing.</param>
/// <param name="ItKw">Sum of the IT inputs (kW), NaN when one is missing.</param>
public readonly record struct PueResult(PueOutcome Outcome, double Value, double FacilityKw, double ItKw);

/// <summary>
/// Power Usage Effectiveness = total facility power / IT equipment power (The Green Grid; ISO/IEC 30134-2). Computed here
/// from instantaneous power (kW), the demand-based reading of the ratio: the standard's PUE of a category is the same
/// ratio over 12 months of energy, which a summary of this series approaches, but does not replace.
/// </summary>
public static class Pue
{
    /// <summary>Below this IT power (kW) nothing is divided: an idle or unread chain gives no PUE, not a huge one.</summary>
    public const double MinItKw = 0.1;

    /// <summary>A PUE above this is no data center's: a meter in W read as kW, or the meter on a bigger feed than the IT chain.</summary>
    public const double MaxPlausible = 10;

    /// <summary>
    /// PUE at <paramref name="nowMs"/> from the facility meter and every IT element (all of them: a partial IT sum would
    /// overstate the PUE). Every input must have a finite, non-negative reading no older than <paramref name="staleAfterMs"/>.
    /// </summary>
    public static PueResult Compute(PueInput facility, ReadOnlySpan<PueInput> it, long nowMs, long staleAfterMs)
    {
        if (it.IsEmpty || !Usable(facility))
        {
            return new PueResult(PueOutcome.Missing, double.NaN, Usable(facility) ? facility.Kw : double.NaN, double.NaN);
        }

        var stale = nowMs - facility.AtMs > staleAfterMs;
        var itKw = 0.0;
        foreach (var input in it)
        {
            if (!Usable(input))
            {
                return new PueResult(PueOutcome.Missing, double.NaN, facility.Kw, double.NaN);
            }

            stale |= nowMs - input.AtMs > staleAfterMs;
            itKw += input.Kw;
        }

        if (stale)
        {
            return new PueResult(PueOutcome.Stale, double.NaN, facility.Kw, itKw);
        }

        if (itKw < MinItKw)
        {
            return new PueResult(PueOutcome.NoItLoad, double.NaN, facility.Kw, itKw);
        }

        var pue = facility.Kw / itKw;
        return new PueResult(pue is >= 1 and <= MaxPlausible ? PueOutcome.Ok : PueOutcome.Implausible, pue, facility.Kw, itKw);
    }

    /// <summary>
    /// Partial PUE of a zone (ISO/IEC 30134-2; The Green Grid's pPUE) at <paramref name="nowMs"/>: (the zone's
    /// infrastructure power + its IT power) / its IT power, by the same rules as <see cref="Compute"/>: every
    /// infrastructure meter and every IT element must have a finite, non-negative reading no older than
    /// <paramref name="staleAfterMs"/>. The result's <c>FacilityKw</c> is the zone's total (infrastructure + IT).
    /// </summary>
    public static PueResult ComputePartial(ReadOnlySpan<PueInput> infrastructure, ReadOnlySpan<PueInput> it, long nowMs, long staleAfterMs)
    {
        // The zone's meters as one facility input: missing when one is, as old as its oldest reading.
        var zone = new PueInput(0, long.MaxValue);
        foreach (var meter in infrastructure)
        {
            if (!Usable(meter))
            {
                zone = default;
                break;
            }

            zone = new PueInput(zone.Kw + meter.Kw, Math.Min(zone.AtMs, meter.AtMs));
        }

        if (infrastructure.IsEmpty || !Usable(zone))
        {
            return new PueResult(PueOutcome.Missing, double.NaN, double.NaN, double.NaN);
        }

        // IT inputs that are unusable make Compute answer Missing whatever the sum: it only has to be a number here.
        foreach (var input in it)
        {
            zone = zone with { Kw = zone.Kw + (Usable(input) ? input.Kw : 0) };
        }

        return Compute(zone, it, nowMs, staleAfterMs);
    }

    private static bool Usable(PueInput input) => input.AtMs > 0 && double.IsFinite(input.Kw) && input.Kw >= 0;
}
