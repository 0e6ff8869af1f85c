using System.Globalization;
using System.Text.Json.Serialization;
using EdgeTwin.Core.Config;
using EdgeTwin.Twin.Power;
using EdgeTwin.Twin.Thermal;
using MathNet.Numerics.Distributions;
using MathNet.Numerics.LinearAlgebra;

namespace EdgeTwin.Twin.Capacity;

/// <summary>Days until a load's seasonal peak reaches a limit, with its interval (null: not within the trend, i.e. flat or falling).</summary>
public sealed record Exhaustion(
    [property: JsonPropertyName("resource")] string Resource,
    [property: JsonPropertyName("limit_kw")] double LimitKw,
    [property: JsonPropertyName("level_kw")] double LevelKw,
    [property: JsonPropertyName("seasonal_peak_kw")] double SeasonalPeakKw,
    [property: JsonPropertyName("trend_kw_per_day")] double TrendKwPerDay,
    [property: JsonPropertyName("trend_kw_per_day_lower")] double TrendKwPerDayLower,
    [property: JsonPropertyName("trend_kw_per_day_upper")] double TrendKwPerDayUpper,
    [property: JsonPropertyName("days_to_exhaustion")] double? DaysToExhaustion,
    [property: JsonPropertyName("days_lower")] double? DaysLower,
    [property: JsonPropertyName("days_upper")] double? DaysUpper,
    [property: JsonPropertyName("confidence")] double Confidence,
    [property: JsonPropertyName("limited_by")] string? LimitedBy = null);

/// <summary>Power and cooling days-to-exhaustion of one zone.</summary>
public sealed record ZoneCapacity(
    [property: JsonPropertyName("zone")] string Zone,
    [property: JsonPropertyName("power")] Exhaustion Power,
    [property: JsonPropertyName("cooling")] Exhaustion Cooling,
    [property: JsonPropertyName("history_days")] double HistoryDays,
    [property: JsonPropertyName("samples")] int Samples);

/// <summary>
/// Days-to-exhaustion from a load history. The load is fitted by ordinary least squares as
/// <c>y(t) = a + b·t + Σ_k (c_k sin + d_k cos)(2πk·t/1 d) + Σ_k (e_k sin + f_k cos)(2πk·t/7 d)</c> (3 harmonics each; the
/// weekly terms only with ≥ 2 weeks of history, the daily ones with ≥ 2 days), so daily and weekly seasonality do not bias
/// the trend b. Exhaustion is when the trend plus the seasonal peak (the highest point of the fitted daily/weekly cycle)
/// reaches the limit: d = (limit − level − peak) / b, with level = a + b·t_now. Interval: from the two-sided interval of b
/// at <c>confidence</c> (Student t), with the standard error inflated for AR(1) autocorrelation of the residuals
/// (effective sample size n·(1 − ρ)/(1 + ρ)); a bound whose slope is ≤ 0 is null (no exhaustion on that trend).
/// </summary>
public static class CapacityForecast
{
    public const int Harmonics = 3;

    private const double Day = 86400;

    /// <summary>Shortest history a trend is fitted on (below, the answer is "not enough history", never a trend).</summary>
    public const double MinSpanSeconds = 3600;

    private static string Span(double seconds) => seconds >= 5400
        ? string.Create(CultureInfo.InvariantCulture, $"{seconds / 3600:0.#} h")
        : string.Create(CultureInfo.InvariantCulture, $"{seconds / 60:0.#} min");

