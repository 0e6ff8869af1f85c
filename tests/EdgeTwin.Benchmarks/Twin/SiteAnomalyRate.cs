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

        var detectors = series.Select(_ => new StreamingAnomalyDetector()).ToArray();
        var open = new bool[thresholds.Length, series.Count];
        var quiet = new int[thresholds.Length, series.Count];
        var events = new int[thresholds.Length, series.Count];
        var t0 = new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        var samples = 0L;
        for (var i = 0; i < (int)(hours * 360); i++)
        {
            site.Step(TimeSpan.FromSeconds(10));
            for (var s = 0; s < series.Count; s++)
            {
                var (_, device, role, row, step) = series[s];
                if (!RoleValues.TryRead(site, device, role, row, out var v))
                {
                    continue;
                }

                var score = detectors[s].Update(t0 + (i * 10_000L), Math.Round(v.Value / step) * step);
                samples++;
                for (var k = 0; k < thresholds.Length; k++)
                {
                    if (!open[k, s])
                    {
                        if (score >= thresholds[k])
                        {
                            open[k, s] = true;
                            quiet[k, s] = 0;
                            events[k, s] += i >= 150 ? 1 : 0;
                        }
                    }
                    else
                    {
                        quiet[k, s] = score < thresholds[k] / 2 ? quiet[k, s] + 1 : 0;
                        open[k, s] = quiet[k, s] < 30;
                    }
                }
            }
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{series.Count} series, {hours} h at 10 s (seed {seed}), {samples} samples"));
        for (var k = 0; k < thresholds.Length; k++)
        {
            var total = Enumerable.Range(0, series.Count).Sum(s => events[k, s]);
            var kinds = series.Select((x, s) => (x.Kind, Events: events[k, s])).GroupBy(x => x.Kind).Select(g => $"{g.Key} {g.Sum(x => x.Events)}/{g.Count()}");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"threshold {thresholds[k]:0.00}: {total} events, {1000.0 * total / samples:0.000} per 1000 samples, {total / (double)series.Count / (hours / 24):0.00} per series per day ({string.Join(", ", kinds)} events/series)"));
        }
    }
}
