using System.Globalization;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Sensors.Common;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Sensors.Thermal;

public sealed record CpuTemperatureOptions : SensorOptions
{
    public static readonly SeriesSpec DefaultTemperature = new("cpu_temperature", "Cel", Min: -40, Max: 125);

    /// <summary>The kernel's thermal class directory. Injectable so tests can lay out a fake tree.</summary>
    public string ThermalRoot { get; init; } = "/sys/class/thermal";

    /// <summary>Zone types to publish (<c>cpu-thermal</c> on a Raspberry Pi, <c>x86_pkg_temp</c> on Intel); empty = every zone.</summary>
    public IReadOnlyList<string> Zones { get; init; } = [];

    /// <summary>Zone directories to read (<c>thermal_zone0</c>), as <c>address: cpu:/sys/class/thermal/thermal_zone0/temp</c> names one; empty = all.</summary>
    public IReadOnlyList<string> ZoneDirectories { get; init; } = [];
}

/// <summary>
/// The gateway board's own temperatures from <c>/sys/class/thermal/thermal_zone*/temp</c> (millidegrees Celsius),
/// one series per zone tagged <c>zone=&lt;type&gt;</c>. A zone whose read fails (some drivers return EINVAL or
/// ENODATA while their device sleeps) is published as NaN with <see cref="SampleQuality.DeviceError"/>; the poll fails
/// only when every zone fails.
/// </summary>
public sealed class CpuTemperatureSource : IPolledSource
{
    private const string Driver = "cpu_temp";
    private readonly CpuTemperatureOptions _options;
    private readonly ILogger _logger;
    private readonly BlockingIo _io;
    private readonly ReadFailureLog _failureLog;
    private readonly IReadOnlyList<SensorOutput> _outputSpecs;
    private (string Dir, OutputSet Outputs)[] _zones = [];
    private bool _registered;

    public CpuTemperatureSource(CpuTemperatureOptions options, ILogger<CpuTemperatureSource>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _io = new BlockingIo(options.DeviceId, "thermal", options.ThermalRoot);
        _failureLog = new ReadFailureLog(_logger, options.DeviceId, Driver);
        _outputSpecs = options.Resolve(Driver, ["temperature"], [new("temperature", CpuTemperatureOptions.DefaultTemperature)], []);
    }

    public string DeviceId => _options.DeviceId;

    /// <summary>The zone types found at registration, in zone-number order.</summary>
    public IReadOnlyList<string> ZoneTypes { get; private set; } = [];

    public void RegisterSeries(SeriesRegistry registry)
    {
        var found = new List<(string Dir, string Type)>();
        if (Directory.Exists(_options.ThermalRoot))
        {
            foreach (var dir in Directory.EnumerateDirectories(_options.ThermalRoot, "thermal_zone*")
                         .OrderBy(ZoneNumber))
            {
                var typePath = Path.Combine(dir, "type");
                var type = File.Exists(typePath) ? File.ReadAllText(typePath).Trim() : Path.GetFileName(dir);
                if ((_options.Zones.Count == 0 || _options.Zones.Contains(type, StringComparer.Ordinal))
                    && (_options.ZoneDirectories.Count == 0 || _options.ZoneDirectories.Contains(Path.GetFileName(dir), StringComparer.Ordinal)))
                {
                    found.Add((dir, type));
                }
            }
        }

        // Two zones of the same type (e.g. two acpitz) keep apart by their directory name.
        var zones = new List<(string, OutputSet)>();
        var types = new List<string>();
        foreach (var (dir, type) in found)
        {
            var tag = found.Count(f => f.Type == type) > 1 ? $"{type}:{Path.GetFileName(dir)}" : type;
            var outputs = new OutputSet(DeviceId, _outputSpecs, [new("zone", tag)]);
            outputs.Register(registry);
            zones.Add((dir, outputs));
            types.Add(tag);
        }

        _zones = zones.ToArray();
        ZoneTypes = types;
        _registered = true;
    }

    public async ValueTask PollAsync(ISampleSink sink, long acquiredAtUnixMs, CancellationToken cancellationToken)
    {
        if (!_registered)
        {
            throw new InvalidOperationException("RegisterSeries must be called before PollAsync.");
        }

        try
        {
            if (_zones.Length == 0)
            {
                throw new SensorException(DeviceId, "thermal", _options.ThermalRoot,
                    _options.Zones.Count + _options.ZoneDirectories.Count == 0 ? "no thermal zones" : $"none of the zones {string.Join(", ", _options.Zones.Concat(_options.ZoneDirectories))} exist");
            }

            var (values, failures) = await _io.RunAsync(ReadZones, _options.Timeout, cancellationToken).ConfigureAwait(false);
            if (failures.Count == _zones.Length)
            {
                throw new SensorException(DeviceId, "thermal", _options.ThermalRoot, "every zone failed: " + string.Join("; ", failures));
            }

            // A zone that fails is published as NaN/DeviceError; logged once per outage like a failed read.
            if (failures.Count > 0)
            {
                _failureLog.Failed(string.Join("; ", failures));
            }
            else
            {
                _failureLog.Succeeded();
            }

            SensorInstruments.Read(DeviceId, Driver);
            for (var i = 0; i < _zones.Length; i++)
            {
                var celsius = values[i];
                await _zones[i].Outputs.WriteAsync(sink, acquiredAtUnixMs, _ => celsius, null, cancellationToken,
                    double.IsNaN(celsius) ? SampleQuality.DeviceError : null).ConfigureAwait(false);
            }
        }
        catch (SensorException ex)
        {
            SensorInstruments.Error(DeviceId, Driver);
            _failureLog.Failed(ex.Message);
            throw;
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private (double[] Values, List<string> Failures) ReadZones()
    {
        var values = new double[_zones.Length];
        var failures = new List<string>();
        for (var i = 0; i < _zones.Length; i++)
        {
            var dir = _zones[i].Dir;
            var path = Path.Combine(dir, "temp");
            try
            {
                var text = File.ReadAllText(path).Trim();
                if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var milli))
                {
                    throw new InvalidDataException($"'{text}' is not millidegrees");
                }

                values[i] = milli / 1000.0;
            }
            catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException)
            {
                failures.Add($"{path}: {ex.Message}");
                values[i] = double.NaN;
            }
        }

        return (values, failures);
    }

    private static int ZoneNumber(string dir) =>
        int.TryParse(Path.GetFileName(dir).AsSpan("thermal_zone".Length), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : int.MaxValue;
}
