using System.Diagnostics;
using EdgeTwin.Modbus.Protocol;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Modbus.Transport;

/// <summary>
/// The connection handling the RTU and TCP transports share: one connection at a time with its reader task, the
/// reconnect backoff and its fail-fast, connect and request metrics and logs, and dropping the connection on an I/O
/// fault. Framing stays in the transports (RTU: inter-frame silence, CRC; TCP: MBAP transaction ids).
/// Callers serialise connecting (RTU: the bus lock; TCP: its connect lock).
/// </summary>
internal sealed class TransportLink
{
    private readonly ILogger _logger;
    private readonly ReconnectBackoff _backoff;
    private readonly bool _logDrops;
    private TransportConnection? _connection;
    private string? _quietEnd;
    // Why the last connect or open failed, for the polls that fail fast inside the backoff that followed it.
    private string? _lastFailure;
    private readonly TimeProvider _time;
    // The current run of failed connects: a device that stays unreachable is one Warning, then one an hour, not one per
    // attempt (a drive powered off for the weekend logged a Warning every 30 s, 2,880 a day, into the journal).
    private int _failedConnects;
    private DateTimeOffset _failingSince;
    private string? _warnedReason;
    private DateTimeOffset _lastWarning;

    /// <summary>How often an endpoint that keeps failing to connect, for the same reason, is reported at Warning again.</summary>
    internal static readonly TimeSpan RepeatWarningEvery = TimeSpan.FromHours(1);

    /// <param name="logDrops">Log <c>connection lost</c> when a request drops the connection (TCP does; RTU has not so far).</param>
    public TransportLink(string endpoint, TimeSpan backoffMin, TimeSpan backoffMax, ILogger logger, TimeProvider? time, bool logDrops)
    {
        Endpoint = endpoint;
        EndpointTag = new("endpoint", endpoint);
        _logger = logger;
        _time = time ?? TimeProvider.System;
        _backoff = new ReconnectBackoff(backoffMin, backoffMax, time);
        _logDrops = logDrops;
    }

    public string Endpoint { get; }

    public KeyValuePair<string, object?> EndpointTag { get; }

    /// <summary>The open connection, or null when there is none or it has closed.</summary>
    public TransportConnection? Live => _connection is { IsAlive: true } c ? c : null;

    /// <summary>
    /// While the backoff runs, fails fast with "<paramref name="notOpen"/>; <paramref name="nextAttempt"/> in N ms". For a
    /// caller with <paramref name="maxWait"/> (a device's poll interval) the wait ends that long after the last failure.
    /// </summary>
    public void ThrowIfBackingOff(string notOpen, string nextAttempt, TimeSpan? maxWait = null)
    {
        var wait = _backoff.RemainingFor(maxWait);
        if (wait > TimeSpan.Zero)
        {
            // The reason goes with it: a device's "down after 3 failed polls" Warning quoted "not open; next attempt in
            // 3.5 s" and nothing said the port was gone or the gateway refused.
            var why = Volatile.Read(ref _lastFailure);
            throw new ModbusCommunicationException($"{Endpoint}: {notOpen}{(why is null ? "" : $" ({why})")}; {nextAttempt} in {Human(wait)}");
        }
    }

