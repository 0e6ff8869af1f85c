using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using EdgeTwin.Snmp.Messages;
using EdgeTwin.Snmp.Security;
using EdgeTwin.Snmp.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Snmp.Client;

/// <summary>
/// SNMP manager. One UDP socket serves any number of concurrent requests to any number of agents; responses are
/// matched by request-id (v1/v2c) or msgID (v3) and by source address. Every request has its own timeout and
/// retries, driven by timers that fire whether or not anything arrives, plus the caller's CancellationToken.
/// </summary>
public sealed partial class SnmpClient : IAsyncDisposable
{
    private readonly SnmpUdpTransport _transport;
    private readonly ConcurrentDictionary<int, Pending> _pending = new();
    private readonly ConcurrentDictionary<IPEndPoint, Lazy<Task<EngineClock>>> _engines = new();
    // The latest exchange with each agent, so a datagram from it that is dropped (malformed, a request-id not in flight)
    // can be named in that exchange's timeout instead of leaving a bare "no response".
    private readonly ConcurrentDictionary<IPEndPoint, Pending> _latestByRemote = new();
    // What fits in an agent's answers once it has answered tooBig: GET and GETNEXT varbinds per agent, GETBULK
    // max-repetitions per agent and walked subtree (a column of long strings must not hold a column of integers to its size).
    private readonly ConcurrentDictionary<IPEndPoint, FittingSize> _getSizes = new();
    private readonly ConcurrentDictionary<IPEndPoint, FittingSize> _getNextSizes = new();
    private readonly ConcurrentDictionary<(IPEndPoint, Oid), FittingSize> _bulkSizes = new();
    // Columns walked together: varbinds (columns × repetitions) per GETBULK, per agent and first column.
    private readonly ConcurrentDictionary<(IPEndPoint, Oid), FittingSize> _tableBulkSizes = new();
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Func<int, IReadOnlyList<VarBind>?> _namesOf;
    private int _nextId;

    /// <param name="timeProvider">Time for what the client remembers of an agent (how long a refused answer size is
    /// believed; its monotonic timestamps run each SNMPv3 agent's engine time on between messages); requests' timeouts
    /// run on their own timers.</param>
    public SnmpClient(ILogger<SnmpClient>? logger = null, IPEndPoint? bind = null, TimeProvider? timeProvider = null)
    {
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
        _transport = SnmpUdpTransport.Bind(bind, _logger);
        _nextId = RandomNumberGenerator.GetInt32(1, int.MaxValue / 2);
        _namesOf = NamesOf;
        _transport.Start(OnDatagram);
    }

    public IPEndPoint LocalEndPoint => _transport.LocalEndPoint;

    /// <summary>Requests currently waiting for an answer.</summary>
    public int InFlight => _pending.Count;

    public Task<IReadOnlyList<VarBind>> GetAsync(SnmpTarget target, IReadOnlyList<Oid> oids, CancellationToken cancellationToken) =>
        GetManyAsync(target, PduType.GetRequest, oids, cancellationToken);

    /// <summary>One GETNEXT of <paramref name="oids"/> (in parts of the size that fits after a tooBig, as GET).</summary>
    public Task<IReadOnlyList<VarBind>> GetNextAsync(SnmpTarget target, IReadOnlyList<Oid> oids, CancellationToken cancellationToken) =>
        GetManyAsync(target, PduType.GetNextRequest, oids, cancellationToken);

    /// <summary>The kept varbind counts of GET or GETNEXT (a GETNEXT answer holds other objects than a GET of the same OIDs).</summary>
    private ConcurrentDictionary<IPEndPoint, FittingSize> SizesOf(PduType type) => type == PduType.GetRequest ? _getSizes : _getNextSizes;

    private async Task<IReadOnlyList<VarBind>> GetManyAsync(SnmpTarget target, PduType type, IReadOnlyList<Oid> oids, CancellationToken cancellationToken)
    {
        var size = SizeFor(SizesOf(type), target.EndPoint, oids.Count);
        return size >= oids.Count
            ? await GetFittingAsync(target, type, oids, cancellationToken).ConfigureAwait(false)
            // The agent answered tooBig to this many before: ask in parts of the size that fit, without the tooBig round trip.
            : await GetInPartsAsync(target, type, oids, size, cancellationToken).ConfigureAwait(false);
    }

    private async Task<IReadOnlyList<VarBind>> GetInPartsAsync(SnmpTarget target, PduType type, IReadOnlyList<Oid> oids, int size, CancellationToken cancellationToken)
    {
        var all = new List<VarBind>(oids.Count);
        for (var start = 0; start < oids.Count; start += size)
        {
            all.AddRange(await GetFittingAsync(target, type, Part(oids, start, size), cancellationToken).ConfigureAwait(false));
        }
        return all;
    }

    private async Task<IReadOnlyList<VarBind>> GetFittingAsync(SnmpTarget target, PduType type, IReadOnlyList<Oid> oids, CancellationToken cancellationToken)
    {
        var sizes = SizesOf(type);
        var response = await RequestAsync(target, id => SnmpPdu.Asking(type, id, oids), cancellationToken).ConfigureAwait(false);
        if (response.ErrorStatus == SnmpErrorStatus.TooBig && oids.Count > 1)
        {
            // Ask again in parts: the size that fit before, or halves.
            var size = TooBig(sizes, target.EndPoint, target, oids.Count, type == PduType.GetRequest ? "GET varbinds" : "GETNEXT varbinds");
            return await GetInPartsAsync(target, type, oids, size, cancellationToken).ConfigureAwait(false);
        }
        if (response.ErrorStatus != SnmpErrorStatus.TooBig)
        {
            Answered(sizes, target.EndPoint, oids.Count);
        }
        ThrowOnError(target, response, oids);
        if (type == PduType.GetRequest)
        {
            CheckAnswersGet(target, response.VarBinds, oids);
        }
        return response.VarBinds;
    }

