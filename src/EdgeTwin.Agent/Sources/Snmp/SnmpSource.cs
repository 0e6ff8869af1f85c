using System.Net;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Snmp;
using EdgeTwin.Snmp.Client;
using EdgeTwin.Snmp.Transport;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Sources.Snmp;

/// <summary>
/// Reads one SNMP device per poll: one GET for every scalar of its profile (split automatically on tooBig), and a
/// GETBULK walk per table column (GETNEXT for v1), where the row index becomes a tag. Counters marked <c>rate</c>
/// become per-second rates (32/64-bit wrap handled; the first poll only primes them). A poll is bounded by the
/// device's timeout; requests go through the shared client, so a silent device only ever waits on its own timers.
/// </summary>
internal sealed partial class SnmpSource : IPolledSource
{
    private readonly DeviceConfig _device;
    private readonly SnmpPollPlan _plan;
    private readonly SnmpTargetTemplate _template;
    private readonly Func<SnmpClient> _client;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Dictionary<string, SeriesId> _tableSeries = new(StringComparer.Ordinal);
    private readonly Dictionary<SeriesId, (double Raw, long AtMs)> _lastCounter = [];
    private SeriesId[] _scalarSeries = [];
    private SeriesRegistry? _registry;
    private SnmpTarget? _target;

    public SnmpSource(DeviceConfig device, SnmpPollPlan plan, SnmpTargetTemplate template, Func<SnmpClient> client, ILoggerFactory loggerFactory, TimeProvider time)
    {
        _device = device;
        _plan = plan;
        _template = template;
        _client = client;
        _time = time;
        _logger = loggerFactory.CreateLogger<SnmpSource>();
    }

    public string DeviceId => _device.Id;

    public void RegisterSeries(SeriesRegistry registry)
    {
        _registry = registry;
        _scalarSeries = _plan.Scalars.Select(s => registry.GetOrAdd(Describe(s.Metric, null))).ToArray();
    }

    private SeriesDescriptor Describe(ProfileMetric m, IReadOnlyList<KeyValuePair<string, string>>? tags) =>
        // A rate is a level, not a monotonic count.
        new(DeviceId, m.Name, m.Unit, m.Kind == MetricKind.Counter && m.Rate ? MetricKind.Gauge : m.Kind, m.Role, tags);

