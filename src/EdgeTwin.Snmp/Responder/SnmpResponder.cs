using System.Net;
using System.Text;
using EdgeTwin.Snmp.Ber;
using EdgeTwin.Snmp.Messages;
using EdgeTwin.Snmp.Security;
using EdgeTwin.Snmp.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Snmp.Responder;

public sealed class SnmpResponderOptions
{
    /// <summary>Where to listen; port 0 picks a free one (see <see cref="SnmpResponder.LocalEndPoint"/>).</summary>
    public IPEndPoint EndPoint { get; init; } = new(IPAddress.Loopback, 0);

    /// <summary>Read-only communities for v1/v2c; empty disables v1/v2c.</summary>
    public IReadOnlyCollection<string> Communities { get; init; } = ["public"];

    /// <summary>
    /// Read-write communities for v1/v2c: SETs with them reach an <see cref="ISnmpWritableMibProvider"/> (empty: SETs are
    /// refused). They can also read. SNMPv3 users may always SET a writable provider.
    /// </summary>
    public IReadOnlyCollection<string> WriteCommunities { get; init; } = [];

    /// <summary>SNMPv3 users; empty disables v3.</summary>
    public IReadOnlyCollection<SnmpV3User> Users { get; init; } = [];

    /// <summary>Our engine id (null: a random one).</summary>
    public byte[]? EngineId { get; init; }

    public int EngineBoots { get; init; } = 1;

    /// <summary>Largest response we send (RFC 3417 minimum is 484); bigger answers become tooBig or shorter GetBulks.</summary>
    public int MaxResponseSize { get; init; } = 65_507;

    /// <summary>Cap on GetBulk max-repetitions, so one request cannot make us walk the whole store.</summary>
    public int MaxRepetitionsCap { get; init; } = 1_000;
}

/// <summary>
/// A small SNMP agent: answers Get, GetNext and GetBulk (v1, v2c, v3 with USM) from an <see cref="ISnmpMibProvider"/>.
/// Sets are refused unless the provider is an <see cref="ISnmpWritableMibProvider"/> and the request comes with a write
/// community (v1/v2c) or a v3 user. Fault hooks (<see cref="Mute"/>, <see cref="ResponseDelay"/>) let a simulator make a
/// device go dark or slow.
/// </summary>
public sealed partial class SnmpResponder : IAsyncDisposable
{
    private readonly ISnmpMibProvider _mib;
    private readonly SnmpResponderOptions _options;
    private readonly HashSet<string> _communities;
    private readonly HashSet<string> _writeCommunities;
    private readonly SnmpUdpTransport _transport;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private long _served;

    public SnmpResponder(ISnmpMibProvider mib, SnmpResponderOptions? options = null, ILogger<SnmpResponder>? logger = null)
    {
        _mib = mib;
        _options = options ?? new SnmpResponderOptions();
        _communities = new HashSet<string>(_options.Communities.Concat(_options.WriteCommunities), StringComparer.Ordinal);
        _writeCommunities = new HashSet<string>(_options.WriteCommunities, StringComparer.Ordinal);
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        Authority = new UsmAuthority(_options.EngineId, _options.Users, _options.EngineBoots);
        _transport = SnmpUdpTransport.Bind(_options.EndPoint, _logger);
        _transport.Start(OnDatagram);
    }

    public IPEndPoint LocalEndPoint => _transport.LocalEndPoint;
    public UsmAuthority Authority { get; }
    public long RequestsServed => Interlocked.Read(ref _served);

    /// <summary>When true, requests are read and dropped (a device gone dark).</summary>
    public bool Mute { get; set; }

    /// <summary>Delay before each answer (a slow device).</summary>
    public TimeSpan ResponseDelay { get; set; }

    private void OnDatagram(ReadOnlyMemory<byte> datagram, IPEndPoint remote)
    {
        if (Mute)
        {
            return;
        }
        byte[]? reply;
        try
        {
            reply = Handle(datagram.Span, remote);
        }
        catch (SnmpProtocolException ex)
        {
            SnmpMetrics.Malformed.Add(1);
            LogMalformed(_logger, remote, ex.Reason, ex.Offset);
            return;
        }
        if (reply is null)
        {
            return;
        }
        Interlocked.Increment(ref _served);
        SnmpMetrics.ResponderRequests.Add(1);
        _ = SendAsync(reply, remote);
    }