    /// <summary>Counts and logs a failed open or connect, starts the backoff, and returns the exception to throw.</summary>
    public ModbusCommunicationException OpenFailed(string what, Exception ex)
    {
        _backoff.Failure();
        Volatile.Write(ref _lastFailure, $"last {what} failed: {ex.Message}");
        Volatile.Write(ref _quietEnd, null); // warned about: the connect that ends it is news
        ModbusMetrics.Connects.Add(1, EndpointTag, new("outcome", "failed"));
        // A refused connection or a missing port is expected on site and retried: one line, the stack trace only at
        // Debug (it says nothing about the device, and five of them in 30 s buried the log). The same failure again is
        // Debug, with a Warning an hour while it lasts; another reason is news and a Warning at once.
        var now = _time.GetUtcNow();
        if (_failedConnects++ == 0)
        {
            _failingSince = now;
        }

        var next = Human(_backoff.Remaining);
        if (_failedConnects == 1 || !string.Equals(ex.Message, _warnedReason, StringComparison.Ordinal))
        {
            _warnedReason = ex.Message;
            _lastWarning = now;
            Log.ConnectFailed(_logger, Endpoint, next, ex.Message);
        }
        else if (now - _lastWarning >= RepeatWarningEvery)
        {
            _lastWarning = now;
            Log.ConnectStillFailing(_logger, Endpoint, _failedConnects, _failingSince, ex.Message, next);
        }
        else
        {
            Log.ConnectFailedAgain(_logger, Endpoint, _failedConnects, _failingSince, ex.Message, next);
        }

        Log.ConnectFailedDetail(_logger, Endpoint, ex);
        return new ModbusCommunicationException($"{Endpoint}: {what} failed: {ex.Message}", ex);
    }

    /// <summary>Counts and logs a successful open, resets the backoff, and starts <paramref name="readLoop"/> on the new connection.</summary>
    public TransportConnection Opened(Stream stream, Func<TransportConnection, Task> readLoop)
    {
        _backoff.Success();
        ModbusMetrics.Connects.Add(1, EndpointTag, new("outcome", "ok"));
        // After a close that was only logged at Debug (a gateway that closes after each answer, a reset for junk) the
        // reconnect is routine too: an Information line per poll buried the log as the Warnings did before.
        if (_failedConnects > 0)
        {
            Log.ConnectedAgain(_logger, Endpoint, _failedConnects, _failingSince);
            _failedConnects = 0;
            _warnedReason = null;
            Volatile.Write(ref _quietEnd, null);
        }
        else if (Interlocked.Exchange(ref _quietEnd, null) is { } why)
        {
            Log.Reconnected(_logger, Endpoint, why);
        }
        else
        {
            Log.Connected(_logger, Endpoint);
        }

        var connection = new TransportConnection(stream);
        connection.Reader = Task.Run(() => readLoop(connection), CancellationToken.None);
        _connection = connection;
        return connection;
    }

    /// <summary>The connection ended in a way that is routine for this device (logged at Debug); its reconnect is logged at Debug too.</summary>
    public void EndedQuietly(string why) => Volatile.Write(ref _quietEnd, why);

    /// <summary>Logs the loss of <paramref name="connection"/> unless it was closed on purpose (drop or dispose).</summary>
    public void ReaderEnded(TransportConnection connection, string reason)
    {
        if (!connection.Lifetime.IsCancellationRequested)
        {
            Volatile.Write(ref _quietEnd, null);
            Log.ConnectionLost(_logger, Endpoint, reason);
        }
    }

    /// <summary>Closes the current connection (the next request opens a new one); false when there was none.</summary>
    public bool Drop(string reason)
    {
        var connection = Interlocked.Exchange(ref _connection, null);
        if (connection is null)
        {
            return false;
        }

        if (_logDrops)
        {
            Volatile.Write(ref _quietEnd, null);
            Log.ConnectionLost(_logger, Endpoint, reason);
        }

        connection.CloseReason = reason;
        connection.Close();
        return true;
    }

    /// <summary>An I/O fault on a request: counts it, drops the connection and returns the communication exception to throw.</summary>
    public ModbusCommunicationException Fault(long started, byte unitId, ModbusFunctionCode fc, Exception ex)
    {
        Record(started, "io");
        Drop(ex.Message);
        return new ModbusCommunicationException($"{Endpoint} unit {unitId}: {fc} failed: {ex.Message}", ex);
    }

    /// <summary>"ReadHoldingRegisters at 30": the function and, for the functions that have one, the start address.</summary>
    internal static string Describe(ReadOnlySpan<byte> request)
    {
        var fc = (ModbusFunctionCode)request[0];
        return request.Length >= 3 && request[0] is >= 1 and <= 6 or 15 or 16 or 23
            ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{fc} at {System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(request[1..3])}")
            : fc.ToString();
    }

