using System.Globalization;
using EdgeTwin.Simulator.Devices;
using EdgeTwin.Simulator.Faults;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Twin.Anomaly;

namespace EdgeTwin.Benchmarks.Twin;

/// <summary>
/// Which injected faults the detector reports on a simulated site polled every 10 s: the defaults, <c>threshold_interval: 5m</c>
/// , <c>outlier_z: 20</c> and both: per fault, a fresh site runs <c>hours</c> healthy (the detectors learn), then
/// the fault is injected and the affected device's numeric series are watched for 30 minutes. Prints, per series, the
/// delay of its first event (or "-" for none) under each rule.
/// <c>dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- site-anomaly-faults [hours] [seed]</c>.
/// </summary>
internal static class SiteAnomalyFaults
{
    private const int WatchPolls = 180;

    public static void Run(string[] args)
    {
        var hours = args.Length > 0 ? double.Parse(args[0], CultureInfo.InvariantCulture) : 24;
        var seed = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1;
        var options = new SiteGenerationOptions { Racks = 4, CoolingUnits = 2, Machines = 2, Seed = seed };
        var spec = SiteGenerator.Generate(options);
        var pdu = new SimDeviceBinding(spec.Pdus[0].Id, "apc-rpdu2", SimEntityKind.Pdu, spec.Pdus[0].Id);
        var ups = new SimDeviceBinding(spec.Upses[0].Id, "ups", SimEntityKind.Ups, spec.Upses[0].Id);
        var crac = new SimDeviceBinding(spec.CoolingUnits[0].Id, "crac", SimEntityKind.CoolingUnit, spec.CoolingUnits[0].Id);
        var machine = new SimDeviceBinding(spec.Machines[0].Id, "drive", SimEntityKind.Machine, spec.Machines[0].Id);
        var racks = spec.Racks.Select(r => new SimDeviceBinding(r.Id, "rack", SimEntityKind.Rack, r.Id)).ToList();
        Watch[] PduSeries() => [new(pdu, "pdu.outlet_power", 1, 1), new(pdu, "pdu.outlet_current", 1, 0.1), new(pdu, "pdu.power", null, 0.01), new(pdu, "pdu.phase_current", 1, 0.1)];
        Watch[] CoolingSeries() =>
        [
            new(crac, "cooling.supply_temperature", null, 0.1), new(crac, "cooling.return_temperature", null, 0.1), new(crac, "cooling.fan_speed", null, 1),
            new(crac, "cooling.cooling_capacity", null, 0.1), .. racks.Select(r => new Watch(r, "rack.inlet_temperature", null, 0.1)),
        ];
        var scenarios = new (string Fault, Watch[] Series)[]
        {
            ($"pdu-overload:{pdu.EntityId}:0.5", PduSeries()),
            ($"pdu-overload:{pdu.EntityId}", PduSeries()),
            ($"cooling-stop:{crac.EntityId}", CoolingSeries()),
            ($"cooling-fan-fail:{crac.EntityId}", CoolingSeries()),
            ($"utility-fail:{ups.EntityId}", [new(ups, "ups.input_voltage", null, 0.1), new(ups, "ups.battery_current", null, 0.1), new(ups, "ups.input_power", null, 0.01), new(ups, "ups.battery_charge", null, 1), new(ups, "ups.runtime", null, 1)]),
            ($"machine-stop:{machine.EntityId}", [new(machine, "machine.speed", null, 1), new(machine, "machine.current", null, 0.1), new(machine, "machine.power", null, 0.01), new(machine, "machine.vibration_rms", null, 0.01)]),
            ($"rack-restart:{racks[0].EntityId}", [new(racks[0], "rack.power", null, 0.01), new(racks[0], "rack.outlet_temperature", null, 0.1)]),
        };

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{hours} h healthy at 10 s (seed {seed}), then each fault for {WatchPolls} polls; first event after the fault in polls (10 s each), '-' none; default | threshold_interval 5m | outlier_z 20 | both"));
        var raised = AnomalyDetectorOptions.Default with { ThresholdInterval = TimeSpan.FromMinutes(5) };
        var outlier = AnomalyDetectorOptions.Default with { OutlierZ = 20 };
        var t0 = new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        var healthyPolls = (int)(hours * 360);
        foreach (var (fault, watched) in scenarios)
        {
            var site = new SimulatedSite(spec);
            var rules = new[] { AnomalyDetectorOptions.Default, raised, outlier, raised with { OutlierZ = outlier.OutlierZ } };
            var detectors = rules.Select(o => watched.Select(_ => new StreamingAnomalyDetector(o)).ToArray()).ToArray();
            var episodes = new AnomalyEpisodeCounter[rules.Length, watched.Length];
            var first = new int?[rules.Length, watched.Length];
            var peak = new double[rules.Length, watched.Length];
            for (var poll = 0; poll < healthyPolls + WatchPolls; poll++)
            {
                if (poll == healthyPolls)
                {
                    site.Apply(FaultCommand.Parse(fault));
                }

                site.Step(TimeSpan.FromSeconds(10));
                for (var s = 0; s < watched.Length; s++)
                {
                    var w = watched[s];
                    if (!RoleValues.TryRead(site, w.Device, w.Role, w.Row, out var v))
                    {
                        continue;
                    }

                    for (var k = 0; k < rules.Length; k++)
                    {
                        var d = detectors[k][s];
                        var score = d.Update(t0 + (poll * 10_000L), Math.Round(v.Value / w.Step) * w.Step);
                        var opens = episodes[k, s].Step(score, d.EventThreshold);

                        if (poll >= healthyPolls)
                        {
                            peak[k, s] = Math.Max(peak[k, s], score);
                            if (opens && first[k, s] is null)
                            {
                                first[k, s] = poll - healthyPolls;
                            }
                        }
                    }
                }
            }

            var reported = Enumerable.Range(0, rules.Length).Select(k => Enumerable.Range(0, watched.Length).Count(s => first[k, s] is not null)).ToArray();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{fault}: series reported {string.Join(" | ", reported.Select(r => $"{r}/{watched.Length}"))}"));
            for (var s = 0; s < watched.Length; s++)
            {
                string Cell(int k) => string.Create(CultureInfo.InvariantCulture, $"{(first[k, s] is { } p ? p.ToString(CultureInfo.InvariantCulture) : "-"),3} (peak {peak[k, s]:0.00})");
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {watched[s].Device.EntityId + " " + watched[s].Role + (watched[s].Row is { } r ? $"[{r}]" : ""),-40} {string.Join(" | ", Enumerable.Range(0, rules.Length).Select(Cell))}"));
            }
        }
    }

    private sealed record Watch(SimDeviceBinding Device, string Role, int? Row, double Step);
}
