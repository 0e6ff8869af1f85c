using System.Threading.Channels;
using EdgeTwin.Modbus.Protocol;
using EdgeTwin.Modbus.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Modbus.Server;

/// <summary>
/// Modbus RTU server (slave) on a serial line. Frames end by their length fields; a partial frame followed by
/// silence, or a frame with a bad CRC, is dropped without an answer (Serial Line V1.02, 2.5.1.1). Frames for
/// units it does not serve are ignored, as on a shared RS-485 line.
/// </summary>
public sealed class ModbusRtuServer : IAsyncDisposable
{
    private readonly ModbusServerUnits _units;
    private readonly IRtuChannel _channel;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly TimeSpan _frameGap;
    private Stream? _stream;
    private Task _run = Task.CompletedTask;

    public ModbusRtuServer(ModbusServerUnits units, IRtuChannel channel, ILogger? logger = null)
    {
        _units = units;
        _channel = channel;
        _logger = logger ?? NullLogger.Instance;
        // The spec's 1.5/3.5 character gaps are below what a non-realtime OS can time; 20 ms tolerates scheduling jitter.
        _frameGap = TimeSpan.FromMilliseconds(Math.Max(20, ModbusRtuTransport.InterFrameSilence(channel.BaudRate).TotalMilliseconds * 2));
    }

    public ModbusServerUnits Units => _units;

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        _stream = await _channel.OpenAsync(cancellationToken).ConfigureAwait(false);
        Log.ServerListening(_logger, _channel.Endpoint);
        var chunks = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var pump = Task.Run(() => PumpAsync(_stream, chunks.Writer), CancellationToken.None);
        var serve = Task.Run(() => ServeAsync(_stream, chunks.Reader), CancellationToken.None);
        _run = Task.WhenAll(pump, serve);
    }

    private async Task PumpAsync(Stream stream, ChannelWriter<byte[]> writer)
    {
        var buffer = new byte[512];
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                int n = await stream.ReadAsync(buffer, _stop.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                writer.TryWrite(buffer[..n]);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException or InvalidOperationException)
        {
            Log.ServerSessionEnded(_logger, _channel.Endpoint, ex.Message);
        }
        finally
        {
            writer.TryComplete();
        }
    }

    private async Task ServeAsync(Stream stream, ChannelReader<byte[]> reader)
    {
        var buffer = new byte[RtuFrame.MaxFrameLength * 2];
        int have = 0;
        byte[] pdu = new byte[ModbusPdu.MaxLength];
        byte[] response = new byte[RtuFrame.MaxFrameLength];
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                byte[]? chunk = null;
                using (var gap = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token))
                {
                    if (have > 0)
                    {
                        gap.CancelAfter(_frameGap);
                    }

                    try
                    {
                        if (!await reader.WaitToReadAsync(gap.Token).ConfigureAwait(false))
                        {
                            return;
                        }

                        reader.TryRead(out chunk);
                    }
                    catch (OperationCanceledException) when (!_stop.IsCancellationRequested)
                    {
                        // Silence after a partial frame: it will never complete.
                        ModbusMetrics.ServerRequests.Add(1, new KeyValuePair<string, object?>("outcome", "protocol"));
                        have = 0;
                        continue;
                    }
                }

                if (chunk is null)
                {
                    continue;
                }

                if (have + chunk.Length > buffer.Length)
                {
                    have = 0;
                }

                chunk.CopyTo(buffer, have);
                have += chunk.Length;

                while (have > 0)
                {
                    int expected = RtuFrame.ExpectedRequestLength(buffer.AsSpan(0, have));
                    if (expected == 0 || (expected > 0 && have < expected))
                    {
                        break;
                    }

                    if (expected < 0)
                    {
                        // Unknown function: cannot frame it; drop what we have and resynchronise on silence.
                        have = 0;
                        break;
                    }

                    int answer = await HandleFrameAsync(buffer.AsMemory(0, expected), pdu, response).ConfigureAwait(false);
                    Buffer.BlockCopy(buffer, expected, buffer, 0, have - expected);
                    have -= expected;
                    if (answer > 0)
                    {
                        await stream.WriteAsync(response.AsMemory(0, answer), _stop.Token).ConfigureAwait(false);
                        await stream.FlushAsync(_stop.Token).ConfigureAwait(false);
                    }
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException or InvalidOperationException)
        {
            Log.ServerSessionEnded(_logger, _channel.Endpoint, ex.Message);
        }
    }

    private async Task<int> HandleFrameAsync(ReadOnlyMemory<byte> frame, byte[] pdu, byte[] response)
    {
        byte unitId;
        int pduLength;
        try
        {
            pduLength = RtuFrame.Read(frame.Span, out unitId).Length;
        }
        catch (ModbusProtocolException)
        {
            ModbusMetrics.ServerRequests.Add(1, new KeyValuePair<string, object?>("outcome", "protocol"));
            return 0;
        }

        if (!_units.TryGetUnit(unitId, out var unit))
        {
            return 0;
        }

        int n = await ModbusTcpServer.ExecuteAsync(unit, frame.Slice(1, pduLength), pdu, _stop.Token).ConfigureAwait(false);
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

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_stream is not null)
        {
            try
            {
                await _stream.DisposeAsync().ConfigureAwait(false);
            }
            catch (IOException)
            {
            }
        }

        await _run.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }
}
