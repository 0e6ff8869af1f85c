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
/// walk per table with all its columns in each GETBULK (each column walked alone with GETNEXT for v1), where the row
/// index becomes a tag; a column OID an earlier table walked in the same poll is taken from that walk, not asked again. Counters marked <c>rate</c>
/// become per-second rates (32/64-bit wrap handled; the first poll only primes them). A poll is bounded by the
/// device's timeout; requests go through the shared client, so a silent device only ever waits on its own timers.
/// What the device cannot supply (a missing scalar, a text where a number belongs, an empty or cut column) is logged
/// as a warning when it changes, not every poll, and the reason is kept for <c>edgetwin poll</c>.
/// </summary>
internal sealed partial class SnmpSource : IPolledSource, ISampleReasons
{
    private readonly DeviceConfig _device;
    private readonly SnmpPollPlan _plan;
    private readonly SnmpTargetTemplate _template;
    private readonly Func<SnmpClient> _client;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Dictionary<string, TableRowSeries> _tableSeries = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TableRowSeries>.AlternateLookup<ReadOnlySpan<char>> _tableSeriesByKey;
    // Rows refused at the device's max_series, by the same key, while their table keeps listing them; with the registry's
    // key of their series for its cap warning.
    private readonly Dictionary<string, RefusedRow> _refused = new(StringComparer.Ordinal);
    private readonly Dictionary<string, RefusedRow>.AlternateLookup<ReadOnlySpan<char>> _refusedByKey;
    private char[] _keyBuffer = new char[64];
    private DeviceSeriesBudget? _budget;
    private readonly List<string> _vanished = [];
    // Polls that walked every table to the end; a row is retired only after missing from RowRetentionMinPolls of them.
    private long _completePolls;
    // Per rate series: the last raw reading, its time, and the raw increase per second it gave (NaN before the first).
    private readonly Dictionary<SeriesId, (double Raw, long AtMs, double RawRate)> _lastCounter = [];

    /// <summary>
    /// A Counter32 that went back is a wrap only when the wrapped increase is within this many times the larger of the
    /// series' last increase per interval and the new reading (what it counted since the wrap or the clear, at least
    /// one); before a rate is known, within half the range. Else the counters were cleared.
    /// </summary>
    internal const double WrapRateFactor = 8;
    private SeriesId[] _scalarSeries = [];
    // The profile's scalars, then sysUpTime.0 when the profile has rates (see UptimeWentBack).
    private readonly Oid[] _scalarOids;
    private readonly bool _readsUptime;
    private uint? _lastUptime;
    private readonly SnmpErrorStatus[] _scalarErrors;
    // Per scalar: why the last read gave no number (None when it did), the value type for a non-numeric answer, and the
    // reason text, built only when the first two change so a device that keeps failing the same way costs nothing.
    private readonly Unreadable[] _scalarState;
    private readonly SnmpType[] _scalarType;
    private readonly string?[] _scalarReason;
    private readonly ChangeLogThrottle _scalarLog;

    /// <summary>How often a device whose unreadable scalars keep changing is logged again.</summary>
    internal static readonly TimeSpan ScalarLogEvery = TimeSpan.FromMinutes(5);
    // Per table, per column: everything about it, the profile's (OIDs, fallback, row columns, step text) and this poll's
    // (its walk, where from, its row count, cut and note). One object per column, not one array per setting.
    private readonly SnmpColumn[][] _columns;
    // What the poll is doing, to name it when the poll's budget runs out (set from strings built once, at construction).
    private readonly string _scalarStep;
    private readonly string?[] _filterSteps;
    private readonly string?[] _labelSteps;
    private string _step = "";
    private readonly TableWalk[] _tableWalks;
    // Per table: this poll's rows of each of its walk's roots, and where they come from (its own GETBULKs or an earlier
    // table's walk of the same OID: the CMC III's four tables all read cmcIIIVarTable, walked once a poll).
    private readonly IReadOnlyList<VarBind>[][] _walkedRoots;
    private readonly SharedWalk[] _sharedWalks;
    // This poll's walks of one OID each (SNMPv1, or columns walked alone), by table, for the later parts and tables that read it.
    private readonly List<(int Table, Oid Oid, int Cap, IReadOnlyList<VarBind> Rows)> _aloneWalks = [];
    // Per table: its fallback columns' walk (null without any).
    private readonly FallbackWalk?[] _fallbackWalks;
    // Rows skipped for a unit other than the column's, by key, so each is warned once (EventId 212).
    private readonly HashSet<string> _unitSkipped = new(StringComparer.Ordinal);
    private readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> _unitSkippedByKey;
    // Per table: its utilization (column indices), or null.
    private readonly UtilizationPlan?[] _utilization;
    // Interfaces newly found without a speed in this table walk, logged once together (EventId 207).
    private int _speedUnknownCount;
    private System.Text.StringBuilder? _speedUnknownNames;

    /// <summary>
    /// Walk the columns of a table together (one GETBULK per round trip for all of them, v2c/v3); false walks each alone,
    /// as SNMPv1 does. For tests that compare both against the same agent.
    /// </summary>
    internal bool WalkColumnsTogether { get; set; } = true;
    private SeriesRegistry? _registry;
    private SnmpTarget? _target;
    // The device's remembered table rows (null: none kept, as `edgetwin poll` and sources built without a state
    // directory); written after a complete poll that changed the set of rows with a series (or brought back a row the
    // file has absent), and while a row is absent at most every RowsAbsentWriteEvery and at a clean stop, so its absent
    // time outlives a restart; not on every poll, and never again for a table whose rows all answer.
    private readonly string? _rowsPath;
    private bool _rowsChanged;
    private bool _rowsWriteFailed;
    private int _absentRows; // rows missing from the last complete poll (counted while looking for rows to retire)
    private long _rowsWrittenAt; // when the file was last written or tried (monotonic timestamp)
    private int _polling; // 1 while PollAsync runs

    /// <summary>
    /// How often the rows file is rewritten while a row is absent, to keep its absent time (after a complete poll):
    /// row_retention / 100 within 1 to 15 minutes. A kill loses at most that much of the credit (the row is retired that
    /// much later, never sooner), and a large table on an SD card is not rewritten every minute for the day (default
    /// row_retention) a removed row takes to retire.
    /// </summary>
    internal static TimeSpan RowsAbsentWriteEvery(TimeSpan rowRetention)
    {
        var every = rowRetention / 100;
        return every < TimeSpan.FromMinutes(1) ? TimeSpan.FromMinutes(1) : every > TimeSpan.FromMinutes(15) ? TimeSpan.FromMinutes(15) : every;
    }