    private static Oid[] Part(IReadOnlyList<Oid> oids, int start, int size)
    {
        var part = new Oid[Math.Min(size, oids.Count - start)];
        for (var i = 0; i < part.Length; i++)
        {
            part[i] = oids[start + i];
        }
        return part;
    }

    private static int SizeFor<TKey>(ConcurrentDictionary<TKey, FittingSize> sizes, TKey key, int wanted) where TKey : notnull =>
        sizes.TryGetValue(key, out var size) ? size.For(wanted) : wanted;

    /// <summary>Records a tooBig answer to <paramref name="size"/>; returns the size to ask again with.</summary>
    private int TooBig<TKey>(ConcurrentDictionary<TKey, FittingSize> sizes, TKey key, SnmpTarget target, int size, string what) where TKey : notnull
    {
        SnmpMetrics.TooBig.Add(1);
        var fitting = sizes.GetOrAdd(key, static (_, time) => new FittingSize(time), _time);
        var next = fitting.TooBig(size);
        LogTooBig(_logger, target.EndPoint, size, what, next);
        return next;
    }

    private static void Answered<TKey>(ConcurrentDictionary<TKey, FittingSize> sizes, TKey key, int size) where TKey : notnull
    {
        if (sizes.TryGetValue(key, out var fitting))
        {
            fitting.Answered(size);
        }
    }

    /// <summary>
    /// A GET's answer must hold one varbind per asked OID, in order, each named by that OID (RFC 3416 4.2.1): a value
    /// under another name, or a missing or extra one, cannot be attributed to what was asked.
    /// </summary>
    private static void CheckAnswersGet(SnmpTarget target, IReadOnlyList<VarBind> answer, IReadOnlyList<Oid> asked)
    {
        if (answer.Count != asked.Count)
        {
            throw new SnmpException($"{target}: answered {answer.Count} varbind(s) to a GET of {asked.Count} ({Describe(asked)}): the response does not match the request");
        }
        for (var i = 0; i < asked.Count; i++)
        {
            if (answer[i].Oid != asked[i])
            {
                throw new SnmpException($"{target}: GET of {asked[i].ToNumericString()} answered {answer[i].Oid.ToNumericString()} (varbind {i + 1} of {asked.Count}): the response does not match the request");
            }
        }
    }

    private static string Describe(IReadOnlyList<Oid> oids) =>
        oids.Count == 0 ? "no OID" : oids[0].ToNumericString() + (oids.Count > 1 ? $" and {oids.Count - 1} more" : "");

    /// <summary>
    /// GET that survives per-varbind errors: when the agent answers noSuchName or badValue with an error-index (what an
    /// SNMPv1 agent does for one missing OID, where v2c would return noSuchObject in the varbind), that varbind is
    /// dropped, <paramref name="errors"/> gets the status at its position, and the rest is asked again, like
    /// net-snmp's <c>snmpget -Cf</c>. The result has one varbind per asked OID, in order (a dropped one carries Null).
    /// Any other error-status, a timeout or a USM failure still throws.
    /// </summary>
    public async Task<VarBind[]> GetEachAsync(SnmpTarget target, IReadOnlyList<Oid> oids, Memory<SnmpErrorStatus> errors, CancellationToken cancellationToken)
    {
        if (errors.Length < oids.Count)
        {
            throw new ArgumentException($"errors has {errors.Length} slots for {oids.Count} OIDs", nameof(errors));
        }
        errors.Span[..oids.Count].Clear();
        var results = new VarBind[oids.Count];
        // In parts of the size that fit when the agent answered tooBig to this many before.
        var size = SizeFor(_getSizes, target.EndPoint, oids.Count);
        for (var start = 0; start < oids.Count; start += size)
        {
            var pending = new List<int>(Math.Min(size, oids.Count - start));
            for (var i = start; i < oids.Count && i < start + size; i++)
            {
                pending.Add(i);
            }
            await GetEachCoreAsync(target, oids, pending, results, errors, cancellationToken).ConfigureAwait(false);
        }
        return results;
    }

    private async Task GetEachCoreAsync(SnmpTarget target, IReadOnlyList<Oid> oids, List<int> pending, VarBind[] results, Memory<SnmpErrorStatus> errors, CancellationToken cancellationToken)
    {
        // Each error answer removes one varbind, so at most pending.Count re-sends; the cap also stops an agent that
        // keeps pointing at the same index.
        var resendsLeft = pending.Count;
        while (pending.Count > 0)
        {
            var ask = new Oid[pending.Count];
            for (var i = 0; i < ask.Length; i++)
            {
                ask[i] = oids[pending[i]];
            }
            var response = await RequestAsync(target, id => SnmpPdu.Asking(PduType.GetRequest, id, ask), cancellationToken).ConfigureAwait(false);
            if (response.ErrorStatus == SnmpErrorStatus.TooBig && pending.Count > 1)
            {
                var size = TooBig(_getSizes, target.EndPoint, target, pending.Count, "GET varbinds");
                for (var start = 0; start < pending.Count; start += size)
                {
                    await GetEachCoreAsync(target, oids, pending.GetRange(start, Math.Min(size, pending.Count - start)), results, errors, cancellationToken).ConfigureAwait(false);
                }
                return;
            }
            if (response.ErrorStatus != SnmpErrorStatus.TooBig)
            {
                Answered(_getSizes, target.EndPoint, pending.Count);
            }
            if (response.ErrorStatus is SnmpErrorStatus.NoSuchName or SnmpErrorStatus.BadValue
                && response.ErrorIndex >= 1 && response.ErrorIndex <= pending.Count && resendsLeft > 0)
            {
                var dropped = pending[response.ErrorIndex - 1];
                results[dropped] = VarBind.Null(oids[dropped]);
                errors.Span[dropped] = response.ErrorStatus;
                pending.RemoveAt(response.ErrorIndex - 1);
                resendsLeft--;
                continue;
            }
            ThrowOnError(target, response, ask);
            CheckAnswersGet(target, response.VarBinds, ask);
            for (var i = 0; i < ask.Length; i++)
            {
                results[pending[i]] = response.VarBinds[i];
            }
            return;
        }
    }

