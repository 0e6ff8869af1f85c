using System.Diagnostics.Metrics;
using System.Globalization;
using System.Threading.Channels;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Samples;
using EdgeTwin.Twin.Power;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Twin.Power;

/// <summary>
/// The live PUE of the site: on every good sample of the facility meter's total power (<c>site.power.facility_meter</c>,
/// role <c>meter.power_total</c>), facility power / IT power, the IT power being the sum of every UPS's
/// <c>ups.output_power</c> (category 1's measurement point) or, when not every UPS reads it, of every PDU's total
/// <c>pdu.power</c> (category 2's). Published as the series <c>{site}/pue</c> (role <c>site.pue</c>, unit 1, tags
/// <c>category</c> and <c>it_at</c>) back into the pipeline, so summaries, alert rules and the uplinks carry it as any
/// reading. A missing, stale or non-finite input, or an IT power below 0.1 kW, gives no sample; a ratio below 1 or above
/// 10 is published with quality out-of-range (a meter on the wrong feed, a unit read wrong), never as a good value.
/// </summary>
public sealed partial class PueStage : ISampleStage
{
    public const string Metric = "pue";
    public const string Role = PowerChainConfig.PueRole;

    /// <summary>An input older than this many of its device's poll intervals (at least <see cref="MinStaleAfter"/>) is stale.</summary>
    public const int StaleIntervals = 3;

    public static readonly TimeSpan MinStaleAfter = TimeSpan.FromSeconds(60);

    private const int NotInput = -1;

