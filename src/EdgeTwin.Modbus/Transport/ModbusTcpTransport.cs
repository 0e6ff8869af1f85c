using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using EdgeTwin.Modbus.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Modbus.Transport;

public sealed record ModbusTcpOptions
{
    public required string Host { get; init; }

    public int Port { get; init; } = 502;

    /// <summary>Time allowed for one request, from queueing to the answer (a request sent with its own <see cref="ModbusRequestSettings"/> uses those instead).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(2);

    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>Requests in flight on the connection at once. Most devices handle 1; gateways often more.</summary>
    public int MaxInFlight { get; init; } = 1;

    public TimeSpan ReconnectBackoffMin { get; init; } = TimeSpan.FromMilliseconds(200);

    public TimeSpan ReconnectBackoffMax { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Consecutive timeouts after which the connection is dropped and rebuilt (half-open sockets).</summary>
    public int ReconnectAfterTimeouts { get; init; } = 3;
}

/// <summary>
/// Modbus TCP (MBAP) client transport. Responses are matched to requests by transaction id, so late answers
/// to requests that already timed out are recognised and discarded instead of being taken for the next answer.
/// A reader task per connection dispatches responses; a window limits the requests in flight. Units behind one gateway
/// share it through a <see cref="ModbusTransportShare"/> each, so every request runs with its own device's timeout.
/// </summary>
public sealed class ModbusTcpTransport : IModbusSharedTransport
{
    private readonly ModbusTcpOptions _options;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _window;
    private readonly SemaphoreSlim _connectLock = new(1, 1);
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ConcurrentDictionary<ushort, Pending> _pending = new();
    private readonly TransportLink _link;
    private int _nextTransactionId;
    private int _consecutiveTimeouts;
    private StaleAnswer? _lastStale;
    private readonly RepeatedWarning _junkLog;
    private bool _disposed;

    /// <summary>Junk behind answers is logged the first time, then at most once per this long, with how often it came.</summary>
    internal static readonly TimeSpan JunkLogInterval = TimeSpan.FromMinutes(5);

    public ModbusTcpTransport(ModbusTcpOptions options, ILogger? logger = null, TimeProvider? time = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxInFlight, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.MaxInFlight, 1024);
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        _window = new SemaphoreSlim(options.MaxInFlight, options.MaxInFlight);
        _link = new TransportLink($"tcp://{options.Host}:{options.Port}", options.ReconnectBackoffMin, options.ReconnectBackoffMax, _logger, time, logDrops: true);
        _junkLog = new RepeatedWarning(JunkLogInterval, time ?? TimeProvider.System);
    }

    public string Endpoint => _link.Endpoint;

    public bool IsConnected => _link.Live is not null;

    public ValueTask<int> SendAsync(byte unitId, ReadOnlyMemory<byte> request, Memory<byte> response, CancellationToken cancellationToken) =>
        SendAsync(unitId, request, response, _options.RequestTimeout, null, cancellationToken);

    /// <summary>Sends with the requesting device's timeout (<paramref name="settings"/>) rather than the transport's option.</summary>
    public ValueTask<int> SendAsync(byte unitId, ReadOnlyMemory<byte> request, Memory<byte> response, ModbusRequestSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return SendAsync(unitId, request, response, settings.RequestTimeout, settings.ReconnectWaitMax, cancellationToken);
    }

