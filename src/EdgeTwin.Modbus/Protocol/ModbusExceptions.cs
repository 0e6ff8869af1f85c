namespace EdgeTwin.Modbus.Protocol;

/// <summary>Malformed or unexpected bytes on the wire. Carries the offending bytes for the log and for regression tests.</summary>
public sealed class ModbusProtocolException : Exception
{
    public ModbusProtocolException(string message, ReadOnlySpan<byte> frame)
        : base($"{message} (frame: {(frame.IsEmpty ? "<empty>" : Convert.ToHexString(frame.Length > 300 ? frame[..300] : frame))})")
    {
        Frame = frame.ToArray();
    }

    public ModbusProtocolException() : this("Modbus protocol violation", ReadOnlySpan<byte>.Empty) { }

    public ModbusProtocolException(string message) : this(message, ReadOnlySpan<byte>.Empty) { }

    public ModbusProtocolException(string message, Exception innerException) : base(message, innerException)
    {
        Frame = [];
    }

    private ModbusProtocolException(string message, IReadOnlyList<byte> frame, Exception innerException) : base(message, innerException)
    {
        Frame = frame;
    }

    /// <summary>The bytes that could not be decoded (the whole frame or PDU as received).</summary>
    public IReadOnlyList<byte> Frame { get; }

    /// <summary>
    /// The same error prefixed with where it happened (<c>tcp://10.0.0.5:502 unit 3: ReadHoldingRegisters at 30</c>): the
    /// codec knows only the bytes, and a log line without device, unit and register cannot be acted on.
    /// </summary>
    public ModbusProtocolException WithContext(string where) => new($"{where}: {Message}", Frame, this);
}

/// <summary>The device answered with a Modbus exception response.</summary>
public sealed class ModbusDeviceException : Exception
{
    public ModbusDeviceException(byte unitId, ModbusFunctionCode functionCode, ModbusExceptionCode exceptionCode)
        : this(unitId, functionCode, exceptionCode, null, functionCode.ToString())
    {
    }

    /// <param name="endpoint">Where the unit is (<c>tcp://10.0.0.5:502</c>), for the message.</param>
    /// <param name="request">What was asked (<c>ReadHoldingRegisters at 30</c>), for the message.</param>
    public ModbusDeviceException(byte unitId, ModbusFunctionCode functionCode, ModbusExceptionCode exceptionCode, string? endpoint, string request)
        : base($"{(endpoint is null ? "" : endpoint + " ")}unit {unitId} answered {request} with exception {(byte)exceptionCode} {ModbusExceptionNames.Name(exceptionCode)}")
    {
        UnitId = unitId;
        FunctionCode = functionCode;
        ExceptionCode = exceptionCode;
    }

    public ModbusDeviceException() : this(0, 0, 0) { }

    public ModbusDeviceException(string message) : base(message) { }

    public ModbusDeviceException(string message, Exception innerException) : base(message, innerException) { }

    public byte UnitId { get; }

    public ModbusFunctionCode FunctionCode { get; }

    public ModbusExceptionCode ExceptionCode { get; }
}

/// <summary>Connection, I/O or timeout failure talking to a device or bus: no valid answer arrived.</summary>
public class ModbusCommunicationException : Exception
{
    public ModbusCommunicationException() { }

    public ModbusCommunicationException(string message) : base(message) { }

    public ModbusCommunicationException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>The device did not answer within the request timeout.</summary>
public sealed class ModbusTimeoutException : ModbusCommunicationException
{
    /// <summary>True when the request went out (the connection or port was open) and only the answer was missing.</summary>
    public bool RequestSent { get; init; }

    public ModbusTimeoutException() { }

    public ModbusTimeoutException(string message) : base(message) { }

    public ModbusTimeoutException(string message, Exception innerException) : base(message, innerException) { }
}

public static class ModbusExceptionNames
{
    /// <summary>The spec's name of an exception code, e.g. ILLEGAL DATA ADDRESS.</summary>
    public static string Name(ModbusExceptionCode code) => code switch
    {
        ModbusExceptionCode.IllegalFunction => "ILLEGAL FUNCTION",
        ModbusExceptionCode.IllegalDataAddress => "ILLEGAL DATA ADDRESS",
        ModbusExceptionCode.IllegalDataValue => "ILLEGAL DATA VALUE",
        ModbusExceptionCode.ServerDeviceFailure => "SERVER DEVICE FAILURE",
        ModbusExceptionCode.Acknowledge => "ACKNOWLEDGE",
        ModbusExceptionCode.ServerDeviceBusy => "SERVER DEVICE BUSY",
        ModbusExceptionCode.MemoryParityError => "MEMORY PARITY ERROR",
        ModbusExceptionCode.GatewayPathUnavailable => "GATEWAY PATH UNAVAILABLE",
        ModbusExceptionCode.GatewayTargetDeviceFailedToRespond => "GATEWAY TARGET DEVICE FAILED TO RESPOND",
        _ => $"UNKNOWN EXCEPTION 0x{(byte)code:X2}",
    };
}

/// <summary>
/// The caller cancelled a request (typically its poll deadline passed) before an answer came. Still an
/// <see cref="OperationCanceledException"/>; the message says how far the request got (waiting for the bus, connecting,
/// or sent and unanswered), with unit, function and address, which a bare cancellation would lose.
/// </summary>
public sealed class ModbusRequestCanceledException : OperationCanceledException
{
    public ModbusRequestCanceledException() { }

    public ModbusRequestCanceledException(string message) : base(message) { }

    public ModbusRequestCanceledException(string message, Exception innerException) : base(message, innerException) { }

    public ModbusRequestCanceledException(string message, bool requestSent, Exception innerException, CancellationToken token)
        : base(message, innerException, token)
    {
        RequestSent = requestSent;
    }

    /// <summary>True when the request went out and only the answer was missing.</summary>
    public bool RequestSent { get; }
}