    public Task<IReadOnlyList<VarBind>> GetBulkAsync(SnmpTarget target, int nonRepeaters, int maxRepetitions, IReadOnlyList<Oid> oids, CancellationToken cancellationToken) =>
        GetBulkAsync(target, nonRepeaters, maxRepetitions, oids, oids.Count > 0 ? oids[0] : default, cancellationToken);

    /// <param name="sizeKey">Whose kept max-repetitions to use after a tooBig: the walked subtree's root.</param>
    private async Task<IReadOnlyList<VarBind>> GetBulkAsync(SnmpTarget target, int nonRepeaters, int maxRepetitions, IReadOnlyList<Oid> oids, Oid sizeKey, CancellationToken cancellationToken)
    {
        if (target.Version == SnmpVersion.V1)
        {
            throw new ArgumentException($"{target}: GetBulk does not exist in SNMPv1", nameof(target));
        }
        // Starts at the repetitions that fit when the agent answered tooBig before, so a walk pays that round trip once,
        // not on every GETBULK of every poll.
        var key = (target.EndPoint, sizeKey);
        maxRepetitions = SizeFor(_bulkSizes, key, maxRepetitions);
        while (true)
        {
            var reps = maxRepetitions;
            var response = await RequestAsync(target, id => SnmpPdu.Asking(PduType.GetBulkRequest, id, oids, nonRepeaters, reps), cancellationToken).ConfigureAwait(false);
            if (response.ErrorStatus == SnmpErrorStatus.TooBig && maxRepetitions > 1)
            {
                maxRepetitions = TooBig(_bulkSizes, key, target, maxRepetitions, "GETBULK repetitions");
                continue;
            }
            if (response.ErrorStatus != SnmpErrorStatus.TooBig)
            {
                // What the answer held, not what was asked: one that ends early (the end of the MIB) proves no size.
                Answered(_bulkSizes, key, Math.Min(reps, RepetitionsIn(response, nonRepeaters, oids.Count)));
            }
            ThrowOnError(target, response, oids);
            return response.VarBinds;
        }
    }

    private static int RepetitionsIn(SnmpPdu response, int nonRepeaters, int asked)
    {
        nonRepeaters = Math.Clamp(nonRepeaters, 0, asked);
        var repeaters = asked - nonRepeaters;
        return repeaters == 0 ? int.MaxValue : Math.Max(0, (response.VarBinds.Count - nonRepeaters + repeaters - 1) / repeaters);
    }

    public async Task<IReadOnlyList<VarBind>> SetAsync(SnmpTarget target, IReadOnlyList<VarBind> varBinds, CancellationToken cancellationToken)
    {
        var response = await RequestAsync(target, id => SnmpPdu.Set(id, varBinds), cancellationToken).ConfigureAwait(false);
        if (response.ErrorStatus != SnmpErrorStatus.NoError)
        {
            // The asked OIDs only name the failing varbind: gathered on the error path alone.
            ThrowOnError(target, response, varBinds.Select(v => v.Oid).ToArray());
        }
        return response.VarBinds;
    }

    /// <summary>Walks the subtree under <paramref name="root"/> with GetNext (works with v1).</summary>
    public async Task<IReadOnlyList<VarBind>> WalkAsync(SnmpTarget target, Oid root, CancellationToken cancellationToken, int maxRows = 100_000)
    {
        var rows = new List<VarBind>();
        var current = root;
        while (rows.Count < maxRows)
        {
            Oid[] ask = [current];
            var response = await RequestAsync(target, id => SnmpPdu.GetNext(id, ask), cancellationToken).ConfigureAwait(false);
            if (response.ErrorStatus == SnmpErrorStatus.NoSuchName && target.Version == SnmpVersion.V1)
            {
                break; // v1 end of MIB
            }
            ThrowOnError(target, response, ask);
            if (response.VarBinds.Count == 0)
            {
                break;
            }
            var vb = response.VarBinds[0];
            if (vb.Value.IsException || !vb.Oid.IsChildOf(root))
            {
                break;
            }
            CheckIncreasing(target, current, vb.Oid);
            rows.Add(vb);
            current = vb.Oid;
        }
        return rows;
    }

    /// <summary>
    /// Walks the subtree under <paramref name="root"/> with GetBulk (GetNext for v1). Stops at the end of the subtree,
    /// at endOfMibView, or after <paramref name="maxRows"/>; an agent that returns non-increasing OIDs is an error (loop).
    /// </summary>
    public async Task<IReadOnlyList<VarBind>> BulkWalkAsync(SnmpTarget target, Oid root, CancellationToken cancellationToken, int maxRows = 100_000)
    {
        if (target.Version == SnmpVersion.V1)
        {
            return await WalkAsync(target, root, cancellationToken, maxRows).ConfigureAwait(false);
        }
        var rows = new List<VarBind>();
        await BulkWalkOnAsync(target, root, root, rows, maxRows, cancellationToken).ConfigureAwait(false);
        return rows;
    }

