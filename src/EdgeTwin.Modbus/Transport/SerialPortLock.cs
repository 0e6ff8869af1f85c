using System.Runtime.InteropServices;

namespace EdgeTwin.Modbus.Transport;

/// <summary>
/// An exclusive advisory lock (flock) on a serial device, held by whichever EdgeTwin process drives the line: the agent,
/// or an <c>edgetwin poll</c> / <c>edgetwin modbus</c> command. The kernel's TIOCEXCL (set by .NET on open) keeps other
/// users off an open port but not root, so a command run with sudo on a gateway opened the agent's port too, and two
/// masters garbled each other's frames on the RS-485 line. The lock goes with the file descriptor, so a killed process
/// never leaves it behind.
/// </summary>
internal sealed partial class SerialPortLock : IDisposable
{
    // asm-generic values: the same on x64 and arm64.
    private const int ORdOnly = 0;
    private const int ONonBlock = 0x800;
    private const int ONoCtty = 0x100; // a service is a session leader without a terminal: it must not acquire the port as one
    private const int OCloExec = 0x80000;
    private const int LockEx = 2;
    private const int LockNb = 4;
    private const int EWouldBlock = 11;

    private int _fd;

    private SerialPortLock(int fd) => _fd = fd;

    /// <summary>
    /// Takes the lock on <paramref name="path"/>: the lock; null when it cannot be taken for a reason other than another
    /// holder (not Linux, a device that cannot be opened again): the port is used without it, as before.
    /// </summary>
    /// <exception cref="SerialPortInUseException">Another process (or another open of this one) holds it.</exception>
    public static SerialPortLock? Acquire(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        var fd = Open(path, ORdOnly | ONonBlock | ONoCtty | OCloExec);
        if (fd < 0)
        {
            return null;
        }

        if (Flock(fd, LockEx | LockNb) == 0)
        {
            return new SerialPortLock(fd);
        }

        var errno = Marshal.GetLastPInvokeError();
        Close(fd);
        if (errno == EWouldBlock)
        {
            throw new SerialPortInUseException($"port {path} is locked by another process (the running EdgeTwin agent, or an edgetwin poll or modbus command): two masters on one RS-485 line garble each other's frames; stop the other one first (systemctl stop edgetwin for the agent), or see what the agent reads with edgetwin status");
        }

        return null;
    }

    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
        {
            Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int Flock(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}

/// <summary>Another EdgeTwin process drives the serial line (<see cref="SerialPortLock"/>).</summary>
public sealed class SerialPortInUseException(string message) : IOException(message);