    public async ValueTask PollAsync(ISampleSink sink, long acquiredAtUnixMs, CancellationToken cancellationToken)
    {
        var registry = _registry ?? throw new InvalidOperationException($"device '{DeviceId}': RegisterSeries was not called");
        using var budget = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        budget.CancelAfter(_device.Timeout);
        var samples = new List<Sample>(_plan.Scalars.Count + 16);
        try
        {
            var target = _target ??= _template.For(await ResolveAsync(budget.Token).ConfigureAwait(false));
            var client = _client();
            if (_plan.Scalars.Count > 0)
            {
                var vbs = await client.GetAsync(target, _plan.Scalars.Select(s => s.Oid).ToArray(), budget.Token).ConfigureAwait(false);
                for (var i = 0; i < vbs.Count && i < _plan.Scalars.Count; i++)
                {
                    Add(samples, _scalarSeries[i], _plan.Scalars[i].Metric, vbs[i].Value, acquiredAtUnixMs);
                }
            }
            foreach (var table in _plan.Tables)
            {
                await PollTableAsync(client, target, table, registry, samples, acquiredAtUnixMs, budget.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            await FlushAsync(sink, samples, cancellationToken).ConfigureAwait(false);
            throw new DeviceException(DeviceId, $"poll of {_device.Address} took longer than its timeout of {_device.Timeout.TotalSeconds:0.###} s");
        }
        catch (SnmpException ex)
        {
            await FlushAsync(sink, samples, cancellationToken).ConfigureAwait(false);
            LogPollFailed(_logger, DeviceId, ex.Message);
            throw new DeviceException(DeviceId, ex.Message, ex);
        }
        await FlushAsync(sink, samples, cancellationToken).ConfigureAwait(false);
    }

    private static ValueTask FlushAsync(ISampleSink sink, List<Sample> samples, CancellationToken ct) =>
        samples.Count == 0 ? ValueTask.CompletedTask : sink.WriteAsync(samples.ToArray(), ct);

    private async Task<IPEndPoint> ResolveAsync(CancellationToken ct)
    {
        var a = _device.Address;
        if (a.TryGetIPEndPoint() is { } ep)
        {
            return ep;
        }
        var text = a.Scheme == AddressScheme.Udp6 ? $"udp6:[{a.Host}]:{a.Port}" : $"udp:{a.Host}:{a.Port}";
        return await SnmpEndpoint.ResolveAsync(text, a.Port ?? 161, ct).ConfigureAwait(false);
    }

    private async Task PollTableAsync(SnmpClient client, SnmpTarget target, SnmpTablePlan plan, SeriesRegistry registry, List<Sample> samples, long at, CancellationToken ct)
    {
        var maxRows = Math.Max(1, plan.Table.MaxRows);
        HashSet<string>? keep = null;
        if (plan.Filter is { } filterOid)
        {
            keep = new HashSet<string>(StringComparer.Ordinal);
            foreach (var vb in await client.BulkWalkAsync(target, filterOid, ct, maxRows).ConfigureAwait(false))
            {
                if (vb.Value.TryGetNumber(out var v) && plan.Table.Filter!.Accepts((long)v))
                {
                    keep.Add(Index(filterOid, vb.Oid));
                }
            }
        }
        Dictionary<string, string>? labels = null;
        if (plan.Label is { } labelOid)
        {
            labels = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var vb in await client.BulkWalkAsync(target, labelOid, ct, maxRows).ConfigureAwait(false))
            {
                if (vb.Value.Type == SnmpType.OctetString)
                {
                    labels[Index(labelOid, vb.Oid)] = System.Text.Encoding.UTF8.GetString(vb.Value.AsBytes().Span).TrimEnd('\0');
                }
            }
        }
        foreach (var (columnOid, metric) in plan.Columns)
        {
            foreach (var vb in await client.BulkWalkAsync(target, columnOid, ct, maxRows).ConfigureAwait(false))
            {
                var index = Index(columnOid, vb.Oid);
                if (keep is not null && !keep.Contains(index))
                {
                    continue;
                }
                var key = metric.Name + "|" + index;
                if (!_tableSeries.TryGetValue(key, out var series))
                {
                    List<KeyValuePair<string, string>> tags = [new(plan.Table.IndexTag, index)];
                    if (labels is not null && labels.TryGetValue(index, out var label) && label.Length > 0)
                    {
                        tags.Add(new(plan.Table.LabelTag, label));
                    }
                    series = registry.GetOrAdd(Describe(metric, tags));
                    _tableSeries[key] = series;
                }
                Add(samples, series, metric, vb.Value, at);
            }
        }
    }

    private static string Index(Oid column, Oid instance) => string.Join('.', instance.Arcs[column.Length..].ToArray());

    private void Add(List<Sample> samples, SeriesId series, ProfileMetric metric, SnmpValue value, long at)
    {
        if (!value.TryGetNumber(out var raw))
        {
            // noSuchObject, a non-numeric string, ...: the device has no usable value for this metric.
            samples.Add(new Sample(series, at, double.NaN, SampleQuality.DeviceError));
            return;
        }
        double reported;
        if (metric.Kind == MetricKind.Counter && metric.Rate)
        {
            var previous = _lastCounter.TryGetValue(series, out var p) ? p : ((double, long)?)null;
            _lastCounter[series] = (raw, at);
            if (previous is not { } prev || at <= prev.Item2)
            {
                return; // first reading only primes the rate
            }
            var delta = raw - prev.Item1;
            if (delta < 0)
            {
                // Wrapped (RFC 2578 7.1.6): 32-bit unless the value type says 64. A reset looks the same; it shows as one odd rate.
                delta += value.Type == SnmpType.Counter64 ? Math.Pow(2, 64) : Math.Pow(2, 32);
            }
            reported = metric.Convert(delta) - metric.Offset; // offsets do not apply to differences
            reported /= (at - prev.Item2) / 1000.0;
        }
        else
        {
            reported = metric.Convert(raw);
        }
        var quality = metric.IsOutOfRange(reported) ? SampleQuality.OutOfRange : SampleQuality.Good;
        samples.Add(new Sample(series, at, reported, quality));
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask; // the shared client belongs to the factory

    [LoggerMessage(Level = LogLevel.Debug, Message = "SNMP poll of {DeviceId} failed: {Reason}")]
    private static partial void LogPollFailed(ILogger logger, string deviceId, string reason);
}
