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

    /// <param name="logDrops">Log <c>connection lost</c> when a request drops the connection (TCP does; RTU has not so far).</param>
    public TransportLink(string endpoint, TimeSpan backoffMin, TimeSpan backoffMax, ILogger logger, TimeProvider? time, bool logDrops)
    {
        Endpoint = endpoint;
        EndpointTag = new("endpoint", endpoint);
        _logger = logger;
        _backoff = new ReconnectBackoff(backoffMin, backoffMax, time);
        _logDrops = logDrops;
    }

    public string Endpoint { get; }

    public KeyValuePair<string, object?> EndpointTag { get; }

    /// <summary>The open connection, or null when there is none or it has closed.</summary>
    public TransportConnection? Live => _connection is { IsAlive: true } c ? c : null;

    /// <summary>While the backoff runs, fails fast with "<paramref name="notOpen"/>; <paramref name="nextAttempt"/> in N ms".</summary>
    public void ThrowIfBackingOff(string notOpen, string nextAttempt)
    {
        var wait = _backoff.Remaining;
        if (wait > TimeSpan.Zero)
        {
            throw new ModbusCommunicationException($"{Endpoint}: {notOpen}; {nextAttempt} in {wait.TotalMilliseconds:0} ms");
        }
    }

    /// <summary>Counts and logs a failed open or connect, starts the backoff, and returns the exception to throw.</summary>
    public ModbusCommunicationException OpenFailed(string what, Exception ex)
    {
        _backoff.Failure();
        ModbusMetrics.Connects.Add(1, EndpointTag, new("outcome", "failed"));
        Log.ConnectFailed(_logger, Endpoint, Log.Human(_backoff.Remaining), ex);
        return new ModbusCommunicationException($"{Endpoint}: {what} failed: {ex.Message}", ex);
    }

    /// <summary>Counts and logs a successful open, resets the backoff, and starts <paramref name="readLoop"/> on the new connection.</summary>
    public TransportConnection Opened(Stream stream, Func<TransportConnection, Task> readLoop)
    {
        _backoff.Success();
        ModbusMetrics.Connects.Add(1, EndpointTag, new("outcome", "ok"));
        Log.Connected(_logger, Endpoint);
        var connection = new TransportConnection(stream);
        connection.Reader = Task.Run(() => readLoop(connection), CancellationToken.None);
        _connection = connection;
        return connection;
    }

    /// <summary>Logs the loss of <paramref name="connection"/> unless it was closed on purpose (drop or dispose).</summary>
    public void ReaderEnded(TransportConnection connection, string reason)
    {
        if (!connection.Lifetime.IsCancellationRequested)
        {
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
