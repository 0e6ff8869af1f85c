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

    /// <summary>The bytes that could not be decoded (the whole frame or PDU as received).</summary>
    public IReadOnlyList<byte> Frame { get; }
}

/// <summary>The device answered with a Modbus exception response.</summary>
public sealed class ModbusDeviceException : Exception
{
    public ModbusDeviceException(byte unitId, ModbusFunctionCode functionCode, ModbusExceptionCode exceptionCode)
        : base($"unit {unitId} answered {functionCode} with exception {(byte)exceptionCode} {ModbusExceptionNames.Name(exceptionCode)}")
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
