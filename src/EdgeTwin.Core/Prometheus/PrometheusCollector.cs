using System.Diagnostics.Metrics;
using System.Text;

namespace EdgeTwin.Core.Prometheus;

/// <summary>
/// Aggregates the agent's own instruments (every <see cref="Meter"/> whose name starts with <c>EdgeTwin</c>) through a
/// <see cref="MeterListener"/> and renders them in the Prometheus text format 0.0.4. Counters are cumulative sums,
/// up-down counters and gauges the current value, histograms Prometheus histograms with fixed buckets. Each metric keeps
/// at most <see cref="PrometheusCollectorOptions.MaxLabelSets"/> label sets; measurements of further sets are dropped and
/// counted in <c>edgetwin_metrics_label_sets_dropped_total{metric}</c>. A measurement of a known label set allocates
/// nothing (the listener's callbacks run on the agent's hot paths: every poll, every sample batch).
/// </summary>
public sealed class PrometheusCollector : IDisposable
{
    /// <summary>Buckets of a histogram in seconds: 0.5 ms (a Modbus TCP answer on a LAN) to a minute (a stuck poll).</summary>
    public static readonly IReadOnlyList<double> SecondsBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

    /// <summary>Buckets of a histogram of counts or sizes (alerts per message, bytes of a batch).</summary>
    public static readonly IReadOnlyList<double> CountBuckets = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10000, 100000];

    private readonly MeterListener _listener;
    private readonly PrometheusCollectorOptions _options;
    private readonly Lock _familiesGate = new();
    private readonly Dictionary<string, Family> _families = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _scrapeGate = new(1, 1);
    private long _callbackErrors;
    private long _conflicts;
    private bool _disposed;

    public PrometheusCollector(PrometheusCollectorOptions? options = null)
    {
        _options = options ?? new PrometheusCollectorOptions();
        if (_options.MaxLabelSets < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "MaxLabelSets must be at least 1");
        }

        _listener = new MeterListener { InstrumentPublished = OnInstrumentPublished };
        _listener.SetMeasurementEventCallback<long>(static (_, m, tags, state) => ((InstrumentState)state!).Record(m, tags));
        _listener.SetMeasurementEventCallback<int>(static (_, m, tags, state) => ((InstrumentState)state!).Record(m, tags));
        _listener.SetMeasurementEventCallback<short>(static (_, m, tags, state) => ((InstrumentState)state!).Record(m, tags));
        _listener.SetMeasurementEventCallback<byte>(static (_, m, tags, state) => ((InstrumentState)state!).Record(m, tags));
        _listener.SetMeasurementEventCallback<double>(static (_, m, tags, state) => ((InstrumentState)state!).Record(m, tags));
        _listener.SetMeasurementEventCallback<float>(static (_, m, tags, state) => ((InstrumentState)state!).Record(m, tags));
        _listener.SetMeasurementEventCallback<decimal>(static (_, m, tags, state) => ((InstrumentState)state!).Record((double)m, tags));
        _listener.Start();
    }

    /// <summary>Instruments skipped because another one of another kind already has their exposed name.</summary>
    public long Conflicts => Interlocked.Read(ref _conflicts);

    /// <summary>The families exposed so far, by name (for tests and <c>check</c>-style listings).</summary>
    public IReadOnlyList<string> MetricNames
    {
        get
        {
            lock (_familiesGate)
            {
                return [.. _families.Keys.Order(StringComparer.Ordinal)];
            }
        }
    }

    private void OnInstrumentPublished(Instrument instrument, MeterListener listener)
    {
        var meter = instrument.Meter;
        if (!_options.MeterFilter(meter) || (_options.Scope is { } scope && meter.Scope is { } own && !ReferenceEquals(scope, own)))
        {
            return;
        }

        var definition = instrument.GetType().IsGenericType ? instrument.GetType().GetGenericTypeDefinition() : null;
        var (kind, mode) = definition switch
        {
            _ when definition == typeof(Counter<>) => (FamilyKind.Counter, RecordMode.Add),
            _ when definition == typeof(ObservableCounter<>) => (FamilyKind.Counter, RecordMode.Observe),
            _ when definition == typeof(UpDownCounter<>) => (FamilyKind.Gauge, RecordMode.Add),
            _ when definition == typeof(ObservableUpDownCounter<>) => (FamilyKind.Gauge, RecordMode.Observe),
            _ when definition == typeof(Gauge<>) => (FamilyKind.Gauge, RecordMode.Set),
            _ when definition == typeof(ObservableGauge<>) => (FamilyKind.Gauge, RecordMode.Observe),
            _ when definition == typeof(Histogram<>) => (FamilyKind.Histogram, RecordMode.Histogram),
            _ => (FamilyKind.Gauge, RecordMode.None),
        };
        if (mode == RecordMode.None)
        {
            return;
        }

        var name = PrometheusNames.Metric(instrument.Name, instrument.Unit, kind == FamilyKind.Counter);
        var (suffix, scale) = PrometheusNames.Unit(instrument.Unit);
        Family family;
        lock (_familiesGate)
        {
            if (_families.TryGetValue(name, out var existing))
            {
                if (existing.Kind != kind || existing.Observable != (mode == RecordMode.Observe))
                {
                    // Two instruments of different kinds under one name would make the scrape invalid: keep the first.
                    Interlocked.Increment(ref _conflicts);
                    return;
                }

                family = existing;
            }
            else
            {
                var buckets = kind == FamilyKind.Histogram ? (suffix == "seconds" ? SecondsBuckets : CountBuckets) : [];
                family = new Family(name, string.IsNullOrWhiteSpace(instrument.Description) ? instrument.Name : instrument.Description, kind, mode == RecordMode.Observe, [.. buckets], _options.MaxLabelSets);
                _families.Add(name, family);
            }
        }

        listener.EnableMeasurementEvents(instrument, new InstrumentState(family, mode, scale));
    }

    /// <summary>Observes the observable instruments and renders every metric, sorted by name, in text format 0.0.4.</summary>
    public async ValueTask<string> ScrapeAsync(CancellationToken cancellationToken)
    {
        // One scrape at a time: the observable instruments report into shared series, marked by the scrape's generation.
        await _scrapeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return Scrape();
        }
        finally
        {
            _scrapeGate.Release();
        }
    }

    private string Scrape()
    {
        Family[] families;
        lock (_familiesGate)
        {
            families = [.. _families.Values.OrderBy(f => f.Name, StringComparer.Ordinal)];
        }

        foreach (var f in families)
        {
            f.BeginObservation();
        }

        try
        {
            _listener.RecordObservableInstruments();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // An observable's callback threw (a stage being disposed): the other metrics are still worth a scrape.
            Interlocked.Increment(ref _callbackErrors);
            _options.OnCallbackError?.Invoke(ex);
        }

        var sb = new StringBuilder(16 * 1024);
        var dropped = new List<(string Metric, long Count)>();
        foreach (var f in families)
        {
            f.WriteTo(sb);
            if (f.Dropped > 0)
            {
                dropped.Add((f.Name, f.Dropped));
            }
        }

        sb.Append("# HELP edgetwin_metrics_label_sets_dropped_total Measurements dropped because their metric already had metrics.prometheus.max_label_sets label sets, by metric.\n");
        sb.Append("# TYPE edgetwin_metrics_label_sets_dropped_total counter\n");
        foreach (var (metric, count) in dropped)
        {
            sb.Append("edgetwin_metrics_label_sets_dropped_total{metric=\"").Append(metric).Append("\"} ");
            PrometheusNames.AppendValue(sb, count);
            sb.Append('\n');
        }

        sb.Append("# HELP edgetwin_metrics_callback_errors_total Scrapes in which an observable instrument's callback threw.\n");
        sb.Append("# TYPE edgetwin_metrics_callback_errors_total counter\n");
        sb.Append("edgetwin_metrics_callback_errors_total ");
        PrometheusNames.AppendValue(sb, Interlocked.Read(ref _callbackErrors));
        sb.Append('\n');
        return sb.ToString();
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _listener.Dispose();
        _scrapeGate.Dispose();
    }

    private enum FamilyKind
    {
        Counter,
        Gauge,
        Histogram,
    }

    private enum RecordMode
    {
        None,
        Add,
        Set,
        Observe,
        Histogram,
    }

    private sealed class InstrumentState(Family family, RecordMode mode, double scale)
    {
        public void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags) => family.Record(mode, value * scale, tags);
    }

    private sealed class Series(KeyValuePair<string, object?>[] tags, string labels, int hash, int buckets)
    {
        public KeyValuePair<string, object?>[] Tags { get; } = tags;

        /// <summary>The rendered labels without braces (<c>a="1",b="2"</c>), sorted by name; empty without tags.</summary>
        public string Labels { get; } = labels;

        public int Hash { get; } = hash;

        public Series? Next { get; set; }

        public double Value { get; set; }

        public long[] Buckets { get; } = buckets == 0 ? [] : new long[buckets + 1];

        public double Sum { get; set; }

        public long Count { get; set; }

        public long Generation { get; set; }

        public bool Matches(int hash, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (hash != Hash || tags.Length != Tags.Length)
            {
                return false;
            }

            // Order-insensitive: a TagList built in another order is the same label set.
            foreach (var tag in tags)
            {
                var found = false;
                foreach (var own in Tags)
                {
                    if (string.Equals(own.Key, tag.Key, StringComparison.Ordinal) && Equals(own.Value, tag.Value))
                    {
                        found = true;
                        break;
                    }
                }

                if (!found)
                {
                    return false;
                }
            }

            return true;
        }
    }

    private sealed class Family(string name, string help, FamilyKind kind, bool observable, double[] bounds, int maxLabelSets)
    {
        private readonly Lock _gate = new();
        private readonly Dictionary<int, Series> _index = [];
        private readonly List<Series> _all = [];
        private long _generation;
        private long _dropped;

        public string Name { get; } = name;

        public FamilyKind Kind { get; } = kind;

        public bool Observable { get; } = observable;

        public long Dropped => Interlocked.Read(ref _dropped);

        public void BeginObservation()
        {
            if (Observable)
            {
                lock (_gate)
                {
                    _generation++;
                }
            }
        }

        public void Record(RecordMode mode, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var hash = 0;
            foreach (var tag in tags)
            {
                // Summed so that the order of the tags does not change the hash.
                hash += HashCode.Combine(tag.Key.GetHashCode(StringComparison.Ordinal), tag.Value?.GetHashCode() ?? 0);
            }

            lock (_gate)
            {
                var series = Find(hash, tags);
                if (series is null)
                {
                    if (_all.Count >= maxLabelSets)
                    {
                        _dropped++;
                        return;
                    }

                    series = Add(hash, tags);
                }

                switch (mode)
                {
                    case RecordMode.Add:
                        series.Value += value;
                        break;
                    case RecordMode.Set:
                        series.Value = value;
                        break;
                    case RecordMode.Observe:
                        // Several callbacks may report one label set (two stages under one meter name): their sum.
                        series.Value = series.Generation == _generation ? series.Value + value : value;
                        series.Generation = _generation;
                        break;
                    case RecordMode.Histogram:
                        var i = 0;
                        while (i < bounds.Length && value > bounds[i])
                        {
                            i++;
                        }

                        series.Buckets[i]++;
                        series.Sum += value;
                        series.Count++;
                        break;
                }
            }
        }

        private Series? Find(int hash, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            for (var s = _index.GetValueOrDefault(hash); s is not null; s = s.Next)
            {
                if (s.Matches(hash, tags))
                {
                    return s;
                }
            }

            return null;
        }

        private Series Add(int hash, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var labels = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var tag in tags)
            {
                var label = PrometheusNames.SanitizeLabel(tag.Key);
                if (label.StartsWith("__", StringComparison.Ordinal) || (Kind == FamilyKind.Histogram && label == "le"))
                {
                    // Reserved by Prometheus (__name__, the histogram's le).
                    label = "tag" + (label.StartsWith('_') ? "" : "_") + label;
                }

                labels.TryAdd(label, PrometheusNames.LabelText(tag.Value));
            }

            var sb = new StringBuilder();
            foreach (var (label, text) in labels)
            {
                if (sb.Length > 0)
                {
                    sb.Append(',');
                }

                sb.Append(label).Append("=\"");
                PrometheusNames.AppendLabelValue(sb, text);
                sb.Append('"');
            }

            var series = new Series(tags.ToArray(), sb.ToString(), hash, Kind == FamilyKind.Histogram ? bounds.Length : 0)
            {
                Next = _index.GetValueOrDefault(hash),
            };
            _index[hash] = series;
            _all.Add(series);
            return series;
        }

        public void WriteTo(StringBuilder sb)
        {
            sb.Append("# HELP ").Append(Name).Append(' ');
            PrometheusNames.AppendHelp(sb, help);
            sb.Append('\n');
            sb.Append("# TYPE ").Append(Name).Append(' ').Append(Kind switch
            {
                FamilyKind.Counter => "counter",
                FamilyKind.Histogram => "histogram",
                _ => "gauge",
            }).Append('\n');
            lock (_gate)
            {
                if (Observable && _all.RemoveAll(s => s.Generation != _generation) > 0)
                {
                    // A label set its callback no longer reports (a retired series, a removed stage) is gone, and its
                    // slot under the cap is free again.
                    _index.Clear();
                    foreach (var s in _all)
                    {
                        s.Next = _index.GetValueOrDefault(s.Hash);
                        _index[s.Hash] = s;
                    }
                }

                foreach (var s in _all.OrderBy(s => s.Labels, StringComparer.Ordinal))
                {
                    if (Kind == FamilyKind.Histogram)
                    {
                        WriteHistogram(sb, s);
                        continue;
                    }

                    sb.Append(Name);
                    AppendLabels(sb, s.Labels, null);
                    sb.Append(' ');
                    PrometheusNames.AppendValue(sb, s.Value);
                    sb.Append('\n');
                }
            }
        }

        private void WriteHistogram(StringBuilder sb, Series s)
        {
            long cumulative = 0;
            for (var i = 0; i <= bounds.Length; i++)
            {
                cumulative += s.Buckets[i];
                sb.Append(Name).Append("_bucket");
                AppendLabels(sb, s.Labels, i < bounds.Length ? bounds[i] : double.PositiveInfinity);
                sb.Append(' ');
                PrometheusNames.AppendValue(sb, cumulative);
                sb.Append('\n');
            }

            sb.Append(Name).Append("_sum");
            AppendLabels(sb, s.Labels, null);
            sb.Append(' ');
            PrometheusNames.AppendValue(sb, s.Sum);
            sb.Append('\n');
            sb.Append(Name).Append("_count");
            AppendLabels(sb, s.Labels, null);
            sb.Append(' ');
            PrometheusNames.AppendValue(sb, s.Count);
            sb.Append('\n');
        }

        private static void AppendLabels(StringBuilder sb, string labels, double? le)
        {
            if (labels.Length == 0 && le is null)
            {
                return;
            }

            sb.Append('{').Append(labels);
            if (le is { } bound)
            {
                if (labels.Length > 0)
                {
                    sb.Append(',');
                }

                sb.Append("le=\"");
                PrometheusNames.AppendValue(sb, bound);
                sb.Append('"');
            }

            sb.Append('}');
        }
    }
}

/// <summary>What <see cref="PrometheusCollector"/> listens to and how much it keeps.</summary>
public sealed class PrometheusCollectorOptions
{
    /// <summary>Label sets kept per metric (<c>metrics.prometheus.max_label_sets</c>).</summary>
    public int MaxLabelSets { get; init; } = MetricsConfig.DefaultMaxLabelSets;

    /// <summary>The meters listened to; by default every meter whose name starts with <c>EdgeTwin</c>.</summary>
    public Func<Meter, bool> MeterFilter { get; init; } = static m => m.Name.StartsWith("EdgeTwin", StringComparison.Ordinal);

    /// <summary>
    /// The agent's <see cref="IMeterFactory"/>: meters it created for another agent in the same process (tests, the demo)
    /// are left out. Meters created without a factory (the protocol libraries' static ones) are always included.
    /// </summary>
    public object? Scope { get; init; }

    /// <summary>Told when an observable instrument's callback throws during a scrape.</summary>
    public Action<Exception>? OnCallbackError { get; init; }
}
