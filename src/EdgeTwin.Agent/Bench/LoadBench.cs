using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text.Json;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Scheduling;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Bench;

internal sealed record LoadBenchOptions(int SnmpDevices, int ModbusDevices, TimeSpan Interval, TimeSpan Duration, string ProfilesDir);

/// <summary>What one load run measured. CPU and RSS are the whole process (agent plus the in-process simulated devices).</summary>
internal sealed record LoadBenchResult(
    int SnmpDevices,
    int ModbusDevices,
    double IntervalSeconds,
    double DurationSeconds,
    long Samples,
    double SamplesPerSecond,
    double CpuMicrosecondsPerSample,
    double CpuPercentOfOneCore,
    long PeakRssBytes,
    long Polls,
    double PollLatenessP50Ms,
    double PollLatenessP99Ms,
    double PollLatenessMaxMs,
    long PollErrors,
    int DevicesWithSamples,
    IReadOnlyList<string> DevicesWithoutSamples)
{
    public string ToText() => string.Create(CultureInfo.InvariantCulture, $"""
        devices: {SnmpDevices} SNMP + {ModbusDevices} Modbus, interval {IntervalSeconds:0.###} s, measured {DurationSeconds:0.0} s
        samples: {Samples} ({DevicesWithSamples}/{SnmpDevices + ModbusDevices} devices delivered)
        samples per second: {SamplesPerSecond:0.0}
        CPU per sample: {CpuMicrosecondsPerSample:0.0} us (process CPU {CpuPercentOfOneCore:0.0} % of one core)
        peak RSS: {PeakRssBytes / (1024.0 * 1024.0):0.0} MiB
        poll jitter (lateness) p50 / p99 / max: {PollLatenessP50Ms:0.00} / {PollLatenessP99Ms:0.00} / {PollLatenessMaxMs:0.00} ms over {Polls} polls
        poll errors: {PollErrors}
        """);

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public string ToJson() => JsonSerializer.Serialize(this, Json);
}

/// <summary>
/// <c>edgetwin bench load</c>: serves a simulated site on loopback, runs the real agent against it in this process and
/// measures throughput, CPU per sample, peak RSS and poll lateness (the scheduler's <c>edgetwin.poll.lateness</c>).
/// </summary>
internal static class LoadBench
{
    public static async Task<LoadBenchResult> RunAsync(LoadBenchOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        await using var site = await BenchSite.StartAsync(options.SnmpDevices, options.ModbusDevices, options.Interval, options.ProfilesDir, cancellationToken).ConfigureAwait(false);

        var perSeries = new ConcurrentDictionary<SeriesId, long>();
        long samples = 0;
        var measuring = 0;
        var hostOptions = new AgentHostOptions
        {
            UseSystemd = false,
            StatusLogInterval = null,
            MinimumLogLevel = LogLevel.Warning,
            ShutdownTimeout = TimeSpan.FromSeconds(10),
        };
        hostOptions.ObserveSamples("bench-counter", (batch, _) =>
        {
            if (Volatile.Read(ref measuring) == 1)
            {
                Interlocked.Add(ref samples, batch.Length);
            }

            foreach (var s in batch.Span)
            {
                perSeries.AddOrUpdate(s.Series, 1, static (_, n) => n + 1);
            }

            return ValueTask.CompletedTask;
        });

        var lateness = new List<double>();
        long pollErrors = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == SchedulerMetrics.MeterName && instrument.Name is "edgetwin.poll.lateness" or "edgetwin.poll.errors")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((instrument, value, _, _) =>
        {
            if (Volatile.Read(ref measuring) == 1)
            {
                lock (lateness)
                {
                    lateness.Add(value);
                }
            }
        });
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            if (Volatile.Read(ref measuring) == 1)
            {
                Interlocked.Add(ref pollErrors, value);
            }
        });
        listener.Start();

        using var host = AgentHostBuilder.Build(site.Config, hostOptions);
        await host.StartAsync(cancellationToken).ConfigureAwait(false);
        TimeSpan cpu;
        TimeSpan elapsed;
        try
        {
            // Start measuring after one interval so connection set-up and first-poll planning are not counted.
            await Task.Delay(options.Interval, cancellationToken).ConfigureAwait(false);
            using var process = Process.GetCurrentProcess();
            process.Refresh();
            var cpuStart = process.TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            Volatile.Write(ref measuring, 1);
            await Task.Delay(options.Duration, cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref measuring, 0);
            elapsed = clock.Elapsed;
            process.Refresh();
            cpu = process.TotalProcessorTime - cpuStart;
        }
        finally
        {
            using var stopTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            await host.StopAsync(stopTimeout.Token).ConfigureAwait(false);
        }

        var registry = host.Services.GetRequiredService<SeriesRegistry>();
        var delivered = perSeries.Keys.Select(id => registry[id].DeviceId).ToHashSet(StringComparer.Ordinal);
        var missing = site.Config.Devices.Select(d => d.Id).Where(id => !delivered.Contains(id)).Order(StringComparer.Ordinal).ToList();
        double[] sorted;
        lock (lateness)
        {
            sorted = [.. lateness.Order()];
        }

        var total = Interlocked.Read(ref samples);
        return new LoadBenchResult(
            site.SnmpDevices,
            site.ModbusDevices,
            options.Interval.TotalSeconds,
            elapsed.TotalSeconds,
            total,
            total / elapsed.TotalSeconds,
            total > 0 ? cpu.TotalMicroseconds / total : double.NaN,
            100 * cpu.TotalSeconds / elapsed.TotalSeconds,
            PeakRss(),
            sorted.Length,
            Percentile(sorted, 0.50),
            Percentile(sorted, 0.99),
            sorted.Length > 0 ? sorted[^1] : double.NaN,
            Interlocked.Read(ref pollErrors),
            site.Config.Devices.Count - missing.Count,
            missing);
    }

    internal static double Percentile(double[] sorted, double p)
    {
        if (sorted.Length == 0)
        {
            return double.NaN;
        }

        // Nearest-rank percentile.
        var rank = (int)Math.Ceiling(p * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    /// <summary>VmHWM from /proc/self/status (the kernel's peak resident set), else the runtime's peak working set.</summary>
    private static long PeakRss()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    var kb = line["VmHWM:".Length..].Trim().Split(' ')[0];
                    return long.Parse(kb, CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        using var process = Process.GetCurrentProcess();
        return process.PeakWorkingSet64;
    }
}
