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
/// A reader task per connection dispatches responses; a window limits the requests in flight. Junk on the stream is skipped
/// by <see cref="MbapStreamScanner"/> to the next frame a waiting request owns, without a reset (within bounds). Units behind one gateway
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
    // Timeouts since the last answer of any unit, and which units they were: a dead unit behind a live gateway must not
    // pass for a half-open connection. Units ever asked on this transport, to tell a gateway from a single device.
    private readonly object _timeoutGate = new();
    private int _consecutiveTimeouts;
    private readonly System.Collections.BitArray _timeoutUnits = new(256);
    private readonly System.Collections.BitArray _unitsAsked = new(256);
    private StaleAnswer? _lastStale;
    private readonly RepeatedWarning _junkLog;
    private readonly RepeatedWarning _junkResetLog;
    private readonly RepeatedWarning _garbledLog;
    private bool _disposed;

    /// <summary>Junk on the stream and garbled frames are logged the first time, then at most once per this long, with how often they came.</summary>
    internal static readonly TimeSpan JunkLogInterval = TimeSpan.FromMinutes(5);

    public ModbusTcpTransport(ModbusTcpOptions options, ILogger? logger = null, TimeProvider? time = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxInFlight, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.MaxInFlight, 1024);
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        _window = new SemaphoreSlim(options.MaxInFlight, options.MaxInFlight);
        _link = new TransportLink(EndpointNames.Of("tcp", options.Host, options.Port), options.ReconnectBackoffMin, options.ReconnectBackoffMax, _logger, time, logDrops: true);
        _junkLog = new RepeatedWarning(JunkLogInterval, time ?? TimeProvider.System);
        _junkResetLog = new RepeatedWarning(JunkLogInterval, time ?? TimeProvider.System);
        _garbledLog = new RepeatedWarning(JunkLogInterval, time ?? TimeProvider.System);
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
                    // (or when idle) close it while the next request is on its way, and junk past the resync bounds resets it. That
                    // request failed with "connection lost (closed by peer)" or "garbled response" (regression: a two-read
                    // poll failed). A read is sent again once, on a new connection; a write is not (it may have been done).
                    _pending.TryRemove(new(pending.TransactionId, pending));
                    pending = null; // done with: a timeout while reconnecting must not wait on it
                }
            }

            lock (_timeoutGate)
            {
                _consecutiveTimeouts = 0;
                _timeoutUnits.SetAll(false);
                _unitsAsked[unitId] = true;
            }

            _link.Record(started, (response.Span[0] & 0x80) != 0 ? "exception" : "ok");
            return length;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && TakenAsItTimedOut(pending) is var late && late >= 0)
        {
            // The reader had taken the answer off the stream as the timeout fired: it is this request's. Before, it was
            // reported as "no answer" (and counted towards a reconnect) with the answer read and thrown away.
            lock (_timeoutGate)
            {
                _consecutiveTimeouts = 0;
                _timeoutUnits.SetAll(false);
                _unitsAsked[unitId] = true;
            }

            _link.Record(started, (response.Span[0] & 0x80) != 0 ? "exception" : "ok");
            return late;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            _link.Record(started, "timeout");
            if (TooManyTimeouts(unitId))
            {
                _link.Drop($"{_options.ReconnectAfterTimeouts} consecutive timeouts with no answer in between");
            }

            throw new ModbusTimeoutException($"{Endpoint} unit {unitId}: no answer to {TransportLink.Describe(request.Span)} within {TransportLink.Human(requestTimeout)}{Began(pending)}{Discards(pending, started)}")
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

    /// <summary>
    /// At the timeout: the answer's length when the reader had already taken it for <paramref name="pending"/> (it is
    /// being handed over), else -1, and the reader can no longer hand it over.
    /// </summary>
    private int TakenAsItTimedOut(Pending? pending)
    {
        if (pending is null || _pending.TryRemove(new(pending.TransactionId, pending)))
        {
            return -1;
        }

        // Whoever removed it (the reader with the answer, or a connection loss) completes it right after.
        SpinWait.SpinUntil(() => pending.Completion.Task.IsCompleted, TimeSpan.FromSeconds(1));
        return pending.Completion.Task.IsCompletedSuccessfully ? pending.Completion.Task.Result : -1;
    }

    /// <summary>How much of its answer had come when a request timed out: the unit answered, only not all of it in time.</summary>
    private static string Began(Pending? pending)
    {
        int got = pending is null ? 0 : Volatile.Read(ref pending.BeganBytes);
        if (got <= 0)
        {
            return "";
        }

        int of = Volatile.Read(ref pending!.BeganOf);
        return of > got
            ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $" (its answer was cut short: {got} of its {of} bytes arrived)")
            : string.Create(System.Globalization.CultureInfo.InvariantCulture, $" (its answer was cut short: {got} bytes arrived)");
    }

    /// <summary>
    /// The reader waits for more at a frame boundary: when what it has begins a waiting request's answer on this
    /// connection, notes how much of it came, for that request's timeout.
    /// </summary>
    private void NoteBeginning(TransportConnection connection, ReadOnlySpan<byte> buffered)
    {
        if (buffered.Length < 2 || !_pending.TryGetValue(System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(buffered), out var owner) || !ReferenceEquals(owner.Connection, connection))
        {
            return;
        }

        Volatile.Write(ref owner.BeganOf, buffered.Length >= MbapFrame.HeaderLength ? 6 + System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(buffered[4..]) : 0);
        Volatile.Write(ref owner.BeganBytes, buffered.Length);
    }

    /// <summary>
    /// Whether this timeout makes the connection look half-open: <see cref="ModbusTcpOptions.ReconnectAfterTimeouts"/> in a
    /// row with no answer of any unit in between, and, behind a gateway (more than one unit asked here), from at least two
    /// units. One dead unit behind a gateway that stays silent for it (no 0x0B) dropped the gateway's connection every
    /// third poll, logged as "connection lost", while its other units answered.
    /// </summary>
    private bool TooManyTimeouts(byte unitId)
    {
        lock (_timeoutGate)
        {
            _unitsAsked[unitId] = true;
            _timeoutUnits[unitId] = true;
            if (++_consecutiveTimeouts < _options.ReconnectAfterTimeouts || (Count(_unitsAsked) > 1 && Count(_timeoutUnits) < 2))
            {
                return false;
            }

            _consecutiveTimeouts = 0;
            _timeoutUnits.SetAll(false);
            return true;
        }

        static int Count(System.Collections.BitArray bits)
        {
            int n = 0;
            for (int i = 0; i < bits.Length && n < 2; i++)
            {
                n += bits[i] ? 1 : 0;
            }

            return n;
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

            // Near the descriptor limit a connect is refused as a failed one (backoff, one Warning): the runtime aborts the
            // whole agent when it cannot open a file it needs, which would lose every device's poll, not this one's.
            if (ProcessDescriptors.RefuseAnother() is { } full)
            {
                throw _link.OpenFailed("connect", new IOException(full));
            }

            Socket? socket = null;
            try
            {
                // Created inside the try: EMFILE comes from socket(2), and was a failed request every poll without backoff.
                socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                using var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                connectTimeout.CancelAfter(_options.ConnectTimeout);
                await socket.ConnectAsync(_options.Host, _options.Port, connectTimeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException)
            {
                socket?.Dispose();
                var failure = _link.OpenFailed("connect", ex is SocketException { SocketErrorCode: SocketError.TooManyOpenSockets }
                    ? new IOException(ProcessDescriptors.TooManyOpenFiles(), ex)
                    : ex);
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

    /// <summary>
    /// Room for the scanner's worst case (a frame still arriving, with a frame it may turn out to hide behind it: at most two
    /// frames are left unconsumed; junk is counted as it is skipped, never kept).
    /// </summary>
    internal const int ReceiveBufferLength = 4096;

    /// <summary>
    /// Junk skipped in one run without a frame a waiting request owns, beyond which the connection is reset as before: a
    /// serial gateway's late UART flush is a few to some tens of bytes; kilobytes of it mean the peer does not speak
    /// Modbus TCP on this port (or has lost its mind), which a reconnect, and a Warning, say louder.
    /// </summary>
    internal const int JunkLimit = 4096;

    private const int JunkExcerptLength = 16;

    private async Task ReadLoopAsync(TransportConnection connection)
    {
        // Allocated once per connection; frames are scanned and dispatched in place.
        byte[] buffer = new byte[ReceiveBufferLength];
        var junk = new JunkRun(JunkExcerptLength);
        var stream = connection.Stream;
        var waiting = new WaitingOn(this, connection);
        int start = 0, end = 0;
        // At a frame boundary (after a frame, or on a new connection) rather than inside junk.
        bool aligned = true;
        ushort garbledTid = 0;
        bool garbled = false, garbledPdu = false;
        string reason = "closed by peer";
        bool peerClosed = false, closedHere = false, junkReset = false;
        try
        {
            while (!connection.Lifetime.IsCancellationRequested)
            {
                var verdict = MbapStreamScanner.Scan(buffer.AsSpan(start, end - start), aligned, waiting, out int length);
                switch (verdict)
                {
                    case MbapScan.Frame:
                    case MbapScan.Stale:
                        var frame = buffer.AsSpan(start, length);
                        var header = MbapFrame.ReadHeader(frame);
                        if (junk.Bytes > 0)
                        {
                            ReportJunk(junk, "skipped", null);
                            junk.Clear();
                        }

                        start += length;
                        aligned = true;
                        junk.AnswerTaken(header.UnitId, Stopwatch.GetTimestamp());
                        Dispatch(header, frame[MbapFrame.HeaderLength..]);
                        break;
                    case MbapScan.Garbled:
                        garbled = true;
                        garbledPdu = length > MbapFrame.HeaderLength;
                        garbledTid = System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(start));
                        throw GarbledAnswer(buffer.AsSpan(start, length));
                    case MbapScan.Junk:
                        if (junk.Skip(buffer.AsSpan(start, length), _options.RequestTimeout) is { } overflow)
                        {
                            junkReset = true;
                            reason = overflow;
                            // Before FailAll: a read failed there is sent again at once, and its reconnect must see this.
                            _link.EndedQuietly("reset after junk on the stream");
                            ReportJunk(junk, "reset", overflow);
                            FailAll(
                                connection,
                                new ModbusCommunicationException(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Endpoint}: connection lost (reset after {junk.Bytes} bytes of junk {junk.Where()} with no answer in them: {overflow})")),
                                connectionLost: true); // closes the connection, which ends this loop
                            break;
                        }

                        start += length;
                        aligned = false;
                        break;
                    default:
                        // The scanner leaves at most two frames' worth unconsumed (junk is skipped as it is judged), so after
                        // compacting there is always room for a read.
                        if (start == end)
                        {
                            start = end = 0;
                        }
                        else if (buffer.Length - end < MbapFrame.MaxFrameLength)
                        {
                            buffer.AsSpan(start, end - start).CopyTo(buffer);
                            end -= start;
                            start = 0;
                        }

                        if (aligned)
                        {
                            NoteBeginning(connection, buffer.AsSpan(start, end - start));
                        }

                        int n = await stream.ReadAsync(buffer.AsMemory(end), connection.Lifetime.Token).ConfigureAwait(false);
                        if (n == 0)
                        {
                            throw new EndOfStreamException();
                        }

                        end += n;
                        junk.Received();
                        break;
                }
            }

            if (!junkReset)
            {
                reason = "closed";
                closedHere = true;
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
        catch (ModbusProtocolException ex) when (garbled)
        {
            // A frame boundary naming a waiting request is its answer, however garbled. The stream position is unknown after
            // it: only a new connection resynchronises, and a read caught meanwhile is sent again. A header that is itself
            // broken (protocol id, length) is not trusted to name its request: every request on the connection fails with
            // it, a read is sent again; a PDU that contradicts its MBAP length fails its own request (not sent again).
            reason = ex.Message;
            if (garbledPdu && _pending.TryRemove(garbledTid, out var misframed))
            {
                ReportGarbled(_garbledLog, _logger, Endpoint, $"unit {misframed.UnitId}: {TransportLink.Describe(misframed.Request.Span)}: {ex.Message}");
                misframed.Completion.TrySetException(ex);
            }
            else
            {
                ReportGarbled(_garbledLog, _logger, Endpoint, ex.Message);
            }

            // The reset is this side's answer to the garbled frame, which the line above reports: the reconnect is routine.
            _link.EndedQuietly("reset after a garbled frame");

            FailAll(connection, ex.WithContext("garbled response, connection reset"), connectionLost: true);
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

        if (junk.Bytes > 0 && !junkReset)
        {
            ReportJunk(junk, "skipped", null); // junk the connection ended on, no answer behind it
        }

        connection.Close();
        FailAll(connection, new ModbusCommunicationException($"{Endpoint}: connection lost ({reason})"), connectionLost: !closedHere);
    }

    /// <summary>
    /// The garbled answer of a waiting request: its header's own fault (protocol id, length), or an MBAP length its PDU's
    /// fields contradict (both in MBAP terms, unit id + PDU, as a capture shows the length field). Regression: a gateway
    /// whose length said 20 where 11 bytes followed held the request to its timeout, then took the next answer's bytes.
    /// </summary>
    private static ModbusProtocolException GarbledAnswer(ReadOnlySpan<byte> frame)
    {
        var header = MbapFrame.ReadHeader(frame); // throws for a bad protocol id or length
        const int pduStart = MbapFrame.HeaderLength;
        int implied = ModbusPdu.TryExpectedResponseLength(frame.Slice(pduStart, Math.Min(2, header.PduLength)));
        byte fc = frame[pduStart];
        string byteCount = ModbusPdu.HasByteCount(fc) && frame.Length > pduStart + 1 ? $", byte count {frame[pduStart + 1]}" : "";
        return new ModbusProtocolException(
            string.Create(System.Globalization.CultureInfo.InvariantCulture, $"MBAP length {header.PduLength + 1} disagrees with the {implied + 1} its PDU implies (function 0x{fc:X2}{byteCount}); connection reset to resynchronise"),
            frame);
    }

    /// <summary>A garbled frame: logged the first time, then at most once per <see cref="JunkLogInterval"/> with how many came meanwhile.</summary>
    internal static void ReportGarbled(RepeatedWarning limiter, ILogger logger, string endpoint, string reason)
    {
        if (!limiter.Occurred(out int count, out var over))
        {
            return;
        }

        if (count == 0)
        {
            Log.Garbled(logger, endpoint, reason, Log.Human(JunkLogInterval));
        }
        else
        {
            Log.GarbledRepeated(logger, endpoint, count, Log.Human(over), reason);
        }
    }

    /// <summary>
    /// Counts a junk run (<c>modbus.client.junk_after_answer</c> by outcome, <c>modbus.client.junk_bytes</c>) and logs it the
    /// first time, then at most once per <see cref="JunkLogInterval"/> with a count (skips and resets each their own line).
    /// </summary>
    private void ReportJunk(JunkRun junk, string outcome, string? resetWhy)
    {
        ModbusMetrics.JunkAfterAnswer.Add(1, _link.EndpointTag, new("outcome", outcome));
        ModbusMetrics.JunkBytes.Add(junk.Bytes, _link.EndpointTag);
        var limiter = resetWhy is null ? _junkLog : _junkResetLog;
        if (!limiter.Occurred(out int count, out var over))
        {
            return;
        }

        string where = junk.Where(), bytes = junk.Excerpt();
        if (resetWhy is null && count == 0)
        {
            Log.JunkSkipped(_logger, Endpoint, junk.Bytes, where, bytes, Log.Human(JunkLogInterval));
        }
        else if (resetWhy is null)
        {
            Log.JunkSkippedRepeated(_logger, Endpoint, count, Log.Human(over), junk.Bytes, where, bytes);
        }
        else if (count == 0)
        {
            Log.JunkReset(_logger, Endpoint, junk.Bytes, where, resetWhy, bytes, Log.Human(JunkLogInterval));
        }
        else
        {
            Log.JunkResetRepeated(_logger, Endpoint, count, Log.Human(over), junk.Bytes, where, resetWhy, bytes);
        }
    }

    /// <summary>The requests waiting on one connection, for the scanner: a struct, so the generic scan neither boxes nor allocates.</summary>
    private readonly struct WaitingOn(ModbusTcpTransport transport, TransportConnection connection) : IWaitingRequests
    {
        public bool TryGet(ushort transactionId, out byte unitId, out ReadOnlySpan<byte> request)
        {
            if (transport._pending.TryGetValue(transactionId, out var pending) && ReferenceEquals(pending.Connection, connection))
            {
                unitId = pending.UnitId;
                request = pending.Request.Span;
                return true;
            }

            unitId = 0;
            request = default;
            return false;
        }
    }

    /// <summary>
    /// The junk skipped since the last frame on one connection: how much, its first bytes for the log, where it came, and
    /// whether it keeps coming past the bounds that fall back to a reset.
    /// </summary>
    private sealed class JunkRun(int excerptLength)
    {
        private readonly byte[] _excerpt = new byte[excerptLength];
        private byte? _lastUnit;
        private long _lastAnswerAt;
        private int _readsSinceAnswer;
        private TimeSpan? _cameLater;
        private long _clockFrom;
        private long _lastJunkAt;

        public int Bytes { get; private set; }

        public void AnswerTaken(byte unitId, long at)
        {
            _lastUnit = unitId;
            _lastAnswerAt = at;
            _readsSinceAnswer = 0;
        }

        public void Received() => _readsSinceAnswer++;

        public void Clear() => Bytes = 0;

        /// <summary>Counts <paramref name="skipped"/>; the reason to reset instead when the run is past its bounds, else null.</summary>
        public string? Skip(ReadOnlySpan<byte> skipped, TimeSpan timeout)
        {
            long now = Stopwatch.GetTimestamp();
            if (Bytes == 0)
            {
                // Junk not yet received when its answer was read came in a later segment (serial gateways flush late).
                _cameLater = _lastUnit is not null && _readsSinceAnswer > 0 ? Stopwatch.GetElapsedTime(_lastAnswerAt, now) : null;
                _clockFrom = now;
            }
            else if (Stopwatch.GetElapsedTime(_lastJunkAt, now) > timeout)
            {
                _clockFrom = now; // a quiet gap: one burst of junk after an idle minute is not junk that keeps coming
            }

            if (Bytes < _excerpt.Length)
            {
                skipped[..Math.Min(skipped.Length, _excerpt.Length - Bytes)].CopyTo(_excerpt.AsSpan(Bytes));
            }

            Bytes += skipped.Length;
            _lastJunkAt = now;
            if (Bytes > JunkLimit)
            {
                return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"more than {JunkLimit} bytes of it");
            }

            var lasting = Stopwatch.GetElapsedTime(_clockFrom, now);
            return lasting > timeout
                ? $"it kept coming for {TransportLink.Human(lasting)}, longer than the request timeout of {TransportLink.Human(timeout)}"
                : null;
        }

        public string Where()
        {
            if (_lastUnit is not { } unit)
            {
                return "before any answer on the connection";
            }

            return _cameLater is { } after
                ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"after unit {unit}'s answer (it came {TransportLink.Human(after)} after it, in a later TCP segment)")
                : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"after unit {unit}'s answer");
        }

        public string Excerpt() => Bytes > _excerpt.Length
            ? $"{Convert.ToHexString(_excerpt)}…"
            : Convert.ToHexString(_excerpt, 0, Bytes);
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

        /// <summary>Bytes of its answer received so far while the reader waits for the rest, and the frame's length (0: unknown yet).</summary>
        public int BeganBytes;

        public int BeganOf;
    }
}