    public static Exhaustion Forecast(string resource, IReadOnlyList<(double TimeSeconds, double Kw)> history, double limitKw, double confidence = 0.9)
    {
        ArgumentNullException.ThrowIfNull(history);
        var points = history.Where(p => double.IsFinite(p.Kw) && double.IsFinite(p.TimeSeconds)).OrderBy(p => p.TimeSeconds).ToList();
        if (points.Count < 10)
        {
            throw new ArgumentException($"capacity forecast of {resource}: {points.Count} usable samples, at least 10 needed", nameof(history));
        }

        var t0 = points[^1].TimeSeconds;
        var span = (points[^1].TimeSeconds - points[0].TimeSeconds) / Day;
        if (span * Day < MinSpanSeconds)
        {
            // Minutes of telemetry give a "trend" of noise in kW per day (3.5 min gave +3544 kW/day and 0 days left).
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"capacity forecast of {resource}: the history spans {Span(span * Day)}; a trend needs at least {Span(MinSpanSeconds)} of it (2 days to take the daily cycle out)"), nameof(history));
        }

        var daily = span >= 2;
        var weekly = span >= 14;
        var columns = 2 + (daily ? 2 * Harmonics : 0) + (weekly ? 2 * Harmonics : 0);
        if (points.Count <= columns + 2)
        {
            throw new ArgumentException($"capacity forecast of {resource}: {points.Count} samples for {columns} terms", nameof(history));
        }

        var x = Matrix<double>.Build.Dense(points.Count, columns);
        var y = Vector<double>.Build.Dense(points.Count);
        for (var r = 0; r < points.Count; r++)
        {
            // Time in days relative to now, so a is the level now and b the trend per day.
            var row = Row((points[r].TimeSeconds - t0) / Day, daily, weekly, columns);
            x.SetRow(r, row);
            y[r] = points[r].Kw;
        }

        var qr = x.QR();
        var beta = qr.Solve(y);
        var residuals = y - (x * beta);
        var n = points.Count;
        var sigma2 = residuals.DotProduct(residuals) / (n - columns);
        var rho = 0.0;
        var den = residuals.DotProduct(residuals);
        if (den > 0)
        {
            for (var r = 1; r < n; r++)
            {
                rho += residuals[r] * residuals[r - 1];
            }

            rho = Math.Clamp(rho / den, 0, 0.99);
        }

        var xtxInv = (x.Transpose() * x).Inverse();
        var inflation = (1 + rho) / (1 - rho);
        var seSlope = Math.Sqrt(sigma2 * xtxInv[1, 1] * inflation);
        var effective = Math.Max(3, (n * (1 - rho) / (1 + rho)) - columns);
        var tq = StudentT.InvCDF(0, 1, effective, 0.5 + (confidence / 2));
        var level = beta[0];
        var slope = beta[1];

        // The seasonal peak: the fitted cycle's maximum over one week (or one day) sampled every 10 minutes.
        var peak = 0.0;
        if (daily || weekly)
        {
            peak = double.NegativeInfinity;
            var cycle = weekly ? 7 : 1;
            for (var k = 0; k < cycle * 144; k++)
            {
                var row = Row(k / 144.0, daily, weekly, columns);
                var s = 0.0;
                for (var c = 2; c < columns; c++)
                {
                    s += row[c] * beta[c];
                }

                peak = Math.Max(peak, s);
            }
        }

        var margin = limitKw - level - peak;
        double? Days(double b) => margin <= 0 ? 0 : b <= 1e-12 ? null : margin / b;
        var lower = slope - (tq * seSlope);
        var upper = slope + (tq * seSlope);
        return new Exhaustion(
            resource,
            Math.Round(limitKw, 3),
            Math.Round(level, 3),
            Math.Round(peak, 3),
            Math.Round(slope, 5),
            Math.Round(lower, 5),
            Math.Round(upper, 5),
            Round(Days(slope)),
            Round(Days(upper)),
            Round(Days(lower)),
            confidence);
    }

    /// <summary>
    /// Power and cooling of each zone: load = the zone's rack power (per frame), cooling limit = the zone's units with the
    /// largest out (N+1). Power limit with <paramref name="now"/> (the power twin's present rack loads and phase currents):
    /// the zone load at which, with the zone's racks growing in proportion, the first feed or UPS reaches its usable
    /// rating (80 %, phase-limited) with nothing failed or after any single feed/UPS failure; that element and failure are
    /// named in <c>limited_by</c>. Without it (or with no load yet): the derated ratings of the feeds of the zone's racks
    /// (a rack on ≥ 2 feeds counts its smallest feed; a PDU feeding several racks is shared evenly).
    /// </summary>
    public static IReadOnlyList<ZoneCapacity> ForSite(SiteTopology site, IReadOnlyList<ThermalZone> zones, IReadOnlyList<IReadOnlyList<ZoneFrame>> frames, double confidence = 0.9, PowerReadings? now = null)
    {
        ArgumentNullException.ThrowIfNull(site);
        ArgumentNullException.ThrowIfNull(zones);
        ArgumentNullException.ThrowIfNull(frames);
        var power = new PowerModel(site);
        var pdus = site.Power.Pdus.ToDictionary(p => p.Id, StringComparer.Ordinal);
        var racksPerPdu = site.AllRacks.SelectMany(r => r.Feeds).GroupBy(f => f, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var result = new List<ZoneCapacity>();
        for (var z = 0; z < zones.Count; z++)
        {
            var zone = zones[z];
            var limit = 0.0;
            foreach (var rack in site.AllRacks.Where(r => zone.RackIndex(r.Id) >= 0))
            {
                var feeds = rack.Feeds.Where(pdus.ContainsKey).Select(f => PowerModel.ContinuousDerating * power.PduRatingKw(pdus[f]) / racksPerPdu[f]).ToList();
                limit += feeds.Count == 0 ? rack.PowerBudgetKw : feeds.Count >= 2 ? feeds.Min() : feeds[0];
            }

            var capacities = zone.Units.Select(u => u.CapacityKw).ToList();
            var cooling = capacities.Count == 0 ? 0 : capacities.Sum() - (capacities.Count > 1 ? capacities.Max() : 0);
            var coolingBy = CoolingLimitText(zone);
            var load = frames[z].Select(f => (f.TimeSeconds, f.TotalPowerKw())).ToList();
            string? limitedBy = null;
            if (now is not null && load.Count > 0 && GrowthLimit(power, zone, now) is { } growth)
            {
                // The zone's measured level now plus the kW its racks can grow by (the assumed loads of unmetered racks
                // take their part of the room: they are in the growth base but not in the measured series).
                limit = load[^1].Item2 + growth.HeadroomKw;
                limitedBy = growth.By;
            }

            var days = load.Count > 1 ? (load[^1].TimeSeconds - load[0].TimeSeconds) / Day : 0;
            result.Add(new ZoneCapacity(
                zone.Id,
                Forecast("power", load, limit, confidence) with { LimitedBy = limitedBy },
                Forecast("cooling", load, cooling, confidence) with { LimitedBy = coolingBy },
                Math.Round(days, 2),
                load.Count));
        }

        return result;
    }

    /// <summary>
    /// What the cooling limit is: the units with the largest out (N+1), or a single unit's own capacity, named (it read
    /// "the zone's cooling units with the largest out (N+1)" for a room with one unit too, whose limit is that unit, N).
    /// </summary>
    private static string CoolingLimitText(ThermalZone zone)
    {
        var units = zone.Units;
        if (units.Count == 0)
        {
            return "no cooling unit in the zone";
        }

        if (units.Count == 1)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{units[0].Id} ({units[0].CapacityKw:0.0} kW), the zone's only unit: no N+1, the limit is the unit itself (N)");
        }

        var largest = units.MaxBy(u => u.CapacityKw)!;
        return string.Create(CultureInfo.InvariantCulture, $"the zone's {units.Count} units with the largest, {largest.Id} ({largest.CapacityKw:0.0} kW), out (N+1)");
    }

    /// <summary>
    /// kW the zone's racks can grow by together (in proportion to their present loads) before the first element reaches
    /// its usable rating, checked with nothing failed and after each single PDU/UPS failure (loads are linear in the
    /// rack loads, so each case gives its factor exactly); null when the zone draws nothing on the power chain.
    /// </summary>
    private static (double HeadroomKw, string By)? GrowthLimit(PowerModel power, ThermalZone zone, PowerReadings now)
    {
        var inZone = now.RackKw.Where(r => zone.RackIndex(r.Key) >= 0).ToDictionary(r => r.Key, r => r.Value, StringComparer.Ordinal);
        var others = now.RackKw.Where(r => zone.RackIndex(r.Key) < 0).ToDictionary(r => r.Key, r => r.Value, StringComparer.Ordinal);
        var zoneKw = inZone.Values.Sum();
        if (zoneKw <= 0)
        {
            return null;
        }

        var usable = power.Assess(now).Elements.ToDictionary(e => e.Id, e => e.UsableKw, StringComparer.Ordinal);
        var best = (Factor: double.PositiveInfinity, By: "");
        foreach (var failure in new string?[] { null }.Concat(power.Site.Power.Pdus.Select(p => p.Id)).Concat(power.Site.Power.Ups.Select(u => u.Id)))
        {
            var failed = failure is null ? null : new HashSet<string>(StringComparer.Ordinal) { failure };
            var mine = power.Distribute(inZone, failed);
            var rest = power.Distribute(others, failed);
            foreach (var (id, kw) in mine.Pdu.Concat(mine.Ups))
            {
                if (kw <= 1e-9 || id == failure)
                {
                    continue;
                }

                var other = rest.Pdu.TryGetValue(id, out var o) ? o : rest.Ups.GetValueOrDefault(id);
                var factor = (usable[id] - other) / kw;
                if (factor < best.Factor)
                {
                    best = (factor, string.Create(CultureInfo.InvariantCulture, $"{id} ({usable[id]:0.00} kW usable){(failure is null ? "" : $" when {failure} fails")}"));
                }
            }
        }

        return double.IsPositiveInfinity(best.Factor) ? null : ((best.Factor - 1) * zoneKw, best.By);
    }

    private static double[] Row(double days, bool daily, bool weekly, int columns)
    {
        var row = new double[columns];
        row[0] = 1;
        row[1] = days;
        var c = 2;
        for (var k = 1; k <= Harmonics && daily; k++)
        {
            row[c++] = Math.Sin(2 * Math.PI * k * days);
            row[c++] = Math.Cos(2 * Math.PI * k * days);
        }

        for (var k = 1; k <= Harmonics && weekly; k++)
        {
            row[c++] = Math.Sin(2 * Math.PI * k * days / 7);
            row[c++] = Math.Cos(2 * Math.PI * k * days / 7);
        }

        return row;
    }

    private static double? Round(double? v) => v is { } d ? Math.Round(d, 1) : null;
}
