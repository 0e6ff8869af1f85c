using System.Net;
using System.Net.Sockets;
using MQTTnet.Channel;

namespace EdgeTwin.Uplink.Mqtt;

/// <summary>
/// Opens the broker connection for MQTTnet (TLS, when configured, is layered on top by MQTTnet's own channel).
/// The stream it returns is what makes a replay fast: MQTTnet writes every packet and reads every PUBACK with its
/// own socket call, which at 20,000 messages/s is 60,000 system calls a second on a 2-core gateway.
/// </summary>
internal sealed class CoalescingStreamProvider : IMqttClientStreamProvider
{
    public async Task<Stream> ConnectAsync(EndPoint brokerEndPoint, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(brokerEndPoint, cancellationToken).ConfigureAwait(false);
            return new CoalescingSocketStream(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}

/// <summary>
/// A socket stream that gathers writes and buffers reads. A write is copied into a pending buffer and returns at
/// once; a sender on the thread pool sends everything pending in one call, so packets written while a send is
/// under way (a replay keeps up to a window of publishes going) leave together. Reads fill a 64 KB buffer, so
/// one call takes every PUBACK the broker has sent. Nothing waits for a timer: a lone packet goes out as soon as
/// the sender runs. Delivery is still judged by PUBACK only, so a write lost with a failing socket is resent.
/// </summary>
internal sealed class CoalescingSocketStream : Stream, IMqttClientStreamEndPoints
{
    private const int ReadBufferSize = 64 * 1024;
    private const int InitialWriteBufferSize = 16 * 1024;

    // Above this much unsent data a writer waits for the sender, so a stalled peer cannot grow memory without bound.
    private const int MaxPending = 1024 * 1024;

    private static readonly TimeSpan CloseDrainTimeout = TimeSpan.FromSeconds(2);

    private readonly Socket _socket;
    private readonly Lock _lock = new();
    private readonly byte[] _readBuffer = new byte[ReadBufferSize];
    private int _readStart;
    private int _readEnd;
    private byte[] _pending = new byte[InitialWriteBufferSize];
    private byte[] _sending = new byte[InitialWriteBufferSize];
    private int _pendingCount;
    private bool _senderRunning;
    private TaskCompletionSource? _drained;
    private Exception? _failure;
    private int _disposed;

    public CoalescingSocketStream(Socket socket)
    {
        _socket = socket;
        LocalEndPoint = socket.LocalEndPoint;
        RemoteEndPoint = socket.RemoteEndPoint;
    }

    public EndPoint? LocalEndPoint { get; }

    public EndPoint? RemoteEndPoint { get; }

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_readStart == _readEnd)
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            if (buffer.Length >= ReadBufferSize)
            {
                return await _socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            }

            _readStart = 0;
            _readEnd = await _socket.ReceiveAsync(_readBuffer.AsMemory(), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (_readEnd == 0)
            {
                return 0;
            }
        }

        var count = Math.Min(buffer.Length, _readEnd - _readStart);
        _readBuffer.AsSpan(_readStart, count).CopyTo(buffer.Span);
        _readStart += count;
        return count;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_readStart == _readEnd)
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            _readStart = 0;
            _readEnd = _socket.Receive(_readBuffer, SocketFlags.None);
            if (_readEnd == 0)
            {
                return 0;
            }
        }

        var count = Math.Min(buffer.Length, _readEnd - _readStart);
        _readBuffer.AsSpan(_readStart, count).CopyTo(buffer);
        _readStart += count;
        return count;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Task? wait = null;
        lock (_lock)
        {
            ThrowIfUnusable();
            Append(buffer.Span);
            if (!_senderRunning)
            {
                _senderRunning = true;
                ThreadPool.UnsafeQueueUserWorkItem(static s => _ = s.SendPendingAsync(), this, preferLocal: false);
            }
            else if (_pendingCount > MaxPending)
            {
                _drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _drained.Task;
            }
        }

        return wait is null ? ValueTask.CompletedTask : new ValueTask(wait.WaitAsync(cancellationToken));
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        lock (_lock)
        {
            ThrowIfUnusable();
            if (_senderRunning || _pendingCount > 0)
            {
                // Keep the byte order: behind what the sender still holds.
                Append(buffer);
                return;
            }
        }

        _socket.Send(buffer, SocketFlags.None);
    }

    /// <summary>Writes are sent without being asked; like <see cref="NetworkStream"/>, there is nothing to flush.</summary>
    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            // MQTTnet disposes the stream right after its DISCONNECT (or the death message) was written: let what is
            // pending leave first, within a bound, so a clean stop stays clean at the broker.
            var deadline = Environment.TickCount64 + (long)CloseDrainTimeout.TotalMilliseconds;
            SpinWait spin = default;
            while (Environment.TickCount64 < deadline)
            {
                lock (_lock)
                {
                    if (!_senderRunning || _failure is not null)
                    {
                        break;
                    }
                }

                spin.SpinOnce(sleep1Threshold: 10);
            }

            lock (_lock)
            {
                _failure ??= new ObjectDisposedException(nameof(CoalescingSocketStream));
                _drained?.TrySetException(new IOException("The broker connection was closed", _failure));
            }

            try
            {
                _socket.Shutdown(SocketShutdown.Both);
            }
            catch (SocketException)
            {
                // Already reset by the peer; closing is all that is left.
            }

            _socket.Dispose();
        }

        base.Dispose(disposing);
    }

    private void ThrowIfUnusable()
    {
        if (_failure is { } failure)
        {
            throw failure is ObjectDisposedException
                ? new ObjectDisposedException(nameof(CoalescingSocketStream))
                : new IOException($"Sending to the broker failed: {failure.Message}", failure);
        }
    }

    private void Append(ReadOnlySpan<byte> data)
    {
        if (_pending.Length - _pendingCount < data.Length)
        {
            Array.Resize(ref _pending, Math.Max(_pending.Length * 2, _pendingCount + data.Length));
        }

        data.CopyTo(_pending.AsSpan(_pendingCount));
        _pendingCount += data.Length;
    }

    private async Task SendPendingAsync()
    {
        while (true)
        {
            int count;
            lock (_lock)
            {
                if (_pendingCount == 0 || _failure is not null)
                {
                    _senderRunning = false;
                    return;
                }

                (_pending, _sending) = (_sending, _pending);
                count = _pendingCount;
                _pendingCount = 0;
                if (_drained is { } drained)
                {
                    _drained = null;
                    drained.TrySetResult();
                }
            }

            try
            {
                // A stream socket sends all of it or fails.
                await _socket.SendAsync(_sending.AsMemory(0, count), SocketFlags.None).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                lock (_lock)
                {
                    _failure ??= ex;
                    _senderRunning = false;
                    _drained?.TrySetException(new IOException($"Sending to the broker failed: {ex.Message}", ex));
                }

                // The reader is parked in a receive: closing the socket ends it, so MQTTnet sees the connection drop.
                try
                {
                    _socket.Shutdown(SocketShutdown.Both);
                }
                catch (Exception shutdownError) when (shutdownError is SocketException or ObjectDisposedException)
                {
                    // Already gone.
                }

                return;
            }
        }
    }
}
