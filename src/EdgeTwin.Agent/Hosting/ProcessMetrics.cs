using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Reflection;

namespace EdgeTwin.Agent.Hosting;

/// <summary>
/// What an SRE expects of any exporter (meter <c>EdgeTwin.Process</c>): the build (<c>edgetwin_build_info{version}</c> 1),
/// the process' start time and uptime, CPU time, working set, GC heap and collections, thread-pool threads. Observed
/// only when something listens (the Prometheus endpoint's scrape).
/// </summary>
public sealed class ProcessMetrics
{
    public const string MeterName = "EdgeTwin.Process";

    public ProcessMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        var meter = meterFactory.Create(MeterName);
        var version = Version;
        var start = Process.GetCurrentProcess().StartTime.ToUniversalTime();
        var startSeconds = new DateTimeOffset(start).ToUnixTimeMilliseconds() / 1000.0;
        var versionTag = new KeyValuePair<string, object?>("version", version);
        meter.CreateObservableGauge("edgetwin.build_info", () => new Measurement<int>(1, versionTag), description: "The running build: 1, with its version as a label.");
        meter.CreateObservableGauge("edgetwin.process.start_time", () => startSeconds, "s", "When the process started, in seconds since the Unix epoch.");
        meter.CreateObservableGauge("edgetwin.process.uptime", () => (DateTime.UtcNow - start).TotalSeconds, "s", "Time since the process started.");
        meter.CreateObservableCounter("edgetwin.process.cpu_time", () => Environment.CpuUsage.TotalTime.TotalSeconds, "s", "CPU time the process used (user and system).");
        meter.CreateObservableGauge("edgetwin.process.working_set", () => Environment.WorkingSet, "By", "Resident memory of the process.");
        meter.CreateObservableGauge("edgetwin.process.gc_heap", () => GC.GetTotalMemory(forceFullCollection: false), "By", "Bytes the .NET GC heap holds (objects alive and not yet collected).");
        meter.CreateObservableGauge("edgetwin.process.gc_committed", () => GC.GetGCMemoryInfo().TotalCommittedBytes, "By", "Memory the .NET GC has committed.");
        meter.CreateObservableCounter("edgetwin.process.gc_collections", ObserveCollections, "{collection}", "Garbage collections, by generation.");
        meter.CreateObservableGauge("edgetwin.process.threadpool_threads", () => ThreadPool.ThreadCount, "{thread}", "Thread-pool threads.");
    }

    /// <summary>The agent's version as the release stamps it (informational version without the commit suffix).</summary>
    public static string Version { get; } =
        typeof(ProcessMetrics).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(ProcessMetrics).Assembly.GetName().Version?.ToString()
        ?? "unknown";

    private static IEnumerable<Measurement<long>> ObserveCollections()
    {
        for (var generation = 0; generation <= GC.MaxGeneration; generation++)
        {
            yield return new Measurement<long>(GC.CollectionCount(generation), new KeyValuePair<string, object?>("generation", "gen" + generation));
        }
    }
}
