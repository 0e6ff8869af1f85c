using System.Globalization;

namespace EdgeTwin.Agent.Twin;

/// <summary>The twin stages' state files (anomaly detectors, maintenance history): written whole, never torn.</summary>
internal static class AtomicStateFile
{
    /// <summary>How long one write may take before it is abandoned (a hung disk must not pile up writes).</summary>
    public static readonly TimeSpan WriteTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> (see the streaming overload).</summary>
    public static Task WriteAsync(string path, byte[] bytes, CancellationToken cancellationToken) =>
        WriteAsync(path, bytes.Length, (stream, ct) => stream.WriteAsync(bytes, ct).AsTask(), cancellationToken);

    /// <summary>
    /// Writes a state file of <paramref name="size"/> bytes through <paramref name="write"/>: temp file, flushed to disk,
    /// renamed over the old file. Learned state is worth less than data the agent accepted: a file that would take more
    /// than half the free space, or leave less than twice the outbox's reserve (5 % of the filesystem, at most 64 MiB, as
    /// <c>LiteDbOutbox</c> keeps it), is not written and an <see cref="IOException"/> says so. A write that takes longer
    /// than <see cref="WriteTimeout"/> is abandoned with an <see cref="IOException"/>; <paramref name="cancellationToken"/>
    /// (the stop) gives an <see cref="OperationCanceledException"/>.
    /// </summary>
    public static async Task WriteAsync(string path, long size, Func<Stream, CancellationToken, Task> write, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(write);
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir))
        {
            Directory.CreateDirectory(dir);
            EnsureRoom(dir, size);
        }

        var temp = path + ".tmp";
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(WriteTimeout);
        try
        {
            await using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1 << 16, FileOptions.Asynchronous))
            {
                await write(stream, timeout.Token).ConfigureAwait(false);
                await stream.FlushAsync(timeout.Token).ConfigureAwait(false);

                // On disk before the rename: after a power cut the file is the old state or the new one, never a torn one.
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            TryDelete(temp);
            throw new IOException(string.Create(CultureInfo.InvariantCulture, $"timed out after {WriteTimeout.TotalSeconds:0} s"));
        }
        catch
        {
            // A full disk leaves a partial temp file: remove it so it does not hold the space the outbox needs.
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>
    /// Writes a small file (a few hundred bytes) on the caller's thread, under the caller's lock: temp file, flushed to
    /// disk, renamed over the old one; a failed write removes its temp file. No room check and no timeout: for records
    /// whose writer cannot wait on an asynchronous write (the clock check's record of unsynchronised runs).
    /// </summary>
    public static void Write(string path, ReadOnlySpan<byte> bytes)
    {
        var temp = path + ".tmp";
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>A temp file a killed write left behind (it holds space and is never read).</summary>
    public static void RemoveLeftover(string path) => TryDelete(path + ".tmp");

    private static void EnsureRoom(string dir, long size)
    {
        long available, total;
        try
        {
            var drive = new DriveInfo(dir);
            (available, total) = (drive.AvailableFreeSpace, drive.TotalSize);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return; // unknown: write, and let a full disk say so
        }

        if (NoRoom(available, total, size) is { } reason)
        {
            throw new IOException(reason);
        }
    }

    /// <summary>Why a file of <paramref name="size"/> bytes may not be written on this filesystem, or null.</summary>
    internal static string? NoRoom(long available, long total, long size)
    {
        var keep = Math.Max(2 * Math.Min(64L << 20, total / 20), available / 2);
        return available - size < keep
            ? string.Create(CultureInfo.InvariantCulture, $"not written to keep room for the outbox: {available / 1024} KiB free, the file needs {size / 1024} KiB and at least {keep / 1024} KiB must stay free (half the free space, and never less than twice the outbox's reserve)")
            : null;
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>
    /// Why the file at <paramref name="path"/> must not be taken over as a state file (null: it may be). A state file's
    /// name can be configured, and a typo must not make a stage rename and overwrite the outbox or a config: a file with
    /// another name than the stage's own <paramref name="ownName"/> is taken only when it begins with the stage's
    /// <paramref name="magic"/>. (A file with the stage's own name is its own, damaged or not.)
    /// </summary>
    public static string? NotOurs(string path, ReadOnlySpan<byte> magic, string ownName)
    {
        if (string.Equals(Path.GetFileName(path), ownName, StringComparison.Ordinal))
        {
            return null;
        }

        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            Span<byte> head = stackalloc byte[magic.Length];
            var read = file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            return read == head.Length && head.SequenceEqual(magic) ? null
                : file.Length == 0 ? "it is an empty file the agent did not write (it writes whole files)"
                : "it does not begin as the agent's state files do: it is another file (the outbox, a config?)";
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return "it cannot be read to tell: " + ex.Message;
        }
    }

    /// <summary>
    /// Moves a state file that could not be read to <c>PATH.corrupt</c> (kept for a look, out of the way of the next
    /// write; an earlier one is kept too, the new one then gets the time in its name); returns where it went, or why it
    /// could not be moved, for the warning.
    /// </summary>
    public static string SetAside(string path)
    {
        var aside = path + ".corrupt";
        if (File.Exists(aside))
        {
            aside += "-" + DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        }

        try
        {
            File.Move(path, aside, overwrite: true);
            return aside;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return $"not moved: {ex.Message}";
        }
    }

    /// <summary>
    /// Reads a state file with <paramref name="read"/> (null: there is none). A temp file a killed write left is removed
    /// first. A file <paramref name="read"/> finds corrupt is set aside (<see cref="SetAside"/>) and reported through
    /// <paramref name="corrupt"/> (reason, where it went); one that cannot be read through <paramref name="unreadable"/>.
    /// Either way the caller starts without it.
    /// </summary>
    public static T? Read<T, TCorrupt>(string path, Func<string, T?> read, Action<string, string> corrupt, Action<string> unreadable)
        where T : class
        where TCorrupt : Exception
    {
        ArgumentNullException.ThrowIfNull(read);
        ArgumentNullException.ThrowIfNull(corrupt);
        ArgumentNullException.ThrowIfNull(unreadable);
        RemoveLeftover(path);
        try
        {
            return read(path);
        }
        catch (TCorrupt ex)
        {
            corrupt(ex.Message, SetAside(path));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            unreadable(ex.Message);
        }

        return null;
    }
}