    /// <summary>Walks on under <paramref name="root"/> from <paramref name="current"/>, adding to <paramref name="rows"/>.</summary>
    private async Task BulkWalkOnAsync(SnmpTarget target, Oid root, Oid current, List<VarBind> rows, int maxRows, CancellationToken cancellationToken)
    {
        while (rows.Count < maxRows)
        {
            var reps = Math.Max(1, Math.Min(target.MaxRepetitions, maxRows - rows.Count));
            var vbs = await GetBulkAsync(target, 0, reps, [current], root, cancellationToken).ConfigureAwait(false);
            if (vbs.Count == 0)
            {
                break;
            }
            foreach (var vb in vbs)
            {
                if (vb.Value.IsException || !vb.Oid.IsChildOf(root))
                {
                    return;
                }
                CheckIncreasing(target, current, vb.Oid);
                rows.Add(vb);
                current = vb.Oid;
                if (rows.Count >= maxRows)
                {
                    break;
                }
            }
        }
    }

    /// <summary>
    /// Walks the columns under <paramref name="roots"/> together, like net-snmp's snmptable: each GETBULK carries one
    /// varbind per column still walking (non-repeaters 0), each continuing from that column's own last OID, so a table of
    /// N columns and R rows costs about R / repetitions round trips instead of N times that. The result for each root is
    /// exactly what <see cref="BulkWalkAsync"/> of that root alone returns (a column with holes simply answers its next
    /// row; one that leaves its subtree, reaches endOfMibView or <paramref name="maxRows"/>[i] is dropped from the next
    /// request). SNMPv1 has no GETBULK: each column is walked alone with GETNEXT, as <see cref="BulkWalkAsync"/> does.
    /// </summary>
    /// <param name="maxRows">Per root: the most rows to read.</param>
    /// <remarks>
    /// Each request asks <see cref="SnmpTarget.MaxRepetitions"/> repetitions (fewer near the caps); an agent may answer
    /// fewer (RFC 3416 4.2.3: net-snmp's snmpd cuts a GETBULK to 100 varbinds by default, and to what fits its buffer),
    /// and the walk goes on from what came. After a tooBig the varbinds per request that fit are kept per agent and
    /// first root, as <see cref="FittingSize"/> (the unit is varbinds, not repetitions, so it holds as columns drop out).
    /// </remarks>
    public async Task<IReadOnlyList<VarBind>[]> BulkWalkColumnsAsync(SnmpTarget target, IReadOnlyList<Oid> roots, IReadOnlyList<int> maxRows, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(roots);
        ArgumentNullException.ThrowIfNull(maxRows);
        if (maxRows.Count != roots.Count)
        {
            throw new ArgumentException($"{maxRows.Count} row caps for {roots.Count} roots", nameof(maxRows));
        }
        var results = new IReadOnlyList<VarBind>[roots.Count];
        if (target.Version == SnmpVersion.V1 || roots.Count <= 1)
        {
            for (var i = 0; i < roots.Count; i++)
            {
                results[i] = await BulkWalkAsync(target, roots[i], cancellationToken, maxRows[i]).ConfigureAwait(false);
            }
            return results;
        }
        var rows = new List<VarBind>[roots.Count];
        var current = new Oid[roots.Count];
        // The columns still walking, in root order; rebuilt only when one ends.
        var active = new int[roots.Count];
        var activeCount = 0;
        for (var i = 0; i < roots.Count; i++)
        {
            rows[i] = [];
            results[i] = rows[i];
            current[i] = roots[i];
            if (maxRows[i] > 0)
            {
                active[activeCount++] = i;
            }
        }
        var ask = new Oid[activeCount];
        var key = (target.EndPoint, roots[0]);
        while (activeCount > 0)
        {
            if (ask.Length != activeCount)
            {
                ask = new Oid[activeCount];
            }
            var remaining = 1;
            for (var a = 0; a < activeCount; a++)
            {
                var c = active[a];
                ask[a] = current[c];
                remaining = Math.Max(remaining, maxRows[c] - rows[c].Count);
            }
            var reps = Math.Max(1, Math.Min(target.MaxRepetitions, remaining));
            var wanted = reps > int.MaxValue / activeCount ? int.MaxValue : reps * activeCount;
            var varbinds = SizeFor(_tableBulkSizes, key, wanted);
            if (varbinds < activeCount && activeCount > 1)
            {
                // One row of every column is known not to fit the agent's answers: each goes on alone, without paying
                // the tooBig again.
                await WalkOnAloneAsync(target, roots, maxRows, rows, current, active, activeCount, cancellationToken).ConfigureAwait(false);
                break;
            }
            reps = Math.Max(1, varbinds / activeCount);
            IReadOnlyList<VarBind>? answer = null;
            while (true)
            {
                var asked = reps;
                var response = await RequestAsync(target, id => SnmpPdu.Asking(PduType.GetBulkRequest, id, ask, 0, asked), cancellationToken).ConfigureAwait(false);
                if (response.ErrorStatus == SnmpErrorStatus.TooBig && (reps > 1 || activeCount > 1))
                {
                    var fits = TooBig(_tableBulkSizes, key, target, reps * activeCount, "GETBULK varbinds (columns × repetitions)");
                    if (fits < activeCount)
                    {
                        break; // not even one row of every column: each column alone (a walk of one does as before)
                    }
                    reps = fits / activeCount;
                    continue;
                }
                if (response.ErrorStatus != SnmpErrorStatus.TooBig)
                {
                    Answered(_tableBulkSizes, key, Math.Min(reps * activeCount, response.VarBinds.Count));
                }
                ThrowOnError(target, response, ask);
                answer = response.VarBinds;
                break;
            }
            if (answer is null)
            {
                await WalkOnAloneAsync(target, roots, maxRows, rows, current, active, activeCount, cancellationToken).ConfigureAwait(false);
                break;
            }
            if (answer.Count == 0)
            {
                break; // nothing came: as a walk of one column, the end
            }
            // Repetition r of the a-th asked column is varbind r * activeCount + a (RFC 3416 4.2.3); a cut answer may end
            // within a repetition, and a column that got nothing is asked again from where it was.
            var still = 0;
            for (var a = 0; a < activeCount; a++)
            {
                var c = active[a];
                var walking = true;
                for (var at = a; at < answer.Count && walking; at += activeCount)
                {
                    var vb = answer[at];
                    if (vb.Value.IsException || !vb.Oid.IsChildOf(roots[c]))
                    {
                        walking = false;
                        break;
                    }
                    CheckIncreasing(target, current[c], vb.Oid);
                    rows[c].Add(vb);
                    current[c] = vb.Oid;
                    walking = rows[c].Count < maxRows[c];
                }
                if (walking)
                {
                    active[still++] = c;
                }
            }
            activeCount = still;
        }
        return results;
    }

