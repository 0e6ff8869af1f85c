using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using EdgeTwin.Modbus.Protocol;
using EdgeTwin.Modbus.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Modbus.Server;

public sealed record ModbusTcpServerOptions
{
    /// <summary>Where to listen; port 0 picks a free port (see <see cref="ModbusTcpServer.LocalEndPoint"/>).</summary>
    public IPEndPoint Endpoint { get; init; } = new(IPAddress.Loopback, 0);

    /// <summary>Serve RTU frames over TCP instead of MBAP, like a serial gateway in transparent mode.</summary>
    public bool RtuFraming { get; init; }

    public int MaxConnections { get; init; } = 64;

    /// <summary>A client idle longer than this is disconnected.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(2);
}

/// <summary>
/// Modbus TCP server (slave) for the simulated site and tests. Each connection is served in its own task;
/// requests on one connection are answered in order. Unknown units get no answer, like absent devices behind a gateway.
/// </summary>
public sealed class ModbusTcpServer : IAsyncDisposable
{
    private readonly ModbusServerUnits _units;
    private readonly ModbusTcpServerOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _sessions = [];
    private readonly SemaphoreSlim _connectionSlots;
    private Socket? _listener;
    private Task _acceptLoop = Task.CompletedTask;
    private IPEndPoint? _local;
    private string _endpointText = "(not started)";

    public ModbusTcpServer(ModbusServerUnits units, ModbusTcpServerOptions? options = null, ILogger? logger = null)
    {
        _units = units;
        _options = options ?? new ModbusTcpServerOptions();
        _logger = logger ?? NullLogger.Instance;
        _connectionSlots = new SemaphoreSlim(_options.MaxConnections, _options.MaxConnections);
    }

    public IPEndPoint LocalEndPoint => _local ?? throw new InvalidOperationException("server not started");

    public ModbusServerUnits Units => _units;

    /// <summary>Binds and starts accepting; returns once the socket listens.</summary>
    public Task StartAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var listener = new Socket(_options.Endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(_options.Endpoint);
            listener.Listen(128);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        _listener = listener;
        _local = (IPEndPoint)listener.LocalEndPoint!;
        _endpointText = (_options.RtuFraming ? "rtu+tcp://" : "tcp://") + _local;
        Log.ServerListening(_logger, _endpointText);
        _acceptLoop = Task.Run(AcceptLoopAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                await _connectionSlots.WaitAsync(_stop.Token).ConfigureAwait(false);
                client = await _listener!.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            client.NoDelay = true;
            var session = Task.Run(() => ServeAsync(client), CancellationToken.None);
            lock (_sessions)
            {
                _sessions.RemoveAll(t => t.IsCompleted);
                _sessions.Add(session);
            }
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        string reason = "closed by client";
        var stream = new NetworkStream(socket, ownsSocket: true);
        byte[] request = new byte[RtuFrame.MaxFrameLength + MbapFrame.MaxFrameLength];
        byte[] response = new byte[RtuFrame.MaxFrameLength + MbapFrame.MaxFrameLength];
        byte[] pdu = new byte[ModbusPdu.MaxLength];
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                using var idle = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                idle.CancelAfter(_options.IdleTimeout);
                int frameLength = _options.RtuFraming
                    ? await ServeRtuFrameAsync(stream, request, pdu, response, idle.Token).ConfigureAwait(false)
                    : await ServeMbapFrameAsync(stream, request, pdu, response, idle.Token).ConfigureAwait(false);
                if (frameLength > 0)
                {
                    await stream.WriteAsync(response.AsMemory(0, frameLength), _stop.Token).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
            reason = _stop.IsCancellationRequested ? "server stopped" : "idle timeout";
        }
        catch (EndOfStreamException)
        {
            reason = "closed by client";
        }
        catch (ModbusProtocolException ex)
        {
            ModbusMetrics.ServerRequests.Add(1, new KeyValuePair<string, object?>("outcome", "protocol"));
            reason = ex.Message;
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            reason = ex.Message;
        }
        finally
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            _connectionSlots.Release();
        }

        Log.ServerSessionEnded(_logger, _endpointText, reason);
    }

    private async Task<int> ServeMbapFrameAsync(NetworkStream stream, byte[] request, byte[] pdu, byte[] response, CancellationToken ct)
    {
        await stream.ReadExactlyAsync(request.AsMemory(0, MbapFrame.HeaderLength), ct).ConfigureAwait(false);
        var header = MbapFrame.ReadHeader(request);
        await stream.ReadExactlyAsync(request.AsMemory(MbapFrame.HeaderLength, header.PduLength), ct).ConfigureAwait(false);
        if (!_units.TryGetUnit(header.UnitId, out var unit))
        {
            return 0;
        }

        int n = await ExecuteAsync(unit, request.AsMemory(MbapFrame.HeaderLength, header.PduLength), pdu, ct).ConfigureAwait(false);
        if (n == 0)
        {
            return 0;
        }

        int length = MbapFrame.Write(response, header.TransactionId, header.UnitId, pdu.AsSpan(0, n));
        if (unit.Garble)
        {
            BinaryPrimitives.WriteUInt16BigEndian(response.AsSpan(2), 0xBEEF);
        }

        return length;
    }

    private async Task<int> ServeRtuFrameAsync(NetworkStream stream, byte[] request, byte[] pdu, byte[] response, CancellationToken ct)
    {
        // Over TCP the frame end comes from the length fields alone; unknown functions cannot be framed.
        int have = 0;
        int expected;
        while (true)
        {
            expected = RtuFrame.ExpectedRequestLength(request.AsSpan(0, have));
            if (expected < 0)
            {
                throw new ModbusProtocolException("RTU-over-TCP request with unknown function code", request.AsSpan(0, have));
            }

            if (expected > 0 && have >= expected)
            {
                break;
            }

            int want = expected > 0 ? expected - have : 2 - have;
            if (want <= 0)
            {
                want = 1;
            }

            await stream.ReadExactlyAsync(request.AsMemory(have, want), ct).ConfigureAwait(false);
            have += want;
        }

        var requestPdu = RtuFrame.Read(request.AsSpan(0, expected), out byte unitId);
        if (!_units.TryGetUnit(unitId, out var unit))
        {
            return 0;
        }

        int n = await ExecuteAsync(unit, request.AsMemory(1, requestPdu.Length), pdu, ct).ConfigureAwait(false);
        if (n == 0)
        {
            return 0;
        }

        int length = RtuFrame.Write(response, unitId, pdu.AsSpan(0, n));
        if (unit.Garble)
        {
            response[length - 1] ^= 0xFF;
        }

        return length;
    }

    internal static async ValueTask<int> ExecuteAsync(ModbusServerUnit unit, ReadOnlyMemory<byte> request, byte[] pdu, CancellationToken ct)
    {
        if (unit.Silent)
        {
            ModbusMetrics.ServerRequests.Add(1, new KeyValuePair<string, object?>("outcome", "silent"));
            return 0;
        }

        var delay = unit.ResponseDelay;
        if (delay > TimeSpan.Zero)
        {
            await Task.Delay(delay, ct).ConfigureAwait(false);
        }

        int n = ModbusRequestHandler.Handle(unit, request.Span, pdu);
        ModbusMetrics.ServerRequests.Add(1, new KeyValuePair<string, object?>("outcome", n > 0 && (pdu[0] & 0x80) != 0 ? "exception" : "ok"));
        return n;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener?.Dispose();
        await _acceptLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        Task[] sessions;
        lock (_sessions)
        {
            sessions = [.. _sessions];
        }

        await Task.WhenAll(sessions).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
        _connectionSlots.Dispose();
    }
}