    private async ValueTask<int> SendAsync(byte unitId, ReadOnlyMemory<byte> request, Memory<byte> response, TimeSpan requestTimeout, TimeSpan? reconnectWaitMax, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var fc = (ModbusFunctionCode)request.Span[0];
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(requestTimeout);
        long started = Stopwatch.GetTimestamp();
        bool entered = false;
        Pending? pending = null;
        var stage = RequestStage.WaitingForBus;
        try
        {
            await _window.WaitAsync(timeout.Token).ConfigureAwait(false);
            entered = true;
            int length;
            for (int attempt = 1; ; attempt++)
            {
                stage = RequestStage.Connecting;
                var connection = await EnsureConnectedAsync(reconnectWaitMax, timeout.Token).ConfigureAwait(false);
                stage = RequestStage.Sent;

                ushort tid = (ushort)Interlocked.Increment(ref _nextTransactionId);
                pending = new Pending(unitId, fc, request, response, connection);
                if (!_pending.TryAdd(tid, pending))
                {
                    // 65536 requests in flight cannot happen with a window of at most 1024.
                    throw new InvalidOperationException($"transaction id {tid} already in flight on {Endpoint}");
                }

                pending.TransactionId = tid;
                try
                {
                    await WriteAsync(connection, tid, unitId, request, timeout.Token).ConfigureAwait(false);
                    length = await pending.Completion.Task.WaitAsync(timeout.Token).ConfigureAwait(false);
                    break;
                }
                catch (Exception ex) when (attempt == 1 && IsRead(fc) && !timeout.IsCancellationRequested
                                           && ((ex is ModbusCommunicationException or ModbusProtocolException && pending.ConnectionLost) || (ex is IOException or SocketException or ObjectDisposedException && !connection.IsAlive)))
                {
                    // The connection went down under this request before its answer: gateways that close after each answer
                    // (or when idle) close it while the next request is on its way, and junk after an answer resets it. That
                    // request failed with "connection lost (closed by peer)" or "garbled response" (regression: a two-read
                    // poll failed). A read is sent again once, on a new connection; a write is not (it may have been done).
                    _pending.TryRemove(new(pending.TransactionId, pending));
                }
            }

            Interlocked.Exchange(ref _consecutiveTimeouts, 0);
            _link.Record(started, (response.Span[0] & 0x80) != 0 ? "exception" : "ok");
            return length;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            _link.Record(started, "timeout");
            if (Interlocked.Increment(ref _consecutiveTimeouts) >= _options.ReconnectAfterTimeouts)
            {
                Interlocked.Exchange(ref _consecutiveTimeouts, 0);
                _link.Drop("too many consecutive timeouts");
            }

            throw new ModbusTimeoutException($"{Endpoint} unit {unitId}: no answer to {TransportLink.Describe(request.Span)} within {TransportLink.Human(requestTimeout)}{Discards(pending, started)}")
            {
                RequestSent = stage == RequestStage.Sent,
            };
        }
        catch (OperationCanceledException ex) when (cancellationToken.IsCancellationRequested && ex is not ModbusRequestCanceledException)
        {
            throw _link.Cancelled(stage, unitId, request.Span, started, ex, cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException && !_disposed)
        {
            throw _link.Fault(started, unitId, fc, ex);
        }
        catch (ModbusCommunicationException)
        {
            _link.Record(started, "io");
            throw;
        }
        catch (ModbusProtocolException ex)
        {
            _link.Record(started, "protocol");
            throw ex.WithContext($"{Endpoint} unit {unitId}: {TransportLink.Describe(request.Span)}");
        }
        finally
        {
            if (pending is not null)
            {
                _pending.TryRemove(new(pending.TransactionId, pending));
            }

            if (entered)
            {
                _window.Release();
            }
        }
    }

    private async Task WriteAsync(TransportConnection connection, ushort tid, byte unitId, ReadOnlyMemory<byte> request, CancellationToken cancellationToken)
    {
        byte[] frame = ArrayPool<byte>.Shared.Rent(MbapFrame.MaxFrameLength);
        try
        {
            int n = MbapFrame.Write(frame, tid, unitId, request.Span);
            await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await connection.Stream.WriteAsync(frame.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _writeLock.Release();
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(frame);
        }
    }

    /// <summary>Reads change nothing on the device, so one sent twice does no harm.</summary>
    private static bool IsRead(ModbusFunctionCode fc) => fc is ModbusFunctionCode.ReadCoils or ModbusFunctionCode.ReadDiscreteInputs
        or ModbusFunctionCode.ReadHoldingRegisters or ModbusFunctionCode.ReadInputRegisters or ModbusFunctionCode.EncapsulatedInterface;

    private async ValueTask<TransportConnection> EnsureConnectedAsync(TimeSpan? reconnectWaitMax, CancellationToken cancellationToken)
    {
        if (_link.Live is { } current)
        {
            return current;
        }

        await _connectLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_link.Live is { } opened)
            {
                return opened;
            }

            _link.ThrowIfBackingOff("not connected", "next reconnect attempt", reconnectWaitMax);

            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                using var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                connectTimeout.CancelAfter(_options.ConnectTimeout);
                await socket.ConnectAsync(_options.Host, _options.Port, connectTimeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException)
            {
                socket.Dispose();
                var failure = _link.OpenFailed("connect", ex);
                if (ex is OperationCanceledException && cancellationToken.IsCancellationRequested)
                {
                    throw;
                }

                throw failure;
            }

            return _link.Opened(new NetworkStream(socket, ownsSocket: true), ReadLoopAsync);
        }
        finally
        {
            _connectLock.Release();
        }
    }

