using System.Runtime.InteropServices;

namespace EdgeTwin.Core;

/// <summary>
/// fsync of a directory: a rename or a new file is on disk only once the directory that names it is. .NET cannot open a
/// directory as a stream, so this goes to libc. Used where a file is replaced by a rename and a power cut must find the old
/// file or the new one (the outbox's write-back after its storage became writable again).
/// </summary>
public static partial class DurableDirectory
{
    private const int ReadOnly = 0;
    private const int Directory = 0x10000; // O_DIRECTORY, the same on x64 and arm64
    private const int CloseOnExec = 0x80000;

    /// <summary>fsyncs <paramref name="directory"/>; an <see cref="IOException"/> with the errno as its HResult when it fails.</summary>
    public static void Sync(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        var fd = Open(directory, ReadOnly | Directory | CloseOnExec);
        if (fd < 0)
        {
            throw Error("open", directory);
        }

        try
        {
            if (Fsync(fd) != 0)
            {
                throw Error("fsync", directory);
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    private static IOException Error(string call, string directory)
    {
        var errno = Marshal.GetLastPInvokeError();
        return new IOException($"{call} {directory}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
