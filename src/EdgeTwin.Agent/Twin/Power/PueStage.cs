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
/// A facility (or room pacing) meter that stops answering computes nothing, so the samples of the other devices, which
/// keep coming, tell the stage that its series stopped: logged and counted once, as any other stop.
/// Each room with <c>power.infrastructure_meters</c> gets its partial PUE <c>{site}/ppue{room=…}</c> (role
/// <c>room.ppue</c>) by the same machinery: (its meters' total + its PDUs' power) / its PDUs' power.
/// </summary>
public sealed partial class PueStage : ISampleStage
{
    public const string Metric = "pue";
    public const string Role = PowerChainConfig.PueRole;

    /// <summary>Metric of a room's partial PUE series (<c>{site}/ppue{room=…}</c>).</summary>
    public const string PartialMetric = "ppue";

    public const string PartialRole = RoomConfig.PartialPueRole;

    /// <summary>An input older than this many of its device's poll intervals (at least <see cref="MinStaleAfter"/>) is stale.</summary>
    public const int StaleIntervals = 3;

    public static readonly TimeSpan MinStaleAfter = TimeSpan.FromSeconds(60);

    private readonly Channel<Sample> _out;
    private readonly Counter<long> _published;
    private readonly Counter<long> _skipped;
    private readonly PueZone _site;
    private readonly PueZone[] _zones;