    private readonly SeriesRegistry _registry;
    private readonly ILogger _logger;
    private readonly string _meterDevice;
    private readonly Dictionary<string, int> _elementOfDevice = new(StringComparer.Ordinal);
    private readonly string _itRole;
    private readonly PueInput[] _it;
    private readonly string[] _itDevices;
    private readonly long _staleAfterMs;
    private readonly Channel<Sample> _out = Channel.CreateBounded<Sample>(new BoundedChannelOptions(64) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
    private readonly Counter<long> _published;
    private readonly Counter<long> _skipped;

    // Per series id: 0 not yet looked at, NotInput, or 1 + index into _slots.
    private int[] _slotOf = new int[256];
    private readonly List<Slot> _slots = [];
    private PueInput _facility;
    private PueOutcome _lastOutcome = PueOutcome.Ok;
    private bool _everComputed;

    public PueStage(SiteConfig config, SeriesRegistry registry, ILogger<PueStage> logger, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(logger);
        _registry = registry;
        _logger = logger;
        var meter = meterFactory?.Create("EdgeTwin.Twin.Pue") ?? new Meter("EdgeTwin.Twin.Pue");
        _published = meter.CreateCounter<long>("edgetwin.twin.pue.samples", description: "PUE samples published");
        _skipped = meter.CreateCounter<long>("edgetwin.twin.pue.skipped", description: "Facility meter readings that gave no PUE, by reason (missing, stale, no_it_load)");

        var power = config.Site.Power;
        _meterDevice = power.FacilityMeter ?? "";
        var devices = config.Devices.Where(d => d.Enabled).ToDictionary(d => d.Id, StringComparer.Ordinal);
        var it = power.PueItPower(id => devices.TryGetValue(id, out var d) ? config.ProfileOf(d) : null);
        (Basis, _itRole, _itDevices) = ((PueBasis)it.Category, it.Role ?? "", [.. it.Devices]);
        _it = new PueInput[_itDevices.Length];
        for (var i = 0; i < _itDevices.Length; i++)
        {
            _elementOfDevice[_itDevices[i]] = i;
        }

        var slowest = _itDevices.Append(_meterDevice).Select(id => devices.TryGetValue(id, out var d) ? d.Interval : TimeSpan.Zero).DefaultIfEmpty(TimeSpan.Zero).Max();
        StaleAfter = TimeSpan.FromTicks(Math.Max(MinStaleAfter.Ticks, slowest.Ticks * StaleIntervals));
        _staleAfterMs = (long)StaleAfter.TotalMilliseconds;

        if (power.FacilityMeter is null)
        {
            Basis = PueBasis.None;
            return; // no facility meter: nothing to compute, and nothing to say (most sites have none configured)
        }

        if (!devices.ContainsKey(_meterDevice) || Basis == PueBasis.None)
        {
            Log.NotComputable(_logger, _meterDevice, !devices.ContainsKey(_meterDevice)
                ? $"the facility meter '{_meterDevice}' is disabled"
                : $"the IT power needs every UPS's output ({it.UpsShort}) or every PDU's ({it.PduShort}); a partial sum would overstate the PUE");
            Basis = PueBasis.None;
            return;
        }

        Series = registry.GetOrAdd(new SeriesDescriptor(
            config.Site.Id,
            Metric,
            "1",
            MetricKind.Gauge,
            Role,
            [new("category", Basis == PueBasis.UpsOutput ? "1" : "2"), new("it_at", Basis == PueBasis.UpsOutput ? "ups_output" : "pdu_output")]));
        var basis = Basis == PueBasis.UpsOutput ? "UPS outputs (category 1)" : "PDU outputs (category 2)";
        var inputs = string.Join(", ", _itDevices);
        Log.Computing(_logger, config.Site.Id, _meterDevice, basis, inputs, StaleAfter.TotalSeconds);
    }

    public string Name => "pue";

    /// <summary>Where the IT power is measured; None: the stage computes nothing.</summary>
    public PueBasis Basis { get; }

    /// <summary>The published series, <see cref="SeriesId.None"/> when nothing is computed.</summary>
    public SeriesId Series { get; } = SeriesId.None;

    /// <summary>Age past which an input no longer counts.</summary>
    public TimeSpan StaleAfter { get; }

    /// <summary>Devices whose outputs make the IT power.</summary>
    public IReadOnlyList<string> ItDevices => _itDevices;

    public ValueTask ProcessAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken)
    {
        if (Series.IsNone)
        {
            return ValueTask.CompletedTask;
        }

        foreach (var s in samples.Span)
        {
            if (s.Series == Series || !s.IsGood)
            {
                continue; // a held (stale) or faulted reading must age out, not look fresh
            }

            var slot = SlotOf(s.Series);
            if (slot < 0)
            {
                continue;
            }

            var entry = _slots[slot];
            entry.Kw = s.Value * entry.ToKw;
            entry.AtMs = s.TimestampUnixMs;
            _slots[slot] = entry;
            if (entry.Element < 0)
            {
                Sum();
                Emit(s.TimestampUnixMs);
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Writes the PUE samples into <paramref name="sink"/> (the pipeline) until cancelled. Off the stage's task: the stage
    /// is itself fed by the pipeline, and waiting on it from there could wait on its own full queue.
    /// </summary>
    public async Task PublishAsync(ISampleSink sink, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sink);
        var one = new Sample[1];
        try
        {
            while (await _out.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (_out.Reader.TryRead(out var sample))
                {
                    one[0] = sample;
                    await sink.WriteAsync(one, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (InvalidOperationException)
        {
            // The pipeline is shutting down: the last PUE of the run is not worth holding the stop for.
        }
    }

    /// <summary>The result of the latest facility meter reading, for tests and status.</summary>
    public PueResult Latest { get; private set; }

    private void Emit(long atMs)
    {
        var result = Pue.Compute(_facility, _it, atMs, _staleAfterMs);
        Latest = result;
        if (result.Outcome is PueOutcome.Ok or PueOutcome.Implausible)
        {
            _out.Writer.TryWrite(new Sample(Series, atMs, result.Value, result.Outcome == PueOutcome.Ok ? SampleQuality.Good : SampleQuality.OutOfRange));
            _published.Add(1);
            if (result.Outcome == PueOutcome.Implausible && _lastOutcome != PueOutcome.Implausible)
            {
                Log.Implausible(_logger, result.Value, result.FacilityKw, result.ItKw, _meterDevice);
            }
            else if (result.Outcome == PueOutcome.Ok && _lastOutcome != PueOutcome.Ok && _everComputed)
            {
                Log.Resumed(_logger, result.Value);
            }

            _everComputed = true;
        }
        else
        {
            _skipped.Add(1, new KeyValuePair<string, object?>("reason", result.Outcome switch { PueOutcome.Stale => "stale", PueOutcome.NoItLoad => "no_it_load", _ => "missing" }));
            if (result.Outcome != _lastOutcome && _everComputed)
            {
                Log.Stopped(_logger, Why(result.Outcome, atMs));
            }
        }

        _lastOutcome = result.Outcome;
    }

    /// <summary>Names the inputs behind a stop (only on a change of outcome, off the per-sample path).</summary>
    private string Why(PueOutcome outcome, long nowMs)
    {
        var named = new List<string>();
        for (var i = 0; i < _it.Length; i++)
        {
            if (Describe(_it[i], nowMs) is { } what)
            {
                named.Add(_itDevices[i] + " " + what);
            }
        }

        return outcome switch
        {
            PueOutcome.NoItLoad => string.Create(CultureInfo.InvariantCulture, $"IT power {Latest.ItKw:0.###} kW is below {Pue.MinItKw} kW"),
            _ => string.Join(", ", named.Prepend(Describe(_facility, nowMs) is { } m ? _meterDevice + " " + m : null).OfType<string>()) is { Length: > 0 } list ? list : "an input reads negative or not a number",
        };

        string? Describe(PueInput input, long now) =>
            input.AtMs == 0 || !double.IsFinite(input.Kw) || input.Kw < 0 ? "has no usable reading"
            : now - input.AtMs > _staleAfterMs ? string.Create(CultureInfo.InvariantCulture, $"last read {(now - input.AtMs) / 1000} s ago (limit {StaleAfter.TotalSeconds:0} s)")
            : null;
    }

    /// <summary>Sums each input (the meter, every IT element) over its series' latest readings; its age is its oldest row's.</summary>
    private void Sum()
    {
        _facility = new PueInput(0, long.MaxValue);
        for (var i = 0; i < _it.Length; i++)
        {
            _it[i] = new PueInput(0, long.MaxValue);
        }

        foreach (var s in _slots)
        {
            ref var target = ref s.Element < 0 ? ref _facility : ref _it[s.Element];
            target = new PueInput(target.Kw + s.Kw, Math.Min(target.AtMs, s.AtMs));
        }

        // An element none of whose series has reported is missing (time 0), not 0 kW.
        _facility = Seen(_facility);
        for (var i = 0; i < _it.Length; i++)
        {
            _it[i] = Seen(_it[i]);
        }

        static PueInput Seen(PueInput input) => input.AtMs == long.MaxValue ? default : input;
    }

    private int SlotOf(SeriesId id)
    {
        var index = id.Value;
        if (index >= _slotOf.Length)
        {
            Array.Resize(ref _slotOf, Math.Max(index + 1, _slotOf.Length * 2));
        }

        var known = _slotOf[index];
        if (known != 0)
        {
            return known < 0 ? NotInput : known - 1;
        }

        var d = _registry[id];
        var element = d.DeviceId == _meterDevice && d.Role == PowerChainConfig.FacilityPowerRole ? -1
            : d.Role == _itRole && (_itRole != "pdu.power" || d.Tags is not { Count: > 0 }) && _elementOfDevice.TryGetValue(d.DeviceId, out var e) ? e
            : int.MinValue;
        if (element == int.MinValue || ToKw(d.Unit) is not { } toKw)
        {
            _slotOf[index] = NotInput;
            return NotInput;
        }

        _slots.Add(new Slot(element, toKw));
        _slotOf[index] = _slots.Count;
        return _slots.Count - 1;
    }

    private static double? ToKw(string unit) => unit switch { "W" => 0.001, "kW" => 1, "MW" => 1000, _ => null };

    private struct Slot(int element, double toKw)
    {
        public readonly int Element = element;
        public readonly double ToKw = toKw;
        public double Kw = double.NaN;
        public long AtMs;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1900, Level = LogLevel.Information, Message = "PUE of site {Site}: facility power from {Meter}, IT power at the {Basis}: {Devices}; an input older than {StaleS} s gives no PUE")]
        public static partial void Computing(ILogger logger, string site, string meter, string basis, string devices, double staleS);

        [LoggerMessage(EventId = 1901, Level = LogLevel.Warning, Message = "PUE not computed although site.power.facility_meter is '{Meter}': {Why}")]
        public static partial void NotComputable(ILogger logger, string meter, string why);

        [LoggerMessage(EventId = 1902, Level = LogLevel.Warning, Message = "PUE no longer published: {Why}")]
        public static partial void Stopped(ILogger logger, string why);

        [LoggerMessage(EventId = 1903, Level = LogLevel.Information, Message = "PUE published again: {Pue:0.00}")]
        public static partial void Resumed(ILogger logger, double pue);

        [LoggerMessage(EventId = 1904, Level = LogLevel.Warning, Message = "PUE {Pue:0.00} is implausible (facility {FacilityKw:0.0} kW, IT {ItKw:0.0} kW): is {Meter} the site's utility meter, and every unit right? Published with quality out_of_range")]
        public static partial void Implausible(ILogger logger, double pue, double facilityKw, double itKw, string meter);
    }
}