    /// <summary>
    /// The caller gave up (its deadline) before an answer: what the request was waiting for, so the poll's failure
    /// names unit, function and address instead of a bare "no answer".
    /// </summary>
    /// <param name="behind">RTU: who holds the line ("behind unit 7 (not answering for 0.9 s)"); null where the transport cannot tell.</param>
    internal ModbusRequestCanceledException Cancelled(RequestStage stage, byte unitId, ReadOnlySpan<byte> request, long begun, OperationCanceledException ex, CancellationToken token, string? behind = null)
    {
        var waited = Human(Stopwatch.GetElapsedTime(begun));
        var what = Describe(request);
        var message = stage switch
        {
            RequestStage.WaitingForBus when behind is null => $"{Endpoint} unit {unitId}: {what} still waiting for the bus after {waited} (another request was on the line)",
            RequestStage.WaitingForBus or RequestStage.Guard => NotSent(stage, unitId, request, begun, behind),
            RequestStage.Connecting => $"{Endpoint} unit {unitId}: {what} not sent, still connecting after {waited}",
            _ => $"{Endpoint} unit {unitId}: no answer to {what} within {waited}",
        };
        return new ModbusRequestCanceledException(message, stage == RequestStage.Sent, ex, token);
    }

    /// <summary>
    /// A request that never got the line: "serial:///dev/ttyUSB0@9600 unit 3: ReadHoldingRegisters at 0 not sent: still
    /// waiting for the bus after 2 s, behind unit 7 (not answering for 0.9 s)". It names the unit on the line, so a
    /// dead neighbour is not taken for this unit's fault.
    /// </summary>
    internal string NotSent(RequestStage stage, byte unitId, ReadOnlySpan<byte> request, long begun, string? behind)
    {
        var waited = Human(Stopwatch.GetElapsedTime(begun));
        return stage == RequestStage.Guard
            ? $"{Endpoint} unit {unitId}: {Describe(request)} not sent: still waiting out the late-answer guard after its own unanswered request ({waited} in all)"
            : $"{Endpoint} unit {unitId}: {Describe(request)} not sent: still waiting for the bus after {waited}, {behind ?? "behind another request"}";
    }

    /// <summary>A wait for people: <c>0.2 s</c>, <c>4 s</c>, <c>30 ms</c> (not <c>00:00:00.1976163</c>).</summary>
    internal static string Human(TimeSpan wait) => wait < TimeSpan.FromMilliseconds(100)
        ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Math.Max(0, wait.TotalMilliseconds):0} ms")
        : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{wait.TotalSeconds:0.#} s");

    public void Record(long started, string outcome)
    {
        ModbusMetrics.Requests.Add(1, EndpointTag, new("outcome", outcome));
        ModbusMetrics.Duration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, EndpointTag);
    }

    /// <summary>Closes the connection for good and waits for its reader to end.</summary>
    public async ValueTask CloseAsync()
    {
        var connection = Interlocked.Exchange(ref _connection, null);
        if (connection is not null)
        {
            connection.Close();
            await connection.Reader.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }
}

/// <summary>How far a request got: waiting for its turn on the bus (RTU: then its own unit's late-answer guard), opening the connection, or sent.</summary>
internal enum RequestStage
{
    WaitingForBus,
    Guard,
    Connecting,
    Sent,
}

/// <summary>One open stream with the reader task that owns its receive side; closing cancels the reader.</summary>
internal sealed class TransportConnection(Stream stream)
{
    public Stream Stream { get; } = stream;

    public CancellationTokenSource Lifetime { get; } = new();

    public Task Reader { get; set; } = Task.CompletedTask;

    public string CloseReason { get; set; } = "closed";

    public bool IsAlive => !Lifetime.IsCancellationRequested;

    public void Close()
    {
        try
        {
            Lifetime.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }

        try
        {
            Stream.Dispose();
        }
        catch (IOException)
        {
        }
    }
}