    public PueStage(SiteConfig config, SeriesRegistry registry, ILogger<PueStage> logger, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(logger);
        var meter = meterFactory?.Create("EdgeTwin.Twin.Pue") ?? new Meter("EdgeTwin.Twin.Pue");
        _published = meter.CreateCounter<long>("edgetwin.twin.pue.samples", description: "PUE and partial PUE samples published");
        _skipped = meter.CreateCounter<long>("edgetwin.twin.pue.skipped", description: "Facility or room meter readings that gave no PUE, by reason (missing, stale, no_it_load)");

        var power = config.Site.Power;
        var devices = config.Devices.Where(d => d.Enabled).ToDictionary(d => d.Id, StringComparer.Ordinal);
        Func<string, Core.Profiles.DeviceProfile?> profileOf = id => devices.TryGetValue(id, out var d) ? config.ProfileOf(d) : null;
        TimeSpan IntervalOf(string id) => devices.TryGetValue(id, out var d) ? d.Interval : TimeSpan.Zero;
        var context = new ZoneContext(registry, logger, _published, _skipped, this);

        var it = power.PueItPower(profileOf);
        var meterDevice = power.FacilityMeter ?? "";
        _site = new PueZone(context, room: null, [meterDevice], it.Role ?? "", [.. it.Devices], IntervalOf);
        Basis = (PueBasis)it.Category;
        if (power.FacilityMeter is null)
        {
            Basis = PueBasis.None; // no facility meter: nothing to compute, and nothing to say (most sites have none configured)
        }
        else if (!devices.ContainsKey(meterDevice) || Basis == PueBasis.None)
        {
            Log.NotComputable(logger, meterDevice, !devices.ContainsKey(meterDevice)
                ? $"the facility meter '{meterDevice}' is disabled"
                : $"the IT power needs every UPS's output ({it.UpsShort}) or every PDU's ({it.PduShort}); a partial sum would overstate the PUE");
            Basis = PueBasis.None;
        }
        else
        {
            _site.Publish(registry.GetOrAdd(new SeriesDescriptor(
                config.Site.Id,
                Metric,
                "1",
                MetricKind.Gauge,
                Role,
                [new("category", Basis == PueBasis.UpsOutput ? "1" : "2"), new("it_at", Basis == PueBasis.UpsOutput ? "ups_output" : "pdu_output")])));
            var basis = Basis == PueBasis.UpsOutput ? "UPS outputs (category 1)" : "PDU outputs (category 2)";
            var inputs = string.Join(", ", _site.ItDevices);
            Log.Computing(logger, config.Site.Id, meterDevice, basis, inputs, _site.StaleAfter.TotalSeconds);
        }

        var zones = new List<PueZone>();
        if (!_site.Series.IsNone)
        {
            zones.Add(_site);
        }

        var rooms = new List<PueZone>();
        foreach (var room in config.Site.Rooms.Where(r => r.InfrastructureMeters is { Count: > 0 }))
        {
            var meters = string.Join(", ", room.InfrastructureMeters!);
            var roomIt = config.Site.RoomItPower(room, profileOf);
            var disabled = room.InfrastructureMeters!.FirstOrDefault(m => !devices.ContainsKey(m));
            if (disabled is not null || roomIt.Devices is null)
            {
                Log.RoomNotComputable(logger, room.Id, meters, disabled is not null
                    ? $"the infrastructure meter '{disabled}' is disabled"
                    : $"the IT power needs every PDU feeding its racks to read pdu.power ({roomIt.Short}); a partial sum would overstate the pPUE");
                continue;
            }

            var zone = new PueZone(context, room.Id, [.. room.InfrastructureMeters!], "pdu.power", [.. roomIt.Devices], IntervalOf);
            zone.Publish(registry.GetOrAdd(new SeriesDescriptor(config.Site.Id, PartialMetric, "1", MetricKind.Gauge, PartialRole, [new("room", room.Id)])));
            var pdus = string.Join(", ", zone.ItDevices);
            Log.RoomComputing(logger, room.Id, meters, pdus, zone.StaleAfter.TotalSeconds);
            zones.Add(zone);
            rooms.Add(zone);
        }

        _zones = [.. zones];
        Rooms = rooms;
        // Room for a few readings of every series published, so a burst of meter readings does not push out another's.
        _out = Channel.CreateBounded<Sample>(new BoundedChannelOptions(64 * Math.Max(1, _zones.Length)) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
    }

    public string Name => "pue";

    /// <summary>Where the site PUE's IT power is measured; None: no site PUE is computed.</summary>
    public PueBasis Basis { get; }

    /// <summary>The site PUE series, <see cref="SeriesId.None"/> when it is not computed.</summary>
    public SeriesId Series => _site.Series;

    /// <summary>Age past which an input of the site PUE no longer counts.</summary>
    public TimeSpan StaleAfter => _site.StaleAfter;

    /// <summary>Devices whose outputs make the site's IT power.</summary>
    public IReadOnlyList<string> ItDevices => _site.ItDevices;

    /// <summary>The result of the latest facility meter reading, for tests and status.</summary>
    public PueResult Latest => _site.Latest;

    /// <summary>The partial PUE of every room that gets one, in file order.</summary>
    public IReadOnlyList<PueZone> Rooms { get; }

    /// <summary>True when the stage publishes anything (the site PUE or a room's pPUE).</summary>
    public bool Publishes => _zones.Length > 0;

    public ValueTask ProcessAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken)
    {
        if (_zones.Length == 0)
        {
            return ValueTask.CompletedTask;
        }

        // The stage's clock is the newest sample time it has seen, held and faulted readings included: it goes on while
        // the pacing meter is silent, and stays on the samples' clock, as the ages Pue.Compute checks do.
        var nowMs = 0L;
        foreach (var s in samples.Span)
        {
            nowMs = Math.Max(nowMs, s.TimestampUnixMs);
            if (!s.IsGood)
            {
                continue; // a held (stale) or faulted reading must age out, not look fresh
            }

            foreach (var zone in _zones)
            {
                zone.Take(s);
            }
        }

        foreach (var zone in _zones)
        {
            zone.CheckPacing(nowMs);
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

    internal sealed record ZoneContext(SeriesRegistry Registry, ILogger Logger, Counter<long> Published, Counter<long> Skipped, PueStage Stage)
    {
        public void Write(Sample sample) => Stage._out.Writer.TryWrite(sample);
    }

    /// <summary>
    /// One PUE: the site's (facility meter over the whole IT chain) or a room's partial PUE (its infrastructure meters plus
    /// its PDUs, over its PDUs). Its inputs are summed from their series' latest good readings; a reading of its first
    /// meter computes and publishes it.
    /// </summary>
    public sealed class PueZone
    {
        private const int NotInput = -1;

        private readonly ZoneContext _context;
        private readonly string[] _meters;
        private readonly Dictionary<string, int> _meterOfDevice = new(StringComparer.Ordinal);
        private readonly Dictionary<string, int> _elementOfDevice = new(StringComparer.Ordinal);
        private readonly string _itRole;
        private readonly string[] _itDevices;
        private readonly PueInput[] _meter;
        private readonly PueInput[] _it;
        private readonly long _staleAfterMs;

        // Per series id: 0 not yet looked at, NotInput, or 1 + index into _slots.
        private int[] _slotOf = new int[256];
        private readonly List<Slot> _slots = [];
        private PueOutcome _lastOutcome = PueOutcome.Ok;
        private bool _everComputed;
        private long _pacingAtMs; // the pacing meter's latest good reading, 0 before the first

        internal PueZone(ZoneContext context, string? room, string[] meters, string itRole, string[] itDevices, Func<string, TimeSpan> intervalOf)
        {
            _context = context;
            Room = room;
            _meters = meters;
            _itRole = itRole;
            _itDevices = itDevices;
            _meter = new PueInput[meters.Length];
            _it = new PueInput[itDevices.Length];
            for (var i = 0; i < meters.Length; i++)
            {
                _meterOfDevice.TryAdd(meters[i], i);
            }

            for (var i = 0; i < itDevices.Length; i++)
            {
                _elementOfDevice[itDevices[i]] = i;
            }

            var slowest = itDevices.Concat(meters).Select(intervalOf).DefaultIfEmpty(TimeSpan.Zero).Max();
            StaleAfter = TimeSpan.FromTicks(Math.Max(MinStaleAfter.Ticks, slowest.Ticks * StaleIntervals));
            _staleAfterMs = (long)StaleAfter.TotalMilliseconds;
        }

        /// <summary>The room of a partial PUE; null for the site's PUE.</summary>
        public string? Room { get; }

        /// <summary>The published series, <see cref="SeriesId.None"/> when nothing is computed.</summary>
        public SeriesId Series { get; private set; } = SeriesId.None;

        /// <summary>Age past which an input no longer counts.</summary>
        public TimeSpan StaleAfter { get; }

        /// <summary>Devices whose outputs make the IT power.</summary>
        public IReadOnlyList<string> ItDevices => _itDevices;

        /// <summary>The meters of the facility (site) or of the room's infrastructure; the first one's readings pace the series.</summary>
        public IReadOnlyList<string> Meters => _meters;

        /// <summary>
        /// The result of the latest reading of the pacing meter, or stale once that meter has had no good reading for
        /// longer than <see cref="StaleAfter"/>; for tests and status.
        /// </summary>
        public PueResult Latest { get; private set; }

        internal void Publish(SeriesId series) => Series = series;

        internal void Take(in Sample s)
        {
            if (s.Series == Series)
            {
                return;
            }

            var slot = SlotOf(s.Series);
            if (slot < 0)
            {
                return;
            }

            var entry = _slots[slot];
            entry.Kw = s.Value * entry.ToKw;
            entry.AtMs = s.TimestampUnixMs;
            _slots[slot] = entry;
            if (entry.Element == -1)
            {
                _pacingAtMs = s.TimestampUnixMs;
                Sum();
                Emit(s.TimestampUnixMs);
            }
        }

        private void Emit(long atMs)
        {
            var result = Room is null
                ? Pue.Compute(_meter[0], _it, atMs, _staleAfterMs)
                : Pue.ComputePartial(_meter, _it, atMs, _staleAfterMs);
            Latest = result;
            var logger = _context.Logger;
            if (result.Outcome is PueOutcome.Ok or PueOutcome.Implausible)
            {
                _context.Write(new Sample(Series, atMs, result.Value, result.Outcome == PueOutcome.Ok ? SampleQuality.Good : SampleQuality.OutOfRange));
                CountPublished();
                if (result.Outcome == PueOutcome.Implausible && _lastOutcome != PueOutcome.Implausible)
                {
                    if (Room is null)
                    {
                        Log.Implausible(logger, result.Value, result.FacilityKw, result.ItKw, result.Value < 1
                            ? $"the facility meter {_meters[0]} reads less than the IT chain delivers: is a UPS on battery (the meter does not see the load it carries), or is {_meters[0]} not the site's utility meter, or a unit wrong?"
                            : $"is {_meters[0]} the site's utility meter, and every unit right?");
                    }
                    else
                    {
                        var meters = string.Join(", ", _meters);
                        Log.RoomImplausible(logger, result.Value, Room, result.FacilityKw, result.ItKw, meters);
                    }
                }
                else if (result.Outcome == PueOutcome.Ok && _lastOutcome != PueOutcome.Ok && _everComputed)
                {
                    if (Room is null)
                    {
                        Log.Resumed(logger, result.Value);
                    }
                    else
                    {
                        Log.RoomResumed(logger, Room, result.Value);
                    }
                }

                _everComputed = true;
            }
            else
            {
                CountSkipped(result.Outcome switch { PueOutcome.Stale => "stale", PueOutcome.NoItLoad => "no_it_load", _ => "missing" });
                if (result.Outcome != _lastOutcome && _everComputed)
                {
                    if (Room is null)
                    {
                        Log.Stopped(logger, Why(result.Outcome, atMs));
                    }
                    else
                    {
                        Log.RoomStopped(logger, Room, Why(result.Outcome, atMs));
                    }
                }
            }

            _lastOutcome = result.Outcome;
        }

        /// <summary>
        /// Stops the series when its pacing meter has had no good reading for longer than <see cref="StaleAfter"/> at
        /// <paramref name="nowMs"/>: nothing else would, since only that meter's readings compute. Once per episode (the
        /// outcome turns stale until the meter reads again); before the first PUE nothing is said, as in <see cref="Emit"/>.
        /// </summary>
        internal void CheckPacing(long nowMs)
        {
            if (!_everComputed || _lastOutcome == PueOutcome.Stale || nowMs - _pacingAtMs <= _staleAfterMs)
            {
                return;
            }

            Latest = new PueResult(PueOutcome.Stale, double.NaN, double.NaN, double.NaN);
            _lastOutcome = PueOutcome.Stale;
            CountSkipped("stale");
            var at = DateTimeOffset.FromUnixTimeMilliseconds(_pacingAtMs);
            var why = string.Create(CultureInfo.InvariantCulture, $"stale: {(Room is null ? "facility" : "infrastructure")} meter {_meters[0]}'s last good reading {at:yyyy-MM-ddTHH:mm:ss.fffZ} ({(nowMs - _pacingAtMs) / 1000} s ago, limit {StaleAfter.TotalSeconds:0} s)");
            if (Room is null)
            {
                Log.Stopped(_context.Logger, why);
            }
            else
            {
                Log.RoomStopped(_context.Logger, Room, why);
            }
        }

        // A room's samples carry its id (tag room), so a hall's pPUE is not counted as the site PUE's; the site's stay untagged
        // as they were before rooms had one.
        private void CountPublished()
        {
            if (Room is null)
            {
                _context.Published.Add(1);
            }
            else
            {
                _context.Published.Add(1, new KeyValuePair<string, object?>("room", Room));
            }
        }

        private void CountSkipped(string reason)
        {
            if (Room is null)
            {
                _context.Skipped.Add(1, new KeyValuePair<string, object?>("reason", reason));
            }
            else
            {
                _context.Skipped.Add(1, new KeyValuePair<string, object?>("reason", reason), new KeyValuePair<string, object?>("room", Room));
            }
        }

        /// <summary>Names the inputs behind a stop (only on a change of outcome, off the per-sample path).</summary>
        private string Why(PueOutcome outcome, long nowMs)
        {
            var named = new List<string>();
            for (var i = 0; i < _meter.Length; i++)
            {
                if (Describe(_meter[i], nowMs) is { } what)
                {
                    named.Add(_meters[i] + " " + what);
                }
            }

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
                _ => named.Count > 0 ? string.Join(", ", named) : "an input reads negative or not a number",
            };

            string? Describe(PueInput input, long now) =>
                input.AtMs == 0 || !double.IsFinite(input.Kw) || input.Kw < 0 ? "has no usable reading"
                : now - input.AtMs > _staleAfterMs ? string.Create(CultureInfo.InvariantCulture, $"last read {(now - input.AtMs) / 1000} s ago (limit {StaleAfter.TotalSeconds:0} s)")
                : null;
        }

        /// <summary>Sums each input (every meter, every IT element) over its series' latest readings; its age is its oldest row's.</summary>
        private void Sum()
        {
            Array.Fill(_meter, new PueInput(0, long.MaxValue));
            Array.Fill(_it, new PueInput(0, long.MaxValue));
            foreach (var s in _slots)
            {
                ref var target = ref s.Element < 0 ? ref _meter[~s.Element] : ref _it[s.Element];
                target = new PueInput(target.Kw + s.Kw, Math.Min(target.AtMs, s.AtMs));
            }

            // An input none of whose series has reported is missing (time 0), not 0 kW.
            Seen(_meter);
            Seen(_it);

            static void Seen(PueInput[] inputs)
            {
                for (var i = 0; i < inputs.Length; i++)
                {
                    inputs[i] = inputs[i].AtMs == long.MaxValue ? default : inputs[i];
                }
            }
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

            // Meters are elements ~0, ~1, …; IT elements 0, 1, …
            var d = _context.Registry[id];
            var element = d.Role == PowerChainConfig.FacilityPowerRole && _meterOfDevice.TryGetValue(d.DeviceId, out var m) ? ~m
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

        // Below 1 the usual cause is no misconfiguration: with the mains gone a UPS carries its load from its batteries, which
        // the utility meter does not see (the simulator's utility failure gave 0.85 and asked whether the meter was the right one).
        [LoggerMessage(EventId = 1904, Level = LogLevel.Warning, Message = "PUE {Pue:0.00} is implausible (facility {FacilityKw:0.0} kW, IT {ItKw:0.0} kW): {Causes}; published with quality out_of_range")]
        public static partial void Implausible(ILogger logger, double pue, double facilityKw, double itKw, string causes);

        [LoggerMessage(EventId = 1905, Level = LogLevel.Information, Message = "Partial PUE of room {Room}: infrastructure power from {Meters}, IT power at the PDU outputs: {Devices}; an input older than {StaleS} s gives no pPUE")]
        public static partial void RoomComputing(ILogger logger, string room, string meters, string devices, double staleS);

        [LoggerMessage(EventId = 1906, Level = LogLevel.Warning, Message = "Partial PUE of room {Room} not computed although its power.infrastructure_meters are {Meters}: {Why}")]
        public static partial void RoomNotComputable(ILogger logger, string room, string meters, string why);

        [LoggerMessage(EventId = 1907, Level = LogLevel.Warning, Message = "Partial PUE of room {Room} no longer published: {Why}")]
        public static partial void RoomStopped(ILogger logger, string room, string why);

        [LoggerMessage(EventId = 1908, Level = LogLevel.Information, Message = "Partial PUE of room {Room} published again: {Pue:0.00}")]
        public static partial void RoomResumed(ILogger logger, string room, double pue);

        [LoggerMessage(EventId = 1909, Level = LogLevel.Warning, Message = "Partial PUE {Pue:0.00} of room {Room} is implausible (room {TotalKw:0.0} kW, IT {ItKw:0.0} kW): do {Meters} read only this room's non-IT loads, and is every unit right? Published with quality out_of_range")]
        public static partial void RoomImplausible(ILogger logger, double pue, string room, double totalKw, double itKw, string meters);
    }
}
