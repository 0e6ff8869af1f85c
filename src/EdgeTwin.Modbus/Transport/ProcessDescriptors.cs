using System.Runtime.InteropServices;

namespace EdgeTwin.Modbus.Transport;

/// <summary>
/// The process's file descriptors against its soft RLIMIT_NOFILE. Every Modbus TCP endpoint holds one socket, so a site of
/// a thousand meters each on its own IP needs a thousand; past the limit the .NET runtime itself fails to open the files it
/// maps (assemblies loaded on first use) and aborts the process ("Out of memory."), taking polls in flight with it. A
/// connection is therefore refused while fewer than <see cref="Reserve"/> descriptors are left, with an error naming the
/// limit, instead of taking the last ones. Here (not in EdgeTwin.Core) because this library references nothing of the
/// agent's; the agent reads the same figures for its start check.
/// </summary>
public static partial class ProcessDescriptors
{
    /// <summary>
    /// Descriptors kept free for the runtime (assemblies it maps on first use), the outbox's and alert store's files, the
    /// uplinks' reconnects and the control socket's clients: the agent with no device measured 183 open descriptors
    /// framework-dependent, of which 154 are mapped assemblies loaded at start; 64 covers what opens later.
    /// </summary>
    public const int Reserve = 64;

    private const int RlimitNofile = 7; // the same on x86_64 and arm64 Linux (the gateways' targets)

    // Starts as "unknown, count first": a limit below 2 x Reserve + the agent's own files is counted at once.
    private static long _lastCount = long.MaxValue / 4;
    private static long _allowedSinceCount;

    /// <summary>The soft RLIMIT_NOFILE, or null where it cannot be read (not Linux). The runtime raises it to the hard limit at start.</summary>
    public static long? SoftLimit()
    {
        // RLimit's two 64-bit fields are rlim_t of a 64-bit process only (a 32-bit one's are 32-bit): no guess there.
        if (!OperatingSystem.IsLinux() || !Environment.Is64BitProcess || GetRlimit(RlimitNofile, out var limit) != 0)
        {
            return null;
        }

        return limit.Current > long.MaxValue ? long.MaxValue : (long)limit.Current;
    }

    /// <summary>Descriptors open now (entries of /proc/self/fd), or null where it cannot be read.</summary>
    public static long? OpenCount()
    {
        try
        {
            long n = 0;
            foreach (var _ in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
            {
                n++;
            }

            return n - 1; // the enumeration's own directory descriptor
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// Null when another descriptor may be opened without eating into <see cref="Reserve"/>, else why not (naming the limit
    /// and the unit key that raises it). Reads /proc/self/fd, so it is for connects, not for every request.
    /// </summary>
    public static string? RefuseAnother()
    {
        if (SoftLimit() is not { } limit)
        {
            return null;
        }

        // Counting /proc/self/fd costs a directory read per connect (a 1,000-meter start read a million entries): far from
        // the limit, the last count plus the connects since stands in for it (closes only make it an overestimate).
        if (Volatile.Read(ref _lastCount) + Interlocked.Increment(ref _allowedSinceCount) + (2 * Reserve) < limit)
        {
            return null;
        }

        if (OpenCount() is not { } open)
        {
            return null;
        }

        Volatile.Write(ref _lastCount, open);
        Volatile.Write(ref _allowedSinceCount, 0);
        if (open + 1 <= limit - Reserve)
        {
            return null;
        }

        // No live count in the text: the transport warns again when a reason changes, and this one is the same limit.
        return $"too many open files: the process's limit of {limit} descriptors (soft RLIMIT_NOFILE) is reached but for the last {Reserve}, "
            + "kept for the agent's own files; raise LimitNOFILE= in the edgetwin unit";
    }

    /// <summary>The message for a socket or file that failed with EMFILE: .NET's own text says "in system", which misleads (ENFILE is the system-wide one).</summary>
    public static string TooManyOpenFiles()
    {
        var limit = SoftLimit();
        return limit is null
            ? "too many open files (EMFILE): the process's descriptor limit is reached; raise LimitNOFILE= in the edgetwin unit"
            : $"too many open files (EMFILE): the process's limit of {limit} descriptors (soft RLIMIT_NOFILE) is reached; raise LimitNOFILE= in the edgetwin unit";
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetRlimit(int resource, out RLimit limit);
}
