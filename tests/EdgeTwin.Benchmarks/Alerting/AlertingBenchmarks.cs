using System.Device.Gpio;
using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using EdgeTwin.Alerting;
using EdgeTwin.Alerting.Gpio;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;

// BenchmarkDotNet owns the lifetime: GlobalCleanup disposes what GlobalSetup made.
#pragma warning disable CA1001

namespace EdgeTwin.Benchmarks.Alerting;

/// <summary>
/// Sample arrival → sink delivery at 10,000 samples/s: batches of 100 samples every 10 ms over 1,000 series, one series
/// crossing its threshold (and the previous one clearing) per batch, through the real engine, lifecycle, LiteDB store,
/// dispatcher and a sink runner. The p50/p99 of (sample batch handed to the engine → sink called) is printed at the end.
/// <c>dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*AlertingLatency*' --inProcess</c>
/// </summary>
[MemoryDiagnoser]
public class AlertingLatencyBenchmarks
{
    private const int Series = 1000;
    private const int BatchSize = 100;
    private const int Batches = 100; // one second at 10,000 samples/s
    private readonly Sample[] _batch = new Sample[BatchSize];
    private readonly LatencySink _sink = new("latency");
    private SeriesId[] _ids = [];
    private AlertingService _service = null!;
    private string _dir = "";
    private int _round;
    private int _measuredFrom;

    [GlobalSetup]
    public void Setup()
    {
        _dir = Directory.CreateTempSubdirectory("edgetwin-bench-alerting-").FullName;
        var registry = new SeriesRegistry();
        _ids = [.. Enumerable.Range(0, Series).Select(i => registry.GetOrAdd(new SeriesDescriptor("rack-" + i, "inlet", "Cel", Role: "rack.inlet_temperature")))];
        var config = AlertsConfig.Empty with
        {
            FlapMaxChanges = 10_000, // the benchmark repeats the same changes on purpose
            GroupInterval = TimeSpan.Zero,
            GroupBy = ["device"],
            Rules = [new AlertRule { Name = "inlet-hot", Kind = RuleKind.Threshold, Match = new SeriesMatch(null, null, "rack.inlet_temperature", []), Limit = 30, Clear = 29 }],
        };
        _service = new AlertingService(config, new SiteIndex(null), registry, null, new AlertingOptions
        {
            StorePath = Path.Combine(_dir, "alerts.db"),
            ExtraSinks = [(_sink, new WebhookSinkConfig { Name = "latency", Url = new Uri("http://unused/"), QueueCapacity = 4096 })],
            RunConnectivityProbe = false,
        });
        _service.StartAsync(CancellationToken.None).GetAwaiter().GetResult();

        // One round to JIT every path (fire, clear, commit, checkpoint, dispatch); only later rounds are measured.
        TenThousandSamplesPerSecond().GetAwaiter().GetResult();
        _sink.Reset();
        _measuredFrom = _round;
    }

    [Benchmark(OperationsPerInvoke = Batches * BatchSize)]
    public async Task TenThousandSamplesPerSecond()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(10));
        var expected = _sink.Messages;
        for (var b = 0; b < Batches; b++)
        {
            var hot = (_round * Batches) + b;
            var t = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            for (var i = 0; i < BatchSize; i++)
            {
                // Series `hot % 1000` is hot in this batch; every other sample is normal (so the previous hot one clears).
                var id = _ids[((hot * BatchSize) + i) % Series];
                _batch[i] = new Sample(id, t, 22);
            }

            _batch[0] = new Sample(_ids[hot % Series], t, 35);
            _service.Process(_batch, Stopwatch.GetTimestamp());
            expected++;
            await timer.WaitForNextTickAsync();
        }

        _round++;
        await Percentiles.UntilAsync(() => _sink.Messages >= expected, TimeSpan.FromSeconds(30));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        // Each measured batch fires one series: at least one message per batch must carry its sample's time, or the
        // percentiles describe fewer changes than claimed (or none: "no values").
        var latencies = _sink.Latencies();
        var batches = (_round - _measuredFrom) * Batches;
        if (latencies.Count < batches)
        {
            throw new InvalidOperationException($"AlertingLatency: {latencies.Count} latencies measured over {batches} batches that each fired a series");
        }

        Console.WriteLine(Percentiles.Describe("// alerting sample→sink latency at 10,000 samples/s", latencies));
        Console.WriteLine(Percentiles.Describe("// alerting   of which sample→committed and queued for the sink", _sink.UntilCommitted()));
        _service.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Directory.Delete(_dir, true);
    }
}