    private async Task ReadLoopAsync(TransportConnection connection)
    {
        byte[] buffer = new byte[MbapFrame.MaxFrameLength];
        var stream = (NetworkStream)connection.Stream;
        string reason = "closed by peer";
        bool peerClosed = false, closedHere = false, junkReset = false;
        MbapHeader header = default;
        bool headerRead = false;
        // The frame read last on this connection (nothing has been read after it): bytes behind it that do not name a
        // request waiting on this connection are junk behind that answer, whether they came in its TCP read or in a later
        // segment (serial-to-Ethernet gateways flush their UART buffer late, 20-50 ms after the answer).
        byte? lastAnswerOf = null;
        long lastAnswerAt = 0;
        bool junkWasWaiting = false;
        try
        {
            while (!connection.Lifetime.IsCancellationRequested)
            {
                headerRead = false;
                await stream.ReadExactlyAsync(buffer.AsMemory(0, MbapFrame.HeaderLength), connection.Lifetime.Token).ConfigureAwait(false);
                header = MbapFrame.ReadHeader(buffer);
                headerRead = true;
                await ReadPduAsync(connection, buffer, header).ConfigureAwait(false);
                lastAnswerOf = header.UnitId;
                lastAnswerAt = Stopwatch.GetTimestamp();
                junkWasWaiting = stream.DataAvailable; // only to say, if junk follows, whether it came with the answer
                Dispatch(header, buffer.AsSpan(MbapFrame.HeaderLength, header.PduLength));
            }
        }
        catch (OperationCanceledException)
        {
            reason = "closed";
            closedHere = true;
        }
        catch (EndOfStreamException)
        {
            reason = "closed by peer";
            peerClosed = true;
            _link.EndedQuietly("closed by the device");
        }
        catch (ModbusProtocolException ex)
        {
            // The byte stream is out of step; only a new connection resynchronises it.
            reason = ex.Message;
            Exception caught = ex.WithContext("garbled response, connection reset");
            if (lastAnswerOf is { } unit && !NamesRequestWaiting(buffer, connection))
            {
                // A device that appends junk to every answer did so on every poll: a Warning per poll buried the log. Junk
                // in a later segment than its answer was logged as a garbled frame every poll (the check looked only at
                // bytes already waiting behind the answer). Bytes naming a waiting request are its answer, however garbled.
                junkReset = true;
                // Before FailAll: a request failed there is sent again at once, and its reconnect must see this.
                _link.EndedQuietly("reset after junk behind an answer");
                ReportJunk(unit, ex.Message, junkWasWaiting ? null : Stopwatch.GetElapsedTime(lastAnswerAt));
                // A request out meanwhile had no garbled answer: its connection was reset under it (a read is sent again;
                // a write fails, and says why, not "garbled response").
                caught = new ModbusCommunicationException(
                    string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Endpoint}: connection lost (reset after junk behind unit {unit}'s answer, before this request's answer came: {ex.Message})"),
                    ex);
            }
            else if (headerRead && _pending.TryRemove(header.TransactionId, out var misframed))
            {
                // Its own answer was misframed: it fails with that, and is not sent again as a request merely caught by the reset.
                Log.Garbled(_logger, Endpoint, $"unit {misframed.UnitId}: {TransportLink.Describe(misframed.Request.Span)}: {ex.Message}");
                misframed.Completion.TrySetException(ex);
            }
            else
            {
                Log.Garbled(_logger, Endpoint, ex.Message);
            }

            FailAll(connection, caught, connectionLost: true);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            reason = ex.Message;
        }

