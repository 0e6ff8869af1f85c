using System.Diagnostics;
using System.IO.Ports;
using System.Net.Sockets;
using EdgeTwin.Modbus.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Modbus.Transport;

public sealed record ModbusRtuOptions
{
    /// <summary>
    /// Time allowed for one request's exchange, from the moment it has the line. Requests sent with their own
    /// <see cref="ModbusRequestSettings"/> (a device's share of a line, <see cref="ModbusTransportShare"/>) use those.
    /// </summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan ReconnectBackoffMin { get; init; } = TimeSpan.FromMilliseconds(200);

    public TimeSpan ReconnectBackoffMax { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// After an exchange that got no valid answer (timeout, garbled or cancelled), how long the same unit's next request
    /// waits before it is sent (what arrives meanwhile is flushed); null = <see cref="RequestTimeout"/>. RTU has no
    /// transaction id, so a late answer of the same unit, function and size would otherwise be taken for the next
    /// request's (libmodbus's error recovery modes likewise sleep one response timeout and flush). The wait is off the
    /// line: other units' requests go meanwhile, and a late answer arriving during one of them is discarded by its
    /// unit address, so a dead unit costs the others one request timeout per attempt.
    /// </summary>
    public TimeSpan? LateAnswerGuard { get; init; }
}

/// <summary>
/// Modbus RTU master on a serial line or a TCP serial gateway. One request at a time (the line is half-duplex);
/// waits the 3.5-character inter-frame silence before sending, drops stale bytes left by earlier answers, finds the
/// end of a response from its function code and byte count, and discards whole frames from another unit. Devices that
/// share the line send through a <see cref="ModbusTransportShare"/> each, so every request runs with its own device's
/// timeout and late-answer guard; the options' values are the defaults for requests sent without settings.
/// </summary>
public sealed class ModbusRtuTransport : IModbusSharedTransport
{
    private readonly IRtuChannel _channel;
    private readonly ModbusRtuOptions _options;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _bus = new(1, 1);
    private readonly SemaphoreSlim _dataArrived = new(0);
    private readonly TransportLink _link;
    private readonly TimeSpan _silence;
    private readonly object _gate = new();
    private readonly byte[] _rx = new byte[4096];
    private int _rxCount;
    private long _lastActivity;
    // Per unit: when the late-answer guard after its last unanswered request ends. Only that unit's next request waits
    // it (a late answer of another unit is told apart by its address), so a dead unit costs the others one timeout.
    private readonly long[] _guardUntil = new long[256];
    private readonly ModbusRequestSettings _defaults;
    // Requests waiting for the line or on it, the sum of their request timeouts (each holds the line for at most its
    // own), and who is on it (for "behind unit 7 (not answering for 0.9 s)").
    private int _queued;
    private long _queuedTimeoutTicks;
    private int _holder = -1;
    private long _holderSentAt;
    private bool _disposed;

    public ModbusRtuTransport(IRtuChannel channel, ModbusRtuOptions? options = null, ILogger? logger = null, TimeProvider? time = null)
    {
        _channel = channel;
        _options = options ?? new ModbusRtuOptions();
        _logger = logger ?? NullLogger.Instance;
        _link = new TransportLink(channel.Endpoint, _options.ReconnectBackoffMin, _options.ReconnectBackoffMax, _logger, time, logDrops: false);
        _silence = InterFrameSilence(channel.BaudRate);
        _defaults = new ModbusRequestSettings(_options.RequestTimeout) { LateAnswerGuard = _options.LateAnswerGuard };
    }

    public string Endpoint => _channel.Endpoint;

    /// <summary>
    /// 3.5 character times at 11 bits per character; fixed 1.75 ms above 19200 baud (Serial Line V1.02, 2.5.1.1).
    /// </summary>
    public static TimeSpan InterFrameSilence(int? baudRate) => baudRate switch
    {
        null => TimeSpan.Zero,
        > 19200 => TimeSpan.FromMicroseconds(1750),
        { } baud => TimeSpan.FromSeconds(3.5 * 11 / baud),
    };

    public ValueTask<int> SendAsync(byte unitId, ReadOnlyMemory<byte> request, Memory<byte> response, CancellationToken cancellationToken) =>
        SendAsync(unitId, request, response, _defaults, cancellationToken);