/// <summary>
/// GPIO input edge → relay output through the simulated chip: the edge callback, the input rule, the lifecycle and its
/// LiteDB write, the dispatcher and the GPIO sink's runner. p50/p99 printed at the end.
/// <c>dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*AlertingGpio*' --inProcess</c>
/// </summary>
[MemoryDiagnoser]
public class AlertingGpioBenchmarks
{
    private const int Edges = 100;
    private const int InputPin = 5;
    private const int RelayPin = 17;
    private readonly List<double> _latenciesMs = [];
    private readonly SimulatedGpioDriver _chip = new();
    private AlertingService _service = null!;
    private string _dir = "";
    private long _driven;
    private TaskCompletionSource<PinValue> _relay = new(TaskCreationOptions.RunContinuationsAsynchronously);

    [GlobalSetup]
    public void Setup()
    {
        _dir = Directory.CreateTempSubdirectory("edgetwin-bench-gpio-").FullName;
        var config = AlertsConfig.Empty with
        {
            FlapMaxChanges = 10_000, // the benchmark repeats the same changes on purpose
            Sinks = [new GpioSinkConfig { Name = "panel", Chip = "simulated", Outputs = [new("relay", RelayPin, true, new Dictionary<EventSeverity, OutputPattern> { [EventSeverity.Critical] = OutputPattern.On }, false, false)] }],
            Rules = [new AlertRule { Name = "leak", Kind = RuleKind.Input, Pin = InputPin, ActiveLow = true, Debounce = TimeSpan.Zero, Severity = EventSeverity.Critical, Per = Scope.Site }],
        };
        _chip.OutputChanged += (pin, value) =>
        {
            if (pin == RelayPin)
            {
                lock (_latenciesMs)
                {
                    _latenciesMs.Add(Stopwatch.GetElapsedTime(Interlocked.Read(ref _driven)).TotalMilliseconds);
                }

                _relay.TrySetResult(value);
            }
        };
        _service = new AlertingService(config, new SiteIndex(null), new SeriesRegistry(), null, new AlertingOptions
        {
            StorePath = Path.Combine(_dir, "alerts.db"),
            OpenGpio = _ => new GpioController(_chip),
            RunConnectivityProbe = false,
        });
        _service.StartAsync(CancellationToken.None).GetAwaiter().GetResult();
    }

    [Benchmark(OperationsPerInvoke = Edges)]
    public async Task EdgeToRelay()
    {
        for (var i = 0; i < Edges; i++)
        {
            var level = i % 2 == 0 ? PinValue.Low : PinValue.High; // contact closes, then opens
            _relay = new TaskCompletionSource<PinValue>(TaskCreationOptions.RunContinuationsAsynchronously);
            Interlocked.Exchange(ref _driven, Stopwatch.GetTimestamp());
            _chip.Drive(InputPin, level);
            await _relay.Task.WaitAsync(TimeSpan.FromSeconds(10));
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        lock (_latenciesMs)
        {
            Console.WriteLine(Percentiles.Describe("// alerting GPIO edge→relay latency", _latenciesMs));
        }

        _service.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Directory.Delete(_dir, true);
    }
}

/// <summary>
/// A notification storm: 1,000 rules fire at once (and clear again) on 1,000 series of one room. Grouping must turn it into
/// a bounded number of messages, and memory must stay flat from one storm to the next. Messages per storm and the
/// managed heap after each storm are printed at the end.
/// <c>dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*AlertingStorm*' --inProcess</c>
/// </summary>
[MemoryDiagnoser]
public class AlertingStormBenchmarks
{
    private const int Rules = 1000;
    private readonly LatencySink _sink = new("storm");
    private readonly List<(long Messages, long Alerts, long Heap)> _storms = [];
    private Sample[] _hot = [];
    private Sample[] _cold = [];
    private AlertingService _service = null!;
    private string _dir = "";

