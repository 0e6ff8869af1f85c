using System.Runtime.InteropServices;

namespace EdgeTwin.Core.Config;

/// <summary>
/// What the file system under a path is: mounted read-only, a kernel pseudo file system, or RAM. <c>edgetwin check</c>
/// uses it for the outbox's directory, since none of these shows until the agent's first write.
/// </summary>
public static partial class FileSystemFacts
{
    private const ulong ReadOnlyFlag = 1; // ST_RDONLY

    /// <summary>File system types that are the kernel's views, where no file can be created.</summary>
    private static readonly HashSet<string> PseudoTypes = new(StringComparer.Ordinal)
    {
        "proc", "sysfs", "devpts", "cgroup", "cgroup2", "securityfs", "debugfs", "tracefs", "configfs", "pstore", "bpf", "efivarfs",
    };

    /// <summary>The nearest of <paramref name="path"/> and its ancestors that exists (a directory, or a file in the way), or null.</summary>
    public static string? NearestExisting(string path)
    {
        for (var entry = Path.GetFullPath(path); entry is not null; entry = Path.GetDirectoryName(entry))
        {
            if (Directory.Exists(entry) || File.Exists(entry))
            {
                return entry;
            }
        }

        return null;
    }

    /// <summary>The facts of the file system holding the existing <paramref name="directory"/>; null off Linux or when it cannot be read.</summary>
    public static FileSystemKind? Of(string directory)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        string type;
        try
        {
            type = new DriveInfo(directory).DriveFormat;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }

        var readOnly = StatVfs(directory, out var stat) == 0 && (stat.Flag & ReadOnlyFlag) != 0;
        return new FileSystemKind(type, readOnly, PseudoTypes.Contains(type), type is "tmpfs" or "ramfs");
    }

    /// <summary>glibc's <c>struct statvfs</c> on 64-bit Linux (x64 and arm64: every field before the spare ints is 8 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct StatVfsBuffer
    {
        public ulong BlockSize;
        public ulong FragmentSize;
        public ulong Blocks;
        public ulong BlocksFree;
        public ulong BlocksAvailable;
        public ulong Files;
        public ulong FilesFree;
        public ulong FilesAvailable;
        public ulong FileSystemId;
        public ulong Flag;
        public ulong NameMax;
        public long Spare0;
        public long Spare1;
        public long Spare2;
    }

    [LibraryImport("libc", EntryPoint = "statvfs", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatVfs(string path, out StatVfsBuffer buffer);
}

/// <summary>A file system's type as the kernel names it (<c>ext4</c>, <c>tmpfs</c>, <c>proc</c>) and what it means for keeping data.</summary>
public sealed record FileSystemKind(string Type, bool ReadOnly, bool Pseudo, bool Volatile);