    /// <summary>Walks each still active column on alone, from where the walk together left it.</summary>
    private async Task WalkOnAloneAsync(SnmpTarget target, IReadOnlyList<Oid> roots, IReadOnlyList<int> maxRows, List<VarBind>[] rows, Oid[] current, int[] active, int activeCount, CancellationToken cancellationToken)
    {
        for (var a = 0; a < activeCount; a++)
        {
            var c = active[a];
            await BulkWalkOnAsync(target, roots[c], current[c], rows[c], maxRows[c], cancellationToken).ConfigureAwait(false);
        }
    }

    private static void CheckIncreasing(SnmpTarget target, Oid previous, Oid next)
    {
        if (next <= previous)
        {
            throw new SnmpException($"{target}: OID not increasing: {next.ToNumericString()} after {previous.ToNumericString()} (agent loop)");
        }
    }

    private static void ThrowOnError(SnmpTarget target, SnmpPdu response, IReadOnlyList<Oid> asked)
    {
        if (response.ErrorStatus == SnmpErrorStatus.NoError)
        {
            return;
        }
        var where = response.ErrorIndex >= 1 && response.ErrorIndex <= asked.Count
            ? $"{target}, OID {asked[response.ErrorIndex - 1].ToNumericString()}"
            : $"{target}, request for {Describe(asked)}";
        throw new SnmpErrorStatusException(response.ErrorStatus, response.ErrorIndex, where);
    }

    private int NextId()
    {
        var id = Interlocked.Increment(ref _nextId) & 0x7fffffff;
        return id == 0 ? NextId() : id;
    }

    /// <summary>Sends one PDU (built with a fresh id) and returns the response PDU; raises timeout and USM errors.</summary>
    public async Task<SnmpPdu> RequestAsync(SnmpTarget target, Func<int, SnmpPdu> makePdu, CancellationToken cancellationToken)
    {
        if (target.Version != SnmpVersion.V3)
        {
            var id = NextId();
            var request = makePdu(id);
            var bytes = SnmpMessageCodec.Encode(SnmpMessage.ForCommunity(target.Version, target.Community, request));
            var received = await ExchangeAsync(target, id, bytes, target.Retries, request, null, cancellationToken).ConfigureAwait(false);
            return received.Message.Pdu!;
        }
        var user = target.User ?? throw new ArgumentException($"{target}: SNMPv3 needs a user", nameof(target));
        var engine = await GetEngineAsync(target, cancellationToken).ConfigureAwait(false);
        // One time re-sync and one re-discovery per request (a replaced device may need both), then the error.
        var resynced = false;
        var rediscovered = false;
        while (true)
        {
            var id = NextId();
            var request = makePdu(id);
            var bytes = BuildV3(target, user, engine, id, request, V3Flags.Reportable | LevelFlags(user.Level));
            Received received;
            try
            {
                received = await ExchangeAsync(target, id, bytes, target.Retries, request, new V3Check(user, engine.EngineId), cancellationToken).ConfigureAwait(false);
            }
            catch (SnmpTimeoutException) when (user.Level == SnmpSecurityLevel.AuthPriv)
            {
                // net-snmp silently drops a request it cannot decrypt. Tell "wrong privacy password" from "agent down":
                // if the agent answers the same user at authNoPriv, authentication is fine and privacy is what fails.
                if (await AnswersWithoutPrivacyAsync(target, user, engine, cancellationToken).ConfigureAwait(false))
                {
                    SnmpMetrics.UsmErrors.Add(1, new KeyValuePair<string, object?>("kind", nameof(UsmError.DecryptionError)));
                    var hint = Usm.KeyExtensionHint(user) is { } h ? "; " + h : "";
                    throw new SnmpUsmException(UsmError.DecryptionError,
                        $"{target}: no answer at authPriv although the agent answers this user at authNoPriv: wrong privacy password or protocol ({UsmCrypto.Name(user.Priv)}){hint}");
                }
                throw;
            }
            var msg = received.Message;
            var authenticated = (msg.Flags & V3Flags.Auth) != 0;
            if (received.Failure is { } failure)
            {
                throw UsmFailure(target, failure, received.FailureDetail, user);
            }
            if (authenticated)
            {
                var verdict = engine.Accept(msg.Usm.EngineBoots, msg.Usm.EngineTime);
                if (verdict != Timeliness.InWindow)
                {
                    // RFC 3414 3.2.7(b): outside the time window the message is not authentic and is discarded. An agent
                    // whose clock went back (a device that does not keep its boots, one replaced with the same engine id)
                    // is learned again by a discovery; a latched or wrapped boots is the agent's to fix, but the next
                    // request discovers again, so it is noticed when it has been.
                    Forget(target, engine);
                    if (verdict == Timeliness.Behind && !rediscovered)
                    {
                        rediscovered = true;
                        LogClockWentBack(_logger, target.EndPoint, msg.Usm.EngineBoots, msg.Usm.EngineTime);
                        engine = await GetEngineAsync(target, cancellationToken).ConfigureAwait(false);
                        continue;
                    }
                    throw UsmFailure(target, UsmError.NotInTimeWindow, engine.Explain(verdict, msg.Usm.EngineBoots, msg.Usm.EngineTime));
                }
            }
            var pdu = msg.Pdu ?? throw UsmFailure(target, UsmError.ResponseDecryptionFailed, "encrypted response without authentication");
            if (pdu.Type == PduType.Report)
            {
                var error = Usm.ReportError(pdu) ?? UsmError.OtherReport;
                if (error == UsmError.NotInTimeWindow && !resynced)
                {
                    // RFC 3414 3.2.7: the report carries the agent's boots/time (taken above when authenticated); try once more.
                    if (!authenticated)
                    {
                        engine.Force(msg.Usm.EngineBoots, msg.Usm.EngineTime);
                    }
                    resynced = true;
                    LogTimeResync(_logger, target.EndPoint, msg.Usm.EngineBoots, msg.Usm.EngineTime);
                    continue;
                }
                if (error == UsmError.UnknownEngineId && !rediscovered)
                {
                    // Another engine id at this address (a replaced device): discover it and ask again.
                    rediscovered = true;
                    Forget(target, engine);
                    engine = await GetEngineAsync(target, cancellationToken).ConfigureAwait(false);
                    continue;
                }
                throw UsmFailure(target, error, error == UsmError.OtherReport && pdu.VarBinds.Count > 0 ? pdu.VarBinds[0].ToString() : null, user);
            }
            if (!authenticated && user.Level != SnmpSecurityLevel.NoAuthNoPriv)
            {
                throw UsmFailure(target, UsmError.ResponseAuthenticationFailed, "the response was not authenticated");
            }
            return pdu;
        }
    }