        if (peerClosed)
        {
            // Gateways close after each answer or when idle: not an outage. The next request reconnects, and a read caught
            // on its way is sent again; a request that still fails says so itself. A Warning per poll buried real problems.
            Log.ClosedByPeer(_logger, Endpoint);
        }
        else if (junkReset)
        {
            Log.ResetForJunk(_logger, Endpoint);
        }
        else
        {
            _link.ReaderEnded(connection, reason);
        }

        connection.Close();
        FailAll(connection, new ModbusCommunicationException($"{Endpoint}: connection lost ({reason})"), connectionLost: !closedHere);
    }

    /// <summary>
    /// Reads the PDU behind <paramref name="header"/>. Its own fields (function code, byte count) tell its length; an MBAP
    /// length that disagrees is a framing error at once, reading only as far as both agree. Regression: a gateway whose
    /// length said 20 where 11 bytes followed held the request to its timeout, then took the next answer's bytes for the
    /// rest, so the next request timed out too. A PDU whose fields do not tell (FC 43) is read to the MBAP length.
    /// </summary>
    private static async Task ReadPduAsync(TransportConnection connection, byte[] buffer, MbapHeader header)
    {
        const int pduStart = MbapFrame.HeaderLength;
        int head = Math.Min(2, header.PduLength);
        await connection.Stream.ReadExactlyAsync(buffer.AsMemory(pduStart, head), connection.Lifetime.Token).ConfigureAwait(false);
        int implied = ModbusPdu.TryExpectedResponseLength(buffer.AsSpan(pduStart, head));
        if (implied > 0 && implied != header.PduLength)
        {
            int agreed = Math.Min(implied, header.PduLength);
            await connection.Stream.ReadExactlyAsync(buffer.AsMemory(pduStart + head, agreed - head), connection.Lifetime.Token).ConfigureAwait(false);
            byte fc = buffer[pduStart];
            string byteCount = ModbusPdu.HasByteCount(fc) ? $", byte count {buffer[pduStart + 1]}" : "";
            // Both in MBAP terms (unit id + PDU), as a capture shows the length field.
            throw new ModbusProtocolException(
                string.Create(System.Globalization.CultureInfo.InvariantCulture, $"MBAP length {header.PduLength + 1} disagrees with the {implied + 1} its PDU implies (function 0x{fc:X2}{byteCount}); connection reset to resynchronise"),
                buffer.AsSpan(0, pduStart + agreed));
        }

        await connection.Stream.ReadExactlyAsync(buffer.AsMemory(pduStart + head, header.PduLength - head), connection.Lifetime.Token).ConfigureAwait(false);
    }

    /// <summary>
    /// Whether the MBAP header in <paramref name="buffer"/> (read whole, even when it failed to parse) carries the
    /// transaction id of a request waiting on <paramref name="connection"/>: then it is that request's garbled answer, which
    /// fails the request; otherwise it answers nothing.
    /// </summary>
    private bool NamesRequestWaiting(byte[] buffer, TransportConnection connection) =>
        _pending.TryGetValue(System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(buffer), out var waiting)
        && ReferenceEquals(waiting.Connection, connection);

    /// <summary>Counts junk behind an answer and logs it the first time, then at most once per <see cref="JunkLogInterval"/> with a count.</summary>
    /// <param name="cameLater">How long after the answer the junk came, when it was not yet there as the answer was read; null when it was.</param>
    private void ReportJunk(byte unitId, string problem, TimeSpan? cameLater)
    {
        ModbusMetrics.JunkAfterAnswer.Add(1, _link.EndpointTag);
        if (!_junkLog.Occurred(out int count, out var over))
        {
            return;
        }

        string reason = cameLater is { } after ? $"{problem} (it came {TransportLink.Human(after)} after the answer, in a later TCP segment)" : problem;
        if (count == 0)
        {
            Log.JunkAfterAnswer(_logger, Endpoint, unitId, reason, Log.Human(JunkLogInterval));
        }
        else
        {
            Log.JunkAfterAnswerRepeated(_logger, Endpoint, count, Log.Human(over), unitId, reason);
        }
    }

    private void Dispatch(MbapHeader header, ReadOnlySpan<byte> pdu)
    {
        if (!_pending.TryGetValue(header.TransactionId, out var pending))
        {
            ModbusMetrics.Discarded.Add(1, _link.EndpointTag, new("reason", "stale"));
            Log.Discarded(_logger, Endpoint, "stale", header.TransactionId, header.UnitId);
            Volatile.Write(ref _lastStale, new StaleAnswer(Stopwatch.GetTimestamp(), header.TransactionId));
            return;
        }

        if (header.UnitId != pending.UnitId || (pdu[0] & 0x7F) != (byte)pending.Function)
        {
            ModbusMetrics.Discarded.Add(1, _link.EndpointTag, new("reason", "mismatched"));
            Log.Discarded(_logger, Endpoint, "mismatched", header.TransactionId, header.UnitId);
            pending.Mismatched = string.Create(
                System.Globalization.CultureInfo.InvariantCulture, $"an answer from unit {header.UnitId} with function 0x{pdu[0]:X2} was discarded");
            return;
        }

        if (_pending.TryRemove(new(header.TransactionId, pending)))
        {
            pdu.CopyTo(pending.Response.Span);
            pending.Completion.TrySetResult(pdu.Length);
        }
    }

    /// <summary>
    /// Why a timed-out request may have had no answer although the device sent one (it had the wrong unit or function,
    /// or a transaction id no request waited for): a device that answers wrongly is not a device that is silent.
    /// </summary>
    private string Discards(Pending? pending, long started)
    {
        if (pending?.Mismatched is { } mismatched)
        {
            return $" ({mismatched})";
        }

        // An unmatched transaction id cannot be tied to one request; name it when it came while this one waited.
        return Volatile.Read(ref _lastStale) is { } stale && stale.At >= started
            ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $" (an answer with transaction id {stale.TransactionId}, which no request was waiting for, was discarded{(pending is null ? "" : $"; this request had {pending.TransactionId}")})")
            : "";
    }

    private sealed record StaleAnswer(long At, ushort TransactionId);

    /// <param name="connectionLost">The connection went down under the requests (not their own timeout): a read may be sent again.</param>
    private void FailAll(TransportConnection connection, Exception error, bool connectionLost)
    {
        // Mark the connection dead first, so a caller retrying at once builds a new one instead of reusing this.
        connection.Close();
        foreach (var entry in _pending)
        {
            // Only the requests sent on this connection: its reader can end late, after a retry has already gone out on a
            // new one (regression: after a drop for consecutive timeouts, the next request failed with "connection lost").
            if (ReferenceEquals(entry.Value.Connection, connection) && _pending.TryRemove(entry))
            {
                entry.Value.ConnectionLost = connectionLost;
                entry.Value.Completion.TrySetException(error);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await _link.CloseAsync().ConfigureAwait(false);
        _window.Dispose();
        _connectLock.Dispose();
        _writeLock.Dispose();
    }

    private sealed class Pending(byte unitId, ModbusFunctionCode function, ReadOnlyMemory<byte> request, Memory<byte> response, TransportConnection connection)
    {
        /// <summary>The request PDU, to name function and address when its answer is misframed.</summary>
        public ReadOnlyMemory<byte> Request { get; } = request;

        /// <summary>The connection the request went out on: only its loss fails the request.</summary>
        public TransportConnection Connection { get; } = connection;

        public byte UnitId { get; } = unitId;

        public ModbusFunctionCode Function { get; } = function;

        public Memory<byte> Response { get; } = response;

        public ushort TransactionId { get; set; }

        /// <summary>The connection went down (closed, reset, or garbled by the peer) before this request's answer came.</summary>
        public bool ConnectionLost { get; set; }

        /// <summary>Set when an answer with this request's transaction id came from another unit or for another function.</summary>
        public string? Mismatched { get; set; }

        public TaskCompletionSource<int> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