    public SnmpSource(DeviceConfig device, SnmpPollPlan plan, SnmpTargetTemplate template, Func<SnmpClient> client, ILoggerFactory loggerFactory, TimeProvider time, string? stateDirectory = null)
    {
        _rowsPath = stateDirectory is null ? null : SnmpRowsFile.PathOf(stateDirectory, device.Id);
        _device = device;
        _plan = plan;
        _template = template;
        _client = client;
        _time = time;
        _logger = loggerFactory.CreateLogger<SnmpSource>();
        _tableSeriesByKey = _tableSeries.GetAlternateLookup<ReadOnlySpan<char>>();
        _refusedByKey = _refused.GetAlternateLookup<ReadOnlySpan<char>>();
        _readsUptime = plan.Scalars.Any(s => s.Metric.Kind == MetricKind.Counter && s.Metric.Rate)
            || plan.Tables.Any(t => t.Columns.Any(c => c.Metric.Kind == MetricKind.Counter && c.Metric.Rate));
        _scalarOids = plan.Scalars.Select(s => s.Oid).Concat(_readsUptime ? [SysUpTime] : []).ToArray();
        _scalarErrors = new SnmpErrorStatus[_scalarOids.Length];
        _scalarState = new Unreadable[plan.Scalars.Count];
        _scalarType = new SnmpType[plan.Scalars.Count];
        _scalarReason = new string?[plan.Scalars.Count];
        _scalarLog = new ChangeLogThrottle(time, ScalarLogEvery);
        _columns = plan.Tables.Select(t => t.Columns.Select(c => new SnmpColumn(t.Table, c.Oid, c.Metric)).ToArray()).ToArray();
        _scalarStep = $"the GET of {plan.Scalars.Count} scalar(s)" + (_readsUptime ? " and sysUpTime" : "");
        _filterSteps = plan.Tables.Select(t => t.Filter is { } f ? $"the walk of table {t.Table.Name} filter ({f.ToNumericString()})" : null).ToArray();
        _labelSteps = plan.Tables.Select(t => t.Label is { } l ? $"the walk of table {t.Table.Name} labels ({l.ToNumericString()})" : null).ToArray();
        _tableWalks = plan.Tables.Select((t, i) => TableWalk.Of(t, _columns[i], TableStep(t, _columns[i]))).ToArray();
        _walkedRoots = _tableWalks.Select(w => new IReadOnlyList<VarBind>[w.Roots.Length]).ToArray();
        _sharedWalks = SharedWalk.Of(_tableWalks);
        _fallbackWalks = _columns.Select(FallbackWalk.Of).ToArray();
        _utilization = plan.Tables.Select(UtilizationPlan.Of).ToArray();
        _unitSkippedByKey = _unitSkipped.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public string DeviceId => _device.Id;

    // A table of one column is still named as its column walk; more name every part (built once).
    private static string TableStep(SnmpTablePlan t, SnmpColumn[] columns) =>
        columns.Length == 1 && t.Filter is null && t.Label is null ? columns[0].Step
        : $"the walk of table {t.Table.Name} (columns {string.Join(", ", t.Columns.Select(c => $"{c.Metric.Name} ({c.Oid.ToNumericString()})"))}"
            + (t.Filter is { } f ? $", filter ({f.ToNumericString()})" : "")
            + (t.Label is { } l ? $", labels ({l.ToNumericString()})" : "") + ")";

    /// <summary>Refused rows remembered now (for tests: bounded by the rows the tables listed in the last complete poll).</summary>
    internal int RefusedRowCount => _refused.Count;

    public void RegisterSeries(SeriesRegistry registry)
    {
        _registry = registry;
        _budget = registry.Budget(DeviceId);
        _scalarSeries = _plan.Scalars.Select(s => registry.GetOrAdd(Describe(s.Metric, null))).ToArray();
        _rowsWrittenAt = _time.GetTimestamp(); // an absent row's time is first written RowsAbsentWriteEvery after the start
        if (_rowsPath is not null)
        {
            RestoreRows(registry, _rowsPath);
        }
    }

    /// <summary>Remembered rows now holding a series (for tests).</summary>
    internal int TableRowCount => _tableSeries.Count;

    /// <summary>
    /// Registers the rows the device had at the last run, before any poll: their rules bind (a probe row that vanished
    /// while the agent was down is reported <c>missing</c> after the rule's <c>after</c>), and one that does not come
    /// back is retired by row_retention, crediting the time earlier runs already saw it absent: it is registered as last
    /// seen that long ago on this run's monotonic clock. Before, every start registered it as seen now, and a gateway
    /// restarted more often than row_retention never retired a probe removed for good. The downtime itself does not
    /// count (no wall clock: a gateway's clock at boot may be anything, and a row retired at once on a wrong clock would
    /// go unwatched again), and it still needs RowRetentionMinPolls complete polls of this run without it. Newest first,
    /// so at max_series the oldest are dropped. A file that cannot be read is named in one warning and not used.
    /// </summary>
    private void RestoreRows(SeriesRegistry registry, string path)
    {
        var (rows, problem) = SnmpRowsFile.Read(path, DeviceId);
        if (problem is not null)
        {
            LogRowsFileUnreadable(_logger, DeviceId, path, problem);
            _rowsChanged = true; // replaced by the rows of this run after its first complete poll
            return;
        }
        if (rows.Count == 0)
        {
            return;
        }
        var columns = new Dictionary<string, (ProfileMetric Metric, SnmpTablePlan Table)>(StringComparer.Ordinal);
        foreach (var table in _plan.Tables)
        {
            foreach (var column in table.Columns)
            {
                columns.TryAdd(column.Metric.Name, (column.Metric, table));
            }
        }
        var budget = _budget ??= registry.Budget(DeviceId);
        var now = _time.GetTimestamp();
        int restored = 0, unknown = 0, capped = 0, absent = 0;
        var longestAbsent = TimeSpan.Zero;
        foreach (var row in rows)
        {
            if (!columns.TryGetValue(row.Metric, out var column)
                || !row.Tags.Any(t => t.Key == column.Table.Table.IndexTag)
                || row.Tags.Any(t => t.Key != column.Table.Table.IndexTag && t.Key != column.Table.Table.LabelTag))
            {
                unknown++; // the profile no longer reads it as it did
                continue;
            }
            if (_tableSeries.ContainsKey(row.Key))
            {
                continue;
            }
            // Counted against max_series like a row seen now; past it the rest (the older) are dropped, not refused
            // one by one with the registry's cap warning and dropped-sample count: they carry no sample.
            if (budget.AtCap || !registry.TryGetOrAdd(Describe(column.Metric, row.Tags), out var series))
            {
                capped++;
                continue;
            }
            // Credited up to row_retention: more retires no sooner, and keeps the timestamp far from overflow.
            var credit = row.Absent < _device.RowRetention ? row.Absent : _device.RowRetention;
            _tableSeries[row.Key] = new TableRowSeries(series)
            {
                LastSeenPoll = 0,
                LastSeenAt = now - (long)((Int128)credit.Ticks * _time.TimestampFrequency / TimeSpan.TicksPerSecond), // exact, never rounded up
                AbsentInFile = row.Absent > TimeSpan.Zero,
            };
            restored++;
            if (row.Absent > TimeSpan.Zero)
            {
                absent++;
                longestAbsent = row.Absent > longestAbsent ? row.Absent : longestAbsent;
            }
        }
        _rowsChanged = unknown + capped > 0;
        var retention = Durations.Format(_device.RowRetention);
        var longest = Durations.Approximate(longestAbsent);
        LogRowsRemembered(_logger, DeviceId, restored, path, retention, absent, longest, unknown, capped);
    }

    /// <summary>
    /// Missing from the last complete poll, or remembered and not seen yet in this run (a row seen in a poll cut short
    /// after it is not: it answered).
    /// </summary>
    private bool Absent(TableRowSeries row) => row.LastSeenPoll < _completePolls || row.LastSeenPoll == 0;

    /// <summary>
    /// Writes the device's rows with how long each has been absent (now − last seen, on the monotonic clock; 0 for a row
    /// the last complete poll listed). A failure is logged once until a write works.
    /// </summary>
    private async ValueTask SaveRowsAsync(SeriesRegistry registry, string path, CancellationToken cancellationToken)
    {
        _rowsChanged = false;
        var now = _time.GetTimestamp();
        _rowsWrittenAt = now;
        var rows = _tableSeries.OrderByDescending(kv => kv.Value.LastSeenAt).Take(SnmpRowsFile.MaxRows)
            .Select(kv => (Series: kv.Value, Row: new SnmpRowsFile.Row(kv.Key, registry[kv.Value.Id].Tags ?? [],
                Absent(kv.Value) ? _time.GetElapsedTime(kv.Value.LastSeenAt, now) : TimeSpan.Zero)))
            .ToList();
        try
        {
            await SnmpRowsFile.WriteAsync(path, DeviceId, rows.Select(r => r.Row), cancellationToken).ConfigureAwait(false);
            foreach (var (series, row) in rows)
            {
                series.AbsentInFile = row.Absent >= TimeSpan.FromMilliseconds(1); // what the file says: written in whole ms
            }
            if (_rowsWriteFailed)
            {
                _rowsWriteFailed = false;
                LogRowsWritten(_logger, DeviceId, path);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            if (!_rowsWriteFailed)
            {
                _rowsWriteFailed = true;
                LogRowsWriteFailed(_logger, DeviceId, path, ex.Message);
            }
        }
    }

    private SeriesDescriptor Describe(ProfileMetric m, IReadOnlyList<KeyValuePair<string, string>>? tags) =>
        // A rate is a level, not a monotonic count.
        // Its unit is per second (By → By/s), as the Modbus source and device-profiles/README.md have it: an IF-MIB
        // octet rate said "By", and a rule or a dashboard could not tell bytes from bytes per second.
        new(DeviceId, m.Name, m.Kind == MetricKind.Counter && m.Rate ? m.Unit + "/s" : m.Unit, m.Kind == MetricKind.Counter && m.Rate ? MetricKind.Gauge : m.Kind, m.Role, tags);

    public async ValueTask PollAsync(ISampleSink sink, long acquiredAtUnixMs, CancellationToken cancellationToken)
    {
        Volatile.Write(ref _polling, 1);
        try
        {
            await PollOnceAsync(sink, acquiredAtUnixMs, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Volatile.Write(ref _polling, 0);
        }
    }

    private async ValueTask PollOnceAsync(ISampleSink sink, long acquiredAtUnixMs, CancellationToken cancellationToken)
    {
        var registry = _registry ?? throw new InvalidOperationException($"device '{DeviceId}': RegisterSeries was not called");
        using var budget = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        budget.CancelAfter(_device.Timeout);
        var samples = new List<Sample>(_plan.Scalars.Count + 16);
        _aloneWalks.Clear();
        var poll = _completePolls + 1;
        _step = "resolving the address";
        try
        {
            var target = _target ??= _template.For(await ResolveAsync(budget.Token).ConfigureAwait(false));
            var client = _client();
            if (_scalarOids.Length > 0)
            {
                // GetEach: over v1 one missing OID is an error-status for the whole GET; it drops that OID and asks for
                // the rest, so one wrong OID in a profile costs one metric, not the device.
                _step = _scalarStep;
                var vbs = await client.GetEachAsync(target, _scalarOids, _scalarErrors, budget.Token).ConfigureAwait(false);
                if (_readsUptime && UptimeWentBack(vbs[^1].Value))
                {
                    _lastCounter.Clear();
                }
                var changed = false;
                for (var i = 0; i < _plan.Scalars.Count; i++)
                {
                    var value = vbs[i].Value;
                    var why = _scalarErrors[i] switch
                    {
                        SnmpErrorStatus.NoSuchName => Unreadable.NoSuchName,
                        SnmpErrorStatus.BadValue => Unreadable.BadValue,
                        _ => Unreadable.None,
                    };
                    if (why != Unreadable.None || !TryAdd(samples, _scalarSeries[i], _plan.Scalars[i].Metric, value, acquiredAtUnixMs))
                    {
                        samples.Add(new Sample(_scalarSeries[i], acquiredAtUnixMs, double.NaN, SampleQuality.DeviceError));
                        if (why == Unreadable.None)
                        {
                            why = value.Type switch
                            {
                                SnmpType.NoSuchObject => Unreadable.NoSuchObject,
                                SnmpType.NoSuchInstance => Unreadable.NoSuchInstance,
                                SnmpType.EndOfMibView => Unreadable.EndOfMibView,
                                _ => Unreadable.NotNumeric,
                            };
                        }
                    }
                    changed |= TrackScalar(i, why, value);
                }
                // Every change was a line: a device that garbles one value in three answers logged a Warning (and an
                // "every scalar is readable again") nearly every poll, 1,800 an hour at a 2 s interval.
                if (_scalarLog.ShouldLog(changed, out var flapping))
                {
                    LogScalars(flapping);
                }
            }
            for (var t = 0; t < _plan.Tables.Count; t++)
            {
                await PollTableAsync(client, target, t, registry, samples, acquiredAtUnixMs, poll, budget.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            await FlushAsync(sink, samples, cancellationToken).ConfigureAwait(false);
            // The client puts what the device sent meanwhile and was ignored (malformed, another request-id...) in an
            // SnmpTimeoutException inside, as a request's own timeout says it.
            var ignored = ex.InnerException is SnmpTimeoutException why ? "; " + why.Message : "";
            throw new DeviceException(DeviceId, $"poll of {_device.Address} took longer than its timeout of {_device.Timeout.TotalSeconds:0.###} s, in {_step}{ignored}");
        }
        catch (SnmpException ex)
        {
            await FlushAsync(sink, samples, cancellationToken).ConfigureAwait(false);
            LogPollFailed(_logger, DeviceId, ex.Message);
            throw new DeviceException(DeviceId, ex.Message, ex);
        }
        await FlushAsync(sink, samples, cancellationToken).ConfigureAwait(false);
        _completePolls = poll;
        if (_refused.Count > 0)
        {
            PruneRefused(poll);
        }
        _absentRows = 0;
        if (_tableSeries.Count > 0)
        {
            RetireVanishedRows(registry);
        }
        // An absent row's time grows with no row changing; a failed write is tried again too. Not on every poll.
        if (_rowsPath is not null && (_rowsChanged
            || ((_absentRows > 0 || _rowsWriteFailed) && _time.GetElapsedTime(_rowsWrittenAt) >= RowsAbsentWriteEvery(_device.RowRetention))))
        {
            await SaveRowsAsync(registry, _rowsPath, cancellationToken).ConfigureAwait(false);
        }
    }

    private static readonly Oid SysUpTime = Oid.Parse("1.3.6.1.2.1.1.3.0");

    /// <summary>
    /// True when the agent restarted since the last poll (sysUpTime went back): its counters were reset, which a Counter32
    /// cannot tell from a wrap (RFC 2578 7.1.6 names sysUpTime for such discontinuities), so every rate primes again
    /// instead of publishing one rate of about 2^32 per interval. Its 497-day TimeTicks wrap costs one rate too.
    /// </summary>
    private bool UptimeWentBack(SnmpValue uptime)
    {
        if (uptime.Type != SnmpType.TimeTicks)
        {
            return false; // not served (rare): wraps are assumed, as before
        }
        var now = uptime.AsUInt32();
        var restarted = _lastUptime is { } last && now < last;
        _lastUptime = now;
        if (restarted)
        {
            LogAgentRestarted(_logger, DeviceId, now / 100.0);
        }
        return restarted;
    }

    /// <summary>
    /// Retires the series of rows missing from the last <see cref="DeviceConfig.RowRetentionMinPolls"/> complete polls and
    /// for at least the device's <c>row_retention</c>: without it a table whose indices churn ends at max_series, refusing
    /// every new row until a restart. Only complete polls count, so a walk cut short by a timeout retires nothing.
    /// </summary>
    private void RetireVanishedRows(SeriesRegistry registry)
    {
        var now = _time.GetTimestamp();
        foreach (var (key, row) in _tableSeries)
        {
            if (_completePolls - row.LastSeenPoll >= DeviceConfig.RowRetentionMinPolls && _time.GetElapsedTime(row.LastSeenAt, now) >= _device.RowRetention)
            {
                _vanished.Add(key);
            }
            else if (row.LastSeenPoll < _completePolls)
            {
                _absentRows++;
            }
        }

        if (_vanished.Count == 0)
        {
            return;
        }

        var examples = new System.Text.StringBuilder();
        foreach (var key in _vanished)
        {
            var row = _tableSeries[key];
            _tableSeries.Remove(key);
            _lastCounter.Remove(row.Id);
            if (examples.Length < 200)
            {
                examples.Append(examples.Length == 0 ? "" : ", ").Append(registry[row.Id].Key);
            }

            registry.Retire(row.Id);
            if (row.Utilization is { } utilization)
            {
                registry.Retire(utilization); // the row's derived series goes with it (not counted in the line's count)
            }
        }

        _rowsChanged = true;
        var retention = Durations.Format(_device.RowRetention);
        var named = examples.ToString();
        LogRowsRetired(_logger, DeviceId, _vanished.Count, retention, DeviceConfig.RowRetentionMinPolls, named);
        _vanished.Clear();
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

    private async Task PollTableAsync(SnmpClient client, SnmpTarget target, int tableIndex, SeriesRegistry registry, List<Sample> samples, long at, long poll, CancellationToken ct)
    {
        var plan = _plan.Tables[tableIndex];
        var maxRows = Math.Max(1, plan.Table.MaxRows);
        // One row past the cap tells "exactly max_rows rows" from "rows were cut".
        var walkCap = maxRows == int.MaxValue ? maxRows : maxRows + 1;
        // The filter and label walks are kept as they came (in OID order) and searched per row by its index, so a poll
        // builds no set, map or string for them: a label is decoded only when a row gets its series.
        IReadOnlyList<VarBind>? filterRows = null;
        IReadOnlyList<VarBind>? labelRows = null;
        var seenAt = _time.GetTimestamp();
        var walk = _tableWalks[tableIndex];
        var columns = _columns[tableIndex];
        if (target.Version != EdgeTwin.Snmp.Messages.SnmpVersion.V1 && WalkColumnsTogether && walk.Roots.Length > 1)
        {
            // Every column (and the filter and label) in one GETBULK per round trip, each from its own last row: a
            // 1,001-interface switch took 9 walks of 41 round trips each per poll (370), now 92 against snmpd's default
            // cap of 100 varbinds per answer (41 without it). Same rows per column as walking each alone.
            _step = walk.Step;
            var walked = await WalkRootsAsync(client, target, tableIndex, ct).ConfigureAwait(false);
            filterRows = walk.Filter >= 0 ? walked[walk.Filter] : null;
            labelRows = walk.Label >= 0 ? walked[walk.Label] : null;
            foreach (var column in columns)
            {
                column.Walk = walked[column.WalkRoot];
                foreach (var rowColumn in column.RowColumns)
                {
                    rowColumn.Rows = rowColumn.Cut is { } view ? view.Over(walked[rowColumn.WalkRoot]) : walked[rowColumn.WalkRoot];
                }
            }
            await WalkFallbacksAsync(client, target, tableIndex, walkCap, ct).ConfigureAwait(false);
            for (var c = 0; c < plan.Columns.Count; c++)
            {
                AddWalkedColumn(tableIndex, c, maxRows, filterRows, labelRows, registry, samples, at, poll, seenAt);
            }
            EndTable(tableIndex, target.Version);
            return;
        }
        if (plan.Filter is { } filterOid)
        {
            _step = _filterSteps[tableIndex]!;
            filterRows = await WalkAloneAsync(client, target, tableIndex, filterOid, maxRows, ct).ConfigureAwait(false);
        }
        if (plan.Label is { } labelOid)
        {
            _step = _labelSteps[tableIndex]!;
            labelRows = await WalkAloneAsync(client, target, tableIndex, labelOid, maxRows, ct).ConfigureAwait(false);
        }
        // A utilisation needs each row's speed when its octets are read: that column is walked first, and each column's
        // samples still follow in profile order, as the walk of all columns together gives them.
        var speedColumn = _utilization[tableIndex]?.Speed ?? -1;
        if (speedColumn >= 0)
        {
            await WalkColumnAloneAsync(client, target, tableIndex, speedColumn, walkCap, ct).ConfigureAwait(false);
        }
        for (var c = 0; c < plan.Columns.Count; c++)
        {
            if (c != speedColumn)
            {
                await WalkColumnAloneAsync(client, target, tableIndex, c, walkCap, ct).ConfigureAwait(false);
            }
            AddWalkedColumn(tableIndex, c, maxRows, filterRows, labelRows, registry, samples, at, poll, seenAt);
        }
        EndTable(tableIndex, target.Version);
    }

    /// <summary>
    /// This poll's rows of every root of a table's walk: the roots an earlier table of the poll walked (the same OID at
    /// the same or a larger row cap, cut to this table's cap) are taken from it; the rest walked together. Tables walk
    /// in profile order, so the earlier walk is this poll's. Before, each table walked every root of its own, and the
    /// four tables of rittal-cmc3 read the whole variable table four times a poll.
    /// </summary>
    private async Task<IReadOnlyList<VarBind>[]> WalkRootsAsync(SnmpClient client, SnmpTarget target, int tableIndex, CancellationToken ct)
    {
        var walked = _walkedRoots[tableIndex];
        var shared = _sharedWalks[tableIndex];
        if (shared.OwnRoots.Length > 0)
        {
            var own = await client.BulkWalkColumnsAsync(target, shared.OwnRoots, shared.OwnCaps, ct).ConfigureAwait(false);
            for (var k = 0; k < own.Length; k++)
            {
                walked[shared.OwnIndex[k]] = own[k];
            }
        }
        for (var i = 0; i < walked.Length; i++)
        {
            if (shared.FromTable[i] >= 0)
            {
                var rows = _walkedRoots[shared.FromTable[i]][shared.FromRoot[i]];
                walked[i] = shared.Cut[i] is { } cut ? cut.Over(rows) : rows;
            }
        }
        return walked;
    }

    /// <summary>
    /// One OID walked alone (SNMPv1, or columns walked alone), or an earlier table's walk of it in this poll when that
    /// reads exactly what this walk would: the same cap, or a walk that ended before its cap with no more rows than this
    /// one's. The same within a table (its filter, a column and a row column of one OID).
    /// </summary>
    private async ValueTask<IReadOnlyList<VarBind>> WalkAloneAsync(SnmpClient client, SnmpTarget target, int tableIndex, Oid oid, int cap, CancellationToken ct)
    {
        foreach (var (_, walked, walkedCap, rows) in _aloneWalks)
        {
            // Also within a table: its filter, a column and a row column of one OID (Sentry4's st4TempSensorStatus) were
            // each walked again, though an ended walk reads exactly what another would.
            if (walked == oid && (walkedCap == cap || (rows.Count < walkedCap && rows.Count <= cap)))
            {
                return rows;
            }
        }
        var read = await client.BulkWalkAsync(target, oid, ct, cap).ConfigureAwait(false);
        _aloneWalks.Add((tableIndex, oid, cap, read));
        return read;
    }

    /// <summary>Walks one column alone (SNMPv1, or one column per walk), then its fallback when it gave no rows.</summary>
    private async Task WalkColumnAloneAsync(SnmpClient client, SnmpTarget target, int tableIndex, int c, int walkCap, CancellationToken ct)
    {
        var column = _columns[tableIndex][c];
        _step = column.Step;
        var rows = await WalkAloneAsync(client, target, tableIndex, column.Oid, walkCap, ct).ConfigureAwait(false);
        var fromFallback = rows.Count == 0 && column.FallbackOid is not null;
        if (fromFallback)
        {
            _step = column.FallbackStep!;
            rows = await WalkAloneAsync(client, target, tableIndex, column.FallbackOid!.Value, walkCap, ct).ConfigureAwait(false);
        }
        column.Walk = rows;
        UseSource(tableIndex, c, fromFallback);
        // The row columns of a variable table (cmcIIIVarScale, cmcIIIVarUnit, cmcIIIVarQuality), at max_rows like a filter.
        var maxRows = Math.Max(1, _plan.Tables[tableIndex].Table.MaxRows);
        foreach (var rowColumn in column.RowColumns)
        {
            rowColumn.Rows = await WalkAloneAsync(client, target, tableIndex, rowColumn.Oid, maxRows, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// When a column with a fallback gave no rows (a device without ifXTable, or SNMPv1, which carries no Counter64), walks
    /// the table's fallback columns together and takes theirs for the empty ones. A device that has them costs nothing.
    /// </summary>
    private async Task WalkFallbacksAsync(SnmpClient client, SnmpTarget target, int tableIndex, int walkCap, CancellationToken ct)
    {
        var columns = _columns[tableIndex];
        if (_fallbackWalks[tableIndex] is not { } fallbacks)
        {
            return;
        }
        var needed = false;
        for (var c = 0; c < columns.Length; c++)
        {
            needed |= fallbacks.RootOf[c] >= 0 && columns[c].Walk.Count == 0;
        }
        if (needed)
        {
            _step = fallbacks.Step;
            var walked = await client.BulkWalkColumnsAsync(target, fallbacks.Roots, fallbacks.Caps(walkCap), ct).ConfigureAwait(false);
            for (var c = 0; c < columns.Length; c++)
            {
                var fromFallback = fallbacks.RootOf[c] >= 0 && columns[c].Walk.Count == 0;
                if (fromFallback)
                {
                    columns[c].Walk = walked[fallbacks.RootOf[c]];
                }
                UseSource(tableIndex, c, fromFallback);
            }
            return;
        }
        for (var c = 0; c < columns.Length; c++)
        {
            UseSource(tableIndex, c, false);
        }
    }

    /// <summary>
    /// Records where column <paramref name="c"/> was read from this poll. When that changed, its rates prime again (a
    /// Counter64 and a Counter32 of the same traffic are different counts) and the change is logged once.
    /// </summary>
    private void UseSource(int tableIndex, int c, bool fromFallback)
    {
        var column = _columns[tableIndex][c];
        var (oid, metric) = (column.Oid, column.Metric);
        column.RootLength = fromFallback ? column.FallbackOid!.Value.Length : oid.Length;
        if (column.FromFallback == fromFallback)
        {
            return;
        }
        column.FromFallback = fromFallback;
        var prefix = metric.Name + "|";
        foreach (var (key, row) in _tableSeries)
        {
            if (key.StartsWith(prefix, StringComparison.Ordinal))
            {
                _lastCounter.Remove(row.Id);
            }
        }
        var table = _plan.Tables[tableIndex].Table.Name;
        var own = oid.ToNumericString();
        if (fromFallback && column.Walk.Count > 0)
        {
            LogColumnFallback(_logger, DeviceId, table, metric.Name, own, metric.Fallback!.Oid);
        }
        else if (!fromFallback)
        {
            LogColumnOwnOid(_logger, DeviceId, table, metric.Name, own);
        }
    }

    private void AddWalkedColumn(int tableIndex, int c, int maxRows, IReadOnlyList<VarBind>? filterRows, IReadOnlyList<VarBind>? labelRows,
        SeriesRegistry registry, List<Sample> samples, long at, long poll, long seenAt)
    {
        var column = _columns[tableIndex][c];
        var rows = column.Walk;
        column.Cut = rows.Count > maxRows;
        column.RowCount = Math.Min(rows.Count, maxRows);
        AddColumnRows(tableIndex, c, rows, column.RowCount, filterRows, labelRows, registry, samples, at, poll, seenAt);
    }

    /// <summary>The column notes of a walked table, and one line for the interfaces newly found without a speed.</summary>
    private void EndTable(int tableIndex, EdgeTwin.Snmp.Messages.SnmpVersion version)
    {
        NoteColumns(tableIndex, version);
        if (_speedUnknownCount > 0)
        {
            var plan = _plan.Tables[tableIndex];
            var speed = plan.Columns[_utilization[tableIndex]!.Speed].Metric.Name;
            var rows = _speedUnknownNames!.ToString();
            LogSpeedUnknown(_logger, DeviceId, _speedUnknownCount, plan.Table.Name, speed, rows);
            _speedUnknownCount = 0;
            _speedUnknownNames.Clear();
        }
    }

    /// <summary>Sets a column's rows as if walked from its own OID (for tests and benchmarks that call <see cref="AddColumnRows"/>).</summary>
    internal void UseWalk(int tableIndex, int column, IReadOnlyList<VarBind> rows)
    {
        var state = _columns[tableIndex][column];
        state.Walk = rows;
        state.RootLength = state.Oid.Length;
    }

    /// <summary>Sets a column's row_scale, row_unit and row_status walks as if polled (for tests and benchmarks that call <see cref="AddColumnRows"/>).</summary>
    internal void UseRowColumns(int tableIndex, int column, IReadOnlyList<VarBind>? scaleRows, IReadOnlyList<VarBind>? unitRows, IReadOnlyList<VarBind>? statusRows = null)
    {
        var state = _columns[tableIndex][column];
        state.Scale?.Rows = scaleRows;
        state.Unit?.Rows = unitRows;
        state.Status?.Rows = statusRows;
    }

    /// <summary>A table's fallback columns, walked together when one of their columns gave no rows.</summary>
    private sealed record FallbackWalk(Oid[] Roots, int[] RootOf, string Step)
    {
        private int[] _caps = [];

        public int[] Caps(int walkCap)
        {
            if (_caps.Length != Roots.Length || _caps[0] != walkCap)
            {
                _caps = Enumerable.Repeat(walkCap, Roots.Length).ToArray();
            }
            return _caps;
        }

        public static FallbackWalk? Of(SnmpColumn[] columns)
        {
            var roots = new List<Oid>();
            var rootOf = new int[columns.Length];
            for (var c = 0; c < rootOf.Length; c++)
            {
                rootOf[c] = columns[c].FallbackOid is { } f ? roots.Count : -1;
                if (rootOf[c] >= 0)
                {
                    roots.Add(columns[c].FallbackOid!.Value);
                }
            }
            return roots.Count == 0 ? null
                : new FallbackWalk([.. roots], rootOf, string.Join(", ", columns.Select(c => c.FallbackStep).Where(s => s is not null)));
        }
    }

    /// <summary>A table's utilization: the columns of the in and out octet rates and of the speed, and the speed's bit/s per unit.</summary>
    private sealed record UtilizationPlan(int In, int Out, int Speed, double BitsPerUnit)
    {
        public static UtilizationPlan? Of(SnmpTablePlan plan)
        {
            if (plan.Table.Utilization is not { } u)
            {
                return null;
            }
            int Column(string name)
            {
                for (var c = 0; c < plan.Columns.Count; c++)
                {
                    if (plan.Columns[c].Metric.Name == name)
                    {
                        return c;
                    }
                }
                throw new InvalidOperationException($"table '{plan.Table.Name}': utilization names column '{name}', which it does not have"); // the loader refuses such a profile
            }
            var speed = Column(u.Speed);
            return new UtilizationPlan(Column(u.In), Column(u.Out), speed, InterfaceUtilization.BitsPerSecondPerUnit(plan.Columns[speed].Metric.Unit));
        }
    }

    /// <summary>
    /// A table's walk with every column together: its distinct OIDs (filter, label, columns, row scale, unit and status; one OID used twice
    /// is walked once), each one's row cap (the filter and label at max_rows, columns one more), and where the filter and
    /// label are in them (each column's and row column's place is set on it, <see cref="SnmpColumn.WalkRoot"/>).
    /// </summary>
    private sealed record TableWalk(Oid[] Roots, int[] Caps, int Filter, int Label, string Step)
    {
        public static TableWalk Of(SnmpTablePlan plan, SnmpColumn[] columns, string step)
        {
            var maxRows = Math.Max(1, plan.Table.MaxRows);
            var walkCap = maxRows == int.MaxValue ? maxRows : maxRows + 1;
            var roots = new List<Oid>();
            var caps = new List<int>();
            int Add(Oid oid, int cap)
            {
                for (var i = 0; i < roots.Count; i++)
                {
                    if (roots[i] == oid && caps[i] == cap)
                    {
                        return i;
                    }
                }
                // A filter that is also a column keeps its own walk (its cap is one row less): one more varbind per
                // request, no more round trips, and it reads exactly the rows its own walk read before.
                roots.Add(oid);
                caps.Add(cap);
                return roots.Count - 1;
            }
            // The walk of this OID one row past max_rows (a column's), when there is none at max_rows (a filter's).
            int Longer(Oid oid)
            {
                var longer = -1;
                for (var i = 0; i < roots.Count; i++)
                {
                    if (roots[i] == oid && caps[i] == maxRows)
                    {
                        return -1;
                    }
                    longer = longer < 0 && roots[i] == oid && caps[i] > maxRows ? i : longer;
                }
                return longer;
            }
            var filter = plan.Filter is { } f ? Add(f, maxRows) : -1;
            var label = plan.Label is { } l ? Add(l, maxRows) : -1;
            foreach (var column in columns)
            {
                column.WalkRoot = Add(column.Oid, walkCap);
            }
            // Row columns (scale, unit, status) ride in the same GETBULKs (one OID shared by several columns is walked
            // once), by kind as the profile's settings are listed: every column's scale, then every unit, then every status.
            // A row column that is also a column of the table (cmcIIIVarQuality: temperature's row_status and the
            // temperature_quality column) reads the column's walk, cut to max_rows, as its own walk would have read it;
            // before, the OID rode twice in every GETBULK.
            for (var kind = 0; kind < SnmpColumn.RowColumnKinds; kind++)
            {
                foreach (var column in columns)
                {
                    if (column.RowColumnOf(kind) is not { } rowColumn)
                    {
                        continue;
                    }
                    var longer = Longer(rowColumn.Oid);
                    rowColumn.WalkRoot = longer >= 0 ? longer : Add(rowColumn.Oid, maxRows);
                    rowColumn.Cut = longer >= 0 ? new CappedRows(maxRows) : null;
                }
            }
            return new TableWalk([.. roots], [.. caps], filter, label, step);
        }
    }

    /// <summary>
    /// Where each root of a table's walk comes from: an earlier table's walk of the same OID at the same or a larger cap
    /// (<see cref="FromTable"/>, <see cref="FromRoot"/>; <see cref="Cut"/> when larger), or the table's own GETBULKs
    /// (<see cref="OwnRoots"/> at <see cref="OwnCaps"/>, at <see cref="OwnIndex"/> in the walk). Only tables walked
    /// together share (a table of one root is walked alone, as over SNMPv1, which walks each column alone anyway).
    /// </summary>
    private sealed record SharedWalk(int[] FromTable, int[] FromRoot, CappedRows?[] Cut, Oid[] OwnRoots, int[] OwnCaps, int[] OwnIndex)
    {
        public static SharedWalk[] Of(TableWalk[] walks)
        {
            var result = new SharedWalk[walks.Length];
            for (var t = 0; t < walks.Length; t++)
            {
                var walk = walks[t];
                var fromTable = new int[walk.Roots.Length];
                var fromRoot = new int[walk.Roots.Length];
                var cut = new CappedRows?[walk.Roots.Length];
                var own = new List<int>();
                for (var i = 0; i < walk.Roots.Length; i++)
                {
                    (fromTable[i], fromRoot[i]) = (-1, -1);
                    for (var j = 0; j < t && fromTable[i] < 0 && walk.Roots.Length > 1; j++)
                    {
                        var earlier = walks[j];
                        if (earlier.Roots.Length <= 1)
                        {
                            continue;
                        }
                        for (var k = 0; k < earlier.Roots.Length; k++)
                        {
                            // An earlier table's root that is itself shared points further back: take its origin.
                            if (earlier.Roots[k] == walk.Roots[i] && earlier.Caps[k] >= walk.Caps[i])
                            {
                                (fromTable[i], fromRoot[i]) = result[j].FromTable[k] >= 0 ? (result[j].FromTable[k], result[j].FromRoot[k]) : (j, k);
                                cut[i] = walks[fromTable[i]].Caps[fromRoot[i]] > walk.Caps[i] ? new CappedRows(walk.Caps[i]) : null;
                                break;
                            }
                        }
                    }
                    if (fromTable[i] < 0)
                    {
                        own.Add(i);
                    }
                }
                result[t] = new SharedWalk(fromTable, fromRoot, cut, [.. own.Select(i => walk.Roots[i])], [.. own.Select(i => walk.Caps[i])], [.. own]);
            }
            return result;
        }
    }

    /// <summary>
    /// The first rows of a walk read at a larger cap, as a walk at this one would have read them (a walk is in OID order,
    /// so its first rows are the same). One per shared root, set each poll: no allocation.
    /// </summary>
    private sealed class CappedRows(int cap) : IReadOnlyList<VarBind>
    {
        private IReadOnlyList<VarBind> _rows = [];

        public CappedRows Over(IReadOnlyList<VarBind> rows)
        {
            _rows = rows;
            return this;
        }

        public int Count => Math.Min(_rows.Count, cap);

        public VarBind this[int index] => (uint)index < (uint)Count ? _rows[index] : throw new ArgumentOutOfRangeException(nameof(index));

        public IEnumerator<VarBind> GetEnumerator()
        {
            for (var i = 0; i < Count; i++)
            {
                yield return _rows[i];
            }
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>
    /// Turns the first <paramref name="count"/> rows of one column's walk into samples. A row whose series exists, or
    /// that was refused at the device's max_series and still would be, is found by its key formatted into a reused
    /// buffer: only a row seen for the first time (or retried because the device has room again) builds strings.
    /// </summary>
    internal void AddColumnRows(int tableIndex, int column, IReadOnlyList<VarBind> rows, int count, IReadOnlyList<VarBind>? filterRows, IReadOnlyList<VarBind>? labelRows,
        SeriesRegistry registry, List<Sample> samples, long at, long poll, long seenAt)
    {
        var plan = _plan.Tables[tableIndex];
        var state = _columns[tableIndex][column];
        // Read from the fallback (ifInOctets for ifHCInOctets): its scale, under its OID; the same series.
        var metric = state.Read;
        var rootLength = state.RootLength;
        var budget = _budget ??= registry.Budget(DeviceId);
        // The in or out octets of a utilization: each row's rate in percent of its speed (that column's rows, this poll).
        var utilization = _utilization[tableIndex] is { } u && (u.In == column || u.Out == column) ? u : null;
        var scaleRows = state.Scale?.Rows;
        var unitRows = state.Unit?.Rows;
        var scaleLength = state.Scale?.Oid.Length ?? 0;
        var unitLength = state.Unit?.Oid.Length ?? 0;
        var statusRows = state.Status?.Rows;
        var statusLength = state.Status?.Oid.Length ?? 0;
        for (var r = 0; r < count; r++)
        {
            var vb = rows[r];
            var key = FormatKey(metric.Name, vb.Oid, rootLength);
            var index = key[(metric.Name.Length + 1)..];
            var suffix = vb.Oid.Arcs[Math.Min(rootLength, vb.Oid.Length)..];
            if (filterRows is not null && !Kept(plan, filterRows, suffix))
            {
                continue;
            }
            if (unitRows is not null && !UnitMatches(metric.RowUnit!, unitRows, unitLength, suffix))
            {
                // In another unit than the column reads (a CMC III set to °F): skipped, not published in the wrong unit.
                if (_unitSkipped.Count < MaxRefusedRows && !_unitSkippedByKey.Contains(key))
                {
                    var skipped = key.ToString();
                    _unitSkipped.Add(skipped);
                    LogRowUnitSkipped(_logger, DeviceId, plan.Table.Name, metric.Name, skipped[(metric.Name.Length + 1)..], UnitText(unitRows, unitLength, suffix), metric.RowUnit!.Matches.ToString());
                }
                continue;
            }
            if (unitRows is not null && _unitSkipped.Count > 0)
            {
                _unitSkippedByKey.Remove(key); // back in the column's unit: warned again should it change once more
            }
            var factor = 1.0;
            if (scaleRows is not null)
            {
                var scaleAt = Find(scaleRows, scaleLength, suffix);
                factor = scaleAt >= 0 && scaleRows[scaleAt].Value.TryGetNumber(out var f) ? f : double.NaN; // no factor: no value
            }
            SeriesId series;
            TableRowSeries? row;
            if (_tableSeriesByKey.TryGetValue(key, out row))
            {
                series = row.Id;
                row.LastSeenPoll = poll;
                row.LastSeenAt = seenAt;
                if (row.AbsentInFile)
                {
                    row.AbsentInFile = false;
                    _rowsChanged = true; // back: the file must say absent 0, or the next start would credit old absence
                }
            }
            else if (budget.AtCap && _refusedByKey.TryGetValue(key, out var refused))
            {
                // Refused before and the device is still full: asking the registry again would build the row's tags,
                // descriptor and key on every poll only to be refused again. It still counts the dropped sample.
                refused.LastSeenPoll = poll;
                registry.CountRefused(budget, refused.SeriesKey);
                continue;
            }
            else
            {
                var keyText = key.ToString();
                var indexText = index.ToString();
                List<KeyValuePair<string, string>> tags = [new(plan.Table.IndexTag, indexText)];
                if (labelRows is not null && Label(plan, labelRows, suffix) is { Length: > 0 } label)
                {
                    tags.Add(new(plan.Table.LabelTag, label));
                }
                // A row past the device's max_series is dropped (the registry counts it and warns) and gets no series:
                // it is remembered only while its table keeps listing it (pruned after each complete poll), so a table
                // whose indices churn grows neither map.
                var descriptor = Describe(metric, tags);
                if (!registry.TryGetOrAdd(descriptor, out series))
                {
                    if (_refused.Count < MaxRefusedRows || _refused.ContainsKey(keyText))
                    {
                        _refused[keyText] = new RefusedRow(descriptor.Key) { LastSeenPoll = poll };
                    }
                    continue;
                }
                _refused.Remove(keyText);
                _tableSeries[keyText] = row = new TableRowSeries(series) { LastSeenPoll = poll, LastSeenAt = seenAt };
                _rowsChanged = true;
            }
            if (statusRows is not null)
            {
                // The row's own status says whether its value is a reading (cmcIIIVarQuality okNoValue(22) beside a 0 that
                // is no measurement): a DeviceError like any value the device cannot give, and a rate primes again after it.
                var statusAt = Find(statusRows, statusLength, suffix);
                var code = statusAt >= 0 && statusRows[statusAt].Value.TryGetNumber(out var c) ? c : double.NaN;
                row.NoReadingCode = code;
                if (double.IsNaN(code) || !metric.RowStatus!.IsReading(code))
                {
                    row.NoReading = metric.RowStatus;
                    _lastCounter.Remove(series);
                    samples.Add(new Sample(series, at, double.NaN, SampleQuality.DeviceError));
                    continue;
                }
                row.NoReading = null;
            }
            if (!TryAdd(samples, series, metric, vb.Value, at, out var rate, out var seconds, factor))
            {
                samples.Add(new Sample(series, at, double.NaN, SampleQuality.DeviceError));
            }
            if (utilization is not null)
            {
                AddUtilization(tableIndex, utilization, column == utilization.In, row, suffix, rate, seconds, registry, budget, samples, at);
            }
        }
    }

    /// <summary>
    /// The utilisation of one interface's in or out octets this poll (none when the rate primed, the speed is unknown or
    /// changed, or the value is above the link's speed). Its series is made when it has its first value; a steady poll
    /// allocates nothing.
    /// </summary>
    private void AddUtilization(int tableIndex, UtilizationPlan u, bool inbound, TableRowSeries row, ReadOnlySpan<uint> index, double rate, double seconds,
        SeriesRegistry registry, DeviceSeriesBudget budget, List<Sample> samples, long at)
    {
        var speedColumn = _columns[tableIndex][u.Speed];
        var speedRows = speedColumn.Walk;
        var speedAt = Find(speedRows, speedColumn.RootLength, index);
        var speedMetric = speedColumn.Read;
        var speed = speedAt >= 0 && speedRows[speedAt].Value.TryGetNumber(out var raw)
            ? InterfaceUtilization.SpeedBitsPerSecond(raw, speedMetric, u.BitsPerUnit)
            : double.NaN;
        var last = row.SpeedBps;
        row.SpeedBps = speed;
        var verdict = InterfaceUtilization.Evaluate(rate, seconds, speed, last, _device.Timeout, out var percent);
        switch (verdict)
        {
            case InterfaceUtilization.Verdict.SpeedUnknown:
                if (!row.SpeedUnknownNoted && inbound)
                {
                    row.SpeedUnknownNoted = true; // logged once, with the others of this walk; again only after a known speed
                    _speedUnknownNames ??= new System.Text.StringBuilder();
                    if (_speedUnknownNames.Length < 200)
                    {
                        _speedUnknownNames.Append(_speedUnknownCount == 0 ? "" : ", ").Append(registry[row.Id].Key);
                    }
                    _speedUnknownCount++;
                }
                return;
            case InterfaceUtilization.Verdict.SpeedChanged:
                row.SpeedUnknownNoted = false;
                if (inbound && double.IsFinite(last))
                {
                    LogSpeedChanged(_logger, DeviceId, registry[row.Id].Key, last / 1e6, speed / 1e6);
                }
                return;
            case InterfaceUtilization.Verdict.NoRate:
                return;
            case InterfaceUtilization.Verdict.AboveLink:
                if (!row.AboveLinkNoted)
                {
                    row.AboveLinkNoted = true;
                    LogAboveLink(_logger, DeviceId, inbound ? TableUtilization.InMetric : TableUtilization.OutMetric, registry[row.Id].Key, percent, speed / 1e6, seconds);
                }
                return;
        }
        if (row.Utilization is not { } series)
        {
            if (row.UtilizationRefused is { } refusedKey && budget.AtCap)
            {
                registry.CountRefused(budget, refusedKey);
                return;
            }
            var of = registry[row.Id];
            var descriptor = new SeriesDescriptor(DeviceId, inbound ? TableUtilization.InMetric : TableUtilization.OutMetric, "%", MetricKind.Gauge,
                inbound ? TableUtilization.InRole : TableUtilization.OutRole, of.Tags);
            if (!registry.TryGetOrAdd(descriptor, out series))
            {
                row.UtilizationRefused = descriptor.Key; // at max_series, as a table row: counted, asked again once there is room
                return;
            }
            row.Utilization = series;
            row.UtilizationRefused = null;
        }
        samples.Add(new Sample(series, at, percent, SampleQuality.Good));
    }

    /// <summary>True when the filter column of the row with this index holds an accepted value.</summary>
    private static bool Kept(SnmpTablePlan plan, IReadOnlyList<VarBind> filterRows, ReadOnlySpan<uint> index)
    {
        var at = Find(filterRows, plan.Filter!.Value.Length, index);
        if (at < 0)
        {
            return false;
        }
        var value = filterRows[at].Value;
        var filter = plan.Table.Filter!;
        return filter.Matches is not null
            ? value.Type == SnmpType.OctetString && filter.Matches.Match(value.AsBytes().Span)
            : value.TryGetNumber(out var v) && filter.Accepts((long)v);
    }

    /// <summary>True when the unit column of the row with this index holds the column's unit text (bytes compared, no decoding).</summary>
    private static bool UnitMatches(ColumnRowUnit unit, IReadOnlyList<VarBind> unitRows, int unitLength, ReadOnlySpan<uint> index)
    {
        var at = Find(unitRows, unitLength, index);
        return at >= 0 && unitRows[at].Value.Type == SnmpType.OctetString && unit.Matches.Match(unitRows[at].Value.AsBytes().Span);
    }

    /// <summary>The unit text of a row, for the warning of a skipped row (built once per row).</summary>
    private static string UnitText(IReadOnlyList<VarBind> unitRows, int unitLength, ReadOnlySpan<uint> index)
    {
        var at = Find(unitRows, unitLength, index);
        return at < 0 ? "(no unit row)"
            : unitRows[at].Value.Type == SnmpType.OctetString ? System.Text.Encoding.UTF8.GetString(unitRows[at].Value.AsBytes().Span)
            : $"({unitRows[at].Value.Type})";
    }

    /// <summary>The label of the row with this index (empty when it has none or it is neither text nor an OID).</summary>
    private static string Label(SnmpTablePlan plan, IReadOnlyList<VarBind> labelRows, ReadOnlySpan<uint> index)
    {
        var labelLength = plan.Label!.Value.Length;
        var at = Find(labelRows, labelLength, index);
        if (at < 0 && labelRows.Count > 0 && labelRows[0].Oid.Length - labelLength is var arcs and > 0 && arcs < index.Length)
        {
            // A label column indexed by the first arcs of the row index (the device table of a per-device variable table,
            // cmcIIIDevAlias for cmcIIIVarTable's device.variable rows) labels every row under that prefix.
            at = Find(labelRows, labelLength, index[..arcs]);
        }
        return at >= 0 ? SnmpRowLabel.Of(plan.Table, labelRows[at].Value) : "";
    }

    /// <summary>
    /// The position in a column's walk of the row with this index, or -1. A walk comes in increasing OID order (the client
    /// checks it), and under one column OID that is the order of the indices, so this is a binary search.
    /// </summary>
    private static int Find(IReadOnlyList<VarBind> walk, int columnLength, ReadOnlySpan<uint> index)
    {
        var (lo, hi) = (0, walk.Count - 1);
        while (lo <= hi)
        {
            var mid = lo + ((hi - lo) / 2);
            var arcs = walk[mid].Oid.Arcs;
            var order = arcs[Math.Min(columnLength, arcs.Length)..].SequenceCompareTo(index);
            if (order == 0)
            {
                return mid;
            }
            (lo, hi) = order < 0 ? (mid + 1, hi) : (lo, mid - 1);
        }
        return -1;
    }

    /// <summary>Writes <c>metric|index</c> (the index being the instance's arcs after the column) into the reused key buffer.</summary>
    private ReadOnlySpan<char> FormatKey(string metric, Oid instance, int columnLength)
    {
        var arcs = instance.Arcs[Math.Min(columnLength, instance.Length)..];
        var needed = metric.Length + 1 + (arcs.Length * 11);
        if (_keyBuffer.Length < needed)
        {
            _keyBuffer = new char[Math.Max(needed, _keyBuffer.Length * 2)];
        }
        var buffer = _keyBuffer.AsSpan();
        metric.CopyTo(buffer);
        var at = metric.Length;
        buffer[at++] = '|';
        for (var i = 0; i < arcs.Length; i++)
        {
            if (i > 0)
            {
                buffer[at++] = '.';
            }
            arcs[i].TryFormat(buffer[at..], out var written, default, System.Globalization.CultureInfo.InvariantCulture);
            at += written;
        }
        return buffer[..at];
    }

    /// <summary>Forgets refused rows their table no longer listed in the last complete poll.</summary>
    private void PruneRefused(long poll)
    {
        foreach (var (key, row) in _refused)
        {
            if (row.LastSeenPoll < poll)
            {
                _refused.Remove(key); // allowed while enumerating a Dictionary since .NET Core 3.0
            }
        }
    }

    /// <summary>Warns, once per column until its state changes, about a column that came back empty or was cut.</summary>
    private void NoteColumns(int tableIndex, EdgeTwin.Snmp.Messages.SnmpVersion version)
    {
        var plan = _plan.Tables[tableIndex];
        var columns = _columns[tableIndex];
        var filled = -1; // a column with rows: the table exists, so an empty column is the profile's doing
        for (var c = 0; c < columns.Length && filled < 0; c++)
        {
            filled = columns[c].RowCount > 0 ? c : -1;
        }
        string? newlyCut = null;
        for (var c = 0; c < columns.Length; c++)
        {
            var (oid, metric) = (columns[c].Oid, columns[c].Metric);
            var note = columns[c].Cut ? ColumnNote.Cut
                : columns[c].RowCount > 0 || filled < 0 ? ColumnNote.None
                // net-snmp (and the RFC 3584 rules) skip Counter64 in v1 answers: the walk sees nothing at all.
                : version == EdgeTwin.Snmp.Messages.SnmpVersion.V1 && metric.Kind == MetricKind.Counter ? ColumnNote.EmptyCounterOverV1
                : oid.Length > plan.Columns[filled].Oid.Length ? ColumnNote.EmptyWithInstance
                : ColumnNote.Empty;
            if (note == columns[c].Note)
            {
                continue;
            }
            columns[c].Note = note;
            if (note == ColumnNote.Cut)
            {
                // Every column of a big table hits the cap together: one line per table, naming the columns.
                newlyCut = (newlyCut is null ? "" : newlyCut + ", ") + $"{metric.Name} ({oid.ToNumericString()})";
            }
            else if (note != ColumnNote.None)
            {
                var hint = note switch
                {
                    ColumnNote.EmptyCounterOverV1 => "the device is polled over SNMPv1, which cannot carry Counter64 values (agents leave them out); Counter64 needs v2c/v3 credentials. If it is not a Counter64, check the column OID",
                    ColumnNote.EmptyWithInstance => $"its OID has more arcs than column {plan.Columns[filled].Metric.Name} ({plan.Columns[filled].Oid.ToNumericString()}): an instance (.{oid[oid.Length - 1]}) looks included; give the column OID without it",
                    _ => "wrong column OID? (walk the table entry to list its columns)",
                };
                LogColumnEmpty(_logger, DeviceId, plan.Table.Name, metric.Name, oid.ToNumericString(), hint);
            }
        }
        if (newlyCut is not null)
        {
            LogColumnsCut(_logger, DeviceId, plan.Table.Name, plan.Table.MaxRows, newlyCut);
        }
    }

    /// <summary>Records why scalar <paramref name="i"/> was (un)readable; true when that differs from the last poll.</summary>
    private bool TrackScalar(int i, Unreadable why, SnmpValue value)
    {
        var type = why == Unreadable.NotNumeric ? value.Type : default;
        if (_scalarState[i] == why && _scalarType[i] == type)
        {
            return false;
        }
        _scalarState[i] = why;
        _scalarType[i] = type;
        _scalarReason[i] = why == Unreadable.None ? null : Reason(why, _scalarOids[i], value);
        return true;
    }

    private static string Reason(Unreadable why, Oid oid, SnmpValue value) => why switch
    {
        Unreadable.NoSuchObject => "noSuchObject: the device has no such object (check the OID)" + ScalarHint(oid),
        Unreadable.NoSuchInstance => "noSuchInstance: the device has no such instance (check the OID)" + ScalarHint(oid),
        Unreadable.EndOfMibView => "endOfMibView",
        Unreadable.NoSuchName => "noSuchName: the SNMPv1 agent has no such object or instance (check the OID)" + ScalarHint(oid),
        Unreadable.BadValue => "badValue: the SNMPv1 agent refused this OID",
        _ => SnmpFormatter.ValueText(value) is { Length: > 0 } text ? $"{value.Type} {Shorten(text, value)} is not numeric" : $"{value.Type} is not numeric",
    };

    // A device may answer a gauge with a 64 KB string: the reason is logged and kept, so only its start goes in.
    private const int MaxValueText = 64;

    private static string Shorten(string text, SnmpValue value) =>
        text.Length <= MaxValueText ? text
        : value.Type is SnmpType.OctetString or SnmpType.Opaque ? $"{text[..MaxValueText]}... ({value.AsBytes().Length} octets)"
        : text[..MaxValueText] + "...";

    // The most common slip in a profile: the scalar's object OID without its .0 instance.
    private static string ScalarHint(Oid oid) => oid.Length > 0 && oid[oid.Length - 1] != 0 ? "; a scalar's OID ends in .0" : "";

    private void LogScalars(string flapping)
    {
        var failed = 0;
        var details = new System.Text.StringBuilder();
        for (var i = 0; i < _scalarReason.Length; i++)
        {
            if (_scalarReason[i] is { } reason)
            {
                details.Append(failed++ == 0 ? "" : "; ").Append(_plan.Scalars[i].Metric.Name).Append(" (")
                    .Append(_scalarOids[i].ToNumericString()).Append("): ").Append(reason);
            }
        }
        if (failed == 0)
        {
            LogScalarsReadable(_logger, DeviceId, flapping);
        }
        else
        {
            LogScalarsUnreadable(_logger, DeviceId, failed, _scalarReason.Length, details.ToString(), flapping);
        }
    }

    public string? ReasonOf(SeriesId series)
    {
        for (var i = 0; i < _scalarSeries.Length; i++)
        {
            if (_scalarSeries[i] == series)
            {
                return _scalarReason[i];
            }
        }
        // A table row its status called no reading: the text is built here, on demand, not on every poll.
        foreach (var row in _tableSeries.Values)
        {
            if (row.Id == series && row.NoReading is { } status)
            {
                return NoReadingReason(status, row.NoReadingCode);
            }
        }
        return null;
    }

    private string NoReadingReason(ColumnRowStatus status, double code)
    {
        var reading = string.Join(", ", status.Values);
        if (double.IsNaN(code))
        {
            return $"row_status: the row has no numeric status in {status.Oid}, so its value is not taken for a reading (reading: {reading})";
        }
        // The status column's own state name when the profile publishes it (okNoValue beside 22).
        var name = _plan.Tables.SelectMany(t => t.Columns).Select(c => c.Metric)
            .Where(m => m.Oid == status.Oid && m.States is not null).Select(m => m.States!.GetValueOrDefault((long)code)).FirstOrDefault(n => n is not null);
        var what = name is null ? code.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"{name} ({code.ToString(System.Globalization.CultureInfo.InvariantCulture)})";
        return $"row_status: the row's status {status.Oid} is {what}, which says its value is no reading (reading: {reading})";
    }

    /// <summary>Adds the sample for a numeric value (none while a rate primes); false when the value is no number.</summary>
    private bool TryAdd(List<Sample> samples, SeriesId series, ProfileMetric metric, SnmpValue value, long at) =>
        TryAdd(samples, series, metric, value, at, out _, out _);

    /// <summary>As above; <paramref name="rate"/> is the rate published and <paramref name="seconds"/> its interval (NaN when none).</summary>
    private bool TryAdd(List<Sample> samples, SeriesId series, ProfileMetric metric, SnmpValue value, long at, out double rate, out double seconds, double rowFactor = 1)
    {
        rate = double.NaN;
        seconds = double.NaN;
        if (!value.TryGetNumber(out var raw) || double.IsNaN(rowFactor))
        {
            return false; // noSuchObject, a non-numeric string, a row without its scale: the caller records a DeviceError
        }
        raw = ColumnRowScale.Apply(raw, rowFactor);
        double reported;
        if (metric.Kind == MetricKind.Counter && metric.Rate)
        {
            (double Raw, long AtMs, double RawRate)? previous = _lastCounter.TryGetValue(series, out var p) ? p : null;
            _lastCounter[series] = (raw, at, double.NaN);
            if (previous is not { } prev || at <= prev.AtMs)
            {
                return true; // first reading only primes the rate
            }
            seconds = (at - prev.AtMs) / 1000.0;
            var delta = raw - prev.Raw;
            if (delta < 0)
            {
                if (value.Type == SnmpType.Counter64)
                {
                    // A Counter64 does not wrap in practice (46 years of 100 Gbit/s in octets): going back is a
                    // discontinuity (a switch's "clear counters", a restart), and the rate primes again.
                    return true;
                }
                // A Counter32 wrapped (RFC 2578 7.1.6) — or was cleared on the device with sysUpTime going on (a
                // switch's "clear counters", a PDU's energy reset), which a Counter32 cannot tell. Regression: a clear
                // was always taken for a wrap, and published one rate of up to 2^32 per interval (an energy rate of
                // 4.3e7 kWh/s from a PDU's reset). A wrap adds what the last rate makes plausible; more is a clear.
                // Regression: the allowance was 8× the last rate + 2^20 counts, and 2^20 swamped a slow counter's rate,
                // so one cleared within 2^20 of 2^32 read as a wrap and published one rate thousands of times its own.
                // The reading itself bounds the rate from below either way (a wrap or a clear counted it within the
                // interval), so a burst on an idle counter that wraps is still a wrap; no fixed count, blind to units.
                var wrapped = delta + Math.Pow(2, 32);
                var plausible = double.IsNaN(prev.RawRate) ? Math.Pow(2, 31) : WrapRateFactor * Math.Max(Math.Max(prev.RawRate * seconds, raw), 1);
                if (wrapped > plausible)
                {
                    LogCounterCleared(_logger, DeviceId, metric.Name, prev.Raw, raw);
                    return true;
                }

                delta = wrapped;
            }
            _lastCounter[series] = (raw, at, delta / seconds);
            reported = metric.Convert(delta) - metric.Offset; // offsets do not apply to differences
            reported /= seconds;
            rate = reported;
        }
        else
        {
            reported = metric.Convert(raw);
        }
        var quality = metric.IsOutOfRange(reported) ? SampleQuality.OutOfRange : SampleQuality.Good;
        samples.Add(new Sample(series, at, reported, quality));
        return true;
    }

    /// <summary>
    /// A clean stop (the scheduler has stopped polling): the rows are written once more while a row is absent, so the
    /// absent time since the last write is kept. The shared client belongs to the factory.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (_rowsPath is null || _registry is not { } registry || Volatile.Read(ref _polling) != 0)
        {
            return; // a poll abandoned at a cut stop still runs: its rows are not read under it (absent time since the last write is lost)
        }
        var absent = false;
        foreach (var row in _tableSeries.Values)
        {
            absent |= Absent(row);
        }
        if (absent || _rowsChanged)
        {
            using var timeout = new CancellationTokenSource(RowsStopWriteTimeout);
            try
            {
                await SaveRowsAsync(registry, _rowsPath, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested)
            {
                if (!_rowsWriteFailed)
                {
                    _rowsWriteFailed = true;
                    LogRowsWriteFailed(_logger, DeviceId, _rowsPath, $"not written within {RowsStopWriteTimeout.TotalSeconds:0} s at the stop");
                }
            }
        }
    }

    /// <summary>The write at a clean stop gives up after this (a hung disk must not hold the shutdown).</summary>
    private static readonly TimeSpan RowsStopWriteTimeout = TimeSpan.FromSeconds(5);

    [LoggerMessage(EventId = 206, Level = LogLevel.Information, Message = "SNMP device {DeviceId}: counter {Metric} went back from {Before} to {After} with no restart seen (sysUpTime), more than a wrap at its last rate explains: counters cleared on the device; the rate primes again")]
    private static partial void LogCounterCleared(ILogger logger, string deviceId, string metric, double before, double after);

    [LoggerMessage(EventId = 205, Level = LogLevel.Information, Message = "SNMP device {DeviceId}: the agent restarted (sysUpTime went back to {Uptime} s): counter rates prime again instead of taking the reset for a wrap")]
    private static partial void LogAgentRestarted(ILogger logger, string deviceId, double uptime);

    [LoggerMessage(Level = LogLevel.Debug, Message = "SNMP poll of {DeviceId} failed: {Reason}")]
    private static partial void LogPollFailed(ILogger logger, string deviceId, string reason);

    [LoggerMessage(EventId = 200, Level = LogLevel.Warning, Message = "SNMP device {DeviceId}: {Failed} of {Total} scalars unreadable: {Details}{Flapping}")]
    private static partial void LogScalarsUnreadable(ILogger logger, string deviceId, int failed, int total, string details, string flapping);

    [LoggerMessage(EventId = 201, Level = LogLevel.Information, Message = "SNMP device {DeviceId}: every scalar is readable again{Flapping}")]
    private static partial void LogScalarsReadable(ILogger logger, string deviceId, string flapping);

    [LoggerMessage(EventId = 202, Level = LogLevel.Warning, Message = "SNMP device {DeviceId}: table {Table} column {Column} ({Oid}): no rows, while other columns of the table have rows: {Hint}")]
    private static partial void LogColumnEmpty(ILogger logger, string deviceId, string table, string column, string oid, string hint);

    [LoggerMessage(EventId = 204, Level = LogLevel.Information, Message = "SNMP device {DeviceId}: {Count} table row series retired, their rows absent for at least row_retention {Retention} and {Polls} complete polls (their state is freed and their max_series slots reused; a row that comes back is a new series): {Examples}")]
    private static partial void LogRowsRetired(ILogger logger, string deviceId, int count, string retention, int polls, string examples);

    /// <summary>A table row's series and when a complete poll last saw it.</summary>
    private sealed class TableRowSeries(SeriesId id)
    {
        public SeriesId Id { get; } = id;

        public long LastSeenPoll { get; set; }

        public long LastSeenAt { get; set; }

        /// <summary>The rows file (as last written or read) has this row absent: seen again, it is rewritten with 0.</summary>
        public bool AbsentInFile { get; set; }

        /// <summary>The utilisation series of this row's octets (a utilization's in or out column), once it had a value.</summary>
        public SeriesId? Utilization { get; set; }

        /// <summary>The key of that series while max_series refuses it.</summary>
        public string? UtilizationRefused { get; set; }

        /// <summary>The row's link speed at the last poll, bit/s (NaN: unknown).</summary>
        public double SpeedBps { get; set; } = double.NaN;

        public bool SpeedUnknownNoted { get; set; }

        public bool AboveLinkNoted { get; set; }

        /// <summary>The row_status that made the last sample no reading, or null when it was one (for <c>edgetwin poll</c>'s reason).</summary>
        public ColumnRowStatus? NoReading { get; set; }

        /// <summary>The status code of that row at the last poll (NaN: no status row, or not a number).</summary>
        public double NoReadingCode { get; set; }
    }

    /// <summary>
    /// At most this many refused rows (cells: a row of each column) are remembered per device, e.g. a table at the
    /// default max_rows of 256 with 32 columns; rows past it go to the registry on every poll, as before, and are still
    /// dropped and counted.
    /// </summary>
    internal const int MaxRefusedRows = 8192;

    /// <summary>A row refused at max_series: the registry's key of the series it would have been, and when it was last listed.</summary>
    private sealed class RefusedRow(string seriesKey)
    {
        public string SeriesKey { get; } = seriesKey;

        public long LastSeenPoll { get; set; }
    }

    [LoggerMessage(EventId = 213, Level = LogLevel.Information, Message = "SNMP device {DeviceId}: {Count} table row(s) remembered from the last run ({Path}) registered before the first poll, so their rules watch them: one that does not come back is reported missing by its missing rules and retired once absent for row_retention {Retention} while the agent runs, downtime not counted ({Absent} already absent in earlier runs, the longest {LongestAbsent}, credited; {Unknown} no longer in the profile, {Capped} past max_series dropped)")]
    private static partial void LogRowsRemembered(ILogger logger, string deviceId, int count, string path, string retention, int absent, string longestAbsent, int unknown, int capped);

    [LoggerMessage(EventId = 214, Level = LogLevel.Warning, Message = "SNMP device {DeviceId}: the remembered table rows {Path} cannot be read ({Reason}): not used; the rows are found by this run's polls, and a row gone before the restart is not watched. The file is replaced after the first complete poll")]
    private static partial void LogRowsFileUnreadable(ILogger logger, string deviceId, string path, string reason);

    [LoggerMessage(EventId = 215, Level = LogLevel.Warning, Message = "SNMP device {DeviceId}: cannot write the remembered table rows {Path} ({Reason}): a row that vanishes before the next restart will not be watched after it, and absent time since the last write is not kept; tried again at the next change of the rows, or within row_retention / 100 (1 to 15 min)")]
    private static partial void LogRowsWriteFailed(ILogger logger, string deviceId, string path, string reason);

    [LoggerMessage(EventId = 216, Level = LogLevel.Information, Message = "SNMP device {DeviceId}: the remembered table rows {Path} are written again")]
    private static partial void LogRowsWritten(ILogger logger, string deviceId, string path);

    [LoggerMessage(EventId = 207, Level = LogLevel.Information, Message = "SNMP device {DeviceId}: table {Table}: {Count} interface(s) without a known link speed ({Speed} 0, missing, or saturated at 4294967295 with no ifHighSpeed): no utilization for them until it is known (logged once per interface): {Rows}")]
    private static partial void LogSpeedUnknown(ILogger logger, string deviceId, int count, string table, string speed, string rows);

    [LoggerMessage(EventId = 208, Level = LogLevel.Information, Message = "SNMP device {DeviceId}: {Row}: link speed changed from {Before} to {After} Mbit/s; no utilization for the interval that spans the change")]
    private static partial void LogSpeedChanged(ILogger logger, string deviceId, string row, double before, double after);

    [LoggerMessage(EventId = 209, Level = LogLevel.Warning, Message = "SNMP device {DeviceId}: {Metric} of {Row} came to {Percent:0.#} % of its {Speed} Mbit/s link over {Seconds:0.###} s, more than the poll's timing explains: a counter discontinuity the device did not flag; left out (logged once per interface)")]
    private static partial void LogAboveLink(ILogger logger, string deviceId, string metric, string row, double percent, double speed, double seconds);

    [LoggerMessage(EventId = 210, Level = LogLevel.Information, Message = "SNMP device {DeviceId}: table {Table} column {Column} ({Oid}) has no rows: read from its fallback {Fallback} (a device without ifXTable, or SNMPv1, which carries no Counter64); its rates prime again")]
    private static partial void LogColumnFallback(ILogger logger, string deviceId, string table, string column, string oid, string fallback);

    [LoggerMessage(EventId = 211, Level = LogLevel.Information, Message = "SNMP device {DeviceId}: table {Table} column {Column} is read from its own OID {Oid} again; its rates prime again")]
    private static partial void LogColumnOwnOid(ILogger logger, string deviceId, string table, string column, string oid);

    [LoggerMessage(EventId = 212, Level = LogLevel.Warning, Message = "SNMP device {DeviceId}: table {Table} column {Column} row {Row}: its unit is '{Unit}', not one the profile reads ({Expected}, row_unit); the row is skipped, not read in the wrong unit (logged once per row)")]
    private static partial void LogRowUnitSkipped(ILogger logger, string deviceId, string table, string column, string row, string unit, string expected);

    [LoggerMessage(EventId = 203, Level = LogLevel.Warning, Message = "SNMP device {DeviceId}: table {Table}: the walk stopped at max_rows {MaxRows} and further rows were cut (raise max_rows to read them); columns: {Columns}")]
    private static partial void LogColumnsCut(ILogger logger, string deviceId, string table, int maxRows, string columns);

    private enum Unreadable : byte
    {
        None,
        NoSuchObject,
        NoSuchInstance,
        EndOfMibView,
        NotNumeric,
        NoSuchName,
        BadValue,
    }

    private enum ColumnNote : byte
    {
        None,
        Empty,
        EmptyWithInstance,
        EmptyCounterOverV1,
        Cut,
    }
}
