namespace EdgeTwin.Sensors.Common;

/// <summary>
/// Runs a blocking bus transaction (I2C ioctl, GPIO bit-banging, sysfs read) off the caller's thread with its own
/// timeout. A transaction that hangs in the kernel cannot be aborted, so the gate refuses to start a second one on
/// the same device until the first has returned: one stuck sensor holds one pool thread, never the scheduler.
/// </summary>
internal sealed class BlockingIo
{
    private readonly string _deviceId;
    private readonly string _bus;
    private readonly string _address;
    private int _busy;

    public BlockingIo(string deviceId, string bus, string address)
    {
        _deviceId = deviceId;
        _bus = bus;
        _address = address;
    }

    public async Task<T> RunAsync<T>(Func<T> transaction, TimeSpan timeout, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            throw new SensorException(_deviceId, _bus, _address, "the previous read has not returned yet (bus hung?)");
        }

        var task = Task.Run(() =>
        {
            try
            {
                return transaction();
            }
            finally
            {
                Volatile.Write(ref _busy, 0);
            }
        }, CancellationToken.None);

        try
        {
            return await task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException ex)
        {
            throw new SensorException(_deviceId, _bus, _address, $"no answer within {timeout.TotalMilliseconds:0} ms", ex);
        }
        catch (SensorException)
        {
            throw;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or ArgumentException or PlatformNotSupportedException or NotSupportedException)
        {
            throw new SensorException(_deviceId, _bus, _address, ex.Message, ex);
        }
    }
}
