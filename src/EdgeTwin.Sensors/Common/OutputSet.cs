using EdgeTwin.Core.Samples;

namespace EdgeTwin.Sensors.Common;

/// <summary>The registered outputs of one source and the reusable sample buffer they are written through.</summary>
internal sealed class OutputSet
{
    private readonly string _deviceId;
    private readonly IReadOnlyList<KeyValuePair<string, string>>? _tags;
    private readonly SeriesId[] _ids;
    private readonly Sample[] _buffer;

    public OutputSet(string deviceId, IReadOnlyList<SensorOutput> outputs, IReadOnlyList<KeyValuePair<string, string>>? tags = null)
    {
        _deviceId = deviceId;
        _tags = tags;
        Outputs = outputs;
        _ids = Enumerable.Repeat(SeriesId.None, outputs.Count).ToArray();
        _buffer = new Sample[outputs.Count];
    }

    public IReadOnlyList<SensorOutput> Outputs { get; }

    public bool IsRegistered => _ids.Length == 0 || !_ids[0].IsNone;

    public bool Has(string channel) => Outputs.Any(o => o.Channel == channel);

    public void Register(SeriesRegistry registry)
    {
        for (var i = 0; i < _ids.Length; i++)
        {
            _ids[i] = registry.GetOrAdd(Outputs[i].Series.Describe(_deviceId, _tags));
        }
    }

    public void EnsureRegistered()
    {
        if (!IsRegistered)
        {
            throw new InvalidOperationException("RegisterSeries must be called before the source runs.");
        }
    }

    /// <summary>
    /// Fills the buffer from the channel values (rate outputs from <paramref name="rateOf"/>) and writes it.
    /// <paramref name="qualityOverride"/> replaces the graded quality (e.g. DeviceError for a power-on value).
    /// </summary>
    public ValueTask WriteAsync(
        ISampleSink sink,
        long stamp,
        Func<string, double> valueOf,
        Func<string, double>? rateOf,
        CancellationToken cancellationToken,
        SampleQuality? qualityOverride = null)
    {
        for (var i = 0; i < _buffer.Length; i++)
        {
            var o = Outputs[i];
            var raw = o.Rate ? (rateOf ?? throw new InvalidOperationException($"channel '{o.Channel}' has no rate"))(o.Channel) : valueOf(o.Channel);
            var value = o.Series.Convert(raw);
            _buffer[i] = new Sample(_ids[i], stamp, value, qualityOverride ?? o.Series.Grade(value));
        }

        return sink.WriteAsync(_buffer, cancellationToken);
    }
}
