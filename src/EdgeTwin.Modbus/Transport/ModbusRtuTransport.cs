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

    /// <summary>
    /// After a broadcast (unit 0), how long the line stays quiet once the frame is out before the next request goes
    /// (Serial Line V1.02, 2.4.1: the turnaround delay, typically 100 to 200 ms): every unit acts on the broadcast
    /// meanwhile, and one still busy with it misses a request sent at once.
    /// </summary>
    public TimeSpan BroadcastTurnaround { get; init; } = TimeSpan.FromMilliseconds(100);
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
    private readonly RepeatedWarning _garbledLog;
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
    // What the exchange on the line skipped as noise, garbled frames or frames cut short (only its holder touches these):
    // the first reason and the bytes, for its error. Allocated at the first noise, not per request.
    private readonly TimeSpan _garbleSettle;
    private string? _noiseReason;
    private byte[]? _noise;
    private int _noiseCount;
    private string? _discarded;
    private bool _garbledAnswer;
    // Units that have sent a valid frame on this line: garbage from one that never has points at the line settings.
    private readonly bool[] _validFrom = new bool[256];
    private bool _disposed;

    public ModbusRtuTransport(IRtuChannel channel, ModbusRtuOptions? options = null, ILogger? logger = null, TimeProvider? time = null)
    {
        _channel = channel;
        _options = options ?? new ModbusRtuOptions();
        _logger = logger ?? NullLogger.Instance;
        _link = new TransportLink(channel.Endpoint, _options.ReconnectBackoffMin, _options.ReconnectBackoffMax, _logger, time, logDrops: false);
        _garbledLog = new RepeatedWarning(ModbusTcpTransport.JunkLogInterval, time ?? TimeProvider.System);
        _silence = InterFrameSilence(channel.BaudRate);
        _garbleSettle = TimeSpan.FromTicks(Math.Max(TimeSpan.FromMilliseconds(50).Ticks, 4 * _silence.Ticks));
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
        // A broadcast holds the line for its turnaround delay after it, so the requests queued behind it allow for that.
        long myTimeoutTicks = Math.Max(0, requestTimeout.Ticks) + (unitId == 0 ? _options.BroadcastTurnaround.Ticks : 0);
        var fc = (ModbusFunctionCode)request.Span[0];
        var observer = BusWait.Current;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        long started = Stopwatch.GetTimestamp();
        long begun = started;
        bool entered = false;
        bool awaitingAnswer = false;
        ReadOnlyMemory<byte> written = default; // the request's frame once it is on the line
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
            _noiseReason = null;
            _noiseCount = 0;
            _discarded = null;
            _garbledAnswer = false;
            await connection.Stream.WriteAsync(frame.AsMemory(0, n), timeout.Token).ConfigureAwait(false);
            await connection.Stream.FlushAsync(timeout.Token).ConfigureAwait(false);
            written = frame.AsMemory(0, n);
            Interlocked.Exchange(ref _lastActivity, Stopwatch.GetTimestamp());
            Interlocked.Exchange(ref _holderSentAt, Stopwatch.GetTimestamp());

            if (unitId == 0)
            {
                // Broadcast: no answer comes (Serial Line V1.02, 2.1), and the units are busy carrying it out: the next
                // request went out after only the inter-frame silence and a unit still at work missed it. Keep the line
                // for the frame's time on the wire (the write returns once the driver has it) and the turnaround delay.
                _link.Record(started, "ok");
                var hold = _options.BroadcastTurnaround + (_channel.BaudRate is { } baud ? TimeSpan.FromSeconds(n * 11.0 / baud) : TimeSpan.Zero);
                await Task.Delay(hold, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                Interlocked.Exchange(ref _lastActivity, Stopwatch.GetTimestamp());
                return 0;
            }

            int length = await ReceiveAsync(connection, unitId, request, frame.AsMemory(0, n), response, timeout.Token).ConfigureAwait(false);
            awaitingAnswer = false;
            _link.Record(started, (response.Span[0] & 0x80) != 0 ? "exception" : "ok");
            return length;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && unitId != 0 && written.Length > 0
                                                 && TakeBuffered(unitId, request.Span, written.Span, response.Span) is var late && late >= 0)
        {
            // The answer's last bytes came as the timeout fired, before it was looked at: whole and valid, it is this
            // request's. Regression: it was reported as "answer cut short: 9 bytes arrived" (all of them), and the unit
            // kept off the line by the late-answer guard for an answer already here. Looking first also takes a whole
            // garbled frame in the buffer for what it is (a CRC mismatch), so what is left and reported cut short is a
            // true beginning of a frame, with how many of how many bytes.
            awaitingAnswer = false;
            _link.Record(started, (response.Span[0] & 0x80) != 0 ? "exception" : "ok");
            return late;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && stage == RequestStage.Sent && Trouble($"within {TransportLink.Human(requestTimeout)}", unitId) is { } trouble)
        {
            // Bytes came but no valid answer (noise, a garbled frame, a frame cut short): a protocol error saying what came,
            // not "no answer", which sends the engineer after the unit id.
            _link.Record(started, "protocol");
            CountFrameError(unitId);
            var ex = trouble.WithContext($"{Endpoint} unit {unitId}: {TransportLink.Describe(request.Span)}");
            ModbusTcpTransport.ReportGarbled(_garbledLog, _logger, Endpoint, ex.Message);
            throw ex;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            _link.Record(started, "timeout");
            throw new ModbusTimeoutException(stage is RequestStage.WaitingForBus or RequestStage.Guard
                ? _link.NotSent(stage, unitId, request.Span, begun, Behind())
                : $"{Endpoint} unit {unitId}: no answer to {TransportLink.Describe(request.Span)} within {TransportLink.Human(requestTimeout)}{(stage == RequestStage.Sent && _discarded is not null ? $" ({_discarded})" : "")}")
            {
                RequestSent = stage == RequestStage.Sent,
            };
        }
        catch (OperationCanceledException ex) when (cancellationToken.IsCancellationRequested && ex is not ModbusRequestCanceledException)
        {
            var cancelled = _link.Cancelled(stage, unitId, request.Span, begun, ex, cancellationToken, stage == RequestStage.WaitingForBus ? Behind() : null);
            // An answer whole in the buffer as the caller gave up is no frame error, whatever its bytes' count.
            bool answered = unitId != 0 && written.Length > 0 && TakeBuffered(unitId, request.Span, written.Span, response.Span) >= 0;
            if (stage == RequestStage.Sent && !answered && Trouble(null, unitId) is { } trouble)
            {
                // The agent's poll deadline equals the request timeout and often fires first: count the frame error here too.
                CountFrameError(unitId);
                cancelled = new ModbusRequestCanceledException($"{cancelled.Message}; {trouble.Message}", true, ex, cancellationToken);
            }

            throw cancelled;
        }
        catch (ModbusProtocolException ex)
        {
            // A whole frame came (its CRC failed) and the line then stayed quiet: the unit has answered, nothing late is on
            // its way, so its next request need not wait the late-answer guard (a poll's second read waited it out and the
            // poll failed as a bare timeout instead of naming the CRC error).
            awaitingAnswer &= !_garbledAnswer;
            _link.Record(started, "protocol");
            CountFrameError(unitId);
            var garbled = ex.WithContext($"{Endpoint} unit {unitId}: {TransportLink.Describe(request.Span)}");
            ModbusTcpTransport.ReportGarbled(_garbledLog, _logger, Endpoint, garbled.Message);
            throw garbled;
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

    private async Task<int> ReceiveAsync(TransportConnection connection, byte unitId, ReadOnlyMemory<byte> request, ReadOnlyMemory<byte> sent, Memory<byte> response, CancellationToken cancellationToken)
    {
        while (true)
        {
            int length = TakeBuffered(unitId, request.Span, sent.Span, response.Span);
            if (length >= 0)
            {
                return length;
            }

            if (!connection.IsAlive)
            {
                throw new ModbusCommunicationException($"{Endpoint}: connection lost ({connection.CloseReason})");
            }

            if (_noiseCount > 0)
            {
                // Garbage came: a valid answer right behind noise follows within a few character times, and the bytes of
                // one frame come without a pause. A line quiet for longer will bring nothing valid: failing now frees it
                // for the other units instead of holding it to the timeout.
                if (!await _dataArrived.WaitAsync(_garbleSettle, cancellationToken).ConfigureAwait(false))
                {
                    throw Trouble($"(the line stayed quiet for {TransportLink.Human(_garbleSettle)} after it)", unitId)!;
                }

                continue;
            }

            await _dataArrived.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Goes through what is buffered for this request's answer, skipping noise, echoes and answers that are not its own;
    /// its length once found (copied to <paramref name="response"/>), else -1 with what is left kept for the next bytes.
    /// </summary>
    private int TakeBuffered(byte unitId, ReadOnlySpan<byte> request, ReadOnlySpan<byte> sent, Span<byte> response)
    {
        var fc = request[0];
        // An RS-485 converter that hears its own transmission hands back our request before the answer. The echo of a
        // single write (FC 5, 6) is byte for byte its answer, so only the other requests' echoes can be told apart.
        var echoOf = fc is (byte)ModbusFunctionCode.WriteSingleCoil or (byte)ModbusFunctionCode.WriteSingleRegister ? default : sent;
        while (true)
        {
            byte[]? frame = null;
            bool echo = false;
            lock (_gate)
            {
                if (_rxCount > 0)
                {
                    // Hunts for a valid frame past noise and garbled or cut frames (regression: noise before a valid answer
                    // failed the request with a CRC error and the answer was flushed, and an echoing converter failed
                    // every request). What is skipped is kept for the error should no valid answer follow.
                    var buffered = _rx.AsSpan(0, _rxCount);
                    bool found = RtuFrame.TryFindResponse(buffered, echoOf, out int start, out int length, out echo, out int garbage);
                    int skipped = found ? start : garbage;
                    if (skipped > 0)
                    {
                        NoteNoise(buffered, skipped);
                    }

                    int consumed = skipped;
                    if (found)
                    {
                        frame = buffered.Slice(start, length).ToArray();
                        consumed = start + length;
                    }

                    _rx.AsSpan(consumed, _rxCount - consumed).CopyTo(_rx);
                    _rxCount -= consumed;
                }
            }

            if (frame is null)
            {
                return -1;
            }

            byte from = frame[0];
            var pdu = frame.AsSpan(1, frame.Length - 3);
            if (echo)
            {
                ModbusMetrics.Discarded.Add(1, _link.EndpointTag, new("reason", "echo"));
                Log.Discarded(_logger, Endpoint, "echo", 0, from);
                continue;
            }

            if (from == unitId && (pdu[0] & 0x7F) == fc)
            {
                if (AnswersRequest(request, pdu))
                {
                    if (_noiseCount > 0)
                    {
                        ModbusMetrics.Discarded.Add(1, _link.EndpointTag, new("reason", "noise"));
                        Log.NoiseSkipped(_logger, Endpoint, _noiseCount, unitId, _noiseReason);
                        CountFrameError(unitId);
                    }

                    _validFrom[unitId] = true;
                    pdu.CopyTo(response);
                    return pdu.Length;
                }

                // Same unit and function but not this request's size or echo: the late answer to a request that timed
                // out (RTU has no transaction id; regression: a poll's 10 registers taken for a 1-register read-back).
                ModbusMetrics.Discarded.Add(1, _link.EndpointTag, new("reason", "stale"));
                Log.Discarded(_logger, Endpoint, "stale", 0, from);
                _discarded = $"an answer of {pdu.Length} bytes that does not fit this request was discarded";
                continue;
            }

            // A valid frame from another unit or for another function: an answer we stopped waiting for.
            ModbusMetrics.Discarded.Add(1, _link.EndpointTag, new("reason", "mismatched"));
            Log.Discarded(_logger, Endpoint, "mismatched", 0, from);
            _discarded = $"an answer from unit {from} with function 0x{pdu[0]:X2} was discarded";
        }
    }

    /// <summary>Keeps the first <paramref name="count"/> bytes of <paramref name="buffered"/>, skipped as noise, for the error.</summary>
    private void NoteNoise(ReadOnlySpan<byte> buffered, int count)
    {
        var skipped = buffered[..count];
        if (_noiseReason is null)
        {
            // The first skipped byte tells why: a frame was there but its CRC did not match, or nothing could start there.
            int expected = RtuFrame.TryExpectedResponseLength(buffered);
            _garbledAnswer = expected > 0 && expected <= Math.Min(buffered.Length, RtuFrame.MaxFrameLength);
            _noiseReason = _garbledAnswer
                ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"CRC mismatch: computed {Crc16.Compute(buffered[..(expected - 2)]):X4}, frame carries {System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(buffered[(expected - 2)..]):X4}")
                : $"bytes that start no response frame (function code 0x{(buffered.Length > 1 ? buffered[1] : 0):X2})";
        }

        _noise ??= new byte[RtuFrame.MaxFrameLength];
        int room = _noise.Length - _noiseCount;
        if (room > 0)
        {
            skipped[..Math.Min(room, skipped.Length)].CopyTo(_noise.AsSpan(_noiseCount));
        }

        _noiseCount += skipped.Length;
    }

    /// <summary>
    /// What the exchange on the line received instead of a valid answer (noise, a garbled frame, a frame cut short), as
    /// the protocol error to report; null when nothing came.
    /// </summary>
    private ModbusProtocolException? Trouble(string? when, byte unitId)
    {
        byte[] partial;
        lock (_gate)
        {
            partial = _rx.AsSpan(0, _rxCount).ToArray();
        }

        if (_noiseCount == 0 && partial.Length == 0)
        {
            return null;
        }

        var noise = _noiseCount == 0 ? [] : _noise.AsSpan(0, Math.Min(_noiseCount, _noise!.Length)).ToArray();
        // What is left is the start of one frame (whole ones, valid or garbled, were taken or skipped before): how much of it.
        int expected = RtuFrame.TryExpectedResponseLength(partial);
        string what = _noiseCount == 0
            ? expected > partial.Length
                ? $"answer cut short: {partial.Length} of its {expected} bytes arrived"
                : $"answer cut short: {partial.Length} bytes arrived"
            : $"{_noiseReason} ({_noiseCount + partial.Length} bytes of noise or garbled frames)";
        // Only garbage from a unit that has never sent a valid frame here: a baud rate, parity or stop bits that differ
        // from the device's give exactly that, and "CRC mismatch" alone did not say so.
        string hint = _noiseCount > 0 && !_validFrom[unitId]
            ? $"; unit {unitId} has sent no valid frame on this line yet: check that {_channel.LineSettingsHint} match the device's baud rate, parity and stop bits, and the A/B wiring"
            : _noiseCount == 0 ? StillSending(partial) : "";
        return new ModbusProtocolException(when is null ? what + hint : $"no valid answer: {what} {when}{hint}", [.. noise, .. partial]);
    }

    /// <summary>
    /// An answer cut short while its bytes were still coming: at a low baud rate a long read needs more time on the wire
    /// than the timeout gives (125 registers at 9600 baud: 292 ms), which "answer cut short" alone did not say.
    /// </summary>
    private string StillSending(ReadOnlySpan<byte> partial)
    {
        int expected = RtuFrame.TryExpectedResponseLength(partial);
        var quiet = Stopwatch.GetElapsedTime(Interlocked.Read(ref _lastActivity));
        if (expected <= partial.Length || quiet > 2 * _garbleSettle)
        {
            return "";
        }

        return _channel.BaudRate is { } baud
            ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"; the unit was still sending: its answer of {expected} bytes takes {expected * 11.0 * 1000 / baud:0} ms on the wire at {baud} baud, so the timeout must be well above that: raise the device's timeout or read fewer registers at a time")
            : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"; the unit was still sending ({partial.Length} of {expected} bytes): raise the device's timeout or read fewer registers at a time");
    }

    /// <summary>Counts a frame error against the unit being asked: a CRC mismatch, line noise, or an answer cut short.</summary>
    private void CountFrameError(byte unitId)
    {
        string kind = _garbledAnswer ? "crc" : _noiseCount > 0 ? "noise" : "cut_short";
        ModbusMetrics.FrameErrors.Add(1, _link.EndpointTag, new("unit", (int)unitId), new("kind", kind));
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
        if (ProcessDescriptors.RefuseAnother() is { } full)
        {
            throw _link.OpenFailed("open", new IOException(full)); // as the TCP transport: the runtime's own files come first
        }

        Stream stream;
        try
        {
            stream = await _channel.OpenAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or UnauthorizedAccessException or ArgumentException or InvalidOperationException
                                       || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw _link.OpenFailed("open", ex is SocketException { SocketErrorCode: SocketError.TooManyOpenSockets }
                ? new IOException(ProcessDescriptors.TooManyOpenFiles(), ex)
                : ex);
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