    /// <summary>Drops the cached engine when it is still <paramref name="stale"/>, so requests racing on the same change
    /// share one discovery instead of each removing the other's.</summary>
    private void Forget(SnmpTarget target, EngineClock stale)
    {
        if (_engines.TryGetValue(target.EndPoint, out var lazy) && lazy.IsValueCreated
            && lazy.Value is { IsCompletedSuccessfully: true } task && ReferenceEquals(task.Result, stale))
        {
            _engines.TryRemove(new KeyValuePair<IPEndPoint, Lazy<Task<EngineClock>>>(target.EndPoint, lazy));
        }
    }

    private async Task<bool> AnswersWithoutPrivacyAsync(SnmpTarget target, SnmpV3User user, EngineClock engine, CancellationToken cancellationToken)
    {
        var id = NextId();
        var pdu = SnmpPdu.Get(id, []);
        var probe = BuildV3(target, user, engine, id, pdu, V3Flags.Reportable | V3Flags.Auth);
        try
        {
            var received = await ExchangeAsync(target, id, probe, 0, pdu, new V3Check(user, engine.EngineId), cancellationToken).ConfigureAwait(false);
            return (received.Message.Flags & V3Flags.Auth) != 0 && received.Failure is null;
        }
        catch (SnmpTimeoutException)
        {
            return false;
        }
    }

    private SnmpUsmException UsmFailure(SnmpTarget target, UsmError error, string? detail = null, SnmpV3User? user = null)
    {
        if (error is UsmError.DecryptionError or UsmError.ResponseDecryptionFailed && user is not null && Usm.KeyExtensionHint(user) is { } hint)
        {
            detail = detail is null ? hint : detail + "; " + hint;
        }
        SnmpMetrics.UsmErrors.Add(1, new KeyValuePair<string, object?>("kind", error.ToString()));
        LogUsmError(_logger, target.EndPoint, error);
        return new SnmpUsmException(error, $"{target}: {Usm.Describe(error)}{(detail is null ? "" : " - " + detail)}");
    }

    private static V3Flags LevelFlags(SnmpSecurityLevel level) => level switch
    {
        SnmpSecurityLevel.AuthPriv => V3Flags.Auth | V3Flags.Priv,
        SnmpSecurityLevel.AuthNoPriv => V3Flags.Auth,
        _ => V3Flags.None,
    };

    private static byte[] BuildV3(SnmpTarget target, SnmpV3User user, EngineClock engine, int id, SnmpPdu pdu, V3Flags flags)
    {
        var (boots, time) = engine.Now();
        var msg = new SnmpMessage
        {
            Version = SnmpVersion.V3,
            MessageId = id,
            Flags = flags,
            Pdu = pdu,
            ContextEngineId = engine.EngineId,
            ContextName = Encoding.UTF8.GetBytes(target.ContextName),
        };
        return Usm.Encode(msg, user, engine.EngineId, boots, time);
    }

    private async Task<EngineClock> GetEngineAsync(SnmpTarget target, CancellationToken cancellationToken)
    {
        var lazy = _engines.GetOrAdd(target.EndPoint, _ => new Lazy<Task<EngineClock>>(() => DiscoverAsync(target)));
        try
        {
            return await lazy.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception) when (lazy.Value.IsFaulted)
        {
            // Do not cache a failed discovery: the next request tries again.
            _engines.TryRemove(new KeyValuePair<IPEndPoint, Lazy<Task<EngineClock>>>(target.EndPoint, lazy));
            throw;
        }
    }