    [GlobalSetup]
    public void Setup()
    {
        _dir = Directory.CreateTempSubdirectory("edgetwin-bench-storm-").FullName;
        var registry = new SeriesRegistry();
        var ids = Enumerable.Range(0, Rules).Select(i => registry.GetOrAdd(new SeriesDescriptor("rack-" + i, "inlet", "Cel"))).ToArray();
        var config = AlertsConfig.Empty with
        {
            FlapMaxChanges = 10_000, // the benchmark repeats the same changes on purpose
            GroupBy = ["room", "severity"],
            GroupInterval = TimeSpan.FromMilliseconds(500),
            TickInterval = TimeSpan.FromMilliseconds(50),
            Rules = [.. Enumerable.Range(0, Rules).Select(i => new AlertRule { Name = "rule-" + i, Kind = RuleKind.Threshold, Match = new SeriesMatch("rack-" + i, "inlet", null, []), Limit = 30, Clear = 29 })],
        };
        _service = new AlertingService(config, new SiteIndex(null), registry, null, new AlertingOptions
        {
            StorePath = Path.Combine(_dir, "alerts.db"),
            ExtraSinks = [(_sink, new WebhookSinkConfig { Name = "storm", Url = new Uri("http://unused/"), QueueCapacity = 64 })],
            RunConnectivityProbe = false,
        });
        _service.StartAsync(CancellationToken.None).GetAwaiter().GetResult();
        var t = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        _hot = [.. ids.Select(id => new Sample(id, t, 35))];
        _cold = [.. ids.Select(id => new Sample(id, t, 20))];
    }

    [Benchmark]
    public async Task ThousandRulesFireAndClear()
    {
        var messages = _sink.Messages;
        var alerts = _sink.Alerts;
        _service.Process(_hot, Stopwatch.GetTimestamp());
        await Percentiles.UntilAsync(() => _sink.Alerts - alerts >= Rules, TimeSpan.FromSeconds(60));
        _service.Process(_cold, Stopwatch.GetTimestamp());
        await Percentiles.UntilAsync(() => _sink.Alerts - alerts >= 2 * Rules, TimeSpan.FromSeconds(60));
        _storms.Add((_sink.Messages - messages, _sink.Alerts - alerts, GC.GetTotalMemory(forceFullCollection: true)));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var (messages, alerts, heap) in _storms)
        {
            Console.WriteLine(FormattableString.Invariant($"// alerting storm: {Rules} rules fired and cleared → {messages} messages carrying {alerts} alert changes; heap after {heap / 1024.0 / 1024.0:0.0} MiB"));
        }

        _service.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Directory.Delete(_dir, true);
    }
}

/// <summary>
/// Samples through stuck and missing rules (the after timers' hot path): 1,000 series, each watched by a stuck and a
/// missing rule, one batch of a sample per series per op, values alternating so every stuck timer restarts. A sample
/// checks whether the timer it stops ran long enough to have a saved document (two compares); it must allocate nothing.
/// <c>dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*AlertingTimedRules*' --inProcess --job short</c>
/// </summary>
[MemoryDiagnoser]
public class AlertingTimedRulesBenchmarks
{
    private const int Series = 1000;
    private Sample[] _a = [];
    private Sample[] _b = [];
    private AlertingService _service = null!;
    private string _dir = "";
    private bool _flip;

    [GlobalSetup]
    public void Setup()
    {
        _dir = Directory.CreateTempSubdirectory("edgetwin-bench-timed-").FullName;
        var registry = new SeriesRegistry();
        var ids = Enumerable.Range(0, Series).Select(i => registry.GetOrAdd(new SeriesDescriptor("rack-" + i, "inlet", "Cel"))).ToArray();
        var match = new SeriesMatch(null, "inlet", null, []);
        var config = AlertsConfig.Empty with
        {
            Rules =
            [
                new AlertRule { Name = "inlet-stuck", Kind = RuleKind.Stuck, Match = match, After = TimeSpan.FromMinutes(30), Tolerance = 0.01 },
                new AlertRule { Name = "inlet-missing", Kind = RuleKind.Missing, Match = match, After = TimeSpan.FromMinutes(10) },
            ],
        };
        _service = new AlertingService(config, new SiteIndex(null), registry, null, new AlertingOptions
        {
            StorePath = Path.Combine(_dir, "alerts.db"),
            RunConnectivityProbe = false,
        });
        _service.StartAsync(CancellationToken.None).GetAwaiter().GetResult();
        var t = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        _a = [.. ids.Select(id => new Sample(id, t, 21.5))];
        _b = [.. ids.Select(id => new Sample(id, t, 22.5))];
    }

    [Benchmark(OperationsPerInvoke = Series)]
    public void SamplePerSeries()
    {
        _flip = !_flip;
        _service.Process(_flip ? _a : _b);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _service.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Directory.Delete(_dir, true);
    }
}