    /// <summary>
    /// Sends with <paramref name="settings"/> (the requesting device's timeout and late-answer guard) rather than the
    /// transport's options: units on one line may each have their own.
    /// </summary>
    public async ValueTask<int> SendAsync(byte unitId, ReadOnlyMemory<byte> request, Memory<byte> response, ModbusRequestSettings settings, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(settings);
        var requestTimeout = settings.RequestTimeout;
        var guardAfter = settings.LateAnswerGuard ?? requestTimeout;
        long guardTicks = guardAfter > TimeSpan.Zero ? (long)(guardAfter.TotalSeconds * Stopwatch.Frequency) : 0;
        long myTimeoutTicks = Math.Max(0, requestTimeout.Ticks);
        var fc = (ModbusFunctionCode)request.Span[0];
        var observer = BusWait.Current;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        long started = Stopwatch.GetTimestamp();
        long begun = started;
        bool entered = false;
        bool awaitingAnswer = false;
        var stage = RequestStage.WaitingForBus;
        // The request timeout covers this request's own exchange, from the moment it has the line. Before that it may
        // wait out its own unit's late-answer guard (off the line: the other units keep their turns meanwhile), then
        // for the line, bounded by the turns ahead: each request waiting or on the line holds it for at most its own
        // request timeout (units on one line may have different ones), and this request's timeout is allowed for slack.
        bool queued = false;
        try
        {
            if (GuardRemaining(unitId) is var guard && guard > TimeSpan.Zero)
            {
                stage = RequestStage.Guard;
                observer?.WaitingForBus(guard + requestTimeout);
                await Task.Delay(guard, timeout.Token).ConfigureAwait(false);
                stage = RequestStage.WaitingForBus;
            }

            int ahead = Interlocked.Increment(ref _queued) - 1;
            long aheadTicks = Interlocked.Add(ref _queuedTimeoutTicks, myTimeoutTicks) - myTimeoutTicks;
            queued = true;
            if (ahead > 0)
            {
                var maxWait = TimeSpan.FromTicks(aheadTicks + myTimeoutTicks);
                timeout.CancelAfter(maxWait);
                observer?.WaitingForBus(maxWait);
            }

            await _bus.WaitAsync(timeout.Token).ConfigureAwait(false);
            entered = true;
            Interlocked.Exchange(ref _holderSentAt, 0);
            Volatile.Write(ref _holder, unitId);
            timeout.CancelAfter(requestTimeout);
            observer?.OnBus();
            started = Stopwatch.GetTimestamp();
            stage = RequestStage.Connecting;
            var connection = await EnsureOpenAsync(settings.ReconnectWaitMax, timeout.Token).ConfigureAwait(false);
            // The inter-frame silence keeps the line for this request: count it as sent.
            stage = RequestStage.Sent;
            await WaitForSilenceAsync(timeout.Token).ConfigureAwait(false);

            lock (_gate)
            {
                // Whatever is still buffered belongs to an earlier exchange (a late answer or line noise).
                if (_rxCount > 0)
                {
                    ModbusMetrics.Discarded.Add(1, _link.EndpointTag, new("reason", "stale"));
                    _rxCount = 0;
                }
            }

            byte[] frame = new byte[RtuFrame.MaxFrameLength];
            int n = RtuFrame.Write(frame, unitId, request.Span);
            awaitingAnswer = unitId != 0;
            await connection.Stream.WriteAsync(frame.AsMemory(0, n), timeout.Token).ConfigureAwait(false);
            await connection.Stream.FlushAsync(timeout.Token).ConfigureAwait(false);
            Interlocked.Exchange(ref _lastActivity, Stopwatch.GetTimestamp());
            Interlocked.Exchange(ref _holderSentAt, Stopwatch.GetTimestamp());

            if (unitId == 0)
            {
                // Broadcast: no answer comes (Serial Line V1.02, 2.1).
                _link.Record(started, "ok");
                return 0;
            }

            int length = await ReceiveAsync(connection, unitId, request, response, timeout.Token).ConfigureAwait(false);
            awaitingAnswer = false;
            _link.Record(started, (response.Span[0] & 0x80) != 0 ? "exception" : "ok");
            return length;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            _link.Record(started, "timeout");
            throw new ModbusTimeoutException(stage is RequestStage.WaitingForBus or RequestStage.Guard
                ? _link.NotSent(stage, unitId, request.Span, begun, Behind())
                : $"{Endpoint} unit {unitId}: no answer to {TransportLink.Describe(request.Span)} within {TransportLink.Human(requestTimeout)}")
            {
                RequestSent = stage == RequestStage.Sent,
            };
        }
        catch (OperationCanceledException ex) when (cancellationToken.IsCancellationRequested && ex is not ModbusRequestCanceledException)
        {
            throw _link.Cancelled(stage, unitId, request.Span, begun, ex, cancellationToken, stage == RequestStage.WaitingForBus ? Behind() : null);
        }
        catch (ModbusProtocolException ex)
        {
            _link.Record(started, "protocol");
            Log.Garbled(_logger, Endpoint, ex);
            throw;
        }
        catch (Exception ex) when (ex is IOException or SocketException or UnauthorizedAccessException or InvalidOperationException or ObjectDisposedException && !_disposed)
        {
            throw _link.Fault(started, unitId, fc, ex);
        }
        catch (ModbusCommunicationException)
        {
            _link.Record(started, "io");
            throw;
        }
        finally
        {
            if (awaitingAnswer && guardTicks > 0)
            {
                // The answer may still be on its way: keep this unit's next request off the line until it has come and
                // gone (an answer of this unit, function and size could be taken for that request's).
                Interlocked.Exchange(ref _guardUntil[unitId], Stopwatch.GetTimestamp() + guardTicks);
            }

            if (entered)
            {
                Volatile.Write(ref _holder, -1);
                _bus.Release();
            }

            if (queued)
            {
                Interlocked.Add(ref _queuedTimeoutTicks, -myTimeoutTicks);
                Interlocked.Decrement(ref _queued);
            }
        }
    }

