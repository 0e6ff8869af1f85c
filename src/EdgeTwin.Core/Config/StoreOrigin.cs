using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace EdgeTwin.Core.Config;

/// <summary>
/// Where a state file (the outbox, the alert store) came from: its birth time on this file system and the machine it is
/// on. A store that numbers what it sends (outbox sequences, alert ids) records both when it creates the file; a file
/// that no longer matches was copied or restored (a backup put back, an old gateway's file moved onto its replacement),
/// and its numbering may be behind what the centre already has from the original, so the store must number new entries
/// from the clock instead, as for a new file.
/// </summary>
/// <param name="BirthNs">The file's birth time (statx <c>btime</c>), Unix nanoseconds; 0 when the file system does not keep it.
/// A copy or restore (cp, tar, rsync) makes a new file with a new birth time, even when the old one's mtime is kept.</param>
/// <param name="Host">A digest of <c>/etc/machine-id</c> (never the id itself, which systemd asks to keep private); null without one.</param>
public readonly partial record struct StoreOrigin(long BirthNs, string? Host)
{
    private const int AtFdCwd = -100;
    private const uint StatxBtime = 0x800;
    private const int StatxSize = 256; // struct statx is the same on every architecture

    /// <summary>The origin of the existing file <paramref name="path"/> on the machine <paramref name="host"/> (<see cref="ThisHost"/>).</summary>
    public static StoreOrigin Of(string path, string? host) => new(BirthTimeNs(path), host);

    /// <summary>
    /// Why a file whose recorded origin is <paramref name="recorded"/> is not the file that was recorded, or null when it
    /// is (or cannot be told: a value that was not recorded or cannot be read now never counts as a difference).
    /// </summary>
    public string? DifferenceFrom(StoreOrigin recorded)
    {
        if (recorded.Host is not null && Host is not null && !string.Equals(recorded.Host, Host, StringComparison.Ordinal))
        {
            return $"it was written on another machine (machine-id digest {recorded.Host}, this one {Host})";
        }

        if (recorded.BirthNs != 0 && BirthNs != 0 && recorded.BirthNs != BirthNs)
        {
            return $"it is a copy: the file was created {Format(BirthNs)}, the one that wrote it {Format(recorded.BirthNs)}";
        }

        return null;
    }

    private static string Format(long ns) =>
        DateTimeOffset.FromUnixTimeMilliseconds(ns / 1_000_000).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A short digest of the machine id in <paramref name="machineIdPath"/>, or null when there is none to read.</summary>
    public static string? ThisHost(string machineIdPath = "/etc/machine-id")
    {
        try
        {
            var id = File.ReadAllText(machineIdPath).Trim();
            return id.Length == 0 ? null : Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("edgetwin:" + id)).AsSpan(0, 8));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The file's birth time in Unix nanoseconds, 0 off Linux, on a file system without it, or when it cannot be read.</summary>
    public static unsafe long BirthTimeNs(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return 0;
        }

        var buffer = stackalloc byte[StatxSize];
        try
        {
            if (Statx(AtFdCwd, path, 0, StatxBtime, buffer) != 0)
            {
                return 0;
            }
        }
        catch (EntryPointNotFoundException)
        {
            return 0; // a libc without statx (before glibc 2.28)
        }

        if ((*(uint*)buffer & StatxBtime) == 0)
        {
            return 0;
        }

        // struct statx: stx_btime at offset 80, { __s64 tv_sec; __u32 tv_nsec; }
        var seconds = *(long*)(buffer + 80);
        var nanos = *(uint*)(buffer + 88);
        return seconds * 1_000_000_000 + nanos;
    }

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Statx(int dirfd, string path, int flags, uint mask, byte* buffer);
}