    /// <summary>RFC 3414 section 4: an unauthenticated, reportable request with an empty engine id draws a Report with the id.</summary>
    private async Task<EngineClock> DiscoverAsync(SnmpTarget target)
    {
        var id = NextId();
        var pdu = SnmpPdu.Get(id, []);
        var bytes = SnmpMessageCodec.Encode(new SnmpMessage { Version = SnmpVersion.V3, MessageId = id, Flags = V3Flags.Reportable, Pdu = pdu });
        var received = await ExchangeAsync(target, id, bytes, target.Retries, pdu, null, CancellationToken.None).ConfigureAwait(false);
        var usm = received.Message.Usm;
        if (usm.EngineId.Length == 0)
        {
            throw new SnmpUsmException(UsmError.UnknownEngineId, $"{target}: engine discovery returned an empty engine id");
        }
        if (_logger.IsEnabled(LogLevel.Debug))
        {
#pragma warning disable CA1873 // guarded by IsEnabled above
            LogDiscovered(_logger, target.EndPoint, Convert.ToHexString(usm.EngineId), usm.EngineBoots, usm.EngineTime);
#pragma warning restore CA1873
        }
        return new EngineClock(usm.EngineId, usm.EngineBoots, usm.EngineTime, _time);
    }

    /// <param name="v3">For an SNMPv3 request of a user: how to authenticate and decrypt its answer, which happens as the
    /// datagram is matched (the scoped PDU's request-id is readable only then); null for v1/v2c and engine discovery.</param>
    private async Task<Received> ExchangeAsync(SnmpTarget target, int id, byte[] datagram, int retries, SnmpPdu request, V3Check? v3, CancellationToken cancellationToken)
    {
        var pending = new Pending(SnmpUdpTransport.Normalize(target.EndPoint), target.Version, request.RequestId, request.VarBinds, v3);
        if (!_pending.TryAdd(id, pending))
        {
            throw new InvalidOperationException($"request id {id} already in flight");
        }
        _latestByRemote[pending.Remote] = pending;
        try
        {
            SnmpMetrics.Requests.Add(1);
            for (var attempt = 0; attempt <= retries; attempt++)
            {
                if (attempt > 0)
                {
                    SnmpMetrics.Retries.Add(1);
                }
                try
                {
                    await _transport.SendAsync(datagram, target.EndPoint, cancellationToken).ConfigureAwait(false);
                    return await pending.Completion.Task.WaitAsync(target.Timeout, cancellationToken).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    // next attempt
                }
                catch (OperationCanceledException ex) when (cancellationToken.IsCancellationRequested && pending.HasRejections)
                {
                    // The caller's deadline (a poll's budget) ended the wait before our timers did: say what the agent sent
                    // meanwhile, as a timeout does, in the SnmpTimeoutException inside.
                    throw new OperationCanceledException(ex.Message, new SnmpTimeoutException(
                        $"{target}: {DescribeRequest(request)}: no response before the caller's deadline (attempt {attempt + 1} of {retries + 1}){pending.RejectedText()}"),
                        cancellationToken);
                }
            }
            SnmpMetrics.Timeouts.Add(1);
            throw new SnmpTimeoutException($"{target}: {DescribeRequest(request)}: no response after {retries + 1} attempt(s) of {target.Timeout.TotalSeconds:0.###} s{pending.RejectedText()}");
        }
        finally
        {
            _pending.TryRemove(id, out _);
            _latestByRemote.TryRemove(new KeyValuePair<IPEndPoint, Pending>(pending.Remote, pending));
        }
    }

    private static string DescribeRequest(SnmpPdu pdu)
    {
        var what = pdu.Type switch
        {
            PduType.GetRequest => "GET",
            PduType.GetNextRequest => "GETNEXT",
            PduType.GetBulkRequest => "GETBULK",
            PduType.SetRequest => "SET",
            _ => pdu.Type.ToString(),
        };
        return pdu.VarBinds.Count == 0 ? what + " without varbinds (SNMPv3 discovery or probe)" : what + " of " + Describe(pdu.VarBinds.Select(v => v.Oid).ToArray());
    }

    private void OnDatagram(ReadOnlyMemory<byte> datagram, IPEndPoint remote)
    {
        SnmpMessage msg;
        try
        {
            msg = SnmpMessageCodec.Decode(datagram.Span, _namesOf);
        }
        catch (SnmpProtocolException ex)
        {
            SnmpMetrics.Malformed.Add(1);
            LogMalformed(_logger, remote, ex.Reason, ex.Offset);
            if (_latestByRemote.TryGetValue(remote, out var waiting))
            {
                waiting.Reject($"malformed ({ex.Reason} at offset {ex.Offset} of {datagram.Length} bytes)");
            }
            return;
        }
        var id = msg.Version == SnmpVersion.V3 ? msg.MessageId : msg.Pdu!.RequestId;
        if (msg.Version != SnmpVersion.V3 && msg.Pdu!.Type != PduType.Response)
        {
            return;
        }
        if (!_pending.TryGetValue(id, out var pending))
        {
            SnmpMetrics.Unmatched.Add(1);
            LogUnmatched(_logger, remote, id);
            if (_latestByRemote.TryGetValue(remote, out var waiting))
            {
                waiting.Reject($"request-id {id} is not in flight (a late answer, or a wrong request-id)");
            }
            return;
        }
        var problem = !pending.Remote.Equals(remote) ? $"request-id {id} answered from {remote} instead of {pending.Remote}"
            // A v1 answer to a v2c request (or a v3 message whose msgID happens to equal a v2c request-id) is not its answer.
            : msg.Version != pending.Version ? $"SNMP {msg.Version} message answering a {pending.Version} request"
            : msg.Version == SnmpVersion.V3 && msg.Pdu is { Type: not (PduType.Response or PduType.Report) } ? $"{msg.Pdu.Type} PDU instead of a response"
            : null;
        if (problem is not null)
        {
            SnmpMetrics.Unmatched.Add(1);
            LogRejected(_logger, remote, problem);
            pending.Reject(problem);
            return;
        }
        if (pending.V3 is { } v3 && (msg.Flags & V3Flags.Auth) != 0)
        {
            // Authenticated with the engine id we sent to (RFC 3414 3.2.4), then decrypted: a failure is the request's
            // error (a wrong key on our side), as before.
            if (!Usm.VerifyAuthentication(datagram.Span, v3.User, v3.EngineId))
            {
                pending.Completion.TrySetResult(new Received(msg, UsmError.ResponseAuthenticationFailed));
                return;
            }
            if (!Usm.TryDecrypt(msg, v3.User, out var why))
            {
                pending.Completion.TrySetResult(new Received(msg, UsmError.ResponseDecryptionFailed, why));
                return;
            }
        }
        if (msg.Version == SnmpVersion.V3 && msg.Pdu is { Type: PduType.Response } pdu && pdu.RequestId != pending.RequestId)
        {
            // RFC 3413 3.1.3: the msgID matched, but the PDU answers another request (a Report may carry any request-id,
            // RFC 3412 7.1.3, so only a Response is checked).
            problem = $"SNMPv3 msgID {id} carries request-id {pdu.RequestId}, not the {pending.RequestId} asked";
            SnmpMetrics.Unmatched.Add(1);
            LogRejected(_logger, remote, problem);
            pending.Reject(problem);
            return;
        }
        pending.Completion.TrySetResult(new Received(msg));
    }

