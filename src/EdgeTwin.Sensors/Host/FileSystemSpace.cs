using System.Runtime.InteropServices;

namespace EdgeTwin.Sensors.Host;

/// <summary>
/// Free space of the file system holding a directory, as an unprivileged process can use it (<c>f_bavail</c>,
/// <c>f_favail</c>: the blocks root keeps in reserve do not count, the agent runs as its own user).
/// </summary>
/// <param name="FreeBytes">Bytes available to an unprivileged writer.</param>
/// <param name="FreePercent">Of the file system's size.</param>
/// <param name="FreeInodes">Inodes available to an unprivileged writer.</param>
/// <param name="FreeInodesPercent">Of its inodes; 100 for file systems without a fixed inode table (f_files = 0: btrfs), where they cannot run out.</param>
public readonly partial record struct FileSystemSpace(double FreeBytes, double FreePercent, double FreeInodes, double FreeInodesPercent)
{
    /// <summary>statvfs(3) of <paramref name="path"/>; throws <see cref="IOException"/> naming the path when it fails.</summary>
    public static FileSystemSpace Of(string path)
    {
        var buffer = default(StatVfsBuffer);
        // 32-bit glibc's statvfs has 32-bit counts (EOVERFLOW past 2^32 blocks); statvfs64 is the same call on 64-bit.
        var rc = IntPtr.Size == 8 ? StatVfs(path, ref buffer) : StatVfs64(path, ref buffer);
        if (rc != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"statvfs {path}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }

        ReadOnlySpan<byte> b = MemoryMarshal.AsBytes((Span<ulong>)buffer);
        // LP64: every field before f_fsid is 8 bytes. ILP32 statvfs64: f_bsize and f_frsize are 4, the counts 8.
        var wide = IntPtr.Size == 8;
        var frsize = wide ? BitConverter.ToUInt64(b[8..]) : BitConverter.ToUInt32(b[4..]);
        var counts = wide ? 16 : 8;
        var blocks = BitConverter.ToUInt64(b[counts..]);
        var available = BitConverter.ToUInt64(b[(counts + 16)..]);
        var files = BitConverter.ToUInt64(b[(counts + 24)..]);
        var filesAvailable = BitConverter.ToUInt64(b[(counts + 40)..]);
        return From(frsize, blocks, available, files, filesAvailable);
    }

    /// <summary>The figures from statvfs fields (separate for tests of the arithmetic).</summary>
    public static FileSystemSpace From(ulong fragmentSize, ulong blocks, ulong blocksAvailable, ulong files, ulong filesAvailable) => new(
        (double)blocksAvailable * fragmentSize,
        blocks == 0 ? double.NaN : 100.0 * blocksAvailable / blocks,
        filesAvailable,
        files == 0 ? 100.0 : 100.0 * filesAvailable / files);

    /// <summary>Room for struct statvfs (112 bytes on LP64) or statvfs64 (96 on ILP32).</summary>
    [System.Runtime.CompilerServices.InlineArray(20)]
    private struct StatVfsBuffer
    {
        private ulong _element;
    }

    [LibraryImport("libc", EntryPoint = "statvfs", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatVfs(string path, ref StatVfsBuffer buffer);

    [LibraryImport("libc", EntryPoint = "statvfs64", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatVfs64(string path, ref StatVfsBuffer buffer);
}
