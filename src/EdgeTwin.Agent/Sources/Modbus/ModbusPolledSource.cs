using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Modbus.Planning;
using EdgeTwin.Modbus.Protocol;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Sources.Modbus;

/// <summary>
/// Reads one Modbus device per poll through its request plan. A point the device refuses (exception response)
/// becomes a DeviceError sample and the others are still reported; values outside the metric's min/max are
/// flagged OutOfRange; counters with <c>rate: true</c> report a per-second rate. When the device does not answer
/// at all the poll throws <see cref="DeviceException"/> and the scheduler marks it down and backs off.
/// </summary>
internal sealed partial class ModbusPolledSource : IPolledSource
{
    private readonly DeviceConfig _device;
    private readonly IReadOnlyList<ProfileMetric> _metrics;
    private readonly ModbusPollPlan _plan;
    private readonly BusLease _bus;
    private readonly ILogger _logger;
    private readonly SeriesId[] _series;
    private readonly double[] _lastCount;
    private readonly long[] _lastCountAt;
    private readonly Sample[] _samples;
    private int _failedPoints = -1;

    public ModbusPolledSource(DeviceConfig device, IReadOnlyList<ProfileMetric> metrics, ModbusPollPlan plan, BusLease bus, ILoggerFactory loggerFactory)
    {
        _device = device;
        _metrics = metrics;
        _plan = plan;
        _bus = bus;
        _logger = loggerFactory.CreateLogger<ModbusPolledSource>();
        _series = new SeriesId[metrics.Count];
        _lastCount = new double[metrics.Count];
        _lastCountAt = new long[metrics.Count];
        Array.Fill(_lastCountAt, -1);
        _samples = new Sample[metrics.Count];
    }

    public string DeviceId => _device.Id;

    private byte Unit => _device.UnitId ?? 1;

    public void RegisterSeries(SeriesRegistry registry)
    {
        for (int i = 0; i < _metrics.Count; i++)
        {
            var m = _metrics[i];
            string unit = m.Rate ? m.Unit + "/s" : m.Unit;
            _series[i] = registry.GetOrAdd(new SeriesDescriptor(_device.Id, m.Name, unit, m.Kind, m.Role));
        }
    }

    public async ValueTask PollAsync(ISampleSink sink, long acquiredAtUnixMs, CancellationToken cancellationToken)
    {
        ModbusPointReading[] readings;
        try
        {
            readings = await _plan.ReadAsync(_bus.Client, Unit, cancellationToken).ConfigureAwait(false);
        }
        catch (ModbusCommunicationException ex)
        {
            throw new DeviceException(_device.Id, $"unit {Unit} on {_bus.Bus}: {ex.Message}", ex);
        }

        int count = 0, failed = 0;
        Exception? firstError = null;
        for (int i = 0; i < readings.Length; i++)
        {
            var r = readings[i];
            var metric = _metrics[i];
            if (!r.Ok)
            {
                failed++;
                firstError ??= r.Error;
                _samples[count++] = new Sample(_series[i], acquiredAtUnixMs, double.NaN, SampleQuality.DeviceError);
                continue;
            }

            double value = metric.Convert(r.Value);
            if (metric.Rate)
            {
                // A rate needs two readings; a counter that went backwards was reset or wrapped: start again.
                long previousAt = _lastCountAt[i];
                double previous = _lastCount[i];
                _lastCount[i] = value;
                _lastCountAt[i] = acquiredAtUnixMs;
                if (previousAt < 0 || acquiredAtUnixMs <= previousAt || value < previous)
                {
                    continue;
                }

                value = (value - previous) * 1000.0 / (acquiredAtUnixMs - previousAt);
            }

            var quality = metric.IsOutOfRange(value) ? SampleQuality.OutOfRange : SampleQuality.Good;
            _samples[count++] = new Sample(_series[i], acquiredAtUnixMs, value, quality);
        }

        if (failed > 0 && failed == readings.Length)
        {
            throw new DeviceException(_device.Id, $"unit {Unit} on {_bus.Bus}: every register read failed: {firstError?.Message}", firstError);
        }

        if (failed != _failedPoints && failed > 0)
        {
            LogPointsFailed(_device.Id, failed, readings.Length, firstError?.Message ?? "");
        }

        _failedPoints = failed;
        if (count > 0)
        {
            await sink.WriteAsync(_samples.AsMemory(0, count), cancellationToken).ConfigureAwait(false);
        }
    }

    public ValueTask DisposeAsync() => _bus.DisposeAsync();

    [LoggerMessage(EventId = 100, Level = LogLevel.Warning, Message = "Modbus device {Device}: {Failed} of {Total} points unreadable: {Reason}")]
    private partial void LogPointsFailed(string device, int failed, int total, string reason);
}