    public ValueTask DisposeAsync()
    {
        foreach (var p in _pending.Values)
        {
            p.Completion.TrySetException(new ObjectDisposedException(nameof(SnmpClient)));
        }
        return _transport.DisposeAsync();
    }

    /// <summary>For the decoder: the varbinds asked by the request in flight under <paramref name="requestId"/>, whose OIDs
    /// its answer reuses when it names the same ones (a datagram that turns out not to be the answer loses nothing).</summary>
    private IReadOnlyList<VarBind>? NamesOf(int requestId) => _pending.TryGetValue(requestId, out var pending) ? pending.Asked : null;

    private sealed class Pending(IPEndPoint remote, SnmpVersion version, int requestId, IReadOnlyList<VarBind> asked, V3Check? v3)
    {
        private int _rejected;
        private string? _lastRejection;

        public IPEndPoint Remote { get; } = remote;
        public SnmpVersion Version { get; } = version;
        public int RequestId { get; } = requestId;
        public IReadOnlyList<VarBind> Asked { get; } = asked;
        public V3Check? V3 { get; } = v3;
        public TaskCompletionSource<Received> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Records a datagram that came from this request's agent (or bore its id) and was not taken as its answer.</summary>
        public void Reject(string why)
        {
            Interlocked.Increment(ref _rejected);
            Volatile.Write(ref _lastRejection, why);
        }

        public bool HasRejections => Volatile.Read(ref _rejected) > 0;

        public string RejectedText()
        {
            var count = Volatile.Read(ref _rejected);
            return count == 0 ? "" : $"; ignored {count} datagram(s) meanwhile, the last: {Volatile.Read(ref _lastRejection)}";
        }
    }

    /// <summary>An answer, or the USM check it failed (<see cref="Failure"/>; its PDU is then not to be read).</summary>
    private sealed record Received(SnmpMessage Message, UsmError? Failure = null, string? FailureDetail = null);

    /// <summary>The user an SNMPv3 request was sent as and the engine id it was sent to.</summary>
    private sealed record V3Check(SnmpV3User User, byte[] EngineId);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Malformed SNMP packet from {Remote}: {Reason} at offset {Offset}")]
    private static partial void LogMalformed(ILogger logger, IPEndPoint remote, string reason, int offset);

    [LoggerMessage(Level = LogLevel.Debug, Message = "SNMP response from {Remote} with request-id {RequestId}, which is not in flight (late or wrong): dropped")]
    private static partial void LogUnmatched(ILogger logger, IPEndPoint remote, int requestId);

    [LoggerMessage(Level = LogLevel.Debug, Message = "SNMP datagram from {Remote} dropped: {Problem}")]
    private static partial void LogRejected(ILogger logger, IPEndPoint remote, string problem);

    [LoggerMessage(Level = LogLevel.Debug, Message = "SNMP agent {Remote} answered tooBig to {Size} {What}; asking again with {Next} (kept for its next requests)")]
    private static partial void LogTooBig(ILogger logger, IPEndPoint remote, int size, string what, int next);

    [LoggerMessage(Level = LogLevel.Debug, Message = "SNMPv3 engine of {Remote}: id {EngineId}, boots {Boots}, time {Time}")]
    private static partial void LogDiscovered(ILogger logger, IPEndPoint remote, string engineId, int boots, int time);

    [LoggerMessage(Level = LogLevel.Information, Message = "SNMPv3 time re-sync with {Remote}: boots {Boots}, time {Time}")]
    private static partial void LogTimeResync(ILogger logger, IPEndPoint remote, int boots, int time);

    [LoggerMessage(Level = LogLevel.Warning, Message = "SNMPv3 agent {Remote} answered with boots {Boots}, time {Time}, behind what it said before by more than the 150 s window: discovering its engine again")]
    private static partial void LogClockWentBack(ILogger logger, IPEndPoint remote, int boots, int time);

    [LoggerMessage(Level = LogLevel.Warning, Message = "SNMPv3 security failure with {Remote}: {Error}")]
    private static partial void LogUsmError(ILogger logger, IPEndPoint remote, UsmError error);
}
