using System.Globalization;
using System.Text;
using EdgeTwin.Simulator.Devices;
using EdgeTwin.Simulator.Faults;
using EdgeTwin.Simulator.Physics;

namespace EdgeTwin.Twin.Tests.Multivariate;

/// <summary>One row of a machine group as the agent sees it from an ABB ACS580 drive (values through the simulator's
/// role mapping and the register scales of <c>device-profiles/abb-acs580.yaml</c>).</summary>
public readonly record struct MachineRow(int Run, string Machine, double TimeS, float TorquePct, float MotorTemperatureC, float InverterPct, double Wear, bool Faulty);

/// <summary>
/// Training and test data for the multivariate machine model, from the simulator only: sites of four machines on VFDs,
/// healthy bearings (wear 0–0.25) with ordinary stops and restarts, and in fault runs one machine whose bearing is set
/// to an advanced wear (<c>machine-wear:W</c>, W 0.55–0.8) at a random time. Sampled every 30 s like a poll.
/// The training script (<c>models/multivariate/train_mv_machine.py</c>) reads the CSV this writes.
/// </summary>
public static class MachineGroupData
{
    public const int Machines = 4;
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(30);
    public static readonly string[] Features = ["motor_torque", "motor_temperature", "inverter_temperature"];

    /// <summary>Simulates one run (deterministic per seed) and returns its rows in time order, machine by machine interleaved.</summary>
    public static List<MachineRow> Run(int seed, TimeSpan duration, bool withFault)
    {
        var rng = new Random(seed);
        var generated = SiteGenerator.Generate(new SiteGenerationOptions { Racks = 1, CoolingUnits = 1, Machines = Machines, Seed = seed });
        var machines = generated.Machines.Select(m => m with
        {
            LoadFactor = 0.4 + (0.5 * rng.NextDouble()),
            InitialWear = 0.25 * rng.NextDouble(),
            HoursToFailure = 24 * 90,
        }).ToList();
        var site = new SimulatedSite(generated with { Machines = machines });
        var drives = machines.Select((m, i) => new SimDeviceBinding($"drive{i + 1}", "abb-acs580", SimEntityKind.Machine, m.Id)).ToArray();

        // Ordinary operation: each machine stops for 20–90 min now and then (shift changes, set-ups).
        var stopsAt = new double[Machines];
        var restartAt = new double[Machines];
        for (var i = 0; i < Machines; i++)
        {
            stopsAt[i] = 3600 * (2 + (8 * rng.NextDouble()));
            restartAt[i] = double.MaxValue;
        }

        var faultMachine = rng.Next(Machines);
        var faultAt = withFault ? 3600 * (3 + ((duration.TotalHours - 5) * rng.NextDouble())) : double.MaxValue;
        var faultWear = 0.55 + (0.25 * rng.NextDouble());
        var faulty = false;
        var rows = new List<MachineRow>();
        for (var t = 0.0; t < duration.TotalSeconds; t += Interval.TotalSeconds)
        {
            site.Step(Interval);
            for (var i = 0; i < Machines; i++)
            {
                if (t >= stopsAt[i])
                {
                    site.Apply(FaultCommand.Parse($"machine-stop:{machines[i].Id}"));
                    restartAt[i] = t + (60 * (20 + (70 * rng.NextDouble())));
                    stopsAt[i] = double.MaxValue;
                }
                else if (t >= restartAt[i])
                {
                    site.Apply(FaultCommand.Parse($"machine-start:{machines[i].Id}"));
                    stopsAt[i] = t + (3600 * (4 + (8 * rng.NextDouble())));
                    restartAt[i] = double.MaxValue;
                }
            }

            if (!faulty && t >= faultAt)
            {
                site.Apply(FaultCommand.Parse(string.Create(CultureInfo.InvariantCulture, $"machine-wear:{machines[faultMachine].Id}:{faultWear:F3}")));
                faulty = true;
            }

            for (var i = 0; i < Machines; i++)
            {
                var m = site.Machine(machines[i].Id);
                rows.Add(new MachineRow(
                    seed,
                    m.Id,
                    t,
                    // Register scales of the ACS580 profile: torque 0.1 %, temperatures 1 unit.
                    (float)(Math.Round(Read(site, drives[i], "machine.torque") * 10) / 10),
                    (float)Math.Round(Read(site, drives[i], "machine.motor_temperature")),
                    (float)Math.Round(Read(site, drives[i], "machine.drive_temperature_ratio")),
                    m.Wear,
                    faulty && i == faultMachine));
            }
        }

        return rows;
    }

    private static double Read(SimulatedSite site, SimDeviceBinding drive, string role) =>
        RoleValues.TryRead(site, drive, role, null, out var v) ? v.Value : throw new InvalidOperationException($"simulator has no value for {role}");

    public static void WriteCsv(string path, IEnumerable<MachineRow> rows)
    {
        var sb = new StringBuilder("run,machine,time_s,motor_torque,motor_temperature,inverter_temperature,wear,faulty\n");
        foreach (var r in rows)
        {
            sb.Append(CultureInfo.InvariantCulture, $"{r.Run},{r.Machine},{r.TimeS:F0},{r.TorquePct:R},{r.MotorTemperatureC:R},{r.InverterPct:R},{r.Wear:F4},{(r.Faulty ? 1 : 0)}\n");
        }

        File.WriteAllText(path, sb.ToString());
    }
}
