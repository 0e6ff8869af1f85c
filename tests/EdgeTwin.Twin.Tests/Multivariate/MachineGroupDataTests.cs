using Xunit;

namespace EdgeTwin.Twin.Tests.Multivariate;

public sealed class MachineGroupDataTests
{
    /// <summary>Seeds of the training script's data (healthy runs); tests use other seeds (held out).</summary>
    public static readonly int[] TrainingSeeds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    public static readonly TimeSpan TrainingDuration = TimeSpan.FromHours(24);

    /// <summary>Seeds of fault runs for choosing the model's shape (validation); the detection test uses 101–108.</summary>
    public static readonly int[] ValidationFaultSeeds = [51, 52, 53, 54, 55, 56, 57, 58];

    [Fact]
    public void SameSeedGivesTheSameRowsAndTheFaultShowsInTheTemperature()
    {
        var a = MachineGroupData.Run(42, TimeSpan.FromHours(8), withFault: true);
        var b = MachineGroupData.Run(42, TimeSpan.FromHours(8), withFault: true);
        Assert.Equal(a, b);
        Assert.Equal(8 * 120 * MachineGroupData.Machines, a.Count);
        var faulty = a.Where(r => r.Faulty).ToList();
        Assert.NotEmpty(faulty);
        var machine = faulty[0].Machine;
        var before = a.Where(r => r.Machine == machine && !r.Faulty && r.TorquePct > 0).TakeLast(20).Average(r => r.MotorTemperatureC);
        var after = faulty.Skip(90).Where(r => r.TorquePct > 0).Average(r => r.MotorTemperatureC);
        Assert.True(after > before + 8, $"bearing temperature {before:F1} → {after:F1} °C after the wear fault");
        Assert.DoesNotContain(MachineGroupData.Run(43, TimeSpan.FromHours(8), withFault: false), r => r.Faulty);
    }

    /// <summary>
    /// Writes the training set (healthy runs of <see cref="TrainingSeeds"/>) as CSV: to <c>$EDGETWIN_MV_EXPORT</c> when set
    /// (what <c>models/multivariate/train_mv_machine.py</c> reads; with <c>$EDGETWIN_MV_EXPORT_FAULTS</c> also the validation
    /// fault runs), else to a temporary file that is checked and deleted.
    /// </summary>
    [Fact]
    public void ExportTrainingSet()
    {
        var target = Environment.GetEnvironmentVariable("EDGETWIN_MV_EXPORT");
        var path = string.IsNullOrEmpty(target) ? Path.Combine(Path.GetTempPath(), $"mv-train-{Guid.NewGuid():N}.csv") : target;
        var seeds = string.IsNullOrEmpty(target) ? TrainingSeeds.Take(1) : TrainingSeeds;
        try
        {
            MachineGroupData.WriteCsv(path, seeds.SelectMany(s => MachineGroupData.Run(s, TrainingDuration, withFault: false)));
            if (Environment.GetEnvironmentVariable("EDGETWIN_MV_EXPORT_FAULTS") is { Length: > 0 } faults)
            {
                MachineGroupData.WriteCsv(faults, ValidationFaultSeeds.SelectMany(s => MachineGroupData.Run(s, TimeSpan.FromHours(12), withFault: true)));
            }

            var lines = File.ReadAllLines(path);
            Assert.Equal("run,machine,time_s,motor_torque,motor_temperature,inverter_temperature,wear,faulty", lines[0]);
            Assert.Equal(1 + (seeds.Count() * 2880 * MachineGroupData.Machines), lines.Length);
            Assert.All(lines.Skip(1), l => Assert.EndsWith(",0", l, StringComparison.Ordinal));
        }
        finally
        {
            if (string.IsNullOrEmpty(target))
            {
                File.Delete(path);
            }
        }
    }
}
