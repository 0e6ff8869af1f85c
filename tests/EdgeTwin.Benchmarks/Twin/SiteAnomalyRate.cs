using System.Globalization;
using EdgeTwin.Simulator.Devices;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Twin.Anomaly;

namespace EdgeTwin.Benchmarks.Twin;

/// <summary>
/// How many anomaly events the default detector raises on a healthy simulated site at a production poll interval: every
/// PDU's outlet currents and powers, phase current and total power, polled every 10 s and quantised as the APC profile
/// reports them (0.1 A, 1 W, 0.01 kW), with the agent's episode rule (an event when the score reaches the threshold, closed
/// after 30 scores below half of it; none counted in the first 150 polls).
/// Each threshold is run as is, raised for the 10 s poll as <c>threshold_interval: 5m</c> raises it (<see cref="EventThreshold"/>),
/// each without and with <c>outlier_z: 20</c>.
/// <c>dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- site-anomaly-rate [hours] [seed] [threshold…]</c>.
/// </summary>
internal static class SiteAnomalyRate
{
    public static void Run(string[] args)
    {
        var hours = args.Length > 0 ? double.Parse(args[0], CultureInfo.InvariantCulture) : 24;
        var seed = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1;
        var thresholds = args.Length > 2 ? args[2..].Select(a => double.Parse(a, CultureInfo.InvariantCulture)).ToArray() : [AnomalyDetectorOptions.Default.Threshold];
        var spec = SiteGenerator.Generate(new SiteGenerationOptions { Racks = 4, CoolingUnits = 1, Machines = 1, Seed = seed });
        var site = new SimulatedSite(spec);
        var series = new List<(string Kind, SimDeviceBinding Device, string Role, int? Row, double Step)>();
        foreach (var pdu in spec.Pdus)
        {
            var device = new SimDeviceBinding(pdu.Id, "apc-rpdu2", SimEntityKind.Pdu, pdu.Id);
            for (var outlet = 1; outlet <= site.Pdu(pdu.Id).OutletCount; outlet++)
            {
                series.Add(("outlet_current", device, "pdu.outlet_current", outlet, 0.1));
                series.Add(("outlet_power", device, "pdu.outlet_power", outlet, 1));
            }

            series.Add(("phase_current", device, "pdu.phase_current", 1, 0.1));
            series.Add(("power", device, "pdu.power", null, 0.01));
        }

        // Each configured threshold as is and raised for the 10 s poll (threshold_interval: 5m), each without and with outlier_z 20.
        var rules = thresholds.SelectMany(t => new[] { (Configured: t, Raised: false, OutlierZ: 0.0), (Configured: t, Raised: true, OutlierZ: 0.0), (Configured: t, Raised: false, OutlierZ: 20.0), (Configured: t, Raised: true, OutlierZ: 20.0) }).ToArray();
        // One detector per rule: the detector's alarm suppression follows its threshold.
        var detectors = new StreamingAnomalyDetector[rules.Length, series.Count];
        for (var k = 0; k < rules.Length; k++)
        {
            var options = AnomalyDetectorOptions.Default with
            {
                Threshold = rules[k].Configured,
                ThresholdInterval = rules[k].Raised ? TimeSpan.FromMinutes(5) : TimeSpan.Zero,
                OutlierZ = rules[k].OutlierZ,
            };
            for (var s = 0; s < series.Count; s++)
            {
                detectors[k, s] = new StreamingAnomalyDetector(options);
            }
        }

        var episodes = new AnomalyEpisodeCounter[rules.Length, series.Count];
        var days = (int)Math.Ceiling(hours / 24);
        var eventsPerDay = new int[rules.Length, days];
        var t0 = new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        var samples = 0L;
        for (var i = 0; i < (int)(hours * 360); i++)
        {
            site.Step(TimeSpan.FromSeconds(10));
            var timestamp = t0 + (i * 10_000L);
            for (var s = 0; s < series.Count; s++)
            {
                var (_, device, role, row, step) = series[s];
                if (!RoleValues.TryRead(site, device, role, row, out var v))
                {
                    continue;
                }

                var value = Math.Round(v.Value / step) * step;
                samples++;
                for (var k = 0; k < rules.Length; k++)
                {
                    var detector = detectors[k, s];
                    if (episodes[k, s].Step(detector.Update(timestamp, value), detector.EventThreshold) && i >= 150)
                    {
                        eventsPerDay[k, i / 8640]++;
                        episodes[k, s].Events++;
                    }
                }
            }
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{series.Count} series, {hours} h at 10 s (seed {seed}), {samples} samples per rule"));
        for (var k = 0; k < rules.Length; k++)
        {
            var total = Enumerable.Range(0, series.Count).Sum(s => episodes[k, s].Events);
            var kinds = series.Select((x, s) => (x.Kind, episodes[k, s].Events)).GroupBy(x => x.Kind).Select(g => $"{g.Key} {g.Sum(x => x.Events)}/{g.Count()}");
            var rule = (rules[k].Raised ? $"threshold {rules[k].Configured:0.00} raised for 10 s to {detectors[k, 0].EventThreshold:0.000}" : $"threshold {rules[k].Configured:0.00} as is")
                + (rules[k].OutlierZ > 0 ? $", outlier_z {rules[k].OutlierZ:0}" : "");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{rule}: {total} events, {1000.0 * total / samples:0.000} per 1000 samples, {total / (double)series.Count / (hours / 24):0.00} per series per day ({string.Join(", ", kinds)} events/series)"));
            if (days > 1)
            {
                // The rate grows over the first days at a 10 s poll: the first day is not the steady rate.
                var perDay = Enumerable.Range(0, days).Select(d => eventsPerDay[k, d].ToString(CultureInfo.InvariantCulture));
                Console.WriteLine($"  events by day: {string.Join(" ", perDay)}");
            }
        }
    }
}
