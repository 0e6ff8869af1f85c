namespace EdgeTwin.Modbus.Transport;

/// <summary>
/// One device's settings for its requests on a transport it shares with other devices (units on one RS-485 line or
/// serial gateway, units behind one TCP gateway): each request runs with its own device's timeout, not with the options
/// of whichever device happened to open the line.
/// </summary>
/// <param name="RequestTimeout">Time allowed for one request's exchange (RTU: from the moment it has the line).</param>
public sealed record ModbusRequestSettings(TimeSpan RequestTimeout)
{
    /// <summary>
    /// RTU: after this device's request got no valid answer, how long its next request waits, off the line, before it
    /// is sent (see <see cref="ModbusRtuOptions.LateAnswerGuard"/>); null = <see cref="RequestTimeout"/>. TCP ignores it.
    /// </summary>
    public TimeSpan? LateAnswerGuard { get; init; }

    /// <summary>
    /// Longest reconnect backoff this device's requests wait out, counted from the last failed connect or open (any
    /// device's); null = the transport's own backoff. The agent sets the device's poll interval: its scheduler already
    /// backs a down device off (up to 5 min), and the transport's wait (up to 30 s, grown by every unit behind one
    /// gateway) must not fail, uncounted and untried, the polls of a device that is back.
    /// </summary>
    public TimeSpan? ReconnectWaitMax { get; init; }
}

/// <summary>A transport several devices share, each sending with its own <see cref="ModbusRequestSettings"/>.</summary>
public interface IModbusSharedTransport : IModbusTransport
{
    /// <summary>As <see cref="IModbusTransport.SendAsync"/>, with <paramref name="settings"/> instead of the transport's own options.</summary>
    ValueTask<int> SendAsync(byte unitId, ReadOnlyMemory<byte> request, Memory<byte> response, ModbusRequestSettings settings, CancellationToken cancellationToken);
}

/// <summary>
/// One device's share of a shared transport: every request goes out with that device's settings. Disposing the share
/// leaves the transport open; its owner (the one that created it) closes it.
/// </summary>
public sealed class ModbusTransportShare : IModbusTransport
{
    private readonly IModbusSharedTransport _transport;

    public ModbusTransportShare(IModbusSharedTransport transport, ModbusRequestSettings settings)
    {
        ArgumentNullException.ThrowIfNull(transport);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(settings.RequestTimeout, TimeSpan.Zero);
        _transport = transport;
        Settings = settings;
    }

    public ModbusRequestSettings Settings { get; }

    public string Endpoint => _transport.Endpoint;

    public ValueTask<int> SendAsync(byte unitId, ReadOnlyMemory<byte> request, Memory<byte> response, CancellationToken cancellationToken) =>
        _transport.SendAsync(unitId, request, response, Settings, cancellationToken);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
