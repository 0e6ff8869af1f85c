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

    /// <summary>Time allowed for one request, from queueing to the answer.</summary>
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
/// A reader task per connection dispatches responses; a window limits the requests in flight.
/// </summary>
public sealed class ModbusTcpTransport : IModbusTransport
{
    private readonly ModbusTcpOptions _options;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _window;
    private readonly SemaphoreSlim _connectLock = new(1, 1);
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ConcurrentDictionary<ushort, Pending> _pending = new();
    private readonly ReconnectBackoff _backoff;
    private readonly KeyValuePair<string, object?> _endpointTag;
    private Connection? _connection;
    private int _nextTransactionId;
    private int _consecutiveTimeouts;
    private bool _disposed;

    public ModbusTcpTransport(ModbusTcpOptions options, ILogger? logger = null, TimeProvider? time = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxInFlight, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.MaxInFlight, 1024);
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        _window = new SemaphoreSlim(options.MaxInFlight, options.MaxInFlight);
        _backoff = new ReconnectBackoff(options.ReconnectBackoffMin, options.ReconnectBackoffMax, time);
        Endpoint = $"tcp://{options.Host}:{options.Port}";
        _endpointTag = new("endpoint", Endpoint);
    }

    public string Endpoint { get; }

    public bool IsConnected => _connection is { IsAlive: true };

    public async ValueTask<int> SendAsync(byte unitId, ReadOnlyMemory<byte> request, Memory<byte> response, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var fc = (ModbusFunctionCode)request.Span[0];
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.RequestTimeout);
        long started = Stopwatch.GetTimestamp();
        bool entered = false;
        Pending? pending = null;
        try
        {
            await _window.WaitAsync(timeout.Token).ConfigureAwait(false);
            entered = true;
            var connection = await EnsureConnectedAsync(timeout.Token).ConfigureAwait(false);

            ushort tid = (ushort)Interlocked.Increment(ref _nextTransactionId);
            pending = new Pending(unitId, fc, response);
            if (!_pending.TryAdd(tid, pending))
            {
                // 65536 requests in flight cannot happen with a window of at most 1024.
                throw new InvalidOperationException($"transaction id {tid} already in flight on {Endpoint}");
            }

            pending.TransactionId = tid;
            byte[] frame = ArrayPool<byte>.Shared.Rent(MbapFrame.MaxFrameLength);
            try
            {
                int n = MbapFrame.Write(frame, tid, unitId, request.Span);
                await _writeLock.WaitAsync(timeout.Token).ConfigureAwait(false);
                try
                {
                    await connection.Stream.WriteAsync(frame.AsMemory(0, n), timeout.Token).ConfigureAwait(false);
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

            int length = await pending.Completion.Task.WaitAsync(timeout.Token).ConfigureAwait(false);
            Interlocked.Exchange(ref _consecutiveTimeouts, 0);
            Record(started, (response.Span[0] & 0x80) != 0 ? "exception" : "ok");
            return length;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            Record(started, "timeout");
            if (Interlocked.Increment(ref _consecutiveTimeouts) >= _options.ReconnectAfterTimeouts)
            {
                Interlocked.Exchange(ref _consecutiveTimeouts, 0);
                DropConnection("too many consecutive timeouts");
            }

            throw new ModbusTimeoutException($"{Endpoint} unit {unitId}: no answer to {fc} within {_options.RequestTimeout.TotalMilliseconds:0} ms");
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException && !_disposed)
        {
            Record(started, "io");
            DropConnection(ex.Message);
            throw new ModbusCommunicationException($"{Endpoint} unit {unitId}: {fc} failed: {ex.Message}", ex);
        }
        catch (ModbusCommunicationException)
        {
            Record(started, "io");
            throw;
        }
        catch (ModbusProtocolException)
        {
            Record(started, "protocol");
            throw;
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

    private void Record(long started, string outcome)
    {
        ModbusMetrics.Requests.Add(1, _endpointTag, new("outcome", outcome));
        ModbusMetrics.Duration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, _endpointTag);
    }

    private async ValueTask<Connection> EnsureConnectedAsync(CancellationToken cancellationToken)
    {
        var current = _connection;
        if (current is { IsAlive: true })
        {
            return current;
        }

        await _connectLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            current = _connection;
            if (current is { IsAlive: true })
            {
                return current;
            }

            var wait = _backoff.Remaining;
            if (wait > TimeSpan.Zero)
            {
                throw new ModbusCommunicationException($"{Endpoint}: not connected; next reconnect attempt in {wait.TotalMilliseconds:0} ms");
            }

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
                _backoff.Failure();
                ModbusMetrics.Connects.Add(1, _endpointTag, new("outcome", "failed"));
                Log.ConnectFailed(_logger, Endpoint, _backoff.Remaining, ex);
                if (ex is OperationCanceledException && cancellationToken.IsCancellationRequested)
                {
                    throw;
                }

                throw new ModbusCommunicationException($"{Endpoint}: connect failed: {ex.Message}", ex);
            }

            _backoff.Success();
            ModbusMetrics.Connects.Add(1, _endpointTag, new("outcome", "ok"));
            Log.Connected(_logger, Endpoint);
            var connection = new Connection(socket);
            connection.Reader = Task.Run(() => ReadLoopAsync(connection), CancellationToken.None);
            _connection = connection;
            return connection;
        }
        finally
        {
            _connectLock.Release();
        }
    }

    private async Task ReadLoopAsync(Connection connection)
    {
        byte[] buffer = new byte[MbapFrame.MaxFrameLength];
        string reason = "closed by peer";
        try
        {
            while (!connection.Lifetime.IsCancellationRequested)
            {
                await connection.Stream.ReadExactlyAsync(buffer.AsMemory(0, MbapFrame.HeaderLength), connection.Lifetime.Token).ConfigureAwait(false);
                var header = MbapFrame.ReadHeader(buffer);
                await connection.Stream.ReadExactlyAsync(buffer.AsMemory(MbapFrame.HeaderLength, header.PduLength), connection.Lifetime.Token).ConfigureAwait(false);
                Dispatch(header, buffer.AsSpan(MbapFrame.HeaderLength, header.PduLength));
            }
        }
        catch (OperationCanceledException)
        {
            reason = "closed";
        }
        catch (EndOfStreamException)
        {
            reason = "closed by peer";
        }
        catch (ModbusProtocolException ex)
        {
            // The byte stream is out of step; only a new connection resynchronises it.
            Log.Garbled(_logger, Endpoint, ex);
            reason = ex.Message;
            FailAll(connection, new ModbusProtocolException($"{Endpoint}: garbled response, connection reset: {ex.Message}", ex.Frame.ToArray()));
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            reason = ex.Message;
        }

        if (!connection.Lifetime.IsCancellationRequested)
        {
            Log.ConnectionLost(_logger, Endpoint, reason);
        }

        connection.Close();
        FailAll(connection, new ModbusCommunicationException($"{Endpoint}: connection lost ({reason})"));
    }

    private void Dispatch(MbapHeader header, ReadOnlySpan<byte> pdu)
    {
        if (!_pending.TryGetValue(header.TransactionId, out var pending))
        {
            ModbusMetrics.Discarded.Add(1, _endpointTag, new("reason", "stale"));
            Log.Discarded(_logger, Endpoint, "stale", header.TransactionId, header.UnitId);
            return;
        }

        if (header.UnitId != pending.UnitId || (pdu[0] & 0x7F) != (byte)pending.Function)
        {
            ModbusMetrics.Discarded.Add(1, _endpointTag, new("reason", "mismatched"));
            Log.Discarded(_logger, Endpoint, "mismatched", header.TransactionId, header.UnitId);
            return;
        }

        if (_pending.TryRemove(new(header.TransactionId, pending)))
        {
            pdu.CopyTo(pending.Response.Span);
            pending.Completion.TrySetResult(pdu.Length);
        }
    }

    private void FailAll(Connection connection, Exception error)
    {
        // Mark the connection dead first, so a caller retrying at once builds a new one instead of reusing this.
        connection.Close();
        foreach (var entry in _pending)
        {
            if (_pending.TryRemove(entry))
            {
                entry.Value.Completion.TrySetException(error);
            }
        }
    }

    private void DropConnection(string reason)
    {
        var connection = Interlocked.Exchange(ref _connection, null);
        if (connection is not null)
        {
            Log.ConnectionLost(_logger, Endpoint, reason);
            connection.Close();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        var connection = Interlocked.Exchange(ref _connection, null);
        if (connection is not null)
        {
            connection.Close();
            await connection.Reader.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        _window.Dispose();
        _connectLock.Dispose();
        _writeLock.Dispose();
    }

    private sealed class Pending(byte unitId, ModbusFunctionCode function, Memory<byte> response)
    {
        public byte UnitId { get; } = unitId;

        public ModbusFunctionCode Function { get; } = function;

        public Memory<byte> Response { get; } = response;

        public ushort TransactionId { get; set; }

        public TaskCompletionSource<int> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class Connection(Socket socket)
    {
        public Socket Socket { get; } = socket;

        public NetworkStream Stream { get; } = new(socket, ownsSocket: true);

        public CancellationTokenSource Lifetime { get; } = new();

        public Task Reader { get; set; } = Task.CompletedTask;

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

            Stream.Dispose();
        }
    }
}
