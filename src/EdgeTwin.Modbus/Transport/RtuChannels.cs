using System.IO.Ports;
using System.Net.Sockets;

namespace EdgeTwin.Modbus.Transport;

/// <summary>Opens the byte stream an RTU transport runs on: a serial port, or a TCP socket to a serial gateway.</summary>
public interface IRtuChannel
{
    string Endpoint { get; }

    /// <summary>Baud rate for the inter-frame silence, or null when the stream is not a serial line (no silence needed).</summary>
    int? BaudRate { get; }

    ValueTask<Stream> OpenAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Where to look when a unit sends only garbage, for the error: the line settings of a serial port
    /// (<c>the line's 9600 8E1</c>), the gateway's for a serial gateway.
    /// </summary>
    string LineSettingsHint => "the line settings";
}

public sealed record SerialLineOptions
{
    public required string PortName { get; init; }

    public int BaudRate { get; init; } = 9600;

    public Parity Parity { get; init; } = Parity.Even;

    public StopBits StopBits { get; init; } = StopBits.One;

    public int DataBits { get; init; } = 8;

    /// <summary>Where UUCP lock files (LCK..ttyUSB0) are respected and created; tests use their own directory.</summary>
    internal string LockDirectory { get; init; } = UucpLock.DefaultDirectory;

    /// <summary>Parses "N", "E", "O" (and none/even/odd).</summary>
    public static bool TryParseParity(string? text, out Parity parity)
    {
        parity = Parity.None;
        switch (text?.Trim().ToUpperInvariant())
        {
            case "N" or "NONE": parity = Parity.None; return true;
            case "E" or "EVEN": parity = Parity.Even; return true;
            case "O" or "ODD": parity = Parity.Odd; return true;
            default: return false;
        }
    }
}

/// <summary>RTU on a local serial port (RS-485 adapter) via System.IO.Ports.</summary>
public sealed class SerialRtuChannel(SerialLineOptions options) : IRtuChannel
{
    public string Endpoint { get; } = $"serial://{options.PortName}@{options.BaudRate}";

    public int? BaudRate => options.BaudRate;

    public ValueTask<Stream> OpenAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        // Before the open: opening the port already changes its modem lines under the program that holds it.
        var uucp = UucpLock.Acquire(options.PortName, options.LockDirectory);
        try
        {
            return Open(uucp);
        }
        catch
        {
            uucp?.Dispose();
            throw;
        }
    }

    private ValueTask<Stream> Open(UucpLock? uucp)
    {
        var port = new SerialPort(options.PortName, options.BaudRate, options.Parity, options.DataBits, options.StopBits)
        {
            Handshake = Handshake.None,
            ReadTimeout = SerialPort.InfiniteTimeout,
            WriteTimeout = 2000,
        };
        try
        {
            port.Open();
            var held = SerialPortLock.Acquire(options.PortName);
            port.DiscardInBuffer();
            return ValueTask.FromResult<Stream>(new OwningStream(port.BaseStream, held is null && uucp is null ? port : new PortAndLock(port, held, uucp)));
        }
        catch (SerialPortInUseException)
        {
            port.Dispose();
            throw;
        }
        catch (Exception ex) when (ex is ArgumentException || (ex is IOException && ex is not FileNotFoundException && File.Exists(options.PortName)))
        {
            // .NET says "Value does not fall within the expected range." when the driver refuses a line setting
            // (a pty or an adapter without parity, an odd baud); name the settings it was asked for.
            port.Dispose();
            throw new IOException($"port {options.PortName} rejected {Settings} ({ex.Message.TrimEnd('.')}; does the adapter support these settings?)", ex);
        }
        catch (UnauthorizedAccessException ex)
        {
            // .NET reports every failed open(2) of a serial port as "Access to the port is denied", the errno only in
            // the inner exception: an unplugged USB adapter sent the engineer after permissions. Say which it was.
            port.Dispose();
            throw new IOException(Explain(ex), ex);
        }
        catch
        {
            port.Dispose();
            throw;
        }
    }

    /// <summary>Why the port would not open, from the errno .NET hides behind "Access to the port is denied".</summary>
    private string Explain(UnauthorizedAccessException ex)
    {
        var path = options.PortName;
        int errno = ex.InnerException?.HResult ?? 0;
        var reason = ex.InnerException?.Message ?? ex.Message;
        return errno switch
        {
            2 or 19 or 6 => $"port {path} does not exist ({reason}): USB-RS485 adapter unplugged, or back under another name (a /dev/serial/by-id/ path keeps its name)",
            13 or 1 => $"permission denied opening {path} ({reason}): the agent's user needs read and write access to it, usually through the dialout group",
            16 => $"port {path} is in use by another program ({reason}): another agent, a terminal program or ModemManager holds it",
            25 or 21 => $"{path} is not a serial port ({reason})",
            _ when !File.Exists(path) => $"port {path} does not exist ({reason}): USB-RS485 adapter unplugged, or back under another name (a /dev/serial/by-id/ path keeps its name)",
            _ => $"cannot open port {path}: {reason}",
        };
    }

    public string LineSettingsHint => $"the line's {Settings} on {options.PortName}";

    /// <summary>The line settings as usually written: <c>9600 8E1</c>.</summary>
    public string Settings => string.Create(
        System.Globalization.CultureInfo.InvariantCulture,
        $"{options.BaudRate} {options.DataBits}{options.Parity switch { Parity.None => "N", Parity.Odd => "O", Parity.Even => "E", Parity.Mark => "M", _ => "S" }}{options.StopBits switch { StopBits.Two => "2", StopBits.OnePointFive => "1.5", _ => "1" }}");

    /// <summary>
    /// The flock goes first: the port's own descriptor is then still open, so closing the lock's drops no line. The lock
    /// file goes last, once the port is closed: another program taking it then finds the port free.
    /// </summary>
    private sealed class PortAndLock(SerialPort port, SerialPortLock? held, UucpLock? uucp) : IDisposable
    {
        public void Dispose()
        {
            held?.Dispose();
            port.Dispose();
            uucp?.Dispose();
        }
    }

    /// <summary>Disposes the SerialPort along with its stream.</summary>
    private sealed class OwningStream(Stream inner, IDisposable owner) : Stream
    {
        public override bool CanRead => inner.CanRead;

        public override bool CanSeek => false;

        public override bool CanWrite => inner.CanWrite;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(buffer, cancellationToken);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                try
                {
                    inner.Dispose();
                }
                catch (IOException)
                {
                }

                owner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}

/// <summary>RTU frames over a TCP socket, as serial-to-Ethernet gateways in transparent mode expect.</summary>
public sealed class TcpRtuChannel(string host, int port, TimeSpan connectTimeout) : IRtuChannel
{
    public string Endpoint { get; } = EndpointNames.Of("rtu+tcp", host, port);

    public int? BaudRate => null;

    public string LineSettingsHint => "the gateway's serial settings";

    public async ValueTask<Stream> OpenAsync(CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(connectTimeout);
            await socket.ConnectAsync(host, port, timeout.Token).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