    private async Task SendAsync(byte[] reply, IPEndPoint remote)
    {
        try
        {
            var delay = ResponseDelay;
            if (delay > TimeSpan.Zero)
            {
                await Task.Delay(delay, _stop.Token).ConfigureAwait(false);
            }
            await _transport.SendAsync(reply, remote, _stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // shutting down
        }
        catch (SnmpCommunicationException ex)
        {
            LogSendFailed(_logger, remote, ex.Message);
        }
    }

    /// <summary>Builds the answer to one request, or null to stay silent. Pure apart from the provider: testable without sockets.</summary>
    internal byte[]? Handle(ReadOnlySpan<byte> packet, IPEndPoint remote)
    {
        var msg = SnmpMessageCodec.Decode(packet);
        if (msg.Version != SnmpVersion.V3)
        {
            var community = Encoding.UTF8.GetString(msg.Community);
            if (!_communities.Contains(community))
            {
                LogBadCommunity(_logger, remote);
                return null; // like net-snmp: a wrong community gets no answer
            }
            var response = Answer(msg.Pdu!, msg.Version, _options.MaxResponseSize, size => size + msg.Community.Length + 16, _writeCommunities.Contains(community));
            if (response is null)
            {
                return null;
            }
            return SnmpMessageCodec.Encode(new SnmpMessage { Version = msg.Version, Community = msg.Community, Pdu = response });
        }
        if (Authority.Users.Count == 0)
        {
            return null;
        }
        var incoming = Authority.ProcessAuthoritative(packet, msg);
        if (!incoming.Accepted)
        {
            return incoming.Report;
        }
        var max = Math.Min(_options.MaxResponseSize, msg.MaxSize);
        var pdu = Answer(incoming.Message!.Pdu!, SnmpVersion.V3, max, size => size + 200, canWrite: true);
        return pdu is null ? null : Authority.EncodeResponse(incoming.Message, incoming.User, pdu);
    }

    private SnmpPdu? Answer(SnmpPdu request, SnmpVersion version, int maxSize, Func<int, int> envelope, bool canWrite)
    {
        var v1 = version == SnmpVersion.V1;
        switch (request.Type)
        {
            case PduType.GetRequest:
                {
                    var vbs = new VarBind[request.VarBinds.Count];
                    for (var i = 0; i < vbs.Length; i++)
                    {
                        var oid = request.VarBinds[i].Oid;
                        var value = _mib.Get(oid);
                        if (v1 && (value.IsException || value.Type == SnmpType.Counter64))
                        {
                            return Error(request, SnmpErrorStatus.NoSuchName, i + 1);
                        }
                        vbs[i] = new VarBind(oid, value);
                    }
                    return Fit(request, vbs, maxSize, envelope);
                }
            case PduType.GetNextRequest:
                {
                    var vbs = new VarBind[request.VarBinds.Count];
                    for (var i = 0; i < vbs.Length; i++)
                    {
                        var next = Next(request.VarBinds[i].Oid, v1);
                        if (next is null)
                        {
                            if (v1)
                            {
                                return Error(request, SnmpErrorStatus.NoSuchName, i + 1);
                            }
                            vbs[i] = new VarBind(request.VarBinds[i].Oid, SnmpValue.EndOfMibView);
                        }
                        else
                        {
                            vbs[i] = next.Value;
                        }
                    }
                    return Fit(request, vbs, maxSize, envelope);
                }
            case PduType.GetBulkRequest when !v1:
                return Bulk(request, maxSize, envelope);
            case PduType.SetRequest when canWrite && _mib is ISnmpWritableMibProvider writable:
                {
                    for (var i = 0; i < request.VarBinds.Count; i++)
                    {
                        var status = writable.Set(request.VarBinds[i].Oid, request.VarBinds[i].Value);
                        if (status != SnmpErrorStatus.NoError)
                        {
                            // v1 knows only noSuchName/badValue/readOnly/genErr (RFC 2576 section 4.3).
                            return Error(request, !v1 ? status : status is SnmpErrorStatus.WrongType or SnmpErrorStatus.WrongValue ? SnmpErrorStatus.BadValue : SnmpErrorStatus.NoSuchName, i + 1);
                        }
                    }
                    return Fit(request, [.. request.VarBinds], maxSize, envelope);
                }
            case PduType.SetRequest:
                return Error(request, v1 ? SnmpErrorStatus.NoSuchName : SnmpErrorStatus.NotWritable, 1);
            default:
                return null; // responses, traps, reports: not for an agent to answer
        }
    }

    private VarBind? Next(Oid oid, bool skipCounter64)
    {
        var current = oid;
        while (_mib.TryGetNext(current, out var next))
        {
            if (next.Oid <= current)
            {
                return null; // a broken provider must not make us loop
            }
            if (!(skipCounter64 && next.Value.Type == SnmpType.Counter64))
            {
                return next;
            }
            current = next.Oid;
        }
        return null;
    }

    /// <summary>RFC 3416 section 4.2.3, trimmed to whole repetitions that fit in <paramref name="maxSize"/>.</summary>
    private SnmpPdu Bulk(SnmpPdu request, int maxSize, Func<int, int> envelope)
    {
        var n = Math.Clamp(request.NonRepeaters, 0, request.VarBinds.Count);
        var m = Math.Clamp(request.MaxRepetitions, 0, _options.MaxRepetitionsCap);
        var r = request.VarBinds.Count - n;
        var result = new List<VarBind>(n + (r * Math.Min(m, 64)));
        using var w = new BerWriter();
        int Size(VarBind vb)
        {
            w.Reset();
            w.BeginConstructed(0x30);
            w.WriteOid(vb.Oid.Arcs);
            w.WriteValue(vb.Value);
            w.EndConstructed();
            return w.Length;
        }
        var budget = maxSize - envelope(40);
        var used = 0;
        for (var i = 0; i < n; i++)
        {
            var oid = request.VarBinds[i].Oid;
            var vb = Next(oid, false) ?? new VarBind(oid, SnmpValue.EndOfMibView);
            used += Size(vb);
            result.Add(vb);
        }
        if (used > budget)
        {
            return Error(request, SnmpErrorStatus.TooBig, 0);
        }
        var last = request.VarBinds.Skip(n).Select(v => v.Oid).ToArray();
        var row = new VarBind[r];
        for (var rep = 0; rep < m && r > 0; rep++)
        {
            var rowSize = 0;
            var allEnd = true;
            for (var j = 0; j < r; j++)
            {
                var vb = Next(last[j], false) ?? new VarBind(last[j], SnmpValue.EndOfMibView);
                row[j] = vb;
                allEnd &= vb.Value.Type == SnmpType.EndOfMibView;
                rowSize += Size(vb);
            }
            if (used + rowSize > budget)
            {
                if (rep == 0 && result.Count == 0)
                {
                    return Error(request, SnmpErrorStatus.TooBig, 0);
                }
                break;
            }
            used += rowSize;
            for (var j = 0; j < r; j++)
            {
                result.Add(row[j]);
                last[j] = row[j].Oid;
            }
            if (allEnd)
            {
                break;
            }
        }
        return new SnmpPdu(PduType.Response, request.RequestId, result);
    }

    private static SnmpPdu Fit(SnmpPdu request, VarBind[] vbs, int maxSize, Func<int, int> envelope)
    {
        var response = new SnmpPdu(PduType.Response, request.RequestId, vbs);
        using var w = new BerWriter();
        SnmpMessageCodec.EncodePdu(response, w);
        return envelope(w.Length) > maxSize ? Error(request, SnmpErrorStatus.TooBig, 0) : response;
    }

    private static SnmpPdu Error(SnmpPdu request, SnmpErrorStatus status, int index) =>
        new(PduType.Response, request.RequestId, status == SnmpErrorStatus.TooBig ? [] : request.VarBinds)
        {
            ErrorStatus = status,
            ErrorIndex = index,
        };

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _transport.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Responder: malformed packet from {Remote}: {Reason} at offset {Offset}")]
    private static partial void LogMalformed(ILogger logger, IPEndPoint remote, string reason, int offset);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Responder: wrong community from {Remote}")]
    private static partial void LogBadCommunity(ILogger logger, IPEndPoint remote);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Responder: cannot answer {Remote}: {Reason}")]
    private static partial void LogSendFailed(ILogger logger, IPEndPoint remote, string reason);
}
