namespace EdgeTwin.Twin.Thermal;

/// <summary>A rack running hotter than the calibrated airflow explains.</summary>
/// <param name="ResidualK">Measured minus modelled inlet.</param>
/// <param name="SigmaK">The rack's residual spread during calibration.</param>
public sealed record HotSpot(string Rack, double InletC, double ModelledC, double ResidualK, double SigmaK);

/// <summary>
/// Hot spots from the model's residuals: a rack whose measured inlet exceeds the modelled one by more than
/// <c>threshold</c> × its calibration residual spread (and at least <c>minK</c>) is drawing hot air the coupling does not
/// account for — a blocked tile, missing blanking panels, a door left open.
/// </summary>
public static class HotSpots
{
    public static IReadOnlyList<HotSpot> Find(ZoneThermalModel model, ZoneFrame frame, double threshold = 3, double minK = 1)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(frame);
        var predicted = new double[model.Zone.Racks.Count];
        model.PredictInlets(frame, predicted);
        var result = new List<HotSpot>();
        for (var i = 0; i < predicted.Length; i++)
        {
            var measured = frame.RackInletC[i];
            if (double.IsNaN(measured) || double.IsNaN(predicted[i]))
            {
                continue;
            }

            var residual = measured - predicted[i];
            var sigma = model.RackResidualSigmaK[i];
            if (residual > Math.Max(minK, threshold * sigma))
            {
                result.Add(new HotSpot(model.Zone.Racks[i].Id, measured, Math.Round(predicted[i], 2), Math.Round(residual, 2), Math.Round(sigma, 3)));
            }
        }

        return result;
    }
}