    private TimeSpan GuardRemaining(byte unitId)
    {
        long remaining = Interlocked.Read(ref _guardUntil[unitId]) - Stopwatch.GetTimestamp();
        return remaining > 0 ? TimeSpan.FromSeconds((double)remaining / Stopwatch.Frequency) : TimeSpan.Zero;
    }

    /// <summary>Who holds the line, for a request that gave up waiting for it: "behind unit 7 (not answering for 0.9 s)".</summary>
    private string Behind()
    {
        int unit = Volatile.Read(ref _holder);
        if (unit < 0)
        {
            return "behind a request that has just left the line";
        }

        long sentAt = Interlocked.Read(ref _holderSentAt);
        string doing = sentAt != 0 ? $"not answering for {TransportLink.Human(Stopwatch.GetElapsedTime(sentAt))}" : "opening the line";
        return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"behind unit {unit} ({doing})");
    }

    private async Task<int> ReceiveAsync(TransportConnection connection, byte unitId, ReadOnlyMemory<byte> request, Memory<byte> response, CancellationToken cancellationToken)
    {
        var fc = request.Span[0];
        while (true)
        {
            byte[]? frame = null;
            lock (_gate)
            {
                if (_rxCount > 0)
                {
                    var buffered = _rx.AsSpan(0, _rxCount);
                    int expected;
                    try
                    {
                        expected = RtuFrame.ExpectedResponseLength(buffered);
                    }
                    catch (ModbusProtocolException)
                    {
                        _rxCount = 0;
                        throw;
                    }

                    if (expected > 0 && _rxCount >= expected)
                    {
                        frame = buffered[..expected].ToArray();
                        _rx.AsSpan(expected, _rxCount - expected).CopyTo(_rx);
                        _rxCount -= expected;
                    }
                }
            }

            if (frame is not null)
            {
                var pdu = RtuFrame.Read(frame, out byte from);
                if (from == unitId && (pdu[0] & 0x7F) == fc)
                {
                    if (AnswersRequest(request.Span, pdu))
                    {
                        pdu.CopyTo(response.Span);
                        return pdu.Length;
                    }

                    // Same unit and function but not this request's size or echo: the late answer to a request that timed
                    // out (RTU has no transaction id; regression: a poll's 10 registers taken for a 1-register read-back).
                    ModbusMetrics.Discarded.Add(1, _link.EndpointTag, new("reason", "stale"));
                    Log.Discarded(_logger, Endpoint, "stale", 0, from);
                    continue;
                }

                // A valid frame from another unit or for another function: an answer we stopped waiting for.
                ModbusMetrics.Discarded.Add(1, _link.EndpointTag, new("reason", "mismatched"));
                Log.Discarded(_logger, Endpoint, "mismatched", 0, from);
                continue;
            }

            if (!connection.IsAlive)
            {
                throw new ModbusCommunicationException($"{Endpoint}: connection lost ({connection.CloseReason})");
            }

            await _dataArrived.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Whether a normal response fits the request: a read's byte count matches the quantity asked for, a single write
    /// echoes the request, a multiple write echoes its address and quantity. Exception responses always fit.
    /// </summary>
    internal static bool AnswersRequest(ReadOnlySpan<byte> request, ReadOnlySpan<byte> pdu)
    {
        if ((pdu[0] & 0x80) != 0 || request.Length < 5)
        {
            return true;
        }

        int quantity = (request[3] << 8) | request[4];
        return (ModbusFunctionCode)request[0] switch
        {
            ModbusFunctionCode.ReadCoils or ModbusFunctionCode.ReadDiscreteInputs => pdu.Length >= 2 && pdu[1] == (quantity + 7) / 8,
            ModbusFunctionCode.ReadHoldingRegisters or ModbusFunctionCode.ReadInputRegisters or ModbusFunctionCode.ReadWriteMultipleRegisters => pdu.Length >= 2 && pdu[1] == 2 * quantity,
            ModbusFunctionCode.WriteSingleCoil or ModbusFunctionCode.WriteSingleRegister => pdu.SequenceEqual(request[..5]),
            ModbusFunctionCode.WriteMultipleCoils or ModbusFunctionCode.WriteMultipleRegisters => pdu.Length >= 5 && pdu[1..5].SequenceEqual(request[1..5]),
            _ => true,
        };
    }

    private async Task WaitForSilenceAsync(CancellationToken cancellationToken)
    {
        while (_silence > TimeSpan.Zero)
        {
            var idle = Stopwatch.GetElapsedTime(Interlocked.Read(ref _lastActivity));
            if (idle >= _silence)
            {
                return;
            }

            await Task.Delay(_silence - idle, cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask<TransportConnection> EnsureOpenAsync(TimeSpan? reconnectWaitMax, CancellationToken cancellationToken)
    {
        if (_link.Live is { } current)
        {
            return current;
        }

        _link.ThrowIfBackingOff("not open", "next attempt", reconnectWaitMax);

        Stream stream;
        try
        {
            stream = await _channel.OpenAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or UnauthorizedAccessException or ArgumentException or InvalidOperationException
                                       || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw _link.OpenFailed("open", ex);
        }

        lock (_gate)
        {
            _rxCount = 0;
        }

        return _link.Opened(stream, ReadLoopAsync);
    }

    private async Task ReadLoopAsync(TransportConnection connection)
    {
        byte[] chunk = new byte[512];
        try
        {
            while (!connection.Lifetime.IsCancellationRequested)
            {
                int n = await connection.Stream.ReadAsync(chunk, connection.Lifetime.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    connection.CloseReason = "closed by peer";
                    break;
                }

                lock (_gate)
                {
                    // A flood of noise must not grow without bound: keep the newest bytes.
                    if (_rxCount + n > _rx.Length)
                    {
                        _rxCount = 0;
                    }

                    chunk.AsSpan(0, n).CopyTo(_rx.AsSpan(_rxCount));
                    _rxCount += n;
                }

                Interlocked.Exchange(ref _lastActivity, Stopwatch.GetTimestamp());
                _dataArrived.Release();
            }
        }
        catch (OperationCanceledException)
        {
            connection.CloseReason = "closed";
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            connection.CloseReason = ex.Message;
        }

        _link.ReaderEnded(connection, connection.CloseReason);
        connection.Close();
        _dataArrived.Release();
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await _link.CloseAsync().ConfigureAwait(false);
        _bus.Dispose();
        _dataArrived.Dispose();
    }
}
